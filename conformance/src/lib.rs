//! `totem-conformance`: runs YAML scenarios against real corosync 3.1.7, our own Totem
//! engine in the simulator, our daemon totemd and mixed rings of both, checks CPG's
//! guarantees on the traces, and reports.
//!
//! Layout: [`scenario`] (schema, validation, loading), [`backend`] (the `Backend` trait;
//! real corosync, totemd (`native`) and mixed rings in network namespaces, and the embedded
//! simulator), [`driver`]
//! (one scenario on one backend), [`trace`] (backend-neutral trace, normalisation),
//! [`check`] (invariant checkers), [`diff`], [`expectations`] (documented deviations),
//! [`report`], and [`cli`] (the `totem-conform` command, thin `main`).

pub mod backend;
pub mod check;
pub mod cli;
pub mod cond;
pub mod diff;
pub mod driver;
pub mod expectations;
pub mod report;
pub mod scenario;
mod sys;
pub mod trace;

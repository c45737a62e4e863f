//! The `totem-conform` command line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{self, corosync, BackendKind};
use crate::driver::{self, CaseOutcome, RunOptions, Verdict, INTERRUPTED};
use crate::expectations::Deviations;
use crate::report;
use crate::scenario::load::{self, Filter};
use crate::scenario::model::Scenario;

/// Exit code when a case failed (also: `diff` found differences).
pub const EXIT_FAIL: i32 = 1;
/// Exit code for unusable input: bad scenario files, bad arguments.
pub const EXIT_USAGE: i32 = 2;
/// Exit code after Ctrl-C (teardown done).
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "totem-conform",
    version,
    about = "Conformance suite for corosync's Totem protocol and CPG API",
    long_about = "Runs YAML scenarios (fixtures/scenarios) against a backend, checks CPG's \
guarantees (agreed order, virtual synchrony, FIFO, self delivery, no duplicates or invented \
messages, confchg consistency) and the expected return codes, and reports pass / fail / \
deviation / skipped.\n\nThe `corosync` backend runs Debian's corosync 3.1.7 as an N-node ring in \
network namespaces on this machine; it needs root and ci/install-corosync.sh. The `sim` backend \
runs our own Totem engine in the deterministic simulator, in virtual time (no root, no corosync; \
--seed picks the run). The `native` backend runs our daemon totemd on every node and `mixed` \
corosync on the odd-numbered nodes and totemd on the even ones, in one ring, both in network \
namespaces with unmodified libcpg clients; they need root, and mixed needs corosync too. A \
backend that cannot run here reports its cases skipped, with the reason.",
    after_help = "Examples:\n  totem-conform list --tag ordering\n  sudo totem-conform run --backend corosync --report target/conformance\n  \
totem-conform run --backend sim --junit sim.xml\n  \
sudo totem-conform run --backend native,mixed --scenario 'cpg-*'\n  \
totem-conform run --backend corosync --scenario 'cpg-join-*' --junit junit.xml\n  \
totem-conform diff a/normalized.yaml b/normalized.yaml"
)]
pub struct Cli {
    /// Scenario directory [default: fixtures/scenarios of this repository]
    #[arg(long, global = true, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Documented deviations [default: fixtures/expectations/deviations.yaml]
    #[arg(long, global = true, value_name = "FILE")]
    pub deviations: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Selection {
    /// Only scenarios whose id matches this glob (repeatable)
    #[arg(long = "scenario", value_name = "GLOB")]
    pub scenario: Vec<String>,
    /// Only scenarios with this tag (repeatable; any matches)
    #[arg(long = "tag", value_name = "TAG")]
    pub tag: Vec<String>,
    /// Leave out scenarios with this tag (repeatable). `long` is left out unless named by
    /// --tag long or --include-long
    #[arg(long = "exclude-tag", value_name = "TAG")]
    pub exclude_tag: Vec<String>,
    /// Also run scenarios tagged `long`
    #[arg(long)]
    pub include_long: bool,
}

impl Selection {
    fn filter(&self) -> Filter {
        let mut ex = self.exclude_tag.clone();
        if !self.include_long && !self.tag.iter().any(|t| t == "long") {
            ex.push("long".into());
        }
        Filter {
            id_globs: self.scenario.clone(),
            tags: self.tag.clone(),
            exclude_tags: ex,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List scenarios (id, nodes, transport, tags, title)
    List {
        #[command(flatten)]
        sel: Selection,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run scenarios on one or more backends
    Run {
        /// Backend(s) to run on (repeatable or comma-separated)
        #[arg(
            long = "backend",
            short,
            value_enum,
            value_delimiter = ',',
            required = true
        )]
        backend: Vec<BackendKind>,
        #[command(flatten)]
        sel: Selection,
        /// Write a JUnit XML file
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write a browsable report: index.html, per case logs, pcap, traces, sequence chart
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Output on stdout when done (progress always goes to stderr)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Do not capture the ring with tcpdump in --report
        #[arg(long)]
        no_pcap: bool,
        /// Seconds to wait for one agent call to answer
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        cmd_timeout: u64,
        /// Seed of the `sim` backend (same seed, same run)
        #[arg(long, default_value_t = 1, value_name = "N")]
        seed: u64,
        /// The agent program the namespace backends run for each client (any program
        /// speaking the agent protocol) [default: $TOTEM_CONFORM_AGENT, else
        /// totem-conform-agent beside this binary]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// An argument for the agent (repeatable), e.g. --agent-arg=--client=rust
        /// [default: $TOTEM_CONFORM_AGENT_ARGS]
        #[arg(long = "agent-arg", value_name = "ARG", allow_hyphen_values = true)]
        agent_arg: Vec<String>,
    },
    /// Compare normalised traces: two files (trace.json or normalized.yaml), or one
    /// scenario run on two backends
    Diff {
        /// Two trace files
        #[arg(num_args = 0..=2, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Scenario id to run on both --backend values instead of reading files
        #[arg(long, value_name = "ID", conflicts_with = "files")]
        scenario: Option<String>,
        /// The two backends for --scenario
        #[arg(long = "backend", value_enum, value_delimiter = ',')]
        backend: Vec<BackendKind>,
    },
    /// Remove network namespaces (and their processes) left by an interrupted run
    Cleanup,
}

fn repo_fixtures() -> PathBuf {
    if let Ok(p) = std::env::var("TOTEM_CONFORM_FIXTURES") {
        return PathBuf::from(p);
    }
    let mut d = std::env::current_dir().unwrap_or_default();
    loop {
        let f = d.join("fixtures/scenarios");
        if f.is_dir() {
            return d.join("fixtures");
        }
        if !d.pop() {
            break;
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn load_scenarios(cli: &Cli, err: &mut dyn Write) -> Result<Vec<Scenario>, i32> {
    let dir = cli
        .scenarios
        .clone()
        .unwrap_or_else(|| repo_fixtures().join("scenarios"));
    load::load_dir(&dir).map_err(|errs| {
        for e in errs {
            let _ = writeln!(err, "error: {e}");
        }
        EXIT_USAGE
    })
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    run(&cli, &mut out, &mut err)
}

pub fn run(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match &cli.command {
        Command::List { sel, format } => list(cli, sel, *format, out, err),
        Command::Run {
            backend,
            sel,
            junit,
            report,
            format,
            no_pcap,
            cmd_timeout,
            seed,
            agent,
            agent_arg,
        } => {
            // The backends find the agent through the environment (also how a wrapper
            // script chooses it); set before any backend thread starts.
            if let Some(a) = agent {
                std::env::set_var("TOTEM_CONFORM_AGENT", a);
            }
            if !agent_arg.is_empty() {
                std::env::set_var("TOTEM_CONFORM_AGENT_ARGS", agent_arg.join(" "));
            }
            let opts = RunArgs {
                backends: backend.clone(),
                junit: junit.clone(),
                // corosync's state_dir and logfile are taken relative to wherever the daemon
                // runs: every path handed down from the report must be absolute.
                report: report
                    .as_ref()
                    .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone())),
                format: *format,
                pcap: !no_pcap,
                cmd_timeout: Duration::from_secs(*cmd_timeout),
                seed: *seed,
            };
            run_cmd(cli, sel, &opts, out, err)
        }
        Command::Diff {
            files,
            scenario,
            backend,
        } => diff_cmd(cli, files, scenario.as_deref(), backend, out, err),
        Command::Cleanup => {
            let left = backend::netns::leftover_namespaces();
            for ns in &left {
                backend::netns::purge(ns);
                let _ = writeln!(out, "removed {ns}");
            }
            let _ = writeln!(out, "{} namespace(s) removed", left.len());
            0
        }
    }
}

fn list(
    cli: &Cli,
    sel: &Selection,
    format: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let all = match load_scenarios(cli, err) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let chosen = match sel.filter().select(&all) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = chosen
                .iter()
                .map(|s| {
                    serde_json::json!({"id": s.id, "title": s.title, "tags": s.tags, "nodes": s.topology.nodes,
                    "ipc": s.topology.ipc.as_str(), "spec_ref": s.spec_ref, "requirement": s.requirement, "file": s.path,
                    "deviation": s.deviation.as_ref().map(|d| &d.id)})
                })
                .collect();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            );
        }
        Format::Text => {
            for s in &chosen {
                let t = match s.topology.transport {
                    crate::scenario::raw::Transport::Udpu => "udpu",
                    crate::scenario::raw::Transport::Knet => "knet",
                };
                let _ = writeln!(
                    out,
                    "{:<44} {}n {:<4} [{}] {}",
                    s.id,
                    s.topology.nodes,
                    t,
                    s.tags.join(","),
                    s.title
                );
            }
            let _ = writeln!(out, "{} scenario(s)", chosen.len());
        }
    }
    0
}

struct RunArgs {
    backends: Vec<BackendKind>,
    junit: Option<PathBuf>,
    report: Option<PathBuf>,
    format: Format,
    pcap: bool,
    cmd_timeout: Duration,
    seed: u64,
}

fn install_ctrlc(err: &mut dyn Write) {
    // A second install (tests calling `run` twice) fails harmlessly.
    if ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            // Second Ctrl-C: the user insists; teardown is already under way.
            eprintln!("totem-conform: interrupted again, still tearing down");
        } else {
            eprintln!("totem-conform: interrupted, tearing down (namespaces, corosync, agents)");
        }
    })
    .is_err()
    {
        let _ = writeln!(err, "note: Ctrl-C handler already installed");
    }
}

fn run_cmd(
    cli: &Cli,
    sel: &Selection,
    a: &RunArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let all = match load_scenarios(cli, err) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let dev_path = cli
        .deviations
        .clone()
        .unwrap_or_else(|| repo_fixtures().join("expectations/deviations.yaml"));
    let deviations = match Deviations::load(&dev_path) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let chosen = match sel.filter().select(&all) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    if chosen.is_empty() {
        let _ = writeln!(err, "error: no scenario matches the selection");
        return EXIT_USAGE;
    }
    install_ctrlc(err);
    let tty = std::io::stderr().is_terminal();
    let t0 = Instant::now();
    let mut outcomes: Vec<CaseOutcome> = Vec::new();
    let total = chosen.len() * a.backends.len();
    let cfg = corosync::Config {
        pcap: a.pcap,
        sim_seed: a.seed,
    };
    // A backend that cannot run here is probed once, not once per case.
    let mut unavailable: std::collections::BTreeMap<BackendKind, String> = Default::default();
    for &kind in &a.backends {
        if let Err(why) = backend::make(kind, &cfg).availability() {
            unavailable.insert(kind, why);
        }
    }
    'outer: for s in &chosen {
        for &kind in &a.backends {
            if INTERRUPTED.load(Ordering::SeqCst) {
                break 'outer;
            }
            if tty {
                let _ = write!(
                    err,
                    "\r[{}/{total}] {} on {kind} ...\x1b[K",
                    outcomes.len() + 1,
                    s.id
                );
                let _ = err.flush();
            }
            let case_dir = a
                .report
                .as_ref()
                .map(|r| r.join("cases").join(&s.id).join(kind.as_str()));
            if let Some(d) = &case_dir {
                let _ = std::fs::create_dir_all(d);
            }
            let o = match unavailable.get(&kind) {
                Some(why) => CaseOutcome {
                    scenario: s.id.clone(),
                    backend: kind,
                    verdict: Verdict::Skipped(why.clone()),
                    failures: Vec::new(),
                    violations: Vec::new(),
                    duration_ms: 0,
                    trace: None,
                    norm: None,
                    artifacts: Vec::new(),
                },
                None => {
                    let mut b = backend::make(kind, &cfg);
                    let opts = RunOptions {
                        artifacts: case_dir.as_deref(),
                        deviations: &deviations,
                        cmd_timeout: a.cmd_timeout,
                    };
                    driver::run_case(s, b.as_mut(), &opts)
                }
            };
            if tty {
                let _ = write!(err, "\r\x1b[K");
            }
            let _ = report::text::case_line(&o, err);
            if let Some(d) = &case_dir {
                write_case_files(&o, s, d);
            }
            outcomes.push(o);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let _ = report::text::summary(&outcomes, secs, err);
    if let Some(j) = &a.junit {
        if let Err(e) = std::fs::write(j, report::junit::render(&outcomes)) {
            let _ = writeln!(err, "error: {}: {e}", j.display());
        }
    }
    if let Some(r) = &a.report {
        let _ = std::fs::create_dir_all(r);
        let html = report::html::index(&outcomes, &chosen, secs);
        if let Err(e) = std::fs::write(r.join("index.html"), html) {
            let _ = writeln!(err, "error: {}: {e}", r.display());
        }
        let _ = std::fs::write(
            r.join("results.json"),
            report::json::render(&outcomes, secs),
        );
        let _ = writeln!(err, "report: {}", r.join("index.html").display());
    }
    if a.format == Format::Json {
        let _ = writeln!(out, "{}", report::json::render(&outcomes, secs));
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        return EXIT_INTERRUPTED;
    }
    if outcomes.iter().any(|o| o.verdict == Verdict::Fail) {
        EXIT_FAIL
    } else {
        0
    }
}

fn write_case_files(o: &CaseOutcome, s: &Scenario, d: &Path) {
    if let Some(t) = &o.trace {
        let _ = std::fs::write(
            d.join("trace.json"),
            serde_json::to_string_pretty(t).unwrap_or_default(),
        );
    }
    if let Some(n) = &o.norm {
        let _ = std::fs::write(d.join("normalized.yaml"), n.to_yaml());
    }
    let _ = std::fs::write(
        d.join("outcome.json"),
        serde_json::to_string_pretty(o).unwrap_or_default(),
    );
    let _ = std::fs::write(d.join("case.html"), report::html::case_page(o, s, d));
}

fn diff_cmd(
    cli: &Cli,
    files: &[PathBuf],
    scenario: Option<&str>,
    backends: &[BackendKind],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (a, b, an, bn) = if let Some(id) = scenario {
        if backends.len() != 2 {
            let _ = writeln!(
                err,
                "error: diff --scenario needs exactly two --backend values"
            );
            return EXIT_USAGE;
        }
        let all = match load_scenarios(cli, err) {
            Ok(x) => x,
            Err(c) => return c,
        };
        let Some(s) = all.iter().find(|s| s.id == id) else {
            let _ = writeln!(err, "error: no scenario {id:?}");
            return EXIT_USAGE;
        };
        install_ctrlc(err);
        let devs = Deviations::default();
        let mut norms = Vec::new();
        for &k in backends {
            let mut be = backend::make(k, &corosync::Config::default());
            let o = driver::run_case(
                s,
                be.as_mut(),
                &RunOptions {
                    artifacts: None,
                    deviations: &devs,
                    cmd_timeout: Duration::from_secs(30),
                },
            );
            if let Verdict::Skipped(r) = &o.verdict {
                let _ = writeln!(err, "{k}: skipped ({r}); nothing to compare");
                return EXIT_USAGE;
            }
            norms.push(o.norm.unwrap_or_default());
        }
        let b = norms.pop().unwrap_or_default();
        let a = norms.pop().unwrap_or_default();
        (a, b, backends[0].to_string(), backends[1].to_string())
    } else {
        if files.len() != 2 {
            let _ = writeln!(
                err,
                "error: diff needs two trace files, or --scenario ID with two --backend values"
            );
            return EXIT_USAGE;
        }
        let load = |p: &PathBuf| crate::diff::load(p);
        match (load(&files[0]), load(&files[1])) {
            (Ok(a), Ok(b)) => (
                a,
                b,
                files[0].display().to_string(),
                files[1].display().to_string(),
            ),
            (Err(e), _) | (_, Err(e)) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_USAGE;
            }
        }
    };
    match crate::diff::diff(&a, &b, &an, &bn) {
        None => {
            let _ = writeln!(out, "normalised traces are equal");
            0
        }
        Some(d) => {
            let _ = write!(out, "{d}");
            EXIT_FAIL
        }
    }
}

//! Reports of a run: terminal text, JSON, JUnit XML and a browsable HTML directory.

pub mod html;
pub mod json;
pub mod junit;
pub mod text;

use crate::driver::CaseOutcome;

/// Counts per verdict.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub deviation: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn of(outcomes: &[CaseOutcome]) -> Self {
        let mut t = Self::default();
        for o in outcomes {
            match o.verdict.label() {
                "pass" => t.pass += 1,
                "fail" => t.fail += 1,
                "deviation" => t.deviation += 1,
                _ => t.skipped += 1,
            }
        }
        t
    }
}

/// Escapes text for HTML and XML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

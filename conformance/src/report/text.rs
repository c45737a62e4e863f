//! Human-readable progress (stderr) and summary.

use std::io::Write;

use super::Totals;
use crate::driver::{CaseOutcome, Verdict};

/// One line per finished case, with the reasons of a failure below it.
pub fn case_line(o: &CaseOutcome, w: &mut dyn Write) -> std::io::Result<()> {
    let extra = match &o.verdict {
        Verdict::Skipped(r) => format!(" ({r})"),
        // The full reason is in the JSON/HTML reports; one line names the deviation.
        Verdict::Deviation(r) => format!(" ({})", r.split(" (").next().unwrap_or(r)),
        _ => String::new(),
    };
    writeln!(
        w,
        "{:<9} {:<8} {:<44} {:>6} ms{extra}",
        o.verdict.label().to_uppercase(),
        o.backend.as_str(),
        o.scenario,
        o.duration_ms
    )?;
    for f in &o.failures {
        writeln!(w, "          - {f}")?;
    }
    for v in &o.violations {
        writeln!(w, "          - [{}] {}", v.check, v.message)?;
    }
    Ok(())
}

pub fn summary(outcomes: &[CaseOutcome], secs: f64, w: &mut dyn Write) -> std::io::Result<()> {
    let t = Totals::of(outcomes);
    writeln!(
        w,
        "{} cases: {} pass, {} fail, {} deviation, {} skipped in {secs:.1} s",
        outcomes.len(),
        t.pass,
        t.fail,
        t.deviation,
        t.skipped
    )
}

//! `--format json`: one JSON document with every outcome and the totals.

use super::Totals;
use crate::driver::CaseOutcome;

pub fn render(outcomes: &[CaseOutcome], secs: f64) -> String {
    let v = serde_json::json!({
        "totals": Totals::of(outcomes),
        "seconds": secs,
        "cases": outcomes,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

//! `--junit FILE`: one testsuite per backend; fail -> <failure>, skipped -> <skipped>,
//! deviation -> a pass with the reason in <system-out>.

use std::collections::BTreeMap;

use super::{esc, Totals};
use crate::driver::{CaseOutcome, Verdict};

pub fn render(outcomes: &[CaseOutcome]) -> String {
    let mut by: BTreeMap<&str, Vec<&CaseOutcome>> = BTreeMap::new();
    for o in outcomes {
        by.entry(o.backend.as_str()).or_default().push(o);
    }
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"totem-conform\">\n",
    );
    for (backend, cases) in by {
        let owned: Vec<CaseOutcome> = cases.iter().map(|c| (*c).clone()).collect();
        let t = Totals::of(&owned);
        let secs: f64 = cases.iter().map(|c| c.duration_ms as f64 / 1000.0).sum();
        s.push_str(&format!(
            "  <testsuite name=\"{backend}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{secs:.3}\">\n",
            cases.len(),
            t.fail,
            t.skipped
        ));
        for c in cases {
            s.push_str(&format!(
                "    <testcase classname=\"{backend}\" name=\"{}\" time=\"{:.3}\">",
                esc(&c.scenario),
                c.duration_ms as f64 / 1000.0
            ));
            match &c.verdict {
                Verdict::Pass => {}
                Verdict::Fail => {
                    let mut body: Vec<String> = c.failures.clone();
                    body.extend(
                        c.violations
                            .iter()
                            .map(|v| format!("[{}] {}", v.check, v.message)),
                    );
                    s.push_str(&format!(
                        "<failure message=\"{}\">{}</failure>",
                        esc(body.first().map_or("failed", String::as_str)),
                        esc(&body.join("\n"))
                    ));
                }
                Verdict::Skipped(r) => s.push_str(&format!("<skipped message=\"{}\"/>", esc(r))),
                Verdict::Deviation(r) => s.push_str(&format!(
                    "<system-out>known deviation: {}</system-out>",
                    esc(r)
                )),
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

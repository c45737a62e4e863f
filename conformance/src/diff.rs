//! `totem-conform diff`: compares normalised traces (of two backends or two files).

use std::path::Path;

use similar::TextDiff;

use crate::trace::normalize::{normalize, NormTrace};
use crate::trace::Trace;

/// Reads a raw trace (`trace.json`) and normalises it, or reads a normalised one
/// (`normalized.yaml`).
pub fn load(path: &Path) -> Result<NormTrace, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(t) = serde_json::from_str::<Trace>(&text) {
        return Ok(normalize(&t));
    }
    serde_yaml::from_str::<NormTrace>(&text).map_err(|e| {
        format!(
            "{}: neither a trace.json nor a normalized.yaml: {e}",
            path.display()
        )
    })
}

/// A unified diff of the two renderings; `None` when they are equal. The `scenario` line
/// is excluded so that two runs of one case under different names still compare.
pub fn diff(a: &NormTrace, b: &NormTrace, a_name: &str, b_name: &str) -> Option<String> {
    let strip = |n: &NormTrace| {
        NormTrace {
            scenario: String::new(),
            ..n.clone()
        }
        .to_yaml()
    };
    let (x, y) = (strip(a), strip(b));
    if x == y {
        return None;
    }
    Some(
        TextDiff::from_lines(&x, &y)
            .unified_diff()
            .context_radius(3)
            .header(a_name, b_name)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_traces_have_no_diff_and_changes_show() {
        let a = NormTrace {
            scenario: "a".into(),
            markers: vec!["x".into()],
            ..NormTrace::default()
        };
        let b = NormTrace {
            scenario: "b".into(),
            ..a.clone()
        };
        assert!(diff(&a, &b, "a", "b").is_none());
        let c = NormTrace {
            markers: vec!["y".into()],
            ..a.clone()
        };
        let d = diff(&a, &c, "a", "c").expect("differs");
        assert!(d.contains("-- x"), "{d}");
        assert!(d.contains("+- y"), "{d}");
    }
}

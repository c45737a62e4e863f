//! fixtures/expectations/deviations.yaml: where a backend knowingly departs from the man
//! pages, with the reason (the rustls bogo `DisabledTests` idea, but the case still runs
//! and must still behave exactly as documented to earn the *deviation* verdict).

use std::path::Path;

use globset::Glob;
use serde::Deserialize;

use crate::backend::BackendKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// The id a scenario's `deviation.id` refers to.
    pub id: String,
    /// Glob over scenario ids this entry covers.
    pub scenarios: String,
    /// Backends that show the deviation (e.g. corosync); empty = all.
    #[serde(default)]
    pub backends: Vec<String>,
    /// The man page or function whose text is contradicted.
    pub man_page: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviations {
    pub deviations: Vec<Deviation>,
}

impl Deviations {
    pub fn load(path: &Path) -> Result<Self, String> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let de = serde_yaml::Deserializer::from_str(&text);
        let d: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.location().map(|l| l.line()).unwrap_or(0);
            format!("{}:{line}: key `{key}`: {inner}", path.display())
        })?;
        for x in &d.deviations {
            Glob::new(&x.scenarios)
                .map_err(|e| format!("{}: deviation {}: bad glob: {e}", path.display(), x.id))?;
        }
        Ok(d)
    }

    /// The documented reason, when `id` is listed for this scenario and backend.
    pub fn lookup(&self, id: &str, scenario: &str, backend: BackendKind) -> Option<String> {
        self.deviations
            .iter()
            .find(|d| {
                d.id == id
                    && Glob::new(&d.scenarios).is_ok_and(|g| g.compile_matcher().is_match(scenario))
                    && (d.backends.is_empty() || d.backends.iter().any(|b| b == backend.as_str()))
            })
            .map(|d| format!("{} ({}): {}", d.id, d.man_page, d.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_matches_id_glob_and_backend() {
        let d = Deviations {
            deviations: vec![Deviation {
                id: "x".into(),
                scenarios: "cpg-leave-*".into(),
                backends: vec!["corosync".into()],
                man_page: "cpg_leave(3)".into(),
                reason: "r".into(),
            }],
        };
        assert!(d
            .lookup("x", "cpg-leave-rejoin", BackendKind::Corosync)
            .is_some());
        assert!(d.lookup("x", "cpg-join", BackendKind::Corosync).is_none());
        assert!(d
            .lookup("x", "cpg-leave-rejoin", BackendKind::Sim)
            .is_none());
        assert!(d
            .lookup("y", "cpg-leave-rejoin", BackendKind::Corosync)
            .is_none());
    }
}

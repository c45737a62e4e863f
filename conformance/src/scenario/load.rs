//! Finding, parsing and filtering scenario files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};

use super::model::{Scenario, ScenarioError};
use super::raw::RawScenario;

/// Parses one scenario file. Errors name the file, the line and column serde_yaml reports,
/// and the key path serde_path_to_error tracked (e.g. `steps[3].join.grup`).
pub fn parse_str(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let de = serde_yaml::Deserializer::from_str(text);
    let raw: RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let loc = inner.location();
        ScenarioError {
            file: path.to_owned(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: inner.to_string(),
        }
    })?;
    let lines = step_lines(text);
    Scenario::from_raw(raw, path.to_owned(), &|i| lines.get(i).copied()).map_err(|mut e| {
        if e.line.is_none() && e.key == "topology.crypto" {
            e.line = key_line(text, "topology", "crypto");
        }
        e
    })
}

/// Line (1-based) of `key:` inside the top-level `section:` map, for errors found after
/// parsing (serde no longer knows where a value was).
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ind = line.len() - trimmed.len();
        if ind == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            inside = trimmed.starts_with(&format!("{section}:"));
            continue;
        }
        if inside && trimmed.starts_with(&format!("{key}:")) {
            return Some(i + 1);
        }
    }
    None
}

/// Line numbers (1-based) of the items of the top-level `steps:` list, so that semantic
/// errors found after parsing can still point at a line.
fn step_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_steps = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ind = line.len() - trimmed.len();
        if ind == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            in_steps = trimmed.starts_with("steps:");
            continue;
        }
        if in_steps && trimmed.starts_with("- ") && *indent.get_or_insert(ind) == ind {
            out.push(i + 1);
        }
    }
    out
}

pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_owned(),
        line: None,
        column: None,
        key: "(file)".into(),
        message: e.to_string(),
    })?;
    parse_str(&text, path)
}

/// Every `*.yaml` / `*.yml` under `dir`, sorted by path.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Selection of scenarios by id glob and tags.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub id_globs: Vec<String>,
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
}

impl Filter {
    fn matchers(&self) -> Result<Vec<GlobMatcher>, String> {
        self.id_globs
            .iter()
            .map(|g| {
                Glob::new(g)
                    .map(|g| g.compile_matcher())
                    .map_err(|e| format!("bad --scenario glob {g:?}: {e}"))
            })
            .collect()
    }

    pub fn select<'a>(&self, all: &'a [Scenario]) -> Result<Vec<&'a Scenario>, String> {
        let m = self.matchers()?;
        Ok(all
            .iter()
            .filter(|s| m.is_empty() || m.iter().any(|g| g.is_match(&s.id)))
            .filter(|s| self.tags.is_empty() || self.tags.iter().any(|t| s.tags.contains(t)))
            .filter(|s| !self.exclude_tags.iter().any(|t| s.tags.contains(t)))
            .collect())
    }
}

/// Loads every scenario under `dir`. All file errors are collected, and duplicate ids are
/// an error too (ids key deviations, reports and snapshots).
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, Vec<ScenarioError>> {
    let files = discover(dir).map_err(|e| {
        vec![ScenarioError {
            file: dir.to_owned(),
            line: None,
            column: None,
            key: "(dir)".into(),
            message: e.to_string(),
        }]
    })?;
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        match load_file(&f) {
            Ok(s) => {
                if let Some(prev) = seen.insert(s.id.clone(), f.clone()) {
                    errs.push(ScenarioError {
                        file: f.clone(),
                        line: None,
                        column: None,
                        key: "id".into(),
                        message: format!("duplicate id {:?} (also in {})", s.id, prev.display()),
                    });
                } else {
                    ok.push(s);
                }
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        ok.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ok)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "id: x\ntitle: t\nspec_ref: cpg_join(3)\nrequirement: r\ntopology:\n  nodes: 1\nsteps:\n  - start_nodes: all\n  - client: {name: a, node: 1}\n  - initialize: {client: a}\n";

    #[test]
    fn parses_a_minimal_scenario() {
        let s = parse_str(OK, Path::new("x.yaml")).expect("valid");
        assert_eq!(s.steps.len(), 3);
    }

    fn with_crypto(transport: &str, crypto: &str) -> String {
        OK.replace(
            "  nodes: 1\n",
            &format!("  nodes: 1\n  transport: {transport}\n  crypto: {crypto}\n"),
        )
    }

    #[test]
    fn crypto_on_knet_loads() {
        let text = with_crypto("knet", "{model: openssl, cipher: none, hash: sha256}");
        let s = parse_str(&text, Path::new("x.yaml")).expect("valid");
        let c = s.topology.crypto.expect("crypto");
        assert_eq!(c.knet().0, totem_knet::crypto::CryptoModel::Openssl);
        assert_eq!(c.knet().2, totem_knet::crypto::CryptoHash::Sha256);
    }

    #[test]
    fn crypto_refusals_name_file_line_and_key() {
        for (transport, crypto, why) in [
            (
                "udpu",
                "{model: nss, cipher: aes256, hash: sha256}",
                "knet only",
            ),
            (
                "knet",
                "{model: nss, cipher: none, hash: none}",
                "crypto off",
            ),
            (
                "knet",
                "{model: nss, cipher: aes128, hash: none}",
                "needs a hash",
            ),
        ] {
            let e =
                parse_str(&with_crypto(transport, crypto), Path::new("c.yaml")).expect_err(crypto);
            assert_eq!(e.file, Path::new("c.yaml"));
            assert_eq!(e.line, Some(8), "{e}");
            assert_eq!(e.key, "topology.crypto", "{e}");
            assert!(e.message.contains(why), "{e}");
        }
        let e = parse_str(
            &with_crypto("knet", "{model: nss, cipher: aes512, hash: sha256}"),
            Path::new("c.yaml"),
        )
        .expect_err("bad cipher");
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(8), "topology.crypto.cipher"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = OK.replace("initialize: {client: a}", "join: {client: a, grup: g}");
        let e = parse_str(&text, Path::new("bad.yaml")).expect_err("unknown key");
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.key.starts_with("steps[2]"), "{e}");
        assert!(e.message.contains("grup"), "{e}");
    }

    #[test]
    fn return_codes_and_c_enums_are_typed_at_load_time() {
        use crate::scenario::raw::{ExpectedRc, RcExpect, Step};
        use totem_agent_protocol::values::Guarantee;
        use totem_agent_protocol::Rc;
        let text = OK.replace(
            "initialize: {client: a}",
            "mcast: {client: a, guarantee: \"99\", expect: [CS_ERR_TRY_AGAIN, NO_ANSWER]}",
        );
        let s = parse_str(&text, Path::new("x.yaml")).expect("valid");
        let Step::Mcast(m) = &s.steps[2] else {
            panic!("{:?}", s.steps[2])
        };
        assert_eq!(m.guarantee, Guarantee(99));
        assert_eq!(
            m.expect,
            Some(RcExpect::Any(vec![
                ExpectedRc::Rc(Rc(totem_wire::ipc::CsError::TryAgain)),
                ExpectedRc::NoAnswer
            ]))
        );
        for (bad, word) in [
            ("initialize: {client: a, expect: CS_OKAY}", "CS_OKAY"),
            (
                "initialize: {client: a, expect: [CS_OK, WATCHDOGS]}",
                "WATCHDOGS",
            ),
            ("mcast: {client: a, guarantee: SOMETIMES}", "SOMETIMES"),
            ("dispatch: {client: a, mode: ONCE}", "ONCE"),
        ] {
            let text = OK.replace("initialize: {client: a}", bad);
            let e = parse_str(&text, Path::new("bad.yaml")).expect_err(bad);
            assert_eq!(e.line, Some(10), "{e}");
            assert!(e.key.starts_with("steps[2]"), "{e}");
            assert!(e.message.contains(word), "{bad}: {e}");
        }
    }

    #[test]
    fn client_must_be_started_before_use() {
        let text = OK.replace("  - client: {name: a, node: 1}\n", "");
        let e = parse_str(&text, Path::new("bad.yaml")).expect_err("unknown client");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("steps[1].client", Some(9)),
            "{e}"
        );
    }

    #[test]
    fn ipc_type_defaults_to_shm_and_reads_socket() {
        use crate::scenario::raw::Ipc;
        let s = parse_str(OK, Path::new("x.yaml")).expect("valid");
        assert_eq!(s.topology.ipc, Ipc::Shm);
        let text = OK.replace("  nodes: 1\n", "  nodes: 1\n  ipc: socket\n");
        let s = parse_str(&text, Path::new("x.yaml")).expect("valid");
        assert_eq!(s.topology.ipc, Ipc::Socket);
        let text = OK.replace("  nodes: 1\n", "  nodes: 1\n  ipc: shm\n");
        let s = parse_str(&text, Path::new("x.yaml")).expect("valid");
        assert_eq!(s.topology.ipc, Ipc::Shm);
    }

    #[test]
    fn unknown_ipc_type_names_line_key_and_choices() {
        // corosync's own spelling of the default is not a scenario value: `shm` says it.
        let text = OK.replace("  nodes: 1\n", "  nodes: 1\n  ipc: native\n");
        let e = parse_str(&text, Path::new("bad.yaml")).expect_err("unknown ipc type");
        assert_eq!(e.line, Some(7), "{e}");
        assert_eq!(e.key, "topology.ipc", "{e}");
        assert!(
            e.message.contains("native")
                && e.message.contains("shm")
                && e.message.contains("socket"),
            "{e}"
        );
        let shown = e.to_string();
        assert!(shown.starts_with("bad.yaml:7:"), "{shown}");
    }

    #[test]
    fn evs_steps_name_line_and_key_of_a_bad_key_or_kind() {
        let ok = OK.replace(
            "initialize: {client: a}",
            "evs_initialize: {client: a}\n  - evs_join: {client: a, groups: [g, {hex: \"6b00ff\"}]}",
        );
        let s = parse_str(&ok, Path::new("x.yaml")).expect("valid");
        assert_eq!(s.evs_clients.get("a"), Some(&1));
        for (bad, key, word) in [
            (
                "evs_join: {client: a, groups: [g, {hex: \"6g\"}]}",
                "steps[3].groups[1]",
                "hex",
            ),
            (
                "evs_leave: {client: a, groups: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]}",
                "steps[3].groups[0]",
                "33",
            ),
            (
                "evs_mcast_groups: {client: a, groups: ['\\xZZ']}",
                "steps[3].groups[0]",
                "xZZ",
            ),
            (
                "wait_until: {evs_confchg: {client: a, kind: REGULARISH}}",
                "steps[3].wait_until.evs_confchg.kind",
                "REGULARISH",
            ),
            ("evs_join: {client: a, grups: [g]}", "steps[3]", "grups"),
        ] {
            let text = ok.replace("evs_join: {client: a, groups: [g, {hex: \"6b00ff\"}]}", bad);
            let e = parse_str(&text, Path::new("bad.yaml")).expect_err(bad);
            assert_eq!(e.line, Some(11), "{bad}: {e}");
            assert!(e.key.starts_with(key), "{bad}: {e}");
            assert!(e.message.contains(word), "{bad}: {e}");
        }
    }

    #[test]
    fn service_steps_are_read_as_their_commands() {
        use totem_agent_protocol::Command;
        let ok = OK.replace(
            "initialize: {client: a}",
            "cmap_initialize: {client: a}\n  - cmap_set: {client: a, key: k.x, value: {type: u32, value: 7}}",
        );
        let s = parse_str(&ok, Path::new("x.yaml")).expect("valid");
        let (name, call) = s
            .steps
            .iter()
            .find_map(|st| st.svc().filter(|(n, _)| *n == "cmap_set"))
            .expect("a cmap_set step");
        let Ok(Command::CmapSet(c)) = crate::scenario::model::svc_command(name, call) else {
            panic!("not a cmap_set")
        };
        // The handle defaults to the service's (m1), not CPG's h1.
        assert_eq!((c.target.handle.as_str(), c.key.as_str()), ("m1", "k.x"));
        for (bad, word) in [
            (
                "cmap_set: {client: a, key: k.x, value: {type: u33, value: 7}}",
                "u33",
            ),
            (
                "cmap_set: {client: a, key: k.x, value: {type: u32, value: 7}, vaule: 1}",
                "vaule",
            ),
            ("quorum_trackstart: {client: a}", "flags"),
        ] {
            let text = ok.replace(
                "cmap_set: {client: a, key: k.x, value: {type: u32, value: 7}}",
                bad,
            );
            let e = parse_str(&text, Path::new("bad.yaml")).expect_err(bad);
            assert_eq!(e.line, Some(11), "{bad}: {e}");
            assert!(e.key.starts_with("steps[3]"), "{bad}: {e}");
            assert!(e.message.contains(word), "{bad}: {e}");
        }
    }

    #[test]
    fn node_out_of_range_is_rejected() {
        let text = OK.replace("{name: a, node: 1}", "{name: a, node: 4}");
        assert!(parse_str(&text, Path::new("bad.yaml")).is_err());
    }
}

//! Replays every fixture and the fuzz corpus through the fuzz entry points, and sweeps
//! every fixture for truncation: nothing may panic.

use std::path::Path;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn fixtures_and_fuzz_corpus_replay_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_under(&root.join("../../fixtures/wire"), &mut files);
    let fixtures = files.len();
    files_under(&root.join("../fuzz/corpus"), &mut files);
    assert!(fixtures >= 20, "fixtures/wire has {fixtures} samples");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        totem_wire::fuzzing::all(&bytes);
        for len in 0..bytes.len().min(2048) {
            totem_wire::fuzzing::all(&bytes[..len]);
        }
        // Knet data frames carry totem messages after 14 bytes.
        if let Some(inner) = bytes.get(14..) {
            totem_wire::fuzzing::all(inner);
        }
    }
}

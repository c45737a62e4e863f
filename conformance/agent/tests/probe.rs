//! Without libcpg the agent prints one clear error and exits 2 (the runner's *skipped*).

use std::process::Command;

#[test]
fn missing_library_is_one_clear_error() {
    let agent = env!("CARGO_BIN_EXE_totem-conform-agent");
    let out = Command::new(agent)
        .env("TOTEM_CONFORM_LIBCPG", "libtotem-conform-no-such-lib.so.0")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("agent runs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json line");
    assert_eq!(v["ev"], "fatal");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("libtotem-conform-no-such-lib.so.0"));

    let probe = Command::new(agent)
        .arg("--probe")
        .env("TOTEM_CONFORM_LIBCPG", "libtotem-conform-no-such-lib.so.0")
        .output()
        .expect("agent runs");
    assert_eq!(probe.status.code(), Some(2));
}

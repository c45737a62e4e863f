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

/// `--client rust` speaks the same protocol through totem-client: typed lines, the
/// protocol version in `hello`, a call on a handle never made refused by name, a bad
/// command answered, `quit` ending with code 0.
#[test]
fn rust_client_speaks_the_protocol_without_a_daemon() {
    use std::io::Write;
    use totem_agent_protocol::{Event, Line, PROTOCOL_VERSION};

    let agent = env!("CARGO_BIN_EXE_totem-conform-agent");
    let mut child = Command::new(agent)
        .args(["--client", "rust"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("agent runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"{\"id\":1,\"cmd\":\"join\",\"group\":\"g\"}\n{\"cmd\":\"jion\"}\n{\"id\":2,\"cmd\":\"quit\"}\n")
        .expect("write");
    let out = child.wait_with_output().expect("agent ends");
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Line> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(matches!(
        &lines[0].event,
        Event::Hello { protocol, lib: Some(lib), .. } if *protocol == PROTOCOL_VERSION && lib == "totem-client"
    ));
    let Event::Result(join) = &lines[1].event else {
        panic!("{:?}", lines[1])
    };
    assert_eq!((join.id, join.rc), (Some(1), None));
    assert!(join
        .error
        .as_deref()
        .unwrap_or("")
        .contains("initialize it first"));
    let Event::Result(bad) = &lines[2].event else {
        panic!("{:?}", lines[2])
    };
    assert!(
        bad.error.as_deref().unwrap_or("").contains("jion"),
        "{bad:?}"
    );
    let Event::Result(quit) = &lines[3].event else {
        panic!("{:?}", lines[3])
    };
    assert_eq!((quit.id, quit.cmd.as_str()), (Some(2), "quit"));
}

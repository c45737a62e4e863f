//! The JSON schema in `schema/` is the protocol's public form: it must be what the Rust
//! types say. `UPDATE_SCHEMA=1 cargo test -p totem-agent-protocol --test schema` rewrites
//! it after a deliberate change (and PROTOCOL_VERSION changes with any incompatible one).

use std::path::PathBuf;

use totem_agent_protocol::{command_schema, event_schema, Line, Request};

fn check(file: &str, schema: serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file);
    let text = serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &text).expect("write schema");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is not what the types generate; run UPDATE_SCHEMA=1 cargo test -p totem-agent-protocol --test schema",
        path.display()
    );
}

#[test]
fn command_schema_matches_the_types() {
    check("command.schema.json", command_schema());
}

#[test]
fn event_schema_matches_the_types() {
    check("event.schema.json", event_schema());
}

/// The schema is not decoration: it names every command and event the types accept.
#[test]
fn schema_names_every_command_and_event() {
    let commands = command_schema().to_string();
    for cmd in [
        "initialize",
        "finalize",
        "join",
        "leave",
        "mcast",
        "zcb_alloc",
        "zcb_mcast",
        "zcb_free",
        "membership_get",
        "local_get",
        "context_get",
        "context_set",
        "fd_get",
        "flow_control_state_get",
        "max_atomic_msgsize_get",
        "dispatch",
        "iteration",
        "quit",
        "evs_initialize",
        "evs_finalize",
        "evs_fd_get",
        "evs_context_get",
        "evs_context_set",
        "evs_dispatch",
        "evs_join",
        "evs_leave",
        "evs_mcast_joined",
        "evs_mcast_groups",
        "evs_membership_get",
    ] {
        assert!(commands.contains(&format!("\"{cmd}\"")), "{cmd}");
        let line = format!(r#"{{"cmd":"{cmd}"}}"#);
        serde_json::from_str::<Request>(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    let events = event_schema().to_string();
    for ev in [
        "hello",
        "fatal",
        "result",
        "confchg",
        "deliver",
        "evs_deliver",
        "evs_confchg",
        "totem_confchg",
        "watchdog",
    ] {
        assert!(events.contains(&format!("\"{ev}\"")), "{ev}");
    }
    let hello: Line =
        serde_json::from_str(r#"{"t":1,"ev":"hello","pid":9,"protocol":1}"#).expect("hello line");
    assert_eq!(hello.t, 1);
}

//! `totem-conform-agent`: one CPG client process driven by JSON lines.
//!
//! stdin: one command per line, e.g. `{"id":3,"cmd":"join","handle":"h1","group":"g"}`.
//! stdout: one event per line: `hello`, `result` (every return code by name), `confchg`,
//! `deliver`, `totem_confchg`, `watchdog`, `fatal`; each with `t` (µs since the epoch).
//! The protocol is documented in conformance/README.md ("Agent protocol").
//!
//! libcpg is loaded at run time (see `ffi`), so this binary builds without corosync and
//! prints one `fatal` line and exits 2 when the library is missing.

mod commands;
mod ffi;
mod payload;

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Exit code when libcpg cannot be loaded; the runner turns it into *skipped*.
pub(crate) const EXIT_NO_LIBCPG: i32 = 2;
/// Exit code when a dispatch watchdog fired.
pub(crate) const EXIT_WATCHDOG: i32 = 3;

static OUT: Mutex<()> = Mutex::new(());

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Writes one event line; callbacks and the watchdog thread share stdout through a lock.
pub(crate) fn emit(mut v: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert("t".into(), json!(now_us()));
    }
    let _g = OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = std::io::stdout().lock();
    // A closed stdout means the runner is gone; there is nobody left to report to.
    if writeln!(out, "{v}").and_then(|()| out.flush()).is_err() {
        ffi::hard_exit(0);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "totem-conform-agent: a libcpg client driven by JSON lines on stdin.\n\
             Loads {} at run time (override with TOTEM_CONFORM_LIBCPG).\n\
             Usage: run inside the node's network namespace; see conformance/README.md.",
            ffi::library_name()
        );
        return;
    }
    if std::env::args().any(|a| a == "--probe") {
        // Used by the runner to decide *skipped* before building any namespace.
        match ffi::load() {
            Ok(_) => println!("ok: {}", ffi::library_name()),
            Err(e) => {
                println!("{e}");
                std::process::exit(EXIT_NO_LIBCPG);
            }
        }
        return;
    }
    // A cap on file sizes keeps a bad zcb_alloc from filling /dev/shm (corosync-lab.md).
    ffi::limit_file_size(512 << 20);
    if let Err(e) = ffi::load() {
        emit(json!({"ev": "fatal", "error": e}));
        std::process::exit(EXIT_NO_LIBCPG);
    }
    emit(json!({"ev": "hello", "pid": std::process::id(), "lib": ffi::library_name()}));

    let (wake_rd, wake_wr) = ffi::pipe();
    let (tx, rx) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Some(line)).is_err() {
                return;
            }
            ffi::write_byte(wake_wr);
        }
        let _ = tx.send(None);
        ffi::write_byte(wake_wr);
    });

    let mut agent = commands::Agent::default();
    loop {
        let mut fds = vec![wake_rd];
        let auto = agent.auto_fds();
        fds.extend(auto.iter().map(|(_, fd)| *fd));
        let rev = ffi::poll(&fds, 200);
        for (i, (h, _)) in auto.iter().enumerate() {
            if rev[i + 1] != 0 {
                agent.auto_dispatch(h);
            }
        }
        if rev[0] != 0 {
            ffi::drain(wake_rd);
        }
        while let Ok(msg) = rx.try_recv() {
            let Some(line) = msg else {
                // stdin closed: the runner is done with this client.
                return;
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(cmd) => {
                    if agent.handle(&cmd) == commands::Flow::Quit {
                        return;
                    }
                }
                Err(e) => {
                    emit(json!({"ev": "result", "cmd": "?", "error": format!("bad JSON: {e}")}))
                }
            }
        }
    }
}

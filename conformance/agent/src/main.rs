//! `totem-conform-agent`: one CPG client process driven by JSON lines, speaking the agent
//! protocol of `totem-agent-protocol` (conformance/README.md, "Agent protocol").
//!
//! stdin: one command per line, e.g. `{"id":3,"cmd":"join","handle":"h1","group":"g"}`.
//! stdout: one event per line: `hello` (with the protocol version), `result`, `confchg`,
//! `deliver`, `totem_confchg`, `watchdog`, `fatal`; each with `t` (µs since the epoch).
//!
//! `--client libcpg` (the default) calls the real libcpg, loaded at run time (see `ffi`),
//! so this binary builds without corosync and prints one `fatal` line and exits 2 when the
//! library is missing. `--client rust` calls our pure-Rust `totem-client` over libqb IPC
//! instead: the same protocol, another implementation of the CPG client API.
//!
//! EVS (`evs_*` commands, docs/evs.md) follows the same choice: `--client rust` uses
//! `totem_client::evs` over libqb IPC to the `evs` service, the default loads libevs at the
//! first EVS command (`TOTEM_CONFORM_LIBEVS` names a soname or path; see `libevs`).
//!
//! quorum, cmap and cfg commands (`quorum_*`, `cmap_*`, `cfg_*`) call libquorum.so.5,
//! libcmap.so.4 and libcfg.so.7, each loaded at its first command (see `libsvc`), with
//! either `--client`: the Rust client has no implementation of them.

mod ffi;
mod libcpg;
mod libevs;
mod libsvc;

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use totem_agent_protocol::client::{IpcConnector, RustCpg, RustEvs};
use totem_agent_protocol::{
    CallResult, CpgApi, Event, EvsApi, Executor, Flow, Host, Line, Request, EXIT_NO_LIBCPG,
    EXIT_WATCHDOG, PROTOCOL_VERSION,
};

/// Callbacks, results and the watchdog thread share stdout through this lock.
static OUT: Mutex<()> = Mutex::new(());

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Writes one event line, stamped now.
fn emit(event: Event) {
    let line = Line { t: now_us(), event };
    let text = serde_json::to_string(&line).unwrap_or_default();
    let _g = OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = std::io::stdout().lock();
    // A closed stdout means the runner is gone; there is nobody left to report to.
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        ffi::hard_exit(0);
    }
}

/// The agent process as the executor's host: wall-clock time, stdout, and a watchdog
/// thread for calls that may never return.
struct Process {
    start: Instant,
    /// Set when the guarded call returned; the armed watchdog thread then stands down.
    returned: Option<Arc<AtomicBool>>,
}

impl Host for Process {
    fn emit(&mut self, event: Event) {
        emit(event);
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn arm_watchdog(&mut self, after: Duration, report: Event) -> Option<Duration> {
        let returned = Arc::new(AtomicBool::new(false));
        self.returned = Some(returned.clone());
        std::thread::spawn(move || {
            std::thread::sleep(after);
            if !returned.load(Ordering::SeqCst) {
                emit(report);
                ffi::hard_exit(EXIT_WATCHDOG);
            }
        });
        // The call is made as libcpg makes it, unbounded: this thread ends it.
        None
    }

    fn disarm_watchdog(&mut self) {
        if let Some(r) = self.returned.take() {
            r.store(true, Ordering::SeqCst);
        }
    }
}

/// Which implementation of the CPG client API the agent drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Libcpg,
    Rust,
}

const USAGE: &str = "usage: totem-conform-agent [--client libcpg|rust] [--probe]";

fn client_from_args() -> Result<Client, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut client = Client::Libcpg;
    let mut i = 0;
    while i < args.len() {
        let value = match args[i].as_str() {
            "--client" => {
                i += 1;
                args.get(i).cloned().unwrap_or_default()
            }
            a if a.starts_with("--client=") => a["--client=".len()..].to_owned(),
            "--probe" | "--help" | "-h" => {
                i += 1;
                continue;
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        client = match value.as_str() {
            "libcpg" => Client::Libcpg,
            "rust" => Client::Rust,
            other => {
                return Err(format!(
                    "unknown client {other:?} (libcpg or rust)\n{USAGE}"
                ))
            }
        };
        i += 1;
    }
    Ok(client)
}

fn open(client: Client) -> Result<Box<dyn CpgApi>, String> {
    match client {
        Client::Libcpg => libcpg::LibCpg::load().map(|l| Box::new(l) as Box<dyn CpgApi>),
        // Handle values are opaque; these are told apart from libcpg's at a glance.
        Client::Rust => Ok(Box::new(RustCpg::new(IpcConnector, 0x7275_5354_0000_0001))),
    }
}

fn open_evs(client: Client) -> Box<dyn EvsApi> {
    match client {
        Client::Libcpg => Box::new(libevs::LibEvs),
        Client::Rust => Box::new(RustEvs::new(IpcConnector, 0x7275_5345_0000_0001)),
    }
}

fn main() {
    let client = match client_from_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(64);
        }
    };
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "totem-conform-agent: a CPG client driven by JSON lines on stdin (agent protocol v{PROTOCOL_VERSION}).\n\
             --client libcpg (default) loads {} at run time (override with TOTEM_CONFORM_LIBCPG);\n\
             --client rust uses the pure-Rust totem-client over libqb IPC.\n\
             {USAGE}\n\
             Run it inside the node's network namespace; see conformance/README.md.",
            ffi::library_name()
        );
        return;
    }
    if std::env::args().any(|a| a == "--probe") {
        // Used by the runner to decide *skipped* before building any namespace.
        match open(client) {
            Ok(api) => {
                // EVS is told apart: a missing libevs fails only the EVS scenarios.
                let evs = match client {
                    Client::Libcpg => {
                        libevs::LibEvs::probe().unwrap_or_else(|e| format!("none ({e})"))
                    }
                    Client::Rust => "totem-client".into(),
                };
                // EVS stays last: runners read what follows `evs: ` to the end.
                println!(
                    "ok: {}; {}; evs: {evs}",
                    api.library(),
                    libsvc::LibSvc::probe()
                );
            }
            Err(e) => {
                println!("{e}");
                std::process::exit(EXIT_NO_LIBCPG);
            }
        }
        return;
    }
    // A cap on file sizes keeps a bad zcb_alloc from filling /dev/shm (corosync-lab.md).
    ffi::limit_file_size(512 << 20);
    let mut api = match open(client) {
        Ok(api) => api,
        Err(error) => {
            emit(Event::Fatal { error });
            std::process::exit(EXIT_NO_LIBCPG);
        }
    };
    emit(Event::Hello {
        pid: std::process::id(),
        protocol: PROTOCOL_VERSION,
        lib: Some(api.library()),
    });

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

    let mut host = Process {
        start: Instant::now(),
        returned: None,
    };
    let mut evs = open_evs(client);
    let mut svc = libsvc::LibSvc;
    let mut exec = Executor::default();
    loop {
        // Handles with auto_dispatch are dispatched whenever their descriptor is readable.
        let auto: Vec<(String, i32)> = exec
            .auto_handles()
            .into_iter()
            .filter_map(|(n, fd)| Some((n, fd?)))
            .collect();
        let evs_auto: Vec<(String, i32)> = exec
            .evs_auto_handles()
            .into_iter()
            .filter_map(|(n, fd)| Some((n, fd?)))
            .collect();
        let svc_auto: Vec<(String, i32)> = exec
            .svc_auto_handles()
            .into_iter()
            .filter_map(|(n, fd)| Some((n, fd?)))
            .collect();
        let mut fds = vec![wake_rd];
        fds.extend(auto.iter().map(|(_, fd)| *fd));
        fds.extend(evs_auto.iter().map(|(_, fd)| *fd));
        fds.extend(svc_auto.iter().map(|(_, fd)| *fd));
        let rev = ffi::poll(&fds, 200);
        for (i, (h, _)) in auto.iter().enumerate() {
            if rev[i + 1] != 0 {
                exec.auto_dispatch(api.as_mut(), &mut host, h);
            }
        }
        for (i, (h, _)) in evs_auto.iter().enumerate() {
            if rev[i + 1 + auto.len()] != 0 {
                exec.evs_auto_dispatch(evs.as_mut(), &mut host, h);
            }
        }
        for (i, (h, _)) in svc_auto.iter().enumerate() {
            if rev[i + 1 + auto.len() + evs_auto.len()] != 0 {
                exec.svc_auto_dispatch(&mut svc, &mut host, h);
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
            match serde_json::from_str::<Request>(&line) {
                Ok(req) if req.command.service().is_some() => {
                    // No exit flow: these commands never quit nor trip a watchdog.
                    exec.execute_svc(&mut svc, &mut host, &req);
                }
                Ok(req) => match exec.execute_any(api.as_mut(), evs.as_mut(), &mut host, &req) {
                    Flow::Continue => {}
                    Flow::Exit(0) => return,
                    Flow::Exit(code) => ffi::hard_exit(code),
                },
                Err(e) => emit(Event::Result(Box::new(CallResult {
                    cmd: "?".into(),
                    error: Some(format!("bad command: {e}")),
                    ..CallResult::default()
                }))),
            }
        }
    }
}

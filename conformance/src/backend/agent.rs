//! Agent processes (`totem-conform-agent`) as seen from the runner: spawn one inside a
//! node's namespace, feed it command lines, turn its output lines into trace events.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{BResult, BackendError};
use crate::trace::{now_us, parse_agent_line, EventKind, TraceSink};

/// The agent to run: the program `TOTEM_CONFORM_AGENT` names, else `totem-conform-agent`
/// beside the running executable (cargo puts both binaries of the workspace in one target
/// directory), with the arguments of `TOTEM_CONFORM_AGENT_ARGS` (whitespace-separated; e.g.
/// `--client rust` for our pure-Rust libcpg). Any program that speaks the agent protocol
/// (`totem-agent-protocol`) will do.
pub fn agent_command() -> Result<(PathBuf, Vec<String>), String> {
    let path = sibling_binary(
        "TOTEM_CONFORM_AGENT",
        "totem-conform-agent",
        "totem-conform-agent",
    )?;
    let args = std::env::var("TOTEM_CONFORM_AGENT_ARGS")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok((path, args))
}

/// Where `totemd` is: `TOTEMD`, else beside the running executable.
pub fn totemd_path() -> Result<PathBuf, String> {
    sibling_binary("TOTEMD", "totemd", "totemd")
}

fn sibling_binary(var: &str, name: &str, package: &str) -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dirs = Vec::new();
    if let Some(d) = exe.parent() {
        dirs.push(d.to_owned());
        // Integration tests run from target/<profile>/deps.
        if let Some(up) = d.parent() {
            dirs.push(up.to_owned());
        }
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("binary {name} not found (build it: cargo build -p {package}, or set {var})")
        })
}

pub struct AgentProc {
    pub name: String,
    pub pid: u32,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
}

/// Starts an agent in `ns` (via `ip netns exec`, which execs, so the child pid is the
/// agent's: corosync-lab.md gotcha 2). It runs in its own process group so a Ctrl-C on the
/// terminal reaches only the runner, which then tears down in order.
pub fn spawn(
    name: &str,
    node: u32,
    ns: Option<&str>,
    (agent, args): (&Path, &[String]),
    log_dir: &Path,
    sink: TraceSink,
) -> BResult<AgentProc> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(agent);
            c
        }
        None => Command::new(agent),
    };
    cmd.args(args);
    let stderr = std::fs::File::create(log_dir.join(format!("agent-{name}.stderr")))?;
    let mut jsonl = std::fs::File::create(log_dir.join(format!("agent-{name}.jsonl")))?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| BackendError(format!("cannot start agent {name}: {e}")))?;
    let pid = child.id();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BackendError("agent stdout".into()))?;
    let stdin = child.stdin.take();
    let client = name.to_owned();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(jsonl, "{line}");
            match parse_agent_line(&line) {
                Ok((t, EventKind::ClientStarted { pid, .. })) => {
                    sink.push(&client, EventKind::ClientStarted { node, pid }, t)
                }
                Ok((t, kind)) => sink.push(&client, kind, t),
                Err(e) => sink.push(&client, EventKind::ClientFatal { error: e }, now_us()),
            }
        }
        let st = child.wait().ok();
        sink.push(
            &client,
            EventKind::ClientExited {
                code: st.and_then(|s| s.code()),
                signal: st.and_then(|s| s.signal()),
            },
            now_us(),
        );
    });
    Ok(AgentProc {
        name: name.to_owned(),
        pid,
        stdin,
        reader: Some(reader),
    })
}

impl AgentProc {
    pub fn send(&mut self, line: &str) -> BResult<()> {
        let w = self
            .stdin
            .as_mut()
            .ok_or_else(|| BackendError(format!("client {} has no stdin (quit)", self.name)))?;
        writeln!(w, "{line}")
            .and_then(|()| w.flush())
            .map_err(|e| BackendError(format!("client {}: {e} (agent gone?)", self.name)))
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn signal(&self, sig: i32) {
        crate::sys::kill(self.pid as i32, sig);
    }

    /// Closes stdin, gives the agent `grace` to exit, then SIGKILLs it; waits for the
    /// reader so the exit event is in the trace.
    pub fn stop(&mut self, grace: Duration) {
        self.close_stdin();
        let deadline = Instant::now() + grace;
        while self.reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.reader.as_ref().is_some_and(|r| !r.is_finished()) {
            self.signal(libc::SIGKILL);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(500));
    }
}

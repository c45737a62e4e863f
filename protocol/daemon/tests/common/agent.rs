//! `totem-conform-agent` (conformance/agent): one unmodified-libcpg client process, driven
//! by JSON lines (conformance/README.md "Agent protocol"), started inside a node's network
//! namespace. Built on demand with the cargo running the tests, into the same target dir.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The tests' target directory: .../target/debug/deps/<test>-HASH → .../target.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

/// `TOTEM_CONFORM_AGENT`, else builds the agent (quietly, once per test binary run).
pub fn agent_path() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("TOTEM_CONFORM_AGENT") {
        return Ok(PathBuf::from(p));
    }
    static BUILT: std::sync::Mutex<Option<Result<PathBuf, String>>> = std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = built.as_ref() {
        return r.clone();
    }
    let target = target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", "totem-conform-agent"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cargo build -p totem-conform-agent: {e}"))?;
    let path = target.join("debug/totem-conform-agent");
    let r = if out.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "cargo build -p totem-conform-agent failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    *built = Some(r.clone());
    r
}

/// One agent process.
pub struct Agent {
    pub name: String,
    pub pid: u32,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    /// Every line but results, in order of arrival.
    pub events: Vec<Value>,
    results: Vec<Value>,
    next_id: u64,
}

impl Agent {
    /// Starts an agent in network namespace `ns`; its stderr goes to `dir/<name>.stderr`.
    pub fn spawn(ns: &str, name: &str, dir: &Path) -> Agent {
        Agent::spawn_as(ns, name, dir, None)
    }

    /// The same, running as `uid:gid` (no supplementary groups) when given.
    pub fn spawn_as(ns: &str, name: &str, dir: &Path, ids: Option<(u32, u32)>) -> Agent {
        let path = agent_path().unwrap_or_else(|e| panic!("{e}"));
        let err = std::fs::File::create(dir.join(format!("{name}.stderr"))).expect("stderr");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        if let Some((uid, gid)) = ids {
            cmd.args([
                "setpriv",
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
            ]);
        }
        let mut child = cmd
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn agent");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut agent = Agent {
            name: name.to_owned(),
            pid: 0,
            child,
            stdin,
            lines,
            events: Vec::new(),
            results: Vec::new(),
            next_id: 1,
        };
        let hello = agent
            .wait_for(Duration::from_secs(10), |v| {
                v["ev"] == "hello" || v["ev"] == "fatal"
            })
            .unwrap_or_else(|e| panic!("agent {name}: {e}"));
        assert_eq!(hello["ev"], "hello", "agent {name}: {hello}");
        agent.pid = hello["pid"].as_u64().expect("pid") as u32;
        agent
    }

    fn pump(&mut self, until: Instant) -> bool {
        let wait = until.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(v) => {
                if v["ev"] == "result" {
                    self.results.push(v);
                } else {
                    self.events.push(v);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Sends a command (an `id` is added); returns the id.
    pub fn send(&mut self, mut cmd: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        writeln!(self.stdin, "{cmd}").expect("agent stdin");
        self.stdin.flush().expect("agent stdin");
        id
    }

    /// The result of command `id`.
    pub fn result(&mut self, id: u64, timeout: Duration) -> Value {
        let until = Instant::now() + timeout;
        loop {
            if let Some(i) = self.results.iter().position(|r| r["id"] == id) {
                return self.results.remove(i);
            }
            if Instant::now() >= until {
                panic!(
                    "agent {}: no result for command {id} in {timeout:?}",
                    self.name
                );
            }
            self.pump(until);
        }
    }

    /// Sends a command and waits for its result (30 s).
    pub fn call(&mut self, cmd: Value) -> Value {
        let id = self.send(cmd);
        self.result(id, Duration::from_secs(30))
    }

    /// Sends a command and asserts `rc` CS_OK.
    pub fn ok(&mut self, cmd: Value) -> Value {
        let r = self.call(cmd.clone());
        assert_eq!(r["rc"], "CS_OK", "agent {}: {cmd} -> {r}", self.name);
        r
    }

    /// The first event (already seen or arriving within `timeout`) matching `pred`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let until = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            if let Some(v) = self.events[checked..].iter().find(|v| pred(v)) {
                return Ok(v.clone());
            }
            checked = self.events.len();
            if Instant::now() >= until {
                return Err(format!(
                    "agent {}: no matching event in {timeout:?}; events: {:?}",
                    self.name, self.events
                ));
            }
            self.pump(until);
        }
    }

    /// Takes in what arrived so far, without waiting.
    pub fn poll(&mut self) {
        while self.pump(Instant::now()) {}
    }

    /// The deliveries so far, as (tag, seq, len, intact).
    pub fn deliveries(&self) -> Vec<(String, u64, u64, bool)> {
        self.events
            .iter()
            .filter(|v| v["ev"] == "deliver")
            .map(|v| {
                (
                    v["tag"].as_str().unwrap_or("?").to_owned(),
                    v["seq"].as_u64().unwrap_or(u64::MAX),
                    v["len"].as_u64().unwrap_or(0),
                    v["intact"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// Waits until `n` deliveries arrived.
    pub fn wait_deliveries(&mut self, n: usize, timeout: Duration) -> Result<(), String> {
        let until = Instant::now() + timeout;
        while self.deliveries().len() < n {
            if Instant::now() >= until {
                return Err(format!(
                    "agent {}: {} of {n} deliveries in {timeout:?}",
                    self.name,
                    self.deliveries().len()
                ));
            }
            self.pump(until);
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A confchg of `group` whose `list` ("joined", "left") has `pid` with `reason`.
pub fn confchg_with(v: &Value, group: &str, list: &str, pid: u32, reason: &str) -> bool {
    v["ev"] == "confchg"
        && v["group"] == group
        && v[list].as_array().is_some_and(|l| {
            l.iter()
                .any(|a| a["pid"] == u64::from(pid) && a["reason"] == reason)
        })
}

//! Building C programs against our header and libevs.so, and a totemd ring in network
//! namespaces to run them on (the layout of protocol/daemon/tests/common and of
//! ci/bench-ring.sh: one namespace per node, eth0 = 10.200.0.1N/24 on a bridge in a hub
//! namespace; nothing in the host's namespace). Everything started is killed by pid and
//! every namespace deleted on drop; the directory is kept when the test failed.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// fixtures/evs of the workspace.
pub fn fixtures_dir() -> PathBuf {
    crate_dir().join("../../fixtures/evs")
}

/// The cargo profile directory this test binary was built into (target/<profile>): the
/// test runs from target/<profile>/deps.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Where libevs.so is: cargo builds the cdylib for the crate's tests and puts it beside
/// the test binaries and in the profile directory.
pub fn libevs_dir() -> PathBuf {
    let profile = profile_dir();
    for dir in [profile.clone(), profile.join("deps")] {
        if dir.join("libevs.so").exists() {
            return dir;
        }
    }
    panic!("libevs.so not found in {} or its deps/", profile.display());
}

/// A C compiler: `CC`, else `cc`.
pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// A temporary directory laid out as the fixtures' relative includes need (README of
/// fixtures/evs): `D/config.h` (empty), `D/include/evs.h` (our header, for testevsth.c's
/// "../include/evs.h"), `D/exec/crypto.h` (our SHA-1 shim, for evsverify.c's
/// "../exec/crypto.h") and an empty `D/x`, passed as `-I D/x` so that both `..` paths
/// resolve under D.
pub struct Build {
    pub dir: tempfile::TempDir,
}

/// What one compilation printed.
pub struct Compiled {
    pub program: PathBuf,
    pub stderr: String,
}

impl Build {
    pub fn new() -> Build {
        let dir = tempfile::Builder::new()
            .prefix("libevs-build")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        for sub in ["x", "include", "exec"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("config.h"), "").unwrap();
        std::fs::copy(
            crate_dir().join("include/corosync/evs.h"),
            d.join("include/evs.h"),
        )
        .unwrap();
        std::fs::copy(
            crate_dir().join("tests/c/exec/crypto.h"),
            d.join("exec/crypto.h"),
        )
        .unwrap();
        Build { dir }
    }

    /// Compiles and links `source` with `-Wall` and only command-line additions; panics
    /// with the compiler's output when it fails.
    pub fn compile(&self, source: &Path, name: &str, extra: &[&str]) -> Compiled {
        let d = self.dir.path();
        let program = d.join(name);
        let lib = libevs_dir();
        let out = Command::new(cc())
            .arg("-Wall")
            .args(extra)
            .arg("-I")
            .arg(d)
            .arg("-I")
            .arg(crate_dir().join("include"))
            .arg("-I")
            .arg(d.join("x"))
            .arg("-o")
            .arg(&program)
            .arg(source)
            .arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .args(["-levs", "-lcrypto", "-lpthread"])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", cc()));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{} did not compile ({}):\n{stderr}",
            source.display(),
            out.status
        );
        Compiled { program, stderr }
    }
}

/// The warnings of a compilation, one line each (`file:line:col: warning: ...`).
pub fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("warning:")).collect()
}

/// Why the lab cannot run here, if it cannot.
pub fn lab_skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no `ip` command".into());
    }
    if totemd_path().is_none() {
        return Some(format!(
            "no totemd in {} (cargo build -p totemd, or set TOTEMD)",
            profile_dir().display()
        ));
    }
    None
}

/// totemd: `TOTEMD`, else the one built into the same profile directory.
pub fn totemd_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TOTEMD") {
        return Some(PathBuf::from(p));
    }
    let p = profile_dir().join("totemd");
    p.exists().then_some(p)
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn addr(n: u32) -> String {
    format!("10.200.0.{}", 10 + n)
}

/// A ring of `nodes` totemd in namespaces.
pub struct Lab {
    pub dir: PathBuf,
    prefix: String,
    nodes: u32,
    namespaces: Vec<String>,
    daemons: Vec<Child>,
    /// libqb IPC type of the daemons (`shm` or `socket`).
    pub ipc: &'static str,
}

impl Lab {
    /// Namespaces `tle<tag><pid>n<N>` and a hub; no daemon yet.
    pub fn new(tag: &str, nodes: u32, ipc: &'static str) -> Result<Lab, String> {
        let prefix = format!("tle{tag}{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{prefix}-lab"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut lab = Lab {
            dir,
            prefix,
            nodes,
            namespaces: Vec::new(),
            daemons: Vec::new(),
            ipc,
        };
        let hub = format!("{}h", lab.prefix);
        lab.add_ns(&hub)?;
        run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &hub, "link", "set", "br0", "up"])?;
        for n in 1..=nodes {
            let ns = lab.ns(n);
            lab.add_ns(&ns)?;
            let peer = format!("v{n}");
            run(&[
                "ip", "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &peer,
                "netns", &hub,
            ])?;
            let a = format!("{}/24", addr(n));
            run(&["ip", "-n", &ns, "addr", "add", &a, "dev", "eth0"])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "master", "br0"])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "up"])?;
            for sub in ["state", "log"] {
                std::fs::create_dir_all(lab.node_dir(n).join(sub)).map_err(|e| e.to_string())?;
            }
        }
        Ok(lab)
    }

    fn add_ns(&mut self, name: &str) -> Result<(), String> {
        run(&["ip", "netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    pub fn ns(&self, n: u32) -> String {
        format!("{}n{n}", self.prefix)
    }

    pub fn node_dir(&self, n: u32) -> PathBuf {
        self.dir.join(format!("n{n}"))
    }

    fn status_path(&self, n: u32) -> PathBuf {
        self.node_dir(n).join("state/status.json")
    }

    /// fixtures/corosync/corosync.conf.tmpl filled in as ci/bench-ring.sh does.
    fn conf(&self, n: u32) -> String {
        let tmpl =
            std::fs::read_to_string(crate_dir().join("../../fixtures/corosync/corosync.conf.tmpl"))
                .expect("corosync.conf.tmpl");
        let nodelist: String = (1..=self.nodes)
            .map(|i| {
                format!(
                    "\tnode {{\n\t\tring0_addr: {}\n\t\tnodeid: {i}\n\t}}\n",
                    addr(i)
                )
            })
            .collect();
        let nd = self.node_dir(n);
        tmpl.replace("{{transport}}", "udpu")
            .replace("{{totem_timings}}", "")
            .replace("{{nodelist}}", &nodelist)
            .replace(
                "{{logfile}}",
                &nd.join("log/corosync.log").display().to_string(),
            )
            .replace("{{state_dir}}", &nd.join("state").display().to_string())
            .replace("{{ipc}}", self.ipc)
    }

    /// Starts totemd on every node.
    pub fn start(&mut self) {
        let totemd = totemd_path().expect("totemd");
        for n in 1..=self.nodes {
            let nd = self.node_dir(n);
            let conf = nd.join("corosync.conf");
            std::fs::write(&conf, self.conf(n)).unwrap();
            let out = std::fs::File::create(nd.join("log/stdout")).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &self.ns(n)])
                .arg(&totemd)
                .args(["-f", "-c"])
                .arg(&conf)
                .arg("--status-file")
                .arg(self.status_path(n))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn totemd");
            self.daemons.push(child);
        }
    }

    /// Waits until every node is operational and synced in a ring of all nodes.
    pub fn wait_ring(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let all = (1..=self.nodes).all(|n| {
                let Ok(text) = std::fs::read_to_string(self.status_path(n)) else {
                    return false;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                    return false;
                };
                v["state"] == "operational"
                    && v["synced"] == true
                    && v["members"].as_array().map(Vec::len) == Some(self.nodes as usize)
            });
            if all {
                return Ok(start.elapsed());
            }
            for (i, c) in self.daemons.iter_mut().enumerate() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("totemd on node {} exited: {st}", i + 1));
                }
            }
            if start.elapsed() > timeout {
                return Err(format!("no ring of {} within {timeout:?}", self.nodes));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client program on node `n`, its output going to `name`.out in the lab directory.
    pub fn spawn_client(&self, n: u32, program: &Path, name: &str) -> Child {
        let out = std::fs::File::create(self.dir.join(format!("{name}.out"))).unwrap();
        Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .arg(program)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn client")
    }

    /// What the client `name` printed.
    pub fn output(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.out"))).unwrap_or_default()
    }

    /// Waits for `child` at most `timeout`; kills it (by its pid) when it takes longer.
    pub fn wait_client(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Node `n`'s totemd log.
    pub fn log(&self, n: u32) -> String {
        let nd = self.node_dir(n);
        let mut s = std::fs::read_to_string(nd.join("log/corosync.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(nd.join("log/stdout")).unwrap_or_default());
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for mut c in self.daemons.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.drain(..).rev() {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
        if std::thread::panicking() {
            for n in 1..=self.nodes {
                let log = self.log(n);
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "--- node {n} log (last 30 lines)\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
            eprintln!("lab kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

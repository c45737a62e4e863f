//! A ring on one machine for the root-only tests: one network namespace per node
//! (`eth0` = 10.200.0.1N/24) and a hub namespace with a bridge, as
//! `conformance/src/backend/netns.rs` lays it out; nothing is created in the host's
//! namespace, so no traffic leaves the machine. Real corosync gets a private /run
//! (corosync-lab.md: its pid file is compiled in). Everything started here is killed by pid
//! and every namespace deleted when the lab is dropped; the directory is kept (and named on
//! stderr) when the test failed.

#![allow(dead_code, unreachable_pub)]

pub mod agent;
pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const COROSYNC: &str = "/usr/sbin/corosync";

/// Why the libcpg tests cannot run here (on top of [`skip_reason`]), if they cannot.
pub fn libcpg_missing() -> Option<String> {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
    ]
    .iter()
    .any(|d| Path::new(d).join("libcpg.so.4").exists());
    if !found {
        return Some("libcpg.so.4 is not installed".into());
    }
    None
}

/// Why the tests using corosync's tools cannot run here, if they cannot.
pub fn cpgtool_missing() -> Option<String> {
    if !Path::new("/usr/sbin/corosync-cpgtool").exists() {
        return Some("corosync-cpgtool is not installed".into());
    }
    None
}

/// Why the root-only tests cannot run here, if they cannot.
pub fn skip_reason(need_corosync: bool) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no `ip` command".into());
    }
    if need_corosync && !Path::new(COROSYNC).exists() {
        return Some(format!("{COROSYNC} is not installed"));
    }
    None
}

pub fn addr(n: u32) -> String {
    format!("10.200.0.{}", 10 + n)
}

/// Node `n`'s address on the second link's network ([`Lab::add_second_link`]).
pub fn addr1(n: u32) -> String {
    format!("10.201.0.{}", 10 + n)
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

pub struct Lab {
    pub dir: PathBuf,
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(u32, Child)>,
    tcpdump: Option<Child>,
    pub keep: bool,
    /// Appended to every corosync.conf written from now on.
    pub extra_conf: String,
    /// `system.qb_ipc_type` of every corosync.conf written from now on (`None`: left out,
    /// so native = shm, corosync's default).
    pub ipc_type: Option<&'static str>,
    /// `quorum_votes` of these nodes in the nodelist of every corosync.conf written from
    /// now on.
    pub quorum_votes: Vec<(u32, u32)>,
    /// Nodes (namespaces) the lab has.
    nodes: u32,
    /// `totem.transport` of every corosync.conf written from now on.
    pub transport: &'static str,
    /// The crypto lines of `totem` in every corosync.conf written from now on (`None`:
    /// cipher and hash none).
    pub crypto: Option<String>,
    /// Nodes whose corosync.conf has other crypto lines than [`Lab::crypto`].
    pub crypto_for: Vec<(u32, String)>,
    /// `name: PREFIX<N>` for every node in the nodelist (Pacemaker names its nodes so;
    /// without it every namespace would be the host's uname).
    pub node_names: Option<&'static str>,
    /// Per-node directories bound over these paths for every daemon, program and tool
    /// started on the node (`add_private_dir`): node N's subdirectory, the mount point.
    private_dirs: Vec<(String, String)>,
    /// A second knet link ([`Lab::add_second_link`]): every node gets `ring1_addr`
    /// ([`addr1`]) and a `name` in every corosync.conf written from now on.
    pub second_link: bool,
    /// More lines of `totem` in every corosync.conf written from now on.
    pub totem_extra: String,
}

impl Lab {
    /// `nodes` namespaces named `tdd<tag><pid>n<N>`, a hub, and a working directory.
    pub fn new(tag: &str, nodes: u32) -> Result<Lab, String> {
        let prefix = format!("tdd{tag}{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{prefix}-lab"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut lab = Lab {
            dir,
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            tcpdump: None,
            // TOTEMD_KEEP_LAB=1 keeps logs and the capture of passing runs too.
            keep: std::env::var_os("TOTEMD_KEEP_LAB").is_some(),
            extra_conf: String::new(),
            ipc_type: None,
            quorum_votes: Vec::new(),
            nodes,
            transport: "udpu",
            crypto: None,
            crypto_for: Vec::new(),
            node_names: None,
            private_dirs: Vec::new(),
            second_link: false,
            totem_extra: String::new(),
        };
        let hub = lab.hub();
        lab.add_ns(&hub)?;
        for n in 1..=nodes {
            let ns = lab.ns(n);
            lab.add_ns(&ns)?;
            for sub in ["run", "state", "log"] {
                std::fs::create_dir_all(lab.node_dir(n).join(sub)).map_err(|e| e.to_string())?;
            }
        }
        lab.add_network("br0", "eth0", "v", addr)?;
        Ok(lab)
    }

    /// One network: a bridge in the hub and, in every node, `dev` (its veth peer in the
    /// hub named `peer_prefix` + N) with the address `addr_of(N)`/24.
    fn add_network(
        &self,
        bridge: &str,
        dev: &str,
        peer_prefix: &str,
        addr_of: fn(u32) -> String,
    ) -> Result<(), String> {
        let hub = self.hub();
        run(&["ip", "-n", &hub, "link", "add", bridge, "type", "bridge"])?;
        run(&["ip", "-n", &hub, "link", "set", bridge, "up"])?;
        for n in 1..=self.nodes {
            let ns = self.ns(n);
            let peer = format!("{peer_prefix}{n}");
            run(&[
                "ip", "-n", &ns, "link", "add", dev, "type", "veth", "peer", "name", &peer,
                "netns", &hub,
            ])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", addr_of(n)),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", &ns, "link", "set", dev, "up"])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "master", bridge])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "up"])?;
        }
        Ok(())
    }

    /// A second network for knet's link 1: a bridge `br1` in the hub and `eth1` =
    /// [`addr1`] in every node, beside link 0's.
    pub fn add_second_link(&mut self) -> Result<(), String> {
        self.add_network("br1", "eth1", "w", addr1)?;
        self.second_link = true;
        Ok(())
    }

    /// `ip link set <dev> up|down` in node `n`'s namespace: a link cut at the node.
    pub fn set_link(&self, n: u32, dev: &str, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        run(&["ip", "-n", &self.ns(n), "link", "set", dev, state]).map(|_| ())
    }

    fn add_ns(&mut self, name: &str) -> Result<(), String> {
        run(&["ip", "netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    pub fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }

    pub fn ns(&self, n: u32) -> String {
        format!("{}n{n}", self.prefix)
    }

    pub fn node_dir(&self, n: u32) -> PathBuf {
        self.dir.join(format!("n{n}"))
    }

    pub fn log_path(&self, n: u32) -> PathBuf {
        self.node_dir(n).join("log/corosync.log")
    }

    pub fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    /// The same corosync.conf for every node (as a real cluster has), but with this node's
    /// logfile and state directory: udpu, 10.200.0.1N, nodeid N.
    pub fn write_conf(&self, n: u32, nodes: u32) -> PathBuf {
        let mut nodelist = String::new();
        for i in 1..=nodes {
            let votes = self
                .quorum_votes
                .iter()
                .find(|(n, _)| *n == i)
                .map(|(_, v)| format!("\t\tquorum_votes: {v}\n"))
                .unwrap_or_default();
            // Several links need names (corosync refuses them without); Pacemaker's
            // node names come from here too.
            let name = match (self.node_names, self.second_link) {
                (Some(p), _) => format!("\t\tname: {p}{i}\n"),
                (None, true) => format!("\t\tname: node{i}\n"),
                (None, false) => String::new(),
            };
            let link1 = if self.second_link {
                format!("\t\tring1_addr: {}\n", addr1(i))
            } else {
                String::new()
            };
            nodelist.push_str(&format!(
                "\tnode {{\n\t\tring0_addr: {}\n{link1}\t\tnodeid: {i}\n{name}{votes}\t}}\n",
                addr(i)
            ));
        }
        let crypto = self
            .crypto_for
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, c)| c.clone())
            .or_else(|| self.crypto.clone())
            .unwrap_or_else(|| "\tcrypto_cipher: none\n\tcrypto_hash: none\n".into());
        let text = format!(
            "totem {{\n\tversion: 2\n\tcluster_name: totemd-test\n\ttransport: {}\n\
             {crypto}{}}}\n\
             nodelist {{\n{nodelist}}}\n\
             quorum {{\n\tprovider: corosync_votequorum\n}}\n\
             logging {{\n\tto_logfile: yes\n\tlogfile: {}\n\tto_stderr: no\n\tto_syslog: no\n\
             \ttimestamp: hires\n\tdebug: off\n}}\n\
             system {{\n\tstate_dir: {}\n{}}}\n{}",
            self.transport,
            self.totem_extra,
            self.log_path(n).display(),
            self.node_dir(n).join("state").display(),
            self.ipc_type
                .map(|t| format!("\tqb_ipc_type: {t}\n"))
                .unwrap_or_default(),
            self.extra_conf
        );
        let path = self.node_dir(n).join("corosync.conf");
        std::fs::write(&path, text).expect("write corosync.conf");
        path
    }

    fn spawn(&mut self, n: u32, script: String) -> u32 {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node_dir(n).join("log/stdout"))
            .expect("stdout file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(n), "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.push((n, child));
        pid
    }

    /// A directory of its own on every node, owned by `owner` (user:group), bound over
    /// `target` for everything started on the node from now on (`ip netns exec` gives each
    /// command its own mount namespace, so every command binds again).
    pub fn add_private_dir(&mut self, sub: &str, target: &str, owner: Option<&str>) {
        for n in 1..=self.nodes {
            let dir = self.node_dir(n).join(sub);
            std::fs::create_dir_all(&dir).expect("private dir");
            if let Some(owner) = owner {
                run(&["chown", "-R", owner, &dir.display().to_string()]).expect("chown");
            }
        }
        self.private_dirs.push((sub.to_owned(), target.to_owned()));
    }

    /// The shell words that bind node `n`'s private /run and directories.
    fn binds(&self, n: u32) -> String {
        let mut s = format!(
            "mount --bind '{}' /run && ",
            self.node_dir(n).join("run").display()
        );
        for (sub, target) in &self.private_dirs {
            s.push_str(&format!(
                "mount --bind '{}' '{target}' && ",
                self.node_dir(n).join(sub).display()
            ));
        }
        s
    }

    /// Any program on node `n`, with the node's binds; killed with the lab.
    pub fn spawn_program(&mut self, n: u32, command: &str) -> u32 {
        let script = format!("{}exec {command}", self.binds(n));
        self.spawn(n, script)
    }

    /// Real corosync on node `n`, in a private /run; `exec` keeps its pid the child's.
    pub fn spawn_corosync(&mut self, n: u32, nodes: u32) -> u32 {
        let conf = self.write_conf(n, nodes);
        let script = format!(
            "{}exec {COROSYNC} -f -c '{}'",
            self.binds(n),
            conf.display()
        );
        self.spawn(n, script)
    }

    /// totemd on node `n`.
    pub fn spawn_totemd(&mut self, n: u32, nodes: u32) -> u32 {
        self.spawn_totemd_with(n, nodes, &[])
    }

    /// totemd on node `n` with extra arguments.
    pub fn spawn_totemd_with(&mut self, n: u32, nodes: u32, args: &[&str]) -> u32 {
        let conf = self.write_conf(n, nodes);
        // Only where programs beside it need the same directories (Pacemaker's /dev/shm).
        let binds = if self.private_dirs.is_empty() {
            String::new()
        } else {
            self.binds(n)
        };
        let script = format!(
            "{binds}exec '{}' -f -c '{}' {}",
            env!("CARGO_BIN_EXE_totemd"),
            conf.display(),
            args.join(" ")
        );
        self.spawn(n, script)
    }

    /// Where node `n`'s totemd writes its `--status-file`.
    pub fn status_path(&self, n: u32) -> PathBuf {
        self.node_dir(n).join("status.json")
    }

    /// totemd on node `n`, writing its status file.
    pub fn spawn_totemd_status(&mut self, n: u32, nodes: u32) -> u32 {
        let status = self.status_path(n).display().to_string();
        self.spawn_totemd_with(n, nodes, &["--status-file", &status])
    }

    /// Node `n`'s status file, parsed.
    pub fn status(&self, n: u32) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.status_path(n)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Polls node `n`'s status file until `pred` holds; returns that status.
    pub fn wait_status(
        &self,
        n: u32,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, String> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.status(n).filter(|s| pred(s)) {
                return Ok(s);
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "node {n}: status {:?} not as wanted in {timeout:?}; log:\n{}",
                    self.status(n),
                    self.log(n)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. "TERM") to node `n`'s process and waits up to 10 s for it to exit;
    /// returns its exit code.
    pub fn stop(&mut self, n: u32, signal: &str) -> Option<i32> {
        let i = self.children.iter().rposition(|(m, _)| *m == n)?;
        self.stop_at(i, signal)
    }

    /// [`Lab::stop`] for the process `pid` started by the lab.
    pub fn stop_pid(&mut self, pid: u32, signal: &str) -> Option<i32> {
        let i = self.children.iter().position(|(_, c)| c.id() == pid)?;
        self.stop_at(i, signal)
    }

    /// Waits up to `timeout` for the lab's process `pid` to exit by itself; its exit code.
    pub fn wait_exit(&mut self, pid: u32, timeout: Duration) -> Option<i32> {
        let i = self.children.iter().position(|(_, c)| c.id() == pid)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.children[i].1.try_wait() {
                self.children.remove(i);
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stop_at(&mut self, i: usize, signal: &str) -> Option<i32> {
        let (_, mut child) = self.children.remove(i);
        let _ = run(&["kill", "-s", signal, &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Is node `n`'s latest process still running?
    pub fn running(&mut self, n: u32) -> bool {
        self.children
            .iter_mut()
            .rev()
            .find(|(m, _)| *m == n)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// A command inside node `n`'s namespace with its private /run (corosync's tools find
    /// the daemon's IPC through the namespace's abstract sockets).
    pub fn tool(&self, n: u32, cmd: &str) -> String {
        self.try_tool(n, cmd).unwrap_or_else(|e| e)
    }

    /// [`Lab::tool`], telling a failure (its exit status and stderr) from success.
    pub fn try_tool(&self, n: u32, cmd: &str) -> Result<String, String> {
        let script = format!("{}{cmd}", self.binds(n));
        run(&["ip", "netns", "exec", &self.ns(n), "sh", "-c", &script])
    }

    /// [`Lab::tool`]'s stdout, stderr and exit code (-1 for a signal).
    pub fn tool_output(&self, n: u32, cmd: &str) -> (String, String, i32) {
        let script = format!("{}exec {cmd}", self.binds(n));
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(n), "sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    /// Captures the bridge into `ring.pcap` (best effort: tcpdump may be missing).
    pub fn start_capture(&mut self) {
        let pcap = self.dir.join("ring.pcap");
        let err = self.dir.join("tcpdump.stderr");
        let Ok(errf) = std::fs::File::create(&err) else {
            return;
        };
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.hub(),
                "tcpdump",
                "-i",
                "br0",
                "-B",
                "65536",
                "-Z",
                "root",
                "-U",
                "-w",
            ])
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errf)
            .spawn();
        if let Ok(c) = child {
            self.tcpdump = Some(c);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline
                && !std::fs::read_to_string(&err)
                    .unwrap_or_default()
                    .contains("listening on")
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the capture (tcpdump flushes on SIGINT); the pcap's path, if one was taken.
    pub fn stop_capture(&mut self) -> Option<PathBuf> {
        let mut t = self.tcpdump.take()?;
        let _ = run(&["kill", "-s", "INT", &t.id().to_string()]);
        let _ = t.wait();
        Some(self.dir.join("ring.pcap"))
    }

    /// Polls node `n`'s log until `pred` holds; the time it took.
    pub fn wait_log(
        &self,
        n: u32,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if pred(&self.log(n)) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "node {n}: condition not met in {timeout:?}; log:\n{}",
                    self.log(n)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Where each node's log ended when taken ([`Lab::log_marks`]): what is logged after it is
/// what a step of a test caused.
pub struct LogMarks(Vec<usize>);

impl LogMarks {
    /// The part of node `n`'s `log` written after the mark.
    pub fn since(&self, log: &str, n: u32) -> String {
        let at = self.0.get(n as usize - 1).copied().unwrap_or(0);
        log.get(at..).unwrap_or("").to_owned()
    }
}

impl Lab {
    /// Marks where every node's log ends now.
    pub fn log_marks(&self) -> LogMarks {
        LogMarks((1..=self.nodes).map(|n| self.log(n).len()).collect())
    }
}

/// What the kernel says about a process: state, CPU ticks, scheduling and where it
/// sleeps (`/proc/PID/stat`, `wchan`) — the difference between a daemon that hangs, one
/// that spins and one that waits for input.
fn process_report(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name, from field 3 (state) on.
    let rest: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split(' ').collect())
        .unwrap_or_default();
    let field = |n: usize| rest.get(n - 3).copied().unwrap_or("?");
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    format!(
        "pid {pid}: state {} utime {} stime {} rt_priority {} policy {} wchan {wchan:?}",
        field(3),
        field(14),
        field(15),
        field(40),
        field(41)
    )
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (n, c) in self.children.iter_mut() {
                let alive = matches!(c.try_wait(), Ok(None));
                eprintln!(
                    "--- node {n}: {}",
                    if alive {
                        process_report(c.id())
                    } else {
                        format!("pid {} has exited", c.id())
                    }
                );
            }
        }
        let mut pids = Vec::new();
        for (_, mut c) in self.children.drain(..) {
            pids.push(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut t) = self.tcpdump.take() {
            let _ = run(&["kill", "-s", "INT", &t.id().to_string()]);
            let _ = t.wait();
        }
        // What those started in turn (Pacemaker's daemons, resource agents).
        for ns in &self.namespaces {
            if let Ok(list) = run(&["ip", "netns", "pids", ns]) {
                for pid in list.split_whitespace() {
                    let _ = run(&["kill", "-9", pid]);
                }
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
        // A killed corosync leaves libqb files named after its pid (corosync-lab.md).
        if let Ok(rd) = std::fs::read_dir("/dev/shm") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if pids.iter().any(|p| {
                    name.starts_with(&format!("qb-corosync-{p}-"))
                        || name.starts_with(&format!("qb-{p}-"))
                }) {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(p)
                    } else {
                        std::fs::remove_file(p)
                    };
                }
            }
        }
        if std::thread::panicking() {
            // The failing assertion shows one node's log; a hang is often explained by
            // another's (and by who exited, in its stdout).
            for n in 1..=self.nodes {
                for file in ["log/corosync.log", "log/stdout"] {
                    let text =
                        std::fs::read_to_string(self.node_dir(n).join(file)).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(40)..];
                    eprintln!(
                        "--- node {n} {file} (last {} lines)\n{}",
                        tail.len(),
                        tail.join("\n")
                    );
                }
            }
        }
        if self.keep || std::thread::panicking() {
            eprintln!("lab kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The UDP payloads of a little-endian pcap of Ethernet/IPv4 frames (the fixtures' form).
pub fn pcap_udp_payloads(path: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + caplen) else {
            break;
        };
        at += 16 + caplen;
        // Ethernet II, IPv4 without fragmentation, UDP.
        if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let udp = 14 + ihl;
        let Some(len) = frame
            .get(udp + 4..udp + 6)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            continue;
        };
        if let Some(p) = frame.get(udp + 8..udp + len) {
            out.push(p.to_vec());
        }
    }
    out
}

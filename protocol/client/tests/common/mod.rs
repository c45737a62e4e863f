//! Helpers shared by the client's integration tests (`tests/socket.rs`, `tests/shm.rs`):
//! hand-made servers' handshake side, and the real corosync 3.1.7 in a network namespace.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use totem_wire::ipc::setup::{ConnectionRequest, ConnectionResponse, IpcType};
use totem_wire::ipc::socket::abstract_name;
use totem_wire::ipc::{CsError, RequestHeader, ResponseHeader};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn unique_service() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "totem-client-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn listen(service: &str) -> UnixListener {
    UnixListener::bind_addr(
        &SocketAddr::from_abstract_name(abstract_name(service.as_bytes())).unwrap(),
    )
    .unwrap()
}

pub(crate) fn abstract_addr(name: &[u8]) -> SocketAddr {
    SocketAddr::from_abstract_name(abstract_name(name)).unwrap()
}

/// Accepts one connection, reads and checks the 24-byte request as libqb sends it.
pub(crate) fn accept_request(listener: &UnixListener) -> UnixStream {
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request = [0u8; 24];
    stream.read_exact(&mut request).unwrap();
    let request = ConnectionRequest::parse(&request).unwrap();
    assert_eq!(request.header, RequestHeader { id: -1, size: 24 });
    assert_eq!(request.max_msg_size, 1 << 20);
    stream
}

/// A connection response with 1 MiB messages and the three name fields as given
/// (socket type: control file, socket base, empty; shm: the three ring bases).
pub(crate) fn setup_response(error: i32, kind: IpcType, names: [&[u8]; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    ConnectionResponse {
        header: ResponseHeader {
            id: -1,
            size: 12328,
            error: CsError::from(error),
        },
        connection_type: kind,
        max_msg_size: 1 << 20,
        connection: 0xdead_beef,
        request: names[0].to_vec(),
        response: names[1].to_vec(),
        event: names[2].to_vec(),
    }
    .emit(&mut out);
    out
}

/// A server that answers the handshake with `response` (or closes at once on `None`).
pub(crate) fn one_shot_server(service: &str, response: Option<Vec<u8>>) -> JoinHandle<()> {
    let listener = listen(service);
    std::thread::spawn(move || {
        let mut stream = accept_request(&listener);
        if let Some(r) = response {
            stream.write_all(&r).unwrap();
            // Keep the stream open until the client has read the response and gone.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    })
}

/// A message with a 24-byte response header (`id`, `size`, `error` 1 = CS_OK) and `body`.
pub(crate) fn response_message(id: i32, body: &[u8]) -> Vec<u8> {
    let size = 24 + body.len();
    let mut m = vec![0u8; 24];
    m[..4].copy_from_slice(&id.to_le_bytes());
    m[8..12].copy_from_slice(&(size as i32).to_le_bytes());
    m[16..20].copy_from_slice(&1i32.to_le_bytes());
    m.extend_from_slice(body);
    m
}

/// A header-only request (`size` 16).
pub(crate) fn request_message(id: i32) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m[..4].copy_from_slice(&id.to_le_bytes());
    m[8..12].copy_from_slice(&16i32.to_le_bytes());
    m
}

// ---- real corosync ----------------------------------------------------------------------

pub(crate) const COROSYNC: &str = "/usr/sbin/corosync";

/// corosync 3.1.7 with `system { qb_ipc_type: <type> }` (or without the option: `native`,
/// which is shm) in a network namespace of its own
/// (abstract socket names are per namespace) and a private /run (its pid file is compiled
/// in; corosync-lab.md). Everything is torn down on drop, also when the test fails.
pub(crate) struct Corosync {
    pub(crate) ns: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    netns_created: bool,
}

pub(crate) fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Corosync {
    /// Starts corosync with `qb_ipc_type` (`socket`, `shm`, `native`), or with corosync's
    /// default when `None`.
    pub(crate) fn start(qb_ipc_type: Option<&str>) -> Result<Corosync, String> {
        // `tcf-` is the prefix `totem-conform cleanup` removes leftovers by.
        static N: AtomicU32 = AtomicU32::new(0);
        let ns = format!(
            "tcf-ipc-{}-{}-{}",
            qb_ipc_type.unwrap_or("default"),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ipc_type_line = qb_ipc_type
            .map(|t| format!("\tqb_ipc_type: {t}\n"))
            .unwrap_or_default();
        let dir = tempfile::Builder::new()
            .prefix("totem-ipc-corosync-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut me = Corosync {
            ns,
            dir,
            child: None,
            netns_created: false,
        };
        run(&["ip", "netns", "add", &me.ns])?;
        me.netns_created = true;
        run(&["ip", "-n", &me.ns, "link", "set", "lo", "up"])?;
        let d = me.dir.path();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        let conf = d.join("corosync.conf");
        std::fs::write(
            &conf,
            format!(
                "totem {{\n\tversion: 2\n\tcluster_name: totem-ipc-test\n\ttransport: udpu\n\
                 \tcrypto_cipher: none\n\tcrypto_hash: none\n}}\n\
                 nodelist {{\n\tnode {{\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t}}\n}}\n\
                 quorum {{\n\tprovider: corosync_votequorum\n}}\n\
                 logging {{\n\tto_logfile: yes\n\tlogfile: {log}\n\tto_stderr: no\n\
                 \tto_syslog: no\n\ttimestamp: hires\n}}\n\
                 system {{\n\tstate_dir: {state}\n{ipc_type_line}}}\n",
                log = d.join("corosync.log").display(),
                state = d.join("state").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let script = format!(
            "mount --bind '{}' /run && exec {COROSYNC} -f -c '{}'",
            d.join("run").display(),
            conf.display()
        );
        let out = std::fs::File::create(d.join("corosync.stdout")).map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &me.ns, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("corosync: {e}"))?;
        me.child = Some(child);
        Ok(me)
    }

    pub(crate) fn log(&self) -> String {
        ["corosync.log", "corosync.stdout"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// corosync's pid (`ip netns exec` and `sh -c ... exec` both exec in place).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `program args` in corosync's namespace, killed after `limit`.
    pub(crate) fn run_in_namespace(
        &self,
        program: &Path,
        args: &[&str],
        limit: Duration,
    ) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + limit;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Corosync {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // This pid is corosync. SIGTERM lets it remove its /dev/shm blackbox; SIGKILL
            // if it hangs.
            let pid = child.id();
            let _ = run(&["kill", "-TERM", &pid.to_string()]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
            if let Ok(entries) = std::fs::read_dir("/dev/shm") {
                let prefix = format!("qb-corosync-{pid}-");
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        if self.netns_created {
            let _ = run(&["ip", "netns", "del", &self.ns]);
        }
    }
}

/// The example next to this test binary: cargo builds examples with the tests.
pub(crate) fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("cpg_local_get");
    path.exists().then_some(path)
}

/// Why the real-corosync tests cannot run here, if they cannot.
pub(crate) fn skip_reason() -> Option<String> {
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        return Some("needs root (network namespaces)".into());
    }
    if !Path::new(COROSYNC).exists() {
        return Some(format!("{COROSYNC} is not installed"));
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 `ip` is not installed".into());
    }
    if example_binary().is_none() {
        return Some("examples/cpg_local_get was not built next to the tests".into());
    }
    None
}

/// Starts corosync (`qb_ipc_type` as [`Corosync::start`]), runs the example with `args`
/// in its namespace and returns its standard output once it succeeded; `None` (after
/// printing SKIPPED) when the machine cannot run it.
pub(crate) fn example_against_corosync(
    test: &str,
    qb_ipc_type: Option<&str>,
    args: &[&str],
) -> Option<String> {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED {test}: {why}");
        return None;
    }
    let example = example_binary().unwrap();
    let corosync = match Corosync::start(qb_ipc_type) {
        Ok(c) => c,
        Err(e) => panic!("cannot set up corosync: {e}"),
    };
    let mut all = vec!["--wait", "30"];
    all.extend_from_slice(args);
    let out = corosync.run_in_namespace(&example, &all, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\ncorosync:\n{}",
        out.status,
        corosync.log()
    );
    drop(corosync);
    Some(stdout)
}

/// Checks the example's lines (`key=value`) for every one of `want`.
pub(crate) fn assert_lines(stdout: &str, want: &[&str]) {
    let lines: Vec<&str> = stdout.lines().collect();
    for w in want {
        assert!(lines.contains(w), "{w} missing from:\n{stdout}");
    }
}

/// What LOCAL_GET + FINALIZE must print over every IPC type: nodeid 1, CS_OK, 1 MiB
/// messages, no flow control, root's credentials (corosync runs as root), and
/// `ipc_type=<ipc_type>`.
pub(crate) fn assert_local_get(stdout: &str, ipc_type: &str) {
    assert_lines(
        stdout,
        &[
            &format!("ipc_type={ipc_type}"),
            "local_nodeid=1",
            "finalize=CS_OK",
            "max_msg_size=1048576",
            "flow_control=Open",
        ],
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("server_pid=") && l.ends_with("server_uid=0 server_gid=0")),
        "{stdout}"
    );
}

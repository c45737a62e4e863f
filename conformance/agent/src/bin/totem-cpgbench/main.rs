//! `totem-cpgbench`: a cpgbench-like ladder over the real libcpg, loaded at run time.
//!
//! `run` joins a group and, for each message size, multicasts as fast as
//! `cpg_mcast_joined` accepts (retrying `CS_ERR_TRY_AGAIN` after a short back-off) while a
//! second thread dispatches, as corosync's `test/cpgbench.c` does. Each payload carries a
//! monotonic send time, so the latency from send to self-delivery is measured from the
//! process's own deliveries. Throughput is counted from deliveries, not sends. One JSON
//! line per size (`"event":"size"`), framed by `start` and `done` lines. A size whose
//! connection fails (the daemon dropped the client) is an `"event":"error"` line with its
//! `size`, and the ladder goes on over a new connection; any other failure is one `error`
//! line and exit code 1.
//!
//! `compare` puts two such outputs side by side (Markdown table, `results.json`).
//!
//! Exit codes: 0 done, 1 failure during the run, 2 usage, 3 libcpg cannot be loaded.

mod compare;
// The agent's libcpg bindings: one set of hand-written prototypes for both binaries.
#[path = "../../ffi.rs"]
#[allow(dead_code)]
mod ffi;
mod rusage;

/// `CS_OK`, `CS_ERR_TRY_AGAIN` (corotypes.h) and `CS_DISPATCH_ALL`.
const CS_OK: std::ffi::c_int = 1;
const CS_ERR_TRY_AGAIN: std::ffi::c_int = 6;
const CS_DISPATCH_ALL: std::ffi::c_int = 2;
mod measure;

use std::ffi::c_void;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use measure::{now_ns, RecordMeta, SendCounts, SizeRecord, Step, HEADER_LEN};

const EXIT_FAILED: i32 = 1;
const EXIT_NO_LIBCPG: i32 = 3;
/// The ladder of sizes: cpgbench's, 64 B times powers of 5.
const DEFAULT_SIZES: [usize; 6] = [64, 320, 1600, 8000, 40000, 200000];
/// `cpg_max_atomic_msgsize_get` on corosync 3.1.7 (corosync-lab.md): larger messages are
/// split by libcpg into PARTIAL_MCASTs, which this benchmark does not measure.
const MAX_SIZE: usize = 1_047_552;

#[derive(Debug, Parser)]
#[command(
    name = "totem-cpgbench",
    about = "cpgbench-like CPG throughput and latency ladder over libcpg (loaded at run time)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the ladder against the CPG service of this network namespace.
    Run(RunArgs),
    /// Compare two ladders written by `run` (baseline vs candidate).
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Guarantee {
    Unordered,
    Fifo,
    Agreed,
    Safe,
}

impl Guarantee {
    /// `cpg_guarantee_t` (cpg.h).
    fn raw(self) -> i32 {
        match self {
            Self::Unordered => 0,
            Self::Fifo => 1,
            Self::Agreed => 2,
            Self::Safe => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Unordered => "unordered",
            Self::Fifo => "fifo",
            Self::Agreed => "agreed",
            Self::Safe => "safe",
        }
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Message sizes in bytes, comma separated (24 to 1047552).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_values_t = DEFAULT_SIZES)]
    sizes: Vec<usize>,
    /// Measured seconds per size.
    #[arg(long, default_value_t = 4.0, value_parser = parse_secs)]
    duration: f64,
    /// Unmeasured seconds of sending before each size's window.
    #[arg(long, default_value_t = 0.5, value_parser = parse_secs)]
    warmup: f64,
    /// Longest wait, after a size's window, for its own messages still in flight.
    #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
    drain: f64,
    /// CPG group to join.
    #[arg(long, default_value = "cpg_bm")]
    group: String,
    /// Start only once the group has this many members (one per loaded node).
    #[arg(long, default_value_t = 1)]
    members: usize,
    /// Delivery guarantee passed to cpg_mcast_joined (cpgbench uses agreed).
    #[arg(long, value_enum, default_value_t = Guarantee::Agreed)]
    guarantee: Guarantee,
    /// Label copied into every record (e.g. corosync, totemd).
    #[arg(long, default_value = "")]
    label: String,
    /// Seconds to keep retrying cpg_initialize and waiting for the group.
    #[arg(long, default_value_t = 15.0, value_parser = parse_secs)]
    connect_timeout: f64,
    /// At most this many own messages in flight (sent, not yet delivered back); 0 sends
    /// as fast as cpg_mcast_joined accepts (the flood of cpgbench), 1 is a ping-pong
    /// that measures unloaded latency.
    #[arg(long, default_value_t = 0)]
    outstanding: u64,
    /// Microseconds to sleep after CS_ERR_TRY_AGAIN before retrying (0: yield).
    #[arg(long, default_value_t = 50)]
    backoff_us: u64,
    /// Check the arguments and print the records a run would print, with zero counts,
    /// without loading libcpg.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// JSON lines of the baseline run (repeat for several rounds: medians are compared).
    #[arg(long, required = true)]
    base: Vec<PathBuf>,
    /// JSON lines of the candidate run (repeatable, like --base).
    #[arg(long, required = true)]
    candidate: Vec<PathBuf>,
    #[arg(long, default_value = "corosync")]
    base_label: String,
    #[arg(long, default_value = "totemd")]
    candidate_label: String,
    /// Write both ladders, the ratios and the metadata here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// KEY=VALUE copied into the JSON's `meta` (repeatable).
    #[arg(long = "meta", value_parser = parse_kv)]
    meta: Vec<(String, String)>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    if !(HEADER_LEN..=MAX_SIZE).contains(&n) {
        return Err(format!("{n} is outside {HEADER_LEN}..={MAX_SIZE}"));
    }
    Ok(n)
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds (0 to 3600)")),
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    // Nobody to report to when stdout is gone.
    let _ = writeln!(out, "{v}").and_then(|()| out.flush());
}

fn fail(code: i32, error: String) -> ! {
    emit(&json!({"event": "error", "error": error}));
    std::process::exit(code);
}

/// `cs_error_t` names (corotypes.h) for messages.
fn rc_name(rc: i32) -> String {
    let n = match rc {
        1 => "CS_OK",
        2 => "CS_ERR_LIBRARY",
        3 => "CS_ERR_VERSION",
        4 => "CS_ERR_INIT",
        5 => "CS_ERR_TIMEOUT",
        6 => "CS_ERR_TRY_AGAIN",
        7 => "CS_ERR_INVALID_PARAM",
        8 => "CS_ERR_NO_MEMORY",
        9 => "CS_ERR_BAD_HANDLE",
        11 => "CS_ERR_ACCESS",
        12 => "CS_ERR_NOT_EXIST",
        14 => "CS_ERR_EXIST",
        20 => "CS_ERR_MESSAGE_ERROR",
        26 => "CS_ERR_TOO_BIG",
        _ => return format!("cs_error {rc}"),
    };
    n.to_owned()
}

/// What the callbacks (dispatch thread) and the sender (main thread) share.
#[derive(Default)]
struct Shared {
    step: Step,
    expected_len: usize,
    members: usize,
    joined: bool,
}

static SHARED: LazyLock<Mutex<Shared>> = LazyLock::new(Mutex::default);
/// Signalled on every own delivery (for `--outstanding`).
static DELIVERED: Condvar = Condvar::new();
/// `(nodeid, pid)` of this client, as the daemon reports its deliveries.
static ME: OnceLock<(u32, u32)> = OnceLock::new();

fn shared() -> MutexGuard<'static, Shared> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn on_deliver(
    _h: ffi::CpgHandle,
    _group: *const ffi::CpgName,
    nodeid: u32,
    pid: u32,
    msg: *mut c_void,
    len: usize,
) {
    let now = now_ns();
    let own = ME.get() == Some(&(nodeid, pid));
    let bytes = ffi::bytes(msg, len);
    let mut s = shared();
    let expected = s.expected_len;
    s.step.deliver(own, bytes, expected, now);
    drop(s);
    if own {
        DELIVERED.notify_one();
    }
}

extern "C" fn on_confchg(
    _h: ffi::CpgHandle,
    _group: *const ffi::CpgName,
    members: *const ffi::CpgAddress,
    n_members: usize,
    _left: *const ffi::CpgAddress,
    _n_left: usize,
    _joined: *const ffi::CpgAddress,
    _n_joined: usize,
) {
    let list = ffi::addresses(members, n_members);
    let me = ME.get().copied();
    let mut s = shared();
    s.members = list.len();
    s.joined = list.iter().any(|a| Some((a.nodeid, a.pid)) == me);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.cmd {
        Cmd::Run(a) => run(&a),
        Cmd::Compare(a) => compare_cmd(&a),
    }
}

fn compare_cmd(a: &CompareArgs) {
    let base = compare::Ladder::read_many(&a.base_label, &a.base);
    let cand = compare::Ladder::read_many(&a.candidate_label, &a.candidate);
    print!("{}", compare::table(&base, &cand));
    if let Some(p) = &a.json {
        let v = compare::results(&base, &cand, &a.meta);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        if let Err(e) = std::fs::write(p, text + "\n") {
            eprintln!("totem-cpgbench: cannot write {}: {e}", p.display());
            std::process::exit(EXIT_FAILED);
        }
    }
}

fn start_line(a: &RunArgs, nodeid: u32, lib: &str) -> Value {
    json!({
        "event": "start",
        "label": a.label,
        "lib": lib,
        "nodeid": nodeid,
        "pid": std::process::id(),
        "group": a.group,
        "sizes": a.sizes,
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "guarantee": a.guarantee.name(),
        "members": a.members,
        "outstanding": a.outstanding,
        "dry_run": a.dry_run,
    })
}

fn meta<'a>(a: &'a RunArgs, size: usize) -> RecordMeta<'a> {
    RecordMeta {
        label: &a.label,
        size,
        guarantee: a.guarantee.name(),
        duration_s: a.duration,
        outstanding: a.outstanding,
        dry_run: a.dry_run,
    }
}

fn run(a: &RunArgs) {
    if a.group.len() > ffi::CPG_MAX_NAME_LENGTH {
        fail(
            2,
            format!("group name {:?} is longer than 128 bytes", a.group),
        );
    }
    let group = ffi::CpgName::new(a.group.as_bytes(), None);
    if a.dry_run {
        emit(&start_line(a, 0, ""));
        for &size in &a.sizes {
            let r = SizeRecord::new(&meta(a, size), &mut Step::default(), SendCounts::default());
            emit(&serde_json::to_value(&r).unwrap_or_default());
        }
        emit(&json!({"event": "done", "failed_sizes": []}));
        return;
    }
    let cpg = ffi::load().unwrap_or_else(|e| fail(EXIT_NO_LIBCPG, e));
    let mut session = Session::open(cpg, a, &group).unwrap_or_else(|e| fail(EXIT_FAILED, e));
    emit(&start_line(a, session.nodeid, &ffi::library_name()));

    let mut failed_sizes = Vec::new();
    for (i, &size) in a.sizes.iter().enumerate() {
        match step(cpg, session.handle, a, i as u32 + 1, size, &|| {
            session.error()
        }) {
            Ok(r) => emit(&serde_json::to_value(&r).unwrap_or_default()),
            Err(e) => {
                // The daemon dropped us (e.g. a bounded event queue overflowed): report the
                // size as failed and go on with the next one on a new connection.
                emit(
                    &json!({"event": "error", "size": size, "error": format!("size {size}: {e}")}),
                );
                failed_sizes.push(size);
                session.close(false);
                session = Session::open(cpg, a, &group).unwrap_or_else(|e| fail(EXIT_FAILED, e));
            }
        }
    }
    session.close(true);
    emit(&json!({"event": "done", "failed_sizes": failed_sizes}));
}

/// One libcpg connection, joined to the group, with its dispatch thread.
struct Session {
    cpg: &'static ffi::Cpg,
    handle: ffi::CpgHandle,
    nodeid: u32,
    group: ffi::CpgName,
    stop: Arc<AtomicBool>,
    failed: Arc<Mutex<Option<i32>>>,
    dispatcher: Option<std::thread::JoinHandle<()>>,
}

impl Session {
    fn open(cpg: &'static ffi::Cpg, a: &RunArgs, group: &ffi::CpgName) -> Result<Self, String> {
        let timeout = Duration::from_secs_f64(a.connect_timeout);
        let handle = connect(cpg, timeout)?;
        let (rc, nodeid) = cpg.local_get(handle);
        if rc != CS_OK {
            return Err(format!("cpg_local_get: {}", rc_name(rc)));
        }
        let _ = ME.set((nodeid, std::process::id()));
        let (rc, fd) = cpg.fd_get(handle);
        if rc != CS_OK {
            return Err(format!("cpg_fd_get: {}", rc_name(rc)));
        }
        {
            let mut s = shared();
            s.joined = false;
            s.members = 0;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(None::<i32>));
        let dispatcher = {
            let (stop, failed) = (stop.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if ffi::poll(&[fd], 50)[0] == 0 {
                        continue;
                    }
                    let rc = cpg.dispatch(handle, CS_DISPATCH_ALL);
                    if rc != CS_OK && rc != CS_ERR_TRY_AGAIN {
                        *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(rc);
                        return;
                    }
                }
            })
        };
        let mut session = Self {
            cpg,
            handle,
            nodeid,
            group: *group,
            stop,
            failed,
            dispatcher: Some(dispatcher),
        };
        let deadline = Instant::now() + timeout;
        let mut rc = cpg.join(handle, group);
        // The daemon may still be cleaning up this process's previous connection.
        while rc == CS_ERR_TRY_AGAIN && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            rc = cpg.join(handle, group);
        }
        if rc != CS_OK {
            session.close(false);
            return Err(format!("cpg_join: {}", rc_name(rc)));
        }
        loop {
            if let Some(rc) = session.error() {
                session.close(false);
                return Err(format!("cpg_dispatch: {}", rc_name(rc)));
            }
            let (joined, members) = {
                let s = shared();
                (s.joined, s.members)
            };
            if joined && members >= a.members {
                return Ok(session);
            }
            if Instant::now() > deadline {
                session.close(false);
                return Err(format!(
                    "group {:?}: joined={joined}, {members} of {} members after {:.1} s",
                    a.group, a.members, a.connect_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The error that stopped the dispatch thread, if one did.
    fn error(&self) -> Option<i32> {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&mut self, leave: bool) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.dispatcher.take() {
            let _ = t.join();
        }
        if leave {
            let _ = self.cpg.leave(self.handle, &self.group);
        }
        let _ = self.cpg.finalize(self.handle);
    }
}

/// cpg_initialize until the daemon answers (it may still be starting).
fn connect(cpg: &ffi::Cpg, timeout: Duration) -> Result<ffi::CpgHandle, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let (rc, h) = cpg.initialize(ffi::CpgCallbacks {
            deliver: Some(on_deliver),
            confchg: Some(on_confchg),
        });
        if rc == CS_OK {
            return Ok(h);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "cpg_initialize: {} for {:.1} s (is a CPG daemon running in this network namespace?)",
                rc_name(rc),
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One size: warm-up, measured window, then the drain of what is still in flight.
fn step(
    cpg: &ffi::Cpg,
    h: ffi::CpgHandle,
    a: &RunArgs,
    id: u32,
    size: usize,
    dispatch_error: &dyn Fn() -> Option<i32>,
) -> Result<SizeRecord, String> {
    let mut buf = vec![0xa5u8; size];
    let cpu0 = rusage::cpu_seconds();
    let t0 = now_ns();
    let window_start = t0 + (a.warmup * 1e9) as u64;
    let window_end = window_start + (a.duration * 1e9) as u64;
    {
        let mut s = shared();
        s.step = Step::new(id, window_start, window_end);
        s.expected_len = size;
    }
    let mut counts = SendCounts::default();
    let backoff = Duration::from_micros(a.backoff_us);
    let guarantee = a.guarantee.raw();
    let mut n = 0u64;
    loop {
        let now = now_ns();
        if now >= window_end {
            break;
        }
        n += 1;
        if n % 256 == 0 {
            if let Some(rc) = dispatch_error() {
                return Err(format!("cpg_dispatch: {}", rc_name(rc)));
            }
        }
        if a.outstanding > 0 {
            let s = shared();
            if counts.total - s.step.own_delivered >= a.outstanding {
                // Wait for a delivery, then look at the clock again.
                drop(DELIVERED.wait_timeout(s, Duration::from_millis(20)));
                if let Some(rc) = dispatch_error() {
                    return Err(format!("cpg_dispatch: {}", rc_name(rc)));
                }
                continue;
            }
        }
        measure::stamp(&mut buf, id, counts.total, now);
        match cpg.mcast_joined(h, guarantee, &[&buf[..]]) {
            CS_OK => {
                counts.total += 1;
                if now >= window_start {
                    counts.in_window += 1;
                }
            }
            CS_ERR_TRY_AGAIN => {
                counts.try_again += 1;
                if backoff.is_zero() {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(backoff);
                }
            }
            rc => return Err(format!("cpg_mcast_joined: {}", rc_name(rc))),
        }
    }
    let deadline = Instant::now() + Duration::from_secs_f64(a.drain);
    while shared().step.own_delivered < counts.total && Instant::now() < deadline {
        if let Some(rc) = dispatch_error() {
            return Err(format!("cpg_dispatch: {}", rc_name(rc)));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut s = shared();
    let mut done = std::mem::take(&mut s.step);
    drop(s);
    let mut r = SizeRecord::new(&meta(a, size), &mut done, counts);
    r.client_cpu_s = measure::round2(rusage::cpu_seconds() - cpu0);
    Ok(r)
}

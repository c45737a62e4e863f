//! Where records go: a bounded in-memory queue per process, drained by one writer thread
//! that appends whole pcapng blocks to the output file with `O_APPEND` (so several
//! processes can share it: each `write` of whole blocks lands in one piece). The calling
//! thread only copies the message and takes a mutex for a queue push.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use totem_wire::ipc::record::{
    pcapng_file_header, pcapng_packet, pcapng_packet_cut, Direction, LibqbCall, RecordHeader,
    RecordKind, FAILED_REQUEST_KEEP, FLAG_FAILED, FLAG_MORE, MAX_PIECE_LEN, RECORD_HEADER_LEN,
    SERVICE_LEN,
};

/// Bytes queued per process before records are dropped (and counted).
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// How long the exit handler waits for a write in progress before giving up.
const EXIT_FLUSH_WAIT: Duration = Duration::from_secs(2);
/// Offsets of `seq` and `dropped` in a queued block: 28 bytes of EPB header, then the
/// record header (`seq` @32, `dropped` @36).
const SEQ_AT: usize = 28 + 32;
const DROPPED_AT: usize = 28 + 36;

/// A setup message captured inside `qb_ipcc_connect`: direction, time (µs), the socket
/// call's result, bytes.
pub(crate) type SetupMessage = (Direction, u64, i64, Vec<u8>);

/// One record as a hook hands it over.
pub(crate) struct Record<'a> {
    pub(crate) kind: RecordKind,
    pub(crate) direction: Direction,
    pub(crate) call: LibqbCall,
    pub(crate) failed: bool,
    pub(crate) result: i64,
    /// Microseconds since the epoch.
    pub(crate) ts_us: u64,
    pub(crate) payload: &'a [u8],
}

struct State {
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    seq: u32,
    dropped: u32,
    writer_running: bool,
    /// libqb connection pointer → (connection number, service name).
    conns: BTreeMap<usize, (u32, [u8; SERVICE_LEN])>,
    next_conn: u32,
}

impl State {
    const fn new() -> State {
        State {
            queue: VecDeque::new(),
            queued_bytes: 0,
            seq: 0,
            dropped: 0,
            writer_running: false,
            conns: BTreeMap::new(),
            next_conn: 1,
        }
    }
}

static STATE: Mutex<State> = Mutex::new(State::new());
static WAKE: Condvar = Condvar::new();
/// Held while a batch is written, so that the exit flush never overtakes the writer.
/// Lock order: WRITE, then STATE.
static WRITE: Mutex<()> = Mutex::new(());
static OUTPUT: OnceLock<Option<PathBuf>> = OnceLock::new();

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // A panic while holding the lock cannot leave the queue inconsistent in a way that
    // matters more than losing records: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The output file, if recording is on (read once, at load).
pub(crate) fn enabled() -> bool {
    OUTPUT.get().is_some_and(|o| o.is_some())
}

/// Called once from the library constructor; whether recording is on (then the process
/// handlers must be registered).
pub(crate) fn init(output: Option<OsString>) -> bool {
    let path = output.filter(|p| !p.is_empty()).map(PathBuf::from);
    let on = path.is_some();
    let _ = OUTPUT.set(path);
    on
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A new connection: returns its number and queues the setup messages captured while
/// `qb_ipcc_connect` ran (and a failure record when it returned NULL).
pub(crate) fn connected(
    conn_ptr: usize,
    service: [u8; SERVICE_LEN],
    setup: Vec<SetupMessage>,
    failure: Option<(i64, u64)>,
    tid: u32,
) {
    let number = {
        let mut st = lock(&STATE);
        let n = st.next_conn;
        st.next_conn = st.next_conn.wrapping_add(1).max(1);
        if conn_ptr != 0 {
            st.conns.insert(conn_ptr, (n, service));
        }
        n
    };
    for (direction, ts_us, result, bytes) in &setup {
        push(
            number,
            service,
            tid,
            &Record {
                kind: RecordKind::Message(totem_wire::ipc::Channel::Setup),
                direction: *direction,
                call: LibqbCall::Connect,
                failed: *result < 0,
                result: *result,
                ts_us: *ts_us,
                payload: bytes,
            },
        );
    }
    if let Some((result, ts_us)) = failure {
        push(
            number,
            service,
            tid,
            &Record {
                kind: RecordKind::Message(totem_wire::ipc::Channel::Setup),
                direction: Direction::ToServer,
                call: LibqbCall::Connect,
                failed: true,
                result,
                ts_us,
                payload: &[],
            },
        );
    }
}

/// The connection number and service of a libqb connection pointer.
pub(crate) fn lookup(conn_ptr: usize, forget: bool) -> (u32, [u8; SERVICE_LEN]) {
    let mut st = lock(&STATE);
    let found = if forget {
        st.conns.remove(&conn_ptr)
    } else {
        st.conns.get(&conn_ptr).copied()
    };
    // A connection made before this library was loaded (impossible with LD_PRELOAD) or
    // inherited oddly: number 0, no service.
    found.unwrap_or((0, [0; SERVICE_LEN]))
}

/// Queues one record of connection `conn`: one packet, or several pieces when the message
/// is longer than libpcap reads back in one packet (`MAX_PIECE_LEN`). The pieces are
/// queued together, so they are written together, in one `write`, one after the other.
pub(crate) fn push(conn: u32, service: [u8; SERVICE_LEN], tid: u32, record: &Record<'_>) {
    // A failed request keeps only its head (FAILED_REQUEST_KEEP); the rest is accounted
    // for in the packet's original length.
    let cut =
        record.failed && record.kind == RecordKind::Message(totem_wire::ipc::Channel::Request);
    let (payload, cut_from) = if cut && record.payload.len() > FAILED_REQUEST_KEEP {
        (
            &record.payload[..FAILED_REQUEST_KEEP],
            Some(record.payload.len()),
        )
    } else {
        (record.payload, None)
    };
    let pieces: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(MAX_PIECE_LEN).collect()
    };
    let last = pieces.len() - 1;
    // Build the blocks before taking the lock: copying a 1 MiB message is the slow part.
    let mut blocks = Vec::with_capacity(pieces.len());
    let mut total = 0;
    for (index, piece) in pieces.into_iter().enumerate() {
        let mut flags = if record.failed { FLAG_FAILED } else { 0 };
        if index < last {
            flags |= FLAG_MORE;
        }
        let header = RecordHeader {
            kind: record.kind,
            direction: record.direction,
            call: record.call,
            flags,
            piece: index as u16,
            pid: std::process::id(),
            tid,
            conn,
            result: record.result,
            seq: 0,
            dropped: 0,
            service,
        };
        let mut packet = Vec::with_capacity(RECORD_HEADER_LEN + piece.len());
        header.emit(&mut packet);
        packet.extend_from_slice(piece);
        let mut block = Vec::with_capacity(packet.len() + 36);
        match cut_from {
            Some(full) => {
                pcapng_packet_cut(&mut block, record.ts_us, &packet, RECORD_HEADER_LEN + full);
            }
            None => pcapng_packet(&mut block, record.ts_us, &packet),
        }
        total += block.len();
        blocks.push(block);
    }

    let mut st = lock(&STATE);
    let seq = st.seq;
    st.seq = st.seq.wrapping_add(1);
    if st.queued_bytes + total > MAX_QUEUED_BYTES {
        st.dropped = st.dropped.saturating_add(1);
        return;
    }
    let dropped = st.dropped;
    for mut block in blocks {
        block[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_le_bytes());
        block[DROPPED_AT..DROPPED_AT + 4].copy_from_slice(&dropped.to_le_bytes());
        st.queue.push_back(block);
    }
    st.queued_bytes += total;
    if !st.writer_running {
        let spawned = std::thread::Builder::new()
            .name("ipc-record".into())
            .spawn(writer_loop);
        st.writer_running = spawned.is_ok();
    }
    drop(st);
    WAKE.notify_one();
}

fn writer_loop() {
    loop {
        {
            let mut st = lock(&STATE);
            while st.queue.is_empty() {
                st = WAKE.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
        let _w = lock(&WRITE);
        let batch = take_batch();
        write_batch(batch);
    }
}

fn take_batch() -> Vec<Vec<u8>> {
    let mut st = lock(&STATE);
    st.queued_bytes = 0;
    st.queue.drain(..).collect()
}

/// Appends `batch` to the output with one `write`. The file is opened per batch: a client
/// that closes every descriptor (daemons do) must not make us write into whatever it opens
/// next under the same number.
fn write_batch(batch: Vec<Vec<u8>>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    let Some(Some(path)) = OUTPUT.get() else {
        return;
    };
    let bytes: Vec<u8> = batch.concat();
    let written = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut file| {
            write_file_header_if_empty(&file)?;
            file.write_all(&bytes)
        });
    if written.is_err() {
        let mut st = lock(&STATE);
        st.dropped = st.dropped.saturating_add(n as u32);
    }
}

/// A file not created by `totem-inspect record-ipc` starts empty: the first writer (under
/// an exclusive lock, since several processes may race) writes the pcapng headers.
fn write_file_header_if_empty(file: &std::fs::File) -> std::io::Result<()> {
    if file.metadata()?.len() != 0 {
        return Ok(());
    }
    flock(file, true)?;
    let result = if file.metadata()?.len() == 0 {
        (&*file).write_all(&pcapng_file_header())
    } else {
        Ok(())
    };
    let _ = flock(file, false);
    result
}

/// At exit: wait (bounded) for the writer's batch in progress, then write what is left
/// from this thread.
pub(crate) fn flush_at_exit() {
    let deadline = Instant::now() + EXIT_FLUSH_WAIT;
    let guard = loop {
        match WRITE.try_lock() {
            Ok(g) => break Some(g),
            Err(TryLockError::Poisoned(p)) => break Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => break None,
        }
    };
    if let Some(_w) = guard {
        write_batch(take_batch());
    }
}

thread_local! {
    /// The locks taken in the fork prepare handler, released in the parent and child
    /// handlers (all three run on the forking thread).
    static FORK_GUARDS: RefCell<Option<(MutexGuard<'static, ()>, MutexGuard<'static, State>)>> =
        const { RefCell::new(None) };
}

/// `pthread_atfork` prepare: hold both locks so the child never inherits one mid-use.
pub(crate) fn before_fork() {
    let w = lock(&WRITE);
    let s = lock(&STATE);
    let _ = FORK_GUARDS.try_with(|g| *g.borrow_mut() = Some((w, s)));
}

pub(crate) fn after_fork_parent() {
    let _ = FORK_GUARDS.try_with(|g| g.borrow_mut().take());
}

/// In the child: an empty queue (the parent writes its own records), no
/// writer thread yet (threads do not survive fork), fresh counters. Connections stay: the
/// child may go on using an inherited one.
pub(crate) fn after_fork_child() {
    let _ = FORK_GUARDS.try_with(|g| {
        if let Some((w, mut s)) = g.borrow_mut().take() {
            s.queue.clear();
            s.queued_bytes = 0;
            s.seq = 0;
            s.dropped = 0;
            s.writer_running = false;
            drop(s);
            drop(w);
        }
    });
}

/// `flock` on the output file (sink's header check).
fn flock(file: &std::fs::File, exclusive: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_UN
    };
    // SAFETY: a valid open descriptor owned by `file`.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

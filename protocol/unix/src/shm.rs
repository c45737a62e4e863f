//! libqb's shared-memory ring buffers (the *shm* IPC type, ipc.md §1.6, §5.7), both ends:
//! files in `/dev/shm`, the data file mapped twice back to back, a process-shared glibc
//! semaphore in the header. The layout and arithmetic are `totem_wire::ipc::shm`'s; this
//! module owns the mappings and every `unsafe` they need.
//!
//! **The other end is not trusted.** A ring's files belong to the client (libqb chowns
//! them to it), so the client can scribble over every shared word or truncate a file
//! under our mapping:
//! - pointers and sizes read from shared memory are reduced modulo the ring and checked
//!   against the message limit before use, and every byte is copied out before it is
//!   parsed;
//! - a mapping whose file shrank would kill the process with SIGBUS on the next access.
//!   Every mapping is registered with a SIGBUS handler that, for an address inside a
//!   registered mapping, maps an anonymous page over the faulting one and flags the ring
//!   ([`ShmRing::faulted`]); the access then completes with zeros, the owner sees the flag
//!   and ends that connection. Wayland compositors guard client buffers the same way.
//!   Faults outside registered mappings go to the previous handler (by default: the
//!   process dies, as it would have).

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use totem_wire::ipc::shm as layout;

/// Mappings that may be guarded at once (two per ring, three rings per connection).
const GUARD_SLOTS: usize = 8192;

struct GuardSlot {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: GuardSlot = GuardSlot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};
static GUARDS: [GuardSlot; GUARD_SLOTS] = [EMPTY_SLOT; GUARD_SLOTS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS disposition before ours, for faults that are not in a guarded mapping.
static PREVIOUS_SIGBUS: OnceLock<Result<libc::sigaction, i32>> = OnceLock::new();

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Only atomics, mmap and sigaction here: all async-signal-safe system calls.
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    for slot in &GUARDS {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= slot.end.load(Ordering::Acquire) {
            continue;
        }
        // SAFETY: the page lies inside a mapping this module owns (registered until just
        // before it is unmapped); replacing it with zeroed anonymous memory only changes
        // what that mapping reads, which its owner treats as untrusted anyway.
        let p = unsafe {
            libc::mmap(
                (addr & !(page - 1)) as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        slot.faulted.store(true, Ordering::Release);
        if p != libc::MAP_FAILED {
            return;
        }
        break;
    }
    // Not ours (or the patch failed): hand over to what was there before.
    match PREVIOUS_SIGBUS.get() {
        Some(Ok(old)) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO, so it has
                // this signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number only.
                let f: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Back to the default action; returning re-runs the access, which now kills
            // the process with SIGBUS as it would have without us.
            // SAFETY: an all-zero sigaction with SIG_DFL is valid.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

fn install_sigbus_handler() -> io::Result<()> {
    let installed = PREVIOUS_SIGBUS.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: zeroed sigaction structs are valid; the handler has the SA_SIGINFO
        // signature and only makes async-signal-safe calls.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigbus as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut act.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &act, &mut old) == 0 {
                Ok(old)
            } else {
                Err(io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EINVAL))
            }
        }
    });
    match installed {
        Ok(_) => Ok(()),
        Err(e) => Err(io::Error::from_raw_os_error(*e)),
    }
}

/// A registered mapping: `len` bytes at `addr`, guarded against SIGBUS while registered,
/// unmapped on drop.
struct Mapping {
    addr: *mut u8,
    len: usize,
    slot: usize,
}

impl Mapping {
    fn guard(addr: *mut u8, len: usize) -> io::Result<Mapping> {
        install_sigbus_handler()?;
        for (i, slot) in GUARDS.iter().enumerate() {
            if slot
                .start
                .compare_exchange(0, addr as usize, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.faulted.store(false, Ordering::Release);
                slot.end.store(addr as usize + len, Ordering::Release);
                return Ok(Mapping { addr, len, slot: i });
            }
        }
        // SAFETY: the caller just mapped `len` bytes at `addr` and hands them to us.
        unsafe { libc::munmap(addr.cast(), len) };
        Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "too many shared-memory mappings to guard",
        ))
    }

    fn faulted(&self) -> bool {
        GUARDS[self.slot].faulted.load(Ordering::Acquire)
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.len && offset % 4 == 0);
        // SAFETY: 4-aligned (page-aligned base), inside the mapping, which outlives
        // `&self`; shared words are only ever accessed through atomics.
        unsafe { AtomicU32::from_ptr(self.addr.add(offset).cast()) }
    }

    fn i32_at(&self, offset: usize) -> &AtomicI32 {
        assert!(offset + 4 <= self.len && offset % 4 == 0);
        // SAFETY: as `u32_at`.
        unsafe { AtomicI32::from_ptr(self.addr.add(offset).cast()) }
    }

    /// A NUL-terminated string field of `len` bytes at `offset`, without its NUL (at most
    /// `len - 1` bytes even if the other end left no NUL).
    fn c_string_at(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        let mut out = vec![0u8; len];
        // SAFETY: bounds checked above.
        unsafe { std::ptr::copy_nonoverlapping(self.addr.add(offset), out.as_mut_ptr(), len) };
        let end = out.iter().position(|&b| b == 0).unwrap_or(len - 1);
        out.truncate(end);
        out
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let slot = &GUARDS[self.slot];
        slot.end.store(0, Ordering::Release);
        slot.start.store(0, Ordering::Release);
        // SAFETY: we own this mapping and nothing refers into it after drop (every
        // reference handed out borrows the ring).
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

fn map_shared(file: &File, len: usize) -> io::Result<Mapping> {
    // SAFETY: a fresh mapping chosen by the kernel; failure is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Mapping::guard(p.cast(), len)
}

/// `qb_sys_circular_mmap`: `len` bytes of `file` mapped twice, back to back.
fn map_circular(file: &File, len: usize) -> io::Result<Mapping> {
    // SAFETY: reserve 2 × len bytes of address space nobody else uses, then replace both
    // halves with MAP_FIXED mappings of the file inside that reservation only.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len * 2,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        for half in [base, base.cast::<u8>().add(len).cast()] {
            let p = libc::mmap(
                half,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            if p != half {
                let e = io::Error::last_os_error();
                libc::munmap(base, len * 2);
                return Err(e);
            }
        }
        Mapping::guard(base.cast(), len * 2)
    }
}

/// `posix_fallocate`: on tmpfs it reserves the pages now, so a full `/dev/shm` fails the
/// connection instead of a later write (libqb `qb_sys_mmap_file_open`).
fn allocate(file: &File, len: usize) -> io::Result<()> {
    file.set_len(len as u64)?;
    // SAFETY: no pointers involved.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Why a write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// Not enough free space now; the reader has not caught up.
    Full,
    /// Longer than the ring's maximum message.
    TooBig,
}

/// Why a read failed; each means the other end broke the ring (or truncated its files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The semaphore said a chunk was committed but its magic says otherwise.
    BadMagic(u32),
    /// The chunk's size is over the limit or past the writer.
    BadSize(u32),
    /// A file was truncated under the mapping (SIGBUS caught).
    Faulted,
    /// The semaphore call failed.
    Sem(i32),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "chunk magic {m:#010x} is not committed"),
            Self::BadSize(s) => write!(f, "chunk size {s} out of bounds"),
            Self::Faulted => f.write_str("ring file truncated under its mapping"),
            Self::Sem(e) => write!(f, "semaphore: {}", io::Error::from_raw_os_error(*e)),
        }
    }
}

/// One ring: its header and data mappings. Exactly one end writes and the other reads;
/// the writer keeps its own write position, the reader its own read position, so that
/// what the other end stores there can mislead neither.
pub struct ShmRing {
    hdr: Mapping,
    data: Mapping,
    word_size: u32,
    max_msg_size: usize,
    /// Our position as writer or reader.
    write_pt: u32,
    read_pt: u32,
    hdr_path: PathBuf,
    data_path: PathBuf,
}

// SAFETY: the ring owns its mappings; the raw pointers are only dereferenced through
// `&self`/`&mut self` methods, and the shared words are accessed atomically.
unsafe impl Send for ShmRing {}

fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

impl ShmRing {
    /// Creates `<base>-header` and `<base>-data` for messages of up to `max_msg_size`
    /// bytes (`qb_rb_open_2` with `QB_RB_FLAG_CREATE | QB_RB_FLAG_SHARED_PROCESS` and 4
    /// bytes of user data, as `qb_ipcs_shm_rb_open`), chowned to `owner` when given (a
    /// failed chown is not an error: without root only our own uid can be served, then
    /// `mode` decides) and chmodded to `mode`. Fails if either file exists.
    pub fn create(
        base: &[u8],
        max_msg_size: usize,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> io::Result<ShmRing> {
        let page = {
            install_sigbus_handler()?;
            PAGE_SIZE.load(Ordering::Relaxed)
        };
        let data_len = layout::data_file_len(max_msg_size, page);
        let hdr_bytes = layout::header_path(base);
        let data_bytes = layout::data_path(base);
        if hdr_bytes.len() >= layout::PATH_FIELD_LEN || data_bytes.len() >= layout::PATH_FIELD_LEN {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        let (hdr_path, data_path) = (path_of(&hdr_bytes), path_of(&data_bytes));
        let create = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
        };
        let hdr_file = create(&hdr_path)?;
        let cleanup = |e: io::Error| {
            let _ = std::fs::remove_file(&hdr_path);
            let _ = std::fs::remove_file(&data_path);
            e
        };
        let data_file = create(&data_path).inspect_err(|_| {
            let _ = std::fs::remove_file(&hdr_path);
        })?;
        let result = (|| {
            allocate(&hdr_file, layout::HEADER_FILE_LEN)?;
            allocate(&data_file, data_len)?;
            let hdr = map_shared(&hdr_file, layout::HEADER_FILE_LEN)?;
            let data = map_circular(&data_file, data_len)?;
            let ring = ShmRing {
                hdr,
                data,
                word_size: (data_len / 4) as u32,
                max_msg_size,
                write_pt: 0,
                read_pt: 0,
                hdr_path: hdr_path.clone(),
                data_path: data_path.clone(),
            };
            ring.hdr_u32(layout::HDR_WORD_SIZE)
                .store(ring.word_size, Ordering::Relaxed);
            ring.write_bytes(layout::HDR_HDR_PATH, &hdr_bytes);
            ring.write_bytes(layout::HDR_DATA_PATH, &data_bytes);
            // SAFETY: the semaphore's 32 bytes lie inside the header mapping, 8-aligned.
            if unsafe { libc::sem_init(ring.sem(), 1, 0) } != 0 {
                return Err(io::Error::last_os_error());
            }
            ring.hdr_i32(layout::HDR_REF_COUNT)
                .store(1, Ordering::Release);
            for (file, path) in [(&hdr_file, &hdr_path), (&data_file, &data_path)] {
                if let Some((uid, gid)) = owner {
                    let _ = std::os::unix::fs::fchown(file, Some(uid), Some(gid));
                }
                std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
            }
            Ok(ring)
        })();
        result.map_err(cleanup)
    }

    /// Opens a ring the other end created (`qb_rb_open_2` without `QB_RB_FLAG_CREATE`):
    /// the header at `<base>-header` with `user_data` bytes after it, the data file named
    /// in the header. Checks the sizes against `max_msg_size` and takes a reference.
    pub fn open(base: &[u8], max_msg_size: usize, user_data: usize) -> io::Result<ShmRing> {
        install_sigbus_handler()?;
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let data_len = layout::data_file_len(max_msg_size, page);
        let hdr_path = path_of(&layout::header_path(base));
        let open = |path: &Path| OpenOptions::new().read(true).write(true).open(path);
        let hdr_len = layout::SHARED_HDR_LEN + user_data;
        let hdr_file = open(&hdr_path)?;
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        if (hdr_file.metadata()?.len() as usize) < hdr_len {
            return Err(bad(format!("{} is too short", hdr_path.display())));
        }
        let hdr = map_shared(&hdr_file, hdr_len)?;
        let word_size = hdr.u32_at(layout::HDR_WORD_SIZE).load(Ordering::Relaxed);
        let expected = (data_len / 4) as u32;
        if word_size != expected {
            return Err(bad(format!(
                "ring of {word_size} words, expected {expected} for messages of {max_msg_size} bytes"
            )));
        }
        let data_path = path_of(&hdr.c_string_at(layout::HDR_DATA_PATH, layout::PATH_FIELD_LEN));
        let data_file = open(&data_path)?;
        if (data_file.metadata()?.len() as usize) < data_len {
            return Err(bad(format!("{} is too short", data_path.display())));
        }
        let data = map_circular(&data_file, data_len)?;
        let mut ring = ShmRing {
            hdr,
            data,
            word_size,
            max_msg_size,
            write_pt: 0,
            read_pt: 0,
            hdr_path,
            data_path,
        };
        ring.write_pt = ring.hdr_u32(layout::HDR_WRITE_PT).load(Ordering::Acquire) % ring.word_size;
        ring.read_pt = ring.hdr_u32(layout::HDR_READ_PT).load(Ordering::Acquire) % ring.word_size;
        ring.hdr_i32(layout::HDR_REF_COUNT)
            .fetch_add(1, Ordering::AcqRel);
        Ok(ring)
    }

    /// `<base>-header`.
    pub fn header_path(&self) -> &Path {
        &self.hdr_path
    }

    /// The data file.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// A file of this ring was truncated under its mapping since it was made; its
    /// contents can no longer be trusted (they read as zeros).
    pub fn faulted(&self) -> bool {
        self.hdr.faulted() || self.data.faulted()
    }

    fn hdr_u32(&self, offset: usize) -> &AtomicU32 {
        self.hdr.u32_at(offset)
    }

    fn hdr_i32(&self, offset: usize) -> &AtomicI32 {
        self.hdr.i32_at(offset)
    }

    fn sem(&self) -> *mut libc::sem_t {
        assert!(layout::HDR_SEM + layout::SEM_LEN <= self.hdr.len);
        // SAFETY: in bounds (checked), 8-aligned.
        unsafe { self.hdr.addr.add(layout::HDR_SEM).cast() }
    }

    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.hdr.len);
        // SAFETY: bounds checked above; freshly created, so no other end yet.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.hdr.addr.add(offset), bytes.len())
        };
    }

    /// The data word at ring position `pos` (taken modulo the ring).
    fn data_u32(&self, pos: u32) -> &AtomicU32 {
        let pos = (pos % self.word_size) as usize;
        // SAFETY: pos < word_size, so the word lies in the first copy of the mapping;
        // page-aligned base, so 4-aligned.
        unsafe { AtomicU32::from_ptr(self.data.addr.add(pos * 4).cast()) }
    }

    /// The ring's user-data word (the request ring's flow control), if mapped.
    pub fn user_word(&self) -> Option<&AtomicI32> {
        (self.hdr.len >= layout::HEADER_FILE_LEN).then(|| self.hdr_i32(layout::HDR_USER_DATA))
    }

    /// Both ends' references: 2 while connected (`qb_ipc_shm_fc_get`).
    pub fn ref_count(&self) -> i32 {
        self.hdr_i32(layout::HDR_REF_COUNT).load(Ordering::Acquire)
    }

    /// Sets the reference count; a server leaving sets 0 so that the client's next send
    /// fails with ENOTCONN, as libqb's `qb_rb_lastref_and_ret` + `qb_rb_close` leave it.
    pub fn set_ref_count(&self, value: i32) {
        self.hdr_i32(layout::HDR_REF_COUNT)
            .store(value, Ordering::Release);
    }

    /// Committed chunks not yet taken by the reader (the semaphore's value; libqb's
    /// `q_len`).
    pub fn committed(&self) -> i32 {
        let mut v = 0;
        // SAFETY: the semaphore lies in our mapping; glibc validates nothing we rely on.
        unsafe { libc::sem_getvalue(self.sem(), &mut v) };
        v
    }

    /// Writes one chunk holding `parts` back to back, then posts the semaphore
    /// (`qb_rb_chunk_alloc` + `qb_rb_chunk_commit`).
    pub fn write(&mut self, parts: &[&[u8]]) -> Result<(), WriteError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > self.max_msg_size {
            return Err(WriteError::TooBig);
        }
        let read = self.hdr_u32(layout::HDR_READ_PT).load(Ordering::Acquire) % self.word_size;
        let free = layout::space_free(self.write_pt, read, self.word_size, self.committed());
        if !layout::fits(len, free) {
            return Err(WriteError::Full);
        }
        let pos = self.write_pt;
        self.data_u32(pos).store(0, Ordering::Relaxed);
        self.data_u32(pos + 1)
            .store(layout::CHUNK_MAGIC_ALLOC, Ordering::Release);
        let start = ((pos + layout::CHUNK_HEADER_WORDS) % self.word_size) as usize * 4;
        let mut at = start;
        for part in parts {
            // SAFETY: start < word_size × 4 and len <= max_msg_size < word_size × 4, so
            // the copy stays inside the double mapping (twice the data file).
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), self.data.addr.add(at), part.len())
            };
            at += part.len();
        }
        self.data_u32(pos).store(len as u32, Ordering::Relaxed);
        self.write_pt = layout::chunk_step(pos, len as u32, self.word_size);
        self.hdr_u32(layout::HDR_WRITE_PT)
            .store(self.write_pt, Ordering::Release);
        self.data_u32(pos + 1)
            .store(layout::CHUNK_MAGIC, Ordering::Release);
        // SAFETY: the semaphore lies in our mapping.
        unsafe { libc::sem_post(self.sem()) };
        Ok(())
    }

    /// Takes one committed chunk if the semaphore has one (`sem_trywait`), copying it
    /// into `out` (cleared first). `Ok(false)`: nothing committed.
    pub fn try_read(&mut self, out: &mut Vec<u8>) -> Result<bool, ReadError> {
        // SAFETY: the semaphore lies in our mapping.
        if unsafe { libc::sem_trywait(self.sem()) } != 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return match e {
                libc::EAGAIN | libc::EINTR => Ok(false),
                e => Err(ReadError::Sem(e)),
            };
        }
        self.take(out).map(|()| true)
    }

    /// Waits up to `timeout` for a committed chunk (`sem_timedwait`) and takes it.
    /// `Ok(false)` on timeout.
    pub fn read_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<bool, ReadError> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is valid for writes.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let nanos = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
        let deadline = libc::timespec {
            tv_sec: now.tv_sec
                + timeout.as_secs() as libc::time_t
                + (nanos / 1_000_000_000) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        };
        loop {
            // SAFETY: the semaphore lies in our mapping; `deadline` is a valid timespec.
            if unsafe { libc::sem_timedwait(self.sem(), &deadline) } == 0 {
                return self.take(out).map(|()| true);
            }
            match io::Error::last_os_error().raw_os_error().unwrap_or(0) {
                libc::EINTR => continue,
                libc::ETIMEDOUT | libc::EAGAIN => return Ok(false),
                e => return Err(ReadError::Sem(e)),
            }
        }
    }

    /// Copies the chunk at our read position out, then reclaims it (`qb_rb_chunk_read`).
    /// The semaphore was already taken.
    fn take(&mut self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        let pos = self.read_pt;
        let magic = self.data_u32(pos + 1).load(Ordering::Acquire);
        if self.faulted() {
            return Err(ReadError::Faulted);
        }
        if magic != layout::CHUNK_MAGIC {
            return Err(ReadError::BadMagic(magic));
        }
        let size = self.data_u32(pos).load(Ordering::Relaxed);
        let write = self.hdr_u32(layout::HDR_WRITE_PT).load(Ordering::Acquire) % self.word_size;
        let used = layout::unread_bytes(write, pos, self.word_size);
        let needed = layout::CHUNK_HEADER_WORDS as usize * 4 + (size as usize).div_ceil(4) * 4;
        if size as usize > self.max_msg_size || needed > used {
            return Err(ReadError::BadSize(size));
        }
        let start = ((pos + layout::CHUNK_HEADER_WORDS) % self.word_size) as usize * 4;
        out.clear();
        out.reserve(size as usize);
        // SAFETY: start < word_size × 4 and size <= max_msg_size < word_size × 4: inside the double
        // mapping. The other end may change these bytes while we copy; we get some bytes,
        // and check them afterwards like any input.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.data.addr.add(start),
                out.as_mut_ptr(),
                size as usize,
            );
            out.set_len(size as usize);
        }
        if self.faulted() {
            return Err(ReadError::Faulted);
        }
        self.data_u32(pos).store(0, Ordering::Relaxed);
        self.data_u32(pos + 1)
            .store(layout::CHUNK_MAGIC_DEAD, Ordering::Release);
        self.read_pt = layout::chunk_step(pos, size, self.word_size);
        self.hdr_u32(layout::HDR_READ_PT)
            .store(self.read_pt, Ordering::Release);
        Ok(())
    }

    /// Removes both files (the creator does, when the connection ends).
    pub fn unlink(&self) {
        let _ = std::fs::remove_file(&self.data_path);
        let _ = std::fs::remove_file(&self.hdr_path);
    }
}

impl std::fmt::Debug for ShmRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmRing")
            .field("header", &self.hdr_path)
            .field("word_size", &self.word_size)
            .field("write_pt", &self.write_pt)
            .field("read_pt", &self.read_pt)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(tag: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "totem-shm-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("qb-request-cpg").as_os_str().as_bytes().to_vec()
    }

    #[test]
    fn chunks_cross_from_writer_to_reader_in_order_and_wrap() {
        let b = base("order");
        let mut w = ShmRing::create(&b, 4000, None, 0o600).unwrap();
        let mut r = ShmRing::open(&b, 4000, 4).unwrap();
        assert_eq!(w.ref_count(), 2);
        let mut out = Vec::new();
        assert!(!r.try_read(&mut out).unwrap());
        // Many more bytes than the ring holds, in odd sizes, so that chunks wrap.
        for i in 0..500u32 {
            let msg: Vec<u8> = (0..(i * 37 % 3001)).map(|j| (i + j) as u8).collect();
            w.write(&[&i.to_ne_bytes(), &msg]).unwrap();
            assert_eq!(r.committed(), 1);
            assert!(r.try_read(&mut out).unwrap());
            assert_eq!(out[..4], i.to_ne_bytes());
            assert_eq!(out[4..], msg[..]);
        }
        w.unlink();
    }

    #[test]
    fn a_full_ring_refuses_until_read() {
        let b = base("full");
        let mut w = ShmRing::create(&b, 1000, None, 0o600).unwrap();
        let mut r = ShmRing::open(&b, 1000, 0).unwrap();
        let msg = [7u8; 1000];
        let mut n = 0;
        while w.write(&[&msg]).is_ok() {
            n += 1;
        }
        assert_eq!(w.write(&[&msg]), Err(WriteError::Full));
        assert_eq!(w.write(&[&[0u8; 1001]]), Err(WriteError::TooBig));
        let mut out = Vec::new();
        for _ in 0..n {
            assert!(r.read_timeout(&mut out, Duration::from_millis(10)).unwrap());
        }
        assert!(!r.read_timeout(&mut out, Duration::from_millis(10)).unwrap());
        w.write(&[&msg]).unwrap();
        w.unlink();
    }

    #[test]
    fn a_scribbled_chunk_is_refused_not_trusted() {
        let b = base("scribble");
        let mut w = ShmRing::create(&b, 1000, None, 0o600).unwrap();
        let mut r = ShmRing::open(&b, 1000, 0).unwrap();
        w.write(&[b"hello"]).unwrap();
        // The writer lies about the size.
        w.data_u32(0).store(1_000_000, Ordering::Relaxed);
        let mut out = Vec::new();
        assert_eq!(r.try_read(&mut out), Err(ReadError::BadSize(1_000_000)));
        // And about the magic.
        w.write(&[b"again"]).unwrap();
        w.data_u32(1).store(0x1234, Ordering::Relaxed);
        assert_eq!(r.try_read(&mut out), Err(ReadError::BadMagic(0x1234)));
        w.unlink();
    }

    #[test]
    fn a_truncated_file_is_a_flag_not_a_crash() {
        let b = base("truncate");
        let mut w = ShmRing::create(&b, 8000, None, 0o600).unwrap();
        let mut r = ShmRing::open(&b, 8000, 0).unwrap();
        w.write(&[&[1u8; 100]]).unwrap();
        // The other end truncates the data file to nothing: our next access would be
        // SIGBUS.
        std::fs::OpenOptions::new()
            .write(true)
            .open(r.data_path())
            .unwrap()
            .set_len(0)
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(r.try_read(&mut out), Err(ReadError::Faulted));
        assert!(r.faulted());
        assert!(!ShmRing::create(&base("other"), 1000, None, 0o600)
            .unwrap()
            .faulted());
        w.unlink();
    }
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the other end writes into the header's pointers and the data file, a
        /// read either returns a chunk within the limit or an error; it never panics and
        /// never reads outside the mapping.
        #[test]
        fn a_reader_survives_any_ring_contents(
            write_pt in proptest::prelude::any::<u32>(),
            words in proptest::collection::vec((0usize..1024, proptest::prelude::any::<u32>()), 0..64),
            committed in 0u32..4,
            magic_at_start in proptest::prelude::any::<bool>(),
        ) {
            let b = base("prop");
            let w = ShmRing::create(&b, 2000, None, 0o600).unwrap();
            let mut r = ShmRing::open(&b, 2000, 0).unwrap();
            for (pos, value) in &words {
                w.data_u32(*pos as u32).store(*value, Ordering::Relaxed);
            }
            if magic_at_start {
                w.data_u32(1).store(layout::CHUNK_MAGIC, Ordering::Relaxed);
            }
            w.hdr_u32(layout::HDR_WRITE_PT).store(write_pt, Ordering::Relaxed);
            for _ in 0..committed {
                // SAFETY: the semaphore lies in the writer's mapping.
                unsafe { libc::sem_post(w.sem()) };
            }
            let mut out = Vec::new();
            for _ in 0..committed + 1 {
                // Errors are the expected answer to most of these rings.
                if let Ok(true) = r.try_read(&mut out) {
                    proptest::prop_assert!(out.len() <= 2000);
                }
            }
            w.unlink();
        }
    }
}

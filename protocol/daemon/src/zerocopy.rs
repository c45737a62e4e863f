//! Zero-copy buffers against the real `/dev/shm` (ipc.md §4.7): the server side of
//! `cpg_zcb_alloc` / `cpg_zcb_mcast_joined` / `cpg_zcb_free`.
//!
//! libcpg creates `/dev/shm/corosync_zerocopy-XXXXXX` (0600, its own), maps it and sends
//! ZC_ALLOC with the path. corosync (`exec/cpg.c::zcb_alloc` and its `memory_map`) opens
//! it, unlinks it at once, maps it `MAP_SHARED` and writes its mapping address into the
//! buffer's `server_address` (offset 8) as the token the client hands back with ZC_EXECUTE
//! and ZC_FREE. This server keeps the same file shared with the client, with three
//! differences, each because the file is the client's:
//!
//! * **No mapping: `pread`/`pwrite` on the open descriptor.** Both go through the same page
//!   cache as the client's mapping, so the client sees the token and we see its message
//!   exactly as with `mmap`. But a client still holding a descriptor could truncate the
//!   file after ZC_ALLOC, and a server touching a mapping past the new end of the file
//!   dies of SIGBUS; a read past the end just comes back short. (The control file of
//!   [`crate::ipc`] is written with `pwrite` for the same reason.)
//! * **The path is checked** before anything is opened, since a root daemon opens what
//!   the client names: a file directly inside one of the configured directories, opened
//!   without following a symbolic link or blocking on a FIFO, a regular file owned by the
//!   client's uid with one link. It is unlinked only if the name still refers to what was
//!   opened.
//! * **Tokens are opaque per-server counters**, validated against the connection's own
//!   buffers on ZC_EXECUTE and ZC_FREE (corosync turns the client's number back into a
//!   pointer unchecked).
//!
//! What one connection and the whole server may hold is bounded ([`ZeroCopyLimits`]): each
//! buffer keeps a descriptor open until ZC_FREE or the disconnection.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use totem_cpg::{ConnId, ZeroCopyMemory};
use totem_wire::ipc::cpg::{ZcHead, ZC_PAYLOAD_OFFSET, ZC_SERVER_ADDRESS_OFFSET};

/// Where the payload starts in a buffer (the codec's layout, ipc.md §4.7).
const ZC_HEADER_LEN: u64 = ZC_PAYLOAD_OFFSET as u64;
/// The largest message libcpg sends in one piece (`cpg_zcb_mcast_joined` refuses more than
/// `IPC_REQUEST_SIZE` with CS_ERR_TOO_BIG): no copy is ever larger than this plus the
/// header.
const MSG_MAX: u64 = totem_wire::ipc::IPC_MAX_MSG_LEN as u64;

/// `LOCALSTATEDIR "/run"`: libcpg's fallback directory when `/dev/shm` is not usable.
pub const FALLBACK_DIR: &str = "/var/run";

/// What zero-copy buffers may hold.
#[derive(Debug, Clone)]
pub struct ZeroCopyLimits {
    /// Directories a buffer's file may be in (directly, no subdirectory).
    pub dirs: Vec<PathBuf>,
    /// The largest `map_size` accepted (corosync has no bound; libcpg's own allocation is
    /// the client's memory, but every byte named here is one the server might read).
    pub max_map_size: u64,
    /// Buffers one connection may hold at once (each holds a descriptor).
    pub max_per_conn: usize,
    /// Buffers all connections together may hold.
    pub max_total: usize,
}

impl Default for ZeroCopyLimits {
    /// `/dev/shm` and libcpg's fallback, 128 MiB per buffer (the conformance agent's cap),
    /// 64 buffers per connection, 1024 in all.
    fn default() -> Self {
        ZeroCopyLimits {
            dirs: vec![
                PathBuf::from(crate::ipc::DEFAULT_SHM_DIR),
                PathBuf::from(FALLBACK_DIR),
            ],
            max_map_size: 128 << 20,
            max_per_conn: 64,
            max_total: 1024,
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZeroCopyStats {
    /// ZC_ALLOCs that got a buffer.
    pub allocated: u64,
    /// ZC_ALLOCs refused (path, file or limits).
    pub refused: u64,
    /// ZC_EXECUTE / ZC_FREE with a token that is not one of the connection's buffers.
    pub bad_tokens: u64,
    /// Buffers held now.
    pub held: usize,
}

impl fmt::Display for ZeroCopyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zero-copy: {} allocated, {} refused, {} bad tokens, {} held",
            self.allocated, self.refused, self.bad_tokens, self.held
        )
    }
}

struct Buffer {
    file: File,
    map_size: u64,
}

/// The daemon's zero-copy buffers, by (node connection, token).
pub struct ShmZeroCopy {
    limits: ZeroCopyLimits,
    /// Each connection's client uid, registered when it connects.
    owners: HashMap<ConnId, u32>,
    buffers: BTreeMap<(ConnId, u64), Buffer>,
    next_token: u64,
    stats: ZeroCopyStats,
    /// ZC_EXECUTE's lookup takes `&self`.
    bad_tokens: Cell<u64>,
}

impl ShmZeroCopy {
    /// No buffers yet.
    pub fn new(limits: ZeroCopyLimits) -> ShmZeroCopy {
        ShmZeroCopy {
            limits,
            owners: HashMap::new(),
            buffers: BTreeMap::new(),
            next_token: 0,
            stats: ZeroCopyStats::default(),
            bad_tokens: Cell::new(0),
        }
    }

    /// A new connection whose client runs as `uid`: only files of that uid are accepted
    /// for it.
    pub fn register(&mut self, conn: ConnId, uid: u32) {
        self.owners.insert(conn, uid);
    }

    /// The counters.
    pub fn stats(&self) -> ZeroCopyStats {
        ZeroCopyStats {
            held: self.buffers.len(),
            bad_tokens: self.bad_tokens.get(),
            ..self.stats
        }
    }

    /// The file name must sit directly in one of the allowed directories: `DIR/NAME`, with
    /// no `/` in NAME and NAME neither `.` nor `..`. Textual, so nothing is resolved.
    fn check_path<'a>(&self, path: &'a [u8]) -> Result<&'a Path, String> {
        let shown = || String::from_utf8_lossy(path).into_owned();
        for dir in &self.limits.dirs {
            let dir = dir.as_os_str().as_bytes();
            let Some(rest) = path.strip_prefix(dir).and_then(|r| r.strip_prefix(b"/")) else {
                continue;
            };
            if rest.is_empty() || rest.contains(&b'/') || rest == b"." || rest == b".." {
                return Err(format!("{}: not a file name inside {}", shown(), {
                    String::from_utf8_lossy(dir)
                }));
            }
            return Ok(Path::new(OsStr::from_bytes(path)));
        }
        Err(format!("{}: outside the zero-copy directories", shown()))
    }

    fn open_checked(&self, path: &Path, uid: u32) -> Result<File, String> {
        let shown = path.display();
        // O_NOFOLLOW: a symbolic link is refused (ELOOP); O_NONBLOCK: a FIFO does not
        // block the daemon in open. std adds O_CLOEXEC.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| format!("{shown}: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("{shown}: {e}"))?;
        if !meta.file_type().is_file() {
            return Err(format!("{shown}: not a regular file"));
        }
        if meta.uid() != uid {
            return Err(format!(
                "{shown}: owned by uid {}, the client is uid {uid}",
                meta.uid()
            ));
        }
        if meta.nlink() != 1 {
            return Err(format!("{shown}: has {} links", meta.nlink()));
        }
        if meta.len() < ZC_HEADER_LEN {
            return Err(format!(
                "{shown}: {} bytes, no room for the header",
                meta.len()
            ));
        }
        // corosync unlinks at once (exec/cpg.c `memory_map`). The name is looked up again,
        // so only unlink if it still is the file opened: a client swapping it in between
        // must not make a root daemon remove someone else's file.
        let now = std::fs::symlink_metadata(path).map_err(|e| format!("{shown}: {e}"))?;
        if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
            return Err(format!("{shown}: replaced while being opened"));
        }
        std::fs::remove_file(path).map_err(|e| format!("{shown}: unlink: {e}"))?;
        Ok(file)
    }

    fn try_map(&mut self, conn: ConnId, path: &[u8], map_size: u64) -> Result<u64, String> {
        let uid = *self
            .owners
            .get(&conn)
            .ok_or_else(|| format!("connection {conn} is not registered"))?;
        if map_size < ZC_HEADER_LEN || map_size > self.limits.max_map_size {
            return Err(format!(
                "map_size {map_size} not within {ZC_HEADER_LEN}..={}",
                self.limits.max_map_size
            ));
        }
        let held = self.buffers.keys().filter(|(c, _)| *c == conn).count();
        if held >= self.limits.max_per_conn || self.buffers.len() >= self.limits.max_total {
            return Err(format!(
                "too many buffers ({held} on this connection, {} in all)",
                self.buffers.len()
            ));
        }
        let path = self.check_path(path)?;
        let file = self.open_checked(path, uid)?;
        self.next_token += 1;
        let token = self.next_token;
        file.write_all_at(
            &ZcHead::server_address_bytes(token),
            ZC_SERVER_ADDRESS_OFFSET as u64,
        )
        .map_err(|e| format!("{}: writing the token: {e}", path.display()))?;
        self.buffers
            .insert((conn, token), Buffer { file, map_size });
        Ok(token)
    }
}

/// Reads up to `len` bytes at `offset`; fewer if the file is shorter (a client truncated
/// it), never an error for that.
fn read_at_most(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

impl ZeroCopyMemory for ShmZeroCopy {
    fn map(&mut self, conn: ConnId, path: &[u8], map_size: u64) -> Result<u64, String> {
        let result = self.try_map(conn, path, map_size);
        match &result {
            Ok(_) => self.stats.allocated += 1,
            Err(why) => {
                self.stats.refused += 1;
                crate::logf!(Cpg, Warning, "zero-copy buffer refused: {why}");
            }
        }
        result
    }

    /// The header and the message: `56 + msglen` bytes, or less when `msglen` does not
    /// fit the buffer (or the file was cut short), which the CPG service then refuses with
    /// CS_ERR_INVALID_PARAM. Never more than one message's worth.
    fn contents(&self, conn: ConnId, token: u64) -> Option<Vec<u8>> {
        let Some(b) = self.buffers.get(&(conn, token)) else {
            self.bad_tokens.set(self.bad_tokens.get() + 1);
            return None;
        };
        let msglen = read_at_most(&b.file, 0, ZC_PAYLOAD_OFFSET)
            .ok()
            .and_then(|head| ZcHead::parse(&head).ok())
            .map_or(0, |head| u64::from(head.msglen));
        let want = (ZC_HEADER_LEN + msglen.min(MSG_MAX + 1)).min(b.map_size);
        read_at_most(&b.file, 0, want as usize).ok()
    }

    fn unmap(&mut self, conn: ConnId, token: u64) -> bool {
        let found = self.buffers.remove(&(conn, token)).is_some();
        if !found {
            self.bad_tokens.set(self.bad_tokens.get() + 1);
        }
        found
    }

    fn release(&mut self, conn: ConnId) {
        self.buffers.retain(|(c, _), _| *c != conn);
        self.owners.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn own_uid() -> u32 {
        std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
    }

    fn server(dir: &Path) -> ShmZeroCopy {
        let mut zc = ShmZeroCopy::new(ZeroCopyLimits {
            dirs: vec![dir.to_path_buf()],
            max_map_size: 4096,
            max_per_conn: 2,
            max_total: 3,
        });
        zc.register(1, own_uid());
        zc.register(2, own_uid());
        zc
    }

    fn client_file(dir: &Path, name: &str, len: usize) -> PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![0u8; len]).unwrap();
        path
    }

    fn bytes(p: &Path) -> Vec<u8> {
        p.as_os_str().as_bytes().to_vec()
    }

    #[test]
    fn alloc_execute_free_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut zc = server(dir.path());
        let path = client_file(dir.path(), "corosync_zerocopy-abc", 100);
        // The client keeps its own handle, as its mapping does.
        let client = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let token = zc.map(1, &bytes(&path), 100).unwrap();
        assert!(!path.exists(), "unlinked at once");
        let mut t = [0u8; 8];
        client.read_exact_at(&mut t, 8).unwrap();
        assert_eq!(
            u64::from_ne_bytes(t),
            token,
            "the token is in the shared file"
        );
        client.write_all_at(&5u32.to_ne_bytes(), 48).unwrap();
        client.write_all_at(b"hello", 56).unwrap();
        let c = zc.contents(1, token).unwrap();
        assert_eq!(c.len(), 61);
        assert_eq!(&c[56..], b"hello");
        // Another connection's token is not valid here.
        assert_eq!(zc.contents(2, token), None);
        assert!(!zc.unmap(2, token));
        assert!(zc.unmap(1, token));
        assert_eq!(zc.contents(1, token), None);
        assert_eq!(zc.stats().held, 0);
    }

    #[test]
    fn msglen_past_the_buffer_or_a_truncated_file_gives_a_short_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut zc = server(dir.path());
        let path = client_file(dir.path(), "z", 100);
        let client = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let token = zc.map(1, &bytes(&path), 100).unwrap();
        client.write_all_at(&u32::MAX.to_ne_bytes(), 48).unwrap();
        assert_eq!(
            zc.contents(1, token).unwrap().len(),
            100,
            "bounded by map_size"
        );
        client.set_len(10).unwrap();
        assert_eq!(
            zc.contents(1, token).unwrap().len(),
            10,
            "no SIGBUS, a short read"
        );
    }

    #[test]
    fn paths_outside_or_tricky_are_refused_and_nothing_is_unlinked() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let mut zc = server(dir.path());
        let outside = client_file(other.path(), "victim", 100);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let nested = client_file(&sub, "x", 100);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let traversal = format!("{}/../{}", dir.path().display(), "victim");
        let hard = dir.path().join("hard");
        let target = client_file(dir.path(), "target", 100);
        std::fs::hard_link(&target, &hard).unwrap();
        let small = client_file(dir.path(), "small", 10);
        for (p, why) in [
            (bytes(&outside), "outside"),
            (bytes(&nested), "not a file name"),
            (traversal.into_bytes(), "not a file name"),
            (bytes(&link), "symbolic"),
            (bytes(dir.path()), "outside"),
            (bytes(&hard), "links"),
            (bytes(&small), "no room"),
            (bytes(&dir.path().join("missing")), "No such file"),
        ] {
            let err = zc.map(1, &p, 100).unwrap_err();
            assert!(
                err.contains(why) || (why == "symbolic" && err.contains("symbolic link")),
                "{}: {err}",
                String::from_utf8_lossy(&p)
            );
        }
        for p in [&outside, &nested, &link, &hard, &target, &small] {
            assert!(p.symlink_metadata().is_ok(), "{} still there", p.display());
        }
        assert_eq!(zc.stats().refused, 8);
    }

    #[test]
    fn limits_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let mut zc = server(dir.path());
        let map = |zc: &mut ShmZeroCopy, conn, name: &str, size| {
            let p = client_file(dir.path(), name, 100);
            zc.map(conn, &bytes(&p), size)
        };
        assert!(map(&mut zc, 1, "a", 5000).unwrap_err().contains("map_size"));
        assert!(map(&mut zc, 1, "b", 40).unwrap_err().contains("map_size"));
        let t1 = map(&mut zc, 1, "c", 100).unwrap();
        map(&mut zc, 1, "d", 100).unwrap();
        assert!(map(&mut zc, 1, "e", 100).unwrap_err().contains("too many"));
        map(&mut zc, 2, "f", 100).unwrap();
        assert!(map(&mut zc, 2, "g", 100).unwrap_err().contains("too many"));
        assert!(zc
            .map(3, b"/x", 100)
            .unwrap_err()
            .contains("not registered"));
        zc.release(1);
        assert_eq!(zc.stats().held, 1);
        assert_eq!(zc.contents(1, t1), None);
        assert!(map(&mut zc, 1, "h", 100)
            .unwrap_err()
            .contains("not registered"));
    }
}

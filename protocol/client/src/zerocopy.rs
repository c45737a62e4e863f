//! Zero-copy buffers as libcpg makes them (`lib/cpg.c` `memory_map`, ipc.md §4.7): a file
//! `/dev/shm/corosync_zerocopy-XXXXXX` of its own (0600, created exclusively), sized and
//! filled with zeros, whose path ZC_ALLOC sends. The daemon opens it, unlinks it and maps
//! it; its token and the caller's message travel through the file.
//!
//! libcpg maps the file too. We read and write it with `pread`/`pwrite` on the open
//! descriptor instead: the same page cache as the daemon's mapping, so each side sees the
//! other's bytes as through `mmap`, without unsafe code, and a file truncated under us
//! gives a short read rather than SIGBUS.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{SharedBuffer, TransportError};

/// Where libcpg puts the files (`memory_map`'s `/dev/shm/%s`).
const DIR: &str = "/dev/shm";
/// Zeros are written in pieces of this size (libcpg writes the file page by page so
/// that a full tmpfs fails here, with ENOSPC, not later in the daemon with SIGBUS).
const ZERO_CHUNK: usize = 64 << 10;

/// A zero-copy buffer file, open for as long as the buffer is held.
#[derive(Debug)]
pub struct FileBuffer {
    file: File,
    len: usize,
}

impl SharedBuffer for FileBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> bool {
        offset
            .checked_add(data.len())
            .is_some_and(|end| end <= self.len)
            && self.file.write_all_at(data, offset as u64).is_ok()
    }

    fn read(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        let mut out = vec![0; len];
        self.file.read_exact_at(&mut out, offset as u64).ok()?;
        Some(out)
    }
}

/// mkstemp's six characters, from the pid, the clock and a counter (uniqueness is what
/// `create_new` enforces; these only make a clash unlikely).
fn suffix(attempt: u64) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ NEXT
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ attempt;
    (0..6)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize];
            x /= ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

/// Creates a buffer file of `map_size` zero bytes: its path (as ZC_ALLOC carries it) and
/// the buffer.
pub fn create(map_size: usize) -> Result<(Vec<u8>, Box<dyn SharedBuffer>), TransportError> {
    for attempt in 0..100 {
        let path = format!("{DIR}/corosync_zerocopy-{}", suffix(attempt));
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        };
        let zeros = vec![0u8; ZERO_CHUNK.min(map_size)];
        let mut at = 0;
        let filled = (|| -> io::Result<()> {
            file.set_len(map_size as u64)?;
            while at < map_size {
                let n = zeros.len().min(map_size - at);
                file.write_all_at(&zeros[..n], at as u64)?;
                at += n;
            }
            Ok(())
        })();
        if let Err(e) = filled {
            // Nobody else knows the file yet: it goes.
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        let buffer = FileBuffer {
            file,
            len: map_size,
        };
        return Ok((path.into_bytes(), Box::new(buffer)));
    }
    Err(TransportError::Io(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free corosync_zerocopy name in /dev/shm",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_file_is_private_zeroed_and_bounded() {
        let (path, mut buf) = create(100).expect("create in /dev/shm");
        let path = String::from_utf8(path).expect("utf-8 path");
        assert!(path.starts_with("/dev/shm/corosync_zerocopy-"), "{path}");
        let meta = std::fs::metadata(&path).expect("file exists");
        assert_eq!(meta.len(), 100);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(buf.read(0, 100), Some(vec![0; 100]));
        assert!(buf.write(96, b"abcd"));
        assert!(!buf.write(97, b"abcd"), "a write past the end is refused");
        assert_eq!(buf.read(96, 4).as_deref(), Some(&b"abcd"[..]));
        // What the daemon sees through the path is what the buffer holds.
        assert_eq!(&std::fs::read(&path).expect("read")[96..], b"abcd");
        std::fs::remove_file(&path).expect("cleanup");
    }
}

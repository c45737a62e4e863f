//! The ring sequence number on stable storage, byte for byte as corosync 3.1.7 keeps it
//! (`exec/main.c::corosync_ring_id_create_or_load` and `::corosync_ring_id_store`):
//! `<state_dir>/ringid_<nodeid>`, mode 0600, eight bytes, the seq as a host-order u64. The
//! representative is not stored. A missing or short file means seq 0 and is (re)created
//! with 0 at load; the file is rewritten each time the node adopts a new ring id (totemsrp
//! `memb_state_commit_enter`, reported by the engine as `NodeEvent::StoreRingId`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `<state_dir>/ringid_<nodeid>`.
pub fn ringid_path(state_dir: &Path, nodeid: u32) -> PathBuf {
    state_dir.join(format!("ringid_{nodeid}"))
}

/// `creat(path, 0600)` and one write of the 8 bytes: an existing file is truncated, as
/// creat does (its mode is left as it was).
pub fn store(state_dir: &Path, nodeid: u32, seq: u64) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(ringid_path(state_dir, nodeid))?;
    f.write_all(&seq.to_ne_bytes())
}

/// `corosync_ring_id_create_or_load`: the stored seq, or 0 (and a new file holding 0) when
/// the file is missing or shorter than 8 bytes.
pub fn load_or_create(state_dir: &Path, nodeid: u32) -> io::Result<u64> {
    let path = ringid_path(state_dir, nodeid);
    if let Ok(mut f) = File::open(&path) {
        let mut buf = [0u8; 8];
        // corosync read()s once; for a regular file that is reading up to 8 bytes or EOF.
        // Fewer than 8 bytes count as no file.
        let mut got = 0;
        while got < buf.len() {
            match f.read(&mut buf[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if got == buf.len() {
            return Ok(u64::from_ne_bytes(buf));
        }
    }
    store(state_dir, nodeid, 0)?;
    Ok(0)
}

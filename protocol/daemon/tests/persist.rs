//! The ring seq file, byte for byte as corosync 3.1.7 keeps it (totem-wire.md §2.9,
//! main.c::corosync_ring_id_create_or_load / ::corosync_ring_id_store).

use std::os::unix::fs::PermissionsExt;

use totemd::persist::{load_or_create, ringid_path, store};

#[test]
fn a_stored_seq_loads_back_as_eight_host_order_bytes() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), 3, 0x1a).unwrap();
    let path = ringid_path(dir.path(), 3);
    assert_eq!(path.file_name().unwrap(), "ringid_3");
    assert_eq!(std::fs::read(&path).unwrap(), 0x1au64.to_ne_bytes());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(load_or_create(dir.path(), 3).unwrap(), 0x1a);
    // A later store replaces the file's content (creat truncates).
    store(dir.path(), 3, 0x1_0000_0005).unwrap();
    assert_eq!(load_or_create(dir.path(), 3).unwrap(), 0x1_0000_0005);
}

#[test]
fn a_missing_or_short_file_is_seq_zero_and_is_written_as_such() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_or_create(dir.path(), 1).unwrap(), 0);
    assert_eq!(std::fs::read(ringid_path(dir.path(), 1)).unwrap(), [0u8; 8]);
    std::fs::write(ringid_path(dir.path(), 2), [9u8; 5]).unwrap();
    assert_eq!(load_or_create(dir.path(), 2).unwrap(), 0);
    assert_eq!(std::fs::read(ringid_path(dir.path(), 2)).unwrap(), [0u8; 8]);
}

#[test]
fn a_file_corosync_wrote_is_read_as_corosync_reads_it() {
    // corosync writes sizeof(uint64_t) from memory: little-endian on x86-64 and arm64.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(ringid_path(dir.path(), 5), [0x0d, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        load_or_create(dir.path(), 5).unwrap(),
        u64::from_le_bytes([0x0d, 0, 0, 0, 0, 0, 0, 0])
    );
}

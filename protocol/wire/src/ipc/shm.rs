//! libqb's *shared-memory* IPC type: the layout of its ring buffers and the arithmetic both
//! ends must agree on (libqb 2.0.6 `lib/ringbuffer.c`, `lib/ringbuffer_int.h`,
//! `lib/ipc_shm.c`; ipc.md §1.6, §5.7). Only numbers here; mapping the files and the
//! semaphore are `totem_unix::shm`'s.
//!
//! A connection has three rings, request (client → server), response and event
//! (server → client), each two files named after the base the connection response
//! carries (`response.request`, `.response`, `.event`):
//!
//! ```text
//! <base>-header   struct qb_ringbuffer_shared_s + user data (the request ring's is the
//!                 int32 flow-control word)
//!   0  u32 write_pt (words)   4  u32 read_pt (words)   8  u32 word_size
//!  12  char hdr_path[4096]   4108  char data_path[4096]   8204  i32 ref_count
//!  8208 sem_t (glibc, 32 bytes, process-shared: committed chunks)   8240 user data
//! <base>-data     word_size × 4 bytes, mapped twice back to back so that a chunk may run
//!                 past the end without wrapping code
//!   chunk = u32 size, u32 magic, data padded to 4 bytes; positions modulo word_size
//! ```
//!
//! The writer fills the data, stores the size, advances `write_pt`, publishes the magic
//! [`CHUNK_MAGIC`] and posts the semaphore; the reader waits on the semaphore, copies the
//! chunk, marks it [`CHUNK_MAGIC_DEAD`] and advances `read_pt` (`qb_rb_chunk_commit`,
//! `qb_rb_chunk_read`). Every value here is host-order, like all of libqb IPC.

/// `PATH_MAX`: the size of each path field of the header.
pub const PATH_FIELD_LEN: usize = 4096;
/// Offset of `write_pt`, in 32-bit words of the data file.
pub const HDR_WRITE_PT: usize = 0;
/// Offset of `read_pt`.
pub const HDR_READ_PT: usize = 4;
/// Offset of `word_size` (the data file's length / 4).
pub const HDR_WORD_SIZE: usize = 8;
/// Offset of the header file's own path (NUL-terminated).
pub const HDR_HDR_PATH: usize = 12;
/// Offset of the data file's path: the client opens the data file through it.
pub const HDR_DATA_PATH: usize = HDR_HDR_PATH + PATH_FIELD_LEN;
/// Offset of `ref_count`: 1 after the server creates the ring, 2 once the client opened
/// it. The client refuses to send unless the request ring's count is exactly 2
/// (`qb_ipc_shm_fc_get`), so a server ends a connection by lowering it.
pub const HDR_REF_COUNT: usize = HDR_DATA_PATH + PATH_FIELD_LEN;
/// Offset of the glibc `sem_t` (`rpl_sem_t` is `sem_t` on Linux).
pub const HDR_SEM: usize = HDR_REF_COUNT + 4;
/// `sizeof(sem_t)` on 64-bit glibc.
pub const SEM_LEN: usize = 32;
/// Offset of the user data (`char user_data[1]`).
pub const HDR_USER_DATA: usize = HDR_SEM + SEM_LEN;
/// `sizeof(struct qb_ringbuffer_shared_s)`: 8241 rounded up to its 8-byte alignment.
pub const SHARED_HDR_LEN: usize = (HDR_USER_DATA + 1 + 7) & !7;
/// The user data every ring gets from the server (`qb_ipcs_shm_rb_open`:
/// `sizeof(int32_t)`). The client maps the request ring with it and the other two without
/// (and truncates their files to [`SHARED_HDR_LEN`]).
pub const USER_DATA_LEN: usize = 4;
/// The header file's length as the server creates it.
pub const HEADER_FILE_LEN: usize = SHARED_HDR_LEN + USER_DATA_LEN;

/// Words of a chunk header: size, magic.
pub const CHUNK_HEADER_WORDS: u32 = 2;
/// `QB_RB_CHUNK_MARGIN`: free space a writer needs beyond the data (header + one word for
/// padding; libqb is built without cache-line alignment).
pub const CHUNK_MARGIN: usize = 4 * (CHUNK_HEADER_WORDS as usize + 1);
/// A committed chunk.
pub const CHUNK_MAGIC: u32 = 0xA1A1_A1A1;
/// A chunk being written.
pub const CHUNK_MAGIC_ALLOC: u32 = 0xA110_CED0;
/// A chunk read and reclaimed.
pub const CHUNK_MAGIC_DEAD: u32 = 0xD0D0_D0D0;

/// The three rings of a connection, in the order of the connection response's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ring {
    /// Client → server requests; its user data is the flow-control word.
    Request,
    /// Server → client responses (no notification byte: the client waits on the
    /// semaphore).
    Response,
    /// Server → client events, each announced by one byte on the setup stream.
    Event,
}

impl Ring {
    /// All three.
    pub const ALL: [Ring; 3] = [Ring::Request, Ring::Response, Ring::Event];

    fn word(self) -> &'static str {
        match self {
            Ring::Request => "request",
            Ring::Response => "response",
            Ring::Event => "event",
        }
    }

    /// The base name libqb gives this ring of connection `description` for `service`:
    /// `snprintf(r->request, NAME_MAX, "%s-request-%s", c->description, s->name)`
    /// (`qb_ipcs_shm_connect`), so at most 254 bytes survive.
    pub fn base_name(self, description: &[u8], service: &[u8]) -> Vec<u8> {
        const NAME_MAX: usize = 255;
        let mut name = description.to_vec();
        name.push(b'-');
        name.extend_from_slice(self.word().as_bytes());
        name.push(b'-');
        name.extend_from_slice(service);
        name.truncate(NAME_MAX - 1);
        name
    }
}

/// `<base>-header`.
pub fn header_path(base: &[u8]) -> Vec<u8> {
    [base, b"-header"].concat()
}

/// `<base>-data`.
pub fn data_path(base: &[u8]) -> Vec<u8> {
    [base, b"-data"].concat()
}

/// The data file's length for messages of up to `max_msg_size` bytes:
/// `roundup(max_msg_size + CHUNK_MARGIN + 1, page)` (`qb_rb_open_2`), 1052672 for libcpg's
/// 1 MiB and 4 KiB pages.
pub fn data_file_len(max_msg_size: usize, page_size: usize) -> usize {
    (max_msg_size + CHUNK_MARGIN + 1).div_ceil(page_size) * page_size
}

/// Where the chunk after the one at `pos` holding `size` bytes starts
/// (`qb_rb_chunk_step`): the header, the data rounded up to whole words, modulo
/// `word_size`.
pub fn chunk_step(pos: u32, size: u32, word_size: u32) -> u32 {
    let words = u64::from(CHUNK_HEADER_WORDS) + u64::from(size).div_ceil(4);
    ((u64::from(pos) + words) % u64::from(word_size.max(1))) as u32
}

/// Bytes a writer may still use (`qb_rb_space_free`). With `write == read` the ring is
/// empty unless chunks are committed and unread (`committed > 0`, the semaphore's value);
/// the margin a writer keeps makes that case a full ring only in theory.
pub fn space_free(write: u32, read: u32, word_size: u32, committed: i32) -> usize {
    let (w, r, n) = (u64::from(write), u64::from(read), u64::from(word_size));
    let words = if w > r {
        r + n - w - 1
    } else if w < r {
        r - w - 1
    } else if committed > 0 {
        0
    } else {
        n
    };
    (words * 4) as usize
}

/// Bytes from the reader's position to the writer's: what a reader may consume. Unlike
/// libqb's `qb_rb_space_used`, which counts one word short once the writer has wrapped,
/// this is exact, so a reader can check a chunk against it.
pub fn unread_bytes(write: u32, read: u32, word_size: u32) -> usize {
    let n = u64::from(word_size.max(1));
    (((u64::from(write) % n) + n - (u64::from(read) % n)) % n * 4) as usize
}

/// Whether a writer may put `len` bytes into a ring with `free` bytes free
/// (`qb_rb_chunk_alloc`).
pub fn fits(len: usize, free: usize) -> bool {
    free >= len + CHUNK_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_offsets_are_libqbs() {
        // Observed in a corosync 3.1.7 connection (ipc.md §1.6): header files of 8252
        // bytes from the server, 8248 after the client truncates response and event.
        assert_eq!(HDR_REF_COUNT, 8204);
        assert_eq!(HDR_SEM, 8208);
        assert_eq!(HDR_USER_DATA, 8240);
        assert_eq!(SHARED_HDR_LEN, 8248);
        assert_eq!(HEADER_FILE_LEN, 8252);
    }

    #[test]
    fn data_file_for_libcpg_is_1052672_bytes() {
        assert_eq!(data_file_len(1 << 20, 4096), 1_052_672);
        assert_eq!(data_file_len(4096 - CHUNK_MARGIN - 1, 4096), 4096);
        assert_eq!(data_file_len(4096 - CHUNK_MARGIN, 4096), 8192);
    }

    #[test]
    fn base_names_follow_qb_ipcs_shm_connect() {
        let d = b"/dev/shm/qb-14862-14874-18-cVPxy0/qb";
        assert_eq!(
            Ring::Request.base_name(d, b"cpg"),
            b"/dev/shm/qb-14862-14874-18-cVPxy0/qb-request-cpg".to_vec()
        );
        assert_eq!(
            header_path(&Ring::Event.base_name(d, b"cpg")),
            b"/dev/shm/qb-14862-14874-18-cVPxy0/qb-event-cpg-header".to_vec()
        );
        let long = vec![b'x'; 300];
        assert_eq!(Ring::Response.base_name(&long, b"cpg").len(), 254);
    }

    #[test]
    fn chunks_step_over_header_and_padded_data() {
        assert_eq!(chunk_step(0, 0, 100), 2);
        assert_eq!(chunk_step(0, 1, 100), 3);
        assert_eq!(chunk_step(0, 4, 100), 3);
        assert_eq!(chunk_step(0, 5, 100), 4);
        assert_eq!(chunk_step(96, 8, 100), 0);
        assert_eq!(chunk_step(99, 24, 100), 7);
        // A hostile word_size of 0 must not divide by zero.
        assert_eq!(chunk_step(5, 8, 0), 0);
    }

    #[test]
    fn free_and_used_space() {
        assert_eq!(space_free(0, 0, 100, 0), 400);
        assert_eq!(space_free(0, 0, 100, 1), 0);
        assert_eq!(space_free(10, 4, 100, 1), (4 + 100 - 10 - 1) * 4);
        assert_eq!(space_free(4, 10, 100, 1), (10 - 4 - 1) * 4);
        assert_eq!(unread_bytes(10, 4, 100), 24);
        assert_eq!(unread_bytes(4, 10, 100), 94 * 4);
        assert_eq!(unread_bytes(7, 7, 100), 0);
        assert!(fits(8, 8 + CHUNK_MARGIN));
        assert!(!fits(9, 8 + CHUNK_MARGIN));
    }

    #[test]
    fn a_writer_never_catches_up_with_the_reader() {
        // Fill a small ring with chunks of every size until it refuses: the write pointer
        // must never land on the read pointer while data is unread.
        let n = 64u32;
        for size in 0..40u32 {
            let (mut w, r) = (0u32, 0u32);
            let mut committed = 0;
            while fits(size as usize, space_free(w, r, n, committed)) {
                w = chunk_step(w, size, n);
                committed += 1;
                assert!(w != r, "size {size}: ring wrapped onto unread data");
            }
            assert!(committed > 0 || size as usize + CHUNK_MARGIN > 256);
        }
    }
}

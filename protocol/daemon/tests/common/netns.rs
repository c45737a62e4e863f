//! Running part of a test inside a node's network namespace: a thread of its own joins it
//! with setns(2) (the network namespace is per thread), so sockets it creates belong to that
//! namespace: UDP sockets on the node's address, libqb's abstract unix sockets.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// Runs `f` on a new thread inside the namespace `ip netns` calls `ns`.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> R {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a descriptor we own, for the calling thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}

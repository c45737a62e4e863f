//! The two system calls the runner needs without a helper process.
#![allow(unsafe_code)]

/// Sends `sig` to `pid`; a process that is already gone is not an error for the runner.
pub(crate) fn kill(pid: i32, sig: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) has no memory effects; pid > 0 targets exactly one process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Whether the runner is root (network namespaces and corosync need it).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

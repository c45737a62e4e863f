//! The recorder's life in the recorded process: set up when the library is loaded, flushed
//! at exit, and kept consistent across fork. It drives [`sink`] and nothing drives it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::sink;

/// Runs recording code; a bug there must not unwind into C or fail the call.
pub(crate) fn guarded(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

extern "C" fn at_exit() {
    guarded(sink::flush_at_exit);
}

extern "C" fn fork_prepare() {
    guarded(sink::before_fork);
}

extern "C" fn fork_parent() {
    guarded(sink::after_fork_parent);
}

extern "C" fn fork_child() {
    guarded(sink::after_fork_child);
}

/// Registers the exit flush and the fork handlers (once, from the constructor).
fn register_process_handlers() {
    // SAFETY: registering plain `extern "C" fn()` handlers that live as long as the
    // process (a preloaded library is never unloaded).
    unsafe {
        libc::atexit(at_exit);
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
    }
}

extern "C" fn constructor() {
    guarded(|| {
        if sink::init(std::env::var_os(crate::OUTPUT_ENV)) {
            register_process_handlers();
        }
    });
}

/// Runs [`constructor`] when the library is loaded, before `main`.
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

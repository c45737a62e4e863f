//! Logging in corosync's format, so a totemd log and a corosync log read side by side.
//!
//! corosync 3.1.7 (`exec/logsys.c::logsys_format_set`, `exec/logconfig.c`) writes stderr as
//! `%T %7p [%6g] %b` (hires timestamp, priority padded to 7, subsystem padded to 6) and the
//! logfile as `%T [%P] %H %N %7p [%6g] %b` (adding pid, host name and program name), e.g.
//!
//! ```text
//! Nov 21 15:02:54.034 [1307] vm corosync notice  [MAIN  ] Completed service synchronization, ready to provide service.
//! ```
//!
//! totemd writes the same with its own program name.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Logging, Priority, Timestamp};

/// The program name in logfile lines (`%N`).
const PROGRAM: &str = "totemd";

/// A corosync log subsystem (`%g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsys {
    /// `MAIN`.
    Main,
    /// `TOTEM`.
    Totem,
    /// `QUORUM`.
    Quorum,
    /// `CPG`.
    Cpg,
    /// `SYNC`.
    Sync,
    /// `QB` (IPC).
    Qb,
    /// `KNET` (libknet's lines).
    Knet,
    /// `CFG`.
    Cfg,
}

impl Subsys {
    /// The name as corosync prints it.
    pub fn name(self) -> &'static str {
        match self {
            Subsys::Main => "MAIN",
            Subsys::Totem => "TOTEM",
            Subsys::Quorum => "QUORUM",
            Subsys::Cpg => "CPG",
            Subsys::Sync => "SYNC",
            Subsys::Qb => "QB",
            Subsys::Knet => "KNET",
            Subsys::Cfg => "CFG",
        }
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Error => "error",
        Priority::Warning => "warning",
        Priority::Notice => "notice",
        Priority::Info => "info",
        Priority::Debug => "debug",
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// libqb's `%t` (`%b %d %H:%M:%S`) or `%T` (the same with `.%03llu` milliseconds), then a
/// space; nothing when timestamps are off.
pub fn format_timestamp(kind: Timestamp, at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (mon, day, h, m, s) = crate::sys::local_time(since.as_secs() as i64);
    match kind {
        Timestamp::Off => String::new(),
        Timestamp::On => format!("{} {day:02} {h:02}:{m:02}:{s:02} ", MONTHS[mon]),
        Timestamp::Hires => format!(
            "{} {day:02} {h:02}:{m:02}:{s:02}.{:03} ",
            MONTHS[mon],
            since.subsec_millis()
        ),
    }
}

/// `%7p [%6g] %b`.
pub fn format_body(subsys: Subsys, priority: Priority, message: &str) -> String {
    format!(
        "{:<7} [{:<6}] {message}",
        priority_name(priority),
        subsys.name()
    )
}

/// Where log lines go and what passes.
#[derive(Debug)]
pub struct Logger {
    stderr: bool,
    file: Option<File>,
    /// Where `file` was opened, for [`reopen`].
    path: Option<std::path::PathBuf>,
    file_priority: Priority,
    debug: bool,
    debug_subsys: Vec<String>,
    timestamp: Timestamp,
    pid: u32,
    host: String,
}

impl Logger {
    /// Messages of info and above to stderr: what corosync does before it has read its
    /// `logging` section.
    pub fn early() -> Logger {
        Logger {
            stderr: true,
            file: None,
            path: None,
            file_priority: Priority::Info,
            debug: false,
            debug_subsys: Vec::new(),
            timestamp: Timestamp::Hires,
            pid: std::process::id(),
            host: String::new(),
        }
    }

    /// As the `logging` section says. The logfile is opened for appending, as libqb does.
    pub fn from_config(l: &Logging) -> std::io::Result<Logger> {
        let file = match (&l.logfile, l.to_logfile) {
            (Some(path), true) => Some(OpenOptions::new().create(true).append(true).open(path)?),
            _ => None,
        };
        Ok(Logger {
            stderr: l.to_stderr,
            path: file.as_ref().and(l.logfile.clone()),
            file,
            file_priority: l.logfile_priority,
            debug: l.debug,
            debug_subsys: l.debug_subsys.clone(),
            timestamp: l.timestamp,
            pid: std::process::id(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        })
    }

    fn passes(&self, subsys: Subsys, priority: Priority, threshold: Priority) -> bool {
        if priority == Priority::Debug {
            return self.debug || self.debug_subsys.iter().any(|s| s == subsys.name());
        }
        priority <= threshold
    }

    /// Writes one message. Write errors are ignored: a full disk must not stop the ring.
    pub fn log(&mut self, subsys: Subsys, priority: Priority, message: fmt::Arguments<'_>) {
        let to_stderr = self.stderr && self.passes(subsys, priority, Priority::Info);
        let to_file = self.file.is_some() && self.passes(subsys, priority, self.file_priority);
        if !to_stderr && !to_file {
            return;
        }
        let ts = format_timestamp(self.timestamp, SystemTime::now());
        let body = format_body(subsys, priority, &message.to_string());
        if to_stderr {
            let _ = writeln!(std::io::stderr().lock(), "{ts}{body}");
        }
        if let (true, Some(f)) = (to_file, self.file.as_mut()) {
            let _ = writeln!(f, "{ts}[{}] {} {PROGRAM} {body}", self.pid, self.host);
        }
    }
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Installs the process's logger (replacing the early one).
pub fn install(logger: Logger) {
    if let Ok(mut g) = LOGGER.lock() {
        *g = Some(logger);
    }
}

/// Opens the log file again, for logrotate (`logsys_reopen_log_files`, asked through
/// cfg's REOPEN_LOG_FILES by `corosync-cfgtool -L`). On failure the old file is kept.
pub fn reopen() -> std::io::Result<()> {
    let Ok(mut g) = LOGGER.lock() else {
        return Ok(());
    };
    let Some(logger) = g.as_mut() else {
        return Ok(());
    };
    if let Some(path) = &logger.path {
        logger.file = Some(OpenOptions::new().create(true).append(true).open(path)?);
    }
    Ok(())
}

/// Logs through the installed logger, or the early one when none is installed yet.
pub fn log(subsys: Subsys, priority: Priority, message: fmt::Arguments<'_>) {
    if let Ok(mut g) = LOGGER.lock() {
        g.get_or_insert_with(Logger::early)
            .log(subsys, priority, message);
    }
}

/// `log_printf(LOGSYS_LEVEL_*, ...)`: `logf!(Totem, Notice, "A new membership ...")`.
#[macro_export]
macro_rules! logf {
    ($subsys:ident, $prio:ident, $($arg:tt)*) => {
        $crate::log::log(
            $crate::log::Subsys::$subsys,
            $crate::config::Priority::$prio,
            format_args!($($arg)*),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_corosyncs() {
        assert_eq!(
            format_body(
                Subsys::Main,
                Priority::Notice,
                "Completed service synchronization, ready to provide service."
            ),
            "notice  [MAIN  ] Completed service synchronization, ready to provide service."
        );
        assert_eq!(
            format_body(Subsys::Quorum, Priority::Warning, "x"),
            "warning [QUORUM] x"
        );
    }

    #[test]
    fn timestamps_have_libqbs_shape() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let hires = format_timestamp(Timestamp::Hires, t);
        // "Nov 14 22:13:20.123 " in UTC; the month and day depend on the local zone.
        assert_eq!(hires.len(), "Nov 14 22:13:20.123 ".len(), "{hires:?}");
        assert!(hires.ends_with(".123 "), "{hires:?}");
        assert_eq!(
            format_timestamp(Timestamp::On, t).len(),
            "Nov 14 22:13:20 ".len()
        );
        assert_eq!(format_timestamp(Timestamp::Off, t), "");
    }
}

/// At most `lines` log lines per `window` for one kind of repeated event; what is held back
/// is counted and handed to the caller when the next window opens, for one summary line. A
/// flood of bad input must not turn the log itself into the attack (one warning per
/// malformed datagram wrote 120,000 lines a minute under a flood).
#[derive(Debug, Clone)]
pub struct LogLimit {
    lines: u32,
    window: totem_srp::Duration,
    start: Option<totem_srp::Instant>,
    logged: u32,
    held_back: u64,
}

/// What [`LogLimit::allow`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// Whether this line may be written.
    pub log: bool,
    /// Lines held back in the window that just ended (0 unless a window ended now): to be
    /// reported in one line.
    pub held_back: u64,
}

impl LogLimit {
    /// `lines` per `window`.
    pub const fn new(lines: u32, window: totem_srp::Duration) -> LogLimit {
        LogLimit {
            lines,
            window,
            start: None,
            logged: 0,
            held_back: 0,
        }
    }

    /// May a line be written at `now`?
    pub fn allow(&mut self, now: totem_srp::Instant) -> Allowed {
        let mut ended = 0;
        if self.start.is_none_or(|w| now >= w + self.window) {
            ended = self.held_back;
            self.start = Some(now);
            self.logged = 0;
            self.held_back = 0;
        }
        let log = self.logged < self.lines;
        if log {
            self.logged += 1;
        } else {
            self.held_back += 1;
        }
        Allowed {
            log,
            held_back: ended,
        }
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use totem_srp::{Duration, Instant};

    #[test]
    fn lines_are_limited_per_window_and_the_rest_reported_when_the_next_opens() {
        let mut l = LogLimit::new(10, Duration::from_millis(10_000));
        let t0 = Instant::from_millis(0);
        let allowed = (0..25).filter(|_| l.allow(t0).log).count();
        assert_eq!(allowed, 10);
        assert_eq!(
            l.allow(t0 + Duration::from_millis(9_999)),
            Allowed {
                log: false,
                held_back: 0
            }
        );
        // A new window: a line again, and the 16 held back in the last one to report.
        assert_eq!(
            l.allow(t0 + Duration::from_millis(10_000)),
            Allowed {
                log: true,
                held_back: 16
            }
        );
    }
}

//! Time as a value (smoltcp's `time.rs` shape): microseconds since an arbitrary epoch chosen
//! by whoever drives the engine — the daemon's monotonic clock, or the simulator's virtual one.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A point in time, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: i64,
}

/// A span of time, in microseconds (never negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// From microseconds.
    pub const fn from_micros(micros: i64) -> Instant {
        Instant { micros }
    }

    /// From milliseconds.
    pub const fn from_millis(millis: i64) -> Instant {
        Instant {
            micros: millis * 1000,
        }
    }

    /// Microseconds since the epoch.
    pub const fn total_micros(self) -> i64 {
        self.micros
    }

    /// Milliseconds since the epoch, rounded down.
    pub const fn total_millis(self) -> i64 {
        self.micros.div_euclid(1000)
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros).max(0) as u64,
        }
    }
}

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration { micros: 0 };

    /// From microseconds.
    pub const fn from_micros(micros: u64) -> Duration {
        Duration { micros }
    }

    /// From milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration {
            micros: millis * 1000,
        }
    }

    /// Microseconds.
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds, rounded down.
    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant {
            micros: self
                .micros
                .saturating_add(d.micros.min(i64::MAX as u64) as i64),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates at zero: time spans are never negative.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, other: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_add(other.micros),
        }
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros.div_euclid(1_000_000),
            self.micros.rem_euclid(1_000_000)
        )
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.micros % 1000 == 0 {
            write!(f, "{}ms", self.micros / 1000)
        } else {
            write!(f, "{}.{:03}ms", self.micros / 1000, self.micros % 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(3), Instant::from_millis(8));
        assert_eq!(Instant::from_millis(8) - t, Duration::from_millis(3));
        assert_eq!(t - Instant::from_millis(8), Duration::ZERO);
        assert_eq!(
            Instant::from_micros(i64::MAX) + Duration::from_millis(1),
            Instant::from_micros(i64::MAX)
        );
        assert_eq!(Instant::from_micros(-1).total_millis(), -1);
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(Instant::from_micros(1_500_000).to_string(), "1.500000s");
        assert_eq!(Duration::from_millis(714).to_string(), "714ms");
        assert_eq!(Duration::from_micros(1_250).to_string(), "1.250ms");
    }
}

//! Sequence-number comparison with corosync's cheap rollover handling
//! (`include/corosync/sq.h::sq_lt_compare` / `sq_lte_compare`): when either value is past
//! 0x80000000 both are shifted down by 0x10000 (wrapping) before comparing, so a window of
//! recent numbers just after a wrap still compares in order.

/// `ADJUST_ROLLOVER_POINT`.
const ROLLOVER_POINT: u32 = 0x8000_0000;
/// `ADJUST_ROLLOVER_VALUE`.
const ROLLOVER_VALUE: u32 = 0x1_0000;

/// `sq_lt_compare(a, b)`: is `a` before `b`?
pub fn seq_lt(a: u32, b: u32) -> bool {
    if a > ROLLOVER_POINT || b > ROLLOVER_POINT {
        a.wrapping_sub(ROLLOVER_VALUE) < b.wrapping_sub(ROLLOVER_VALUE)
    } else {
        a < b
    }
}

/// `sq_lte_compare(a, b)`: is `a` before or equal to `b`?
pub fn seq_lte(a: u32, b: u32) -> bool {
    if a > ROLLOVER_POINT || b > ROLLOVER_POINT {
        a.wrapping_sub(ROLLOVER_VALUE) <= b.wrapping_sub(ROLLOVER_VALUE)
    } else {
        a <= b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_order_below_the_rollover_point() {
        assert!(seq_lt(1, 2));
        assert!(!seq_lt(2, 2));
        assert!(seq_lte(2, 2));
        assert!(!seq_lte(3, 2));
    }

    #[test]
    fn numbers_just_after_a_wrap_follow_those_just_before() {
        // 0xFFFF_FFFF is SEQNO_START_MSG - 1 (the initial aru): it must be before 0..=0xFFFE.
        assert!(seq_lt(0xFFFF_FFFF, 0));
        assert!(seq_lt(0xFFFF_FFF0, 5));
        assert!(!seq_lt(5, 0xFFFF_FFF0));
        assert!(seq_lte(0xFFFF_FFFF, 0xFFFF_FFFF));
        // Beyond the 0x10000 window the cheap adjustment no longer orders them: corosync's
        // behaviour, kept.
        assert!(!seq_lt(0xFFFF_FFFF, 0x2_0000));
    }
}

//! Scalar kernels of format 1: the arithmetic every part of bnnforge must agree on.
//!
//! The whole-network model ([`crate::model`]) is built from these, and the hardware
//! blocks in `bnnforge-hdl` test their Verilog against them, lane by lane.

/// Σ w·x over `n` binary lanes held in the low `n` bits of `x` and `w` (bit 1 = +1).
///
/// Hardware computes it as `2·popcount(XNOR) − n`; here as `n − 2·popcount(XOR)`,
/// which needs no mask for the bits above `n` when both words keep them at zero.
pub fn binary_dot(x: u64, w: u64, n: u32) -> i64 {
    debug_assert!(n <= 64);
    let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let disagree = ((x ^ w) & mask).count_ones() as i64;
    n as i64 - 2 * disagree
}

/// Number of lanes among the low `n` where `x` and `w` agree: popcount(XNOR).
pub fn xnor_popcount(x: u64, w: u64, n: u32) -> u32 {
    let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    (!(x ^ w) & mask).count_ones()
}

/// The threshold op on one value: how many thresholds `y` reaches.
///
/// `y ≥ T[k]` counts when `flip` is false, `y ≤ T[k]` when it is true. The order of
/// `thresholds` does not matter. With one threshold the result is 0 or 1, the bit of a
/// binary output (1 = +1).
pub fn threshold_count(y: i64, thresholds: &[i64], flip: bool) -> u32 {
    thresholds
        .iter()
        .filter(|&&t| if flip { y <= t } else { y >= t })
        .count() as u32
}

/// The same as [`threshold_count`] on thresholds sorted ascending, in O(log n).
pub fn threshold_count_sorted(y: i64, sorted: &[i64], flip: bool) -> u32 {
    if flip {
        (sorted.len() - sorted.partition_point(|&t| t < y)) as u32
    } else {
        sorted.partition_point(|&t| t <= y) as u32
    }
}

/// Number of bits of a two's-complement or unsigned register that holds every value
/// in `lo..=hi`, and whether it is signed. At least one bit.
pub fn int_width(lo: i128, hi: i128) -> (u32, bool) {
    assert!(lo <= hi, "empty range {lo}..={hi}");
    if lo >= 0 {
        let w = 128 - (hi as u128).leading_zeros();
        (w.max(1), false)
    } else {
        // bits for -2^(w-1) <= lo and hi <= 2^(w-1) - 1
        let neg = 128 - ((-(lo + 1)) as u128).leading_zeros() + 1;
        let pos = 128 - (hi.max(0) as u128).leading_zeros() + 1;
        (neg.max(pos), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_dot_matches_plain_sum() {
        // x = +1 +1 -1 (bits 0b011), w = +1 -1 -1 (bits 0b001): 1 - 1 + 1 = 1
        assert_eq!(binary_dot(0b011, 0b001, 3), 1);
        assert_eq!(binary_dot(0, 0, 64), 64);
        assert_eq!(binary_dot(u64::MAX, 0, 64), -64);
        assert_eq!(xnor_popcount(0b011, 0b001, 3), 2);
        // bits above n are ignored
        assert_eq!(binary_dot(0b1000, 0, 3), 3);
    }

    #[test]
    fn threshold_counts_both_ways() {
        let t = [5, -3, 10];
        assert_eq!(threshold_count(5, &t, false), 2);
        assert_eq!(threshold_count(4, &t, false), 1);
        assert_eq!(threshold_count(5, &t, true), 2);
        assert_eq!(threshold_count(11, &t, true), 0);
        assert_eq!(threshold_count(i64::MIN, &[i64::MIN], false), 1);
        let mut s = t;
        s.sort();
        for y in -20..20 {
            for flip in [false, true] {
                assert_eq!(
                    threshold_count(y, &t, flip),
                    threshold_count_sorted(y, &s, flip)
                );
            }
        }
    }

    #[test]
    fn widths() {
        assert_eq!(int_width(0, 1), (1, false));
        assert_eq!(int_width(0, 15), (4, false));
        assert_eq!(int_width(0, 16), (5, false));
        assert_eq!(int_width(-1, 1), (2, true));
        assert_eq!(int_width(-8, 7), (4, true));
        assert_eq!(int_width(-9, 7), (5, true));
        assert_eq!(int_width(-8, 8), (5, true));
        assert_eq!(int_width(-784, 784), (11, true));
        assert_eq!(int_width(i64::MIN as i128, i64::MAX as i128), (64, true));
    }
}

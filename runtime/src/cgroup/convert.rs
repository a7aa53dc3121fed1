//! v1-style values of the runtime-spec turned into cgroup v2 values, the way runc and crun do.

/// `cpu.shares` (2..=262144, default 1024) → `cpu.weight` (1..=10000, default 100).
///
/// The quadratic-in-log curve of current runc (PR 4785) and crun (issue 1721): it maps the minimum, the default and
/// the maximum onto each other (2 → 1, 1024 → 100, 262144 → 10000), which the older linear
/// formula (1024 → 39) did not. 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            // Rounding noise must not push an exact result (1024 → 100.000…01) one step up.
            let weight = 10f64.powf(exponent);
            let nearest = weight.round();
            if (weight - nearest).abs() < 1e-9 { nearest as u64 } else { weight.ceil() as u64 }
        }
    }
}

/// `blkio.weight` (10..=1000) → `io.weight` (1..=10000), linearly. 0 means unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// The spec's memory.swap is memory+swap (v1's memsw); v2's `memory.swap.max` is swap alone.
///
/// Returns the value for `memory.swap.max`: `None` to leave it, `Some(-1)` for "max".
/// `memory` is the memory limit in effect (-1 unlimited, 0 unknown).
pub fn swap_to_v2(swap: Option<i64>, memory: i64) -> Result<Option<i64>, &'static str> {
    match (swap, memory) {
        // Unlimited memory without a swap value: unlimited swap too (what v1 ends up with).
        (None | Some(0), -1) => Ok(Some(-1)),
        (None | Some(0), _) => Ok(None),
        (Some(-1), _) => Ok(Some(-1)),
        (Some(s), -1) => Ok(Some(s)),
        (Some(_), 0) => Err("cannot set a swap limit without a memory limit"),
        (Some(_), m) if m < 0 => Err("invalid memory limit"),
        (Some(s), m) if s < m => Err("memory+swap limit must be at least the memory limit"),
        (Some(s), m) => Ok(Some(s - m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_weights_at_the_ends_and_the_default() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1 << 20), 10_000);
        // The curve between (values worked out independently from the formula).
        assert_eq!(shares_to_weight(3), 2);
        assert_eq!(shares_to_weight(100), 17);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(100_000), 4340);
        // Monotonic across the range.
        let mut last = 0;
        for s in (2..262_144).step_by(97) {
            let w = shares_to_weight(s);
            assert!(w >= last && (1..=10_000).contains(&w), "{s} -> {w}");
            last = w;
        }
    }

    #[test]
    fn blkio_weights_scale_linearly() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap_in_the_spec() {
        assert_eq!(swap_to_v2(Some(200), 100), Ok(Some(100)));
        assert_eq!(swap_to_v2(Some(100), 100), Ok(Some(0)));
        assert_eq!(swap_to_v2(Some(-1), 100), Ok(Some(-1)));
        assert_eq!(swap_to_v2(None, -1), Ok(Some(-1)));
        assert_eq!(swap_to_v2(None, 100), Ok(None));
        assert_eq!(swap_to_v2(Some(300), -1), Ok(Some(300)));
        assert!(swap_to_v2(Some(50), 100).is_err());
        assert!(swap_to_v2(Some(50), 0).is_err());
    }
}

//! Where a container's cgroup files are on the host, on a v1 (one hierarchy per controller) or a
//! pure v2 (unified) layout, so that the cgroup tests run on both.

use std::path::{Path, PathBuf};

/// Whether /sys/fs/cgroup is the cgroup2 unified hierarchy.
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's cgroup directory for `controller` (ignored on v2).
pub fn dir(controller: &str, cgroups_path: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if unified() {
        PathBuf::from("/sys/fs/cgroup").join(rel)
    } else {
        PathBuf::from("/sys/fs/cgroup").join(controller).join(rel)
    }
}

/// A file of the container's cgroup: `v1_file` in the controller's hierarchy, or `v2_file` in
/// the unified one.
pub fn file(controller: &str, cgroups_path: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    dir(controller, cgroups_path).join(if unified() { v2_file } else { v1_file })
}

/// cpu.shares → cpu.weight as runc ≥ 1.2 and crun convert it (the conversion the OCI runtimes
/// settled on: 2 → 1, 1024 → 100, 262144 → 10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_conversion_reference_points() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}

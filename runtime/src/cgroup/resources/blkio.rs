//! blockIO: weights and throttles (v1 blkio, v2 io).

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::write_if_supported;
use crate::cgroup::CgroupError;
use crate::cgroup::convert::blkio_weight_to_io_weight;
use crate::cgroup::dir::CgroupDir;

fn weight(b: &LinuxBlockIo) -> Option<u16> {
    b.weight().filter(|w| *w != 0)
}

fn throttles(b: &LinuxBlockIo) -> [(&'static str, &'static str, &[LinuxThrottleDevice]); 4] {
    fn list(l: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        l.as_deref().unwrap_or(&[])
    }
    [
        ("blkio.throttle.read_bps_device", "rbps", list(b.throttle_read_bps_device())),
        ("blkio.throttle.write_bps_device", "wbps", list(b.throttle_write_bps_device())),
        ("blkio.throttle.read_iops_device", "riops", list(b.throttle_read_iops_device())),
        ("blkio.throttle.write_iops_device", "wiops", list(b.throttle_write_iops_device())),
    ]
}

pub(super) fn is_set_v2(b: &LinuxBlockIo) -> bool {
    weight(b).is_some()
        || b.weight_device().iter().flatten().any(|d| d.weight().is_some())
        || throttles(b).iter().any(|(_, _, l)| !l.is_empty())
}

pub(super) fn is_set_v1(b: &LinuxBlockIo) -> bool {
    is_set_v2(b)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().iter().flatten().any(|d| d.leaf_weight().is_some())
}

pub(super) fn ignored_v2(b: &LinuxBlockIo) -> Vec<&'static str> {
    let mut out = Vec::new();
    if b.leaf_weight().is_some_and(|w| w != 0) {
        out.push("blockIO.leafWeight");
    }
    if b.weight_device().iter().flatten().any(|d| d.leaf_weight().is_some()) {
        out.push("blockIO.weightDevice.leafWeight");
    }
    out
}

pub(super) fn validate(b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let bad = |field: &str, reason: String| CgroupError::InvalidResource { field: format!("blockIO.{field}"), reason };
    for (name, w) in [("weight", b.weight()), ("leafWeight", b.leaf_weight())] {
        if let Some(w) = w.filter(|w| *w != 0 && !(10..=1000).contains(w)) {
            return Err(bad(name, format!("{w} is out of range 10-1000")));
        }
    }
    let numbers = |major: i64, minor: i64| u32::try_from(major).is_ok() && u32::try_from(minor).is_ok();
    for d in b.weight_device().iter().flatten() {
        if !numbers(d.major(), d.minor()) {
            return Err(bad("weightDevice", format!("invalid device {}:{}", d.major(), d.minor())));
        }
        for w in [d.weight(), d.leaf_weight()].into_iter().flatten() {
            if !(10..=1000).contains(&w) {
                return Err(bad("weightDevice", format!("weight {w} is out of range 10-1000")));
            }
        }
    }
    for (file, _, list) in throttles(b) {
        if let Some(d) = list.iter().find(|d| !numbers(d.major(), d.minor())) {
            return Err(bad(file, format!("invalid device {}:{}", d.major(), d.minor())));
        }
    }
    Ok(())
}

pub(super) fn apply(dir: &CgroupDir, b: &LinuxBlockIo, v2: bool) -> Result<(), CgroupError> {
    if v2 { apply_v2(dir, b) } else { apply_v1(dir, b) }
}

fn apply_v1(dir: &CgroupDir, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let has_weight = weight(b).is_some() || b.weight_device().iter().flatten().any(|d| d.weight().is_some());
    // CFQ's blkio.weight is gone from current kernels; BFQ has blkio.bfq.weight.
    let prefix = if has_weight && !dir.exists("blkio.weight") { "blkio.bfq." } else { "blkio." };
    if let Some(w) = weight(b) {
        dir.write(&format!("{prefix}weight"), &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write_if_supported(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            dir.write(&format!("{prefix}weight_device"), &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        if let Some(w) = d.leaf_weight() {
            write_if_supported(dir, "blkio.leaf_weight_device", &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
    }
    for (file, _, list) in throttles(b) {
        for d in list {
            dir.write(file, &format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
        }
    }
    Ok(())
}

fn apply_v2(dir: &CgroupDir, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let has_weight = weight(b).is_some() || b.weight_device().iter().flatten().any(|d| d.weight().is_some());
    // BFQ takes blkio's 10-1000 scale as is; io.weight (iocost) has its own 1-10000.
    let bfq = has_weight && dir.exists("io.bfq.weight");
    let (file, scale): (&str, fn(u16) -> u64) =
        if bfq { ("io.bfq.weight", u64::from) } else { ("io.weight", blkio_weight_to_io_weight) };
    if let Some(w) = weight(b) {
        dir.write(file, &scale(w).to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            dir.write(file, &format!("{}:{} {}", d.major(), d.minor(), scale(w)))?;
        }
    }
    for (_, key, list) in throttles(b) {
        for d in list {
            dir.write("io.max", &format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    fn blkio(json: &str) -> LinuxBlockIo {
        serde_json::from_str(json).unwrap()
    }

    const SPEC: &str = r#"{"weight":500,"leafWeight":300,
        "weightDevice":[{"major":8,"minor":0,"weight":600,"leafWeight":200}],
        "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
        "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":100}]}"#;

    #[test]
    fn v1_with_bfq_only() {
        let t = TempTree::new(&[
            "blkio.bfq.weight",
            "blkio.bfq.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
        ]);
        apply(&CgroupDir::new(t.path().into()), &blkio(SPEC), false).unwrap();
        assert_eq!(t.get("blkio.bfq.weight"), "500\n");
        assert_eq!(t.get("blkio.bfq.weight_device"), "8:0 600\n");
        assert_eq!(t.get("blkio.throttle.read_bps_device"), "8:0 1048576\n");
        assert_eq!(t.get("blkio.throttle.write_iops_device"), "8:16 100\n");
    }

    #[test]
    fn v2_io_weight_is_converted_and_throttles_go_to_io_max() {
        let t = TempTree::new(&["io.weight", "io.max"]);
        apply(&CgroupDir::new(t.path().into()), &blkio(SPEC), true).unwrap();
        assert_eq!(t.get("io.weight"), "4950\n8:0 5960\n");
        assert_eq!(t.get("io.max"), "8:0 rbps=1048576\n8:16 wiops=100\n");

        let t = TempTree::new(&["io.bfq.weight", "io.weight", "io.max"]);
        apply(&CgroupDir::new(t.path().into()), &blkio(SPEC), true).unwrap();
        assert_eq!(t.get("io.bfq.weight"), "500\n8:0 600\n");
        assert_eq!(t.get("io.weight"), "");
    }

    #[test]
    fn out_of_range_weights() {
        assert!(validate(&blkio(r#"{"weight":5}"#)).is_err());
        assert!(validate(&blkio(r#"{"weightDevice":[{"major":8,"minor":0,"weight":2000}]}"#)).is_err());
        assert!(validate(&blkio(r#"{"throttleReadBpsDevice":[{"major":-8,"minor":0,"rate":1}]}"#)).is_err());
        assert!(validate(&blkio(SPEC)).is_ok());
    }
}

//! rdma: per-device HCA handle and object limits.

use std::collections::HashMap;

use oci_spec::runtime::LinuxRdma;

use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

pub(super) fn validate(rdma: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    for (dev, l) in rdma {
        let bad = |reason: String| CgroupError::InvalidResource { field: format!("rdma.{dev}"), reason };
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(bad("invalid device name".into()));
        }
        if l.hca_handles().is_none() && l.hca_objects().is_none() {
            return Err(bad("sets neither hcaHandles nor hcaObjects".into()));
        }
    }
    Ok(())
}

pub(super) fn apply(dir: &CgroupDir, rdma: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devices {
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        dir.write("rdma.max", &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    #[test]
    fn one_line_per_device() {
        let r: HashMap<String, LinuxRdma> =
            serde_json::from_str(r#"{"mlx5_1":{"hcaObjects":100},"mlx5_0":{"hcaHandles":3,"hcaObjects":10000}}"#)
                .unwrap();
        validate(&r).unwrap();
        let t = TempTree::new(&["rdma.max"]);
        apply(&CgroupDir::new(t.path().into()), &r).unwrap();
        assert_eq!(t.get("rdma.max"), "mlx5_0 hca_handle=3 hca_object=10000\nmlx5_1 hca_object=100\n");
        let empty: HashMap<String, LinuxRdma> = serde_json::from_str(r#"{"mlx5_0":{}}"#).unwrap();
        assert!(validate(&empty).is_err());
    }
}

//! network: classID (net_cls) and interface priorities (net_prio); v1 only.

use oci_spec::runtime::LinuxNetwork;

use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

pub(super) fn validate(n: &LinuxNetwork) -> Result<(), CgroupError> {
    for p in n.priorities().iter().flatten() {
        if p.name().is_empty() || p.name().contains(char::is_whitespace) {
            return Err(CgroupError::InvalidResource {
                field: "network.priorities".into(),
                reason: format!("invalid interface name {:?}", p.name()),
            });
        }
    }
    Ok(())
}

pub(super) fn apply_classid(dir: &CgroupDir, n: &LinuxNetwork) -> Result<(), CgroupError> {
    match n.class_id() {
        Some(id) => dir.write("net_cls.classid", &id.to_string()),
        None => Ok(()),
    }
}

pub(super) fn apply_priorities(dir: &CgroupDir, n: &LinuxNetwork) -> Result<(), CgroupError> {
    for p in n.priorities().iter().flatten() {
        dir.write("net_prio.ifpriomap", &format!("{} {}", p.name(), p.priority()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    #[test]
    fn classid_and_priorities() {
        let n: LinuxNetwork = serde_json::from_str(
            r#"{"classID":1048577,"priorities":[{"name":"lo","priority":2},{"name":"eth0","priority":5}]}"#,
        )
        .unwrap();
        let t = TempTree::new(&["net_cls.classid", "net_prio.ifpriomap"]);
        let d = CgroupDir::new(t.path().into());
        apply_classid(&d, &n).unwrap();
        apply_priorities(&d, &n).unwrap();
        assert_eq!(t.get("net_cls.classid"), "1048577\n");
        assert_eq!(t.get("net_prio.ifpriomap"), "lo 2\neth0 5\n");
        let bad: LinuxNetwork = serde_json::from_str(r#"{"priorities":[{"name":"a b","priority":1}]}"#).unwrap();
        assert!(validate(&bad).is_err());
    }
}

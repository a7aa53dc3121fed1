//! The v1 `devices` controller: write the folded state into a new cgroup.

use super::DeviceState;
use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

/// Set a freshly created cgroup to `state`: first the default verdict ("a" resets the list),
/// then each exception. A new cgroup starts with its parent's list, and the kernel refuses
/// (EPERM) anything the parent does not allow, so nothing wider than the parent can result.
pub(crate) fn apply(dir: &CgroupDir, state: &DeviceState) -> Result<(), CgroupError> {
    let (default_file, exception_file) =
        if state.default_allow { ("devices.allow", "devices.deny") } else { ("devices.deny", "devices.allow") };
    dir.write(default_file, "a")?;
    for (key, access) in &state.exceptions {
        dir.write(exception_file, &format!("{key} {access}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::devices::{fold, parse_rules};
    use crate::cgroup::dir::testing::TempTree;

    #[test]
    fn whitelist_resets_then_allows() {
        let tree = TempTree::new(&["devices.allow", "devices.deny"]);
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":7,"minor":0,"access":"r"}]"#,
        )
        .unwrap();
        let state = fold(&parse_rules(&rules).unwrap()).unwrap();
        apply(&CgroupDir::new(tree.path().into()), &state).unwrap();
        assert_eq!(tree.get("devices.deny"), "a\n");
        let allowed = tree.get("devices.allow");
        assert!(allowed.starts_with("c *:* m\nc 1:3 rwm\n"), "{allowed}");
        assert!(allowed.contains("b 7:0 r\n") && allowed.contains("c 136:* rwm\n"), "{allowed}");
    }

    #[test]
    fn blacklist_allows_all_then_denies() {
        let tree = TempTree::new(&["devices.allow", "devices.deny"]);
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":11,"access":"w"}]"#,
        )
        .unwrap();
        let state = fold(&parse_rules(&rules).unwrap()).unwrap();
        apply(&CgroupDir::new(tree.path().into()), &state).unwrap();
        assert_eq!(tree.get("devices.allow"), "a\n");
        assert_eq!(tree.get("devices.deny"), "c 1:11 w\n");
    }
}

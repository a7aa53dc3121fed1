//! pids: the task limit.
//!
//! oci-spec gives `limit` as a plain number, so an absent limit and 0 look the same: 0 is
//! "unset" (runc 1.1's reading; newer runc takes 0 as a real limit of 1), a negative limit
//! lifts it ("max").

use oci_spec::runtime::LinuxPids;

use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

pub(super) fn is_set(p: &LinuxPids) -> bool {
    p.limit() != 0
}

pub(super) fn apply(dir: &CgroupDir, p: &LinuxPids) -> Result<(), CgroupError> {
    match p.limit() {
        0 => Ok(()),
        l if l < 0 => dir.write("pids.max", "max"),
        l => dir.write("pids.max", &l.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    #[test]
    fn limits() {
        let t = TempTree::new(&["pids.max"]);
        let d = CgroupDir::new(t.path().into());
        for json in [r#"{"limit":50}"#, r#"{"limit":-1}"#, r#"{"limit":0}"#, r#"{}"#] {
            apply(&d, &serde_json::from_str(json).unwrap()).unwrap();
        }
        assert_eq!(t.get("pids.max"), "50\nmax\n");
    }
}

//! cpuset: cpu.cpus and cpu.mems. A new v1 cpuset cgroup starts empty; the manager fills the
//! directories it creates from their parents before these values are written.

use oci_spec::runtime::LinuxCpu;

use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

fn cpus(c: &LinuxCpu) -> Option<&str> {
    c.cpus().as_deref().filter(|s| !s.is_empty())
}
fn mems(c: &LinuxCpu) -> Option<&str> {
    c.mems().as_deref().filter(|s| !s.is_empty())
}

pub(super) fn is_set(c: &LinuxCpu) -> bool {
    cpus(c).is_some() || mems(c).is_some()
}

/// A list like "0-3,8,10-11" (the kernel checks the numbers against the machine).
pub(super) fn validate(c: &LinuxCpu) -> Result<(), CgroupError> {
    for (field, v) in [("cpu.cpus", cpus(c)), ("cpu.mems", mems(c))] {
        if let Some(v) = v
            && !is_list(v)
        {
            return Err(CgroupError::InvalidResource {
                field: field.into(),
                reason: format!("{v:?} is not a list of numbers and ranges such as \"0-3,8\""),
            });
        }
    }
    Ok(())
}

fn is_list(v: &str) -> bool {
    v.trim().split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

pub(super) fn apply(dir: &CgroupDir, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(v) = cpus(c) {
        dir.write("cpuset.cpus", v)?;
    }
    if let Some(v) = mems(c) {
        dir.write("cpuset.mems", v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        for ok in ["0", "0-3", "0,2,4-7", "1-1"] {
            assert!(is_list(ok), "{ok}");
        }
        for bad in ["", "a", "0-", "-1", "0--2", "1,,2", "0 1"] {
            assert!(!is_list(bad), "{bad}");
        }
    }
}

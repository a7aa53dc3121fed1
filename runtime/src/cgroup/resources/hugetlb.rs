//! hugepageLimits. Page sizes are named as in the cgroup files ("2MB", "1GB", "64KB"); the
//! reservation limit (".rsvd.", kernel 5.7+) gets the same value where it exists, as runc does.

use std::fs;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

/// The machine's huge page sizes in cgroup naming, from /sys/kernel/mm/hugepages.
pub(crate) fn page_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else { return Vec::new() };
    let mut sizes: Vec<(u64, String)> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let kb: u64 = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
            Some((kb, size_name(kb)))
        })
        .collect();
    sizes.sort_unstable();
    sizes.into_iter().map(|(_, s)| s).collect()
}

fn size_name(kb: u64) -> String {
    match kb {
        kb if kb % (1024 * 1024) == 0 => format!("{}GB", kb / (1024 * 1024)),
        kb if kb % 1024 == 0 => format!("{}MB", kb / 1024),
        kb => format!("{kb}KB"),
    }
}

pub(super) fn validate(limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    let sizes = page_sizes();
    for l in limits {
        if !sizes.contains(l.page_size()) {
            return Err(CgroupError::InvalidResource {
                field: "hugepageLimits".into(),
                reason: format!("page size {:?} is not one of this machine's ({})", l.page_size(), sizes.join(", ")),
            });
        }
        if l.limit() < -1 {
            return Err(CgroupError::InvalidResource {
                field: "hugepageLimits".into(),
                reason: format!("limit {} is neither a byte count nor -1", l.limit()),
            });
        }
    }
    Ok(())
}

pub(super) fn apply(dir: &CgroupDir, limits: &[LinuxHugepageLimit], v2: bool) -> Result<(), CgroupError> {
    let suffix = if v2 { "max" } else { "limit_in_bytes" };
    let mut rsvd = true;
    for l in limits {
        let value = match (l.limit(), v2) {
            (-1, true) => "max".to_owned(),
            (v, _) => v.to_string(),
        };
        dir.write(&format!("hugetlb.{}.{suffix}", l.page_size()), &value)?;
        if rsvd {
            let file = format!("hugetlb.{}.rsvd.{suffix}", l.page_size());
            match dir.write_raw(&file, &value) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => rsvd = false,
                Err(e) => return Err(dir.write_error(&file, &value, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    #[test]
    fn size_names() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1_048_576), "1GB");
        assert_eq!(size_name(64), "64KB");
    }

    #[test]
    fn limit_and_reservation() {
        let l: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize":"2MB","limit":4194304}]"#).unwrap();
        let t = TempTree::new(&["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"]);
        apply(&CgroupDir::new(t.path().into()), &l, true).unwrap();
        assert_eq!(t.get("hugetlb.2MB.max"), "4194304\n");
        assert_eq!(t.get("hugetlb.2MB.rsvd.max"), "4194304\n");
        // Without reservation files (older kernels) only the limit.
        let t = TempTree::new(&["hugetlb.2MB.limit_in_bytes"]);
        apply(&CgroupDir::new(t.path().into()), &l, false).unwrap();
        assert_eq!(t.get("hugetlb.2MB.limit_in_bytes"), "4194304\n");
    }

    #[test]
    fn unknown_page_size() {
        let l: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize":"3MB","limit":1}]"#).unwrap();
        assert!(validate(&l).unwrap_err().to_string().contains("\"3MB\""));
    }
}

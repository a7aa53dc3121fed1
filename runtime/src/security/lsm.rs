//! AppArmor profiles and SELinux process labels (`process.apparmorProfile`,
//! `process.selinuxLabel`): the label the process gets at `execve`, set by writing the LSM's
//! `exec` attribute of the calling task, as runc does. The write goes through a private procfs
//! instance (an image's mounts over `/proc/self/attr` cannot catch it, CVE-2025-52881).
//!
//! A label the host cannot apply (its LSM is not enabled) is refused before anything is created,
//! as runc does: a process that asked for confinement never runs unconfined. Engines only ask
//! for a profile or label where the host has the LSM (podman, Docker and the CRI plugin check).

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use crate::plan::process::{ExecLabel, ProcessPlan};

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("apply AppArmor profile {0:?}")]
    AppArmor(String, #[source] Errno),
    #[error("apply SELinux label {0:?}")]
    SeLinux(String, #[source] Errno),
    #[error(
        "AppArmor profile {0:?} cannot be applied: AppArmor is not enabled on this host \
         (/sys/module/apparmor/parameters/enabled is not Y); the process is not run unconfined"
    )]
    AppArmorNotEnabled(String),
    #[error(
        "SELinux label {0:?} cannot be applied: SELinux is not enabled on this host (no \
         /sys/fs/selinux); the process is not run unconfined"
    )]
    SeLinuxNotEnabled(String),
}

/// Which LSMs the host has enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLsms {
    pub apparmor: bool,
    pub selinux: bool,
}

impl HostLsms {
    pub fn detect() -> Self {
        HostLsms {
            apparmor: std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y")),
            selinux: std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        }
    }

    /// The labels to set for these requests; a request this host cannot apply is an error.
    pub fn exec_labels(self, apparmor: Option<&str>, selinux: Option<&str>) -> Result<Vec<ExecLabel>, LsmError> {
        let mut labels = Vec::new();
        match apparmor {
            Some(p) if self.apparmor => labels.push(ExecLabel::AppArmor(p.to_owned())),
            Some(p) => return Err(LsmError::AppArmorNotEnabled(p.to_owned())),
            None => {}
        }
        match selinux {
            Some(l) if self.selinux => labels.push(ExecLabel::SeLinux(l.to_owned())),
            Some(l) => return Err(LsmError::SeLinuxNotEnabled(l.to_owned())),
            None => {}
        }
        Ok(labels)
    }
}

/// The AppArmor profile and SELinux label the process asks for, to be set at its `execve`;
/// refused when this host cannot apply them.
pub fn resolve_exec_labels(process: &mut ProcessPlan) -> Result<(), LsmError> {
    if process.apparmor_profile.is_none() && process.selinux_label.is_none() {
        return Ok(());
    }
    process.exec_labels =
        HostLsms::detect().exec_labels(process.apparmor_profile.as_deref(), process.selinux_label.as_deref())?;
    Ok(())
}

/// Set `labels` for this task's next `execve`, writing with `write(relative path under procfs,
/// value)`.
pub fn set_exec_labels(labels: &[ExecLabel], write: impl Fn(&str, &[u8]) -> Result<(), Errno>) -> Result<(), LsmError> {
    for label in labels {
        match label {
            ExecLabel::AppArmor(profile) => {
                let value = format!("exec {profile}");
                // Kernels before 5.1 have only the shared attribute file.
                match write("self/attr/apparmor/exec", value.as_bytes()) {
                    Err(Errno::ENOENT) => write("self/attr/exec", value.as_bytes()),
                    other => other,
                }
                .map_err(|e| LsmError::AppArmor(profile.clone(), e))?;
            }
            ExecLabel::SeLinux(label) => {
                write("self/attr/exec", label.as_bytes()).map_err(|e| LsmError::SeLinux(label.clone(), e))?;
            }
        }
    }
    Ok(())
}

/// For callers holding a procfs directory descriptor.
pub fn set_exec_labels_in(procfs: BorrowedFd<'_>, labels: &[ExecLabel]) -> Result<(), LsmError> {
    set_exec_labels(labels, |rel, value| crate::sys::procfs::write(procfs, rel, value))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn labels_only_where_the_lsm_is_enabled_else_refused() {
        let none = HostLsms { apparmor: false, selinux: false };
        let err = none.exec_labels(Some("containers-default"), None).expect_err("no AppArmor");
        assert!(err.to_string().starts_with("AppArmor profile \"containers-default\" cannot be applied"), "{err}");
        let err = none.exec_labels(None, Some("system_u:system_r:container_t:s0")).expect_err("no SELinux");
        assert!(err.to_string().contains("SELinux label \"system_u:system_r:container_t:s0\""), "{err}");
        assert_eq!(none.exec_labels(None, None).expect("nothing asked"), vec![]);

        let aa = HostLsms { apparmor: true, selinux: false };
        let labels = aa.exec_labels(Some("containers-default"), None).expect("AppArmor");
        assert_eq!(labels, vec![ExecLabel::AppArmor("containers-default".into())]);
        assert!(aa.exec_labels(Some("containers-default"), Some("l")).is_err(), "the label is refused");

        let se = HostLsms { apparmor: false, selinux: true };
        let labels = se.exec_labels(None, Some("system_u:system_r:container_t:s0")).expect("SELinux");
        assert_eq!(labels, vec![ExecLabel::SeLinux("system_u:system_r:container_t:s0".into())]);
    }

    #[test]
    fn apparmor_written_as_exec_command_with_fallback() {
        let written = RefCell::new(Vec::new());
        set_exec_labels(&[ExecLabel::AppArmor("p1".into())], |rel, value| {
            written.borrow_mut().push((rel.to_owned(), value.to_vec()));
            if rel == "self/attr/apparmor/exec" { Err(Errno::ENOENT) } else { Ok(()) }
        })
        .expect("set");
        assert_eq!(
            written.into_inner(),
            vec![
                ("self/attr/apparmor/exec".to_owned(), b"exec p1".to_vec()),
                ("self/attr/exec".to_owned(), b"exec p1".to_vec())
            ]
        );
    }

    #[test]
    fn write_failure_names_the_label() {
        let err = set_exec_labels(&[ExecLabel::SeLinux("l1".into())], |_, _| Err(Errno::EINVAL)).expect_err("fails");
        assert_eq!(err.to_string(), "apply SELinux label \"l1\"");
    }
}

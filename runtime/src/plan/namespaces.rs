//! Which namespaces the container gets, and who makes each one: the `clone3` call, the child
//! (setns/unshare), or the parent around the clone (pid and time, which only affect children).
//!
//! Pure: no system calls, so every combination is unit-tested.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// What the container gets for one namespace type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ns {
    /// Share the runtime's namespace.
    #[default]
    Host,
    /// A new namespace.
    New,
    /// Join the namespace at this path (`/proc/<pid>/ns/net`, a bind-mounted nsfs file).
    Join(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    pub user: Ns,
    pub mount: Ns,
    pub pid: Ns,
    pub net: Ns,
    pub ipc: Ns,
    pub uts: Ns,
    pub cgroup: Ns,
    pub time: Ns,
    /// New namespaces created by `clone3` itself.
    pub clone_flags: CloneFlags,
    /// Namespaces the child joins with setns, user namespace first.
    pub child_joins: Vec<(CloneFlags, PathBuf)>,
    /// New namespaces the child unshares after joining and after being placed in its cgroup.
    pub child_unshare: CloneFlags,
    /// Namespaces the parent enters (for its children only) just around `clone3`: pid and time.
    pub parent_joins: Vec<(CloneFlags, PathBuf)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamespaceError {
    #[error("linux.namespaces: duplicate namespace type {0}")]
    Duplicate(String),
    #[error("linux.namespaces: path of the {kind} namespace must be absolute, got {path:?}")]
    RelativePath { kind: String, path: PathBuf },
    #[error("linux.namespaces: {0}")]
    Unsupported(&'static str),
}

impl NamespacePlan {
    pub fn new(namespaces: &[LinuxNamespace]) -> Result<Self, NamespaceError> {
        let mut plan = NamespacePlan {
            user: Ns::Host,
            mount: Ns::Host,
            pid: Ns::Host,
            net: Ns::Host,
            ipc: Ns::Host,
            uts: Ns::Host,
            cgroup: Ns::Host,
            time: Ns::Host,
            clone_flags: CloneFlags::empty(),
            child_joins: Vec::new(),
            child_unshare: CloneFlags::empty(),
            parent_joins: Vec::new(),
        };
        let mut seen = CloneFlags::empty();
        for ns in namespaces {
            let flag = flag_of(ns.typ());
            if seen.contains(flag) {
                return Err(NamespaceError::Duplicate(ns.typ().to_string()));
            }
            seen |= flag;
            let wanted = match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    if !p.is_absolute() {
                        return Err(NamespaceError::RelativePath { kind: ns.typ().to_string(), path: p.clone() });
                    }
                    Ns::Join(p.clone())
                }
                _ => Ns::New,
            };
            *plan.slot(ns.typ()) = wanted;
        }
        plan.decide()?;
        Ok(plan)
    }

    fn slot(&mut self, typ: LinuxNamespaceType) -> &mut Ns {
        match typ {
            LinuxNamespaceType::User => &mut self.user,
            LinuxNamespaceType::Mount => &mut self.mount,
            LinuxNamespaceType::Pid => &mut self.pid,
            LinuxNamespaceType::Network => &mut self.net,
            LinuxNamespaceType::Ipc => &mut self.ipc,
            LinuxNamespaceType::Uts => &mut self.uts,
            LinuxNamespaceType::Cgroup => &mut self.cgroup,
            LinuxNamespaceType::Time => &mut self.time,
        }
    }

    /// Split the work between clone3, the child and the parent.
    ///
    /// New namespaces created by clone3 are owned by the new user namespace when there is one,
    /// and clone3 is the only way (short of a second fork) to put the child itself into a new
    /// pid namespace. The cgroup namespace is always unshared by the child once it sits in its
    /// cgroup, so that its root is the container's cgroup. Joining a pid or time namespace only
    /// changes where children go, so the parent does it around the clone and switches back.
    fn decide(&mut self) -> Result<(), NamespaceError> {
        let others = [
            (CloneFlags::CLONE_NEWNS, self.mount.clone()),
            (CloneFlags::CLONE_NEWUTS, self.uts.clone()),
            (CloneFlags::CLONE_NEWIPC, self.ipc.clone()),
            (CloneFlags::CLONE_NEWNET, self.net.clone()),
        ];
        let any_child_join =
            others.iter().any(|(_, ns)| matches!(ns, Ns::Join(_))) || matches!(self.cgroup, Ns::Join(_));

        match &self.pid {
            Ns::New => self.clone_flags |= CloneFlags::CLONE_NEWPID,
            Ns::Join(p) => self.parent_joins.push((CloneFlags::CLONE_NEWPID, p.clone())),
            Ns::Host => {}
        }
        match &self.time {
            Ns::Join(p) => self.parent_joins.push((CloneFlags::from_bits_retain(libc::CLONE_NEWTIME), p.clone())),
            // A new time namespace is unshared by the parent (offsets must be written before
            // any process enters it); see spawn.
            Ns::New | Ns::Host => {}
        }

        match self.user.clone() {
            Ns::Host => {
                for (flag, ns) in others {
                    match ns {
                        Ns::New => self.clone_flags |= flag,
                        Ns::Join(p) => self.child_joins.push((flag, p)),
                        Ns::Host => {}
                    }
                }
            }
            Ns::New => {
                if any_child_join {
                    return Err(NamespaceError::Unsupported(
                        "joining mount, uts, ipc, net or cgroup namespaces by path together with a new user namespace is not supported yet",
                    ));
                }
                self.clone_flags |= CloneFlags::CLONE_NEWUSER;
                for (flag, ns) in others {
                    if ns == Ns::New {
                        self.clone_flags |= flag;
                    }
                }
            }
            Ns::Join(user_path) => {
                if self.pid == Ns::New {
                    return Err(NamespaceError::Unsupported(
                        "a new pid namespace inside a user namespace joined by path is not supported yet",
                    ));
                }
                // Join the user namespace first: the others are owned by it and the new ones
                // must be created from inside it.
                self.child_joins.push((CloneFlags::CLONE_NEWUSER, user_path));
                for (flag, ns) in others {
                    match ns {
                        Ns::New => self.child_unshare |= flag,
                        Ns::Join(p) => self.child_joins.push((flag, p)),
                        Ns::Host => {}
                    }
                }
            }
        }
        match &self.cgroup {
            Ns::New => self.child_unshare |= CloneFlags::CLONE_NEWCGROUP,
            Ns::Join(p) => self.child_joins.push((CloneFlags::CLONE_NEWCGROUP, p.clone())),
            Ns::Host => {}
        }
        Ok(())
    }

    /// The container's own user namespace is created here (uid/gid maps must be written).
    pub fn new_user(&self) -> bool {
        self.user == Ns::New
    }
}

pub fn flag_of(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        other => CloneFlags::from_bits_retain(other as i32),
    }
}

/// The `/proc/<pid>/ns/<name>` entry of a namespace type.
pub fn proc_name(flag: CloneFlags) -> &'static str {
    match flag {
        f if f == CloneFlags::CLONE_NEWUSER => "user",
        f if f == CloneFlags::CLONE_NEWNS => "mnt",
        f if f == CloneFlags::CLONE_NEWPID => "pid",
        f if f == CloneFlags::CLONE_NEWNET => "net",
        f if f == CloneFlags::CLONE_NEWIPC => "ipc",
        f if f == CloneFlags::CLONE_NEWUTS => "uts",
        f if f == CloneFlags::CLONE_NEWCGROUP => "cgroup",
        _ => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path.map(PathBuf::from));
        n
    }

    use LinuxNamespaceType::*;

    #[test]
    fn runc_default_set_is_one_clone_with_cgroupns_unshared_later() {
        let plan = NamespacePlan::new(&[
            ns(Pid, None),
            ns(Network, None),
            ns(Ipc, None),
            ns(Uts, None),
            ns(Mount, None),
            ns(Cgroup, None),
        ])
        .unwrap();
        let want = CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNS;
        assert_eq!(plan.clone_flags, want);
        assert_eq!(plan.child_unshare, CloneFlags::CLONE_NEWCGROUP);
        assert!(plan.child_joins.is_empty() && plan.parent_joins.is_empty());
    }

    #[test]
    fn joined_pid_namespace_is_entered_by_the_parent() {
        let plan =
            NamespacePlan::new(&[ns(Mount, None), ns(Pid, Some("/proc/7/ns/pid")), ns(Network, Some("/run/netns/x"))])
                .unwrap();
        assert_eq!(plan.parent_joins, vec![(CloneFlags::CLONE_NEWPID, PathBuf::from("/proc/7/ns/pid"))]);
        assert_eq!(plan.child_joins, vec![(CloneFlags::CLONE_NEWNET, PathBuf::from("/run/netns/x"))]);
        assert_eq!(plan.clone_flags, CloneFlags::CLONE_NEWNS);
    }

    #[test]
    fn new_user_namespace_goes_into_the_same_clone() {
        let plan = NamespacePlan::new(&[ns(User, None), ns(Mount, None), ns(Pid, None)]).unwrap();
        assert!(plan.new_user());
        assert_eq!(plan.clone_flags, CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID);
    }

    #[test]
    fn joined_user_namespace_comes_first_and_new_ones_are_unshared_inside_it() {
        let plan =
            NamespacePlan::new(&[ns(Mount, None), ns(Uts, Some("/proc/9/ns/uts")), ns(User, Some("/proc/9/ns/user"))])
                .unwrap();
        assert_eq!(plan.child_joins[0], (CloneFlags::CLONE_NEWUSER, PathBuf::from("/proc/9/ns/user")));
        assert_eq!(plan.child_joins[1].0, CloneFlags::CLONE_NEWUTS);
        assert_eq!(plan.child_unshare, CloneFlags::CLONE_NEWNS);
        assert!(plan.clone_flags.is_empty());
    }

    #[test]
    fn bad_sets_are_refused_with_the_reason() {
        assert_eq!(
            NamespacePlan::new(&[ns(Mount, None), ns(Pid, None), ns(Pid, None)]),
            Err(NamespaceError::Duplicate("pid".into()))
        );
        assert!(matches!(
            NamespacePlan::new(&[ns(Mount, None), ns(Network, Some("netns/x"))]),
            Err(NamespaceError::RelativePath { .. })
        ));
        assert!(matches!(
            NamespacePlan::new(&[ns(Mount, None), ns(User, None), ns(Network, Some("/run/netns/x"))]),
            Err(NamespaceError::Unsupported(_))
        ));
    }
}

//! The process model: one `clone3` of the (single-threaded) runtime into the container's new
//! namespaces and cgroup; the child runs [`init`] from its copy of the Plan, or, for `exec`,
//! [`join`] into a running container. Both clone through [`clone_child`] and share [`child`].
//! See ARCHITECTURE.md.

mod child;
mod id_map;
mod init;
mod join;
mod process;
pub mod protocol;
pub mod sealed_exe;

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cgroup::{ContainerView, Manager};
use crate::error::{Error, ErrorKind, kind_of_errno};
use crate::plan::namespaces::proc_name;
use crate::plan::process::ProcessPlan;
use crate::plan::{Ns, Plan};
use crate::security::seccomp::CompiledSeccomp;
use crate::sys::process::{Forked, clone3_fork, pidfd_send_signal};
use protocol::{Channel, ToChild, ToParent};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("create the sync socketpair")]
    Socketpair(#[source] Errno),
    #[error("keep descriptors 3..{end} free for --preserve-fds")]
    ReservePreserved {
        end: u32,
        #[source]
        source: Errno,
    },
    #[error("the runtime has {0} threads; it must have one when it clones")]
    Threaded(u64),
    #[error("mark inherited descriptors close-on-exec")]
    MarkCloexec(#[source] Errno),
    #[error("make the runtime non-dumpable")]
    NonDumpable(#[source] Errno),
    #[error("open namespace {path}")]
    OpenNamespace {
        path: String,
        #[source]
        source: Errno,
    },
    #[error("enter {0} namespace for the container")]
    ParentSetns(&'static str, #[source] Errno),
    #[error("create the time namespace")]
    TimeNamespace(#[source] Errno),
    #[error("write time offsets")]
    TimeOffsets(#[source] std::io::Error),
    #[error("clone the container process")]
    Clone(#[source] Errno),
    #[error("write oom_score_adj {value} of pid {pid}")]
    OomScoreAdj {
        value: i32,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    IdMap(#[from] id_map::IdMapError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    BindSource(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Channel(#[from] protocol::ChannelError),
    #[error("container init exited before it was ready ({0})")]
    ChildDied(String),
}

impl SpawnError {
    fn kind(&self) -> ErrorKind {
        match self {
            SpawnError::OpenNamespace { source, .. }
            | SpawnError::ParentSetns(_, source)
            | SpawnError::Clone(source) => kind_of_errno(*source),
            _ => ErrorKind::Other,
        }
    }
}

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        let kind = e.kind();
        Error::new(kind, e)
    }
}

/// `--preserve-fds N` hands the caller's descriptors 3..3+N to the container. Numbers in that
/// range the caller did not have open must not be taken by the runtime's own descriptors (the
/// log file, the state directory and its lock, the exec fifo, sockets): the child keeps that
/// range as it is, so the container would get them, and an init holding the locked state
/// directory blocks `start` for ever. Called before the runtime opens anything: every free
/// number in the range gets a close-on-exec placeholder (/dev/null), so what the runtime opens
/// lands above it; the child closes the placeholders ([`child::close_all_but`]), and execve
/// would anyway. The caller's own descriptors there are never close-on-exec (they survived the
/// execve of the runtime), which is how the child tells them apart.
pub fn reserve_preserved_fds(preserve_fds: u32) -> Result<(), SpawnError> {
    if preserve_fds == 0 {
        return Ok(());
    }
    let end = 3u32.saturating_add(preserve_fds);
    loop {
        // open(2) takes the lowest free number: each one below `end` is a hole to fill.
        let fd = nix::fcntl::open("/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|source| SpawnError::ReservePreserved { end, source })?;
        if u32::try_from(fd.as_raw_fd()).is_ok_and(|n| n >= end) {
            return Ok(());
        }
        // Held for the life of the runtime: the hole stays filled.
        let _placeholder = fd.into_raw_fd();
    }
}

/// What the parent prepares for the container's init.
#[derive(Debug)]
pub struct InitRequest<'a> {
    pub plan: &'a Plan,
    /// `None`: rootless without a cgroup it may write; the container stays in the caller's.
    pub cgroup: Option<&'a Manager>,
    pub cgroup_view: &'a ContainerView,
    pub exec_fifo: Option<OwnedFd>,
    pub console_socket: Option<OwnedFd>,
    pub seccomp: Option<&'a CompiledSeccomp>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub no_new_keyring: bool,
}

/// A cloned child (the container's init, or an `exec` process), seen from the parent.
#[derive(Debug)]
pub struct ChildProcess {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    channel: Channel,
}

/// Clone the container's init, write its id maps, put it in its cgroup and let it go on.
pub fn spawn_init(req: InitRequest<'_>) -> Result<ChildProcess, Error> {
    let plan = req.plan;
    let (parent_end, child_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(SpawnError::Socketpair)?;
    // Namespace paths are host paths: open them all before anything changes namespaces.
    let mut join_fds = Vec::with_capacity(plan.namespaces.child_joins.len());
    for (flag, path) in &plan.namespaces.child_joins {
        join_fds.push((*flag, open_ns(path)?));
    }
    // The mapped root of a new user namespace may not reach what host root can: bind sources
    // are opened now, as runc and crun do. A caller without privilege can neither clone trees of
    // its mount namespace nor reach more than the container's root will.
    let privileged = nix::unistd::geteuid().is_root();
    let all_binds = privileged && plan.namespaces.new_user() && plan.namespaces.mount != Ns::Host;
    let idmap_namespaces = idmapped_mount_namespaces(plan)?;
    let bind_trees = if all_binds || idmap_namespaces.iter().any(Option::is_some) {
        crate::rootfs::BindTrees::open(&plan.mounts, all_binds, &idmap_namespaces).map_err(SpawnError::from)?
    } else {
        crate::rootfs::BindTrees::default()
    };
    drop(idmap_namespaces);
    // Without a new user namespace the child is root on the host's cgroup files and can move
    // itself (the cheap way, see Manager::enter_self); otherwise the parent writes its pid.
    // Under the systemd driver, systemd places it when the parent starts the unit.
    let self_placed = plan.namespaces.user == Ns::Host && !req.cgroup.is_some_and(Manager::placed_by_parent);
    let id_maps = match plan.namespaces.new_user() {
        true => Some(id_map::IdMaps::plan(&plan.uid_map, &plan.gid_map).map_err(SpawnError::from)?),
        false => None,
    };
    let how = CloneOptions {
        channel: Channel::new(parent_end, "container init"),
        flags: plan.namespaces.clone_flags.bits() as u64,
        cgroup: req.cgroup,
        dumpable: id_maps.as_ref().is_some_and(id_map::IdMaps::written_by_unprivileged),
        preserve_fds: req.preserve_fds,
        parent_joins: &plan.namespaces.parent_joins,
        stay_in_joins: false,
        new_time: (plan.namespaces.time == Ns::New).then_some(plan.time_offsets.as_str()),
    };
    crate::phases::mark("socketpair, namespace fds, bind sources");
    let (init, cloned_into) = clone_child(how, |cloned_into| {
        let placement = match req.cgroup {
            None => init::CgroupPlacement::NoCgroup,
            Some(m) if self_placed => init::CgroupPlacement::Itself(m, cloned_into),
            Some(_) => init::CgroupPlacement::ByParent,
        };
        init::run(init::InitArgs {
            placement,
            plan,
            channel: Channel::new(child_end, "parent"),
            exec_fifo: req.exec_fifo,
            console_socket: req.console_socket,
            cgroups: req.cgroup_view,
            seccomp: req.seccomp,
            no_pivot: req.no_pivot,
            join_fds,
            preserve_fds: req.preserve_fds,
            no_new_keyring: req.no_new_keyring,
            cgroup_made_late: req.cgroup.is_some_and(Manager::placed_by_parent),
            bind_trees,
        })
    })?;
    crate::phases::mark("clone3");
    init.set_up(|init| {
        if let Some(maps) = &id_maps {
            maps.write(init.pid)?;
        }
        // The parent's, before the child enters its user namespace: lowering the score needs
        // CAP_SYS_RESOURCE in the initial user namespace, which the mapped root never has (runc
        // writes it in nsexec before any namespace exists, for the same reason).
        if let Some(adj) = plan.process.as_ref().and_then(|p| p.oom_score_adj) {
            write_oom_score_adj(init.pid, adj)?;
        }
        init.channel.send(&ToChild::Go)?;
        crate::phases::mark("id maps, go sent");
        if let Some(cgroup) = req.cgroup.filter(|_| !self_placed) {
            cgroup.add_process(init.pid, cloned_into)?;
            init.channel.send(&ToChild::Placed)?;
            crate::phases::mark("cgroup placement by the parent");
        }
        Ok(())
    })
}

/// For each idmapped mount step, a user namespace with its mapping (steps with the same mapping
/// share one); `None` for the other steps.
fn idmapped_mount_namespaces(plan: &Plan) -> Result<Vec<Option<OwnedFd>>, SpawnError> {
    let mut made: Vec<(&str, &str, OwnedFd)> = Vec::new();
    let mut out = Vec::with_capacity(plan.mounts.len());
    for step in &plan.mounts {
        let Some(idmap) = step.idmap.as_ref().filter(|_| plan.namespaces.mount != Ns::Host) else {
            out.push(None);
            continue;
        };
        let (uid, gid) = (idmap.uid_map.as_str(), idmap.gid_map.as_str());
        let existing = made.iter().find(|(u, g, _)| *u == uid && *g == gid);
        let fd = match existing {
            Some((_, _, fd)) => {
                fd.try_clone().map_err(|e| SpawnError::from(id_map::IdMapError::MountNamespace(errno_of(&e))))?
            }
            None => {
                let fd = id_map::mapped_user_namespace(uid, gid)?;
                let copy =
                    fd.try_clone().map_err(|e| SpawnError::from(id_map::IdMapError::MountNamespace(errno_of(&e))))?;
                made.push((uid, gid, fd));
                copy
            }
        };
        out.push(Some(fd));
    }
    Ok(out)
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl ChildProcess {
    /// The parent's part of the setup, right after the clone (id maps, cgroup placement, "Go");
    /// a failure kills the child.
    fn set_up(self, parent_part: impl FnOnce(&ChildProcess) -> Result<(), SpawnError>) -> Result<Self, Error> {
        if let Err(e) = parent_part(&self) {
            // The child may have failed first (a device it could not make while the parent was
            // still placing it): then the parent's own error is only the echo ("broken pipe",
            // "no such process") and the child's record, already queued, is the cause.
            let cause = match self.channel.try_recv::<ToParent>() {
                Ok(Some(ToParent::Failed(failure))) => failure.into_error(),
                _ => e.into(),
            };
            self.kill();
            return Err(cause);
        }
        Ok(self)
    }

    /// Drive the child until it is ready. `hooks` runs the prestart and createRuntime hooks when
    /// the child asks (mounts done, before pivot_root) and returns the state JSON for the
    /// hooks the child runs itself.
    /// `listener` passes a seccomp notify listener (copied out of the child) to the agent.
    pub fn wait_ready(
        &self,
        mut hooks: impl FnMut() -> Result<String, Error>,
        mut listener: impl FnMut(OwnedFd) -> Result<(), Error>,
    ) -> Result<(), Error> {
        loop {
            let msg = self.channel.recv::<ToParent>().map_err(SpawnError::from)?;
            match msg {
                Some(ToParent::SeccompListener { fd }) => {
                    let copy = crate::security::seccomp::fetch_listener(self.pidfd.as_fd(), fd).map_err(Error::from)?;
                    listener(copy)?;
                    self.channel.send(&ToChild::ListenerSent).map_err(SpawnError::from)?;
                }
                Some(ToParent::RunHooks) => {
                    let state = hooks()?;
                    self.channel.send(&ToChild::HooksDone { state }).map_err(SpawnError::from)?;
                }
                Some(ToParent::Ready) => return Ok(()),
                Some(ToParent::Failed(failure)) => return Err(failure.into_error()),
                None => return Err(SpawnError::ChildDied(self.reap_status()).into()),
            }
        }
    }

    /// After Ready: wait until the process has exec'd (its end of the channel closes with
    /// execve, close-on-exec) or report why it could not.
    pub fn wait_exec(&self) -> Result<(), Error> {
        loop {
            match self.channel.recv::<ToParent>().map_err(SpawnError::from)? {
                None => return Ok(()),
                Some(ToParent::Failed(failure)) => return Err(failure.into_error()),
                Some(_) => continue,
            }
        }
    }

    fn reap_status(&self) -> String {
        match waitpid(self.pid, None) {
            Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
            Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("wait: {e}"),
        }
    }

    /// Kill and reap the child (failed create). Best effort: it may already be gone.
    pub fn kill(&self) {
        // Reaped whether or not the signal still found it running: an exited child is a zombie
        // until we wait for it. Our child until we wait for it, so the pid cannot be recycled.
        let _exited_already = pidfd_send_signal(self.pidfd.as_fd(), Signal::SIGKILL as i32);
        let _reaped = waitpid(self.pid, Some(WaitPidFlag::__WALL));
    }
}

/// What `exec` needs to start a process in a running container.
#[derive(Debug)]
pub struct JoinRequest<'a> {
    pub process: &'a ProcessPlan,
    /// Host pid of the container's init, whose namespaces are joined.
    pub container_pid: Pid,
    /// The container's namespaces, as /proc/<pid>/ns names.
    pub namespaces: &'a [String],
    pub cgroup: Option<&'a Manager>,
    pub console_socket: Option<OwnedFd>,
    pub seccomp: Option<&'a CompiledSeccomp>,
    pub preserve_fds: u32,
}

/// Clone a process into the container: pid and time namespaces are entered by the parent (for
/// its children), the others by the child; the cgroup is the container's.
pub fn spawn_join(req: JoinRequest<'_>) -> Result<ChildProcess, Error> {
    let (parent_end, child_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(SpawnError::Socketpair)?;
    let ns_path = |name: &str| Path::new("/proc").join(req.container_pid.as_raw().to_string()).join("ns").join(name);
    // User first (the others are owned by it), mount last (it changes what paths mean).
    let order = ["user", "ipc", "uts", "net", "cgroup", "mnt"];
    let mut join_fds = Vec::new();
    for name in order.iter().filter(|n| req.namespaces.iter().any(|m| m == *n)) {
        join_fds.push((flag_of_name(name), open_ns(&ns_path(name))?));
    }
    // Without privilege the parent cannot enter the container's pid namespace for its child: the
    // namespace belongs to the container's user namespace, where only a process inside has
    // capabilities. The parent goes in there first, for good (as the user namespace's owner it
    // may), and the child inherits it.
    if !nix::unistd::geteuid().is_root()
        && let Some(i) = join_fds.iter().position(|(flag, _)| *flag == CloneFlags::CLONE_NEWUSER)
    {
        let (_, user) = join_fds.remove(i);
        setns(user.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| SpawnError::ParentSetns("user", e))?;
    }
    let mut parent_joins = Vec::new();
    for name in ["pid", "time"].iter().filter(|n| req.namespaces.iter().any(|m| m == *n)) {
        parent_joins.push((flag_of_name(name), ns_path(name)));
    }
    let how = CloneOptions {
        channel: Channel::new(parent_end, "exec process"),
        flags: 0,
        cgroup: req.cgroup,
        dumpable: false,
        preserve_fds: req.preserve_fds,
        parent_joins: &parent_joins,
        // The parent clones nothing else, and going back may not be allowed: a runtime in a user
        // namespace (rootless podman's) has no capability over the pid namespace it started in,
        // which belongs to the namespace above, nor has one that entered the container's.
        stay_in_joins: true,
        new_time: None,
    };
    let (child, cloned_into) = clone_child(how, |_| {
        join::run(join::JoinArgs {
            process: req.process,
            channel: Channel::new(child_end, "parent"),
            join_fds,
            console_socket: req.console_socket,
            seccomp: req.seccomp,
            preserve_fds: req.preserve_fds,
        })
    })?;
    child.set_up(|child| {
        if let Some(cg) = req.cgroup {
            cg.add_process(child.pid, cloned_into)?;
        }
        // exec's child joins the container's namespaces only once it is in the cgroup.
        child.channel.send(&ToChild::Go)?;
        Ok(())
    })
}

/// How a child is cloned: what differs between the container's init and an `exec` process.
struct CloneOptions<'a> {
    /// The parent's end of the socketpair.
    channel: Channel,
    /// `CLONE_NEW*` flags.
    flags: u64,
    /// The cgroup to clone into (v2, `CLONE_INTO_CGROUP`) when the kernel lets us.
    cgroup: Option<&'a Manager>,
    /// Clone the child dumpable: a parent without privilege (or newuidmap, acting for it) can
    /// only write the id maps of a dumpable child (the /proc files of a non-dumpable one belong
    /// to root). The child makes itself non-dumpable as soon as the maps are written, before
    /// anything else can exist in its namespaces.
    dumpable: bool,
    /// `--preserve-fds`: descriptors 3..3+N stay inheritable.
    preserve_fds: u32,
    /// Namespaces the parent enters for its children only (pid, time), left right after the clone.
    parent_joins: &'a [(CloneFlags, PathBuf)],
    /// Do not leave them.
    stay_in_joins: bool,
    /// A new time namespace, with these offsets, also created for the children only.
    new_time: Option<&'a str>,
}

/// The one clone of both children. Before it: the runtime must be single-threaded (the child only
/// has a copy of the calling thread, and a lock another thread held would stay locked in it),
/// everything inherited above the preserved descriptors is marked close-on-exec (the containerd
/// shim leaks its socket as fd 3; hooks and the container must not get it), and the runtime
/// becomes non-dumpable. In the child, `child` runs with whether clone3 placed it in its cgroup
/// (`CLONE_INTO_CGROUP`), and never returns; the parent gets the child and the same answer.
fn clone_child(
    how: CloneOptions<'_>,
    child: impl FnOnce(bool) -> Infallible,
) -> Result<(ChildProcess, bool), SpawnError> {
    check_single_threaded()?;
    crate::sys::process::close_range_cloexec(3u32.saturating_add(how.preserve_fds)).map_err(SpawnError::MarkCloexec)?;
    if !how.dumpable {
        become_non_dumpable()?;
    }
    let restore = enter_parent_namespaces(how.parent_joins, how.new_time)?;
    let cgroup_fd = how.cgroup.and_then(Manager::clone_into_fd);
    let mut into_cgroup = cgroup_fd.is_some();
    let mut forked = clone3_fork(how.flags, cgroup_fd);
    if into_cgroup && matches!(forked, Err(Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EBUSY | Errno::E2BIG)) {
        // An older kernel, or a cgroup that refuses processes directly: placed by pid afterwards.
        into_cgroup = false;
        forked = clone3_fork(how.flags, None);
    }
    if let Ok(Forked::Child) = forked {
        drop(restore);
        child(into_cgroup);
    }
    if !how.stay_in_joins {
        restore.finish()?;
    }
    if how.dumpable {
        become_non_dumpable()?;
    }
    let Forked::Parent { pid, pidfd } = forked.map_err(SpawnError::Clone)? else {
        return Err(SpawnError::Clone(Errno::EINVAL));
    };
    Ok((ChildProcess { pid, pidfd, channel: how.channel }, into_cgroup))
}

/// Refuse to clone when another thread exists (DESIGN: "assert it"). Nothing in the runtime
/// starts one; this catches a dependency or a change that does. Without /proc there is nothing to
/// ask, and the clone goes on.
fn check_single_threaded() -> Result<(), SpawnError> {
    match own_thread_count() {
        Some(n) if n > 1 => Err(SpawnError::Threaded(n)),
        _ => Ok(()),
    }
}

/// The threads of this process: /proc/self/task has a directory per thread, and a directory's
/// link count is 2 + its subdirectories. One stat, about a tenth of reading num_threads from
/// /proc/self/stat (3 µs against 30 µs, measured under load).
fn own_thread_count() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/task").ok()?.nlink().checked_sub(2)
}

/// The child is a copy of this process, the runtime's binary, until it calls execve, and it is
/// visible in the container's pid namespace all that time (to processes `exec`ed into a created
/// container, to containers sharing the pid namespace). Non-dumpable from birth, no container
/// process can open its `/proc/PID/exe`, `mem` or descriptors (CVE-2019-5736): execve makes the
/// user's program dumpable again.
fn become_non_dumpable() -> Result<(), SpawnError> {
    nix::sys::prctl::set_dumpable(false).map_err(SpawnError::NonDumpable)
}

fn flag_of_name(name: &str) -> CloneFlags {
    match name {
        "user" => CloneFlags::CLONE_NEWUSER,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "net" => CloneFlags::CLONE_NEWNET,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "pid" => CloneFlags::CLONE_NEWPID,
        "time" => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        _ => CloneFlags::CLONE_NEWNS,
    }
}

fn open_ns(path: &Path) -> Result<OwnedFd, SpawnError> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|source| SpawnError::OpenNamespace { path: path.display().to_string(), source })
}

fn write_oom_score_adj(pid: Pid, value: i32) -> Result<(), SpawnError> {
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), value.to_string()).map_err(|source| SpawnError::OomScoreAdj {
        value,
        pid: pid.as_raw(),
        source,
    })
}

/// Namespaces the parent enters for its children only (pid, time), undone right after clone.
#[derive(Debug)]
struct ParentNamespaces {
    saved: Vec<(CloneFlags, OwnedFd)>,
}

fn enter_parent_namespaces(
    joins: &[(CloneFlags, PathBuf)],
    new_time: Option<&str>,
) -> Result<ParentNamespaces, SpawnError> {
    let mut restore = enter_namespaces(joins)?;
    if let Some(offsets) = new_time {
        let flag = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        let own = open_ns(Path::new("/proc/self/ns/time"))?;
        unshare(flag).map_err(SpawnError::TimeNamespace)?;
        restore.saved.push((flag, own));
        if !offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", offsets).map_err(SpawnError::TimeOffsets)?;
        }
    }
    Ok(restore)
}

/// Enter `joins` (pid, time) for our children; the returned value switches back.
fn enter_namespaces(joins: &[(CloneFlags, PathBuf)]) -> Result<ParentNamespaces, SpawnError> {
    let mut saved = Vec::new();
    for (flag, path) in joins {
        let own = open_ns(Path::new(&format!("/proc/self/ns/{}", proc_name(*flag))))?;
        let target = open_ns(path)?;
        setns(target.as_fd(), *flag).map_err(|e| SpawnError::ParentSetns(proc_name(*flag), e))?;
        saved.push((*flag, own));
    }
    Ok(ParentNamespaces { saved })
}

impl ParentNamespaces {
    fn finish(self) -> Result<(), SpawnError> {
        for (flag, fd) in &self.saved {
            setns(fd.as_fd(), *flag).map_err(|e| SpawnError::ParentSetns(proc_name(*flag), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_thread_stops_the_clone() {
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            started.send(()).unwrap();
            held.recv().ok();
        });
        running.recv().unwrap();
        assert!(own_thread_count().is_some_and(|n| n >= 2), "{:?}", own_thread_count());
        assert!(matches!(check_single_threaded(), Err(SpawnError::Threaded(n)) if n >= 2));
        drop(hold);
        other.join().unwrap();
    }
}

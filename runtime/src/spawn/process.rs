//! Applying a ProcessPlan to the calling process, just before `execve`: rlimits, user and
//! groups, capabilities, cwd, executable lookup. Shared by the container's init and `exec`.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{Mode, fstat, stat};
use nix::unistd::{Gid, Uid};

use crate::error::{ErrorKind, kind_of_errno};
use crate::plan::process::{CapSets, ProcessPlan, Rlimit};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("set {name} to {soft}/{hard}")]
    Rlimit {
        name: &'static str,
        soft: u64,
        hard: u64,
        #[source]
        source: Errno,
    },
    #[error("set no_new_privs")]
    NoNewPrivs(#[source] Errno),
    #[error("drop capability {cap} from the bounding set")]
    Bounding {
        cap: String,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error(
        "set supplementary groups {0:?}: setgroups is denied in this user namespace (its gid map was written without newgidmap: map more than your own gid to have groups)"
    )]
    GroupsDenied(Vec<u32>),
    #[error("set supplementary groups {0:?}")]
    Groups(Vec<u32>, #[source] Errno),
    #[error("set gid {0}")]
    Gid(u32, #[source] Errno),
    #[error("set uid {0}")]
    Uid(u32, #[source] Errno),
    #[error("set capabilities")]
    Capset(#[source] Errno),
    #[error("raise ambient capability {cap}")]
    Ambient {
        cap: String,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("create cwd {cwd}")]
    CreateCwd {
        cwd: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("chdir to cwd {cwd}")]
    Chdir {
        cwd: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("stat stdio descriptor {fd}")]
    StdioStat {
        fd: i32,
        #[source]
        source: Errno,
    },
    #[error("give stdio descriptor {fd} to uid {uid}")]
    StdioOwner {
        fd: i32,
        uid: u32,
        #[source]
        source: Errno,
    },
    #[error("cwd {0} is outside the container's root")]
    CwdOutsideRoot(PathBuf),
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFoundInPath(String),
    #[error("exec: \"{name}\": stat {path}")]
    Stat {
        name: String,
        path: String,
        #[source]
        source: Errno,
    },
    #[error("exec: \"{0}\": is a directory")]
    IsDirectory(String),
    #[error("exec: \"{0}\": permission denied")]
    NotExecutable(String),
    #[error("set personality")]
    Personality(#[source] Errno),
    #[error("set the scheduler")]
    Scheduler(#[source] Errno),
    #[error("set the I/O priority")]
    IoPriority(#[source] Errno),
    #[error("keep capabilities across setuid")]
    KeepCaps(#[source] Errno),
}

impl ProcessError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProcessError::NotFoundInPath(_) => ErrorKind::NotFound,
            ProcessError::NotExecutable(_) | ProcessError::IsDirectory(_) => ErrorKind::PermissionDenied,
            ProcessError::CwdOutsideRoot(_) => ErrorKind::InvalidSpec,
            ProcessError::GroupsDenied(_) => ErrorKind::PermissionDenied,
            ProcessError::Rlimit { source, .. }
            | ProcessError::NoNewPrivs(source)
            | ProcessError::Groups(_, source)
            | ProcessError::Gid(_, source)
            | ProcessError::Uid(_, source)
            | ProcessError::Capset(source)
            | ProcessError::Chdir { source, .. }
            | ProcessError::CreateCwd { source, .. }
            | ProcessError::StdioStat { source, .. }
            | ProcessError::StdioOwner { source, .. }
            | ProcessError::Stat { source, .. }
            | ProcessError::Personality(source)
            | ProcessError::Scheduler(source)
            | ProcessError::IoPriority(source)
            | ProcessError::KeepCaps(source) => kind_of_errno(*source),
            ProcessError::Bounding { .. } | ProcessError::Ambient { .. } => ErrorKind::PermissionDenied,
        }
    }
}

/// Scheduling policy and I/O priority (while still privileged).
pub fn apply_scheduling(p: &ProcessPlan) -> Result<(), ProcessError> {
    if let Some(attr) = &p.scheduler {
        crate::sys::process::sched_setattr(attr).map_err(ProcessError::Scheduler)?;
    }
    if let Some((class, level)) = p.io_priority {
        crate::sys::process::set_io_priority(class, level).map_err(ProcessError::IoPriority)?;
    }
    Ok(())
}

pub fn apply_rlimits(limits: &[Rlimit]) -> Result<(), ProcessError> {
    for r in limits {
        nix::sys::resource::setrlimit(r.resource, r.soft, r.hard).map_err(|source| ProcessError::Rlimit {
            name: r.name,
            soft: r.soft,
            hard: r.hard,
            source,
        })?;
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<(), ProcessError> {
    nix::sys::prctl::set_no_new_privs().map_err(ProcessError::NoNewPrivs)
}

fn each_cap(mask: u64) -> impl Iterator<Item = caps::Capability> {
    caps::all().into_iter().filter(move |c| mask & c.bitmask() != 0)
}

/// Drop from the bounding set every capability not in `caps.bounding` (needs CAP_SETPCAP, so
/// before switching user).
pub fn drop_bounding(caps: &CapSets) -> Result<(), ProcessError> {
    let supported = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    for cap in supported {
        if caps.bounding & cap.bitmask() == 0 {
            caps::drop(None, caps::CapSet::Bounding, cap)
                .map_err(|source| ProcessError::Bounding { cap: cap.to_string(), source })?;
        }
    }
    Ok(())
}

/// Become the process's user: groups, gid, uid (keeping capabilities across the switch when the
/// plan sets them explicitly).
pub fn switch_user(p: &ProcessPlan, set_groups: bool) -> Result<(), ProcessError> {
    if p.caps.is_some() {
        nix::sys::prctl::set_keepcaps(true).map_err(ProcessError::KeepCaps)?;
    }
    if set_groups {
        let groups: Vec<Gid> = p.additional_gids.iter().copied().map(Gid::from_raw).collect();
        match nix::unistd::setgroups(&groups) {
            Ok(()) => {}
            // A user namespace whose gid map an unprivileged caller wrote has setgroups denied:
            // the process keeps the groups it has, which are none the namespace can name (runc
            // and crun skip setgroups there too). Asked-for groups cannot be given: an error.
            Err(nix::errno::Errno::EPERM) if groups.is_empty() && setgroups_denied() => {}
            Err(nix::errno::Errno::EPERM) if setgroups_denied() => {
                return Err(ProcessError::GroupsDenied(p.additional_gids.clone()));
            }
            Err(e) => return Err(ProcessError::Groups(p.additional_gids.clone(), e)),
        }
    }
    let gid = Gid::from_raw(p.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| ProcessError::Gid(p.gid, e))?;
    let uid = Uid::from_raw(p.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| ProcessError::Uid(p.uid, e))?;
    if p.caps.is_some() {
        nix::sys::prctl::set_keepcaps(false).map_err(ProcessError::KeepCaps)?;
    }
    Ok(())
}

/// `/proc/self/setgroups` says "deny" (the container's procfs or the host's: the same process).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Set effective, permitted, inheritable and ambient sets (after the user switch).
pub fn apply_caps(caps: &CapSets) -> Result<(), ProcessError> {
    crate::sys::process::capset(caps.effective, caps.permitted, caps.inheritable).map_err(ProcessError::Capset)?;
    // The kernel only allows ambient capabilities that are also permitted and inheritable; like
    // runc, the others are left out (runc's default spec asks for them without inheritable).
    let allowed = caps.ambient & caps.permitted & caps.inheritable;
    if allowed != caps.ambient {
        crate::logging::debug("ambient capabilities not in both permitted and inheritable are not raised");
    }
    for cap in each_cap(allowed) {
        caps::raise(None, caps::CapSet::Ambient, cap)
            .map_err(|source| ProcessError::Ambient { cap: cap.to_string(), source })?;
    }
    Ok(())
}

/// Set the process umask; unset means the caller's is kept (config.md user.umask).
pub fn set_umask(umask: Option<u32>) {
    if let Some(m) = umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(m));
    }
}

/// Whether the process is in its cwd, or must try again as its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cwd {
    Entered,
    AsTheUser,
}

/// chdir while the runtime still has its privileges (as runc and crun do), so a cwd only root
/// may enter (`/root` for a uid 1000 process, a 0700 directory for `exec --user 0` without
/// CAP_DAC_OVERRIDE) works. A cwd refused now (EACCES, EPERM: one only the user may enter, as on
/// a root-squashing NFS export) is tried again once the process is its user ([`enter_cwd`]).
/// Before any seccomp filter: the check after it is the runtime's getcwd, not the container's.
pub fn enter_cwd_privileged(cwd: &Path) -> Result<Cwd, ProcessError> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => check_cwd_inside_root(cwd).map(|()| Cwd::Entered),
        Err(Errno::EACCES | Errno::EPERM) => Ok(Cwd::AsTheUser),
        Err(source) => Err(ProcessError::Chdir { cwd: cwd.to_owned(), source }),
    }
}

/// chdir, then make sure the result is inside the root.
pub fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    nix::unistd::chdir(cwd).map_err(|source| ProcessError::Chdir { cwd: cwd.to_owned(), source })?;
    check_cwd_inside_root(cwd)
}

/// A cwd reached through a leaked descriptor would be outside the root (CVE-2024-21626).
fn check_cwd_inside_root(cwd: &Path) -> Result<(), ProcessError> {
    match nix::unistd::getcwd() {
        Ok(p) if !p.is_absolute() => Err(ProcessError::CwdOutsideRoot(cwd.to_owned())),
        // getcwd reports a directory outside the root as ENOENT. Any other error (a seccomp
        // profile may deny getcwd) says nothing about where we are.
        Err(Errno::ENOENT) => Err(ProcessError::CwdOutsideRoot(cwd.to_owned())),
        _ => Ok(()),
    }
}

/// Give the stdio descriptors to the process user, as runc does (fixStdioPermissions): a non-root
/// process can then reopen them by path (/dev/stdout, /proc/self/fd/1) although the engine's
/// pipes, files or pty belong to root. Only the owner changes (the pty keeps its tty group);
/// /dev/null is left alone; EINVAL (the group is not mapped), EPERM (the owner is not mapped in
/// our user namespace) and EROFS leave the descriptor as it is rather than fail the container.
pub fn give_stdio_to(uid: u32) -> Result<(), ProcessError> {
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    for (fd, stream) in stdio.into_iter().zip(0..) {
        let st = fstat(fd).map_err(|source| ProcessError::StdioStat { fd: stream, source })?;
        let dev_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3);
        if st.st_uid == uid || dev_null {
            continue;
        }
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(source) => return Err(ProcessError::StdioOwner { fd: stream, uid, source }),
        }
    }
    Ok(())
}

/// Add HOME from the container's /etc/passwd when the process has none (as runc does).
pub fn env_with_home(p: &ProcessPlan) -> Vec<CString> {
    if p.env_var("HOME").is_some() {
        return p.env.clone();
    }
    let home = home_of(p.uid).unwrap_or_else(|| "/".to_owned());
    let mut env = p.env.clone();
    if let Ok(c) = CString::new(format!("HOME={home}")) {
        env.push(c);
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
    })
}

/// Resolve `args[0]` like Go's exec.LookPath (what runc reports): a name with a slash is taken
/// as is, otherwise each `PATH` entry of the process environment is tried.
pub fn resolve_executable(p: &ProcessPlan) -> Result<CString, ProcessError> {
    let name_c = &p.args[0];
    let name = name_c.to_string_lossy().into_owned();
    if name.contains('/') {
        check_executable(&name, Path::new(std::ffi::OsStr::from_bytes(name_c.as_bytes())))?;
        return Ok(name_c.clone());
    }
    let path_var = p.env_var("PATH").unwrap_or("");
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(std::ffi::OsStr::from_bytes(name_c.as_bytes()));
        if let Ok(st) = stat(&candidate) {
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR && st.st_mode & 0o111 != 0 {
                return CString::new(candidate.as_os_str().as_bytes()).map_err(|_| ProcessError::NotFoundInPath(name));
            }
        }
    }
    Err(ProcessError::NotFoundInPath(name))
}

fn check_executable(name: &str, path: &Path) -> Result<(), ProcessError> {
    let st = stat(path).map_err(|source| ProcessError::Stat {
        name: name.to_owned(),
        path: path.display().to_string(),
        source,
    })?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(ProcessError::IsDirectory(name.to_owned()));
    }
    if st.st_mode & 0o111 == 0 {
        return Err(ProcessError::NotExecutable(name.to_owned()));
    }
    Ok(())
}

/// Replace the process image. Only returns on failure.
pub fn execve(path: &CStr, args: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(path, args, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

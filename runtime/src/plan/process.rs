//! `process` → what the container's process gets: validated, converted to what the system calls
//! take. Used by `create` (config.json) and `exec` (process.json). Pure: what depends on the host
//! (capabilities the runtime holds, LSMs it has) is adjusted by `security::adapt_to_host`.

use std::ffi::CString;
use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

/// The five capability sets as bitmasks (bit n = capability number n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// A label the process switches to at `execve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecLabel {
    AppArmor(String),
    SeLinux(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub name: &'static str,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    /// `None`: the process keeps the runtime's capabilities (as runc does without the field).
    pub caps: Option<CapSets>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub terminal: bool,
    /// (rows, columns)
    pub console_size: Option<(u16, u16)>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
    /// The LSM labels this host applies at `execve`: filled by `security::adapt_to_host` from
    /// the two requests above (empty until then).
    pub exec_labels: Vec<ExecLabel>,
    pub oom_score_adj: Option<i32>,
    /// (IOPRIO_CLASS_*, level 0..=7)
    pub io_priority: Option<(u32, u32)>,
    pub scheduler: Option<crate::sys::process::SchedAttr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessConfigError {
    #[error("process.args must not be empty")]
    NoArgs,
    #[error("process.{field}[{index}] contains a NUL byte")]
    NulByte { field: &'static str, index: usize },
    #[error("process.env[{0}] is not of the form KEY=value")]
    BadEnv(usize),
    #[error("process.cwd must be an absolute path, got {0:?}")]
    RelativeCwd(PathBuf),
    #[error("process.capabilities.{set}: {name} is not a capability this runtime knows")]
    UnknownCapability { set: &'static str, name: String },
    #[error("process.rlimits: {0} is given more than once")]
    DuplicateRlimit(&'static str),
    #[error("process.rlimits: {name} soft limit {soft} is above its hard limit {hard}")]
    SoftAboveHard { name: &'static str, soft: u64, hard: u64 },
    #[error("process.{0} is not supported yet")]
    Unsupported(&'static str),
    #[error("process.oomScoreAdj {0} is outside -1000..=1000")]
    OomScoreAdj(i32),
    #[error("process.ioPriority.priority {0} is outside 0..=7")]
    IoPriority(i64),
    #[error("process.scheduler.{0}")]
    Scheduler(&'static str),
}

impl ProcessPlan {
    pub fn new(p: &Process) -> Result<Self, ProcessConfigError> {
        let args = p.args().as_deref().unwrap_or_default();
        if args.is_empty() {
            return Err(ProcessConfigError::NoArgs);
        }
        let args = to_cstrings("args", args)?;
        let env_strings = p.env().as_deref().unwrap_or_default();
        for (i, e) in env_strings.iter().enumerate() {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => return Err(ProcessConfigError::BadEnv(i)),
            }
        }
        let env = to_cstrings("env", env_strings)?;
        if !p.cwd().is_absolute() {
            return Err(ProcessConfigError::RelativeCwd(p.cwd().clone()));
        }
        let io_priority = match p.io_priority() {
            None => None,
            Some(io) => {
                use oci_spec::runtime::IOPriorityClass::*;
                let class = match io.class() {
                    IoprioClassRt => 1,
                    IoprioClassBe => 2,
                    IoprioClassIdle => 3,
                };
                let level = u32::try_from(io.priority())
                    .ok()
                    .filter(|l| *l <= 7)
                    .ok_or(ProcessConfigError::IoPriority(io.priority()))?;
                Some((class, level))
            }
        };
        let scheduler = p.scheduler().as_ref().map(scheduler_attr).transpose()?;
        if p.exec_cpu_affinity().is_some() {
            return Err(ProcessConfigError::Unsupported("execCPUAffinity"));
        }
        if let Some(adj) = p.oom_score_adj() {
            if !(-1000..=1000).contains(&adj) {
                return Err(ProcessConfigError::OomScoreAdj(adj));
            }
        }
        let caps = match p.capabilities() {
            None => None,
            Some(c) => Some(CapSets {
                bounding: cap_mask("bounding", c.bounding())?,
                effective: cap_mask("effective", c.effective())?,
                inheritable: cap_mask("inheritable", c.inheritable())?,
                permitted: cap_mask("permitted", c.permitted())?,
                ambient: cap_mask("ambient", c.ambient())?,
            }),
        };
        let mut rlimits: Vec<Rlimit> = Vec::new();
        for r in p.rlimits().as_deref().unwrap_or_default() {
            let (resource, name) = rlimit_resource(r.typ());
            if rlimits.iter().any(|x| x.resource == resource) {
                return Err(ProcessConfigError::DuplicateRlimit(name));
            }
            if r.soft() > r.hard() {
                return Err(ProcessConfigError::SoftAboveHard { name, soft: r.soft(), hard: r.hard() });
            }
            rlimits.push(Rlimit { resource, name, soft: r.soft(), hard: r.hard() });
        }
        let user = p.user();
        Ok(Self {
            args,
            env,
            cwd: p.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: distinct(user.additional_gids().as_deref().unwrap_or_default()),
            umask: user.umask(),
            caps,
            rlimits,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            terminal: p.terminal().unwrap_or(false),
            console_size: p.console_size().map(|b| (clamp16(b.height()), clamp16(b.width()))),
            apparmor_profile: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
            selinux_label: p.selinux_label().clone().filter(|s| !s.is_empty()),
            exec_labels: Vec::new(),
            oom_score_adj: p.oom_score_adj(),
            io_priority,
            scheduler,
        })
    }

    /// The value of `KEY` in the process environment (the last one wins, as in execve users).
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|e| {
            let s = e.to_str().ok()?;
            let (k, v) = s.split_once('=')?;
            (k == key).then_some(v)
        })
    }
}

/// `process.scheduler` → the `sched_attr` for sched_setattr(2).
fn scheduler_attr(s: &oci_spec::runtime::Scheduler) -> Result<crate::sys::process::SchedAttr, ProcessConfigError> {
    use oci_spec::runtime::LinuxSchedulerFlag as F;
    use oci_spec::runtime::LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => return Err(ProcessConfigError::Scheduler("policy SCHED_ISO is not implemented by Linux")),
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(ProcessConfigError::Scheduler("nice must be within -20..=19"));
    }
    let priority = u32::try_from(s.priority().unwrap_or(0))
        .map_err(|_| ProcessConfigError::Scheduler("priority must not be negative"))?;
    Ok(crate::sys::process::SchedAttr {
        size: 0,
        policy,
        flags,
        nice,
        priority,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// Each gid once, in the order first given: Docker repeats the primary gid when `--group-add`
/// names it (runc de-duplicates the supplementary groups too).
fn distinct(gids: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(gids.len());
    for g in gids {
        if !out.contains(g) {
            out.push(*g);
        }
    }
    out
}

fn clamp16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn to_cstrings(field: &'static str, items: &[String]) -> Result<Vec<CString>, ProcessConfigError> {
    items
        .iter()
        .enumerate()
        .map(|(index, s)| CString::new(s.as_bytes()).map_err(|_| ProcessConfigError::NulByte { field, index }))
        .collect()
}

fn cap_mask(set: &'static str, caps: &Option<Capabilities>) -> Result<u64, ProcessConfigError> {
    let mut mask = 0u64;
    for cap in caps.iter().flatten() {
        let name = format!("CAP_{cap}");
        let parsed: caps::Capability =
            name.parse().map_err(|_| ProcessConfigError::UnknownCapability { set, name: name.clone() })?;
        mask |= parsed.bitmask();
    }
    Ok(mask)
}

fn rlimit_resource(t: PosixRlimitType) -> (nix::sys::resource::Resource, &'static str) {
    use PosixRlimitType::*;
    use nix::sys::resource::Resource;
    let (r, name) = match t {
        RlimitCpu => (Resource::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (Resource::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (Resource::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (Resource::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (Resource::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (Resource::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (Resource::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (Resource::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (Resource::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (Resource::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (Resource::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (Resource::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (Resource::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (Resource::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    };
    (r, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: &str) -> Process {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn converts_a_podman_like_process() {
        let p = process(
            r#"{"user":{"uid":1000,"gid":100,"umask":18,"additionalGids":[10]},"args":["sh","-c","true"],
                "env":["PATH=/bin","HOME=/root"],"cwd":"/work","terminal":true,"consoleSize":{"height":30,"width":100},
                "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"]},
                "rlimits":[{"type":"RLIMIT_NOFILE","soft":1024,"hard":4096}],"noNewPrivileges":true,"oomScoreAdj":5}"#,
        );
        let plan = ProcessPlan::new(&p).unwrap();
        assert_eq!(plan.args.len(), 3);
        assert_eq!(plan.env_var("PATH"), Some("/bin"));
        assert_eq!((plan.uid, plan.gid, plan.additional_gids.clone(), plan.umask), (1000, 100, vec![10], Some(18)));
        let caps = plan.caps.unwrap();
        assert_eq!(caps.bounding, (1 << 0) | (1 << 5));
        assert_eq!(caps.effective, 1 << 5);
        assert_eq!(caps.ambient, 0);
        assert_eq!(
            plan.rlimits[0],
            Rlimit {
                resource: nix::sys::resource::Resource::RLIMIT_NOFILE,
                name: "RLIMIT_NOFILE",
                soft: 1024,
                hard: 4096
            }
        );
        assert_eq!(plan.console_size, Some((30, 100)));
        assert!(plan.no_new_privileges && plan.terminal);
    }

    #[test]
    fn additional_gids_appear_once() {
        let p =
            process(r#"{"user":{"uid":1000,"gid":1000,"additionalGids":[1000,5,1000,5,7]},"cwd":"/","args":["a"]}"#);
        assert_eq!(ProcessPlan::new(&p).unwrap().additional_gids, [1000, 5, 7]);
    }

    #[test]
    fn bad_processes_name_the_field() {
        let base = |extra: &str| format!(r#"{{"user":{{"uid":0,"gid":0}},"cwd":"/",{extra}}}"#);
        let err = |extra: &str| ProcessPlan::new(&process(&base(extra))).unwrap_err();
        assert_eq!(err(r#""args":[]"#), ProcessConfigError::NoArgs);
        assert_eq!(err(r#""args":["a\u0000b"]"#), ProcessConfigError::NulByte { field: "args", index: 0 });
        assert_eq!(err(r#""args":["a"],"env":["A=1","novalue"]"#), ProcessConfigError::BadEnv(1));
        assert_eq!(
            err(
                r#""args":["a"],"rlimits":[{"type":"RLIMIT_CORE","soft":1,"hard":1},{"type":"RLIMIT_CORE","soft":1,"hard":1}]"#
            ),
            ProcessConfigError::DuplicateRlimit("RLIMIT_CORE")
        );
        assert!(matches!(
            err(r#""args":["a"],"rlimits":[{"type":"RLIMIT_CORE","soft":2,"hard":1}]"#),
            ProcessConfigError::SoftAboveHard { .. }
        ));
        assert_eq!(err(r#""args":["a"],"oomScoreAdj":-1001"#), ProcessConfigError::OomScoreAdj(-1001));
        let relative = ProcessPlan::new(&process(r#"{"user":{"uid":0,"gid":0},"cwd":"x","args":["a"]}"#)).unwrap_err();
        assert!(matches!(relative, ProcessConfigError::RelativeCwd(_)));
    }
}

//! The checks that turn a parsed config.json into a [`Plan`], each error naming the field.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxIdMapping, LinuxPersonalityDomain, Spec};

use super::Plan;
use super::devices::{DeviceConfigError, plan_devices};
use super::mounts::{MountConfigError, MountKind, clean_in_root, parse_propagation, plan_mounts};
use super::namespaces::{NamespaceError, NamespacePlan, Ns};
use super::process::{ProcessConfigError, ProcessPlan};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("ociVersion {0:?} is not a supported runtime-spec version (want 1.x)")]
    Version(String),
    #[error("root: {0}")]
    Root(&'static str),
    #[error(transparent)]
    Process(#[from] ProcessConfigError),
    #[error(transparent)]
    Namespaces(#[from] NamespaceError),
    #[error(transparent)]
    Mounts(#[from] MountConfigError),
    #[error(transparent)]
    Devices(#[from] DeviceConfigError),
    #[error("linux.{field}: {reason}")]
    IdMapping { field: &'static str, reason: String },
    #[error("{field}: {reason}")]
    Uts { field: &'static str, reason: &'static str },
    #[error("linux.sysctl: {0}")]
    Sysctl(String),
    #[error("hooks.{kind}[{index}]: {reason}")]
    Hook { kind: &'static str, index: usize, reason: &'static str },
    #[error("linux.{field}[{index}]: path must be absolute, got {path:?}")]
    RelativePath { field: &'static str, index: usize, path: String },
    #[error("linux.rootfsPropagation: invalid value {0:?}")]
    RootfsPropagation(String),
    #[error("linux.timeOffsets: {0}")]
    TimeOffsets(String),
    #[error("linux.personality: {0}")]
    Personality(&'static str),
    #[error("linux.{0} is not supported yet")]
    Unsupported(&'static str),
}

pub(super) fn build(spec: &Spec, bundle: &Path) -> Result<Plan, ConfigError> {
    check_version(spec.version())?;
    let root = spec.root().as_ref().ok_or(ConfigError::Root("is required"))?;
    if root.path().as_os_str().is_empty() {
        return Err(ConfigError::Root("path is required"));
    }
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    let process = spec.process().as_ref().map(ProcessPlan::new).transpose()?;

    let default_linux = oci_spec::runtime::Linux::default();
    let linux = spec.linux().as_ref().unwrap_or(&default_linux);
    if linux.intel_rdt().is_some() {
        return Err(ConfigError::Unsupported("intelRdt"));
    }
    if linux.memory_policy().is_some() {
        return Err(ConfigError::Unsupported("memoryPolicy"));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(ConfigError::Unsupported("netDevices"));
    }
    let namespaces = NamespacePlan::new(linux.namespaces().as_deref().unwrap_or_default())?;

    let uid_map = id_map("uidMappings", linux.uid_mappings().as_deref(), &namespaces)?;
    let gid_map = id_map("gidMappings", linux.gid_mappings().as_deref(), &namespaces)?;

    let time_offsets = time_offsets(linux, &namespaces)?;

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, value) in [("hostname", &hostname), ("domainname", &domainname)] {
        if let Some(v) = value {
            if namespaces.uts == Ns::Host {
                return Err(ConfigError::Uts { field, reason: "needs a private uts namespace" });
            }
            if v.len() > 64 || v.contains('\0') {
                return Err(ConfigError::Uts { field, reason: "must be at most 64 bytes without NUL" });
            }
        }
    }

    let container_maps = namespaces.new_user().then_some((uid_map.as_str(), gid_map.as_str()));
    let mounts = plan_mounts(spec.mounts().as_deref().unwrap_or_default(), bundle, container_maps)?;
    let setup_dev = !mounts.iter().any(|m| m.dest == Path::new("dev") && matches!(m.kind, MountKind::Bind { .. }));
    let devices = plan_devices(linux.devices().as_deref().unwrap_or_default())?;

    let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(s) => Some(parse_propagation(s).ok_or_else(|| ConfigError::RootfsPropagation(s.to_owned()))?),
    };

    let masked_paths = absolute_paths("maskedPaths", linux.masked_paths().as_deref())?;
    let readonly_paths = absolute_paths("readonlyPaths", linux.readonly_paths().as_deref())?;

    let mut sysctl = Vec::new();
    if let Some(map) = linux.sysctl() {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            let value = &map[key];
            check_sysctl(key, value, &namespaces, domainname.as_deref())?;
            sysctl.push((key.replace('.', "/"), value.clone()));
        }
    }

    let hooks = spec.hooks().clone().unwrap_or_default();
    for (kind, list) in [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ] {
        for (index, hook) in list.iter().flatten().enumerate() {
            check_hook(kind, index, hook)?;
        }
    }

    let personality = match linux.personality() {
        None => None,
        Some(p) => {
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(ConfigError::Personality("flags are not supported"));
            }
            Some(match p.domain() {
                LinuxPersonalityDomain::PerLinux => 0x0000,
                LinuxPersonalityDomain::PerLinux32 => 0x0008,
            })
        }
    };

    Ok(Plan {
        oci_version: spec.version().clone(),
        bundle: bundle.to_owned(),
        rootfs,
        root_readonly: root.readonly().unwrap_or(false),
        namespaces,
        uid_map,
        gid_map,
        time_offsets,
        mounts,
        rootfs_propagation,
        setup_dev,
        devices,
        masked_paths,
        readonly_paths,
        hostname,
        domainname,
        sysctl,
        process,
        personality,
        hooks,
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroups_path: linux.cgroups_path().as_ref().map(|p| p.to_string_lossy().into_owned()),
        resources: linux.resources().clone(),
        seccomp: linux.seccomp().clone(),
    })
}

fn check_version(v: &str) -> Result<(), ConfigError> {
    let major = v.split('.').next().unwrap_or("");
    let parts = v.split(['.', '-', '+']).take(3).collect::<Vec<_>>();
    let numeric = parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if major == "1" && numeric { Ok(()) } else { Err(ConfigError::Version(v.to_owned())) }
}

fn id_map(field: &'static str, maps: Option<&[LinuxIdMapping]>, ns: &NamespacePlan) -> Result<String, ConfigError> {
    let maps = maps.unwrap_or_default();
    let err = |reason: String| ConfigError::IdMapping { field, reason };
    if ns.user == Ns::Host && !maps.is_empty() {
        return Err(err("mappings need a user namespace".into()));
    }
    if !ns.new_user() {
        return Ok(String::new());
    }
    if maps.is_empty() {
        return Err(err("a new user namespace needs mappings".into()));
    }
    if maps.len() > 340 {
        return Err(err(format!("{} mappings, the kernel takes at most 340", maps.len())));
    }
    let mut out = String::new();
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(err(format!("[{i}] has size 0")));
        }
        if u64::from(m.container_id()) + u64::from(m.size()) > 1 << 32
            || u64::from(m.host_id()) + u64::from(m.size()) > 1 << 32
        {
            return Err(err(format!("[{i}] overflows the 32-bit id range")));
        }
        // Writing to a String cannot fail.
        let _infallible = writeln!(out, "{} {} {}", m.container_id(), m.host_id(), m.size());
    }
    Ok(out)
}

fn time_offsets(linux: &oci_spec::runtime::Linux, ns: &NamespacePlan) -> Result<String, ConfigError> {
    let Some(offsets) = linux.time_offsets() else { return Ok(String::new()) };
    if offsets.is_empty() {
        return Ok(String::new());
    }
    if ns.time != Ns::New {
        return Err(ConfigError::TimeOffsets("offsets need a new time namespace".into()));
    }
    let mut out = String::new();
    let mut clocks: Vec<&String> = offsets.keys().collect();
    clocks.sort();
    for clock in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(ConfigError::TimeOffsets(format!("unknown clock {clock:?} (monotonic or boottime)")));
        }
        let o = &offsets[clock];
        let nanos = o.nanosecs().unwrap_or(0);
        if nanos >= 1_000_000_000 {
            return Err(ConfigError::TimeOffsets(format!("{clock}: nanosecs must be below 1e9")));
        }
        let _infallible = writeln!(out, "{clock} {} {nanos}", o.secs().unwrap_or(0));
    }
    Ok(out)
}

/// runc's rule: a sysctl is allowed only when it belongs to a namespace the container owns. The
/// uts names have fields of their own: `kernel.hostname` is refused (runc, crun), and
/// `kernel.domainname` when it contradicts the `domainname` field (crun).
fn check_sysctl(key: &str, value: &str, ns: &NamespacePlan, domainname: Option<&str>) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Sysctl(format!("{key:?}: {reason}"));
    if key.is_empty() || key.contains("..") || key.starts_with('.') || key.contains('/') || key.contains('\0') {
        return Err(bad("invalid name"));
    }
    if value.contains('\0') {
        return Err(bad("value contains a NUL byte"));
    }
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if ns.ipc == Ns::Host { Err(bad("needs an ipc namespace")) } else { Ok(()) };
    }
    if key.starts_with("net.") {
        return if ns.net == Ns::Host { Err(bad("not allowed in the host network namespace")) } else { Ok(()) };
    }
    if key == "kernel.hostname" {
        return Err(bad("conflicts with the hostname field (set the container's hostname there)"));
    }
    if key == "kernel.domainname" {
        if let Some(field) = domainname.filter(|d| *d != value) {
            return Err(bad(&format!("{value:?} conflicts with the domainname field {field:?}")));
        }
        return if ns.uts == Ns::Host { Err(bad("needs a uts namespace")) } else { Ok(()) };
    }
    Err(bad("is not in a separate kernel namespace"))
}

fn check_hook(kind: &'static str, index: usize, hook: &Hook) -> Result<(), ConfigError> {
    let err = |reason| ConfigError::Hook { kind, index, reason };
    if !hook.path().is_absolute() {
        return Err(err("path must be absolute"));
    }
    if hook.timeout().is_some_and(|t| t <= 0) {
        return Err(err("timeout must be greater than zero"));
    }
    let nul = |s: &String| s.contains('\0');
    if hook.args().iter().flatten().any(nul) || hook.env().iter().flatten().any(nul) {
        return Err(err("args and env must not contain NUL bytes"));
    }
    Ok(())
}

fn absolute_paths(field: &'static str, paths: Option<&[String]>) -> Result<Vec<PathBuf>, ConfigError> {
    paths
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, p)| {
            if p.starts_with('/') && !p.contains('\0') {
                Ok(clean_in_root(Path::new(p)))
            } else {
                Err(ConfigError::RelativePath { field, index, path: p.clone() })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#""process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}"#;

    fn build_with(linux: &str, extra: &str) -> Result<Plan, ConfigError> {
        let sep = if extra.is_empty() { "" } else { "," };
        let json = format!(r#"{{"ociVersion":"1.0.2",{BASE},"linux":{linux}{sep}{extra}}}"#);
        build(&spec(&json), Path::new("/bundle"))
    }

    const NS: &str =
        r#"{"namespaces":[{"type":"mount"},{"type":"pid"},{"type":"uts"},{"type":"ipc"},{"type":"network"}]"#;

    #[test]
    fn minimal_config_builds() {
        let plan = build_with(&format!("{NS}}}"), r#""hostname":"box""#).unwrap();
        assert_eq!(plan.rootfs, PathBuf::from("/bundle/rootfs"));
        assert_eq!(plan.hostname.as_deref(), Some("box"));
        assert!(plan.setup_dev);
        assert_eq!(plan.devices.len(), 6);
    }

    #[test]
    fn versions() {
        for good in ["1.0.0", "1.0.2-dev", "1.2.1", "1.1.0-rc.1"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["", "2.0.0", "0.1.0", "1.0", "one", "1.x.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let err = build_with(r#"{"namespaces":[{"type":"mount"}]}"#, r#""hostname":"box""#).unwrap_err();
        assert_eq!(err.to_string(), "hostname: needs a private uts namespace");
    }

    #[test]
    fn sysctls_follow_namespaces() {
        let ok = build_with(&format!(r#"{NS},"sysctl":{{"net.ipv4.ip_forward":"1","kernel.shmmax":"1000"}}}}"#), "")
            .unwrap();
        assert_eq!(ok.sysctl[0], ("kernel/shmmax".into(), "1000".into()));
        let err =
            build_with(r#"{"namespaces":[{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#, "").unwrap_err();
        assert!(err.to_string().contains("host network namespace"), "{err}");
        let err = build_with(&format!(r#"{NS},"sysctl":{{"vm.swappiness":"1"}}}}"#), "").unwrap_err();
        assert!(err.to_string().contains("not in a separate kernel namespace"), "{err}");
    }

    #[test]
    fn uts_sysctls_do_not_contradict_their_fields() {
        let uts = r#"{"namespaces":[{"type":"mount"},{"type":"uts"}],"sysctl":"#;
        let err = build_with(&format!(r#"{uts}{{"kernel.hostname":"h"}}}}"#), "").unwrap_err();
        assert!(err.to_string().contains("\"kernel.hostname\": conflicts with the hostname field"), "{err}");
        let domain = format!(r#"{uts}{{"kernel.domainname":"d1"}}}}"#);
        let err = build_with(&domain, r#""domainname":"d2""#).unwrap_err();
        assert!(err.to_string().contains("\"d1\" conflicts with the domainname field \"d2\""), "{err}");
        assert!(build_with(&domain, r#""domainname":"d1""#).is_ok());
        assert_eq!(build_with(&domain, "").unwrap().sysctl, [("kernel/domainname".into(), "d1".into())]);
    }

    #[test]
    fn user_namespace_needs_mappings_and_gets_them_formatted() {
        let err = build_with(r#"{"namespaces":[{"type":"mount"},{"type":"user"}]}"#, "").unwrap_err();
        assert!(matches!(err, ConfigError::IdMapping { field: "uidMappings", .. }));
        let plan = build_with(
            r#"{"namespaces":[{"type":"mount"},{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":10}],"gidMappings":[{"containerID":0,"hostID":1000,"size":10}]}"#,
            "",
        )
        .unwrap();
        assert_eq!(plan.uid_map, "0 1000 10\n");
        let err = build_with(
            r#"{"namespaces":[{"type":"mount"}],"uidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#,
            "",
        )
        .unwrap_err();
        assert!(err.to_string().contains("need a user namespace"));
    }

    #[test]
    fn hooks_are_checked() {
        let err = build_with(&format!("{NS}}}"), r#""hooks":{"prestart":[{"path":"rel/hook"}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "hooks.prestart[0]: path must be absolute");
        let err =
            build_with(&format!("{NS}}}"), r#""hooks":{"poststop":[{"path":"/bin/true","timeout":-1}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "hooks.poststop[0]: timeout must be greater than zero");
    }

    #[test]
    fn masked_paths_must_be_absolute() {
        let err = build_with(&format!(r#"{NS},"maskedPaths":["/proc/kcore","proc/x"]}}"#), "").unwrap_err();
        assert!(matches!(err, ConfigError::RelativePath { field: "maskedPaths", index: 1, .. }));
    }

    #[test]
    fn time_offsets_need_a_time_namespace() {
        let err = build_with(&format!(r#"{NS},"timeOffsets":{{"monotonic":{{"secs":10}}}}}}"#), "").unwrap_err();
        assert!(matches!(err, ConfigError::TimeOffsets(_)));
        let plan = build_with(
            r#"{"namespaces":[{"type":"mount"},{"type":"time"}],"timeOffsets":{"monotonic":{"secs":10},"boottime":{"secs":-5,"nanosecs":7}}}"#,
            "",
        )
        .unwrap();
        assert_eq!(plan.time_offsets, "boottime -5 7\nmonotonic 10 0\n");
    }
}

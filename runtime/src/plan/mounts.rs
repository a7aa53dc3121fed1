//! `mounts[]` → ordered mount steps: what to mount where, with which attributes. Pure.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Mount};

use crate::sys::mount::{
    MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
};

/// Mount attributes to set and clear (MOUNT_ATTR_* bits, as `mount_setattr` takes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clr: u64,
}

impl Attrs {
    fn add(&mut self, bit: u64) {
        self.set |= bit;
        self.clr &= !bit;
    }
    fn remove(&mut self, bit: u64) {
        self.set &= !bit;
        self.clr |= bit;
    }
    fn atime(&mut self, mode: u64) {
        self.set = (self.set & !MOUNT_ATTR__ATIME) | mode;
        self.clr |= MOUNT_ATTR__ATIME;
    }
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }
    pub fn readonly(&self) -> bool {
        self.set & MOUNT_ATTR_RDONLY != 0
    }
}

/// Mount propagation (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE` or `MS_UNBINDABLE`), maybe recursive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    pub flag: u64,
    pub recursive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (`rbind`: with everything mounted below it).
    Bind { source: PathBuf, recursive: bool },
    /// A new filesystem instance (`fstype`, with `source` as its device/name).
    Fs { fstype: String, source: String },
    /// `type: cgroup`: the container's own cgroup hierarchy (built from the cgroup manager's view).
    Cgroup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// The destination as written in config.json, for messages.
    pub destination: String,
    /// The destination relative to the rootfs, lexically cleaned (never starts with `..`).
    pub dest: PathBuf,
    pub kind: MountKind,
    /// Attributes of the mount itself.
    pub attrs: Attrs,
    /// Attributes applied to the whole mounted tree (`rro`, `rnosuid`, ...).
    pub recursive_attrs: Attrs,
    pub propagation: Option<Propagation>,
    /// Filesystem options: `key=value` or a bare `key` flag, in order.
    pub data: Vec<(String, Option<String>)>,
    /// proc and sysfs may only be mounted onto a real directory, never through a symlink.
    pub no_symlinks: bool,
    /// `tmpcopyup` (tmpfs only): the new tmpfs starts with a copy of what the rootfs holds at the
    /// destination.
    pub copy_up: bool,
    /// MOUNT_ATTR_* bits the options explicitly cleared (`rw`, `suid`, ...): a bind mount whose
    /// source has such a flag locked (a user namespace) fails rather than keeps it.
    pub cleared: u64,
    /// An idmapped bind mount: `uidMappings`/`gidMappings`, or `idmap`/`ridmap` alone (the
    /// container's own mappings).
    pub idmap: Option<MountIdMap>,
}

/// The user namespace an idmapped mount takes its mapping from: files owned on disk by an id
/// inside (`containerID`) appear as owned by the id outside (`hostID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountIdMap {
    /// `/proc/<pid>/uid_map` form, like the container's.
    pub uid_map: String,
    pub gid_map: String,
    /// `ridmap`, or an `rbind` with mappings: every mount of the tree, not only its top.
    pub recursive: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountConfigError {
    #[error("mounts[{index}]: destination is empty")]
    EmptyDestination { index: usize },
    #[error("mounts[{index}] ({dest}): type is required for a non-bind mount")]
    MissingType { index: usize, dest: String },
    #[error("mounts[{index}] ({dest}): mount option {option:?} is not supported")]
    UnsupportedOption { index: usize, dest: String, option: String },
    #[error("mounts[{index}] ({dest}): idmapped mounts are bind mounts only")]
    IdMappedNotBind { index: usize, dest: String },
    #[error(
        "mounts[{index}] ({dest}): idmap without uidMappings/gidMappings takes the container's user namespace mappings, and there is none"
    )]
    IdMapWithoutMappings { index: usize, dest: String },
    #[error("mounts[{index}] ({dest}): uidMappings and gidMappings go together (one of them is missing or empty)")]
    IdMapHalf { index: usize, dest: String },
    #[error("mounts[{index}] ({dest}): a bind mount needs a source")]
    MissingSource { index: usize, dest: String },
    #[error("mounts[{index}] ({dest}): tmpcopyup applies to tmpfs mounts only, not {fstype:?}")]
    CopyUpNotTmpfs { index: usize, dest: String, fstype: String },
}

/// `container_maps`: the container's uid and gid maps when it has a user namespace of its own
/// (what `idmap` without mappings uses).
pub fn plan_mounts(
    mounts: &[Mount],
    bundle: &Path,
    container_maps: Option<(&str, &str)>,
) -> Result<Vec<MountStep>, MountConfigError> {
    mounts
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let mut step = plan_mount(index, m, bundle)?;
            step.idmap = plan_idmap(index, m, &step, container_maps)?;
            Ok(step)
        })
        .collect()
}

fn plan_idmap(
    index: usize,
    m: &Mount,
    step: &MountStep,
    container_maps: Option<(&str, &str)>,
) -> Result<Option<MountIdMap>, MountConfigError> {
    let dest = || step.destination.clone();
    let options = m.options().as_deref().unwrap_or_default();
    let ridmap = options.iter().any(|o| o == "ridmap");
    let idmap_option = ridmap || options.iter().any(|o| o == "idmap");
    let uids = m.uid_mappings().as_deref().unwrap_or_default();
    let gids = m.gid_mappings().as_deref().unwrap_or_default();
    if !idmap_option && uids.is_empty() && gids.is_empty() {
        return Ok(None);
    }
    let MountKind::Bind { recursive, .. } = step.kind else {
        return Err(MountConfigError::IdMappedNotBind { index, dest: dest() });
    };
    let (uid_map, gid_map) = match (uids.is_empty(), gids.is_empty()) {
        (false, false) => (map_lines(uids), map_lines(gids)),
        (true, true) => match container_maps {
            Some((u, g)) => (u.to_owned(), g.to_owned()),
            None => return Err(MountConfigError::IdMapWithoutMappings { index, dest: dest() }),
        },
        _ => return Err(MountConfigError::IdMapHalf { index, dest: dest() }),
    };
    Ok(Some(MountIdMap { uid_map, gid_map, recursive: ridmap || (recursive && !idmap_option) }))
}

fn map_lines(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

fn plan_mount(index: usize, m: &Mount, bundle: &Path) -> Result<MountStep, MountConfigError> {
    let destination = m.destination().to_string_lossy().into_owned();
    if destination.is_empty() {
        return Err(MountConfigError::EmptyDestination { index });
    }
    let dest = clean_in_root(m.destination());
    let fstype = m.typ().as_deref().unwrap_or("");
    let mut attrs = Attrs::default();
    let mut recursive_attrs = Attrs::default();
    let mut propagation = None;
    let mut data = Vec::new();
    let mut bind = None;
    let mut copy_up = false;
    let mut flags = MsFlagWord::default();
    for option in m.options().as_deref().unwrap_or_default() {
        let o = option.as_str();
        flags.apply(o);
        match o {
            "bind" => bind = Some(bind.unwrap_or(false)),
            "rbind" => bind = Some(true),
            "ro" => attrs.add(MOUNT_ATTR_RDONLY),
            "rw" => attrs.remove(MOUNT_ATTR_RDONLY),
            "nosuid" => attrs.add(MOUNT_ATTR_NOSUID),
            "suid" => attrs.remove(MOUNT_ATTR_NOSUID),
            "nodev" => attrs.add(MOUNT_ATTR_NODEV),
            "dev" => attrs.remove(MOUNT_ATTR_NODEV),
            "noexec" => attrs.add(MOUNT_ATTR_NOEXEC),
            "exec" => attrs.remove(MOUNT_ATTR_NOEXEC),
            "nodiratime" => attrs.add(MOUNT_ATTR_NODIRATIME),
            "diratime" => attrs.remove(MOUNT_ATTR_NODIRATIME),
            "nosymfollow" => attrs.add(MOUNT_ATTR_NOSYMFOLLOW),
            "symfollow" => attrs.remove(MOUNT_ATTR_NOSYMFOLLOW),
            "relatime" | "norelatime" | "atime" | "nostrictatime" => attrs.atime(MOUNT_ATTR_RELATIME),
            "noatime" => attrs.atime(MOUNT_ATTR_NOATIME),
            "strictatime" => attrs.atime(MOUNT_ATTR_STRICTATIME),
            "rro" => recursive_attrs.add(MOUNT_ATTR_RDONLY),
            "rrw" => recursive_attrs.remove(MOUNT_ATTR_RDONLY),
            "rnosuid" => recursive_attrs.add(MOUNT_ATTR_NOSUID),
            "rsuid" => recursive_attrs.remove(MOUNT_ATTR_NOSUID),
            "rnodev" => recursive_attrs.add(MOUNT_ATTR_NODEV),
            "rdev" => recursive_attrs.remove(MOUNT_ATTR_NODEV),
            "rnoexec" => recursive_attrs.add(MOUNT_ATTR_NOEXEC),
            "rexec" => recursive_attrs.remove(MOUNT_ATTR_NOEXEC),
            "rnodiratime" => recursive_attrs.add(MOUNT_ATTR_NODIRATIME),
            "rdiratime" => recursive_attrs.remove(MOUNT_ATTR_NODIRATIME),
            "rnosymfollow" => recursive_attrs.add(MOUNT_ATTR_NOSYMFOLLOW),
            "rsymfollow" => recursive_attrs.remove(MOUNT_ATTR_NOSYMFOLLOW),
            "rrelatime" | "rnorelatime" | "ratime" | "rnostrictatime" => recursive_attrs.atime(MOUNT_ATTR_RELATIME),
            "rnoatime" => recursive_attrs.atime(MOUNT_ATTR_NOATIME),
            "rstrictatime" => recursive_attrs.atime(MOUNT_ATTR_STRICTATIME),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                propagation = Some(parse_propagation(o).unwrap_or(Propagation { flag: 0, recursive: false }));
            }
            // Defaults of mount(8), or superblock flags that are the kernel's default anyway.
            "defaults" | "async" | "nomand" | "loud" | "nolazytime" | "noiversion" | "remount" => {}
            // Superblock flags: passed to the filesystem as flags.
            "sync" | "dirsync" | "mand" | "lazytime" | "silent" | "iversion" => data.push((o.to_owned(), None)),
            "tmpcopyup" => copy_up = true,
            // Read by plan_idmap.
            "idmap" | "ridmap" => {}
            _ => match o.split_once('=') {
                Some((k, v)) => data.push((k.to_owned(), Some(v.to_owned()))),
                None => data.push((o.to_owned(), None)),
            },
        }
    }
    if fstype == "bind" && bind.is_none() {
        bind = Some(false);
    }
    let kind = match bind {
        Some(recursive) => {
            let Some(src) = m.source() else {
                return Err(MountConfigError::MissingSource { index, dest: destination });
            };
            // Like runc: a relative bind source is relative to the bundle.
            let source = if src.is_absolute() { src.clone() } else { bundle.join(src) };
            // Filesystem options mean nothing to a bind mount (mount(2) ignores them too).
            data.clear();
            attrs = bind_attrs(flags);
            MountKind::Bind { source, recursive }
        }
        None if fstype.is_empty() => return Err(MountConfigError::MissingType { index, dest: destination }),
        None if fstype == "cgroup" => MountKind::Cgroup,
        None => MountKind::Fs {
            fstype: fstype.to_owned(),
            source: m.source().as_ref().map_or_else(|| fstype.to_owned(), |s| s.to_string_lossy().into_owned()),
        },
    };
    if copy_up && !matches!(&kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs") {
        let fstype = if bind.is_some() { "bind" } else { fstype };
        return Err(MountConfigError::CopyUpNotTmpfs { index, dest: destination, fstype: fstype.to_owned() });
    }
    let no_symlinks = matches!(&kind, MountKind::Fs { fstype, .. } if fstype == "proc" || fstype == "sysfs");
    let cleared = ms_to_attr(flags.cleared);
    Ok(MountStep {
        destination,
        dest,
        kind,
        attrs,
        recursive_attrs,
        propagation,
        data,
        no_symlinks,
        copy_up,
        cleared,
        idmap: None,
    })
}

/// The MS_* flag word runc builds from the options (its `mountFlags` table, applied in order: a
/// setting option adds its flag, a clearing one removes it), plus the flags some option cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MsFlagWord {
    set: u64,
    cleared: u64,
}

impl MsFlagWord {
    fn apply(&mut self, option: &str) {
        let (clear, flag) = match option {
            "acl" => (false, libc::MS_POSIXACL),
            "async" => (true, libc::MS_SYNCHRONOUS),
            "atime" => (true, libc::MS_NOATIME),
            "bind" => (false, libc::MS_BIND),
            "dev" => (true, libc::MS_NODEV),
            "diratime" => (true, libc::MS_NODIRATIME),
            "dirsync" => (false, libc::MS_DIRSYNC),
            "exec" => (true, libc::MS_NOEXEC),
            "iversion" => (false, libc::MS_I_VERSION),
            "lazytime" => (false, libc::MS_LAZYTIME),
            "loud" => (true, libc::MS_SILENT),
            "mand" => (false, libc::MS_MANDLOCK),
            "noacl" => (true, libc::MS_POSIXACL),
            "noatime" => (false, libc::MS_NOATIME),
            "nodev" => (false, libc::MS_NODEV),
            "nodiratime" => (false, libc::MS_NODIRATIME),
            "noexec" => (false, libc::MS_NOEXEC),
            "noiversion" => (true, libc::MS_I_VERSION),
            "nolazytime" => (true, libc::MS_LAZYTIME),
            "nomand" => (true, libc::MS_MANDLOCK),
            "norelatime" => (true, libc::MS_RELATIME),
            "nostrictatime" => (true, libc::MS_STRICTATIME),
            "nosuid" => (false, libc::MS_NOSUID),
            "nosymfollow" => (false, libc::MS_NOSYMFOLLOW),
            "rbind" => (false, libc::MS_BIND | libc::MS_REC),
            "relatime" => (false, libc::MS_RELATIME),
            "remount" => (false, libc::MS_REMOUNT),
            "ro" => (false, libc::MS_RDONLY),
            "rw" => (true, libc::MS_RDONLY),
            "silent" => (false, libc::MS_SILENT),
            "strictatime" => (false, libc::MS_STRICTATIME),
            "suid" => (true, libc::MS_NOSUID),
            "sync" => (false, libc::MS_SYNCHRONOUS),
            "symfollow" => (true, libc::MS_NOSYMFOLLOW),
            _ => return,
        };
        if clear {
            self.set &= !flag;
            self.cleared |= flag;
        } else {
            self.set |= flag;
            self.cleared &= !flag;
        }
    }
}

/// Per-mount flags a bind mount can change (the rest of the MS_* word is ignored for binds).
const BIND_SETTABLE: u64 =
    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW;

/// MS_* per-mount flags → MOUNT_ATTR_* bits (atime modes aside).
fn ms_to_attr(ms: u64) -> u64 {
    [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        (libc::MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
    ]
    .into_iter()
    .filter(|(m, _)| ms & m != 0)
    .fold(0, |acc, (_, a)| acc | a)
}

/// The attributes of a bind mount, as runc computes them: the bind itself keeps the source
/// mount's flags; when the options name any flag beyond `bind`/`rbind`/`remount`, runc remounts it
/// with `MS_REMOUNT | MS_BIND | flags`, and the kernel then sets exactly those per-mount flags
/// (a read-only source becomes writable unless `ro` is given) and keeps the source's atime mode
/// unless an atime flag is among them (`path_mount`, "the default atime for remount is
/// preservation"). `norelatime` or `rw` alone cause no remount: the source's flags stay.
fn bind_attrs(flags: MsFlagWord) -> Attrs {
    let ms = flags.set;
    if ms & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT) == 0 {
        return Attrs::default();
    }
    let set = ms_to_attr(ms) & BIND_SETTABLE;
    let mut attrs = Attrs { set, clr: BIND_SETTABLE & !set };
    let atime_flags = libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;
    if ms & atime_flags != 0 {
        let mode = if ms & libc::MS_STRICTATIME != 0 {
            MOUNT_ATTR_STRICTATIME
        } else if ms & libc::MS_NOATIME != 0 {
            MOUNT_ATTR_NOATIME
        } else {
            MOUNT_ATTR_RELATIME
        };
        attrs.set |= mode | (ms_to_attr(ms) & MOUNT_ATTR_NODIRATIME);
        // The atime modes are an enum: changing it takes the whole field in attr_clr.
        attrs.clr |= MOUNT_ATTR__ATIME | (MOUNT_ATTR_NODIRATIME & !attrs.set);
    }
    attrs
}

/// `rootfsPropagation` and mount propagation options → MS_* flag (+ recursive).
pub fn parse_propagation(s: &str) -> Option<Propagation> {
    let (flag, recursive) = match s {
        "private" => (libc::MS_PRIVATE, false),
        "rprivate" => (libc::MS_PRIVATE, true),
        "shared" => (libc::MS_SHARED, false),
        "rshared" => (libc::MS_SHARED, true),
        "slave" => (libc::MS_SLAVE, false),
        "rslave" => (libc::MS_SLAVE, true),
        "unbindable" => (libc::MS_UNBINDABLE, false),
        "runbindable" => (libc::MS_UNBINDABLE, true),
        _ => return None,
    };
    Some(Propagation { flag, recursive })
}

/// A container path made relative to the root, with `.` and `..` resolved lexically so that it
/// can never climb above the root (`/../x` is `x`).
pub fn clean_in_root(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(dest: &str, typ: Option<&str>, src: Option<&str>, opts: &[&str]) -> Mount {
        let mut m = Mount::default();
        m.set_destination(dest.into());
        m.set_typ(typ.map(str::to_owned));
        m.set_source(src.map(PathBuf::from));
        m.set_options(Some(opts.iter().map(|s| s.to_string()).collect()));
        m
    }

    #[test]
    fn idmap_plans() {
        let bundle = Path::new("/");
        let maps = ("0 100000 65536\n", "0 200000 65536\n");
        let container = Some(maps);
        let plain = plan_mounts(&[mount("/b", Some("bind"), Some("/src"), &["rbind"])], bundle, container).unwrap();
        assert_eq!(plain[0].idmap, None);
        let own =
            plan_mounts(&[mount("/b", Some("bind"), Some("/src"), &["rbind", "idmap"])], bundle, container).unwrap();
        let idmap = own[0].idmap.as_ref().unwrap();
        assert_eq!((idmap.uid_map.as_str(), idmap.gid_map.as_str(), idmap.recursive), (maps.0, maps.1, false));
        let r =
            plan_mounts(&[mount("/b", Some("bind"), Some("/src"), &["bind", "ridmap"])], bundle, container).unwrap();
        assert!(r[0].idmap.as_ref().unwrap().recursive);
        let mut given = mount("/b", Some("bind"), Some("/src"), &["rbind"]);
        let map: LinuxIdMapping =
            serde_json::from_value(serde_json::json!({"containerID": 1000, "hostID": 0, "size": 1})).unwrap();
        given.set_uid_mappings(Some(vec![map]));
        given.set_gid_mappings(Some(vec![map]));
        let g = plan_mounts(&[given.clone()], bundle, None).unwrap();
        assert_eq!(g[0].idmap.as_ref().unwrap().uid_map, "1000 0 1\n");
        assert!(g[0].idmap.as_ref().unwrap().recursive, "rbind with mappings maps the whole tree");
        given.set_gid_mappings(None);
        assert_eq!(
            plan_mounts(&[given], bundle, None),
            Err(MountConfigError::IdMapHalf { index: 0, dest: "/b".into() })
        );
        let none = plan_mounts(&[mount("/b", Some("bind"), Some("/src"), &["idmap"])], bundle, None);
        assert_eq!(none, Err(MountConfigError::IdMapWithoutMappings { index: 0, dest: "/b".into() }));
        let tmpfs = plan_mounts(&[mount("/t", Some("tmpfs"), Some("tmpfs"), &["idmap"])], bundle, container);
        assert_eq!(tmpfs, Err(MountConfigError::IdMappedNotBind { index: 0, dest: "/t".into() }));
    }

    #[test]
    fn runc_default_dev_pts() {
        let m = mount(
            "/dev/pts",
            Some("devpts"),
            Some("devpts"),
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        );
        let s = plan_mount(0, &m, Path::new("/b")).unwrap();
        assert_eq!(s.dest, PathBuf::from("dev/pts"));
        assert_eq!(s.kind, MountKind::Fs { fstype: "devpts".into(), source: "devpts".into() });
        assert_eq!(s.attrs.set, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        assert_eq!(
            s.data,
            vec![
                ("newinstance".into(), None),
                ("ptmxmode".into(), Some("0666".into())),
                ("mode".into(), Some("0620".into())),
                ("gid".into(), Some("5".into()))
            ]
        );
    }

    #[test]
    fn bind_with_relative_source_and_propagation() {
        let m = mount("/data/../etc/hosts", Some("bind"), Some("hosts"), &["rbind", "ro", "rprivate"]);
        let s = plan_mount(3, &m, Path::new("/b")).unwrap();
        assert_eq!(s.dest, PathBuf::from("etc/hosts"));
        assert_eq!(s.kind, MountKind::Bind { source: "/b/hosts".into(), recursive: true });
        assert!(s.attrs.readonly());
        assert_eq!(s.propagation, Some(Propagation { flag: libc::MS_PRIVATE, recursive: true }));
    }

    #[test]
    fn later_options_win_and_atime_modes_replace_each_other() {
        let s =
            plan_mount(0, &mount("/x", Some("tmpfs"), None, &["ro", "rw", "noatime", "strictatime"]), Path::new("/"))
                .unwrap();
        assert!(!s.attrs.readonly());
        assert_eq!(s.attrs.set & MOUNT_ATTR__ATIME, MOUNT_ATTR_STRICTATIME);
        assert_eq!(s.kind, MountKind::Fs { fstype: "tmpfs".into(), source: "tmpfs".into() });
    }

    #[test]
    fn tmpcopyup_is_a_tmpfs_extension() {
        let s = plan_mount(0, &mount("/tmp", Some("tmpfs"), Some("tmpfs"), &["nosuid", "tmpcopyup"]), Path::new("/"))
            .unwrap();
        assert!(s.copy_up);
        assert!(s.data.is_empty(), "tmpcopyup is not a filesystem option: {:?}", s.data);
        assert!(!plan_mount(0, &mount("/tmp", Some("tmpfs"), None, &[]), Path::new("/")).unwrap().copy_up);
    }

    fn bind(opts: &[&str]) -> MountStep {
        plan_mount(0, &mount("/b", Some("bind"), Some("/src"), opts), Path::new("/")).unwrap()
    }

    #[test]
    fn bind_without_flags_keeps_the_source_flags() {
        // runc remounts only when a flag beyond bind/rbind/remount is set: "rw" and "norelatime"
        // only clear flags, so the source's flags (read-only, atime mode) stay.
        for opts in [&["rbind", "rprivate"][..], &["bind", "rw"], &["bind", "norelatime"], &["rbind", "defaults"]] {
            assert_eq!(bind(opts).attrs, Attrs::default(), "{opts:?}");
        }
    }

    #[test]
    fn bind_with_flags_sets_exactly_them() {
        // MS_REMOUNT|MS_BIND|flags: the per-mount flags become exactly the ones given, a read-only
        // source is writable unless "ro" is among them; no atime flag keeps the source's atime mode.
        let all = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW;
        let s = bind(&["bind", "nosuid"]);
        assert_eq!(s.attrs, Attrs { set: MOUNT_ATTR_NOSUID, clr: all & !MOUNT_ATTR_NOSUID });
        let s = bind(&["rbind", "ro", "nodev", "rw"]);
        assert_eq!(s.attrs, Attrs { set: MOUNT_ATTR_NODEV, clr: all & !MOUNT_ATTR_NODEV });
        assert_eq!(s.cleared, MOUNT_ATTR_RDONLY);
        // An atime flag replaces the whole atime mode; "relatime" and "nodiratime" alone count.
        let s = bind(&["bind", "ro", "noatime"]);
        assert_eq!(s.attrs.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME);
        assert_eq!(
            s.attrs.clr & (MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME),
            MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME
        );
        let s = bind(&["bind", "relatime"]);
        assert_eq!(s.attrs.set, MOUNT_ATTR_RELATIME);
        assert_eq!(s.attrs.clr & MOUNT_ATTR__ATIME, MOUNT_ATTR__ATIME);
        let s = bind(&["bind", "nodiratime"]);
        assert_eq!(s.attrs.set, MOUNT_ATTR_NODIRATIME);
        assert_eq!(s.attrs.clr & MOUNT_ATTR__ATIME, MOUNT_ATTR__ATIME);
        // Superblock flags trigger runc's remount too, which then only sets the per-mount flags.
        assert_eq!(bind(&["bind", "sync"]).attrs.set, 0);
        assert_ne!(bind(&["bind", "sync"]).attrs.clr, 0);
    }

    #[test]
    fn proc_and_sysfs_refuse_symlinks() {
        assert!(plan_mount(0, &mount("/proc", Some("proc"), Some("proc"), &[]), Path::new("/")).unwrap().no_symlinks);
        assert!(!plan_mount(0, &mount("/tmp", Some("tmpfs"), None, &[]), Path::new("/")).unwrap().no_symlinks);
    }

    #[test]
    fn errors_name_the_mount() {
        let e = plan_mount(2, &mount("/x", None, Some("/y"), &[]), Path::new("/")).unwrap_err();
        assert_eq!(e.to_string(), "mounts[2] (/x): type is required for a non-bind mount");
        let e = plan_mount(1, &mount("/x", Some("bind"), Some("/y"), &["tmpcopyup"]), Path::new("/")).unwrap_err();
        assert_eq!(e.to_string(), "mounts[1] (/x): tmpcopyup applies to tmpfs mounts only, not \"bind\"");
        assert!(matches!(
            plan_mount(0, &mount("", Some("tmpfs"), None, &[]), Path::new("/")),
            Err(MountConfigError::EmptyDestination { .. })
        ));
    }

    #[test]
    fn clean_never_climbs_out() {
        assert_eq!(clean_in_root(Path::new("/../../etc/./passwd")), PathBuf::from("etc/passwd"));
        assert_eq!(clean_in_root(Path::new("relative/x")), PathBuf::from("relative/x"));
        assert_eq!(clean_in_root(Path::new("/")), PathBuf::new());
    }
}

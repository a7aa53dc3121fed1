//! Device nodes the runtime creates in the container's `/dev`: runc's defaults plus
//! `linux.devices`. Pure.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::mounts::clean_in_root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Char,
    Block,
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Path relative to the rootfs ("dev/null").
    pub dest: PathBuf,
    pub kind: NodeKind,
    pub major: u64,
    pub minor: u64,
    /// Permission bits only.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceConfigError {
    #[error("linux.devices[{0}]: path must be absolute")]
    RelativePath(usize),
    #[error("linux.devices[{0}]: type \"a\" is only valid in cgroup device rules")]
    TypeAll(usize),
    #[error("linux.devices[{index}]: invalid {what} {value}")]
    Number { index: usize, what: &'static str, value: i64 },
    #[error("linux.devices[{index}]: {path} is given more than once")]
    Duplicate { index: usize, path: String },
}

/// The devices every container gets (runc's list), owned by root with mode 0666.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("dev/null", 1, 3),
    ("dev/zero", 1, 5),
    ("dev/full", 1, 7),
    ("dev/tty", 5, 0),
    ("dev/urandom", 1, 9),
    ("dev/random", 1, 8),
];

pub fn plan_devices(devices: &[LinuxDevice]) -> Result<Vec<DeviceNode>, DeviceConfigError> {
    let mut out: Vec<DeviceNode> = Vec::with_capacity(devices.len() + DEFAULTS.len());
    for (index, d) in devices.iter().enumerate() {
        if !d.path().is_absolute() {
            return Err(DeviceConfigError::RelativePath(index));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => NodeKind::Char,
            LinuxDeviceType::B => NodeKind::Block,
            LinuxDeviceType::P => NodeKind::Fifo,
            LinuxDeviceType::A => return Err(DeviceConfigError::TypeAll(index)),
        };
        let number = |what: &'static str, value: i64| {
            u64::try_from(value).map_err(|_| DeviceConfigError::Number { index, what, value })
        };
        let (major, minor) =
            if kind == NodeKind::Fifo { (0, 0) } else { (number("major", d.major())?, number("minor", d.minor())?) };
        let dest = clean_in_root(d.path());
        if out.iter().any(|n| n.dest == dest) {
            return Err(DeviceConfigError::Duplicate { index, path: d.path().display().to_string() });
        }
        out.push(DeviceNode {
            dest,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for (path, major, minor) in DEFAULTS {
        if !out.iter().any(|n| n.dest == Path::new(path)) {
            out.push(DeviceNode { dest: path.into(), kind: NodeKind::Char, major, minor, mode: 0o666, uid: 0, gid: 0 });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(json: &str) -> LinuxDevice {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_added_and_config_overrides_them() {
        let nodes =
            plan_devices(&[device(r#"{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":8630,"uid":5}"#)])
                .unwrap();
        assert_eq!(nodes.len(), 6);
        let null = &nodes[0];
        assert_eq!((null.mode, null.uid), (0o666, 5), "type bits are stripped from fileMode");
        assert!(nodes.iter().any(|n| n.dest == Path::new("dev/urandom") && n.minor == 9));
    }

    #[test]
    fn bad_devices_are_refused() {
        assert_eq!(
            plan_devices(&[device(r#"{"path":"dev/x","type":"c","major":1,"minor":3}"#)]),
            Err(DeviceConfigError::RelativePath(0))
        );
        assert_eq!(
            plan_devices(&[device(r#"{"path":"/dev/x","type":"a","major":1,"minor":3}"#)]),
            Err(DeviceConfigError::TypeAll(0))
        );
        assert!(matches!(
            plan_devices(&[device(r#"{"path":"/dev/x","type":"b","major":-1,"minor":3}"#)]),
            Err(DeviceConfigError::Number { what: "major", .. })
        ));
        let fifo = plan_devices(&[device(r#"{"path":"/dev/fifo","type":"p","major":0,"minor":0}"#)]).unwrap();
        assert_eq!(fifo[0].kind, NodeKind::Fifo);
    }
}

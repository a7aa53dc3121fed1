//! Device access rules: `linux.resources.devices` plus the runtime's default devices, folded
//! into one final state (a default verdict and its exceptions), then written to the v1
//! `devices` controller or compiled into a v2 eBPF device filter.
//!
//! The rules are folded with the semantics of the v1 controller (as runc's emulator does), so
//! both cgroup versions give the same answer for the same config: a rule of type "a" resets
//! everything to allow-all or deny-all; other rules add or remove exceptions; removing part of
//! an exception that a wildcard exception covers ("punching a hole") is refused, because v1
//! cannot express it.
//!
//! The default devices are runc's (1.1 and current): mknod of any char or block device, and
//! rwm on null 1:3, random 1:8, full 1:7, tty 5:0, zero 1:5, urandom 1:9, pts 136:*, ptmx 5:2
//! and tun 10:200, appended after the config's rules. (runc drops a default whose path also
//! appears in `linux.devices`; here they are always appended.) A config that says only
//! "deny all" (podman, CRI) therefore gets exactly these devices.

pub(crate) mod ebpf;
mod v1;

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

pub(crate) use v1::apply as apply_v1;

use super::CgroupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DevType {
    Char,
    Block,
}

/// Access bits, numbered as the kernel's BPF_DEVCG_ACC_* so the eBPF program uses them as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Access(u8);

impl Access {
    pub(crate) const MKNOD: u8 = 1;
    pub(crate) const READ: u8 = 2;
    pub(crate) const WRITE: u8 = 4;
    pub(crate) const ALL: Access = Access(7);

    fn parse(s: &str) -> Option<Self> {
        let mut bits = 0;
        for c in s.chars() {
            bits |= match c {
                'r' => Self::READ,
                'w' => Self::WRITE,
                'm' => Self::MKNOD,
                _ => return None,
            };
        }
        (bits != 0).then_some(Self(bits))
    }

    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One rule; `typ: None` is type "a" (every device, whatever the numbers say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub typ: Option<DevType>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
    pub allow: bool,
}

/// Which devices an exception covers: `None` numbers are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.typ {
            DevType::Char => 'c',
            DevType::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(f, "{t} {}:{}", num(self.major), num(self.minor))
    }
}

/// The folded rules: a default verdict and the devices that get the opposite one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DeviceState {
    pub default_allow: bool,
    pub exceptions: BTreeMap<Key, Access>,
}

impl DeviceState {
    fn apply(&mut self, rule: &Rule) -> Result<(), CgroupError> {
        let Some(typ) = rule.typ else {
            *self = Self { default_allow: rule.allow, exceptions: BTreeMap::new() };
            return Ok(());
        };
        let key = Key { typ, major: rule.major, minor: rule.minor };
        if rule.allow != self.default_allow {
            let entry = self.exceptions.entry(key).or_default();
            entry.0 |= rule.access.0;
            return Ok(());
        }
        // Taking access away from an exception: a wildcard exception covering this device
        // would keep granting it, and v1 cannot carve a hole out of a wildcard.
        for wide in [Key { major: None, ..key }, Key { minor: None, ..key }, Key { major: None, minor: None, ..key }] {
            if wide != key && self.exceptions.get(&wide).is_some_and(|a| a.0 & rule.access.0 != 0) {
                return Err(CgroupError::InvalidResource {
                    field: "devices".into(),
                    reason: format!(
                        "rule \"{key} {}\" would punch a hole in the wider rule \"{wide} {}\"",
                        rule.access, self.exceptions[&wide]
                    ),
                });
            }
        }
        if let Some(a) = self.exceptions.get_mut(&key) {
            a.0 &= !rule.access.0;
            if a.is_empty() {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }
}

/// runc's default devices (see the module comment).
pub(crate) fn default_rules() -> Vec<Rule> {
    let c = |major: Option<u32>, minor: Option<u32>, access: Access| Rule {
        typ: Some(DevType::Char),
        major,
        minor,
        access,
        allow: true,
    };
    let m = Access(Access::MKNOD);
    vec![
        c(None, None, m),
        Rule { typ: Some(DevType::Block), major: None, minor: None, access: m, allow: true },
        c(Some(1), Some(3), Access::ALL),
        c(Some(1), Some(8), Access::ALL),
        c(Some(1), Some(7), Access::ALL),
        c(Some(5), Some(0), Access::ALL),
        c(Some(1), Some(5), Access::ALL),
        c(Some(1), Some(9), Access::ALL),
        c(Some(136), None, Access::ALL),
        c(Some(5), Some(2), Access::ALL),
        c(Some(10), Some(200), Access::ALL),
    ]
}

/// Check and convert the config's rules (all of them, before anything is written).
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let bad = |reason: String| CgroupError::InvalidResource { field: format!("devices[{i}]"), reason };
            let typ = match r.typ() {
                None | Some(LinuxDeviceType::A) => None,
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DevType::Char),
                Some(LinuxDeviceType::B) => Some(DevType::Block),
                Some(LinuxDeviceType::P) => return Err(bad("type \"p\" is not a cgroup device type (a, b, c)".into())),
            };
            let number = |n: Option<i64>, what: &str| match n {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| bad(format!("invalid {what} number {n}"))),
            };
            let access = r.access().as_deref().unwrap_or("");
            let access = Access::parse(access)
                .ok_or_else(|| bad(format!("access {access:?} must be a non-empty combination of r, w and m")))?;
            Ok(Rule {
                typ,
                major: number(r.major(), "major")?,
                minor: number(r.minor(), "minor")?,
                access,
                allow: r.allow(),
            })
        })
        .collect()
}

/// The final state for a config: its rules, then the defaults, starting from deny-all.
pub(crate) fn fold(config: &[Rule]) -> Result<DeviceState, CgroupError> {
    let mut state = DeviceState::default();
    for rule in config.iter().chain(default_rules().iter()) {
        state.apply(rule)?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Vec<Rule> {
        let parsed: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        parse_rules(&parsed).unwrap()
    }

    fn listing(state: &DeviceState) -> Vec<String> {
        state.exceptions.iter().map(|(k, a)| format!("{k} {a}")).collect()
    }

    #[test]
    fn deny_all_gives_exactly_the_default_devices() {
        let state = fold(&rule(r#"[{"allow":false,"access":"rwm"}]"#)).unwrap();
        assert!(!state.default_allow);
        // The set runc 1.1.5 leaves in devices.list on this machine for the same config.
        assert_eq!(
            listing(&state),
            [
                "c *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
                "c 136:* rwm",
                "b *:* m"
            ]
        );
    }

    #[test]
    fn later_rules_win_and_access_merges() {
        let state = fold(&rule(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":4,"minor":1,"access":"r"},
                {"allow":true,"type":"c","major":4,"minor":1,"access":"w"},
                {"allow":true,"type":"b","major":8,"minor":0,"access":"rw"},
                {"allow":false,"type":"b","major":8,"minor":0,"access":"w"}]"#,
        ))
        .unwrap();
        assert_eq!(state.exceptions[&Key { typ: DevType::Char, major: Some(4), minor: Some(1) }].to_string(), "rw");
        assert_eq!(state.exceptions[&Key { typ: DevType::Block, major: Some(8), minor: Some(0) }].to_string(), "r");
    }

    #[test]
    fn allow_all_is_a_blacklist() {
        let state = fold(&rule(
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":11,"access":"rw"}]"#,
        ))
        .unwrap();
        assert!(state.default_allow);
        // The default devices are allowed anyway, so they leave no exception behind.
        assert_eq!(listing(&state), ["c 1:11 rw"]);
    }

    #[test]
    fn punching_a_hole_in_a_wildcard_is_refused() {
        let rules = rule(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":7,"access":"rw"},
                {"allow":false,"type":"c","major":7,"minor":1,"access":"w"}]"#,
        );
        let err = fold(&rules).unwrap_err().to_string();
        assert!(err.contains("punch a hole"), "{err}");
    }

    #[test]
    fn bad_rules_are_named() {
        for (json, want) in [
            (r#"[{"allow":true,"type":"c","major":1,"minor":3}]"#, "access"),
            (r#"[{"allow":true,"type":"c","access":"rx"}]"#, "access"),
            (r#"[{"allow":true,"type":"p","access":"r"}]"#, "type"),
            (r#"[{"allow":true,"type":"c","major":-5,"access":"r"}]"#, "major"),
        ] {
            let parsed: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
            let err = parse_rules(&parsed).unwrap_err().to_string();
            assert!(err.contains("devices[0]") && err.contains(want), "{json}: {err}");
        }
    }
}

//! Rootless mode and the state root, decided the way runc and crun decide them.
//!
//! * `--rootless true|false|auto` (default auto). Auto means rootless when the effective uid is
//!   not 0, or when uid 0 is that of a user namespace that does not map the whole id range (rootless
//!   podman runs the runtime as uid 0 of its own namespace), or when a rootless engine says so in
//!   the environment (`ROOTLESSKIT_STATE_DIR`, podman's `_CONTAINERS_USERNS_CONFIGURED`).
//! * The state root: `--root` when given; otherwise `$XDG_RUNTIME_DIR/strata` when the caller is
//!   not root, or is uid 0 of a user namespace while `USER` is not `root` (runc's rule for
//!   `$XDG_RUNTIME_DIR/runc`); `/run/strata` otherwise.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind};

/// What `--rootless` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootlessFlag {
    True,
    False,
    Auto,
}

impl RootlessFlag {
    pub fn parse(value: Option<&str>) -> Result<Self, Error> {
        match value {
            None | Some("auto") => Ok(Self::Auto),
            Some("true") => Ok(Self::True),
            Some("false") => Ok(Self::False),
            Some(other) => Err(Error::msg(
                ErrorKind::InvalidSpec,
                format!("invalid --rootless value {other:?} (true, false or auto)"),
            )),
        }
    }
}

/// The facts detection depends on, read once (a struct so that the rules can be tested).
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub euid: u32,
    /// `/proc/self/uid_map`; `None` when it cannot be read.
    pub uid_map: Option<String>,
    pub xdg_runtime_dir: Option<String>,
    pub user: Option<String>,
    /// `ROOTLESSKIT_STATE_DIR` or `_CONTAINERS_USERNS_CONFIGURED` is set.
    pub engine_says_rootless: bool,
}

impl Host {
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            euid: nix::unistd::geteuid().as_raw(),
            uid_map: std::fs::read_to_string("/proc/self/uid_map").ok(),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            user: std::env::var("USER").ok(),
            engine_says_rootless: var("ROOTLESSKIT_STATE_DIR").is_some()
                || var("_CONTAINERS_USERNS_CONFIGURED").is_some(),
        }
    }

    /// Inside a user namespace: any uid_map but the initial namespace's identity map of every id.
    pub fn in_user_namespace(&self) -> bool {
        self.uid_map.as_deref().is_some_and(crate::sys::userns::is_partial_map)
    }

    pub fn rootless(&self, flag: RootlessFlag) -> bool {
        match flag {
            RootlessFlag::True => true,
            RootlessFlag::False => false,
            RootlessFlag::Auto => self.euid != 0 || self.in_user_namespace() || self.engine_says_rootless,
        }
    }

    /// The state root when `--root` is not given.
    pub fn default_root(&self) -> Result<PathBuf, Error> {
        let honour_xdg = self.euid != 0 || (self.in_user_namespace() && self.user.as_deref() != Some("root"));
        if !honour_xdg {
            return Ok(PathBuf::from(super::DEFAULT_ROOT));
        }
        match &self.xdg_runtime_dir {
            Some(dir) => Ok(PathBuf::from(dir).join("strata")),
            // runc falls back to /run/runc and fails there on permissions; say what is missing.
            None if self.euid != 0 => Err(Error::msg(
                ErrorKind::InvalidSpec,
                format!(
                    "rootless: XDG_RUNTIME_DIR is not set, so there is no state root for uid {}: set it (e.g. /run/user/{}) or pass --root",
                    self.euid, self.euid
                ),
            )),
            None => Ok(PathBuf::from(super::DEFAULT_ROOT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = "         0          0 4294967295\n";

    fn host(euid: u32, uid_map: &str) -> Host {
        Host { euid, uid_map: Some(uid_map.into()), ..Host::default() }
    }

    #[test]
    fn auto_follows_euid_and_the_user_namespace() {
        assert!(!host(0, INITIAL).rootless(RootlessFlag::Auto));
        assert!(host(1000, INITIAL).rootless(RootlessFlag::Auto));
        // podman's namespace: uid 0 mapped to the user, the rest to a subuid range.
        assert!(host(0, "0 1000 1\n1 100000 65536\n").rootless(RootlessFlag::Auto));
        let engine = Host { engine_says_rootless: true, ..host(0, INITIAL) };
        assert!(engine.rootless(RootlessFlag::Auto));
        assert!(host(1000, INITIAL).rootless(RootlessFlag::True));
        assert!(!host(1000, INITIAL).rootless(RootlessFlag::False));
    }

    #[test]
    fn flag_values() {
        assert_eq!(RootlessFlag::parse(None).unwrap(), RootlessFlag::Auto);
        assert_eq!(RootlessFlag::parse(Some("true")).unwrap(), RootlessFlag::True);
        assert_eq!(RootlessFlag::parse(Some("false")).unwrap(), RootlessFlag::False);
        let e = RootlessFlag::parse(Some("yes")).unwrap_err();
        assert!(e.to_string().contains("invalid --rootless value \"yes\""), "{e}");
    }

    #[test]
    fn state_root_rules() {
        let xdg = |h: Host| Host { xdg_runtime_dir: Some("/run/user/1000".into()), ..h };
        assert_eq!(xdg(host(0, INITIAL)).default_root().unwrap(), PathBuf::from("/run/strata"));
        assert_eq!(xdg(host(1000, INITIAL)).default_root().unwrap(), PathBuf::from("/run/user/1000/strata"));
        let ns = "0 1000 1\n";
        assert_eq!(xdg(host(0, ns)).default_root().unwrap(), PathBuf::from("/run/user/1000/strata"));
        let root_user = Host { user: Some("root".into()), ..xdg(host(0, ns)) };
        assert_eq!(root_user.default_root().unwrap(), PathBuf::from("/run/strata"));
        let e = host(1000, INITIAL).default_root().unwrap_err();
        assert!(e.to_string().contains("XDG_RUNTIME_DIR is not set"), "{e}");
        assert_eq!(host(0, ns).default_root().unwrap(), PathBuf::from("/run/strata"));
    }
}

//! `linux.cgroupsPath` in the systemd driver's form, "slice:prefix:name", as runc reads it:
//! - `slice` is the parent slice; empty means `system.slice` (the user manager's default is
//!   `user.slice`), `-.slice` is the root slice; dashes name its parents (`a-b.slice` is
//!   `a.slice/a-b.slice`), so a slice name has no `/`, no empty component and ends in `.slice`;
//! - the unit is `prefix-name.scope` (`name.scope` with an empty prefix), or `name` itself
//!   when it ends in `.slice` (the container then gets a slice of its own);
//! - no path at all is `:strata:<container id>` (runc: `:runc:<id>`).

use std::fmt;

/// The rule, quoted in every refusal.
pub(crate) const RULE: &str = "the systemd cgroup driver expects cgroupsPath \"slice:prefix:name\" \
     (slice: empty for the default, \"-.slice\" or a name ending in \".slice\" without \"/\"; \
     unit: \"prefix-name.scope\", or \"name\" when it ends in \".slice\")";

/// Where the container's unit goes and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitPath {
    /// The parent slice unit ("system.slice", "-.slice").
    pub slice: String,
    /// The container's unit ("strata-ctr1.scope", or a slice).
    pub unit: String,
    /// The unit's cgroup below a hierarchy's root, without a leading '/'
    /// ("system.slice/strata-ctr1.scope").
    pub cgroup: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUnitPath {
    path: String,
    reason: String,
}

impl fmt::Display for InvalidUnitPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid cgroupsPath {:?}: {}; {RULE}", self.path, self.reason)
    }
}

impl std::error::Error for InvalidUnitPath {}

/// Parse `cgroups_path` (or the default for `container_id`); `default_slice` is
/// "system.slice" for the system manager, "user.slice" for a user manager.
pub(crate) fn parse(
    cgroups_path: Option<&str>,
    container_id: &str,
    default_slice: &str,
) -> Result<UnitPath, InvalidUnitPath> {
    let owned;
    let raw = match cgroups_path.filter(|p| !p.is_empty()) {
        Some(p) => p,
        None => {
            owned = format!(":strata:{container_id}");
            &owned
        }
    };
    let invalid = |reason: String| InvalidUnitPath { path: raw.to_owned(), reason };
    let parts: Vec<&str> = raw.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(format!("expected 3 parts separated by ':', found {}", parts.len())));
    };
    let slice = if slice.is_empty() { default_slice } else { slice };
    let slice_dir = expand_slice(slice).map_err(|r| invalid(format!("slice {slice:?}: {r}")))?;
    if name.is_empty() {
        return Err(invalid("the name is empty".to_owned()));
    }
    check_unit_chars(prefix).map_err(|r| invalid(format!("prefix {prefix:?}: {r}")))?;
    check_unit_chars(name).map_err(|r| invalid(format!("name {name:?}: {r}")))?;
    let unit = if name.ends_with(".slice") {
        // A slice is placed by its name alone: its parent must be the one the name implies.
        let own = expand_slice(name).map_err(|r| invalid(format!("name {name:?}: {r}")))?;
        if own.rsplit_once('/').map(|(parent, _)| parent) != Some(slice_dir.as_str()) {
            return Err(invalid(format!("slice {name:?} is not a child of {slice:?}")));
        }
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let cgroup = format!("{slice_dir}/{unit}");
    Ok(UnitPath { slice: slice.to_owned(), unit, cgroup: cgroup.trim_start_matches('/').to_owned() })
}

/// "a-b.slice" → "/a.slice/a-b.slice"; "-.slice" → "" (the root).
pub(crate) fn expand_slice(slice: &str) -> Result<String, &'static str> {
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| !s.is_empty()) else {
        return Err("a slice name ends in \".slice\"");
    };
    if slice.contains('/') {
        return Err("a slice name has no '/' (dashes name its parents)");
    }
    check_unit_chars(slice)?;
    if stem == "-" {
        return Ok(String::new());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return Err("a slice name has no empty component (\"--\", or '-' at either end)");
        }
        prefix.push_str(component);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
        prefix.push('-');
    }
    Ok(path)
}

/// systemd's unit name characters (unit_name_is_valid): ASCII letters, digits and ":-_.\@".
/// ':' cannot occur here (it separates the parts).
fn check_unit_chars(s: &str) -> Result<(), &'static str> {
    if s.len() > 255 {
        return Err("longer than a unit name may be (255)");
    }
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.\\@".contains(c)) {
        Ok(())
    } else {
        Err("only ASCII letters, digits and \"-_.\\@\" may appear in a unit name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> UnitPath {
        parse(Some(p), "ctr1", "system.slice").unwrap()
    }

    fn err(p: &str) -> String {
        parse(Some(p), "ctr1", "system.slice").unwrap_err().to_string()
    }

    #[test]
    fn the_engines_paths() {
        // podman
        let u = ok("machine.slice:libpod:abc");
        assert_eq!((u.slice.as_str(), u.unit.as_str()), ("machine.slice", "libpod-abc.scope"));
        assert_eq!(u.cgroup, "machine.slice/libpod-abc.scope");
        // containerd's CRI: a pod slice below kubepods
        let u = ok("kubepods-besteffort-pod12.slice:cri-containerd:ee67");
        assert_eq!(u.unit, "cri-containerd-ee67.scope");
        assert_eq!(
            u.cgroup,
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-ee67.scope"
        );
        // Docker: the default slice
        let u = ok(":docker:f00");
        assert_eq!((u.slice.as_str(), u.cgroup.as_str()), ("system.slice", "system.slice/docker-f00.scope"));
    }

    #[test]
    fn defaults_root_slice_and_empty_prefix() {
        let u = parse(None, "c9", "system.slice").unwrap();
        assert_eq!((u.unit.as_str(), u.cgroup.as_str()), ("strata-c9.scope", "system.slice/strata-c9.scope"));
        assert_eq!(parse(Some(""), "c9", "user.slice").unwrap().cgroup, "user.slice/strata-c9.scope");
        assert_eq!(ok("-.slice:p:n").cgroup, "p-n.scope");
        assert_eq!(ok("a.slice::n").unit, "n.scope");
    }

    #[test]
    fn a_name_ending_in_slice_is_a_slice() {
        let u = ok("a.slice:ignored:a-b.slice");
        assert!(u.unit.ends_with(".slice"));
        assert_eq!((u.unit.as_str(), u.cgroup.as_str()), ("a-b.slice", "a.slice/a-b.slice"));
        assert!(err("b.slice:x:a-b.slice").contains("not a child of"));
        assert_eq!(ok("-.slice:x:top.slice").cgroup, "top.slice");
        assert!(ok("a.slice:p:n").unit.ends_with(".scope"));
    }

    #[test]
    fn slices_expand_to_their_parents() {
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        for bad in [".slice", "a", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "a b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_forms_are_refused_with_the_rule() {
        for (path, why) in [
            ("/machine/ctr", "expected 3 parts"),
            ("a:b", "expected 3 parts"),
            ("a:b:c:d", "expected 3 parts"),
            ("system:p:n", "ends in \".slice\""),
            ("a--b.slice:p:n", "empty component"),
            ("a.slice:p:", "name is empty"),
            ("a.slice:p:x/y", "only ASCII letters"),
            ("a.slice:p q:n", "only ASCII letters"),
        ] {
            let e = err(path);
            assert!(e.contains(why), "{path}: {e}");
            assert!(e.contains("slice:prefix:name"), "{path}: {e}");
        }
    }
}

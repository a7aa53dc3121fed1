//! unified: cgroup v2 files written as given ("memory.high": "500M"), after everything else so
//! they override the values converted from the v1-style fields.
//!
//! A key must be a plain file name of the form "<controller>.<knob>"; files that move
//! processes or change the cgroup's kind or lifecycle (cgroup.procs, cgroup.threads,
//! cgroup.kill, cgroup.freeze, cgroup.type, cgroup.subtree_control) are refused. A value with
//! several lines (io.max for several devices) is written one line at a time.

use std::collections::HashMap;

use crate::cgroup::CgroupError;
use crate::cgroup::dir::CgroupDir;

const FORBIDDEN: &[&str] =
    &["cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze", "cgroup.type", "cgroup.subtree_control"];

pub(super) fn validate(u: &HashMap<String, String>) -> Result<(), CgroupError> {
    for (k, v) in u {
        let bad =
            |reason: &str| CgroupError::InvalidResource { field: format!("unified[{k:?}]"), reason: reason.into() };
        let well_formed = k.split_once('.').is_some_and(|(c, knob)| {
            !c.is_empty()
                && !knob.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        });
        if !well_formed {
            return Err(bad("must be a cgroup file name of the form <controller>.<knob>"));
        }
        if FORBIDDEN.contains(&k.as_str()) {
            return Err(bad("this file cannot be set through linux.resources.unified"));
        }
        if v.contains('\0') {
            return Err(bad("the value contains a NUL character"));
        }
    }
    Ok(())
}

/// `enabled`: the controllers enabled for this cgroup (its cgroup.controllers).
pub(super) fn apply(dir: &CgroupDir, u: &HashMap<String, String>, enabled: &[String]) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        let controller = k.split('.').next().unwrap_or_default();
        for line in u[k].lines().map(str::trim).filter(|l| !l.is_empty()) {
            match dir.write_raw(k, line) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let reason = if controller != "cgroup" && !enabled.iter().any(|c| c == controller) {
                        format!("the {controller} controller is not enabled for this cgroup")
                    } else {
                        "no such cgroup file".to_owned()
                    };
                    return Err(CgroupError::InvalidResource { field: format!("unified[{k:?}]"), reason });
                }
                Err(e) => return Err(dir.write_error(k, line, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    fn map(json: &str) -> HashMap<String, String> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keys_are_checked() {
        assert!(validate(&map(r#"{"memory.high":"1G","io.max":"8:0 rbps=1","cgroup.max.depth":"3"}"#)).is_ok());
        for bad in
            [r#"{"../x.y":"1"}"#, r#"{"memory":"1"}"#, r#"{"a/b.c":"1"}"#, r#"{"cgroup.procs":"1"}"#, r#"{".x":"1"}"#]
        {
            assert!(validate(&map(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_written_one_by_one_and_missing_controllers_named() {
        let t = TempTree::new(&["io.max", "memory.high"]);
        let d = CgroupDir::new(t.path().into());
        apply(&d, &map(r#"{"io.max":"8:0 rbps=1\n8:16 wbps=2\n","memory.high":"max"}"#), &[]).unwrap();
        assert_eq!(t.get("io.max"), "8:0 rbps=1\n8:16 wbps=2\n");
        assert_eq!(t.get("memory.high"), "max\n");
        let err = apply(&d, &map(r#"{"pids.max":"5"}"#), &["memory".into()]).unwrap_err().to_string();
        assert!(err.contains("pids controller is not enabled"), "{err}");
    }
}

//! The bundle's `config.json`: image-spec conversion.md applied to the image configuration,
//! on top of defaults like `runc spec`'s (namespaces, mounts, capabilities, masked paths).

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use serde_json::{Value, json};

use crate::user;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the image has neither Entrypoint nor Cmd; give the command after --")]
    NoCommand,
    #[error("resolving the user")]
    User(#[source] user::Error),
    #[error("malformed --env {0:?} (expected KEY=VALUE)")]
    Env(String),
    #[error(
        "the container's user is uid {0} gid {1}, but a rootless bundle maps only your own user (to 0): give --user 0"
    )]
    RootlessUser(u32, u32),
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the caller adds to or overrides in the image configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub user: Option<&'a str>,
    pub workdir: Option<&'a str>,
    pub hostname: &'a str,
    pub readonly: bool,
    /// For a bundle an unprivileged user runs: the caller's uid and gid, mapped to 0.
    pub rootless: Option<(u32, u32)>,
}

/// A volume: where it appears in the container, and the host directory behind it.
#[derive(Debug, Clone)]
pub struct Volume {
    pub destination: String,
    pub source: String,
}

/// `Entrypoint` + `Cmd`, the arguments replacing `Cmd` when given.
pub fn process_args(entrypoint: &[String], cmd: &[String], args: &[String]) -> Result<Vec<String>, Error> {
    let mut out = entrypoint.to_vec();
    out.extend_from_slice(if args.is_empty() { cmd } else { args });
    if out.is_empty() { Err(Error::NoCommand) } else { Ok(out) }
}

/// The image's environment, then each `K=V` override replacing the same key in place.
pub fn merge_env(image: &[String], extra: &[String]) -> Result<Vec<String>, Error> {
    let mut env: Vec<String> = image.to_vec();
    for e in extra {
        let (k, _) = e.split_once('=').filter(|(k, _)| !k.is_empty()).ok_or_else(|| Error::Env(e.clone()))?;
        let prefix = format!("{k}=");
        match env.iter_mut().find(|x| x.starts_with(&prefix) || x.as_str() == k) {
            Some(x) => *x = e.clone(),
            None => env.push(e.clone()),
        }
    }
    // An implementation default that adds, never changes, a variable (conversion.md).
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_string());
    }
    Ok(env)
}

/// conversion.md's annotations: the implicit ones, then `Config.Labels` taking precedence.
pub fn annotations(image: &ImageConfiguration) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        a.insert(format!("org.opencontainers.image.{k}"), v);
    };
    put("os", image.os().to_string());
    put("architecture", image.architecture().to_string());
    if let Some(v) = image.variant() {
        put("variant", v.clone());
    }
    if let Some(v) = image.os_version() {
        put("os.version", v.clone());
    }
    if let Some(v) = image.os_features() {
        put("os.features", v.join(","));
    }
    if let Some(v) = image.author() {
        put("author", v.clone());
    }
    if let Some(v) = image.created() {
        put("created", v.clone());
    }
    if let Some(c) = image.config() {
        if let Some(s) = c.stop_signal() {
            put("stopSignal", s.clone());
        }
        if let Some(p) = c.exposed_ports()
            && !p.is_empty()
        {
            put("exposedPorts", p.join(","));
        }
        if let Some(labels) = c.labels() {
            for (k, v) in labels {
                a.insert(k.clone(), v.clone());
            }
        }
    }
    a
}

/// Build `config.json`. `passwd`/`group` are the image's files (for `User`).
pub fn build(
    image: &ImageConfiguration,
    o: &Overrides<'_>,
    passwd: Option<&str>,
    group: Option<&str>,
    volumes: &[Volume],
) -> Result<Value, Error> {
    let cfg = image.config().clone().unwrap_or_default();
    let none = Vec::new();
    let args = process_args(cfg.entrypoint().as_ref().unwrap_or(&none), cfg.cmd().as_ref().unwrap_or(&none), o.args)?;
    let mut env = merge_env(cfg.env().as_ref().unwrap_or(&none), o.env)?;
    let user_spec = o.user.map(str::to_string).or_else(|| cfg.user().clone()).unwrap_or_default();
    let user = user::resolve(&user_spec, passwd, group).map_err(Error::User)?;
    // As podman does: the user's home from the image's passwd, else `/`, unless the image or
    // the caller sets HOME.
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home.as_deref().unwrap_or("/")));
    }
    let cwd = o.workdir.map(str::to_string).or_else(|| cfg.working_dir().clone()).filter(|w| !w.is_empty());
    let cwd = match cwd {
        Some(w) if w.starts_with('/') => w,
        Some(w) => format!("/{w}"),
        None => "/".to_string(),
    };

    let mut spec = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap_or(Value::Null);
    spec["ociVersion"] = json!("1.0.2");
    spec["hostname"] = json!(o.hostname);
    spec["root"] = json!({ "path": "rootfs", "readonly": o.readonly });
    let mut user_json = json!({ "uid": user.uid, "gid": user.gid });
    if !user.additional_gids.is_empty() {
        user_json["additionalGids"] = json!(user.additional_gids);
    }
    let process = &mut spec["process"];
    process["terminal"] = json!(false);
    process["args"] = json!(args);
    process["env"] = json!(env);
    process["cwd"] = json!(cwd);
    process["user"] = user_json;
    spec["linux"]["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for v in volumes {
            mounts.push(json!({
                "destination": v.destination,
                "type": "bind",
                "source": v.source,
                "options": ["rbind", "rprivate"],
            }));
        }
    }
    spec["annotations"] = json!(annotations(image));
    if let Some((uid, gid)) = o.rootless {
        if (user.uid, user.gid) != (0, 0) {
            return Err(Error::RootlessUser(user.uid, user.gid));
        }
        make_rootless(&mut spec, uid, gid);
    }
    Ok(spec)
}

/// What `runc spec --rootless` (and `strata spec --rootless`) changes: a user namespace mapping
/// the caller to root, no network or cgroup namespace (nothing to set up without privilege), no
/// resources (no cgroup to put them in), /sys bound rather than mounted, /dev/pts without
/// gid=5 (not mapped). The image's supplementary groups are not mapped either: dropped.
fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    spec["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    spec["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("resources");
    }
    if let Some(user) = spec["process"]["user"].as_object_mut() {
        user.remove("additionalGids");
    }
    let mut namespaces: Vec<Value> = spec["linux"]["namespaces"]
        .as_array()
        .map(|n| n.iter().filter(|ns| ns["type"] != "network" && ns["type"] != "cgroup").cloned().collect())
        .unwrap_or_default();
    namespaces.push(json!({ "type": "user" }));
    spec["linux"]["namespaces"] = Value::Array(namespaces);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
            } else if m["destination"] == "/dev/pts"
                && let Some(opts) = m["options"].as_array_mut()
            {
                opts.retain(|o| o != "gid=5");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn rootless_maps_the_caller_to_root() {
        let image: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Cmd": ["sh"]}
        }))
        .unwrap();
        let o = Overrides { hostname: "h", rootless: Some((1000, 1001)), ..Default::default() };
        let spec = build(&image, &o, None, None, &[]).unwrap();
        assert_eq!(spec["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": 1000, "size": 1}]));
        assert_eq!(spec["linux"]["gidMappings"], json!([{"containerID": 0, "hostID": 1001, "size": 1}]));
        let ns: Vec<&str> =
            spec["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert!(ns.contains(&"user") && !ns.contains(&"network") && !ns.contains(&"cgroup"), "{ns:?}");
        assert!(spec["linux"].get("resources").is_none());
        assert!(spec.get("linux").and_then(|l| l.get("cgroupsPath")).is_none());
        let o = Overrides { hostname: "h", user: Some("5:5"), rootless: Some((1000, 1000)), ..Default::default() };
        assert!(matches!(build(&image, &o, None, None, &[]), Err(Error::RootlessUser(5, 5))));
    }

    #[test]
    fn entrypoint_then_cmd_or_args() {
        assert_eq!(process_args(&s(&["/ep"]), &s(&["a"]), &[]).unwrap(), s(&["/ep", "a"]));
        assert_eq!(process_args(&s(&["/ep"]), &s(&["a"]), &s(&["b", "c"])).unwrap(), s(&["/ep", "b", "c"]));
        assert_eq!(process_args(&[], &s(&["sh"]), &[]).unwrap(), s(&["sh"]));
        assert!(matches!(process_args(&[], &[], &[]), Err(Error::NoCommand)));
    }

    #[test]
    fn env_overrides_in_place_and_keeps_image_path() {
        let env = merge_env(&s(&["PATH=/x", "A=1"]), &s(&["A=2", "B=3"])).unwrap();
        assert_eq!(env, s(&["PATH=/x", "A=2", "B=3"]));
        let env = merge_env(&[], &[]).unwrap();
        assert_eq!(env, s(&[DEFAULT_PATH]));
        assert!(merge_env(&[], &s(&["=x"])).is_err());
        assert!(merge_env(&[], &s(&["novalue"])).is_err());
    }
}

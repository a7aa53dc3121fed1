//! `--change`: Dockerfile instructions applied to the image configuration, as `docker commit
//! --change` and `podman commit --change` take them: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL,
//! EXPOSE, VOLUME, STOPSIGNAL. Variables are not expanded.

use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("--change {0:?}: empty")]
    Empty(String),
    #[error(
        "--change {0:?}: {1} is not supported (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL are)"
    )]
    Unsupported(String, String),
    #[error("--change {0:?}: {1}")]
    Malformed(String, String),
}

/// One parsed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Label(Vec<(String, String)>),
    /// `port/proto` keys.
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
}

/// Split `s` into words: whitespace separates, quotes group (`"` with `\` escapes, `'` literal),
/// a `\` outside quotes escapes the next character.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n) => cur.push(n),
                            None => return Err("unterminated \"".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `["a", "b"]` (exec form) when `rest` is a JSON array of strings, else `/bin/sh -c rest`.
fn command(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
}

fn pairs(words: Vec<String>) -> Result<Vec<(String, String)>, String> {
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

fn port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{spec:?}: the protocol must be tcp, udp or sctp"));
    }
    let num = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{spec:?} is not a port"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if lo > hi {
        return Err(format!("{spec:?}: the range is backwards"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Parse one `--change` value.
pub fn parse(s: &str) -> Result<Change, Error> {
    let trimmed = s.trim();
    let (keyword, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
    let rest = rest.trim();
    if keyword.is_empty() {
        return Err(Error::Empty(s.to_string()));
    }
    let bad = |why: String| Error::Malformed(s.to_string(), why);
    let need = |what: &str| {
        if rest.is_empty() { Err(bad(format!("{} needs {what}", keyword.to_uppercase()))) } else { Ok(()) }
    };
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => {
            need("a command")?;
            Ok(Change::Cmd(command(rest)))
        }
        "ENTRYPOINT" => {
            need("a command")?;
            Ok(Change::Entrypoint(command(rest)))
        }
        "ENV" => {
            need("KEY=VALUE")?;
            let w = words(rest).map_err(bad)?;
            if w.first().is_some_and(|f| f.contains('=')) {
                Ok(Change::Env(pairs(w).map_err(bad)?))
            } else {
                // The old form: `ENV KEY the rest of the line`.
                let (k, v) = rest.split_once(char::is_whitespace).ok_or_else(|| bad("ENV KEY needs a value".into()))?;
                Ok(Change::Env(vec![(k.to_string(), v.trim().to_string())]))
            }
        }
        "LABEL" => {
            need("KEY=VALUE")?;
            Ok(Change::Label(pairs(words(rest).map_err(bad)?).map_err(bad)?))
        }
        "WORKDIR" => {
            need("a directory")?;
            Ok(Change::Workdir(rest.to_string()))
        }
        "USER" => {
            need("a user")?;
            let w = words(rest).map_err(bad)?;
            match w.as_slice() {
                [u] => Ok(Change::User(u.clone())),
                _ => Err(bad("USER takes one user[:group]".into())),
            }
        }
        "EXPOSE" => {
            need("a port")?;
            let mut out = Vec::new();
            for w in words(rest).map_err(bad)? {
                out.extend(port(&w).map_err(bad)?);
            }
            Ok(Change::Expose(out))
        }
        "VOLUME" => {
            need("a path")?;
            let paths = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest)
                    .map_err(|e| bad(format!("not a JSON array of strings: {e}")))?
            } else {
                words(rest).map_err(bad)?
            };
            if let Some(p) = paths.iter().find(|p| !p.starts_with('/')) {
                return Err(bad(format!("{p:?} is not an absolute path")));
            }
            Ok(Change::Volume(paths))
        }
        "STOPSIGNAL" => {
            need("a signal")?;
            let w = words(rest).map_err(bad)?;
            match w.as_slice() {
                [sig] => Ok(Change::StopSignal(sig.clone())),
                _ => Err(bad("STOPSIGNAL takes one signal".into())),
            }
        }
        other => Err(Error::Unsupported(s.to_string(), other.to_string())),
    }
}

/// The object `v` (empty when it is none) with `entries` added.
fn with_entries(v: &Value, entries: impl Iterator<Item = (String, Value)>) -> Value {
    let mut m: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
    m.extend(entries);
    Value::Object(m)
}

/// Apply `changes`, in order, to the image configuration's `config` object. As in a Dockerfile,
/// an ENTRYPOINT resets an inherited CMD unless a CMD is given too.
pub fn apply(image_config: &mut Value, changes: &[Change]) {
    if !image_config["config"].is_object() {
        image_config["config"] = json!({});
    }
    let c = &mut image_config["config"];
    let cmd_given = changes.iter().any(|ch| matches!(ch, Change::Cmd(_)));
    for ch in changes {
        match ch {
            Change::Cmd(v) => c["Cmd"] = json!(v),
            Change::Entrypoint(v) => {
                c["Entrypoint"] = json!(v);
                if !cmd_given && let Some(o) = c.as_object_mut() {
                    o.remove("Cmd");
                }
            }
            Change::Env(kvs) => {
                let mut env: Vec<String> = c["Env"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                for (k, v) in kvs {
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                c["Env"] = json!(env);
            }
            Change::Workdir(d) => {
                let cur = c["WorkingDir"].as_str().filter(|s| !s.is_empty()).unwrap_or("/").to_string();
                c["WorkingDir"] =
                    json!(if d.starts_with('/') { d.clone() } else { format!("{}/{d}", cur.trim_end_matches('/')) });
            }
            Change::User(u) => c["User"] = json!(u),
            Change::Label(kvs) => {
                c["Labels"] = with_entries(&c["Labels"], kvs.iter().map(|(k, v)| (k.clone(), json!(v))));
            }
            Change::Expose(ports) => {
                c["ExposedPorts"] = with_entries(&c["ExposedPorts"], ports.iter().map(|p| (p.clone(), json!({}))));
            }
            Change::Volume(paths) => {
                c["Volumes"] = with_entries(&c["Volumes"], paths.iter().map(|p| (p.clone(), json!({}))));
            }
            Change::StopSignal(s) => c["StopSignal"] = json!(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(base: Value, changes: &[&str]) -> Value {
        let parsed: Vec<Change> = changes.iter().map(|c| parse(c).unwrap()).collect();
        let mut v = json!({ "config": base });
        apply(&mut v, &parsed);
        v["config"].clone()
    }

    #[test]
    fn exec_and_shell_forms() {
        assert_eq!(parse(r#"CMD ["echo", "hi"]"#).unwrap(), Change::Cmd(vec!["echo".into(), "hi".into()]));
        assert_eq!(
            parse("cmd echo $HOME && ls").unwrap(),
            Change::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo $HOME && ls".into()])
        );
        // Not valid JSON: the shell form, as Docker does.
        assert_eq!(
            parse("CMD [not json").unwrap(),
            Change::Cmd(vec!["/bin/sh".into(), "-c".into(), "[not json".into()])
        );
    }

    #[test]
    fn env_forms_and_replacement_in_place() {
        let c = applied(
            json!({"Env": ["PATH=/bin", "A=1"]}),
            &[r#"ENV A=2 B="two words" C=a\ b"#, "ENV D the rest of it", "ENV PATH=/usr/bin:/bin"],
        );
        assert_eq!(c["Env"], json!(["PATH=/usr/bin:/bin", "A=2", "B=two words", "C=a b", "D=the rest of it"]));
    }

    #[test]
    fn entrypoint_resets_an_inherited_cmd() {
        let c = applied(json!({"Cmd": ["/bin/sh"]}), &[r#"ENTRYPOINT ["/app"]"#]);
        assert_eq!(c["Entrypoint"], json!(["/app"]));
        assert!(c.get("Cmd").is_none());
        let c = applied(json!({"Cmd": ["/bin/sh"]}), &[r#"ENTRYPOINT ["/app"]"#, r#"CMD ["--serve"]"#]);
        assert_eq!(c["Cmd"], json!(["--serve"]));
        let c = applied(json!({"Cmd": ["/bin/sh"]}), &[r#"CMD ["--serve"]"#, r#"ENTRYPOINT ["/app"]"#]);
        assert_eq!(c["Cmd"], json!(["--serve"]), "a CMD of the same commit stays");
    }

    #[test]
    fn workdir_user_labels_ports_volumes_signal() {
        let c = applied(
            json!({"WorkingDir": "/srv", "Labels": {"keep": "1"}}),
            &[
                "WORKDIR www",
                "USER 1000:1000",
                r#"LABEL a=b "c d"="e f""#,
                "EXPOSE 80 53/udp 8000-8001",
                "VOLUME /data /cache",
                r#"VOLUME ["/json"]"#,
                "STOPSIGNAL SIGQUIT",
            ],
        );
        assert_eq!(c["WorkingDir"], "/srv/www");
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["Labels"], json!({"keep": "1", "a": "b", "c d": "e f"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/cache": {}, "/json": {}}));
        assert_eq!(c["StopSignal"], "SIGQUIT");
    }

    #[test]
    fn bad_changes_say_what_is_wrong() {
        assert!(matches!(parse("RUN rm -rf /"), Err(Error::Unsupported(_, k)) if k == "RUN"));
        assert!(matches!(parse("   "), Err(Error::Empty(_))));
        assert!(matches!(parse("CMD"), Err(Error::Malformed(..))));
        assert!(matches!(parse("EXPOSE 99999"), Err(Error::Malformed(..))));
        assert!(matches!(parse("EXPOSE 80/icmp"), Err(Error::Malformed(..))));
        assert!(matches!(parse("VOLUME relative"), Err(Error::Malformed(..))));
        assert!(matches!(parse("LABEL novalue"), Err(Error::Malformed(..))));
        assert!(matches!(parse(r#"ENV A="unterminated"#), Err(Error::Malformed(..))));
        assert!(matches!(parse("USER a b"), Err(Error::Malformed(..))));
    }
}

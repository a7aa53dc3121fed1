//! Reading `config.json`: size-bounded, with errors that name the offending field.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use serde::de::DeserializeOwned;

/// A config larger than this is refused rather than parsed (no real config comes near it).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("parse {path}: {field}")]
    Parse {
        path: PathBuf,
        field: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A parsed config.json, the bytes it came from, and what was ignored in it.
#[derive(Debug)]
pub struct LoadedConfig {
    pub spec: Spec,
    pub bytes: Vec<u8>,
    /// Things the runtime-spec says to warn about rather than refuse (unknown capabilities).
    pub warnings: Vec<String>,
}

/// Load and parse a runtime spec (`config.json`).
pub fn load_config(path: &Path) -> Result<LoadedConfig, LoadError> {
    let bytes = read_bounded(path)?;
    let parse_err = |(field, source)| LoadError::Parse { path: path.to_owned(), field, source };
    match parse_json(&bytes) {
        Ok(spec) => Ok(LoadedConfig { spec, bytes, warnings: Vec::new() }),
        // config.md: capabilities that cannot be mapped to the kernel are a warning, not an
        // error; scheduler flags under the spec's names are the ones oci-spec misspells. Only
        // these rare cases pay for a second parse.
        Err((field, _))
            if field.starts_with("process.capabilities.") || field.starts_with("process.scheduler.flags") =>
        {
            let mut value: serde_json::Value = parse_json(&bytes).map_err(parse_err)?;
            let warnings = drop_unknown_capabilities(&mut value);
            if let Some(process) = value.get_mut("process") {
                scheduler_flags_as_oci_spec_names_them(process);
            }
            let spec = parse_json(&reserialized(&value)).map_err(parse_err)?;
            Ok(LoadedConfig { spec, bytes, warnings })
        }
        Err(e) => Err(parse_err(e)),
    }
}

fn drop_unknown_capabilities(config: &mut serde_json::Value) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(sets) = config.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) else {
        return warnings;
    };
    for (set, names) in sets.iter_mut() {
        let Some(list) = names.as_array_mut() else { continue };
        list.retain(|name| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
            if !known {
                warnings.push(format!("process.capabilities.{set}: unknown capability {name} ignored"));
            }
            known
        });
    }
    warnings
}

/// The runtime-spec names of `process.scheduler.flags` that the oci-spec crate (0.10, and its
/// main branch as of May 2026) spells otherwise, and its spelling.
const MISNAMED_SCHEDULER_FLAGS: [(&str, &str); 2] =
    [("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"), ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN")];

/// Rename the spec's scheduler flags in a `process` object to what oci-spec deserializes.
fn scheduler_flags_as_oci_spec_names_them(process: &mut serde_json::Value) {
    let Some(flags) = process.pointer_mut("/scheduler/flags").and_then(|f| f.as_array_mut()) else { return };
    for flag in flags {
        if let Some((_, crate_name)) = MISNAMED_SCHEDULER_FLAGS.iter().find(|(spec, _)| flag.as_str() == Some(spec)) {
            *flag = serde_json::Value::from(*crate_name);
        }
    }
}

/// Load a process.json (`exec --process`), with a field path in parse errors. As runc and crun
/// read it into the spec's Process, a missing `user` is uid 0, gid 0; scheduler flags take the
/// spec's names.
pub fn load_process(path: &Path) -> Result<Process, LoadError> {
    let bytes = read_bounded(path)?;
    let parse_err = |(field, source)| LoadError::Parse { path: path.to_owned(), field, source };
    let mut value: serde_json::Value = parse_json(&bytes).map_err(parse_err)?;
    if let Some(process) = value.as_object_mut() {
        process.entry("user").or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    scheduler_flags_as_oci_spec_names_them(&mut value);
    parse_json(&reserialized(&value)).map_err(parse_err)
}

/// An adjusted document as bytes again: the spec's types are deserialized from bytes only (each
/// further source would instantiate all their code once more), and errors then have a position.
fn reserialized(value: &serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let file = std::fs::File::open(path).map_err(|source| LoadError::Open { path: path.to_owned(), source })?;
    let mut bytes = Vec::with_capacity(16 * 1024);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(LoadError::TooLarge { path: path.to_owned(), max: MAX_CONFIG_BYTES });
    }
    Ok(bytes)
}

/// Parse JSON, returning the path of the field that failed (`process.user.uid`).
///
/// The document must be a JSON object: serde would also take a struct from an array of its
/// fields in order (`[]` would be an all-default config, `["1.0.2", ...]` a positional one).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, (String, serde_json::Error)> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(("document".to_owned(), serde::de::Error::custom("expected a JSON object")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let field = match super::json_path::path_at(bytes, e.line(), e.column()) {
            p if p.is_empty() => "document".to_owned(),
            p => p,
        };
        (field, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field() {
        let doc = br#"{"ociVersion":"1.0.2","process":{"user":{"uid":"zero","gid":0},"cwd":"/"},"root":{"path":"r"}}"#;
        let (field, err) = parse_json::<Spec>(doc).unwrap_err();
        assert_eq!(field, "process.user.uid");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn unknown_capabilities_are_dropped_with_a_warning() {
        let doc = br#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"],
            "capabilities":{"bounding":["CAP_KILL","CAP_TEST"],"effective":["CAP_KILL"]}},"root":{"path":"r"}}"#;
        let path = std::env::temp_dir().join(format!("strata-load-{}", std::process::id()));
        std::fs::write(&path, doc).unwrap();
        let loaded = load_config(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let caps = loaded.spec.process().as_ref().unwrap().capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("CAP_TEST"), "{:?}", loaded.warnings);
    }

    fn write_temp(tag: &str, doc: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("strata-load-{tag}-{}", std::process::id()));
        std::fs::write(&path, doc).unwrap();
        path
    }

    #[test]
    fn scheduler_flags_take_the_spec_names() {
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        let doc = br#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"],
            "scheduler":{"policy":"SCHED_BATCH","flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_RECLAIM","SCHED_FLAG_DL_OVERRUN"]}},
            "root":{"path":"r"}}"#;
        let path = write_temp("sched", doc);
        let loaded = load_config(&path);
        std::fs::remove_file(&path).unwrap();
        let spec = loaded.unwrap().spec;
        let scheduler = spec.process().as_ref().unwrap().scheduler().clone().unwrap();
        assert_eq!(
            scheduler.flags().clone().unwrap(),
            [F::SchedResetOnFork, F::SchedFlagReclaim, F::SchedFlagDLOverrun]
        );

        let path = write_temp(
            "sched-process",
            br#"{"cwd":"/","args":["sh"],"scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_DL_OVERRUN"]}}"#,
        );
        let process = load_process(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(process.unwrap().scheduler().clone().unwrap().flags().clone().unwrap(), [F::SchedFlagDLOverrun]);

        let path = write_temp(
            "sched-bad",
            br#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/",
            "scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_NO_SUCH"]}},"root":{"path":"r"}}"#,
        );
        let err = load_config(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(&err, LoadError::Parse { field, .. } if field == "process.scheduler.flags[0]"), "{err:?}");
    }

    #[test]
    fn process_json_without_user_is_root() {
        let path = write_temp("process-user", br#"{"cwd":"/","args":["id"]}"#);
        let process = load_process(&path);
        std::fs::remove_file(&path).unwrap();
        let process = process.unwrap();
        assert_eq!((process.user().uid(), process.user().gid()), (0, 0));

        let path = write_temp("process-user-given", br#"{"cwd":"/","args":["id"],"user":{"uid":7,"gid":8}}"#);
        let process = load_process(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(process.unwrap().user().uid(), 7);
    }

    #[test]
    fn only_an_object_is_a_document() {
        for doc in [&b"[]"[..], b" [\"1.0.2\"]", b"\"1.0.2\"", b"42"] {
            let (field, err) = parse_json::<Spec>(doc).unwrap_err();
            assert_eq!(field, "document");
            assert!(err.to_string().contains("expected a JSON object"), "{err}");
        }
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        assert!(parse_json::<Spec>(br#"{"ociVersion":"1.0.2"} x"#).is_err());
    }
}

//! `--log`, `--log-format`, `--debug`: where diagnostics go and how they look.
//!
//! Like runc: with `--log FILE` every line goes to FILE (created even when nothing is logged, since
//! containerd reads it after every call) and an error is also printed bare on stderr; without it,
//! lines go to stderr. `json` lines are `{"level","msg","time"}` with an RFC 3339 `time`: podman
//! parses the whole file as one object, containerd takes the last error line.

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::timefmt::rfc3339_seconds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug)]
struct Sink {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
#[error("open log file {path}")]
pub struct OpenLog {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Set up logging once, at start-up.
pub fn init(path: Option<&str>, format: Format, debug: bool) -> Result<(), OpenLog> {
    let file = match path {
        Some(p) if !p.is_empty() => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| OpenLog { path: p.to_owned(), source })?,
        ),
        _ => None,
    };
    // Only main calls init; a second call would keep the first sink, which is what we want.
    let _already_set = SINK.set(Sink { file, format, debug });
    Ok(())
}

pub fn debug_enabled() -> bool {
    SINK.get().is_some_and(|s| s.debug)
}

pub fn debug(msg: &str) {
    if debug_enabled() {
        write_line(Level::Debug, msg);
    }
}

pub fn warn(msg: &str) {
    write_line(Level::Warning, msg);
}

/// Report the final error of the command: to the log, and bare on stderr when the log is a file.
pub fn error(msg: &str) {
    write_line(Level::Error, msg);
    if SINK.get().is_some_and(|s| s.file.is_some()) {
        eprintln!("{msg}");
    }
}

fn write_line(level: Level, msg: &str) {
    let format = SINK.get().map_or(Format::Text, |s| s.format);
    let line = render(level, msg, format, SystemTime::now());
    match SINK.get().and_then(|s| s.file.as_ref()) {
        Some(mut file) => best_effort_write(&mut file, &line),
        None => best_effort_write(&mut std::io::stderr(), &line),
    }
}

/// Logging must never turn a failure into a different one: a full disk or a closed stderr
/// loses the line, nothing more.
fn best_effort_write(w: &mut impl Write, line: &str) {
    if w.write_all(line.as_bytes()).is_err() {
        // Nowhere left to report this.
    }
}

fn render(level: Level, msg: &str, format: Format, now: SystemTime) -> String {
    let time = rfc3339_seconds(now);
    match format {
        Format::Json => {
            let obj = serde_json::json!({ "level": level.as_str(), "msg": msg, "time": time });
            format!("{obj}\n")
        }
        Format::Text => format!("time=\"{time}\" level={} msg={}\n", level.as_str(), quote_logfmt(msg)),
    }
}

fn quote_logfmt(msg: &str) -> String {
    let needs = msg.is_empty() || msg.bytes().any(|b| b <= b' ' || b == b'"' || b == b'=' || b >= 0x7f);
    if needs { serde_json::Value::from(msg).to_string() } else { msg.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn json_line_is_one_object_with_rfc3339_time() {
        let line = render(Level::Error, "container \"x\" does not exist", Format::Json, UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn text_line_is_logfmt() {
        let t = UNIX_EPOCH + Duration::from_secs(60);
        assert_eq!(
            render(Level::Warning, "plain", Format::Text, t),
            "time=\"1970-01-01T00:01:00Z\" level=warning msg=plain\n"
        );
        assert_eq!(
            render(Level::Error, "a b", Format::Text, t),
            "time=\"1970-01-01T00:01:00Z\" level=error msg=\"a b\"\n"
        );
    }
}

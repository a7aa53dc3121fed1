//! `hook LABEL FILE`: what a hook (or the container process) sees when the runtime runs it, appended to
//! FILE as one JSON line. The order of lines in FILE is the order in which the hooks ran.

use std::fs::OpenOptions;
use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::procfs;

pub fn record(label: &str, file: &str) -> Result<(), String> {
    let mut stdin = String::new();
    // A closed or absent stdin reads as empty; the record says so with `state: null`.
    let stdin_ok = std::io::stdin().read_to_string(&mut stdin).is_ok();
    let state: Value = serde_json::from_str(&stdin).unwrap_or(Value::Null);
    // What the process named in the state is running at this moment: the runtime's init before start,
    // the user program after it.
    let state_pid = state.get("pid").and_then(Value::as_i64).filter(|p| *p > 0);
    let (pid_cmdline, pid_ns) = match state_pid {
        Some(pid) => (
            std::fs::read(format!("/proc/{pid}/cmdline")).ok().map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
            }),
            procfs::namespaces(&pid.to_string()),
        ),
        None => (None, Value::Null),
    };
    let line = json!({
        "label": label,
        "argv": std::env::args().collect::<Vec<_>>(),
        "env": crate::process::env(),
        "cwd": crate::process::cwd(),
        "ns": procfs::namespaces("self"),
        "pid": std::process::id(),
        "stdin_read": stdin_ok,
        "stdin": stdin,
        "state": state,
        "state_pid_cmdline": pid_cmdline,
        "state_pid_ns": pid_ns,
    });
    let mut f = OpenOptions::new().create(true).append(true).open(file).map_err(|e| format!("open {file}: {e}"))?;
    f.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("write {file}: {e}"))
}

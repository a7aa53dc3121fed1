//! What `state` and `list` print: runc's JSON state and table.

use std::path::Path;

use serde::Serialize;

use super::id::ContainerId;
use super::state::{ContainerDir, State};
use super::status::Status;
use crate::error::Error;

/// The runtime-spec version of the state we print.
pub const STATE_OCI_VERSION: &str = "1.2.1";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateJson {
    pub oci_version: &'static str,
    pub id: String,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
    pub owner: String,
}

impl StateJson {
    pub fn new(state: State, status: Status) -> Self {
        let pid = if status == Status::Stopped { 0 } else { state.pid };
        Self {
            oci_version: STATE_OCI_VERSION,
            id: state.id,
            pid,
            status: status.as_str(),
            bundle: state.bundle.display().to_string(),
            rootfs: state.rootfs.display().to_string(),
            created: state.created,
            annotations: state.annotations,
            owner: state.owner,
        }
    }
}

pub fn state_of(root: &Path, id: &ContainerId) -> Result<StateJson, Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir, || super::frozen(&state));
    Ok(StateJson::new(state, status))
}

/// Every container under `root`, sorted by id; unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<StateJson>, Error> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(super::state::io_error(crate::ErrorKind::Other, format!("read {}", root.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(Ok(id)) = name.to_str().map(ContainerId::parse) else { continue };
        if let Ok(s) = state_of(root, &id) {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// runc's `list` table (tabwriter: min width 12, padding 3).
pub fn table(states: &[StateJson]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [s.id.clone(), s.pid.to_string(), s.status.to_owned(), s.bundle.clone(), s.created.clone(), s.owner.clone()]
        })
        .collect();
    let mut widths = header.map(|h| h.len().max(12));
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

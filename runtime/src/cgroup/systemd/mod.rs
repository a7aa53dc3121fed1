//! The systemd cgroup driver: the container's cgroup is a transient unit that systemd owns
//! (a scope, or a slice when cgroupsPath names one), created, changed and stopped over D-Bus.
//! The cgroupfs code still writes the cgroup files, places processes, freezes and reads them:
//! systemd only decides where the cgroup is and keeps what it was told in the unit.
//!
//! The D-Bus client is our own (`bus`, `wire`): one blocking unix socket, no thread, no async
//! runtime and no C library, for five calls (see ARCHITECTURE.md, "The systemd cgroup driver").

mod bus;
pub(crate) mod properties;
pub(crate) mod unit;
mod wire;

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use bus::BusError;
pub(crate) use bus::Connection;
pub use unit::InvalidUnitPath;
use wire::Value;

use super::CgroupError;

/// What the state remembers of the unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SystemdUnit {
    /// "strata-ctr1.scope".
    pub unit: String,
    /// The parent slice ("system.slice").
    pub slice: String,
    /// Owned by the caller's user manager (a rootless container), not the system manager.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
}

impl SystemdUnit {
    fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
}

/// The system manager, or the caller's user manager when `user`.
pub(crate) fn connect(user: bool) -> Result<Connection, CgroupError> {
    let addresses = if user { bus::user_addresses() } else { bus::system_addresses() };
    Connection::open(&addresses).map_err(CgroupError::Bus)
}

/// The cgroup of the manager itself, below which its units are ("" for the system manager,
/// "user.slice/user-1000.slice/user@1000.service" for a user manager), without a leading '/'.
pub(crate) fn manager_cgroup(conn: &mut Connection) -> Result<String, CgroupError> {
    let cgroup = conn.manager_string_property("ControlGroup").map_err(CgroupError::Bus)?;
    Ok(cgroup.trim_matches('/').to_owned())
}

/// Start the container's unit and wait until systemd has made it: a scope holding `pid`
/// (`Delegate=yes`, so the cgroups below it are the runtime's), or a slice.
pub(crate) fn start(
    conn: &mut Connection,
    u: &SystemdUnit,
    pid: u32,
    description: &str,
    resources: Vec<properties::Property>,
) -> Result<(), CgroupError> {
    let err = |source| CgroupError::UnitStart { unit: u.unit.clone(), source };
    let mut props = vec![
        ("Description".to_owned(), Value::str(description)),
        ("DefaultDependencies".to_owned(), Value::Bool(false)),
        // Gone from systemd's memory as soon as it stops, also when it failed.
        ("CollectMode".to_owned(), Value::str("inactive-or-failed")),
    ];
    if u.is_slice() {
        props.push(("Wants".to_owned(), Value::Array("s".into(), vec![Value::str(&u.slice)])));
    } else {
        props.push(("Slice".to_owned(), Value::str(&u.slice)));
        props.push(("Delegate".to_owned(), Value::Bool(true)));
        props.push(("PIDs".to_owned(), Value::Array("u".into(), vec![Value::U32(pid)])));
    }
    props.extend(resources);
    let args = [
        Value::str(&u.unit),
        Value::str("replace"),
        property_array(props),
        Value::Array("(sa(sv))".into(), Vec::new()),
    ];
    let reply = conn.call_manager("StartTransientUnit", &args).map_err(err)?;
    let job = job_path(&reply, "StartTransientUnit").map_err(err)?;
    match wait_job(conn, &job, &u.unit).map_err(err)?.as_str() {
        "done" => Ok(()),
        result => Err(CgroupError::UnitJob {
            unit: u.unit.clone(),
            op: "start",
            result: result.to_owned(),
            // A user manager may only move a process out of a cgroup it owns.
            hint: if u.user && !u.is_slice() {
                " (a user manager can only take the container's process from a cgroup of its own: run the \
                 runtime in one, as podman runs conmon, e.g. under `systemd-run --user --scope`)"
            } else {
                ""
            },
        }),
    }
}

/// `update`: the properties, for the running unit only (not written to /etc).
pub(crate) fn set_properties(
    conn: &mut Connection,
    u: &SystemdUnit,
    props: Vec<properties::Property>,
) -> Result<(), CgroupError> {
    if props.is_empty() {
        return Ok(());
    }
    let args = [Value::str(&u.unit), Value::Bool(true), property_array(props)];
    conn.call_manager("SetUnitProperties", &args)
        .map(drop)
        .map_err(|source| CgroupError::UnitSetProperties { unit: u.unit.clone(), source })
}

/// Stop the unit and wait for it; a unit systemd no longer knows is already stopped.
pub(crate) fn stop(conn: &mut Connection, u: &SystemdUnit) -> Result<(), CgroupError> {
    let err = |source| CgroupError::UnitStop { unit: u.unit.clone(), source };
    let reply = match conn.call_manager("StopUnit", &[Value::str(&u.unit), Value::str("replace")]) {
        Ok(r) => r,
        Err(e) if e.remote_name() == Some("org.freedesktop.systemd1.NoSuchUnit") => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    let job = job_path(&reply, "StopUnit").map_err(err)?;
    match wait_job(conn, &job, &u.unit).map_err(err)?.as_str() {
        "done" => Ok(()),
        result => Err(CgroupError::UnitJob { unit: u.unit.clone(), op: "stop", result: result.to_owned(), hint: "" }),
    }
}

fn property_array(props: Vec<properties::Property>) -> Value {
    let items = props.into_iter().map(|(name, v)| Value::Struct(vec![Value::Str(name), Value::variant(v)])).collect();
    Value::Array("(sv)".into(), items)
}

fn job_path(reply: &wire::Message, member: &str) -> Result<String, BusError> {
    match reply.args()?.first() {
        Some(Value::Path(p)) => Ok(p.clone()),
        other => Err(BusError::UnexpectedReply { member: member.into(), found: format!("{other:?}") }),
    }
}

/// The result of job `job` ("done", "failed", "timeout", ...), from its JobRemoved signal,
/// waiting at most [`bus::CALL_TIMEOUT`].
fn wait_job(conn: &mut Connection, job: &str, unit: &str) -> Result<String, BusError> {
    let deadline = Instant::now() + bus::CALL_TIMEOUT;
    let what = format!("the job of {unit} ({job})");
    let m = conn.wait_signal(deadline, &what, |m| {
        m.member == "JobRemoved" && m.args().is_ok_and(|a| matches!(a.get(1), Some(Value::Path(p)) if p == job))
    })?;
    // JobRemoved(u id, o job, s unit, s result)
    match m.args()?.get(3) {
        Some(Value::Str(result)) => Ok(result.clone()),
        other => Err(BusError::UnexpectedReply { member: "JobRemoved".into(), found: format!("{other:?}") }),
    }
}

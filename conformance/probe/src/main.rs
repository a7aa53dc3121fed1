//! `strata-probe`: runs inside a conformance-test container (or as a hook on the host) and prints what it
//! sees as one line of JSON on stdout. It is built static so that it runs in a busybox-only rootfs.
//!
//! ```text
//! strata-probe [all]             every report below that takes no argument, as one object
//! strata-probe ids|caps|rlimits|mounts|ns|uts|env|cwd|umask|nnp|seccomp|oom|fds|cgroup|tty|pid|sched|ioprio
//! strata-probe devices [PATH...] lstat of device-like paths (default: the OCI default devices and /dev links)
//! strata-probe sysctl NAME...    values of /proc/sys/NAME (dots become slashes)
//! strata-probe access OP:PATH... OP = read | write | create | mkdir | exec | list
//! strata-probe xattrs PATH...    extended attributes of each path (not following symlinks)
//! strata-probe loopback          lo's flags and a TCP round trip over 127.0.0.1
//! strata-probe hook LABEL FILE   append {label, argv, env, ns, stdin state, cmdline of state.pid, ...} to FILE
//! strata-probe wait-signal       block every signal, print {"ready":true}, then print the first signal received
//! strata-probe grab-exe SECONDS  the CVE-2019-5736 attack: open other processes' /proc/PID/exe, reopen for writing
//! ```
//! Exit status 0 on success, 2 on a usage error, 3 when the report itself cannot be produced.

mod exe;
mod files;
mod hook;
mod net;
mod process;
mod procfs;
mod sys;

use std::io::Write;

use serde_json::{Map, Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("all");
    let rest = args.get(1..).unwrap_or_default();
    let out = match run(cmd, rest) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("strata-probe: {msg}");
            std::process::exit(if msg.starts_with("usage") { 2 } else { 3 });
        }
    };
    let mut stdout = std::io::stdout();
    if let Err(e) = writeln!(stdout, "{out}").and_then(|()| stdout.flush()) {
        eprintln!("strata-probe: write report: {e}");
        std::process::exit(3);
    }
}

fn run(cmd: &str, rest: &[String]) -> Result<Value, String> {
    let report = |name: &str| -> Option<Value> {
        Some(match name {
            "ids" => process::ids(),
            "caps" => procfs::capabilities(),
            "rlimits" => process::rlimits(),
            "mounts" => procfs::mounts(),
            "ns" => procfs::namespaces("self"),
            "uts" => process::uts(),
            "env" => process::env(),
            "cwd" => process::cwd(),
            "umask" => process::umask(),
            "nnp" => process::no_new_privs(),
            "seccomp" => procfs::status_field("Seccomp"),
            "oom" => procfs::oom_score_adj(),
            "fds" => files::fds(),
            "cgroup" => procfs::cgroup(),
            "tty" => process::tty(),
            "pid" => process::pid(),
            "sched" => procfs::sched(),
            "ioprio" => process::ioprio(),
            "devices" => files::devices(&[]),
            _ => return None,
        })
    };
    const ALL: [&str; 19] = [
        "ids", "caps", "rlimits", "mounts", "ns", "uts", "env", "cwd", "umask", "nnp", "seccomp", "oom", "fds",
        "cgroup", "tty", "pid", "sched", "ioprio", "devices",
    ];
    match cmd {
        "all" => {
            let mut m = Map::new();
            for name in ALL {
                if let Some(v) = report(name) {
                    m.insert(name.to_string(), v);
                }
            }
            Ok(Value::Object(m))
        }
        "devices" => Ok(files::devices(rest)),
        "sysctl" => Ok(files::sysctl(rest)),
        "access" => files::access(rest),
        "xattrs" => Ok(files::xattrs(rest)),
        "loopback" => Ok(net::loopback()),
        "hook" => match rest {
            [label, file] => hook::record(label, file).map(|()| json!({"recorded": label})),
            _ => Err("usage: strata-probe hook LABEL FILE".into()),
        },
        "wait-signal" => process::wait_signal(),
        "grab-exe" => exe::grab_exe(rest),
        other => report(other).ok_or_else(|| format!("usage: unknown report {other:?}")),
    }
}

/// Turns an I/O error into the `{"errno": n, "error": "..."}` shape every report uses for failures.
pub(crate) fn io_err(e: &std::io::Error) -> Value {
    json!({"errno": e.raw_os_error(), "error": e.to_string()})
}

/// Same for nix errors.
pub(crate) fn nix_err(e: nix::Error) -> Value {
    json!({"errno": e as i32, "error": e.desc()})
}

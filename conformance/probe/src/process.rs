//! Reports about the probe process itself, taken from syscalls: ids, limits, uts, env, tty, signals.

use std::io::Write;
use std::os::fd::AsFd;

use nix::sys::resource::{Resource, getrlimit};
use nix::sys::signal::SigSet;
use nix::sys::stat::Mode;
use nix::unistd;
use serde_json::{Map, Value, json};

use crate::{nix_err, sys};

pub fn ids() -> Value {
    let groups = unistd::getgroups().map_or_else(nix_err, |g| json!(g.iter().map(|g| g.as_raw()).collect::<Vec<_>>()));
    json!({
        "uid": unistd::getuid().as_raw(),
        "euid": unistd::geteuid().as_raw(),
        "gid": unistd::getgid().as_raw(),
        "egid": unistd::getegid().as_raw(),
        "groups": groups,
        "uid_map": std::fs::read_to_string("/proc/self/uid_map").ok(),
        "gid_map": std::fs::read_to_string("/proc/self/gid_map").ok(),
    })
}

/// Every rlimit as `{"RLIMIT_X": {"soft": n, "hard": n}}`; RLIM_INFINITY is reported as `"unlimited"`.
pub fn rlimits() -> Value {
    let all = [
        ("RLIMIT_AS", Resource::RLIMIT_AS),
        ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", Resource::RLIMIT_STACK),
    ];
    let show = |v: u64| if v == libc::RLIM_INFINITY { json!("unlimited") } else { json!(v) };
    let mut m = Map::new();
    for (name, r) in all {
        let v = getrlimit(r).map_or_else(nix_err, |(soft, hard)| json!({"soft": show(soft), "hard": show(hard)}));
        m.insert(name.to_string(), v);
    }
    Value::Object(m)
}

pub fn uts() -> Value {
    match nix::sys::utsname::uname() {
        Ok(u) => json!({
            "hostname": u.nodename().to_string_lossy(),
            "domainname": u.domainname().to_string_lossy(),
            "machine": u.machine().to_string_lossy(),
            "personality": nix::sys::personality::get().map(|p| p.bits()).ok(),
        }),
        Err(e) => nix_err(e),
    }
}

/// The environment in `environ` order, as `KEY=VALUE` strings.
pub fn env() -> Value {
    json!(
        std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>()
    )
}

pub fn cwd() -> Value {
    match std::env::current_dir() {
        Ok(p) => json!(p),
        Err(e) => crate::io_err(&e),
    }
}

/// The umask, read by setting and restoring it (the probe is single-threaded).
pub fn umask() -> Value {
    let old = nix::sys::stat::umask(Mode::empty());
    nix::sys::stat::umask(old);
    json!(old.bits())
}

pub fn no_new_privs() -> Value {
    nix::sys::prctl::get_no_new_privs().map_or_else(nix_err, Value::from)
}

pub fn tty() -> Value {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let isatty = |f: std::os::fd::BorrowedFd<'_>| unistd::isatty(f).unwrap_or(false);
    json!({
        "stdin": isatty(fd),
        "stdout": isatty(std::io::stdout().as_fd()),
        "stderr": isatty(std::io::stderr().as_fd()),
        "ttyname": unistd::ttyname(fd).ok(),
        "winsize": sys::window_size(fd).ok().map(|(rows, cols)| json!({"rows": rows, "cols": cols})),
        "ctty_pgrp": unistd::tcgetpgrp(fd).ok().map(|p| p.as_raw()),
    })
}

pub fn pid() -> Value {
    json!({
        "pid": unistd::getpid().as_raw(),
        "ppid": unistd::getppid().as_raw(),
        "pgid": unistd::getpgrp().as_raw(),
        "sid": unistd::getsid(None).map(|p| p.as_raw()).ok(),
    })
}

/// ioprio_get(IOPRIO_WHO_PROCESS, 0) decoded into class and level.
pub fn ioprio() -> Value {
    match sys::ioprio_get_self() {
        Ok(v) => {
            let class = match v >> 13 {
                0 => "IOPRIO_CLASS_NONE",
                1 => "IOPRIO_CLASS_RT",
                2 => "IOPRIO_CLASS_BE",
                3 => "IOPRIO_CLASS_IDLE",
                _ => "unknown",
            };
            json!({"class": class, "priority": v & 0x1fff})
        }
        Err(e) => crate::io_err(&e),
    }
}

/// Blocks every signal (blocked signals reach even a pid-namespace init), announces readiness on stdout,
/// then reports the first signal that arrives. SIGKILL and SIGSTOP cannot be blocked and act normally.
pub fn wait_signal() -> Result<Value, String> {
    let all = SigSet::all();
    all.thread_block().map_err(|e| format!("block signals: {e}"))?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", json!({"ready": true})).map_err(|e| format!("write: {e}"))?;
    out.flush().map_err(|e| format!("flush: {e}"))?;
    let sig = all.wait().map_err(|e| format!("sigwait: {e}"))?;
    Ok(json!({"signal": sig as i32, "name": sig.as_str()}))
}

//! Reports about files: open descriptors, device nodes, sysctls and access checks.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use nix::unistd::{AccessFlags, access as access_check};
use serde_json::{Map, Value, json};

use crate::{io_err, nix_err};

/// Open descriptors with their targets, leaving out the descriptor used to list /proc/self/fd itself.
pub fn fds() -> Value {
    let dir = match fs::read_dir("/proc/self/fd") {
        Ok(d) => d,
        Err(e) => return io_err(&e),
    };
    let mut m = Map::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = fs::read_link(entry.path()).map(|t| t.to_string_lossy().into_owned());
        match target {
            // The directory stream's own descriptor.
            Ok(t) if t.starts_with("/proc/") && t.ends_with("/fd") => {}
            Ok(t) => {
                m.insert(name, json!(t));
            }
            // A descriptor closed between listing and readlink is the listing's own.
            Err(_) => {}
        }
    }
    Value::Object(m)
}

const DEFAULT_DEVICES: [&str; 15] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/console",
    "/dev/ptmx",
    "/dev/pts/ptmx",
    "/dev/fd",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/shm",
    "/dev/mqueue",
];

/// `lstat` of each path: kind, permission bits, owner, device numbers, symlink target.
pub fn devices(paths: &[String]) -> Value {
    let list: Vec<String> =
        if paths.is_empty() { DEFAULT_DEVICES.iter().map(|s| (*s).to_string()).collect() } else { paths.to_vec() };
    let mut m = Map::new();
    for p in list {
        let v = match fs::symlink_metadata(&p) {
            Ok(md) => {
                let ft = md.file_type();
                let kind = if ft.is_char_device() {
                    "c"
                } else if ft.is_block_device() {
                    "b"
                } else if ft.is_fifo() {
                    "p"
                } else if ft.is_symlink() {
                    "symlink"
                } else if ft.is_dir() {
                    "dir"
                } else if ft.is_socket() {
                    "socket"
                } else {
                    "file"
                };
                let rdev = md.rdev();
                json!({
                    "exists": true,
                    "type": kind,
                    "mode": md.mode() & 0o7777,
                    "uid": md.uid(),
                    "gid": md.gid(),
                    "major": (rdev >> 8) & 0xfff | ((rdev >> 32) & !0xfff),
                    "minor": (rdev & 0xff) | ((rdev >> 12) & !0xff),
                    "target": fs::read_link(&p).ok(),
                })
            }
            Err(e) => json!({"exists": false, "errno": e.raw_os_error()}),
        };
        m.insert(p, v);
    }
    Value::Object(m)
}

/// Values of `/proc/sys/<name with dots as slashes>`, trimmed.
pub fn sysctl(names: &[String]) -> Value {
    let mut m = Map::new();
    for n in names {
        let path = format!("/proc/sys/{}", n.replace('.', "/"));
        let v = fs::read_to_string(&path).map_or_else(|e| io_err(&e), |s| json!(s.trim()));
        m.insert(n.clone(), v);
    }
    Value::Object(m)
}

/// Runs `OP:PATH` checks and reports `{"OP:PATH": {"ok": bool, "errno": n, "error": s}}`.
/// * read: open read-only and read up to 64 bytes
/// * write: open write-only (no truncation, nothing written)
/// * create: create and remove a new file `PATH/.strata-probe-<pid>`
/// * mkdir: create and remove the directory PATH
/// * exec: `access(PATH, X_OK)` (fails with EACCES on a noexec mount)
/// * list: read the directory PATH (the result holds the entry names)
pub fn access(checks: &[String]) -> Result<Value, String> {
    let mut m = Map::new();
    for c in checks {
        let (op, path) = c.split_once(':').ok_or_else(|| format!("usage: access OP:PATH, got {c:?}"))?;
        let r: Result<Value, Value> = match op {
            "read" => fs::File::open(path)
                .and_then(|mut f| {
                    let mut buf = [0u8; 64];
                    f.read(&mut buf)
                })
                .map(|n| json!(n))
                .map_err(|e| io_err(&e)),
            "write" => OpenOptions::new().write(true).open(path).map(|_| Value::Null).map_err(|e| io_err(&e)),
            "create" => {
                let f = format!("{path}/.strata-probe-{}", std::process::id());
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&f)
                    .and_then(|_| fs::remove_file(&f))
                    .map(|()| Value::Null)
                    .map_err(|e| io_err(&e))
            }
            "mkdir" => {
                fs::create_dir(path).and_then(|()| fs::remove_dir(path)).map(|()| Value::Null).map_err(|e| io_err(&e))
            }
            "exec" => access_check(path, AccessFlags::X_OK).map(|()| Value::Null).map_err(nix_err),
            "list" => fs::read_dir(path)
                .map(|d| {
                    let mut names: Vec<String> =
                        d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                    names.sort();
                    json!(names)
                })
                .map_err(|e| io_err(&e)),
            other => return Err(format!("usage: unknown access op {other:?}")),
        };
        let v = match r {
            Ok(result) => json!({"ok": true, "result": result}),
            Err(err) => {
                let mut o = json!({"ok": false});
                if let (Some(o), Some(e)) = (o.as_object_mut(), err.as_object()) {
                    o.extend(e.clone());
                }
                o
            }
        };
        m.insert(c.clone(), v);
    }
    Ok(Value::Object(m))
}

/// Extended attributes of each path (lstat semantics): `{"PATH": {"NAME": "VALUE"}}`, or the error.
pub fn xattrs(paths: &[String]) -> Value {
    let mut m = Map::new();
    for p in paths {
        let v = match crate::sys::xattrs(p) {
            Ok(list) => Value::Object(
                list.into_iter().map(|(k, v)| (k, json!(String::from_utf8_lossy(&v).into_owned()))).collect(),
            ),
            Err(e) => io_err(&e),
        };
        m.insert(p.clone(), v);
    }
    Value::Object(m)
}

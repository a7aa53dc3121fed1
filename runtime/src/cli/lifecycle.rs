//! create, start, run, kill, delete.

use std::path::Path;

use super::{CreateArgs, DeleteArgs, ExecArgs, KillArgs, RunArgs, parse_id};
use crate::container::create::{CreateOptions, create as create_container};
use crate::container::exec::ExecOptions;
use crate::container::{delete as delete_mod, exec as exec_mod, kill as kill_mod, run as run_mod, start as start_mod};
use crate::error::Error;
use crate::error::ErrorKind;

fn options(
    root: &Path,
    a: &CreateArgs,
    foreground: bool,
    rootless: bool,
    systemd_cgroup: bool,
) -> Result<CreateOptions, Error> {
    let id = parse_id(&a.id)?;
    Ok(CreateOptions {
        root: root.to_owned(),
        id,
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        foreground,
        rootless,
        systemd_cgroup,
    })
}

pub fn create(root: &Path, a: &CreateArgs, rootless: bool, systemd_cgroup: bool) -> Result<(), Error> {
    create_container(&options(root, a, false, rootless, systemd_cgroup)?).map(drop)
}

pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    start_mod::start(root, &parse_id(id)?)
}

pub fn run(root: &Path, a: &RunArgs, rootless: bool, systemd_cgroup: bool) -> Result<i32, Error> {
    run_mod::run(&options(root, &a.create, !a.detach, rootless, systemd_cgroup)?, a.detach, a.keep)
}

pub fn kill(root: &Path, a: &KillArgs) -> Result<(), Error> {
    let signal = kill_mod::parse_signal(&a.signal)?;
    kill_mod::kill(root, &parse_id(&a.id)?, signal, a.all)
}

pub fn delete(root: &Path, a: &DeleteArgs) -> Result<(), Error> {
    delete_mod::delete(root, &parse_id(&a.id)?, a.force)
}

pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32, Error> {
    if !a.cgroup.is_empty() {
        return Err(Error::msg(ErrorKind::Unsupported, "exec --cgroup is not supported yet"));
    }
    let user = match &a.user {
        None => None,
        Some(u) => Some(parse_user(u)?),
    };
    let opts = ExecOptions {
        process_file: a.process.clone(),
        args: a.command.clone(),
        tty: a.tty,
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user,
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
    };
    exec_mod::exec(root, &parse_id(&a.id)?, &opts)
}

/// `--user uid[:gid]`, numbers only (as runc).
fn parse_user(u: &str) -> Result<(u32, Option<u32>), Error> {
    let bad = || Error::msg(ErrorKind::InvalidSpec, format!("invalid --user {u:?}: want uid[:gid]"));
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = match gid {
        Some(g) => Some(g.parse().map_err(|_| bad())?),
        None => None,
    };
    Ok((uid, gid))
}

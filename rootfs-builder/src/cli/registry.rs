//! Registries: pull (any source), push, login, logout.

use std::io::{IsTerminal, Read};

use serde_json::json;

use strata_rootfs::pull;
use strata_rootfs::registry::client::Client;
use strata_rootfs::registry::reference::{self, Parsed, Reference};

use super::{Error, Global, Named, REGISTRY_JOBS, classify, find_stored, print_json};

pub fn pull(g: &Global, image: &str) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let pulled = match classify(image) {
        Named::Local(spec) => pull::pull(&store, &spec, &g.pull_options(1)?)?,
        Named::Registry(r) => pull::pull_registry(&store, &g.access()?, r, &g.pull_options(REGISTRY_JOBS)?)?,
        Named::Store(name) => match find_stored(&store, name) {
            // Already in the store: nothing to import, but say which image it is.
            Ok(id) => {
                let rec = store.image(&id)?;
                pull::Pulled { id, reference: Some(name.to_string()), layers: rec.layers.len(), unpacked: 0 }
            }
            // Not stored: a registry reference without `docker://`.
            Err(e) => match reference::parse(name) {
                Ok(_) => pull::pull_registry(&store, &g.access()?, name, &g.pull_options(REGISTRY_JOBS)?)?,
                Err(_) => return Err(e),
            },
        },
    };
    if g.json {
        print_json(&serde_json::to_value(&pulled).unwrap_or_default());
    } else {
        println!("{}", pulled.id);
    }
    Ok(())
}

/// `docker://REF` or a bare qualified `REF`: where a push goes.
pub(super) fn destination(arg: &str) -> Result<Reference, Error> {
    let r = arg.strip_prefix("docker://").unwrap_or(arg);
    Ok(Reference::parse_qualified(r)?.with_default_tag())
}

pub fn push(g: &Global, image: &str, dest: Option<&str>) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let id = find_stored(&store, image)?;
    let dest = match dest {
        Some(d) => destination(d)?,
        None => destination(image)?,
    };
    push_stored(g, &store, &id, &dest)
}

/// Push the stored image `id` to `dest` and report it.
pub(super) fn push_stored(
    g: &Global,
    store: &strata_rootfs::store::Store,
    id: &strata_rootfs::digest::Digest,
    dest: &Reference,
) -> Result<(), Error> {
    let rec = store.image(id)?;
    let progress = super::display::progress(g.quiet, g.json);
    let pushed = strata_rootfs::push::push(store, &rec, &g.access()?, dest, &progress)?;
    if g.json {
        print_json(&serde_json::to_value(&pushed).unwrap_or_default());
    } else if !g.quiet {
        println!("{}", pushed.manifest);
    }
    Ok(())
}

/// `login [-u USER] [-p PASS | --password-stdin] REGISTRY`: the credentials are checked against
/// the registry before they are written.
pub fn login(
    g: &Global,
    registry: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<(), Error> {
    let registry = registry_host(registry)?;
    let access = g.access()?;
    let username = match username.or_else(|| access.creds.as_ref().map(|c| c.username.clone())) {
        Some(u) => u,
        None if std::io::stdin().is_terminal() && !password_stdin => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(Error::ReadPassword)?;
            line.trim().to_string()
        }
        None => return Err(Error::Usage("give the user name with --username (-u)".into())),
    };
    let password = if password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(Error::ReadPassword)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = password.or_else(|| access.creds.as_ref().map(|c| c.password.clone())) {
        p
    } else if std::io::stdin().is_terminal() {
        read_password_from_terminal()?
    } else {
        return Err(Error::Usage("give the password with --password-stdin (standard input is not a terminal)".into()));
    };
    let creds = strata_rootfs::registry::auth::Credentials { username, password };
    let insecure = match access.tls_verify {
        Some(v) => !v,
        None => access.conf.insecure(&registry),
    };
    let client = Client::new(&registry, insecure, Some(creds.clone()), access.cert_dir.as_deref())?;
    client.ping()?;
    let path = access.auth.login(&registry, &creds)?;
    if g.json {
        print_json(&json!({"registry": registry, "authfile": path}));
    } else if !g.quiet {
        println!("Login Succeeded");
    }
    Ok(())
}

pub fn logout(g: &Global, registry: Option<&str>, all: bool) -> Result<(), Error> {
    let access = g.access()?;
    let registry = match (registry, all) {
        (Some(r), false) => Some(registry_host(r)?),
        (None, true) => None,
        _ => return Err(Error::Usage("give either a REGISTRY or --all".into())),
    };
    let path = access.auth.logout(registry.as_deref())?;
    if g.json {
        print_json(&json!({"registry": registry, "authfile": path}));
    } else if !g.quiet {
        match registry {
            Some(r) => println!("Removed login credentials for {r}"),
            None => println!("Removed login credentials for all registries"),
        }
    }
    Ok(())
}

/// `host[:port]` from what `login`/`logout` take (also `docker://host`, `https://host/`).
fn registry_host(arg: &str) -> Result<String, Error> {
    let a = arg
        .strip_prefix("docker://")
        .or_else(|| arg.strip_prefix("https://"))
        .or_else(|| arg.strip_prefix("http://"))
        .unwrap_or(arg);
    let a = a.trim_end_matches('/');
    let host = a.split('/').next().unwrap_or(a);
    match reference::parse(&format!("{host}/x")) {
        Ok(Parsed::Qualified(r)) => Ok(r.registry),
        _ => Err(Error::BadName(arg.to_string())),
    }
}

/// Prompt for a password on the terminal with echo off.
fn read_password_from_terminal() -> Result<String, Error> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("Password: ");
    let saved = tcgetattr(&stdin).map_err(|e| Error::ReadPassword(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| Error::ReadPassword(e.into()))?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.map_err(Error::ReadPassword)?;
    restored.map_err(|e| Error::ReadPassword(e.into()))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

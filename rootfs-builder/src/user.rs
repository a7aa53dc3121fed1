//! `Config.User` (`user`, `uid`, `user:group`, `uid:gid`...) resolved against the image's
//! `/etc/passwd` and `/etc/group`, as image-spec conversion.md says.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("user {0:?} is not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} is not in the image's /etc/group")]
    UnknownGroup(String),
    #[error("malformed user {0:?} (expected user, uid, user:group or uid:gid)")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's name when known (for HOME and USER-like needs).
    pub home: Option<String>,
}

#[derive(Debug)]
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0].starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

/// (name, gid, members)
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || f[0].starts_with('#') {
            return None;
        }
        let members = f.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolve `spec` (empty: root). `passwd`/`group` are the image's files, if it has them.
pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<Resolved, Error> {
    let spec = spec.trim();
    if spec.is_empty() {
        // root, with root's home when the image's passwd names one.
        let home = passwd_entries(passwd.unwrap_or(""))
            .find(|e| e.uid == 0)
            .map(|e| e.home.to_string())
            .filter(|h| !h.is_empty());
        return Ok(Resolved { home, ..Resolved::default() });
    }
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(str::is_empty) {
        return Err(Error::Malformed(spec.to_string()));
    }
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");
    let mut out = Resolved::default();
    let named_user = user.parse::<u32>().is_err();
    if named_user {
        let e = passwd_entries(passwd).find(|e| e.name == user).ok_or_else(|| Error::UnknownUser(user.to_string()))?;
        out.uid = e.uid;
        out.gid = e.gid;
        out.home = Some(e.home.to_string()).filter(|h| !h.is_empty());
    } else {
        out.uid = user.parse().map_err(|_| Error::Malformed(spec.to_string()))?;
        if let Some(e) = passwd_entries(passwd).find(|e| e.uid == out.uid) {
            out.gid = e.gid;
            out.home = Some(e.home.to_string()).filter(|h| !h.is_empty());
        }
    }
    match grp {
        Some(g) => {
            out.gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_entries(group)
                    .find(|(n, _, _)| *n == g)
                    .map(|(_, id, _)| id)
                    .ok_or_else(|| Error::UnknownGroup(g.to_string()))?,
            };
        }
        // Only a named user without a group gets its memberships (conversion.md).
        None if named_user => {
            let mut gids: Vec<u32> =
                group_entries(group).filter(|(_, _, m)| m.contains(&user)).map(|(_, id, _)| id).collect();
            gids.dedup();
            out.additional_gids = gids;
        }
        None => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\n";

    #[test]
    fn named_user_gets_primary_and_member_groups() {
        let r = resolve("alice", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (1000, 1000, vec![10, 29]));
        assert_eq!(r.home.as_deref(), Some("/home/alice"));
    }

    #[test]
    fn numeric_and_group_forms() {
        assert_eq!(resolve("1000", Some(PASSWD), None).unwrap().gid, 1000);
        let r = resolve("4242:77", None, None).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids.len()), (4242, 77, 0));
        let r = resolve("alice:wheel", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids.len()), (1000, 10, 0));
        assert_eq!(resolve("", None, None).unwrap(), Resolved::default());
        assert_eq!(resolve("", Some(PASSWD), None).unwrap().home.as_deref(), Some("/root"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(resolve("bob", Some(PASSWD), Some(GROUP)), Err(Error::UnknownUser(_))));
        assert!(matches!(resolve("alice:nogroup", Some(PASSWD), Some(GROUP)), Err(Error::UnknownGroup(_))));
        assert!(matches!(resolve("nobody", None, None), Err(Error::UnknownUser(_))));
        assert!(matches!(resolve(":x", None, None), Err(Error::Malformed(_))));
    }
}

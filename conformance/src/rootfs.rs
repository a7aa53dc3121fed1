//! The test rootfs: busybox-static with its applet links, a minimal /etc and the static probe.
//!
//! A template is built once per test process in the run directory; each bundle gets its own copy of the
//! directory tree whose regular files are hard links to the template's (cheap, and a test that writes
//! into its rootfs or adds mount points cannot disturb another test).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fail::OrFail;

pub const BUSYBOX: &str = "/bin/busybox";
/// Where the probe sits inside every test rootfs.
pub const PROBE_IN_CONTAINER: &str = "/bin/strata-probe";

/// The static probe binary on the host: `STRATA_PROBE`, else the `--target x86_64-unknown-linux-gnu`
/// build that `hack/test-conformance` makes.
pub fn probe_on_host() -> PathBuf {
    let path = match std::env::var_os("STRATA_PROBE") {
        Some(p) => PathBuf::from(p),
        None => {
            let profile = crate::runtime::profile_dir();
            let name = profile.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "debug".into());
            let target = profile.parent().or_fail("target directory").to_path_buf();
            let target = if target.ends_with("x86_64-unknown-linux-gnu") {
                target.parent().or_fail("target directory").to_path_buf()
            } else {
                target
            };
            target.join("x86_64-unknown-linux-gnu").join(name).join("strata-probe")
        }
    };
    let how = "build it with hack/test-conformance, or: RUSTFLAGS=-Ctarget-feature=+crt-static cargo build -p \
               strata-probe --target x86_64-unknown-linux-gnu (or point STRATA_PROBE at a static build)";
    let head = fs::read(&path).unwrap_or_else(|e| panic!("probe binary {}: {e}; {how}", path.display()));
    let head = &head[..head.len().min(64 * 1024)];
    if head.windows(8).any(|w| w == b"ld-linux") {
        panic!("probe binary {} is dynamically linked and cannot run in the busybox rootfs; {how}", path.display());
    }
    path
}

/// Builds the template rootfs at `dir`.
pub fn build_template(dir: &Path, probe: &Path) {
    if !Path::new(BUSYBOX).is_file() {
        panic!("{BUSYBOX} is missing: install busybox-static (apt-get install busybox-static)");
    }
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "var", "run", "mnt", "home"] {
        fs::create_dir_all(dir.join(d)).or_fail(format!("create {}/{d}", dir.display()));
    }
    fs::DirBuilder::new().mode(0o1777).create(dir.join("tmp")).or_fail("create tmp");
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).or_fail("chmod tmp");
    copy_exec(Path::new(BUSYBOX), &dir.join("bin/busybox"));
    copy_exec(probe, &dir.join(PROBE_IN_CONTAINER.trim_start_matches('/')));
    let list = Command::new(BUSYBOX).arg("--list-full").output().or_fail("busybox --list-full");
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim).filter(|l| !l.is_empty()) {
        if applet == "bin/busybox" {
            continue;
        }
        let link = dir.join(applet);
        let parent = Path::new(applet).parent().or_fail(format!("parent of applet {applet}"));
        fs::create_dir_all(dir.join(parent)).or_fail(format!("create dir for applet {applet}"));
        let depth = parent.components().count();
        let target =
            if parent == Path::new("bin") { "busybox".to_string() } else { "../".repeat(depth) + "bin/busybox" };
        if !link.exists() {
            symlink(&target, &link).or_fail(format!("link applet {applet}"));
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .or_fail("write etc/passwd");
    fs::write(dir.join("etc/group"), "root:x:0:\ntty:x:5:\nuser:x:1000:\nnobody:x:65534:\n").or_fail("write etc/group");
}

fn copy_exec(from: &Path, to: &Path) {
    fs::copy(from, to).or_fail(format!("copy {} to {}", from.display(), to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).or_fail(format!("chmod {}", to.display()));
}

/// Recreates the template's tree at `to`: directories (same modes) and symlinks anew, regular files as
/// hard links (copies across filesystems).
pub fn clone_tree(from: &Path, to: &Path) {
    let md = fs::symlink_metadata(from).or_fail(format!("stat {}", from.display()));
    fs::create_dir(to).or_fail(format!("create {}", to.display()));
    fs::set_permissions(to, md.permissions()).or_fail(format!("chmod {}", to.display()));
    for entry in fs::read_dir(from).or_fail(format!("read {}", from.display())) {
        let entry = entry.or_fail(format!("read {}", from.display()));
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type().or_fail(format!("stat {}", src.display()));
        if ft.is_dir() {
            clone_tree(&src, &dst);
        } else if ft.is_symlink() {
            let target = fs::read_link(&src).or_fail(format!("readlink {}", src.display()));
            symlink(target, &dst).or_fail(format!("symlink {}", dst.display()));
        } else if let Err(e) = fs::hard_link(&src, &dst) {
            // Across filesystems (a rootfs on a test's own tmpfs) hard links are impossible: copy.
            if e.raw_os_error() != Some(nix::libc::EXDEV) {
                panic!("link {}: {e}", dst.display());
            }
            fs::copy(&src, &dst).or_fail(format!("copy {}", dst.display()));
        }
    }
}

/// Sets the extended attribute `name` of `path` (not following a symlink); the test fails if it cannot.
#[track_caller]
/// Like [`set_xattr`], but `false` where the filesystem has no such xattrs (user.* on tmpfs before
/// Linux 6.6, as in the cgroup v2 guest's kernel).
pub fn try_set_xattr(path: &Path, name: &str, value: &str) -> bool {
    match crate::sys::set_xattr(path, name, value.as_bytes()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => false,
        Err(e) => panic!("set xattr {name} on {}: {e}", path.display()),
    }
}

pub fn set_xattr(path: &Path, name: &str, value: &str) {
    crate::sys::set_xattr(path, name, value.as_bytes()).or_fail(format!("set xattr {name} on {}", path.display()));
}

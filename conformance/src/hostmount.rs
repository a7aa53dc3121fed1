//! Mounts on the host side, for tests of mount propagation between the host and a container. Each is
//! detached again when the test ends.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::fail::OrFail;
use crate::test::Test;

/// Mounts a fresh tmpfs at `dir` (created) and unmounts it when the test ends.
pub fn tmpfs(t: &Test, dir: &Path) {
    std::fs::create_dir_all(dir).or_fail(format!("create {}", dir.display()));
    mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::empty(), Some("size=256m"))
        .or_fail(format!("mount tmpfs on {}", dir.display()));
    detach_at_end(t, dir);
}

/// Sets the propagation type of the mount at `dir` (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`...).
pub fn propagation(dir: &Path, flag: MsFlags) {
    mount(None::<&str>, dir, None::<&str>, flag, None::<&str>)
        .or_fail(format!("change propagation of {}", dir.display()));
}

/// Unmounts `dir` (lazily, recursively enough for tests) when the test ends.
pub fn detach_at_end(t: &Test, dir: &Path) {
    let dir: PathBuf = dir.to_path_buf();
    t.on_cleanup(move || {
        if let Err(e) = umount2(&dir, MntFlags::MNT_DETACH) {
            eprintln!("note: unmount {}: {e}", dir.display());
        }
    });
}

//! A layer tar, unpacked in overlay form (whiteouts, opaque directories, hard and symbolic links,
//! devices, xattrs) into an empty directory, and applied twice onto one merged tree as a streamed
//! flatten applies an image's layers (the second time its whiteouts and links meet the first's
//! tree): it must never panic, and nothing may appear outside the destinations, whatever the
//! archive holds. Runs as root (devices, trusted.* attributes).
#![no_main]

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use strata_rootfs::extract::{MergedTree, Options, apply_layer, apply_layer_merged};

fn scratch() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    base.join(format!("strata-fuzz-layer-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

fuzz_target!(|data: &[u8]| {
    let outer = scratch();
    let dest = outer.join("dest");
    std::fs::create_dir_all(&dest).expect("create the scratch directory");
    let fd = nix::fcntl::open(&dest, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .expect("open the scratch directory");
    let _result = apply_layer(data, fd.as_fd(), &Options::default());
    drop(fd);
    let merged = outer.join("merged");
    std::fs::create_dir_all(&merged).expect("create the merged directory");
    let fd = nix::fcntl::open(&merged, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .expect("open the merged directory");
    let mut tree = MergedTree::new(fd.as_fd());
    if apply_layer_merged(data, &mut tree).is_ok() && apply_layer_merged(data, &mut tree).is_ok() {
        let _finished = tree.finish();
    }
    drop(fd);
    let escaped: Vec<_> = std::fs::read_dir(&outer)
        .expect("list the scratch directory")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "dest" && n != "merged")
        .collect();
    assert!(escaped.is_empty(), "the layer wrote outside its destination: {escaped:?}");
    // Make everything removable (a layer may leave read-only directories), then remove it.
    let _chmod = std::process::Command::new("chmod").args(["-R", "u+rwx"]).arg(&outer).status();
    std::fs::remove_dir_all(&outer).expect("remove the scratch directory");
});

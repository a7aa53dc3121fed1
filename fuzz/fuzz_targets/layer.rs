//! A layer tar, unpacked in overlay form (whiteouts, opaque directories, hard and symbolic links,
//! devices, xattrs) into an empty directory: it must never panic, and nothing may appear outside the
//! destination, whatever the archive holds. Runs as root (devices, trusted.* attributes).
#![no_main]

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use strata_rootfs::extract::{Options, apply_layer};

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
    let escaped: Vec<_> = std::fs::read_dir(&outer)
        .expect("list the scratch directory")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "dest")
        .collect();
    assert!(escaped.is_empty(), "the layer wrote outside its destination: {escaped:?}");
    // Make everything removable (a layer may leave read-only directories), then remove it.
    let _chmod = std::process::Command::new("chmod").args(["-R", "u+rwx"]).arg(&outer).status();
    std::fs::remove_dir_all(&outer).expect("remove the scratch directory");
});

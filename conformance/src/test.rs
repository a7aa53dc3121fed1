//! One conformance test: its private directories, state root and containers, their cleanup, and the
//! per-runtime expectation check.

use std::cell::{Cell, RefCell};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::bundle::Bundle;
use crate::container::Container;
use crate::expectations;
use crate::fail::OrFail;
use crate::rootfs;
use crate::runtime::{Cmd, Outcome, Runtime};

/// Where each test process keeps its files: `/tmp/strata-conformance/<pid>/`.
const RUN_BASE: &str = "/tmp/strata-conformance";

/// Runs one conformance test named `name` (the `#[test]` function's name) against the runtime chosen by
/// `CONFORMANCE_RUNTIME`.
///
/// If the runtime is listed in [`expectations`] as deviating from the spec on this test, the test is
/// expected to fail: its failure is reported as expected and passes, and an unexpected pass fails (so
/// the list stays true). Otherwise the body's failure is the test's failure.
pub fn spec_test(name: &str, body: impl FnOnce(&Test)) {
    if let Some(thread) = std::thread::current().name() {
        if thread != "main" && thread != name && !thread.ends_with(&format!("::{name}")) {
            panic!("spec_test name {name:?} does not match the test function {thread:?}");
        }
    }
    let t = Test::new(name);
    let deviation = expectations::deviation(t.rt.kind, name);
    let result = catch_unwind(AssertUnwindSafe(|| body(&t)));
    // Keep the files for inspection only when the outcome is not the expected one.
    t.failed.set(result.is_err() != deviation.is_some());
    let kind = t.rt.kind;
    drop(t);
    match (result, deviation) {
        (Ok(()), None) => {}
        (Err(panic), None) => resume_unwind(panic),
        (Err(_), Some(reason)) => {
            eprintln!("EXPECTED FAILURE on {kind} (documented deviation): {name}: {reason}");
        }
        (Ok(()), Some(reason)) => panic!(
            "{name} passed on {kind}, but it is listed as a deviation of {kind} in conformance/src/expectations.rs \
             ({reason}); remove the entry (and its line in conformance/README.md)"
        ),
    }
}

struct RunDir {
    dir: PathBuf,
    template: PathBuf,
    probe: PathBuf,
}

/// Preconditions and the per-process run directory with its template rootfs, set up once.
fn run_dir() -> &'static RunDir {
    static RUN: OnceLock<RunDir> = OnceLock::new();
    RUN.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            panic!("the conformance suite must run as root (it creates real containers)");
        }
        // Container processes are re-parented to us when the runtime exits, as they are to conmon
        // and the containerd shim; that is how the suite sees their exit status.
        nix::sys::prctl::set_child_subreaper(true).or_fail("become a child subreaper");
        let probe = rootfs::probe_on_host();
        remove_stale_runs();
        let dir = Path::new(RUN_BASE).join(std::process::id().to_string());
        fs::create_dir_all(&dir).or_fail(format!("create {}", dir.display()));
        let template = dir.join("rootfs");
        if !template.exists() {
            rootfs::build_template(&template, &probe);
        }
        RunDir { dir, template, probe }
    })
}

/// Removes run directories of test processes that no longer exist, unless something is mounted below.
fn remove_stale_runs() {
    let Ok(entries) = fs::read_dir(RUN_BASE) else { return };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() || Path::new("/proc").join(&name).exists() {
            continue;
        }
        if !has_mounts_below(&mountinfo, &e.path()) {
            if let Err(err) = fs::remove_dir_all(e.path()) {
                eprintln!("note: could not remove stale {}: {err}", e.path().display());
            }
        }
    }
}

fn has_mounts_below(mountinfo: &str, dir: &Path) -> bool {
    let prefix = format!("{}/", dir.display());
    mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).any(|mp| mp.starts_with(&prefix))
}

/// One test's world: its own directory, `--root` state directory, bundles and containers.
#[derive(Debug)]
pub struct Test {
    pub name: String,
    rt: Runtime,
    dir: PathBuf,
    root: PathBuf,
    seq: Cell<u32>,
    ids: RefCell<Vec<String>>,
    failed: Cell<bool>,
    cleanups: RefCell<Cleanups>,
}

/// Actions to run at the end of a test, last registered first.
struct Cleanups(Vec<Box<dyn FnOnce()>>);

impl std::fmt::Debug for Cleanups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cleanups", self.0.len())
    }
}

impl Test {
    fn new(name: &str) -> Self {
        let run = run_dir();
        let rt = Runtime::from_env();
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = run.dir.join(format!("{n:03}-{name}"));
        if dir.exists() {
            fs::remove_dir_all(&dir).or_fail(format!("remove old {}", dir.display()));
        }
        let root = dir.join("root");
        fs::create_dir_all(&root).or_fail(format!("create {}", root.display()));
        Test {
            name: name.to_string(),
            rt,
            dir,
            root,
            seq: Cell::new(0),
            ids: RefCell::new(Vec::new()),
            failed: Cell::new(false),
            cleanups: RefCell::new(Cleanups(Vec::new())),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The `--root` state directory of this test.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This test's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The static probe on the host (for hooks that run in the runtime namespace).
    pub fn host_probe(&self) -> PathBuf {
        run_dir().template.join(rootfs::PROBE_IN_CONTAINER.trim_start_matches('/'))
    }

    /// The probe binary that the rootfs copies are made from.
    pub fn probe_source(&self) -> &Path {
        &run_dir().probe
    }

    fn next(&self) -> u32 {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        n
    }

    pub(crate) fn output_paths(&self) -> (PathBuf, PathBuf) {
        let n = self.next();
        (self.dir.join(format!("cmd-{n}.out")), self.dir.join(format!("cmd-{n}.err")))
    }

    /// A fresh directory path in this test's directory (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A short path for a unix socket (sun_path holds 108 bytes): `/tmp/strata-conformance/<pid>/s<n>.sock`.
    pub fn socket_path(&self) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        run_dir().dir.join(format!("s{}.sock", N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)))
    }

    /// A new unique container id, deleted (`delete --force`) when the test ends.
    pub fn new_id(&self) -> String {
        let short: String = self.name.chars().take(24).collect();
        let id = format!("{short}-{}-{}", std::process::id(), self.next());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// A new bundle with its own rootfs copy and the default configuration.
    pub fn bundle(&self) -> Bundle {
        let n = self.next();
        let dir = self.dir.join(format!("bundle{n}"));
        fs::create_dir_all(&dir).or_fail(format!("create {}", dir.display()));
        rootfs::clone_tree(&run_dir().template, &dir.join("rootfs"));
        // The test's directory name starts with its sequence number: tests whose names share a long
        // prefix still get distinct cgroups.
        let dir_name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let cgroups_path =
            format!("/strata-conformance/{}-{}-{n}", std::process::id(), dir_name.chars().take(28).collect::<String>());
        Bundle::new(dir, &cgroups_path)
    }

    /// A copy of the test rootfs at `dir` (which must not exist yet), e.g. on a test's own mount.
    pub fn rootfs_at(&self, dir: &Path) {
        rootfs::clone_tree(&run_dir().template, dir);
    }

    /// Runs the runtime (with this test's `--root`) from any thread.
    pub fn runner(&self) -> crate::runner::Runner {
        crate::runner::Runner::new(&self.rt.path, &self.root, &self.dir)
    }

    /// A runtime command: `<runtime> --root <root> <args...>`.
    pub fn cmd(&self, args: &[&str]) -> Cmd<'_> {
        Cmd::new(self, args)
    }

    /// `create --bundle <dir> <extra...> <new id>` without checking the result.
    pub fn try_create(&self, b: &Bundle, extra: &[&str]) -> (String, Outcome) {
        b.write();
        let id = self.new_id();
        let out = self.cmd(&["create", "--bundle"]).arg(&b.dir).args(extra).arg(&id).run();
        (id, out)
    }

    /// Creates a container from the bundle; the test fails if `create` fails.
    #[track_caller]
    pub fn create(&self, b: &Bundle) -> Container<'_> {
        self.create_with(b, &[])
    }

    /// Creates a container with extra `create` flags (e.g. `--pid-file`).
    #[track_caller]
    pub fn create_with(&self, b: &Bundle, extra: &[&str]) -> Container<'_> {
        let (id, out) = self.try_create(b, extra);
        out.ok();
        Container::new(self, id, b.dir.clone(), &out)
    }

    /// Creates a container with a `create` command line adjusted by `adjust` (flags, a shell prefix);
    /// the id is appended after it. The test fails if `create` fails.
    #[track_caller]
    pub fn create_via(&self, b: &Bundle, adjust: impl FnOnce(Cmd<'_>) -> Cmd<'_>) -> Container<'_> {
        b.write();
        let id = self.new_id();
        let out = adjust(self.cmd(&["create", "--bundle"]).arg(&b.dir)).arg(&id).run();
        out.ok();
        Container::new(self, id, b.dir.clone(), &out)
    }

    /// Creates a container under an id that this test already owns (e.g. reusing a deleted one).
    #[track_caller]
    pub fn create_as(&self, b: &Bundle, id: &str, extra: &[&str]) -> Container<'_> {
        b.write();
        let out = self.cmd(&["create", "--bundle"]).arg(&b.dir).args(extra).arg(id).run();
        out.ok();
        Container::new(self, id.to_string(), b.dir.clone(), &out)
    }

    /// Creates and starts a container.
    #[track_caller]
    pub fn start(&self, b: &Bundle) -> Container<'_> {
        let c = self.create(b);
        c.start();
        c
    }

    /// Runs the bundle's process to completion (create, start, wait for exit 0, delete) and returns the
    /// JSON it printed last.
    #[track_caller]
    pub fn run_probe(&self, b: &Bundle) -> Value {
        let c = self.start(b);
        c.wait_success();
        let v = c.json();
        c.delete().ok();
        v
    }

    /// Runs `f` when the test ends (after containers are deleted), e.g. to unmount a host mount.
    pub fn on_cleanup(&self, f: impl FnOnce() + 'static) {
        self.cleanups.borrow_mut().0.push(Box::new(f));
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter().rev() {
            let out = self.cmd(&["delete", "--force"]).arg(id).run_quiet();
            if let Some(msg) = out {
                eprintln!("note: cleanup `delete --force {id}`: {msg}");
            }
        }
        for f in self.cleanups.borrow_mut().0.drain(..).rev() {
            f();
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if self.failed.get() || std::thread::panicking() {
            eprintln!("kept the files of {} in {}", self.name, self.dir.display());
        } else if has_mounts_below(&mountinfo, &self.dir) {
            eprintln!("note: not removing {}: something is still mounted below it", self.dir.display());
        } else if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("note: remove {}: {e}", self.dir.display());
        }
    }
}

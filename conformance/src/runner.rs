//! Running the runtime from many threads at once (concurrency and load tests): a [`Runner`] is
//! `Send + Sync` and needs no [`crate::Test`] borrow. Containers it creates should use ids from
//! `Test::new_id`, so the test still deletes them at the end.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::fail::OrFail;
use crate::runtime::Outcome;

/// An invocation still running after this long is taken for a deadlock: killed, and the test fails.
const DEADLOCK_LIMIT: Duration = Duration::from_secs(60);

/// Numbers the output files of every invocation of every runner of the test process.
static SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub struct Runner {
    runtime: PathBuf,
    root: PathBuf,
    dir: PathBuf,
}

impl Runner {
    pub(crate) fn new(runtime: &Path, root: &Path, dir: &Path) -> Self {
        let dir = dir.join("parallel");
        std::fs::create_dir_all(&dir).or_fail(format!("create {}", dir.display()));
        Runner { runtime: runtime.to_path_buf(), root: root.to_path_buf(), dir }
    }

    /// `<runtime> --root <root> <args...>`, stdio in files (a container started by `create` keeps them).
    /// Fails the test if it has not exited within a minute (a deadlock).
    #[track_caller]
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Outcome {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (out_path, err_path) = (self.dir.join(format!("{n}.out")), self.dir.join(format!("{n}.err")));
        let command = std::iter::once(self.runtime.display().to_string())
            .chain(args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).or_fail("create an output file"))
            .stderr(File::create(&err_path).or_fail("create an output file"))
            .spawn()
            .or_fail(format!("spawn `{command}`"));
        let status = crate::container::wait_child(&mut child, &command, DEADLOCK_LIMIT, "deadlocked?");
        Outcome::from_files(command, status, out_path, err_path)
    }
}

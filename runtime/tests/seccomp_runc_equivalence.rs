//! Privileged: podman's default seccomp profile must decide every syscall the same way under
//! strata's compiler as under runc (runc 1.1 + libseccomp 2.5 from Debian).
//!
//! A static prober (`tests/support/seccomp_prober.c`, built here with `cc -static`) attempts
//! every syscall number of x86_64, x32 and i386 with harmless arguments, plus the argument values
//! profiles condition on (personality, socket, clone flags), and prints one result per attempt.
//! It runs in two containers that differ only in the runtime:
//! - runc with `linux.seccomp` = the profile (runc compiles it with libseccomp);
//! - `strata run` of the same bundle (with `STRATA_SECCOMP_EQUIVALENCE=bpf`: runc without
//!   `linux.seccomp`, the prober installing strata's compiled program itself, `--bpf`).
//!
//! Both run in identical namespaces, capabilities and rootfs, so every line must match. A third,
//! unfiltered run proves that the filter's decisions are visible in the output.
//!
//! Needs root, `runc` and a C compiler with static glibc (`gcc`, `libc6-dev`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::LinuxSeccomp;
use strata::security::seccomp::compile;

fn client_sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn podman_config() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(client_sample("podman-config.json")).unwrap()).unwrap()
}

fn build_prober(out: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/seccomp_prober.c");
    let status = Command::new("cc")
        .args(["-static", "-O2", "-mno-red-zone", "-o"])
        .arg(out)
        .arg(&source)
        .status()
        .expect("run cc (install gcc and libc6-dev)");
    assert!(status.success(), "building the static prober failed: {status}");
}

/// A bundle whose rootfs holds only the prober (and the BPF file when given).
fn bundle(dir: &Path, prober: &Path, args: &[&str], seccomp: Option<&serde_json::Value>, bpf: Option<&[u8]>) {
    let rootfs = dir.join("rootfs");
    for sub in ["proc", "dev"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy(prober, rootfs.join("prober")).unwrap();
    if let Some(bpf) = bpf {
        std::fs::write(rootfs.join("bpf"), bpf).unwrap();
    }
    let podman = podman_config();
    let mut config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/"],
            "cwd": "/",
            "capabilities": podman["process"]["capabilities"],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "prober",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=1m"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        },
    });
    if let Some(seccomp) = seccomp {
        config["linux"]["seccomp"] = seccomp.clone();
    }
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

fn run_container(runtime: &Path, state_root: &Path, bundle: &Path, id: &str) -> String {
    let output = Command::new(runtime)
        .arg("--root")
        .arg(state_root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", runtime.display()));
    assert!(
        output.status.success(),
        "{} run {id} failed: {}\nstderr: {}",
        runtime.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.lines().count() > 1500, "the prober printed too little:\n{stdout}");
    stdout
}

fn differences(left: &str, right: &str) -> Vec<String> {
    let (left, right): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    assert_eq!(left.len(), right.len(), "the two runs probed different lists");
    left.iter().zip(&right).filter(|(l, r)| l != r).map(|(l, r)| format!("runc: {l:<40} strata: {r}")).collect()
}

/// The program strata compiled, in the prober's `--bpf` format.
fn bpf_file(seccomp: &serde_json::Value) -> Vec<u8> {
    let profile: LinuxSeccomp = serde_json::from_value(seccomp.clone()).unwrap();
    let filter = compile(&profile).expect("strata compiles the profile");
    let mut bpf = filter.flags().to_le_bytes().to_vec();
    for insn in filter.program() {
        bpf.extend_from_slice(&insn.code.to_le_bytes());
        bpf.extend_from_slice(&[insn.jt, insn.jf]);
        bpf.extend_from_slice(&insn.k.to_le_bytes());
    }
    bpf
}

#[test]
fn podman_profile_matches_runc_syscall_by_syscall() {
    assert!(nix::unistd::geteuid().is_root(), "the runc equivalence test must run as root (CI runs it as root)");
    let runc = PathBuf::from(std::env::var_os("STRATA_TEST_RUNC").unwrap_or_else(|| "runc".into()));
    assert!(
        Command::new(&runc).arg("--version").output().is_ok_and(|out| out.status.success()),
        "runc is required (apt-get install runc)"
    );

    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("seccomp-equivalence-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let prober = work.join("seccomp-prober");
    build_prober(&prober);
    let state_root = work.join("state");
    let id = |what: &str| format!("strata-seccomp-{what}-{}", std::process::id());

    let unfiltered_bundle = work.join("unfiltered");
    bundle(&unfiltered_bundle, &prober, &["/prober"], None, None);
    let unfiltered = run_container(&runc, &state_root, &unfiltered_bundle, &id("none"));

    // Podman's profile as sent (default ENOSYS), and the same with the default EPERM that older
    // Docker-style profiles use, which makes runc prepend its ENOSYS stub.
    let podman = podman_config()["linux"]["seccomp"].clone();
    let mut eperm_default = podman.clone();
    eperm_default.as_object_mut().unwrap().remove("defaultErrnoRet");
    for (name, seccomp) in [("podman", podman), ("podman-eperm-default", eperm_default)] {
        let runc_bundle = work.join(format!("{name}-runc"));
        bundle(&runc_bundle, &prober, &["/prober"], Some(&seccomp), None);
        let under_runc = run_container(&runc, &state_root, &runc_bundle, &id("runc"));

        // `strata run` of the very bundle runc ran; STRATA_SECCOMP_EQUIVALENCE=bpf runs our compiled
        // program under runc instead (isolates the compiler from the rest of the runtime).
        let under_strata = match std::env::var("STRATA_SECCOMP_EQUIVALENCE").as_deref() {
            Err(_) | Ok("strata-run") => {
                run_container(Path::new(env!("CARGO_BIN_EXE_strata")), &state_root, &runc_bundle, &id("strata"))
            }
            Ok("bpf") => {
                let ours = work.join(format!("{name}-ours"));
                bundle(&ours, &prober, &["/prober", "--bpf", "/bpf"], None, Some(&bpf_file(&seccomp)));
                run_container(&runc, &state_root, &ours, &id("ours"))
            }
            Ok(other) => panic!("STRATA_SECCOMP_EQUIVALENCE={other}: expected strata-run, bpf or nothing"),
        };

        let diff = differences(&under_runc, &under_strata);
        let visible = differences(&under_runc, &unfiltered).len();
        std::fs::write(work.join(format!("{name}-runc.txt")), &under_runc).unwrap();
        std::fs::write(work.join(format!("{name}-strata.txt")), &under_strata).unwrap();
        assert!(visible > 100, "{name}: the filter changed only {visible} results: the prober does not see it");
        assert!(
            diff.is_empty(),
            "{name}: {} of {} results differ (outputs kept in {}):\n{}",
            diff.len(),
            under_runc.lines().count(),
            work.display(),
            diff.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
        );
        println!(
            "{name}: {} syscall attempts, identical; the filter decides {visible} of them",
            under_runc.lines().count()
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}

//! config.md process (args, cwd, env, user, rlimits, capabilities, noNewPrivileges, oomScoreAdj, umask,
//! scheduler, ioPriority), config-linux.md personality, runtime-linux.md file descriptors.

use strata_conformance::probe::{cap_names, sorted};
use strata_conformance::*;

fn probe(t: &Test, b: &mut Bundle, report: &str) -> Value {
    b.probe(&[report]);
    t.run_probe(b)
}

#[test]
fn process_args_first_entry_searched_in_path() {
    // config.md process.args: "that entry is used with the same semantics as execvp's file" (PATH is
    // searched when it holds no slash).
    spec_test("process_args_first_entry_searched_in_path", |t| {
        let mut b = t.bundle();
        b.set("/process/env", json!(["PATH=/usr/bin:/bin"]));
        b.args(&["strata-probe", "pid"]);
        assert_eq!(t.run_probe(&b)["pid"], 1);
    });
}

#[test]
fn process_args_become_argv() {
    // config.md process.args: "with similar semantics to IEEE Std 1003.1-2008 execvp's argv".
    spec_test("process_args_become_argv", |t| {
        let mut b = t.bundle();
        b.args(&["/bin/sh", "-c", "printf '%s|' \"$0\" \"$@\"", "zero", "one two", "", "three"]);
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout(), "zero|one two||three|");
    });
}

#[test]
fn process_missing_executable_fails() {
    // runtime.md: "If the runtime cannot apply a property as specified in the configuration, it MUST
    // generate an error" -- at the latest when start runs the program (runc reports it at create).
    spec_test("process_missing_executable_fails", |t| {
        let mut b = t.bundle();
        b.args(&["/no/such/program"]);
        let (id, created) = t.try_create(&b, &[]);
        if created.success() {
            t.cmd(&["start", &id]).run().failed();
        }
    });
}

#[test]
fn process_cwd_applied() {
    // config.md process.cwd: "is the working directory that will be set for the executable."
    spec_test("process_cwd_applied", |t| {
        let mut b = t.bundle();
        b.set("/process/cwd", json!("/usr/bin"));
        assert_eq!(probe(t, &mut b, "cwd"), "/usr/bin");
    });
}

#[test]
fn process_cwd_must_be_absolute() {
    // config.md process.cwd: "This value MUST be an absolute path." (config.md: "Runtimes MUST generate an
    // error when invalid or unsupported values are encountered.")
    spec_test("process_cwd_must_be_absolute", |t| {
        let mut b = t.bundle();
        b.set("/process/cwd", json!("usr/bin"));
        let (id, created) = t.try_create(&b, &[]);
        created.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn process_env_applied() {
    // config.md process.env: "with the same semantics as IEEE Std 1003.1-2008's environ".
    spec_test("process_env_applied", |t| {
        let mut b = t.bundle();
        let env = json!(["PATH=/bin", "HOME=/root", "WITH_SPACE=a b", "EMPTY=", "EQUALS=x=y"]);
        b.set("/process/env", env.clone());
        assert_eq!(probe(t, &mut b, "env"), env);
    });
}

#[test]
fn process_user_uid_and_gid() {
    // config.md user: "uid (int, REQUIRED) specifies the user ID in the container namespace", "gid (int,
    // REQUIRED) specifies the group ID in the container namespace."
    spec_test("process_user_uid_and_gid", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1001}));
        let ids = probe(t, &mut b, "ids");
        assert_eq!((ids["uid"].as_u64(), ids["euid"].as_u64()), (Some(1000), Some(1000)), "{ids}");
        assert_eq!((ids["gid"].as_u64(), ids["egid"].as_u64()), (Some(1001), Some(1001)), "{ids}");
    });
}

#[test]
fn process_user_additional_gids() {
    // config.md user: "additionalGids (array of ints, OPTIONAL) specifies additional group IDs in the
    // container namespace to be added to the process."
    spec_test("process_user_additional_gids", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 100, 4242]}));
        let ids = probe(t, &mut b, "ids");
        let mut groups: Vec<u64> =
            ids["groups"].as_array().or_fail("groups").iter().filter_map(Value::as_u64).collect();
        groups.sort();
        assert_eq!(groups, [5, 100, 4242], "{ids}");
    });
}

#[test]
fn process_user_without_additional_gids_has_no_supplementary_groups() {
    // config.md user: the supplementary groups are exactly additionalGids (none inherited from the
    // runtime).
    spec_test("process_user_without_additional_gids_has_no_supplementary_groups", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        let ids = probe(t, &mut b, "ids");
        let groups = ids["groups"].as_array().or_fail("groups");
        assert!(groups.is_empty() || groups == &vec![json!(1000)], "{ids}");
    });
}

#[test]
fn process_umask_applied() {
    // config.md user: "umask (int, OPTIONAL) specifies the umask of the user."
    spec_test("process_umask_applied", |t| {
        let mut b = t.bundle();
        b.set("/process/user/umask", json!(0o077));
        assert_eq!(probe(t, &mut b, "umask"), 0o077);
    });
}

#[test]
fn process_umask_unset_inherits_caller() {
    // config.md user umask: "If unspecified, the umask should not be changed from the calling process'
    // umask."
    spec_test("process_umask_unset_inherits_caller", |t| {
        let mut b = t.bundle();
        b.probe(&["umask"]);
        let c = t.create_via(&b, |cmd| cmd.sh_prefix("umask 0027"));
        c.start();
        c.wait_success();
        let out = c.stdout();
        assert_eq!(out.trim().parse::<u32>().or_fail(format!("umask report {out:?}")), 0o027);
    });
}

#[test]
fn process_no_new_privileges_true() {
    // config.md: "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process
    // from gaining additional privileges."
    spec_test("process_no_new_privileges_true", |t| {
        let mut b = t.bundle();
        b.set("/process/noNewPrivileges", json!(true));
        assert_eq!(probe(t, &mut b, "nnp"), true);
    });
}

#[test]
fn process_no_new_privileges_false() {
    // config.md noNewPrivileges: only true sets no_new_privs.
    spec_test("process_no_new_privileges_false", |t| {
        let mut b = t.bundle();
        b.set("/process/noNewPrivileges", json!(false));
        assert_eq!(probe(t, &mut b, "nnp"), false);
    });
}

#[test]
fn process_oom_score_adj_set() {
    // config.md: "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the given value."
    spec_test("process_oom_score_adj_set", |t| {
        let mut b = t.bundle();
        b.set("/process/oomScoreAdj", json!(500));
        assert_eq!(probe(t, &mut b, "oom"), 500);
    });
}

#[test]
fn process_oom_score_adj_unset_is_unchanged() {
    // config.md: "If oomScoreAdj is not set, the runtime MUST NOT change the value of oom_score_adj."
    spec_test("process_oom_score_adj_unset_is_unchanged", |t| {
        let mut b = t.bundle();
        b.remove("/process/oomScoreAdj");
        b.probe(&["oom"]);
        let c = t.create_via(&b, |cmd| cmd.sh_prefix("echo 321 > /proc/self/oom_score_adj"));
        c.start();
        c.wait_success();
        let out = c.stdout();
        assert_eq!(out.trim(), "321");
    });
}

fn rlimit(v: &Value, name: &str) -> (Value, Value) {
    (v[name]["soft"].clone(), v[name]["hard"].clone())
}

#[test]
fn process_rlimits_applied() {
    // config.md rlimits: "soft ... rlim.rlim_cur MUST match the configured value", "hard ...
    // rlim.rlim_max MUST match the configured value."
    spec_test("process_rlimits_applied", |t| {
        let mut b = t.bundle();
        b.set(
            "/process/rlimits",
            json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
                {"type": "RLIMIT_CORE", "soft": 1024, "hard": 4096},
                {"type": "RLIMIT_NPROC", "soft": 2000, "hard": 3000},
                {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
            ]),
        );
        let v = probe(t, &mut b, "rlimits");
        assert_eq!(rlimit(&v, "RLIMIT_NOFILE"), (json!(512), json!(1000)));
        assert_eq!(rlimit(&v, "RLIMIT_CORE"), (json!(1024), json!(4096)));
        assert_eq!(rlimit(&v, "RLIMIT_NPROC"), (json!(2000), json!(3000)));
        assert_eq!(rlimit(&v, "RLIMIT_STACK"), (json!(4194304), json!(8388608)));
    });
}

#[test]
fn process_rlimit_unlisted_is_inherited() {
    // config.md rlimits are only "for the process" as listed: a type not listed keeps the runtime's value.
    spec_test("process_rlimit_unlisted_is_inherited", |t| {
        let mut b = t.bundle();
        b.set("/process/rlimits", json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]));
        let v = probe(t, &mut b, "rlimits");
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_SIGPENDING).or_fail("getrlimit");
        assert_eq!(rlimit(&v, "RLIMIT_SIGPENDING"), (json!(soft), json!(hard)));
    });
}

#[test]
fn process_rlimit_unknown_type_fails() {
    // config.md rlimits type: "The runtime MUST generate an error for any values which cannot be mapped to
    // a relevant kernel interface."
    spec_test("process_rlimit_unknown_type_fails", |t| {
        let mut b = t.bundle();
        b.push("/process/rlimits", json!({"type": "RLIMIT_NO_SUCH_LIMIT", "soft": 1, "hard": 1}));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn process_rlimit_duplicate_type_fails() {
    // config.md rlimits: "If rlimits contains duplicated entries with same type, the runtime MUST generate
    // an error."
    spec_test("process_rlimit_duplicate_type_fails", |t| {
        let mut b = t.bundle();
        b.set(
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}, {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 256}]),
        );
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

fn caps_with(t: &Test, caps: Value, user: Value) -> Value {
    let mut b = t.bundle();
    b.set("/process/capabilities", caps);
    b.set("/process/user", user);
    b.set("/process/noNewPrivileges", json!(false));
    probe(t, &mut b, "caps")
}

// config.md capabilities: "effective/bounding/inheritable/permitted/ambient (array of strings, OPTIONAL)
// the ... field is an array of ... capabilities that are kept for the process."
//
// What survives execve(2) is the kernel's rule (capabilities(7)): a uid-0 process gets permitted =
// effective = its bounding set; any other uid keeps permitted/effective only through the ambient set.
// So effective and permitted are observed on a non-root process that also has them as ambient.

#[test]
fn process_capabilities_effective_and_permitted_for_non_root() {
    spec_test("process_capabilities_effective_and_permitted_for_non_root", |t| {
        let bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"];
        let kept = ["CAP_KILL", "CAP_SYS_CHROOT"];
        let v = caps_with(
            t,
            json!({"bounding": bounding, "permitted": kept, "effective": kept, "inheritable": kept, "ambient": kept}),
            json!({"uid": 1000, "gid": 1000}),
        );
        assert_eq!(cap_names(&v, "effective"), sorted(&kept), "{v}");
        assert_eq!(cap_names(&v, "permitted"), sorted(&kept), "{v}");
        assert_eq!(cap_names(&v, "bounding"), sorted(&bounding), "{v}");
    });
}

#[test]
fn process_capabilities_root_limited_to_bounding() {
    spec_test("process_capabilities_root_limited_to_bounding", |t| {
        let set = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let v = caps_with(t, json!({"bounding": set, "permitted": set, "effective": set}), json!({"uid": 0, "gid": 0}));
        assert_eq!(cap_names(&v, "effective"), sorted(&set), "{v}");
        assert_eq!(cap_names(&v, "permitted"), sorted(&set), "{v}");
    });
}

#[test]
fn process_capabilities_bounding() {
    spec_test("process_capabilities_bounding", |t| {
        let set = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"];
        let v = caps_with(
            t,
            json!({"bounding": set, "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}),
            json!({"uid": 0, "gid": 0}),
        );
        assert_eq!(cap_names(&v, "bounding"), sorted(&set), "{v}");
    });
}

#[test]
fn process_capabilities_inheritable() {
    spec_test("process_capabilities_inheritable", |t| {
        let all = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let v = caps_with(
            t,
            json!({"bounding": all, "permitted": all, "effective": all, "inheritable": ["CAP_NET_BIND_SERVICE"]}),
            json!({"uid": 0, "gid": 0}),
        );
        assert_eq!(cap_names(&v, "inheritable"), sorted(&["CAP_NET_BIND_SERVICE"]), "{v}");
    });
}

#[test]
fn process_capabilities_inheritable_empty_by_default() {
    // DESIGN §4: "Inheritable capabilities stay empty unless asked" -- config.md: sets are "kept for the
    // process" only as listed.
    spec_test("process_capabilities_inheritable_empty_by_default", |t| {
        let all = ["CAP_CHOWN", "CAP_KILL"];
        let v = caps_with(t, json!({"bounding": all, "permitted": all, "effective": all}), json!({"uid": 0, "gid": 0}));
        assert_eq!(cap_names(&v, "inheritable"), Vec::<String>::new(), "{v}");
        assert_eq!(cap_names(&v, "ambient"), Vec::<String>::new(), "{v}");
    });
}

#[test]
fn process_capabilities_ambient() {
    spec_test("process_capabilities_ambient", |t| {
        let all = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let v = caps_with(
            t,
            json!({"bounding": all, "permitted": all, "effective": all, "inheritable": ["CAP_NET_BIND_SERVICE"],
                   "ambient": ["CAP_NET_BIND_SERVICE"]}),
            json!({"uid": 1000, "gid": 1000}),
        );
        assert_eq!(cap_names(&v, "ambient"), sorted(&["CAP_NET_BIND_SERVICE"]), "{v}");
        assert_eq!(cap_names(&v, "effective"), sorted(&["CAP_NET_BIND_SERVICE"]), "{v}");
    });
}

#[test]
fn process_capabilities_none() {
    // config.md capabilities: with every set empty, no capability is kept.
    spec_test("process_capabilities_none", |t| {
        let v = caps_with(
            t,
            json!({"bounding": [], "permitted": [], "effective": [], "inheritable": [], "ambient": []}),
            json!({"uid": 0, "gid": 0}),
        );
        for set in ["bounding", "permitted", "effective", "inheritable", "ambient"] {
            assert_eq!(cap_names(&v, set), Vec::<String>::new(), "{set}: {v}");
        }
    });
}

#[test]
fn process_capability_unknown_is_not_fatal() {
    // config.md capabilities: "Any value which cannot be mapped to a relevant kernel interface, or cannot
    // be granted otherwise MUST be logged as a warning by the runtime. Runtimes SHOULD NOT fail if the
    // container configuration requests capabilities that cannot be granted".
    spec_test("process_capability_unknown_is_not_fatal", |t| {
        let set = json!(["CAP_KILL", "CAP_NO_SUCH_CAPABILITY"]);
        let v = caps_with(t, json!({"bounding": set, "permitted": set, "effective": set}), json!({"uid": 0, "gid": 0}));
        assert_eq!(cap_names(&v, "effective"), sorted(&["CAP_KILL"]), "{v}");
    });
}

#[test]
fn process_capability_not_grantable_is_not_fatal() {
    // config.md capabilities: "Runtimes SHOULD NOT fail if the container configuration requests
    // capabilities that cannot be granted, for example, if the runtime operates in a restricted
    // environment with a limited set of capabilities."
    spec_test("process_capability_not_grantable_is_not_fatal", |t| {
        let set = json!(["CAP_KILL", "CAP_SYS_TIME"]);
        let mut b = t.bundle();
        b.set("/process/capabilities", json!({"bounding": set, "permitted": set, "effective": set}));
        b.probe(&["caps"]);
        // The runtime itself runs without CAP_SYS_TIME, so it cannot grant it.
        let c = t.create_via(&b, |cmd| cmd.via(&["setpriv", "--bounding-set", "-sys_time"]));
        c.start();
        c.wait_success();
        let v = c.json();
        assert_eq!(cap_names(&v, "effective"), sorted(&["CAP_KILL"]), "{v}");
    });
}

#[test]
fn process_terminal_false_has_no_tty() {
    // config.md process.terminal: "specifies whether a terminal is attached to the process, defaults to
    // false."
    spec_test("process_terminal_false_has_no_tty", |t| {
        let mut b = t.bundle();
        b.remove("/process/terminal");
        let v = probe(t, &mut b, "tty");
        assert_eq!(
            (v["stdin"].as_bool(), v["stdout"].as_bool(), v["stderr"].as_bool()),
            (Some(false), Some(false), Some(false)),
            "{v}"
        );
    });
}

#[test]
fn process_stdio_is_the_runtimes() {
    // docs/clients.md §3: without a terminal, the runtime's fds 0/1/2 at create/exec are the container's stdio.
    spec_test("process_stdio_is_the_runtimes", |t| {
        let mut b = t.bundle();
        b.probe(&["fds"]);
        let c = t.start(&b);
        c.wait_success();
        let fds = c.json();
        assert_eq!(fds["0"], "/dev/null", "{fds}");
        assert_eq!(fds["1"], json!(c.stdout_path), "{fds}");
        assert_eq!(fds["2"], json!(c.stderr_path), "{fds}");
    });
}

#[test]
fn process_only_stdio_fds_open() {
    // runtime-linux.md: "By default, only the stdin, stdout and stderr file descriptors are kept open for
    // the application by the runtime." (the runtime is started with extra descriptors 5 and 7)
    spec_test("process_only_stdio_fds_open", |t| {
        let mut b = t.bundle();
        b.probe(&["fds"]);
        let c = t.create_via(&b, |cmd| cmd.sh_prefix("exec 5</etc/hostname 7</etc/passwd"));
        c.start();
        c.wait_success();
        let out = c.stdout();
        let fds: Value = serde_json::from_str(out.trim()).or_fail(format!("fds report: {out}"));
        let mut open: Vec<&String> = fds.as_object().or_fail("fds").keys().collect();
        open.sort();
        assert_eq!(open, ["0", "1", "2"], "{fds}");
    });
}

#[test]
fn process_preserve_fds_passes_descriptors() {
    // runc create --preserve-fds N: "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS
    // + N in total)"; docs/clients.md §3: fds 3 to 3+N-1 reach the container, every other one above 2 is
    // closed.
    spec_test("process_preserve_fds_passes_descriptors", |t| {
        let mut b = t.bundle();
        b.probe(&["fds"]);
        let passed = t.path("passed.txt");
        std::fs::write(&passed, "x").or_fail("write passed file");
        let prefix = format!("exec 3<{} 4</etc/passwd", passed.display());
        let c = t.create_via(&b, |cmd| cmd.args(&["--preserve-fds", "1"]).sh_prefix(&prefix));
        c.start();
        c.wait_success();
        let out = c.stdout();
        let fds: Value = serde_json::from_str(out.trim()).or_fail(format!("fds report: {out}"));
        assert_eq!(fds["3"], json!(passed), "{fds}");
        assert!(fds.get("4").is_none(), "fd 4 was not preserved but is open: {fds}");
    });
}

#[test]
fn process_scheduler_applied() {
    // config.md process.scheduler: "policy (string, REQUIRED) represents the scheduling policy", "nice
    // (int32, OPTIONAL) is the nice value for the process".
    spec_test("process_scheduler_applied", |t| {
        let mut b = t.bundle();
        b.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 5}));
        let v = probe(t, &mut b, "sched");
        assert_eq!(v["policy"], "SCHED_BATCH", "{v}");
        assert_eq!(v["nice"], 5, "{v}");
    });
}

#[test]
fn process_io_priority_applied() {
    // config.md process.ioPriority: "class (string, REQUIRED) specifies the I/O scheduling class",
    // "priority (int, REQUIRED) specifies the priority level within the class."
    spec_test("process_io_priority_applied", |t| {
        let mut b = t.bundle();
        b.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
        let v = probe(t, &mut b, "ioprio");
        assert_eq!(v, json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
    });
}

#[test]
fn personality_linux32() {
    // config-linux.md personality: "LINUX32 will set the uname system call to show a 32 bit CPU type,
    // such as i686."
    spec_test("personality_linux32", |t| {
        let mut b = t.bundle();
        b.set("/linux/personality", json!({"domain": "LINUX32"}));
        let v = probe(t, &mut b, "uts");
        assert_eq!(v["machine"], "i686", "{v}");
    });
}

#[test]
fn unknown_properties_are_ignored() {
    // config.md extensibility: "Runtimes MAY log unknown properties but MUST otherwise ignore them."
    spec_test("unknown_properties_are_ignored", |t| {
        let mut b = t.bundle();
        b.set("/org.example.unknown", json!({"nested": [1, 2, 3]}));
        b.set("/process/org.example.unknownProcessField", json!("x"));
        b.set("/linux/org.example.unknownLinuxField", json!(true));
        assert_eq!(probe(t, &mut b, "pid")["pid"], 1);
    });
}

#[test]
fn process_apparmor_profile_that_cannot_be_applied_fails_create() {
    // issue 16 item 31. config.md process.apparmorProfile "specifies the name of the AppArmor profile for
    // the process"; runtime.md: "If the runtime cannot apply a property as specified in the
    // configuration, it MUST generate an error". A profile that is not loaded, or a host without
    // AppArmor (this VM): runc and crun refuse to start the container unconfined.
    spec_test("process_apparmor_profile_that_cannot_be_applied_fails_create", |t| {
        let mut b = t.bundle();
        b.set("/process/apparmorProfile", json!("strata-test-profile"));
        let (id, out) = t.try_create(&b, &[]);
        if out.success() {
            t.cmd(&["start", &id]).run();
        }
        assert!(!out.success(), "create succeeded without applying the AppArmor profile: {out}");
        assert!(out.stderr.to_lowercase().contains("apparmor"), "the error does not say AppArmor: {out}");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn process_selinux_label_that_cannot_be_applied_fails_create() {
    // issue 16 item 31. config.md process.selinuxLabel on a host without SELinux (runc: "selinux label is
    // specified in config, but selinux is disabled or not supported"): refused, nothing left behind.
    spec_test("process_selinux_label_that_cannot_be_applied_fails_create", |t| {
        let mut b = t.bundle();
        b.set("/process/selinuxLabel", json!("system_u:system_r:strata_test_t:s0:c1,c2"));
        let (id, out) = t.try_create(&b, &[]);
        assert!(!out.success(), "create succeeded without applying the SELinux label: {out}");
        assert!(out.stderr.to_lowercase().contains("selinux"), "the error does not say SELinux: {out}");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn lsm_refusal_names_the_profile_or_label() {
    // issue 16 item 31: the refusal names the profile or label that could not be applied (runc names only
    // the LSM).
    spec_test("lsm_refusal_names_the_profile_or_label", |t| {
        for (field, value) in
            [("apparmorProfile", "strata-test-profile"), ("selinuxLabel", "system_u:system_r:strata_test_t:s0")]
        {
            let mut b = t.bundle();
            b.set(&format!("/process/{field}"), json!(value));
            let (_, out) = t.try_create(&b, &[]);
            out.failed();
            assert!(out.stderr.contains(value), "the {field} refusal does not name {value:?}: {out}");
        }
    });
}

#[test]
fn process_non_root_user_opens_its_stdio_by_path() {
    // issue 16 item 7. runc gives the stdio descriptors to the process user (fchown of stdio that is not
    // /dev/null) before dropping privileges, so a non-root process can reopen /dev/stdout and
    // /dev/stderr (/proc/self/fd/1, 2) even though the engine's files or pipes belong to root.
    spec_test("process_non_root_user_opens_its_stdio_by_path", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.sh("echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr");
        let c = t.start(&b);
        let exit = c.wait();
        assert_eq!(
            (exit, c.stdout().as_str(), c.stderr().as_str()),
            (Exit::Code(0), "to-stdout\n", "to-stderr\n"),
            "a uid 1000 process could not open its stdio by path"
        );
    });
}

#[test]
fn process_non_root_user_opens_its_stdio_pipe_by_path() {
    // issue 16 item 7, as podman (conmon) and containerd run it: stdio are pipes created by root.
    spec_test("process_non_root_user_opens_its_stdio_pipe_by_path", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.sh("echo to-stdout > /dev/stdout && echo through-pipe");
        b.write();
        let id = t.new_id();
        let (mut cmd, text) = t.cmd(&["run", "--bundle"]).arg(&b.dir).arg(&id).command();
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().or_fail(format!("spawn `{text}`"));
        // `run` waits for the container; its pipes close when the container and the runtime are gone.
        let out = child.wait_with_output().or_fail(format!("wait for `{text}`"));
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            (out.status.code(), stdout.as_ref()),
            (Some(0), "to-stdout\nthrough-pipe\n"),
            "`{text}`; stderr: {stderr:?}"
        );
    });
}

#[test]
fn process_missing_cwd_is_created() {
    // issue 16 item 11. runc and crun create a missing process.cwd (mkdir -p, mode 0755, by the runtime
    // as root before it changes user: owned 0:0) instead of failing, also on a read-only root.
    spec_test("process_missing_cwd_is_created", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.set("/process/cwd", json!("/srv/app/work"));
        b.sh("/bin/strata-probe cwd; /bin/strata-probe devices /srv/app /srv/app/work");
        let c = t.start(&b);
        let exit = c.wait();
        let out = c.stdout();
        assert_eq!(exit, Exit::Code(0), "stdout: {out:?}; stderr: {:?}", c.stderr());
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("\"/srv/app/work\""), "cwd; stdout: {out:?}");
        let stat: Value =
            serde_json::from_str(lines.next().unwrap_or_default()).or_fail(format!("stat report in {out:?}"));
        for dir in ["/srv/app", "/srv/app/work"] {
            let s = &stat[dir];
            assert_eq!(
                (s["type"].as_str(), s["mode"].as_u64(), s["uid"].as_u64(), s["gid"].as_u64()),
                (Some("dir"), Some(0o755), Some(0), Some(0)),
                "{dir}: {stat}"
            );
        }
    });
}

/// Field `n` (1-based, as proc(5) numbers them) of a `cat /proc/PID/stat` line.
fn stat_field(line: &str, n: usize) -> Option<i64> {
    let after = line.rsplit_once(')').map(|(_, r)| r)?;
    after.split_whitespace().nth(n - 3)?.parse().ok()
}

#[test]
fn process_scheduler_flag_reset_on_fork_accepted() {
    // issue 16 item 12. config.md process.scheduler flags: "SCHED_FLAG_RESET_ON_FORK" (spec name): the
    // process runs with the policy and nice value, its children are reset. sched(7): reset-on-fork
    // turns a real-time or deadline policy into SCHED_OTHER and a negative nice value into 0 in
    // children; SCHED_BATCH itself is inherited (real-time policies need an RT budget the container's
    // cgroup may not have, so the nice value shows the reset).
    spec_test("process_scheduler_flag_reset_on_fork_accepted", |t| {
        let mut b = t.bundle();
        b.set(
            "/process/scheduler",
            json!({"policy": "SCHED_BATCH", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
        );
        // `; true`: the shell would exec its last command in place, and the probe must be its child.
        b.sh("cat /proc/1/stat; /bin/strata-probe sched; true");
        let c = t.start(&b);
        let exit = c.wait();
        let out = c.stdout();
        assert_eq!(exit, Exit::Code(0), "stdout: {out:?}; stderr: {:?}", c.stderr());
        let first = out.lines().next().unwrap_or_default();
        assert_eq!(
            (stat_field(first, 41), stat_field(first, 19)),
            (Some(3), Some(-5)),
            "the process is not SCHED_BATCH (3) with nice -5: {first:?}"
        );
        let child = c.json();
        assert_eq!(
            (&child["policy"], &child["nice"]),
            (&json!("SCHED_BATCH"), &json!(0)),
            "its child was not reset: {out}"
        );
    });
}

#[test]
fn process_scheduler_flag_dl_overrun_accepted() {
    // issue 16 item 12. config.md process.scheduler flags: "SCHED_FLAG_DL_OVERRUN" (spec name) is a valid
    // flag; the kernel accepts it with any policy.
    spec_test("process_scheduler_flag_dl_overrun_accepted", |t| {
        let mut b = t.bundle();
        b.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "flags": ["SCHED_FLAG_DL_OVERRUN"]}));
        let v = probe(t, &mut b, "sched");
        assert_eq!(v["policy"], "SCHED_BATCH", "{v}");
    });
}

#[test]
fn process_additional_gids_duplicates_appear_once() {
    // issue 16 item 19. Docker lists the primary gid twice in additionalGids when the image's /etc/group
    // names the user in its own group and --group-add names that group too; runc de-duplicates the
    // supplementary groups (libcontainer/user GetAdditionalGroups), so Groups: shows each gid once.
    spec_test("process_additional_gids_duplicates_appear_once", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 5, 1000]}));
        b.sh("grep ^Groups: /proc/self/status");
        let c = t.start(&b);
        c.wait_success();
        let out = c.stdout();
        let groups: Vec<&str> = out.trim().trim_start_matches("Groups:").split_whitespace().collect();
        assert_eq!(groups, ["5", "1000"], "{out:?}");
    });
}

/// Runs `/run.sh` (written with `mode` and `contents`) with `run` and with create+start, and checks that
/// what the runtime (and the container's stderr) says names the path and the errno text.
fn exec_error_named(t: &Test, contents: &str, mode: u32, errno_text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mut b = t.bundle();
    let script = b.rootfs_file("/run.sh", contents);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(mode)).or_fail("chmod run.sh");
    b.args(&["/run.sh"]);
    b.write();
    let names = |what: &str, text: &str| {
        let lower = text.to_lowercase();
        assert!(
            lower.contains("/run.sh") && lower.contains(errno_text),
            "{what}: the error does not name /run.sh and {errno_text:?}: {text:?}"
        );
    };
    let id = t.new_id();
    let out = t.cmd(&["run", "--bundle"]).arg(&b.dir).arg(&id).run();
    assert!(!out.success(), "run succeeded: {out}");
    names("run", &out.stderr);

    let (id, created) = t.try_create(&b, &[]);
    let mut said = created.stderr.clone();
    if created.success() {
        let pid = t.cmd(&["state", &id]).run().json()["pid"].as_i64().unwrap_or(0) as i32;
        let started = t.cmd(&["start", &id]).run();
        if pid > 0 {
            strata_conformance::container::wait_exit(pid, &id);
        }
        said = format!("{said}{}{}", started.stderr, std::fs::read_to_string(&created.stderr_path).unwrap_or_default());
    }
    names("create + start (runtime and container stderr)", &said);
}

#[test]
fn process_not_executable_error_names_path_and_errno() {
    // issue 16 item 22 (a guard: main passes it already).
    // runc: "exec /run.sh: permission denied" -- run and create+start both say which
    // program could not be executed and why.
    spec_test("process_not_executable_error_names_path_and_errno", |t| {
        exec_error_named(t, "#!/bin/sh\necho never\n", 0o644, "permission denied");
    });
}

#[test]
fn process_missing_interpreter_error_names_path_and_errno() {
    // issue 16 item 22. A script whose interpreter is missing: execve fails with ENOENT; runc says
    // "exec /run.sh: no such file or directory".
    spec_test("process_missing_interpreter_error_names_path_and_errno", |t| {
        exec_error_named(t, "#!/no/such/interpreter\necho never\n", 0o755, "no such file or directory");
    });
}

#[test]
fn process_cwd_reachable_only_before_dropping_privileges() {
    // issue 16 item 24. runc and crun chdir into process.cwd before changing to the process user (and
    // again after, if that failed): a uid 1000 process can start in /root (0700, root's).
    spec_test("process_cwd_reachable_only_before_dropping_privileges", |t| {
        use std::os::unix::fs::PermissionsExt;
        let mut b = t.bundle();
        let root = b.rootfs().join("root");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).or_fail("chmod root");
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.set("/process/cwd", json!("/root"));
        assert_eq!(probe(t, &mut b, "cwd"), "/root");
    });
}

#[test]
fn process_cwd_reachable_only_by_the_process_user() {
    // issue 16 item 24 (a guard: main passes it already).
    // A cwd that only the process user may enter (0700, uid 1000) still works when the chdir moves
    // before the user change. (The second chdir runc makes after the change matters for directories the
    // runtime's root cannot enter at all, such as on a root-squashing NFS export: not reproducible here.)
    spec_test("process_cwd_reachable_only_by_the_process_user", |t| {
        use std::os::unix::fs::PermissionsExt;
        let mut b = t.bundle();
        let home = b.rootfs().join("home/user");
        std::fs::create_dir_all(&home).or_fail("create home/user");
        std::os::unix::fs::chown(&home, Some(1000), Some(1000)).or_fail("chown home/user");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).or_fail("chmod home/user");
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.set("/process/cwd", json!("/home/user"));
        assert_eq!(probe(t, &mut b, "cwd"), "/home/user");
    });
}

/// `create --preserve-fds 4` from a caller with only stdio open, then `start`, waiting at most 20 s for
/// it (a start blocked on a lock the container holds is stopped early: the container's init is killed
/// so that the runtime and the cleanup can go on, and the test fails naming what the init held).
/// Returns the container after its process exited, and its `fds` report.
fn preserve_fds_from_a_bare_caller(t: &Test) -> (Container<'_>, Value) {
    let mut b = t.bundle();
    b.probe(&["fds"]);
    let c = t.create_with(&b, &["--preserve-fds", "4"]);
    let (mut cmd, text) = c.cmd(&["start"]).command();
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut start = cmd.spawn().or_fail(format!("spawn `{text}`"));
    let began = std::time::Instant::now();
    let status = loop {
        if let Some(status) = start.try_wait().or_fail(format!("wait for `{text}`")) {
            break status;
        }
        if began.elapsed() > std::time::Duration::from_secs(20) {
            let held: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", c.pid))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| std::fs::read_link(e.path()).ok())
                        .map(|p| p.display().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let _gone_already =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid), nix::sys::signal::Signal::SIGKILL);
            let _reaped = start.wait();
            panic!("`{text}` had not returned after 20 s; the container's init held {held:?}; killed it");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(status.success(), "`{text}` failed: {status}");
    c.wait_success();
    let out = c.stdout();
    let fds: Value = serde_json::from_str(out.trim()).or_fail(format!("fds report: {out}"));
    (c, fds)
}

#[test]
fn process_preserve_fds_beyond_what_the_caller_has_open_starts() {
    // issue 16 item 6. `create --preserve-fds 4` when the caller has fewer descriptors open: `start`
    // returns, the process runs, `delete` works (runc and crun).
    spec_test("process_preserve_fds_beyond_what_the_caller_has_open_starts", |t| {
        let (c, _) = preserve_fds_from_a_bare_caller(t);
        c.delete().ok();
        t.cmd(&["state", &c.id]).run().failed();
    });
}

#[test]
fn process_preserve_fds_never_hands_over_the_runtimes_own() {
    // issue 16 item 6. Descriptors 3..6 were never open in the caller, so the container gets none of
    // them -- never the runtime's own (state lock, exec fifo, sockets). crun passes only what the caller
    // had; runc 1.1.5 hands over whatever it has open on those numbers.
    spec_test("process_preserve_fds_never_hands_over_the_runtimes_own", |t| {
        let (_, fds) = preserve_fds_from_a_bare_caller(t);
        let mut open: Vec<&String> = fds.as_object().or_fail("fds").keys().collect();
        open.sort();
        assert_eq!(open, ["0", "1", "2"], "descriptors the caller never had reached the container: {fds}");
    });
}

#[test]
fn exec_cwd_reachable_only_before_dropping_capabilities() {
    // issue 16 item 24. `exec --user 0` into a directory only uid 1000 may enter (0700), with a
    // capability set without CAP_DAC_OVERRIDE: runc and crun chdir while the runtime still has all its
    // capabilities, so the exec'd process starts there.
    spec_test("exec_cwd_reachable_only_before_dropping_capabilities", |t| {
        use std::os::unix::fs::PermissionsExt;
        let mut b = t.bundle();
        let home = b.rootfs().join("home/user");
        std::fs::create_dir_all(&home).or_fail("create home/user");
        std::os::unix::fs::chown(&home, Some(1000), Some(1000)).or_fail("chown home/user");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).or_fail("chmod home/user");
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        let out = t
            .cmd(&["exec", "--user", "0:0", "--cwd", "/home/user"])
            .arg(&c.id)
            .args(&["/bin/strata-probe", "cwd"])
            .run();
        assert_eq!(out.ok().json(), "/home/user", "{out}");
        c.kill("KILL").ok();
    });
}

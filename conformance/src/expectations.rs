//! Per-runtime expectations: tests of spec requirements that a runtime is known not to meet.
//!
//! A test listed here for the runtime under test is expected to fail on it ([`crate::spec_test`] then
//! reports the failure as expected, and fails if the test unexpectedly passes). Every entry is also
//! documented in `conformance/README.md`. Strata has no entries: it is held to every test.

use crate::runtime::RuntimeKind;

#[derive(Debug)]
pub struct Deviation {
    pub runtime: RuntimeKind,
    /// The test function's name.
    pub test: &'static str,
    /// What the runtime does instead of what the spec says.
    pub reason: &'static str,
}

pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "signals_clean_for_run",
        reason: "runc 1.1.5 passes its caller's blocked signal mask on to the container's process (SigBlk not empty)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "signals_clean_for_create_and_start",
        reason: "runc 1.1.5 passes the blocked signal mask of the runc create caller on to the container's init",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "signals_clean_for_exec",
        reason: "runc 1.1.5 passes its caller's blocked signal mask on to exec'd processes",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "signals_clean_for_hooks",
        reason: "runc 1.1.5 hooks keep signal 32 ignored when its caller had it ignored",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "device_path_conflict_fails",
        reason: "runc ignores EEXIST from mknod: a regular file at a device path is accepted and left in place",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_full_lifecycle_order",
        reason: "runc runs poststart hooks at the end of create, before startContainer hooks and the user program",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_poststart_after_user_process_executed",
        reason: "runc runs poststart hooks at the end of create, while the process is still runc init",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_state_on_stdin_poststart",
        reason: "runc runs poststart hooks during create, so their state says status \"created\"",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_poststart_failure_is_only_a_warning",
        reason: "runc runs poststart hooks during create, so a failing one fails create, not start",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_poststop_failure_is_only_a_warning",
        reason: "runc stops at the first failing poststop hook: the remaining poststop hooks do not run",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_start_container_failure_fails_start",
        reason: "runc start returns 0 when a startContainer hook fails (the hook runs in the container's init after start returned)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "mount_option_defaults",
        reason: "runc passes \"defaults\" to the filesystem as data; tmpfs rejects it with EINVAL",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "rootfs_propagation_shared",
        reason: "runc applies rootfsPropagation to the runtime's / before binding the rootfs and makes the rootfs parent private: the container's / is private",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "rootfs_propagation_slave",
        reason: "runc: the container's / is private whatever rootfsPropagation says (see rootfs_propagation_shared)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "rootfs_propagation_unbindable",
        reason: "runc: the container's / is private whatever rootfsPropagation says (see rootfs_propagation_shared)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "rootfs_propagation_slave_receives_host_mounts",
        reason: "runc: the container's / is private, so host mounts never reach it",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "new_time_namespace",
        reason: "runc 1.1.5 does not support the time namespace (\"namespace time does not exist\")",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "masked_and_readonly_paths_must_be_absolute",
        reason: "runc accepts relative maskedPaths and readonlyPaths",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "personality_linux32",
        reason: "runc 1.1.5 ignores linux.personality (added in runtime-spec 1.1)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_capability_not_grantable_is_not_fatal",
        reason: "runc fails create (\"unable to apply caps: operation not permitted\") when a capability is outside its own bounding set",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_io_priority_applied",
        reason: "runc 1.1.5 ignores process.ioPriority (added in runtime-spec 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_rlimit_duplicate_type_fails",
        reason: "runc accepts duplicate rlimit types (the last one wins)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_scheduler_applied",
        reason: "runc 1.1.5 ignores process.scheduler (added in runtime-spec 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_umask_unset_inherits_caller",
        reason: "runc sets umask 0022 when user.umask is unset instead of keeping the caller's",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "domainname_set",
        reason: "runc 1.1.5 ignores domainname (added in runtime-spec 1.1)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "console_symlink_in_image_cannot_redirect_the_pty",
        reason: "runc 1.1.5 binds the pty through the image's /dev/console symlink onto the /proc file it names (CVE-2025-52565, fixed in runc 1.2.8)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "dev_symlink_in_image_cannot_reach_host",
        reason: "runc 1.1.5 creates /dev/fd, /dev/stdin, /dev/ptmx... through the image's /dev symlink, in the host directory it names",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "masked_path_refuses_symlinked_dev_null",
        reason: "runc 1.1.5 masks paths by binding /dev/null by name, following a symlink planted there (CVE-2025-31133, fixed in runc 1.2.8)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "masked_path_refuses_other_device_as_dev_null",
        reason: "runc 1.1.5 masks paths with whatever /dev/null is, here the zero device (CVE-2025-31133, fixed in runc 1.2.8)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "masked_path_dev_null_race_never_redirected",
        reason: "runc 1.1.5 masks paths by binding /dev/null by name: a symlink swapped in meanwhile is followed (CVE-2025-31133, fixed in runc 1.2.8)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "runtime_binary_unreachable_from_created_container",
        reason: "runc 1.1.5 protects its binary with a read-only bind mount: a container can still open the host binary through /proc/PID/exe (writing fails with EROFS)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "runtime_binary_unreachable_with_cap_sys_ptrace",
        reason: "runc 1.1.5 protects its binary with a read-only bind mount: a container can still open the host binary through /proc/PID/exe (writing fails with EROFS)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "sysctl_not_written_through_overmount",
        reason: "runc 1.1.5 writes sysctls by path under the container's /proc, into whatever is mounted there (CVE-2025-52881, fixed in runc 1.2.8)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "tmpfs_over_proc_sys_refused",
        reason: "runc 1.1.5 accepts a tmpfs mounted over /proc/sys (its /proc check covers bind mounts only)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "bad_configs_refused_leaving_nothing_behind",
        reason: "runc 1.1.5 accepts 22 of the corpus's malformed configs (unknown ociVersion, relative maskedPaths, duplicate rlimits, NUL bytes in args and hostname, a negative hook timeout, trailing garbage, duplicate keys, ...)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "bad_config_errors_name_the_field",
        reason: "runc's errors do not name the offending JSON field (and it accepts many of the configs)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "parallel_lifecycle_commands_on_one_id_keep_state_whole",
        reason: "a runc create racing a delete of the same id fails half-way (\"no such file or directory\", chown errors): its state directory is removed under it",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "create_in_progress_is_not_healthy_and_delete_waits",
        reason: "runc's state does not show a container whose create is still running (there is no \"creating\" status)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "create_with_init_killed_at_every_setup_step_is_cleaned_up",
        reason: "a runc create whose init is killed while it mounts fails but leaves its state directory behind",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "tmpfs_tmpcopyup_keeps_extended_attributes",
        reason: "runc 1.1.5 copies a tmpcopyup tmpfs's contents with mrunalp/fileutils CopyDirectory, which keeps owners, modes and symlinks but no extended attributes (crun copies them)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_scheduler_flag_reset_on_fork_accepted",
        reason: "runc 1.1.5 ignores process.scheduler (added in runtime-spec 1.2): the process keeps SCHED_OTHER",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_scheduler_flag_dl_overrun_accepted",
        reason: "runc 1.1.5 ignores process.scheduler (added in runtime-spec 1.2): the process keeps SCHED_OTHER",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "sysctl_kernel_domainname_conflicting_with_domainname_refused",
        reason: "runc 1.1.5 allows kernel.domainname in a new UTS namespace whatever the domainname field says (it predates the field; crun refuses a conflicting value)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "process_preserve_fds_never_hands_over_the_runtimes_own",
        reason: "runc create --preserve-fds N passes descriptors 3..3+N-1 whatever they are in runc itself: a caller with fewer open hands the container runc's own (a /sys/fs/cgroup directory, its epoll descriptor, a pipe)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "hooks_failure_error_names_the_hook_kind",
        reason: "runc's hook errors name the index only (\"error running hook #0: error running hook: exit status 3, stdout: , stderr: ...\"), not the hook kind",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "seccomp_notify_agent_never_sees_the_runtimes_getcwd_without_no_new_privileges",
        reason: "without noNewPrivileges runc installs the seccomp filter before its working-directory check (the CVE-2024-21626 fix Debian backported): the agent is notified of runc's getcwd, and without an answer create fails \"failed to verify if current working directory is safe: function not implemented\"",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "lsm_refusal_names_the_profile_or_label",
        reason: "runc refuses an AppArmor profile or SELinux label it cannot apply, but names only the LSM (\"apparmor failed to apply profile: write /proc/self/attr/exec: invalid argument\", \"selinux label is specified in config, but selinux is disabled or not supported\")",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "idmapped_bind_mount_shows_the_callers_file_as_roots",
        reason: "runc 1.1.5 ignores mounts[].uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts came with runc 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "idmapped_bind_mount_shows_roots_file_as_the_users",
        reason: "runc 1.1.5 ignores mounts[].uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts came with runc 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "idmap_option_takes_the_containers_user_namespace_mapping",
        reason: "runc 1.1.5 ignores mounts[].uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts came with runc 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "idmap_of_a_non_bind_mount_is_refused",
        reason: "runc 1.1.5 ignores mounts[].uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts came with runc 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "idmap_without_mappings_or_user_namespace_is_refused",
        reason: "runc 1.1.5 ignores mounts[].uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts came with runc 1.2)",
    },
    Deviation {
        runtime: RuntimeKind::Runc,
        test: "idmap_on_a_filesystem_without_support_says_so",
        reason: "runc 1.1.5 ignores mounts[].uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts came with runc 1.2)",
    },
];

/// Why `test` is expected to fail on `kind`, if it is.
pub fn deviation(kind: RuntimeKind, test: &str) -> Option<&'static str> {
    DEVIATIONS.iter().find(|d| d.runtime == kind && d.test == test).map(|d| d.reason)
}

#[cfg(test)]
mod tests {
    use super::DEVIATIONS;

    /// Every listed test exists as `fn <name>()` in tests/*.rs, once per runtime.
    #[test]
    fn deviations_name_existing_tests() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut sources = String::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            sources.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
        for (i, d) in DEVIATIONS.iter().enumerate() {
            assert!(sources.contains(&format!("fn {}()", d.test)), "no test named {}", d.test);
            assert!(
                sources.contains(&format!("spec_test(\"{}\"", d.test)),
                "{} does not run through spec_test",
                d.test
            );
            let dup = DEVIATIONS[..i].iter().any(|o| o.test == d.test && o.runtime == d.runtime);
            assert!(!dup, "{} listed twice", d.test);
        }
    }

    /// The README documents every deviation (by test name).
    #[test]
    fn deviations_documented_in_readme() {
        let readme =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
        for d in DEVIATIONS {
            assert!(readme.contains(&format!("`{}`", d.test)), "README.md does not mention `{}`", d.test);
        }
    }
}

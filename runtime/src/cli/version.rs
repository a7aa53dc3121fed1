//! `strata --version`: what runc prints (version, commit, spec, toolchain, libseccomp), for this build.

use crate::container::info::STATE_OCI_VERSION;

/// The commit the binary was built from: hack/install passes it (`git describe`), a plain
/// `cargo build` does not know it.
const COMMIT: Option<&str> = option_env!("STRATA_COMMIT");

/// What this build can do, in the words of `strata features`; what it cannot do is said too, so
/// a bug report shows both.
const FEATURES: &str = "seccomp (built in, no libseccomp), apparmor, selinux, cgroup v1, cgroup v2, \
                        hooks; not supported: systemd cgroup driver, checkpoint/restore, Intel RDT";

pub fn text() -> String {
    format!(
        "strata version {}\ncommit: {}\nspec: {STATE_OCI_VERSION}\nrustc: {}\nfeatures: {FEATURES}\n",
        env!("CARGO_PKG_VERSION"),
        COMMIT.filter(|c| !c.is_empty()).unwrap_or("unknown"),
        env!("STRATA_RUSTC_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn says_what_runc_says() {
        let text = super::text();
        let keys: Vec<_> = text.lines().filter_map(|l| l.split_once(": ").map(|(k, _)| k)).collect();
        assert_eq!(keys, ["commit", "spec", "rustc", "features"]);
        assert!(text.starts_with(concat!("strata version ", env!("CARGO_PKG_VERSION"), "\n")), "{text}");
        assert!(text.contains("\nspec: 1.2.1\n") && text.contains("\nrustc: rustc 1."), "{text}");
    }
}

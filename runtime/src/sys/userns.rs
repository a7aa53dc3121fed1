//! Whether this process runs in a user namespace other than the initial one (where an engine such
//! as rootless podman runs the runtime as its uid 0): mknod and some filesystems are refused there.

/// A `uid_map` other than the initial namespace's identity map of every id.
pub fn is_partial_map(uid_map: &str) -> bool {
    uid_map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// Read from /proc/self/uid_map; false when it cannot be read (no procfs: nothing to go by).
pub fn running_in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| is_partial_map(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_map_only() {
        assert!(!is_partial_map("         0          0 4294967295\n"));
        assert!(is_partial_map("         0       1000          1\n"));
        assert!(is_partial_map("0 0 4294967294\n"));
    }
}

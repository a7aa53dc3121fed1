#!/usr/bin/env bats
# podman 4.3 with cgroup_manager = "systemd" driving strata: each container is a transient scope
# libpod-<id>.scope in machine.slice, with its limits in systemd and in the cgroup files, on cgroup v2
# or v1. Needs systemd as init: hack/test-systemd runs it in its guests.

load helpers

PODMAN_DIR=${STRATA_CLIENTS_WORK:-/nonexistent}/podman-systemd
PODMAN=(env "CONTAINERS_CONF=$PODMAN_DIR/containers.conf" podman --root "$PODMAN_DIR/storage"
	--runroot "$PODMAN_DIR/runroot" --storage-driver overlay --runtime "${STRATA_BIN:-strata}")
IMAGE=localhost/busybox:latest

pm() { "${PODMAN[@]}" "$@"; }

setup_file() {
	require_suite_env
	[ -S /run/systemd/private ] || fail "systemd is not running: run hack/test-systemd"
	podman_setup "$PODMAN_DIR" systemd
}

teardown_file() {
	podman_teardown "$PODMAN_DIR" 60
}

unit_prop() { # unit_prop UNIT PROPERTY
	systemctl show --no-pager --value --property="$2" "$1"
}

# The container's cgroup directory in the memory hierarchy (v1) or the unified one.
cgroup_dir() { # cgroup_dir UNIT
	local cg
	cg=$(unit_prop "$1" ControlGroup)
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "/sys/fs/cgroup$cg"; else echo "/sys/fs/cgroup/memory$cg"; fi
}

@test "podman --cgroup-manager systemd: a container with limits is a transient scope; stats, update, stop, rm" {
	local id unit dir mem_prop mem_file
	id=$(pm run -d --name limited --memory 64m --pids-limit 33 "$IMAGE" sleep 1000)
	unit=libpod-$id.scope
	assert_eq "$(unit_prop "$unit" ActiveState)" active "$unit"
	assert_eq "$(unit_prop "$unit" Slice)" machine.slice "Slice of $unit"
	assert_eq "$(unit_prop "$unit" Delegate)" yes "Delegate of $unit"
	dir=$(cgroup_dir "$unit")
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		mem_prop=MemoryMax mem_file=memory.max
	else
		mem_prop=MemoryLimit mem_file=memory.limit_in_bytes
	fi
	assert_eq "$(unit_prop "$unit" "$mem_prop")" 67108864 "$mem_prop"
	assert_eq "$(cat "$dir/$mem_file")" 67108864 "$dir/$mem_file"
	assert_eq "$(unit_prop "$unit" TasksMax)" 33 TasksMax
	grep -qx "$(pm inspect --format '{{.State.Pid}}' limited)" "$dir/cgroup.procs" ||
		fail "the init is not in $dir"

	run pm stats --no-stream --format '{{.MemUsage}}' limited
	assert_eq "$status" 0 "podman stats: $output"
	assert_contains "$output" "67.11MB" # 64 MiB, in podman's decimal units

	pm update --memory 128m limited
	assert_eq "$(unit_prop "$unit" "$mem_prop")" 134217728 "$mem_prop after update"
	assert_eq "$(cat "$dir/$mem_file")" 134217728 "$dir/$mem_file after update"

	pm stop -t 1 limited >/dev/null
	pm rm limited >/dev/null
	assert_eq "$(unit_prop "$unit" LoadState)" not-found "$unit after rm"
	[ ! -e "$dir" ] || fail "$dir is left after rm"
	assert_no_strata_state /run/strata "$id"
}

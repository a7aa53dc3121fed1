#!/usr/bin/env bats
# containerd 1.6's CRI plugin with SystemdCgroup = true (the kubelet's cgroupDriver: systemd) driving strata:
# the README's strata handler with the systemd driver, a private instance (root, state, socket, runc root),
# pods on the host network (no CNI needed). Each pod gets its slice and each container a transient scope
# cri-containerd-<id>.scope in it, with its limits in systemd and in the cgroup files. Needs systemd as
# init: hack/test-systemd runs it in its guests.

load helpers

CRI_DIR=${STRATA_CLIENTS_WORK:-/nonexistent}/cri-systemd
CRI_SOCK=$CRI_DIR/containerd.sock
# shellcheck disable=SC2034 # read by stop_containerd (helpers.bash)
STRATA_ROOT=$CRI_DIR/runc-root/k8s.io
IMAGE=localhost/busybox:latest
PAUSE_IMAGE=localhost/pause:strata-test
CLIENT=(/usr/bin/python3 "$BATS_TEST_DIRNAME/cri-client.py" --address "$CRI_SOCK")

cri() { "${CLIENT[@]}" "$@"; }
containerd_answers() { cri version >/dev/null 2>&1; }
gone() { [ ! -e "/proc/$1" ]; }
unit_prop() { systemctl show --no-pager --value --property="$2" "$1"; }

setup_file() {
	require_suite_env
	[ -S /run/systemd/private ] || fail "systemd is not running: run hack/test-systemd"
	mkdir -p "$CRI_DIR/logs"
	cat >"$CRI_DIR/config.toml" <<-EOF
		version = 2
		root = "$CRI_DIR/root"
		state = "$CRI_DIR/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

		[grpc]
		  address = "$CRI_SOCK"

		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$PAUSE_IMAGE"

		[plugins."io.containerd.grpc.v1.cri".containerd]
		  default_runtime_name = "runc"

		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		  runtime_type = "io.containerd.runc.v2"

		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strata]
		  runtime_type = "io.containerd.runc.v2"

		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strata.options]
		  BinaryName = "$STRATA_BIN"
		  Root = "$CRI_DIR/runc-root"
		  SystemdCgroup = true
	EOF
	start_service "$CRI_DIR/containerd.log" containerd --config "$CRI_DIR/config.toml"
	echo "$SERVICE_PID" >"$CRI_DIR/containerd.pid"
	wait_for 300 containerd_answers || fail "containerd did not answer on $CRI_SOCK: $(tail -5 "$CRI_DIR/containerd.log")"
	local ctr=(ctr --address "$CRI_SOCK" --namespace k8s.io)
	"${ctr[@]}" images import "$STRATA_CLIENTS_WORK/busybox.oci.tar" >/dev/null
	"${ctr[@]}" images import "$STRATA_CLIENTS_WORK/pause.oci.tar" >/dev/null
}

teardown_file() {
	local rc=0
	cri rmpods >/dev/null || rc=1
	stop_containerd "$CRI_DIR" 300 || rc=1
	rm -rf "$CRI_DIR" || rc=1
	return "$rc"
}

@test "CRI with SystemdCgroup = true: pod slice, container scope with limits; stats, update, stop, remove" {
	local slice=kubepods-besteffort-podsd1.slice pod_file=$BATS_TEST_TMPDIR/pod.json file=$BATS_TEST_TMPDIR/c.json
	local pod id unit cg dir mem_prop mem_file
	# As the kubelet writes it with cgroupDriver: systemd (host network: no hostname of its own); containerd
	# turns it into "<slice>:cri-containerd:<id>".
	jq -n --arg logs "$CRI_DIR/logs/sd1" --arg cg "/kubepods.slice/kubepods-besteffort.slice/$slice" '{
		metadata: {name: "sd1", uid: "uid-sd1", namespace: "strata-test"}, log_directory: $logs,
		linux: {cgroup_parent: $cg, security_context: {namespace_options: {network: "NODE", pid: "CONTAINER", ipc: "POD"}}}}' \
		>"$pod_file"
	pod=$(cri runp --runtime strata "$pod_file")
	assert_eq "$(unit_prop "cri-containerd-$pod.scope" Slice)" "$slice" "the sandbox's slice"

	jq -n --arg image "$IMAGE" '{metadata: {name: "app"}, image: {image: $image}, command: ["sleep", "1000"],
		log_path: "app.log", linux: {resources: {memory_limit_in_bytes: 67108864},
		security_context: {namespace_options: {network: "NODE", pid: "CONTAINER", ipc: "POD"}}}}' >"$file"
	id=$(cri create "$pod" "$file" "$pod_file")
	cri start "$id"
	unit=cri-containerd-$id.scope
	assert_eq "$(unit_prop "$unit" ActiveState)" active "$unit"
	assert_eq "$(unit_prop "$unit" Slice)" "$slice" "Slice of $unit"
	assert_eq "$(unit_prop "$unit" Delegate)" yes "Delegate of $unit"
	cg=$(unit_prop "$unit" ControlGroup)
	assert_eq "$cg" "/kubepods.slice/kubepods-besteffort.slice/$slice/$unit" "ControlGroup of $unit"
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		mem_prop=MemoryMax mem_file=memory.max dir=/sys/fs/cgroup$cg
	else
		mem_prop=MemoryLimit mem_file=memory.limit_in_bytes dir=/sys/fs/cgroup/memory$cg
	fi
	assert_eq "$(unit_prop "$unit" "$mem_prop")" 67108864 "$mem_prop"
	assert_eq "$(cat "$dir/$mem_file")" 67108864 "$dir/$mem_file"

	run cri stats "$id"
	assert_eq "$status" 0 "ContainerStats: $output"
	[ "$(jq .memory.working_set_bytes.value <<<"$output")" -gt 0 ] || fail "no working set: $output"

	echo '{"memory_limit_in_bytes": 134217728}' >"$BATS_TEST_TMPDIR/resources.json"
	cri update "$id" "$BATS_TEST_TMPDIR/resources.json"
	assert_eq "$(unit_prop "$unit" "$mem_prop")" 134217728 "$mem_prop after UpdateContainerResources"
	assert_eq "$(cat "$dir/$mem_file")" 134217728 "$dir/$mem_file after UpdateContainerResources"

	cri stop --timeout 1 "$id" >/dev/null
	cri rm "$id" >/dev/null
	assert_eq "$(unit_prop "$unit" LoadState)" not-found "$unit after RemoveContainer"
	[ ! -e "$dir" ] || fail "$dir is left after RemoveContainer"
	cri stopp "$pod" >/dev/null
	cri rmp "$pod" >/dev/null
	assert_eq "$(unit_prop "cri-containerd-$pod.scope" LoadState)" not-found "the sandbox's unit after RemovePodSandbox"
}

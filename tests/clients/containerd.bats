#!/usr/bin/env bats
# containerd 1.6 (ctr, runc v2 shim) driving strata, on a private containerd instance (own config, root,
# state, socket; CRI disabled). Strata is chosen per container with `ctr run --runc-binary` (the shim's
# BinaryName option), or as the `runc` that the opt plugin's bin directory puts first in the shims' PATH.
# A BinaryName in config.toml is read by the CRI plugin only, never for ctr (containerd#4618, #4727), so
# that way is not tested here. Run through hack/test-clients.

load helpers

CTD_DIR=${STRATA_CLIENTS_WORK:-/nonexistent}/containerd
CTD_SOCK=$CTD_DIR/containerd.sock
NS=strata-clients
RUNC_ROOT=$CTD_DIR/runc-root # ctr --runc-root: the shim passes --root $RUNC_ROOT/$NS to the runtime
STRATA_ROOT=$RUNC_ROOT/$NS
IMAGE=localhost/busybox:latest
CTR=(ctr --address "$CTD_SOCK" --namespace "$NS")

c() { "${CTR[@]}" "$@"; }
# ctr tasks exec -d leaves its fifos behind (nothing waits to remove them): keep them in the work directory
c_exec_detached() { c tasks exec -d --fifo-dir "$CTD_DIR/fifo" "$@"; }
# ctr run with strata as the shim's runc binary
c_run() { c run --runc-binary "$STRATA_BIN" --runc-root "$RUNC_ROOT" "$@"; }

containerd_answers() { c version >/dev/null 2>&1; }

setup_file() {
	require_suite_env
	require_cgroup_v1
	mkdir -p "$CTD_DIR"/{root,state,opt/bin}
	# The opt plugin puts opt/bin first in the PATH of the daemon and its shims: without a BinaryName the runc
	# v2 shim runs the `runc` found there.
	ln -s "$STRATA_BIN" "$CTD_DIR/opt/bin/runc"
	cat >"$CTD_DIR/config.toml" <<-EOF
		version = 2
		root = "$CTD_DIR/root"
		state = "$CTD_DIR/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
		  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.zfs"]
		[grpc]
		  address = "$CTD_SOCK"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$CTD_DIR/opt"
	EOF
	start_service "$CTD_DIR/containerd.log" containerd --config "$CTD_DIR/config.toml"
	echo "$SERVICE_PID" >"$CTD_DIR/containerd.pid"
	wait_for 100 containerd_answers || fail "containerd did not answer on $CTD_SOCK: $(tail -5 "$CTD_DIR/containerd.log")"
	c images import "$STRATA_CLIENTS_WORK/busybox.oci.tar" >/dev/null
}

# bats 1.8 runs teardown functions without errexit: they count their failures and return them.
teardown_file() {
	local id pid d m rc=0
	for id in $(timeout 20 "${CTR[@]}" containers ls -q); do
		remove_container "$id" || rc=1
	done
	pid=$(cat "$CTD_DIR/containerd.pid")
	kill -TERM "$pid"
	# whatever is left running or stored here is for hack/test-clients to remove (its cleanup)
	wait_for 100 gone "$pid" || { fail "containerd ($pid) did not stop"; return 1; }
	[ -z "$(ls "$STRATA_ROOT" 2>/dev/null)" ] || { fail "strata state left in $STRATA_ROOT: $(ls "$STRATA_ROOT")"; return 1; }
	# the cgroup parent that cgroupsPath /$NS/<id> made
	for d in /sys/fs/cgroup/*/"$NS"; do
		[ ! -d "$d" ] || rmdir "$d" || rc=1
	done
	for m in $(findmnt -rn -o TARGET | grep -F "$CTD_DIR/" | sort -r); do
		umount "$m" || rc=1
	done
	rm -rf "$CTD_DIR" || rc=1
	return "$rc"
}

gone() { [ ! -e "/proc/$1" ]; }

# remove_container ID: its task (killed if running) and the container. Bounded: a broken runtime can make
# the shim wait forever (a task that is never thawed cannot die).
remove_container() {
	timeout 20 "${CTR[@]}" tasks delete --force "$1" >/dev/null 2>&1 || true # fails when there is no task
	timeout 20 "${CTR[@]}" containers rm "$1" >/dev/null
}

# Every test: whatever containers it left are removed, and strata must leave no state and no cgroup for them,
# nor state for any other container of the test (--rm ones; each leftover is reported once).
teardown() {
	local ids id rc=0 reported=$CTD_DIR/reported-state
	ids=$(timeout 20 "${CTR[@]}" containers ls -q) || rc=1
	for id in $ids; do
		remove_container "$id" || rc=1
	done
	for id in $ids; do
		assert_no_strata_state "$STRATA_ROOT" "$id" || rc=1
		assert_no_cgroup "/$NS/$id" || rc=1
	done
	touch "$reported"
	for id in "$STRATA_ROOT"/*; do
		[ -e "$id" ] || continue
		id=${id##*/}
		! grep -qxF "$id" "$reported" || continue
		echo "$id" >>"$reported"
		fail "strata state left behind: $STRATA_ROOT/$id" || rc=1
	done
	return "$rc"
}

task_field() { # task_field ID pid|status: from `ctr task ls`
	c tasks ls | awk -v id="$1" -v f="$2" '$1 == id { print (f == "pid" ? $2 : $3) }'
}

task_status_is() { [ "$(task_field "$1" status)" = "$2" ]; }

file_contains() { [[ $(cat "$1" 2>/dev/null) == *"$2"* ]]; }

assert_removed() { # assert_removed ID
	if c containers info "$1" >/dev/null 2>&1; then fail "containerd still has container $1"; fi
	assert_no_strata_state "$STRATA_ROOT" "$1"
	assert_no_cgroup "/$NS/$1"
}

@test "ctr run --rm --runc-binary: output, stdin and exit status pass through strata; nothing is left" {
	run c_run --rm "$IMAGE" once sh -c 'echo hello from strata; echo to stderr >&2; exit 3'
	assert_eq "$status" 3 "ctr's exit status"
	assert_contains "$output" "hello from strata"
	assert_contains "$output" "to stderr"
	assert_removed once

	run c_run --rm "$IMAGE" once-stdin sh -c 'read line; echo "read: $line"' <<<"piped in"
	assert_eq "$status" 0
	assert_eq "$output" "read: piped in"
}

@test "ctr run -d: strata runs the task, containerd and strata agree on its pid" {
	c_run -d "$IMAGE" detached sleep 1000
	assert_eq "$(task_field detached status)" RUNNING
	assert_eq "$(strata_status "$STRATA_ROOT" detached)" running "strata's status"
	assert_eq "$("$STRATA_BIN" --root "$STRATA_ROOT" state detached | jq .pid)" "$(task_field detached pid)" "init pid"
}

@test "ctr task exec: output and exit status reach the user" {
	c_run -d "$IMAGE" execd sleep 1000
	run c tasks exec --exec-id e1 execd sh -c 'echo from exec; tr "\0" " " </proc/1/cmdline'
	assert_eq "$status" 0
	assert_contains "$output" "from exec"
	assert_contains "$output" "sleep 1000" # the exec process is in the task's pid namespace

	run c tasks exec --exec-id e2 execd sh -c 'exit 7'
	assert_eq "$status" 7 "exec exit status"
	assert_eq "$(task_field execd status)" RUNNING
}

@test "ctr task exec -t: the process gets a terminal of the client's size" {
	c_run -d "$IMAGE" term sleep 1000
	tty_run 100 30 "${CTR[@]}" tasks exec -t --exec-id t1 term sh -c "$(tty_probe_script '30 100')"
	assert_eq "$status" 5 "exit status through the terminal session"
	assert_contains "$output" "size=30 100"
	assert_contains "$output" "/dev/pts/"
	assert_contains "$output" "stdin-is-a-tty"
}

@test "ctr run -t: the task's init gets a terminal of the client's size" {
	tty_run 90 20 "${CTR[@]}" run --runc-binary "$STRATA_BIN" --runc-root "$RUNC_ROOT" -t --rm "$IMAGE" term-run \
		sh -c "$(tty_probe_script '20 90')"
	assert_eq "$status" 5 "exit status through the terminal session"
	assert_contains "$output" "size=20 90"
	assert_contains "$output" "/dev/pts/0"
	assert_contains "$output" "stdin-is-a-tty"
	assert_removed term-run
}

@test "containerd started as a service (SIGPIPE, HUP ignored): tasks and exec'd processes get a clean signal state" {
	run c_run --rm "$IMAGE" signals "${SHOW_SIGNALS[@]}"
	assert_eq "$status" 0 "ctr run: $output"
	assert_clean_signals "$output"
	assert_removed signals

	c_run -d "$IMAGE" signals-exec sleep 1000
	run c tasks exec --exec-id s1 signals-exec "${SHOW_SIGNALS[@]}"
	assert_eq "$status" 0 "ctr task exec: $output"
	assert_clean_signals "$output"
}

@test "ctr task kill: signals reach the task's init; SIGKILL stops it with 137" {
	log=$BATS_TEST_TMPDIR/killee.log
	c_run -d --log-uri "file://$log" "$IMAGE" killee \
		sh -c 'trap "echo got USR1" USR1; echo ready; while :; do sleep 1000 & wait; done'
	wait_for 100 file_contains "$log" ready
	c tasks kill -s SIGUSR1 killee
	wait_for 100 file_contains "$log" "got USR1"
	assert_eq "$(task_field killee status)" RUNNING

	c tasks kill -s SIGKILL killee
	wait_for 100 task_status_is killee STOPPED
	assert_eq "$(strata_status "$STRATA_ROOT" killee)" stopped "strata's status"
	run c tasks delete killee
	assert_eq "$status" 0 "ctr task delete: $output"
	assert_contains "$output" "exit code 137"
}

@test "ctr task ps: the task's processes, exec'd ones included" {
	c_run -d "$IMAGE" psd sleep 1000
	c_exec_detached --exec-id e1 psd sleep 999
	run c tasks ps psd
	assert_eq "$status" 0 "ctr task ps: $output"
	pids=$(awk 'NR > 1 { print $1 }' <<<"$output")
	assert_eq "$(wc -w <<<"$pids")" 2 "number of processes in: $output"
	assert_contains "$pids" "$(task_field psd pid)"
	for pid in $pids; do
		cmdlines+="$(tr '\0' ' ' <"/proc/$pid/cmdline");"
	done
	assert_contains "$cmdlines" "sleep 999"
}

@test "ctr task pause/resume: the task is frozen, then runs on" {
	c_run -d "$IMAGE" pausee sh -c "$COUNTER_SCRIPT"
	pid=$(task_field pausee pid)
	wait_for 100 counter_moved_from "$pid" ""

	c tasks pause pausee
	assert_eq "$(task_field pausee status)" PAUSED "containerd's status"
	assert_eq "$(strata_status "$STRATA_ROOT" pausee)" paused "strata's status"
	frozen "$pid" || fail "the freezer cgroup of $pid is not FROZEN"
	before=$(counter "$pid")
	sleep 0.5 # a running counter moves every 20 ms
	assert_eq "$(counter "$pid")" "$before" "the counter while paused"

	c tasks resume pausee
	assert_eq "$(task_field pausee status)" RUNNING "containerd's status"
	assert_eq "$(strata_status "$STRATA_ROOT" pausee)" running "strata's status"
	if frozen "$pid"; then fail "still FROZEN after resume"; fi
	wait_for 100 counter_moved_from "$pid" "$before" || fail "the counter did not move after resume"
}

@test "ctr task metrics: memory limit, usage and pids from the cgroups strata made" {
	c_run -d --memory-limit 67108864 "$IMAGE" metered sleep 1000
	c_exec_detached --exec-id e1 metered sleep 999
	run c tasks metrics --format json metered
	assert_eq "$status" 0 "ctr task metrics: $output"
	assert_eq "$(jq .memory.usage.limit <<<"$output")" 67108864 "memory limit"
	assert_eq "$(jq .pids.current <<<"$output")" 2 "pids (init and the exec'd sleep)"
	[ "$(jq .memory.usage.usage <<<"$output")" -gt 0 ] || fail "no memory usage: $output"

	run c tasks metrics metered
	[[ $output =~ memory.limit_in_bytes\ +67108864 ]] || fail "table without the memory limit: $output"
}

@test "ctr task delete: the exit status is reported, strata's state, cgroups and mounts are removed" {
	c_run -d "$IMAGE" deletee sh -c 'trap "exit 4" TERM; sleep 1000 & wait'
	pid=$(task_field deletee pid)
	c tasks kill deletee # SIGTERM
	wait_for 100 task_status_is deletee STOPPED
	run c tasks delete deletee
	assert_eq "$status" 0 "ctr task delete: $output"
	assert_contains "$output" "exit code 4"
	gone "$pid" || fail "the task's init ($pid) still exists"
	assert_no_strata_state "$STRATA_ROOT" deletee
	assert_no_cgroup "/$NS/deletee"
	if findmnt -rn -o TARGET | grep -q "/$NS/deletee/rootfs"; then fail "the task's rootfs is still mounted"; fi
	c containers rm deletee
	assert_removed deletee
}

@test "the runc in containerd's opt bin directory is strata: ctr run without --runc-binary" {
	run c run --runc-root "$RUNC_ROOT" --rm "$IMAGE" opt-once sh -c 'echo hello via opt/bin/runc; exit 6'
	assert_eq "$status" 6 "ctr's exit status"
	assert_contains "$output" "hello via opt/bin/runc"
	assert_removed opt-once

	c run --runc-root "$RUNC_ROOT" -d "$IMAGE" opt-detached sleep 1000
	# runc's state would not be strata's: strata reading it proves which runtime made the container
	assert_eq "$(strata_status "$STRATA_ROOT" opt-detached)" running "strata's status"
}

@test "ctr run of a missing executable: strata's error reaches the user, nothing is left" {
	run c_run --rm "$IMAGE" noexec /nonexistent/cmd
	[ "$status" -ne 0 ] || fail "ctr run succeeded: $output"
	assert_contains "$output" "OCI runtime create failed: unable to start container process: exec: \"/nonexistent/cmd\""
	assert_removed noexec
}

@test "ctr run with a bind mount whose source is missing: strata's message reaches the user, nothing is left" {
	run c_run --rm --mount "type=bind,src=$BATS_TEST_TMPDIR/missing,dst=/x,options=rbind:ro" "$IMAGE" badmount true
	[ "$status" -ne 0 ] || fail "ctr run succeeded: $output"
	assert_contains "$output" \
		"OCI runtime create failed: unable to start container process: open bind source $BATS_TEST_TMPDIR/missing: no such file or directory"
	assert_removed badmount
}

@test "ctr task exec of a missing executable: strata's error reaches the user, the task runs on" {
	c_run -d "$IMAGE" execfail sleep 1000
	run c tasks exec --exec-id bad execfail /nonexistent/cmd
	[ "$status" -ne 0 ] || fail "ctr task exec succeeded: $output"
	assert_contains "$output" "OCI runtime exec failed: exec failed: exec: \"/nonexistent/cmd\""
	assert_eq "$(task_field execfail status)" RUNNING
	assert_eq "$(strata_status "$STRATA_ROOT" execfail)" running "strata's status"
}

# Not a check: the numbers for hack/test-clients' closing table and hack/bench-engines.
@test "timings: ctr run --rm" {
	local i t0
	for ((i = 0; i < ${STRATA_CLIENTS_ROUNDS:-3}; i++)); do
		t0=$EPOCHREALTIME
		c_run --rm "$IMAGE" "timed-$i" true
		record_timing "ctr run --rm" "$t0" "$EPOCHREALTIME"
	done
}

#!/usr/bin/env bats
# podman 4.3 (with conmon) driving strata: `podman --runtime $STRATA_BIN`, registered in a private
# containers.conf with runtime_supports_json so that conmon passes `--log-format=json --log`. Private podman
# storage; podman never passes --root, so strata keeps its state under its default root, /run/strata.
# Run through hack/test-clients.

load helpers

PODMAN_DIR=${STRATA_CLIENTS_WORK:-/nonexistent}/podman
PODMAN=(env "CONTAINERS_CONF=$PODMAN_DIR/containers.conf" podman --root "$PODMAN_DIR/storage"
	--runroot "$PODMAN_DIR/runroot" --storage-driver overlay --runtime "${STRATA_BIN:-strata}")
IMAGE=localhost/busybox:latest
STRATA_ROOT=/run/strata

pm() { "${PODMAN[@]}" "$@"; }

setup_file() {
	require_suite_env
	require_cgroup_v1
	# This VM lacks CAP_SYS_RESOURCE: podman's default rlimits (nofile 1048576) are above the hard limits and
	# the runtime's setrlimit would fail with EPERM, so ask for the hard limits (podman's own nproc is 32768).
	local nofile nproc
	nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
	[ "$nofile" != unlimited ] || nofile=1048576
	{ [ "$nproc" != unlimited ] && [ "$nproc" -le 32768 ]; } || nproc=32768
	podman_setup "$PODMAN_DIR" cgroupfs "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
}

teardown_file() {
	podman_teardown "$PODMAN_DIR" 20
}

# Every test: whatever containers it left are removed, and strata must leave no state and no cgroup for any
# container the test made (podman's event log has them all, --rm ones included). Client calls are bounded:
# a broken runtime can make them hang (a container that is never thawed).
teardown() {
	local id rc=0 checked=$PODMAN_DIR/checked-ids
	timeout 20 "${PODMAN[@]}" rm -af -t 0 >/dev/null || rc=1
	touch "$checked"
	for id in $(timeout 20 "${PODMAN[@]}" events --stream=false --filter type=container --filter event=create \
		--format '{{.ID}}' | grep -vxFf "$checked"); do
		echo "$id" >>"$checked"
		assert_no_strata_state "$STRATA_ROOT" "$id" || rc=1
		assert_no_cgroup "/libpod_parent/libpod-$id" || rc=1
	done
	return "$rc"
}

init_pid() { # init_pid NAME
	pm inspect --format '{{.State.Pid}}' "$1"
}

logs_contain() { # logs_contain NAME TEXT
	[[ $(pm logs "$1" 2>&1) == *"$2"* ]]
}

# The container NAME is gone for podman, and strata has no state or cgroup left for ID.
assert_removed() { # assert_removed NAME ID
	if pm container exists "$1"; then fail "podman still has container $1"; fi
	assert_no_strata_state "$STRATA_ROOT" "$2"
	assert_no_cgroup "/libpod_parent/libpod-$2"
}

@test "podman run --rm: the container's output, stdin and exit status pass through strata; nothing is left" {
	run pm run --rm --name once --cidfile "$BATS_TEST_TMPDIR/cid" "$IMAGE" \
		sh -c 'echo hello from strata; echo to stderr >&2; exit 3'
	assert_eq "$status" 3 "podman's exit status"
	assert_contains "$output" "hello from strata"
	assert_contains "$output" "to stderr"
	assert_removed once "$(cat "$BATS_TEST_TMPDIR/cid")"

	run pm run --rm -i "$IMAGE" sh -c 'read line; echo "read: $line"' <<<"piped in"
	assert_eq "$status" 0
	assert_eq "$output" "read: piped in"
}

@test "podman run -d + exec: strata runs the container; exec output and exit status reach the user" {
	id=$(pm run -d --name detached "$IMAGE" sleep 1000)
	assert_eq "$(strata_status "$STRATA_ROOT" "$id")" running "strata's status"
	assert_eq "$("$STRATA_BIN" state "$id" | jq .pid)" "$(init_pid detached)" "init pid, strata vs podman"

	run pm exec detached sh -c 'echo from exec; tr "\0" " " </proc/1/cmdline'
	assert_eq "$status" 0
	assert_contains "$output" "from exec"
	assert_contains "$output" "sleep 1000" # the exec process is in the container's pid namespace

	run pm exec detached sh -c 'exit 7'
	assert_eq "$status" 7 "exec exit status"
	assert_eq "$(pm inspect --format '{{.State.Status}}' detached)" running
}

@test "podman exec -it: the process gets a terminal of the client's size" {
	pm run -d --name term "$IMAGE" sleep 1000
	tty_run 100 30 "${PODMAN[@]}" exec -it term sh -c "$(tty_probe_script '30 100')"
	assert_eq "$status" 5 "exit status through the terminal session"
	assert_contains "$output" "size=30 100"
	assert_contains "$output" "/dev/pts/"
	assert_contains "$output" "stdin-is-a-tty"
}

@test "podman run -it: the container's init gets a terminal of the client's size" {
	tty_run 90 20 "${PODMAN[@]}" run -it --rm "$IMAGE" sh -c "$(tty_probe_script '20 90')"
	assert_eq "$status" 5 "exit status through the terminal session"
	assert_contains "$output" "size=20 90"
	assert_contains "$output" "/dev/pts/0"
	assert_contains "$output" "stdin-is-a-tty"
}

@test "podman stop: TERM reaches the container's init, its exit code is recorded, strata's state is gone" {
	id=$(pm run -d --name stopper "$IMAGE" sh -c 'trap "echo got TERM; exit 3" TERM; echo ready; sleep 1000 & wait')
	wait_for 100 logs_contain stopper ready
	# -t 20: without the TERM handler running, podman would KILL (exit code 137) after 20 s
	run pm stop -t 20 stopper
	assert_eq "$status" 0 "podman stop: $output"
	assert_eq "$(pm inspect --format '{{.State.Status}} {{.State.ExitCode}}' stopper)" "exited 3"
	assert_contains "$(pm logs stopper)" "got TERM"
	assert_no_strata_state "$STRATA_ROOT" "$id"
	assert_no_cgroup "/libpod_parent/libpod-$id"
}

@test "podman kill -s: the signals reach the container's init; KILL ends it with 137" {
	pm run -d --name killee "$IMAGE" \
		sh -c 'trap "echo got USR1" USR1; trap "echo got HUP" HUP; echo ready; while :; do sleep 1000 & wait; done'
	wait_for 100 logs_contain killee ready
	pm kill -s USR1 killee
	wait_for 100 logs_contain killee "got USR1"
	pm kill -s HUP killee
	wait_for 100 logs_contain killee "got HUP"
	assert_eq "$(pm inspect --format '{{.State.Status}}' killee)" running

	pm kill killee # SIGKILL
	run pm wait killee
	assert_eq "$output" 137 "exit code after SIGKILL"
}

@test "podman started as a service (SIGPIPE, HUP ignored): containers and exec'd processes get a clean signal state" {
	run "${AS_A_SERVICE[@]}" "${PODMAN[@]}" run --rm "$IMAGE" "${SHOW_SIGNALS[@]}"
	assert_eq "$status" 0 "podman run: $output"
	assert_clean_signals "$output"

	run "${AS_A_SERVICE[@]}" "${PODMAN[@]}" run --rm "$IMAGE" sh -c 'yes | head -n1'
	assert_eq "$status" 0 "podman run of a pipeline: $output"
	assert_eq "$output" y "a pipeline's producer dies of SIGPIPE quietly"

	"${AS_A_SERVICE[@]}" "${PODMAN[@]}" run -d --name service-made "$IMAGE" \
		sh -c 'trap "echo got HUP" HUP; echo ready; while :; do sleep 1000 & wait; done'
	wait_for 100 logs_contain service-made ready
	pm kill -s HUP service-made
	wait_for 100 logs_contain service-made "got HUP" || fail "the trapped HUP never arrived: $(pm logs service-made 2>&1)"
	run "${AS_A_SERVICE[@]}" "${PODMAN[@]}" exec service-made "${SHOW_SIGNALS[@]}"
	assert_eq "$status" 0 "podman exec: $output"
	assert_clean_signals "$output"
}

@test "podman pause/unpause: the container is frozen, then runs on" {
	id=$(pm run -d --name pausee "$IMAGE" sh -c "$COUNTER_SCRIPT")
	pid=$(init_pid pausee)
	wait_for 100 counter_moved_from "$pid" ""

	pm pause pausee
	assert_eq "$(pm inspect --format '{{.State.Status}}' pausee)" paused "podman's status"
	assert_eq "$(strata_status "$STRATA_ROOT" "$id")" paused "strata's status"
	frozen "$pid" || fail "the freezer cgroup of $pid is not FROZEN"
	before=$(counter "$pid")
	sleep 0.5 # a running counter moves every 20 ms
	assert_eq "$(counter "$pid")" "$before" "the counter while paused"

	pm unpause pausee
	assert_eq "$(pm inspect --format '{{.State.Status}}' pausee)" running "podman's status"
	assert_eq "$(strata_status "$STRATA_ROOT" "$id")" running "strata's status"
	if frozen "$pid"; then fail "still FROZEN after unpause"; fi
	wait_for 100 counter_moved_from "$pid" "$before" || fail "the counter did not move after unpause"
}

@test "podman stats --no-stream: pids and memory from the cgroups strata made" {
	pm run -d --name statee --memory 64m "$IMAGE" sleep 1000
	run pm stats --no-stream --format '{{.PIDs}}|{{.MemUsage}}' statee
	assert_eq "$status" 0 "podman stats: $output"
	[[ $output =~ ^1\|[0-9.]+[kM]B\ /\ 67.11MB$ ]] || fail "expected 1 pid and a usage of a 64 MiB limit, got: $output"

	# exec'd processes join the container's cgroups
	pm exec -d statee sleep 999
	run pm stats --no-stream --format '{{.PIDs}}' statee
	assert_eq "$output" 2 "pids after exec -d"
}

@test "podman top: the container's processes, exec'd ones included" {
	pm run -d --name topee "$IMAGE" sleep 1000
	pm exec -d topee sleep 999
	run pm top topee pid comm args
	assert_eq "$status" 0 "podman top: $output"
	[[ $output =~ (^|$'\n')1\ +sleep\ +sleep\ 1000 ]] || fail "init (pid 1, sleep 1000) not listed: $output"
	assert_contains "$output" "sleep 999"
}

@test "podman update: the container sees its new limits in its cgroup files" {
	pm run -d --name upd "$IMAGE" sleep 1000
	run pm update --memory 128m --cpu-shares 512 --cpu-quota 50000 --cpu-period 100000 upd
	assert_eq "$status" 0 "podman update: $output"
	run pm exec upd cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares \
		/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us
	assert_eq "$status" 0 "reading the limits: $output"
	assert_eq "${output//$'\n'/ }" "134217728 512 50000 100000" "memory limit, shares, quota, period"
}

@test "podman update below the memory in use: strata's refusal reaches the user, the limit stays" {
	pm run -d --name upd2 --memory 64m "$IMAGE" sleep 1000
	run pm update --memory 1k upd2
	[ "$status" -ne 0 ] || fail "podman update succeeded: $output"
	assert_contains "$output" "cannot set the memory limit to 1024: the cgroup already uses"
	assert_eq "$(pm exec upd2 cat /sys/fs/cgroup/memory/memory.limit_in_bytes)" 67108864 "memory limit"
}

@test "podman run --memory --pids-limit: the container sees its limits and the pids limit holds" {
	run pm run --rm --memory 64m --pids-limit 50 "$IMAGE" \
		cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
	assert_eq "$status" 0 "$output"
	assert_eq "${output//$'\n'/ }" "67108864 50" "memory limit, pids.max"

	run pm run --rm --pids-limit 4 "$IMAGE" sh -c 'for i in 1 2 3 4 5 6; do sleep 60 & done; echo all forked'
	assert_contains "$output" "can't fork"
	assert_not_contains "$output" "all forked"
}

@test "podman rm -f: a running container is stopped and everything strata made is removed" {
	id=$(pm run -d --name rmee "$IMAGE" sh -c 'trap "exit 0" TERM; sleep 1000 & wait')
	pid=$(init_pid rmee)
	run pm rm -f rmee
	assert_eq "$status" 0 "podman rm -f: $output"
	[ ! -e "/proc/$pid" ] || fail "the container's init ($pid) still exists"
	assert_removed rmee "$id"
}

@test "podman run of a missing executable: strata's error reaches the user, exit 127, nothing is left" {
	# podman maps a runtime message with "no such file or directory" to exit status 127
	run -127 pm run --rm --name noexec --cidfile "$BATS_TEST_TMPDIR/cid" "$IMAGE" /nonexistent/cmd
	assert_contains "$output" "$STRATA_BIN: unable to start container process: exec: \"/nonexistent/cmd\""
	assert_contains "$output" "no such file or directory"
	assert_removed noexec "$(cat "$BATS_TEST_TMPDIR/cid")"
}

@test "podman run with a sysctl strata cannot set: strata's message reaches the user, nothing is left" {
	run -127 pm run --rm --name badsysctl --cidfile "$BATS_TEST_TMPDIR/cid" --sysctl net.ipv4.no_such_knob=1 "$IMAGE" true
	assert_contains "$output" "$STRATA_BIN: unable to start container process: write sysctl net.ipv4.no_such_knob"
	assert_removed badsysctl "$(cat "$BATS_TEST_TMPDIR/cid")"
}

@test "podman exec of a missing executable: strata's error reaches the user, the container runs on" {
	id=$(pm run -d --name execfail "$IMAGE" sleep 1000)
	run -127 pm exec execfail /nonexistent/cmd
	assert_contains "$output" "$STRATA_BIN: exec failed: exec: \"/nonexistent/cmd\""
	assert_eq "$(strata_status "$STRATA_ROOT" "$id")" running "strata's status"
	assert_eq "$(pm inspect --format '{{.State.Status}}' execfail)" running "podman's status"
}

# issue 16 item 1
@test "podman run --network none: the container's loopback interface is up" {
	run pm run --rm --network none "$IMAGE" sh -c 'cat /sys/class/net/lo/flags; ip -o link show lo'
	assert_eq "$status" 0 "podman run: $output"
	local flags=${output%%$'\n'*}
	(((flags & 1) == 1)) || fail "lo is down (flags $flags): $output"
	assert_contains "$output" ",UP"
}

# issue 16 item 2
@test "podman run --read-only, --tmpfs, --mount type=tmpfs: the tmpfs mounts start with the image's files" {
	run pm run --rm --read-only "$IMAGE" sh -c 'touch /tmp/a /var/tmp/b /run/c && echo tmpfs-writable; touch /root/x 2>/dev/null || echo root-read-only'
	assert_eq "$status" 0 "podman run --read-only: $output"
	assert_contains "$output" tmpfs-writable
	assert_contains "$output" root-read-only

	# podman asks for tmpcopyup on these: the image's /etc is copied into the tmpfs
	run pm run --rm --tmpfs /etc "$IMAGE" sh -c 'grep -c "^root:" /etc/passwd && touch /etc/new && echo writable'
	assert_eq "$status" 0 "podman run --tmpfs: $output"
	assert_eq "$output" $'1\nwritable' "--tmpfs /etc"
	run pm run --rm --read-only --mount type=tmpfs,destination=/etc "$IMAGE" grep -c "^root:" /etc/group
	assert_eq "$status" 0 "podman run --mount type=tmpfs: $output"
	assert_eq "$output" 1 "--mount type=tmpfs,destination=/etc"
}

# issue 16 item 5
@test "podman run --mount type=image: the image is mounted in the container" {
	run pm run --rm --mount "type=image,source=$IMAGE,destination=/image" "$IMAGE" sh -c 'ls /image/bin/busybox && grep -c "^root:" /image/etc/passwd'
	assert_eq "$status" 0 "podman run --mount type=image: $output"
	assert_eq "$output" $'/image/bin/busybox\n1'
}

# issue 16 item 7
@test "podman run --user 1000: the process can open /dev/stdout and /dev/stderr (conmon's pipes)" {
	run pm run --rm --user 1000:1000 "$IMAGE" sh -c 'echo to-stdout >/dev/stdout && echo to-stderr >/dev/stderr'
	assert_eq "$status" 0 "podman run --user 1000: $output"
	assert_contains "$output" to-stdout
	assert_contains "$output" to-stderr
}

# Not a check: the numbers for hack/test-clients' closing table and hack/bench-engines (STRATA_CLIENTS_ROUNDS
# rounds; the STRATA_CLIENTS_PARALLEL containers started at once only when asked for).
@test "podman --userns=auto with an :idmap volume: host root's files are root's inside, and what it writes is host root's" {
	# --userns=auto takes its ids from the ranges of the user "containers": one is added for this test (in
	# a free part of the id space) unless the host has one, and removed again.
	local vol=$BATS_TEST_TMPDIR/vol added=0
	if ! grep -q '^containers:' /etc/subuid; then
		echo "containers:3000000:200000" >>/etc/subuid
		echo "containers:3000000:200000" >>/etc/subgid
		added=1
	fi
	mkdir "$vol"
	echo host >"$vol/from-host"
	run pm run --rm --userns=auto -v "$vol:/vol:idmap" -v "$vol:/plain" "$IMAGE" \
		sh -c 'cat /proc/self/uid_map; ls -ln /vol/from-host /plain/from-host; echo container >/vol/from-container'
	if ((added)); then
		sed -i '/^containers:3000000:200000$/d' /etc/subuid /etc/subgid
	fi
	assert_eq "$status" 0 "podman's exit status ($output)"
	local inside
	inside=$(awk '$1 == 0 { print $2 }' <<<"$output" | head -n1)
	[ -n "$inside" ] && [ "$inside" != 0 ] || fail "the container's root is not a subordinate id: $output"
	grep -Eq '^-rw-r--r-- +1 0 +0 .*/vol/from-host$' <<<"$output" || fail "/vol/from-host is not root's inside: $output"
	grep -Eq '^-rw-r--r-- +1 65534 +65534 .*/plain/from-host$' <<<"$output" ||
		fail "without idmap, host root's file should be nobody's inside: $output"
	assert_eq "$(stat -c %u:%g "$vol/from-container")" 0:0 "owner on the host of what the container wrote through idmap"
}

@test "timings: podman run --rm, and containers started in parallel" {
	local i t0 n=${STRATA_CLIENTS_PARALLEL:-0} pids=() pid
	for ((i = 0; i < ${STRATA_CLIENTS_ROUNDS:-3}; i++)); do
		t0=$EPOCHREALTIME
		pm run --rm "$IMAGE" true
		record_timing "podman run --rm" "$t0" "$EPOCHREALTIME"
	done
	((n > 0)) || return 0
	t0=$EPOCHREALTIME
	for ((i = 0; i < n; i++)); do
		pm run --rm "$IMAGE" true &
		pids+=("$!")
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || fail "one of the $n parallel podman run --rm failed"
	done
	record_timing "podman run --rm, $n at once (until the last is done)" "$t0" "$EPOCHREALTIME"
}

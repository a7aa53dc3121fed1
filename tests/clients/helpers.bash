# shellcheck shell=bash
# helpers.bash - shared by the client suites (loaded by bats). Run the suites through hack/test-clients,
# which builds strata and the busybox image and exports STRATA_BIN and STRATA_CLIENTS_WORK.

bats_require_minimum_version 1.5.0

# require_suite_env: fail setup_file with a clear message when not started by hack/test-clients.
require_suite_env() {
	[ "$(id -u)" = 0 ] || fail "the client suites must run as root"
	if [ -z "${STRATA_BIN:-}" ] || [ ! -x "$STRATA_BIN" ]; then
		fail "STRATA_BIN unset or not executable: run hack/test-clients"
	fi
	if [ -z "${STRATA_CLIENTS_WORK:-}" ] || [ ! -f "$STRATA_CLIENTS_WORK/busybox.tar" ]; then
		fail "STRATA_CLIENTS_WORK has no busybox.tar: run hack/test-clients"
	fi
}

# require_cgroup_v1: the suites read cgroup v1 files (the CI machine's hybrid layout: v1 controllers under
# /sys/fs/cgroup/<controller>); they do not know the v2 names.
require_cgroup_v1() {
	if [ ! -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] || [ ! -d /sys/fs/cgroup/freezer ]; then
		fail "no cgroup v1 memory and freezer hierarchies under /sys/fs/cgroup: the client suites expect cgroup v1"
	fi
}

fail() {
	printf '%s\n' "$*" >&2
	return 1
}

# assert_eq ACTUAL EXPECTED [WHAT]
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

# assert_contains HAYSTACK NEEDLE: NEEDLE is a fixed string.
assert_contains() {
	[[ $1 == *"$2"* ]] || fail "expected to find '$2' in:
$1"
}

assert_not_contains() {
	[[ $1 != *"$2"* ]] || fail "did not expect '$2' in:
$1"
}

# wait_for TRIES CMD...: run CMD every 0.1 s until it succeeds, at most TRIES times. For states that
# clients reach asynchronously (a signal handled, a log line written), never to measure time.
wait_for() {
	local tries=$1
	shift
	while ! "$@"; do
		((--tries > 0)) || return 1
		sleep 0.1
	done
}

# Directories a daemon makes at a fixed place whatever its configuration (dockerd's /run/docker/plugins, the
# CNI library's /var/lib/cni/results). note_missing_dirs FILE DIR...: remember in FILE which of them do not
# exist yet; remove_noted_dirs FILE: remove those again, if empty (deepest first), and FILE.
note_missing_dirs() {
	local file=$1 dir
	shift
	: >"$file"
	for dir in "$@"; do
		[ -e "$dir" ] || echo "$dir" >>"$file"
	done
}
remove_noted_dirs() {
	local dir
	while IFS= read -r dir; do
		[ ! -d "$dir" ] || rmdir "$dir" || return 1
	done < <(sort -r "$1")
	rm -f "$1"
}

# record_timing WHAT T0 T1: T1 - T0 ($EPOCHREALTIME values) for hack/test-clients' closing table of timings.
# Never asserted on: the numbers compare strata with runc (CLIENTS_RUNTIME=runc), they check nothing.
record_timing() {
	local us=$((${3/./} - ${2/./}))
	printf '%s\t%s\t%d.%03d\n' "$1" "$(basename "$STRATA_BIN")" $((us / 1000)) $((us % 1000)) \
		>>"$STRATA_CLIENTS_WORK/timings.tsv"
}

# strata_status ROOT ID: the status strata reports for container ID under state root ROOT.
strata_status() {
	"$STRATA_BIN" --root "$1" state "$2" | jq -r .status
}

# assert_no_strata_state ROOT ID: strata has no state left for ID.
assert_no_strata_state() {
	[ ! -e "$1/$2" ] || fail "strata state left behind: $1/$2"
	if "$STRATA_BIN" --root "$1" state "$2" >/dev/null 2>&1; then
		fail "strata still knows container $2 under $1"
	fi
}

# assert_no_cgroup PATH: no hierarchy under /sys/fs/cgroup (v1 controllers, unified) has PATH.
assert_no_cgroup() {
	local d
	for d in /sys/fs/cgroup/*/; do
		[ ! -e "$d${1#/}" ] || fail "cgroup left behind: $d${1#/}"
	done
}

# cgroup_of PID CONTROLLER: the v1 cgroup path of PID in CONTROLLER's hierarchy.
cgroup_of() {
	awk -F: -v c="$2" '{ n = split($2, cs, ","); for (i = 1; i <= n; i++) if (cs[i] == c) print $3 }' "/proc/$1/cgroup"
}

# frozen PID: the freezer cgroup of PID says FROZEN.
frozen() {
	[ "$(cat "/sys/fs/cgroup/freezer$(cgroup_of "$1" freezer)/freezer.state")" = FROZEN ]
}

# Looping counter for pause tests: the container's init writes an ever-growing number to /tmp/count.
# shellcheck disable=SC2034 # used by the suites that load this file
COUNTER_SCRIPT='i=0; while :; do i=$((i+1)); echo $i >/tmp/count; usleep 20000; done'

# counter PID: the counter's current value, read from the host through the process's root.
counter() {
	cat "/proc/$1/root/tmp/count"
}

counter_moved_from() { # counter_moved_from PID VALUE
	local now
	now=$(counter "$1") && [ -n "$now" ] && [ "$now" != "$2" ]
}

# tty_run COLS ROWS CMD...: run CMD with a pseudo-terminal of COLS x ROWS as its stdin, stdout and stderr
# (util-linux script); sets $status to CMD's exit status and $output to what the terminal showed. script
# rather than tmux: a tmux server now and then never notices that a `podman run -it` pane exited (seen with
# runc too), and script returns the exit status and all output once CMD is done. script's own stdin stays
# open (a pipe nobody writes to): on its end of file script would send EOF through the terminal, and
# `podman run -it` then at times drops the container's output (seen with runc too).
tty_run() {
	local cols=$1 rows=$2
	shift 2
	local cmd in idle
	cmd="stty rows $rows cols $cols && exec $(printf '%q ' "$@")"
	exec {in}< <(exec sleep 600 3>&-)
	idle=$!
	status=0
	# shellcheck disable=SC2034 # status and output are bats's, read by the calling test
	output=$(SHELL=/bin/bash timeout 60 script -qefc "$cmd" /dev/null <&"$in") || status=$?
	exec {in}<&-
	kill "$idle"
	output=$(printf '%s' "$output" | tr -d '\r\0')
}

# Inside a container on a terminal: wait for the size the client applies asynchronously after the process
# started (podman 4.3 and ctr 1.6 resize after start: podman#10560), then print it, the tty name and whether
# stdin is a terminal. Exit status 5.
tty_probe_script() { # tty_probe_script "ROWS COLS"
	printf '%s' "n=0; until [ \"\$(stty size 2>/dev/null)\" = '$1' ] || [ \$n -ge 100 ]; do usleep 50000; n=\$((n+1)); done; " \
		"echo \"size=\$(stty size)\"; tty; [ -t 0 ] && echo stdin-is-a-tty; exit 5"
}

# How a service manager or nohup leaves a daemon: SIGPIPE and SIGHUP ignored (systemd's IgnoreSIGPIPE=yes
# is the default for every service). Ignored signals survive execve: the runtime must not pass them on.
# shellcheck disable=SC2034 # used by the suites that load this file
AS_A_SERVICE=(env --ignore-signal=PIPE --ignore-signal=HUP)

# start_service LOG CMD...: starts CMD in the background as a service manager starts an engine: from /,
# stdin from /dev/null, stdout and stderr to LOG, SIGPIPE and SIGHUP ignored (systemd's IgnoreSIGPIPE=yes,
# or nohup; its shims and strata inherit that), and no other open fd: a daemon passes inherited fds on to
# its shims, and a shim outliving the suite would keep bats waiting for the end of its output pipes.
# Sets SERVICE_PID.
start_service() {
	local log=$1
	shift
	(
		cd / || exit 1
		for fd in "/proc/$BASHPID/fd"/*; do
			fd=${fd##*/}
			((fd <= 2 || fd == 255)) || eval "exec $fd>&-"
		done
		exec "${AS_A_SERVICE[@]}" "$@" </dev/null >"$log" 2>&1
	) &
	# shellcheck disable=SC2034 # read by the suites
	SERVICE_PID=$!
}

# Inside a container: print the process's ignored and blocked signal masks, one per line, exec'd directly
# (no shell in between).
# shellcheck disable=SC2034 # used by the suites that load this file
SHOW_SIGNALS=(grep -E '^Sig(Ign|Blk):' /proc/self/status)

# assert_clean_signals OUTPUT: the SigIgn and SigBlk lines of OUTPUT are all zero.
assert_clean_signals() {
	local ign blk
	ign=$(awk '/^SigIgn:/ {print $2}' <<<"$1")
	blk=$(awk '/^SigBlk:/ {print $2}' <<<"$1")
	[ "$ign/$blk" = 0000000000000000/0000000000000000 ] ||
		fail "the container's process does not start with a clean signal state (SigIgn $ign, SigBlk $blk); output:
$1"
}

# podman_setup DIR CGROUP_MANAGER [CONTAINERS-LINE...]: the podman suites' private containers.conf in DIR
# (strata registered with runtime_supports_json, so that conmon passes `--log-format=json --log <file>`
# to it; no network; events, volumes and temporary files in DIR; extra lines for its [containers] table),
# and the busybox image imported. Needs PODMAN (the podman command line the suite uses) and IMAGE.
podman_setup() {
	local dir=$1 manager=$2
	shift 2
	mkdir -p "$dir"
	{
		echo "[containers]"
		printf '%s\n' "$@"
		cat <<-EOF
			netns = "none"

			[engine]
			cgroup_manager = "$manager"
			events_logger = "file"
			events_logfile_path = "$dir/events.log"
			tmp_dir = "$dir/tmp"
			volume_path = "$dir/volumes"
			runtime = "strata"
			runtime_supports_json = ["strata", "$(basename "$STRATA_BIN")"]

			[engine.runtimes]
			strata = ["$STRATA_BIN"]
		EOF
	} >"$dir/containers.conf"
	"${PODMAN[@]}" import --change 'CMD ["/bin/sh"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		"$STRATA_CLIENTS_WORK/busybox.tar" "$IMAGE" >/dev/null
}

# podman_teardown DIR SECONDS: removes every container and image (each podman call bounded), unmounts what
# containers/storage left mounted in DIR (it keeps its overlay directory as a private bind mount of itself)
# and removes DIR. bats 1.8 runs teardown functions without errexit: returns the number of failures.
podman_teardown() {
	local dir=$1 seconds=$2 m rc=0
	timeout "$seconds" "${PODMAN[@]}" rm -af -t 0 >/dev/null || rc=1
	timeout "$seconds" "${PODMAN[@]}" rmi -af >/dev/null || rc=1
	for m in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r); do
		umount "$m" || rc=1
	done
	rm -rf "$dir" || rc=1
	return "$rc"
}

# stop_containerd DIR SECONDS: stops the containerd whose pid is in DIR/containerd.pid (waiting at most
# SECONDS), then checks that strata left no state in STRATA_ROOT and unmounts what is left below DIR.
# Whatever is still running or stored is for hack/test-clients to remove (its cleanup). Returns the number
# of failures (bats runs teardown functions without errexit).
stop_containerd() {
	local dir=$1 seconds=$2 pid m rc=0
	pid=$(cat "$dir/containerd.pid")
	kill -TERM "$pid"
	wait_for "$seconds" gone "$pid" || { fail "containerd ($pid) did not stop"; return 1; }
	[ -z "$(ls "$STRATA_ROOT" 2>/dev/null)" ] || { fail "strata state left in $STRATA_ROOT: $(ls "$STRATA_ROOT")"; rc=1; }
	for m in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r); do
		umount "$m" || rc=1
	done
	return "$rc"
}

#!/usr/bin/env bats
# Rootless: an unprivileged user (made here, with /etc/subuid and /etc/subgid ranges, removed again) runs
# podman 4.3 with the runtime under test (podman runs it as uid 0 of its own user namespace), and runs the
# runtime directly (`spec --rootless`, run, create/start/kill/delete, exec, list). podman's storage, config
# and runtime directory are private to the suite. The scenarios are the test, not strata's internals:
# CLIENTS_RUNTIME=runc runs the same ones against runc; the few assertions on strata's own words say so.
# Run through hack/test-clients. /dev/net/tun is made usable by users (0666, Debian's udev default) for the
# default rootless network (slirp4netns) and its mode is restored at the end.

load helpers

RL_USER=strata-rootless
RL_DIR=${STRATA_CLIENTS_WORK:-/nonexistent}-rootless
IMAGE=localhost/busybox:latest

# as_user CMD...: CMD as the test user, with only the environment a login would give it plus podman's
# private configuration, in RL_DIR.
as_user() {
	runuser -u "$RL_USER" -- env -i --chdir="$RL_DIR" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		HOME="$RL_DIR/home" USER="$RL_USER" LOGNAME="$RL_USER" XDG_RUNTIME_DIR="$RL_DIR/xdg" \
		CONTAINERS_CONF="$RL_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$RL_DIR/storage.conf" "$@"
}
rpm() { as_user podman "$@"; }
# The runtime as the user runs it: a copy readable by it, under the name the client suites run.
rt() { as_user "$RL_DIR/bin/$RT_NAME" "$@"; }

# The first id after every range /etc/subuid and /etc/subgid hand out (at least 200000).
free_subid_start() {
	cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'BEGIN { m = 200000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }'
}

setup_file() {
	require_suite_env
	RT_NAME=$(basename "$STRATA_BIN")
	export RT_NAME
	! id "$RL_USER" >/dev/null 2>&1 || fail "user $RL_USER exists already (left by an earlier run?): userdel it"
	for f in /etc/subuid /etc/subgid; do
		! grep -q "^$RL_USER:" "$f" 2>/dev/null || fail "$f has a range for $RL_USER already"
	done
	# No automatic ranges: the suite writes its own, past every existing one.
	useradd --no-create-home --home-dir "$RL_DIR/home" --shell /usr/sbin/nologin \
		-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$RL_USER"
	local start
	start=$(free_subid_start)
	echo "$RL_USER:$start:65536" >>/etc/subuid
	echo "$RL_USER:$start:65536" >>/etc/subgid
	mkdir -p "$RL_DIR"/{home,xdg,bin,vol}
	install -m 755 "$STRATA_BIN" "$RL_DIR/bin/$RT_NAME"
	chown -R "$RL_USER:" "$RL_DIR"
	chmod 700 "$RL_DIR/xdg"
	if [ -e /dev/net/tun ]; then
		stat -c %a /dev/net/tun >"$RL_DIR.tun-mode"
		chmod 666 /dev/net/tun
	fi
	cat >"$RL_DIR/containers.conf" <<-EOF
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		events_logfile_path = "$RL_DIR/events.log"
		runtime = "$RT_NAME"
		runtime_supports_json = ["$RT_NAME"]

		[engine.runtimes]
		$RT_NAME = ["$RL_DIR/bin/$RT_NAME"]
	EOF
	cat >"$RL_DIR/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		graphroot = "$RL_DIR/storage"
		runroot = "$RL_DIR/runroot"
	EOF
	install -m 644 "$STRATA_CLIENTS_WORK/busybox.tar" "$RL_DIR/busybox.tar"
	rpm import --change 'CMD ["/bin/sh"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		"$RL_DIR/busybox.tar" "$IMAGE" >/dev/null
}

# bats 1.8 runs teardown functions without errexit: they count their failures and return them.
teardown_file() {
	local rc=0 p uid
	if uid=$(id -u "$RL_USER" 2>/dev/null); then
		timeout 30 runuser -u "$RL_USER" -- env -i --chdir=/ HOME="$RL_DIR/home" XDG_RUNTIME_DIR="$RL_DIR/xdg" \
			CONTAINERS_CONF="$RL_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$RL_DIR/storage.conf" \
			podman rm -af -t 0 >/dev/null || rc=1
		# podman's pause process (it holds podman's user namespace) and anything else the user still runs
		for p in /proc/[0-9]*; do
			[ "$(stat -c %u "$p" 2>/dev/null)" = "$uid" ] || continue
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		done
		userdel "$RL_USER" || rc=1
	fi
	sed -i "/^$RL_USER:/d" /etc/subuid /etc/subgid || rc=1
	if [ -f "$RL_DIR.tun-mode" ]; then
		chmod "$(cat "$RL_DIR.tun-mode")" /dev/net/tun || rc=1
		rm -f "$RL_DIR.tun-mode"
	fi
	rm -rf "$RL_DIR" || rc=1
	return "$rc"
}

# Every test: no container left, and no state of one under the user's runtime directory.
teardown() {
	local rc=0 left
	timeout 20 runuser -u "$RL_USER" -- env -i --chdir=/ HOME="$RL_DIR/home" XDG_RUNTIME_DIR="$RL_DIR/xdg" \
		CONTAINERS_CONF="$RL_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$RL_DIR/storage.conf" \
		podman rm -af -t 0 >/dev/null || rc=1
	left=$(find "$RL_DIR/xdg/$RT_NAME" -mindepth 1 -maxdepth 1 2>/dev/null)
	[ -z "$left" ] || {
		echo "state left under $RL_DIR/xdg/$RT_NAME: $left" >&2
		rc=1
	}
	return "$rc"
}

uid_of_user() { id -u "$RL_USER"; }
status_is() { [ "$(rt state "$1" | jq -r .status)" = "$2" ]; }

@test "rootless podman run --rm: output and exit status pass through; root inside is the user outside" {
	run rpm run --rm --network none "$IMAGE" sh -c 'echo hello rootless; cat /proc/self/uid_map; exit 3'
	assert_eq "$status" 3 "podman's exit status: $output"
	assert_contains "$output" "hello rootless"
	# podman's user namespace: 0 is the user, 1.. the subordinate range
	[[ $output =~ [[:space:]]0[[:space:]]+$(uid_of_user)[[:space:]]+1 ]] || fail "uid 0 is not the user's: $output"
	[ -z "$(find "$RL_DIR/xdg/$RT_NAME" -mindepth 1 -maxdepth 1 2>/dev/null)" ] || fail "state left behind"
	local i t0
	for ((i = 0; i < ${STRATA_CLIENTS_ROUNDS:-3}; i++)); do
		t0=$EPOCHREALTIME
		rpm run --rm --network none "$IMAGE" true
		record_timing "rootless podman run --rm (--network none)" "$t0" "$EPOCHREALTIME"
	done
}

@test "rootless podman run -d, exec, stop, rm: the runtime's state is under \$XDG_RUNTIME_DIR, private" {
	id=$(rpm run -d --network none --name det "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done')
	[ -d "$RL_DIR/xdg/$RT_NAME/$id" ] || fail "no state at $RL_DIR/xdg/$RT_NAME/$id: $(ls -la "$RL_DIR/xdg")"
	local mode
	mode=$(stat -c %a "$RL_DIR/xdg/$RT_NAME")
	if ((8#$mode & 8#077)); then
		fail "state root $RL_DIR/xdg/$RT_NAME is mode $mode: others may look in"
	fi
	run rpm exec det sh -c 'echo from exec; tr "\0" " " </proc/1/cmdline'
	assert_eq "$status" 0 "exec: $output"
	assert_contains "$output" "from exec"
	assert_contains "$output" "while :" # the exec'd process is in the container's pid namespace
	run rpm exec det sh -c 'exit 7'
	assert_eq "$status" 7 "exec exit status"
	run rpm stop -t 10 det
	assert_eq "$status" 0 "stop: $output"
	assert_eq "$(rpm inspect --format '{{.State.Status}} {{.State.ExitCode}}' det)" "exited 0"
	run rpm rm det
	assert_eq "$status" 0 "rm: $output"
	[ ! -e "$RL_DIR/xdg/$RT_NAME/$id" ] || fail "state left at $RL_DIR/xdg/$RT_NAME/$id"
}

@test "rootless podman --userns=keep-id: the user's own uid inside" {
	run rpm run --rm --network none --userns=keep-id "$IMAGE" id -u
	assert_eq "$status" 0 "podman run: $output"
	assert_eq "${output##*$'\n'}" "$(uid_of_user)" "uid inside"
}

@test "rootless podman volume: the container's root writes the user's files" {
	run rpm run --rm --network none -v "$RL_DIR/vol:/data" "$IMAGE" sh -c 'echo written >/data/f; ls -ln /data/f'
	assert_eq "$status" 0 "podman run: $output"
	assert_eq "$(cat "$RL_DIR/vol/f")" written
	assert_eq "$(stat -c %u "$RL_DIR/vol/f")" "$(uid_of_user)" "owner of the file on the host"
	rpm volume create named >/dev/null
	run rpm run --rm --network none -v named:/named "$IMAGE" sh -c 'echo kept >/named/f'
	assert_eq "$status" 0 "podman run (named volume): $output"
	run rpm run --rm --network none -v named:/named "$IMAGE" cat /named/f
	assert_eq "${output##*$'\n'}" kept "named volume content: $output"
	rpm volume rm named >/dev/null
}

@test "rootless podman --network none: only the loopback interface, and it is up" {
	run rpm run --rm --network none "$IMAGE" sh -c 'ls /sys/class/net; ip -o link show lo'
	assert_eq "$status" 0 "podman run: $output"
	assert_eq "$(ls_net "$output")" lo "interfaces"
	assert_contains "$output" ",UP"
}

ls_net() { grep -vE '^[0-9]+:|not a shared mount' <<<"$1" | tr '\n' ' ' | sed 's/ $//'; }

@test "rootless podman default network (slirp4netns): an interface with slirp's address and a default route" {
	[ -e /dev/net/tun ] || fail "no /dev/net/tun: slirp4netns cannot work here"
	run rpm run --rm "$IMAGE" sh -c 'ip -o -4 addr show; ip route'
	assert_eq "$status" 0 "podman run: $output"
	assert_contains "$output" "10.0.2.100/24"
	assert_contains "$output" "default via 10.0.2.2"
}

@test "rootless podman run of a missing executable: the runtime's error reaches the user, exit 127" {
	run -127 rpm run --rm --network none "$IMAGE" /nonexistent/cmd
	assert_contains "$output" "$RT_NAME"
	assert_contains "$output" "/nonexistent/cmd" # runc and strata: exec: "/nonexistent/cmd"; crun: executable file `/nonexistent/cmd`
	assert_contains "${output,,}" "no such file or directory" # crun: "No such file or directory"
}

# The runtime run directly by the user.
direct_bundle() { # direct_bundle DIR ARGS_JSON: a rootless bundle of busybox running ARGS
	mkdir -p "$1/rootfs"
	tar -C "$1/rootfs" -xf "$STRATA_CLIENTS_WORK/busybox.tar"
	chown -R "$RL_USER:" "$1"
	rt spec --rootless --bundle "$1"
	jq --argjson a "$2" '.process.terminal = false | .process.args = $a' "$1/config.json" >"$1/c" &&
		mv "$1/c" "$1/config.json"
	chown "$RL_USER:" "$1/config.json"
}

@test "the runtime as the user: spec --rootless + run" {
	direct_bundle "$RL_DIR/b1" '["sh", "-c", "id -u; cat /proc/self/uid_map; ls /dev/null; echo done"]'
	run rt run --bundle "$RL_DIR/b1" direct1 </dev/null
	assert_eq "$status" 0 "run: $output"
	assert_eq "${output%%$'\n'*}" 0 "uid inside"
	[[ $output =~ [[:space:]]0[[:space:]]+$(uid_of_user)[[:space:]]+1 ]] || fail "uid 0 is not the user's: $output"
	assert_contains "$output" "done"
	[ ! -e "$RL_DIR/xdg/$RT_NAME/direct1" ] || fail "state left behind"
}

@test "the runtime as the user: create, start, exec, list, kill, delete" {
	direct_bundle "$RL_DIR/b2" '["sleep", "1000"]'
	# the container's init keeps create's stdio: not bats's pipe, which would never reach end of file
	rt create --bundle "$RL_DIR/b2" direct2 </dev/null >"$RL_DIR/create.out" 2>&1 ||
		fail "create failed: $(cat "$RL_DIR/create.out")"
	assert_eq "$(rt state direct2 | jq -r .status)" created
	run rt list
	assert_contains "$output" "direct2"
	assert_contains "$output" "created"
	run rt start direct2
	assert_eq "$status" 0 "start: $output"
	assert_eq "$(rt state direct2 | jq -r .status)" running
	run rt exec direct2 sh -c 'id -u; tr "\0" " " </proc/1/cmdline'
	assert_eq "$status" 0 "exec: $output"
	assert_contains "$output" "sleep 1000"
	run rt kill direct2 KILL
	assert_eq "$status" 0 "kill: $output"
	wait_for 50 status_is direct2 stopped || fail "not stopped after kill: $(rt state direct2)"
	run rt delete direct2
	assert_eq "$status" 0 "delete: $output"
	[ ! -e "$RL_DIR/xdg/$RT_NAME/direct2" ] || fail "state left behind"
}

@test "the runtime as the user: what cannot work says what is missing" {
	direct_bundle "$RL_DIR/b3" '["true"]'
	# a mapping beyond the user's own id and its subordinate range
	jq '.linux.uidMappings += [{"containerID": 1, "hostID": 1, "size": 10}]' "$RL_DIR/b3/config.json" >"$RL_DIR/b3/c"
	mv "$RL_DIR/b3/c" "$RL_DIR/b3/config.json"
	chown "$RL_USER:" "$RL_DIR/b3/config.json"
	run rt run --bundle "$RL_DIR/b3" direct3 </dev/null
	((status != 0)) || fail "a mapping of host ids 1-10 was accepted: $output"
	if [ "$RT_NAME" = strata ]; then
		assert_contains "$output" "newuidmap"
		assert_contains "$output" "not allowed"
	fi
	[ ! -e "$RL_DIR/xdg/$RT_NAME/direct3" ] || fail "state left behind"
	# the systemd driver for a rootless container is the user's systemd manager's, which cannot delegate
	# cgroup v1 controllers (this host): refused as runc refuses it (hack/test-rootless-v2 runs it on v2)
	if [ "$RT_NAME" = strata ]; then
		direct_bundle "$RL_DIR/b4" '["true"]'
		run rt --systemd-cgroup run --bundle "$RL_DIR/b4" direct4 </dev/null
		((status != 0)) || fail "--systemd-cgroup was accepted rootless on cgroup v1: $output"
		assert_contains "$output" "needs cgroup v2"
		[ ! -e "$RL_DIR/xdg/$RT_NAME/direct4" ] || fail "state left behind"
	fi
	# an idmapped bind mount of a host directory: the kernel wants privilege over the host's filesystem
	if [ "$RT_NAME" = strata ]; then
		direct_bundle "$RL_DIR/b5" '["true"]'
		mkdir -p "$RL_DIR/vol5" && chown "$RL_USER:" "$RL_DIR/vol5"
		jq --arg src "$RL_DIR/vol5" '.mounts += [{"destination": "/vol", "type": "bind", "source": $src,
			"options": ["bind", "idmap"]}]' "$RL_DIR/b5/config.json" >"$RL_DIR/b5/c"
		mv "$RL_DIR/b5/c" "$RL_DIR/b5/config.json"
		chown "$RL_USER:" "$RL_DIR/b5/config.json"
		run rt run --bundle "$RL_DIR/b5" direct5 </dev/null
		((status != 0)) || fail "an idmapped bind mount of a host directory was accepted rootless: $output"
		assert_contains "$output" "idmap the bind mount of $RL_DIR/vol5"
		assert_contains "$output" "only a caller privileged over the source's filesystem may idmap it"
		[ ! -e "$RL_DIR/xdg/$RT_NAME/direct5" ] || fail "state left behind"
	fi
	# no XDG_RUNTIME_DIR and no --root: runc falls back to /run/runc (permission denied), strata says why
	run runuser -u "$RL_USER" -- env -i --chdir="$RL_DIR" PATH=/usr/bin:/bin "$RL_DIR/bin/$RT_NAME" list
	((status != 0)) || fail "list without XDG_RUNTIME_DIR succeeded: $output"
	if [ "$RT_NAME" = strata ]; then
		assert_contains "$output" "XDG_RUNTIME_DIR is not set"
	fi
}

# shellcheck shell=bash
# Shared helpers for hack/ scripts (sourced, not run).

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "$0 must run as root (it creates namespaces, mounts and cgroups)"; }

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# cargo_out PROFILE: the directory of this workspace's binaries built with PROFILE (debug, release).
# .cargo/config.toml names the target (every build is static), so cargo puts them under
# target/<triple>/, not target/.
# No jq: hack/install uses it on machines that only have a toolchain.
cargo_out() {
	local dir
	dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
	[ -n "$dir" ] || die "cargo metadata did not name the target directory"
	echo "$dir/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}/$1"
}

with_cargo() { export PATH="$HOME/.cargo/bin:$PATH"; command -v cargo >/dev/null || die "cargo not found: run hack/install-deps"; }

# make_busybox_rootfs DIR: a minimal rootfs from Debian's busybox-static (applet symlinks,
# passwd/group, /tmp 1777).
make_busybox_rootfs() {
	local dir=$1
	[ -x /bin/busybox ] || die "/bin/busybox missing: apt-get install busybox-static"
	rm -rf "$dir" && mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var,run}
	cp /bin/busybox "$dir/bin/busybox"
	local p
	for p in $("$dir/bin/busybox" --list-full); do
		[ "$p" = bin/busybox ] && continue
		mkdir -p "$dir/$(dirname "$p")"
		ln -sf "$(realpath -m -s --relative-to="$(dirname "/$p")" /bin/busybox)" "$dir/$p"
	done
	chmod 1777 "$dir/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$dir/etc/group"
}

# make_oci_archive LAYER_TAR OUT REF CMD: a one-layer OCI image archive named REF (index ref.name
# annotation), with CMD (a JSON array) as its command.
make_oci_archive() {
	local layer=$1 out=$2 ref=$3 cmd=$4 dir
	dir=$(mktemp -d "$(dirname "$out")/oci.XXXXXX")
	mkdir -p "$dir/blobs/sha256"
	blob() { # blob FILE: store FILE under its digest, print the digest
		local d
		d=$(sha256sum "$1" | cut -d' ' -f1)
		cp "$1" "$dir/blobs/sha256/$d"
		echo "sha256:$d"
	}
	local layer_digest
	layer_digest=$(blob "$layer")
	jq -cn --arg diff "$layer_digest" --arg arch "$(dpkg --print-architecture)" --argjson cmd "$cmd" '{
		architecture: $arch, os: "linux",
		config: {Cmd: $cmd, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
		rootfs: {type: "layers", diff_ids: [$diff]}}' >"$dir/config.json"
	jq -cn --arg c "$(blob "$dir/config.json")" --argjson cs "$(stat -c %s "$dir/config.json")" \
		--arg l "$layer_digest" --argjson ls "$(stat -c %s "$layer")" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
		layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}' >"$dir/manifest.json"
	jq -cn --arg m "$(blob "$dir/manifest.json")" --argjson ms "$(stat -c %s "$dir/manifest.json")" --arg ref "$ref" '{
		schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
		digest: $m, size: $ms, annotations: {"org.opencontainers.image.ref.name": $ref}}]}' >"$dir/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	tar -C "$dir" -cf "$out" oci-layout index.json blobs
	rm -rf "$dir"
}

# build_release: the release binaries strata and strata-rootfs (workspace release profile), stamped with
# the commit for `strata --version` (the same value every time for the same tree, so hack/install and
# hack/demo share one build).
build_release() {
	local commit
	commit=$(git -C "$(repo_root)" describe --always --dirty --abbrev=12 2>/dev/null || true)
	STRATA_COMMIT=$commit cargo build --release --locked -p strata -p strata-rootfs
}

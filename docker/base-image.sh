#!/bin/bash
# base-image.sh: a Debian 12 base image for podman, made here from the Debian archive (no registry).
#
# As root, from anywhere:  docker/base-image.sh [CACHE_DIR]
#   - installs podman, runc and debootstrap from Debian when missing;
#   - debootstraps bookworm (minbase) once into CACHE_DIR (default $VETO_IMAGE_CACHE or
#     /var/cache/veto-image), from the mirror this host's apt already uses, with its proxy;
#   - imports it as docker.io/library/debian:12-slim, the name docker/Dockerfile starts FROM;
#   - runs a container once; on hosts where that fails for the runtime or the limits (crun on a
#     hybrid cgroup v1/v2 host, rlimits above what the sandbox allows), writes a containers.conf
#     drop-in that selects runc and the host's own limits, and tries again.
# Exit 0 when podman can run the image; 1 with the reason otherwise. REIMPORT=1 imports again.
# shellcheck disable=SC2016  # the $(...) in apt-get's --format are apt's, not the shell's
set -eu

suite=bookworm
image=docker.io/library/debian:12-slim
cache=${1:-${VETO_IMAGE_CACHE:-/var/cache/veto-image}}
root=$cache/$suite
say() { echo "base-image: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, rootful podman)"; exit 1; }

need=""
for pkg in podman runc debootstrap; do
	dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
		need="$need $pkg"
done
if [ -n "$need" ]; then
	say "installing$need"
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# The archive URI apt uses here for a release ("bookworm", "bookworm-security").
mirror_for() {
	apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Identifier: Packages' 2>/dev/null |
		while read -r rel uri; do
			if [ "$rel" = "$1" ]; then echo "$uri"; break; fi
		done
}
main_uri=$(mirror_for "$suite")
sec_uri=$(mirror_for "$suite-security")
[ -n "$main_uri" ] || { say "this host's apt has no source for $suite"; exit 1; }
[ -n "$sec_uri" ] || sec_uri=$main_uri

if [ ! -f "$root/.complete" ]; then
	say "debootstrap $suite from $main_uri into $root (once)"
	rm -rf "$root"
	mkdir -p "$cache"
	debootstrap --variant=minbase "$suite" "$root" "$main_uri" >"$cache/debootstrap.log" 2>&1 ||
		{ say "debootstrap failed, see $cache/debootstrap.log"; exit 1; }
	rm -f "$root/etc/apt/sources.list"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
			"$main_uri" "$suite" "$suite"
		printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n'
		printf 'Types: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$sec_uri" "$suite"
		printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
	} >"$root/etc/apt/sources.list.d/debian.sources"
	# apt inside the image reaches the archive the way this host does (proxy, snapshot dates)
	for conf in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
		[ -f "$conf" ] || continue
		if grep -qiE 'proxy|check-valid-until|check-date' "$conf"; then
			cp "$conf" "$root/etc/apt/apt.conf.d/90host-${conf##*/}"
		fi
	done
	# as in debian:12-slim: no package caches kept in layers
	printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
		>"$root/etc/apt/apt.conf.d/docker-clean"
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
		"$root"/var/cache/apt/archives/*.deb
	touch "$root/.complete"
fi

if [ "${REIMPORT:-0}" = 1 ] || ! podman image exists "$image"; then
	say "importing $root as $image"
	tar --exclude=./.complete -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$image" >/dev/null
fi

try_run() { podman run --rm --network none "$image" true 2>"$cache/run.err"; }
if ! try_run; then
	say "podman cannot run a container: $(tail -n 1 "$cache/run.err")"
	hard_nofile=$(ulimit -Hn)
	hard_nproc=$(ulimit -Hu)
	max_pid=$(cat /proc/sys/kernel/pid_max)
	[ "$hard_nofile" != unlimited ] || hard_nofile=1048576
	if [ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt "$max_pid" ]; then
		hard_nproc=$max_pid
	fi
	dropin=/etc/containers/containers.conf.d/60-veto-base-image.conf
	mkdir -p "${dropin%/*}"
	cat >"$dropin" <<EOF
# written by veto's docker/base-image.sh: this host needs runc and its own rlimits
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=$hard_nproc:$hard_nproc"]
[engine]
runtime = "runc"
EOF
	say "wrote $dropin (runc, nofile $hard_nofile, nproc $hard_nproc); trying again"
	try_run || { say "podman still cannot run a container: $(tail -n 1 "$cache/run.err")"; exit 1; }
fi
say "$image ready"

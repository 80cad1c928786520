#!/bin/sh
# deb-test.sh BUILD_DIR: installs BUILD_DIR/veto_*.deb in a clean Debian 12 container (podman,
# image docker.io/library/debian:12-slim) and runs inside.sh there: apt install, veto check,
# veto serve as root (drops to veto), a query, stop, apt purge, nothing left behind.
# Without podman or the image it says so and exits 0 (a clean clone has neither); as root,
# /work/shared/tools/container-base.sh (or any debian:12-slim) provides them.
set -eu
build=${1:?usage: deb-test.sh BUILD_DIR}
image=${VETO_DEB_TEST_IMAGE:-docker.io/library/debian:12-slim}

if ! command -v podman >/dev/null 2>&1; then
	echo "deb-test: SKIPPED: podman is not installed"
	exit 0
fi
if ! podman image exists "$image" 2>/dev/null; then
	echo "deb-test: SKIPPED: no image $image (build it: container-base.sh, or podman pull)"
	exit 0
fi
set -- "$build"/veto_*.deb
[ -f "$1" ] || { echo "deb-test: no package in $build (make deb)" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/veto-deb-test.XXXXXX)
name=veto-deb-test-$$
trap 'podman rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp "$1" "$work/"
cp "$here/inside.sh" "$work/"
chmod -R a+rX "$work"
echo "deb-test: $(basename "$1") in $image"
# bounded: apt from the archive, then a few seconds of serving
timeout 600 podman run --rm --name "$name" -v "$work:/pkg:ro" "$image" sh /pkg/inside.sh

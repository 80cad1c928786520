#!/bin/bash
# make container-test: builds the image (docker/Dockerfile) with podman and runs the black-box
# test against it (tests/container/test_container.py). Exits 0 with a plain message when this
# machine cannot run containers (not root, no podman from Debian, or podman cannot start one);
# a failing image build or test is a failure. Prints how long each part took.
set -u
cd "$(dirname "$0")/../.."
image=${VETO_IMAGE:-localhost/veto:test}
now() { date +%s; }
t0=$(now)

if [ "$(id -u)" -ne 0 ]; then
	echo "container-test: NOT RUN: needs root (rootful podman); run 'sudo make container-test'"
	exit 0
fi
if ! docker/base-image.sh; then
	echo "container-test: NOT RUN: podman cannot run containers on this machine (see above)"
	exit 0
fi
t1=$(now)
echo "container-test: base image ready in $((t1 - t0)) s; building $image"
if ! timeout 1800 podman build --format docker -f docker/Dockerfile -t "$image" .; then
	echo "container-test: FAILED: the image does not build"
	exit 1
fi
t2=$(now)
echo "container-test: image built in $((t2 - t1)) s"
VETO_IMAGE=$image timeout 600 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/container
rc=$?
t3=$(now)
echo "container-test: black-box test $([ $rc -eq 0 ] && echo passed || echo FAILED) in" \
	"$((t3 - t2)) s (total $((t3 - t0)) s)"
exit $rc

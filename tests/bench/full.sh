#!/usr/bin/env bash
# The whole peer benchmark in one run (`make bench`): run.sh's comparison of Veto, dnsdist and
# unbound (hits, blocked, mix, miss, the DoT row, the 1,000,000-name start), then scaling.sh
# twice: every server at its peak on two CPUs, and at an equal load per worker or thread
# (RATE_PER_WORKER, default 20,000 queries/s: one worker is offered N, two are offered 2N).
# Scaling runs REPS rounds (default 3) of SCALE_DURATION seconds per run (default 5) and
# reports medians. About 25 minutes with the default DURATION of 10 s per comparison run.
# Usage: tests/bench/full.sh [BUILD_DIR]. The environment is passed on (DURATION, CLIENTS,
# OUTSTANDING, SCRAPE, MILLION, DEVICES, KEEP).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
RATE_PER_WORKER=${RATE_PER_WORKER:-20000}
SCALE_DURATION=${SCALE_DURATION:-5}
REPS=${REPS:-3}
export RATE_PER_WORKER REPS

echo "peer benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, commit" \
	"$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown);" \
	"load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## 1. Side by side, one core each"
RATE_PER_WORKER='' "$here/run.sh" "$build"
echo
echo "## 2. Scaling, each server at its peak"
RATE_PER_WORKER='' DURATION=$SCALE_DURATION SCALING=1 "$here/run.sh" "$build"
echo
echo "## 3. Scaling, $RATE_PER_WORKER queries/s per worker or thread"
DURATION=$SCALE_DURATION SCALING=1 "$here/run.sh" "$build"
echo
echo "peer benchmark done: $(date -u '+%H:%M UTC'); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/bin/sh
# `make test` in fresh clones of this repository, one after another, as CI runs it: what a suite that never
# fails at random must pass (docs/development.md, "Green every time"). Each run's verdict, time and pytest's
# counts go to stdout and to var/fresh-runs.log; each clone stays in /tmp/fluxhook-fresh-<n> until the next start.
#   sh devtools/fresh_runs.sh [RUNS] [hog]    RUNS defaults to 1; `hog` keeps one core busy beside each run.
# FLUXHOOK_REDIS_SERVER=debian in the environment runs the suite on Debian's current redis-server.
set -u
RUNS="${1:-1}"
HOG="${2:-}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD)"
mkdir -p "$ROOT/var"
n=1
while [ "$n" -le "$RUNS" ]; do
    dir="/tmp/fluxhook-fresh-$n"
    rm -rf "$dir" && git clone -q "$ROOT" "$dir" || exit 1
    hog_pid=""
    if [ "$HOG" = hog ]; then
        # One busy process at the same priority as the suite: half of a 2-core machine.
        sh -c 'while :; do :; done' & hog_pid=$!
    fi
    start=$(date +%s)
    (cd "$dir" && CI=true bash .ci/run) > "$dir.log" 2>&1
    status=$?
    [ -n "$hog_pid" ] && kill "$hog_pid"
    took=$(( $(date +%s) - start ))
    counts=$(grep -E "^(=+ )?[0-9]+ (passed|failed)|[0-9]+ passed" "$dir.log" | tr '\n' ' ' | tr -s '=' ' ')
    failed=$(grep -E "^(FAILED|ERROR) " "$dir.log" | tr '\n' ' ')
    line="$(date -u +%FT%TZ) $COMMIT run $n/$RUNS ${HOG:-at-rest} redis=${FLUXHOOK_REDIS_SERVER:-default} exit=$status ${took}s | $counts| $failed"
    echo "$line" | tee -a "$ROOT/var/fresh-runs.log"
    n=$((n + 1))
done

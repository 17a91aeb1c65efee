#!/bin/sh
# `make test` runs this first. The browser tests (tests/e2e/dashboard/) drive Debian's
# chromium: install it when it is missing and this machine can (root with apt-get); otherwise say
# why those tests will skip. Never fails: the rest of the suite runs either way.
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "no Chromium at $CHROMIUM, and installing it needs root and apt-get: the browser tests will skip"
    exit 0
fi
echo "installing chromium for the browser tests (apt-get install chromium)..."
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends chromium >/dev/null; }
# Package lists may be missing (fresh containers) or stale: update only when the first try fails.
if install || { apt-get update -q >/dev/null && install; }; then
    [ -x "$CHROMIUM" ] && exit 0
fi
echo "could not install chromium with apt-get (offline?): the browser tests will skip"
exit 0

#!/bin/sh
# `make test` runs this first. The CDN tests (tests/e2e/results/test_cdn.py) and `make bench-cdn` put Debian's nginx
# (its proxy_cache) in front of the web: install it when it is missing and this machine can (root with apt-get);
# otherwise say why those tests will skip. Never fails: the rest of the suite runs either way. Each test starts its own
# nginx on 127.0.0.1 with a configuration of its own; the package's service is never used.
NGINX="${NGINX:-/usr/sbin/nginx}"
[ -x "$NGINX" ] && exit 0
command -v nginx >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "no nginx at $NGINX, and installing it needs root and apt-get: the CDN tests will skip"
    exit 0
fi
echo "installing nginx for the CDN tests (apt-get install nginx-light)..."
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends nginx-light >/dev/null 2>&1; }
# Package lists may be missing (fresh containers) or stale: update only when the first try fails.
if install || { apt-get update -q >/dev/null 2>&1 && install; }; then
    [ -x "$NGINX" ] && exit 0
fi
echo "could not install nginx with apt-get (offline?): the CDN tests will skip"
exit 0

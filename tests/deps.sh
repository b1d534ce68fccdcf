#!/bin/sh
# Install the Debian packages fitd needs, only those missing, only when root.
# Usage: deps.sh GROUP...   (groups: build test bench e2e)
set -eu
pkgs=""
for group in "$@"; do
  case "$group" in
    build) pkgs="$pkgs gcc make pkg-config libc6-dev libopenblas-dev zlib1g-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev nettle-dev" ;;
    test)  pkgs="$pkgs libcmocka-dev libcurl4-openssl-dev clang libclang-rt-14-dev sqlite3 openssl curl libxml2-utils prometheus dataset-fashion-mnist python3-yaml python3-jsonschema" ;;
    bench) pkgs="$pkgs python3-torch wrk" ;;
    # npm only when no npm runs: NodeSource's nodejs bundles it and conflicts with Debian's.
    e2e)   pkgs="$pkgs chromium nodejs"; command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
    *) echo "deps.sh: unknown group $group" >&2; exit 2 ;;
  esac
done
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages:$missing — install them (as root: make deps)" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null

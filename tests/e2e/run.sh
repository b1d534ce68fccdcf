#!/bin/sh
# The dashboard end to end: BUILD/fitd on a free loopback port with a temp
# database, driven through the page in headless Chromium by dashboard.mjs —
# once without authentication, once with --auth-tokens (the token is entered in
# the page's prompt). Screenshots, downloads and fitd's logs go to
# BUILD/e2e-artifacts/. Exit non-zero, naming the failing step, on any failure.
#
# Usage: sh tests/e2e/run.sh BUILD   (from anywhere; BUILD is relative to the
# repository root unless absolute). Needs node, npm (playwright-core from
# tests/e2e/package-lock.json) and /usr/bin/chromium (or $CHROMIUM):
# `sh tests/deps.sh e2e` installs them.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
FITD="$BUILD/fitd"
ART="$BUILD/e2e-artifacts"
[ -x "$FITD" ] || { echo "e2e: $FITD is missing (make BUILD=... first)" >&2; exit 1; }
command -v node >/dev/null 2>&1 || { echo "e2e: node is missing (sh tests/deps.sh e2e)" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "e2e: chromium is missing (sh tests/deps.sh e2e)" >&2; exit 1; }

rm -rf "$ART"
mkdir -p "$ART"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fitd-e2e-XXXXXX")
pid=""

# stop_fitd: SIGTERM and wait; 1 unless it stopped cleanly (a sanitizer report
# in an ASan build makes the exit status non-zero too).
stop_fitd() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  pid=""
  return "$rc"
}
cleanup() {
  stop_fitd || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "e2e: npm ci (playwright-core)"
(cd tests/e2e && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null) ||
  { echo "e2e: npm ci failed in tests/e2e" >&2; exit 1; }

# start_fitd NAME [ARGS...]: fitd in the background on a free port; sets $pid, $url.
start_fitd() {
  name=$1; shift
  rm -f "$tmp/$name.port"
  FITD_WORKERS=2 "$FITD" serve --listen 127.0.0.1:0 --db "$tmp/$name.db" \
      --port-file "$tmp/$name.port" "$@" 2>"$ART/fitd-$name.log" &
  pid=$!
  i=0
  while [ ! -s "$tmp/$name.port" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "e2e: fitd ($name) exited at start:" >&2; cat "$ART/fitd-$name.log" >&2; exit 1; }
    i=$((i + 1))
    [ "$i" -lt 300 ] || { echo "e2e: fitd ($name) did not start in 30 s" >&2; exit 1; }
    sleep 0.1
  done
  url="http://127.0.0.1:$(cat "$tmp/$name.port")"
}

# pass NAME [--token T]: one run of the page against the fitd just started.
pass() {
  name=$1; shift
  if ! node tests/e2e/dashboard.mjs --url "$url" --csv tests/fixtures/digits.csv \
       --artifacts "$ART" --name "$name" "$@"; then
    echo "e2e: the $name pass failed; screenshots and fitd's log are in $ART" >&2
    tail -n 20 "$ART/fitd-$name.log" >&2
    exit 1
  fi
}

t0=$(date +%s)
start_fitd open
pass open --fallbacks 1
stop_fitd || { echo "e2e: fitd (open) did not stop cleanly; see $ART/fitd-open.log" >&2; exit 1; }

token="e2e-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s e2e\n' "$token" >"$tmp/tokens"
start_fitd auth --auth-tokens "$tmp/tokens"
pass auth --token "$token"
stop_fitd || { echo "e2e: fitd (auth) did not stop cleanly; see $ART/fitd-auth.log" >&2; exit 1; }

echo "e2e: ok in $(( $(date +%s) - t0 )) s (artifacts: $ART)"

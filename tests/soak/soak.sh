#!/bin/sh
# soak.sh BUILD [N] — N (default 1000) small jobs through one fitd process.
#
# Starts BUILD/fitd on a fresh database, uploads one small dataset, runs one job
# and reads fitd's resident set size (VmRSS in /proc/PID/status) as the baseline,
# then submits the other N-1 jobs, waits until every one has finished, and reads
# VmRSS again. Passes when every job succeeded and the final RSS is within 10 % of
# the baseline (no leak per job). Prints the figures. Needs curl. Not part of
# `make test` (it takes minutes): `make soak`; make test runs a 200-job version
# (tests/integration/test_soak.c).
set -u
BUILD=${1:-build}
N=${2:-1000}
FITD=${FITD_BIN:-$BUILD/fitd}
dir=$(mktemp -d "${TMPDIR:-/tmp}/fitd-soak.XXXXXX") || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
fail() { echo "soak: FAIL: $*" >&2; tail -n 20 "$dir/fitd.log" >&2; exit 1; }

"$FITD" serve --listen 127.0.0.1:0 --db "$dir/fitd.db" --port-file "$dir/port" \
  --log-level warn 2>"$dir/fitd.log" &
pid=$!
i=0
while [ ! -s "$dir/port" ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "fitd did not start"; sleep 0.1
done
base="http://127.0.0.1:$(cat "$dir/port")"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
# VmRSS split into anonymous memory (heap, stacks), file pages and shared memory.
rss_parts() { awk '/^Rss(Anon|File|Shmem):/ {printf "%s %s kB  ", $1, $2}' "/proc/$pid/status"; }

# 200 rows, 4 features, a regression target.
awk 'BEGIN { print "a,b,c,d,y"; for (i = 0; i < 200; i++) {
  a = (i * 37 % 101) / 101; b = (i * 11 % 53) / 53; c = (i * 7 % 29) / 29; d = (i % 17) / 17;
  printf "%.5f,%.5f,%.5f,%.5f,%.5f\n", a, b, c, d, 0.5 * a - 0.25 * b + c * d } }' >"$dir/data.csv"
ds=$(curl -sf -H 'Content-Type: text/csv' --data-binary @"$dir/data.csv" \
  "$base/v1/datasets?name=soak&label=y" | sed -n 's/.*"id":"\(ds_[^"]*\)".*/\1/p')
[ -n "$ds" ] || fail "dataset upload"
spec="{\"data\": {\"train\": \"$ds\"}, \"model\": {\"input_shape\": [4], \"layers\": [
  {\"type\": \"dense\", \"units\": 16, \"activation\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]},
  \"compile\": {\"optimizer\": \"adam\", \"loss\": \"mse\"},
  \"fit\": {\"epochs\": 2, \"batch_size\": 32, \"validation_split\": 0.2, \"seed\": 1}}"
submit() {
  curl -sf -H 'Content-Type: application/json' -d "$spec" "$base/v1/jobs" |
    sed -n 's/.*"id":"\(job_[^"]*\)".*/\1/p'
}
count() { # jobs with status $1 (up to 1000 per page, following cursors)
  n=0 cur=
  while :; do
    page=$(curl -sf "$base/v1/jobs?status=$1&limit=100${cur:+&cursor=$cur}") || return 1
    k=$(printf '%s' "$page" | grep -o '"id":"job_' | wc -l)
    n=$((n + k))
    cur=$(printf '%s' "$page" | sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p')
    [ -n "$cur" ] || break
  done
  echo "$n"
}
t0=$(date +%s)
first=$(submit); [ -n "$first" ] || fail "first submission"
i=0
until curl -sf "$base/v1/jobs/$first" | grep -q '"status":"succeeded"'; do
  i=$((i + 1)); [ $i -gt 600 ] && fail "the first job did not succeed"; sleep 0.1
done
# Warm-up that is not per-job state: let every HTTP thread open its database
# connection (they open lazily, each with its own SQLite page cache).
i=0
while [ $i -lt 40 ]; do
  curl -sf "$base/v1/jobs?limit=100" >/dev/null && curl -sf "$base/v1/jobs/$first" >/dev/null ||
    fail "warm-up request"
  i=$((i + 1))
done
rss0=$(rss)
parts0=$(rss_parts)
# In rounds of 100 submissions, each waited out, so that RSS can be traced.
i=1
while [ $i -lt "$N" ]; do
  id=$(submit); [ -n "$id" ] || fail "submission $i"
  i=$((i + 1))
  if [ $((i % 100)) -eq 0 ] || [ $i -eq "$N" ]; then
    while :; do
      q=$(count queued) && r=$(count running) || fail "listing jobs"
      [ "$q" -eq 0 ] && [ "$r" -eq 0 ] && break
      [ $(( $(date +%s) - t0 )) -gt 3600 ] && fail "jobs still unfinished after an hour"
      sleep 0.2
    done
    echo "soak: $i jobs done, VmRSS $(rss) kB"
  fi
done
sleep 1
rss1=$(rss)
parts1=$(rss_parts)
ok=$(count succeeded); failed=$(count failed); cancelled=$(count cancelled)
t1=$(date +%s)
echo "soak: $N jobs in $((t1 - t0)) s: $ok succeeded, $failed failed, $cancelled cancelled"
echo "soak: VmRSS after the first job ${rss0} kB, after all ${rss1} kB ($(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }') %)"
echo "soak: after the first job: $parts0"
echo "soak: after all:           $parts1"
[ "$ok" -eq "$N" ] || fail "not every job succeeded"
awk -v a="$rss0" -v b="$rss1" 'BEGIN { exit !(b <= a * 1.10) }' || fail "RSS grew more than 10 %"
echo "soak: ok"

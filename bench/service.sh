#!/bin/sh
# fitd's service benchmarks (issue 3; figures, not tests). Run from the repo root:
#   sh bench/service.sh BUILD        (BUILD/fitd must be built; this script builds
#                                     BUILD/bench/bare_mhd from bench/bare_mhd.c)
# Needs wrk and curl. Everything runs on 127.0.0.1 with temporary databases.
#   1. polling: GET /v1/jobs/{id} with wrk against fitd and a bare libmicrohttpd
#      server (bench/bare_mhd.c), idle and while training saturates fitd's workers;
#   2. submission: durable POST /v1/jobs per second;
#   3. end to end: the core benchmark's Fashion-MNIST job through the API vs `fitd train`.
# Environment:
#   BENCH_EPOCHS=10          Fashion-MNIST epochs of the end-to-end job
#   BENCH_RUNS=3             wrk runs per polling figure (the median is shown)
#   BENCH_WRK_SECONDS=5      length of one wrk run
#   BENCH_WRK_CONNECTIONS=32 wrk connections (2 wrk threads)
#   BENCH_SUBMISSIONS=200    submissions per round (3 rounds, median)
#   BENCH_E2E_RUNS=5         end-to-end runs of each kind (interleaved, median)
#   BENCH_DATA=/usr/share/datasets/fashion-mnist
# Exit status: 0 when every step ran (a MISS is not a failure), 1 when one failed.
set -u
BUILD=${1:-build}
EPOCHS=${BENCH_EPOCHS:-10}
RUNS=${BENCH_RUNS:-3}
DUR=${BENCH_WRK_SECONDS:-5}
CONNS=${BENCH_WRK_CONNECTIONS:-32}
NSUB=${BENCH_SUBMISSIONS:-200}
E2E_RUNS=${BENCH_E2E_RUNS:-5}
DATA=${BENCH_DATA:-/usr/share/datasets/fashion-mnist}
CSV=tests/fixtures/digits.csv
FITD=$BUILD/fitd
BARE=$BUILD/bench/bare_mhd
NCPU=$(nproc)
failed=0

for tool in wrk curl pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || { echo "service.sh: $tool is missing (make deps-bench)" >&2; exit 1; }
done
[ -x "$FITD" ] || { echo "service.sh: $FITD is not built (make BUILD=$BUILD $FITD)" >&2; exit 1; }
[ -f "$CSV" ] || { echo "service.sh: run from the repo root" >&2; exit 1; }

mkdir -p "$BUILD/bench" || exit 1
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -o "$BARE" bench/bare_mhd.c \
  $(pkg-config --cflags --libs libmicrohttpd) || { echo "service.sh: cannot build $BARE" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fitd-service.XXXXXX") || exit 1
PIDS=""

# Stop every server this script started (SIGTERM, then SIGKILL after 10 s).
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for p in $PIDS; do
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$p" 2>/dev/null
  done
  PIDS=""
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# stop PID: stop one server now.
stop() {
  kill "$1" 2>/dev/null
  i=0
  while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  rest=""
  for p in $PIDS; do [ "$p" = "$1" ] || rest="$rest $p"; done
  PIDS=$rest
}

# wait_port FILE PID: the port a server wrote to FILE (empty if it died first).
wait_port() {
  i=0
  while [ ! -s "$1" ] && [ $i -lt 300 ]; do
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
    i=$((i + 1))
  done
  [ -s "$1" ] && cat "$1"
}

# start_fitd NAME FLAGS...: fitd serve on a fresh database; sets FPID and URL.
start_fitd() {
  name=$1; shift
  rm -f "$TMP/$name.port"
  "$FITD" serve --db "$TMP/$name.db" --listen 127.0.0.1:0 --port-file "$TMP/$name.port" \
    "$@" 2>"$TMP/$name.log" &
  FPID=$!
  PIDS="$PIDS $FPID"
  port=$(wait_port "$TMP/$name.port" "$FPID")
  if [ -z "$port" ]; then
    echo "service.sh: fitd ($name) did not start:" >&2
    tail -n 5 "$TMP/$name.log" >&2
    return 1
  fi
  URL=http://127.0.0.1:$port
}

# json_str KEY: the first "KEY":"value" string on stdin.
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# upload_csv URL NAME: upload digits.csv, print the dataset id.
upload_csv() {
  curl -sf -X POST "$1/v1/datasets?name=$2&label=label" -H 'Content-Type: text/csv' \
    --data-binary @"$CSV" | json_str id
}

# submit URL SPEC_FILE: POST a job, print its id.
submit() {
  curl -sf -X POST "$1/v1/jobs" -H 'Content-Type: application/json' --data-binary @"$2" |
    json_str id
}

status_of() { curl -sf "$1/v1/jobs/$2" | json_str status; }

# wait_done URL JOB SECONDS: poll every 0.1 s until the job has finished; print its status.
wait_done() {
  i=0
  lim=$(($3 * 10))
  while [ $i -lt "$lim" ]; do
    s=$(status_of "$1" "$2")
    case "$s" in succeeded | failed | cancelled) echo "$s"; return 0 ;; esac
    sleep 0.1
    i=$((i + 1))
  done
  echo timeout
}

# watch_done URL JOB SECONDS: follow the job's event stream (it ends with the job),
# then print its status. One idle connection instead of a poll every 0.1 s: the
# poll loop's curl and sed processes took CPU from the training being timed.
watch_done() {
  curl -sN --max-time "$3" "$1/v1/jobs/$2/events" > /dev/null
  s=$(status_of "$1" "$2")
  case "$s" in succeeded | failed | cancelled) echo "$s" ;; *) echo timeout ;; esac
}

# median: the middle of the numbers on stdin ("" when none).
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

now() { date +%s.%N; }

# wrk_run URL: one wrk run; prints "requests/s p99_ms errors" (errors = non-2xx
# replies plus socket errors and timeouts; timed-out requests are missing from p99).
wrk_run() {
  wrk -t2 -c"$CONNS" -d"${DUR}s" --timeout 5s --latency "$1" > "$TMP/wrk.out" 2>&1
  cat "$TMP/wrk.out" >> "$TMP/wrk.all"
  awk '
    /^ +99%/ { v = $2; p = v + 0
               if (v ~ /us$/) p = p / 1000; else if (v ~ /ms$/) p = p; else if (v ~ /s$/) p = p * 1000 }
    /^Requests\/sec:/ { r = $2 }
    /Non-2xx or 3xx responses:/ { e += $NF }
    /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
    END { if (r == "") r = 0; if (p == "") p = 0; printf "%s %.3f %d\n", r, p, e }' "$TMP/wrk.out"
}

# poll_round TAG: RUNS interleaved wrk runs of fitd and the bare server; appends
# "TAG server requests/s p99_ms errors" lines to $TMP/poll.txt.
poll_round() {
  r=0
  while [ $r -lt "$RUNS" ]; do
    echo "  wrk $1 run $((r + 1))/$RUNS" >&2
    echo "$1 fitd $(wrk_run "$URL/v1/jobs/$POLL_JOB")" >> "$TMP/poll.txt"
    echo "$1 bare $(wrk_run "$BARE_URL/v1/jobs/$POLL_JOB")" >> "$TMP/poll.txt"
    r=$((r + 1))
  done
}

# pick TAG SERVER FIELD: the median of one field (3 = requests/s, 4 = p99, 5 = errors).
pick() { awk -v t="$1" -v s="$2" -v f="$3" '$1 == t && $2 == s { print $f }' "$TMP/poll.txt" | median; }

# check LABEL VALUE OP GOAL: one PASS/MISS line.
check() {
  awk -v l="$1" -v v="$2" -v op="$3" -v g="$4" 'BEGIN {
    if (v == "" || v == "n/a") { printf "%-46s %10s  %-8s %s\n", l, "n/a", op " " g, "MISS"; exit }
    ok = (op == "<=") ? (v + 0 <= g + 0) : (op == ">=") ? (v + 0 >= g + 0) : (v + 0 < g + 0)
    printf "%-46s %10s  %-8s %s\n", l, v, op " " g, ok ? "PASS" : "MISS" }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a";
                                   else printf "%.3f\n", a / b }'
}

# Specs. The digits job that is polled, the long jobs that keep the workers busy
# (a wide MLP on digits, epochs at the service's maximum: cancelled afterwards),
# the tiny job of the submission benchmark, and the Fashion-MNIST job of the core
# benchmark (bench/bench_core.c: 784-512-256-10, dropout 0.2, L2 1e-4, Adam 1e-3,
# batch 128, no validation).
digits_spec() { # DATASET EPOCHS UNITS
  cat <<EOF
{"name": "bench", "data": {"train": "$1"},
 "model": {"input_shape": [64], "layers": [
   {"type": "dense", "units": $3, "activation": "relu", "kernel_regularizer": {"l2": 0.001}},
   {"type": "dropout", "rate": 0.2},
   {"type": "dense", "units": $3, "activation": "relu"},
   {"type": "dense", "units": 10, "activation": "softmax"}]},
 "compile": {"optimizer": {"name": "adam", "learning_rate": 0.001},
             "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
 "fit": {"epochs": $2, "batch_size": 32, "validation_split": 0.2, "seed": 42}}
EOF
}

fashion_spec() { # TRAIN TEST EPOCHS
  cat <<EOF
{"name": "fashion-mnist-e2e", "data": {"train": "$1", "test": "$2"},
 "model": {"input_shape": [784], "layers": [
   {"type": "dense", "units": 512, "activation": "relu", "kernel_regularizer": {"l2": 0.0001}},
   {"type": "dropout", "rate": 0.2},
   {"type": "dense", "units": 256, "activation": "relu", "kernel_regularizer": {"l2": 0.0001}},
   {"type": "dropout", "rate": 0.2},
   {"type": "dense", "units": 10, "activation": "softmax", "kernel_regularizer": {"l2": 0.0001}}]},
 "compile": {"optimizer": {"name": "adam", "learning_rate": 0.001},
             "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
 "fit": {"epochs": $3, "batch_size": 128, "shuffle": true, "seed": 42}}
EOF
}

echo "== fitd service bench: $NCPU cores, wrk -t2 -c$CONNS -d${DUR}s (median of $RUNS runs)," \
     "$NSUB submissions x 3, Fashion-MNIST $EPOCHS epochs x $E2E_RUNS"

# ------------------------------------------------------------------ 1. polling
echo "-- polling: GET /v1/jobs/{id}" >&2
poll_ok=0
"$BARE" --port-file "$TMP/bare.port" 2>"$TMP/bare.log" &
BPID=$!
PIDS="$PIDS $BPID"
bport=$(wait_port "$TMP/bare.port" "$BPID")
if [ -n "$bport" ] && start_fitd poll --workers "$NCPU"; then
  BARE_URL=http://127.0.0.1:$bport
  ds=$(upload_csv "$URL" digits)
  digits_spec "$ds" 5 64 > "$TMP/small.json"
  POLL_JOB=$(submit "$URL" "$TMP/small.json")
  st=$( [ -n "$POLL_JOB" ] && wait_done "$URL" "$POLL_JOB" 60)
  if [ -n "$ds" ] && [ "$st" = succeeded ]; then
    poll_ok=1
  else
    echo "service.sh: could not prepare the polled job (dataset '$ds', job '$POLL_JOB' $st)" >&2
  fi
fi
if [ $poll_ok = 1 ]; then
  : > "$TMP/poll.txt"
  poll_round idle
  # Saturate the workers: one long job per worker plus one queued behind them.
  digits_spec "$ds" 10000 1024 > "$TMP/long.json"
  LONG=""
  i=0
  while [ $i -le "$NCPU" ]; do
    LONG="$LONG $(submit "$URL" "$TMP/long.json")"
    i=$((i + 1))
  done
  # Wait until every worker is inside a batch loop (past loading its data).
  i=0
  busy=0
  while [ $i -lt 300 ]; do
    busy=0
    for j in $LONG; do
      curl -sf "$URL/v1/jobs/$j" | grep -q '"status":"running","progress":{"epoch":[0-9]*,"epochs":[0-9]*,"batch":[1-9]' &&
        busy=$((busy + 1))
    done
    [ $busy -ge "$NCPU" ] && break
    sleep 0.1
    i=$((i + 1))
  done
  echo "  $busy of $NCPU workers training" >&2
  poll_round train
  for j in $LONG; do curl -sf -X POST "$URL/v1/jobs/$j/cancel" > /dev/null; done
  for j in $LONG; do
    s=$(wait_done "$URL" "$j" 30)
    [ "$s" = cancelled ] || echo "service.sh: long job $j ended $s, not cancelled" >&2
  done

  fi_rps=$(pick idle fitd 3); fi_p99=$(pick idle fitd 4); fi_err=$(pick idle fitd 5)
  bi_rps=$(pick idle bare 3); bi_p99=$(pick idle bare 4)
  ft_rps=$(pick train fitd 3); ft_p99=$(pick train fitd 4); ft_err=$(pick train fitd 5)
  bt_rps=$(pick train bare 3); bt_p99=$(pick train bare 4)
  ri=$(ratio "$fi_rps" "$bi_rps")
  rt=$(ratio "$ft_rps" "$bt_rps")
  echo "-- polling GET /v1/jobs/{id} (fitd: $NCPU workers, 4 HTTP threads; bare: bench/bare_mhd.c, same MHD flags)"
  printf '%-34s %9.0f req/s  p99 %7.2f ms\n' "fitd idle" "$fi_rps" "$fi_p99"
  printf '%-34s %9.0f req/s  p99 %7.2f ms\n' "bare libmicrohttpd idle" "$bi_rps" "$bi_p99"
  printf '%-34s %9.0f req/s  p99 %7.2f ms   (%d of %d workers busy)\n' "fitd while training" \
    "$ft_rps" "$ft_p99" "$busy" "$NCPU"
  printf '%-34s %9.0f req/s  p99 %7.2f ms\n' "bare libmicrohttpd while training" "$bt_rps" "$bt_p99"
  echo "req/s ratio fitd/bare idle:        $ri"
  echo "req/s ratio fitd/bare training:    $rt"
  [ "${fi_err:-0}" = 0 ] && [ "${ft_err:-0}" = 0 ] ||
    echo "warning: fitd had errors or timeouts in wrk (median idle $fi_err, training $ft_err)"

  # Where fitd's time per request goes, idle, one run each: the same GET without
  # the access log (--log-level warn), GET /healthz (routing + a store ping, no
  # job row or resource) and a 404 (routing + a problem document, no store).
  stop "$FPID"
  if start_fitd poll --workers 1 --log-level warn; then
    q_rps=$(wrk_run "$URL/v1/jobs/$POLL_JOB" | cut -d' ' -f1)
    h_rps=$(wrk_run "$URL/healthz" | cut -d' ' -f1)
    n_rps=$(wrk_run "$URL/v1/nothing" | awk '{ print $1 }')
    echo "-- where fitd's polling time goes (idle, one run each, access log off)"
    printf '%-34s %9.0f req/s\n' "GET /v1/jobs/{id}, --log-level warn" "$q_rps"
    printf '%-34s %9.0f req/s\n' "GET /healthz (store ping only)" "$h_rps"
    printf '%-34s %9.0f req/s\n' "GET unknown path (404, no store)" "$n_rps"
    stop "$FPID"
  fi
  if awk -v r="$ri" 'BEGIN { exit !(r == "n/a" || r + 0 < 0.5) }'; then
    cat <<'EOF'
note: fitd's GET /v1/jobs/{id} is CPU-bound in its own per-request work: one
  SQLite read of the job row (with its WAL lock syscalls), the resource written
  straight into a buffer with the stored JSON documents spliced in, a 64-bit
  ETag hash, and the access-log line (formatted per request, written in batches:
  compare "fitd idle" with the warn line). wrk shares the 2 cores with the
  server, so figures move by about 10% between runs. Replies queued
  before the request was read (begin_request's 404, 405, 415, 413) go out with
  "Connection: close", hence the slow 404 line.
EOF
  fi
else
  failed=1
  ri=n/a; rt=n/a; ft_p99=""
fi
[ -n "${FPID:-}" ] && stop "$FPID"
stop "$BPID"

# ------------------------------------------------------------------ 2. submission
echo "-- submission: POST /v1/jobs" >&2
sub_rps=""; sub_c=""
if start_fitd submit --workers 1; then
  ds=$(upload_csv "$URL" digits)
  cat > "$TMP/tiny.json" <<EOF
{"data": {"train": "$ds"}, "model": {"input_shape": [64], "layers": [
   {"type": "dense", "units": 10, "activation": "softmax"}]},
 "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
 "fit": {"epochs": 1, "batch_size": 256}}
EOF
  # One curl process, NSUB sequential POSTs on one keep-alive connection.
  urls=""
  i=0
  while [ $i -lt "$NSUB" ]; do urls="$urls $URL/v1/jobs"; i=$((i + 1)); done
  : > "$TMP/sub.txt"
  for round in 1 2 3; do
    t0=$(now)
    # shellcheck disable=SC2086
    n202=$(curl -s -H 'Content-Type: application/json' --data-binary @"$TMP/tiny.json" \
             -w 'HTTPCODE=%{http_code}\n' $urls | grep -c '^HTTPCODE=202$')
    t1=$(now)
    if [ "$n202" != "$NSUB" ]; then
      echo "service.sh: submission round $round: $n202 of $NSUB got 202" >&2
      failed=1
    fi
    awk -v n="$NSUB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", n / (b - a) }' >> "$TMP/sub.txt"
  done
  sub_rps=$(median < "$TMP/sub.txt")
  # The same with 8 concurrent connections (wrk, a POST script).
  cat > "$TMP/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$(cat "$TMP/tiny.json")]]
EOF
  wrk -t2 -c8 -d3s --latency -s "$TMP/post.lua" "$URL/v1/jobs" > "$TMP/wrk.out" 2>&1
  sub_c=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.out")
  sub_cerr=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$TMP/wrk.out")
  stop "$FPID"
  echo "-- submission: durable POST /v1/jobs (synchronous=FULL; --workers 1 running the tiny jobs)"
  printf '%-34s %9s jobs/s  (%d sequential on one connection, median of 3 rounds)\n' \
    "fitd sequential" "$sub_rps" "$NSUB"
  printf '%-34s %9s jobs/s  (wrk -c8 -d3s%s)\n' "fitd 8 connections" "${sub_c:-n/a}" \
    "${sub_cerr:+, $sub_cerr non-2xx}"
else
  failed=1
fi

# ------------------------------------------------------------------ 3. end to end
echo "-- end to end: Fashion-MNIST $EPOCHS epochs" >&2
X=$DATA/train-images-idx3-ubyte.gz
Y=$DATA/train-labels-idx1-ubyte.gz
XT=$DATA/t10k-images-idx3-ubyte.gz
YT=$DATA/t10k-labels-idx1-ubyte.gz
e2e=n/a
# epoch_median: the median "seconds" of the epoch records on stdin.
epoch_median() { grep -o '"seconds":[0-9.e+-]*' | cut -d: -f2 | median; }
# epoch_sum: their sum (wall time minus it = loading, commits, start-up).
epoch_sum() { grep -o '"seconds":[0-9.e+-]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'; }
if [ ! -f "$X" ] || [ ! -f "$Y" ] || [ ! -f "$XT" ] || [ ! -f "$YT" ]; then
  echo "service.sh: Fashion-MNIST not found in $DATA (make deps-bench)" >&2
  failed=1
elif start_fitd e2e --workers 1; then
  t0=$(now)
  tr_id=$(curl -sf -X POST "$URL/v1/datasets" -F name=fashion-train -F "x=@$X" -F "y=@$Y" | json_str id)
  t1=$(now)
  te_id=$(curl -sf -X POST "$URL/v1/datasets" -F name=fashion-test -F "x=@$XT" -F "y=@$YT" | json_str id)
  up_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  fashion_spec "$tr_id" "$te_id" "$EPOCHS" > "$TMP/fashion.json"
  # fitd train gets the threads per job the pool chose (cores / 1 worker).
  blas=$(sed -n 's/.*"msg":"pool started".*"threads_per_job":\([0-9]*\).*/\1/p' "$TMP/e2e.log" | head -n 1)
  : > "$TMP/e2e.txt"
  r=0
  while [ $r -lt "$E2E_RUNS" ] && [ -n "$tr_id" ] && [ -n "$te_id" ]; do
    r=$((r + 1))
    # fitd train: same spec (its "data" is ignored), same files.
    echo "  fitd train run $r/$E2E_RUNS" >&2
    t0=$(now)
    "$FITD" train "$TMP/fashion.json" --train "$X:$Y" --test "$XT:$YT" --threads "${blas:-$NCPU}" \
      > "$TMP/train.out" 2> "$TMP/train.err"
    trc=$?
    t1=$(now)
    if [ $trc != 0 ]; then
      echo "service.sh: fitd train failed:" >&2
      tail -n 5 "$TMP/train.err" >&2
      failed=1
      break
    fi
    echo "train wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" >> "$TMP/e2e.txt"
    echo "train epoch $(epoch_median < "$TMP/train.out")" >> "$TMP/e2e.txt"
    echo "train outside $(awk -v a="$t0" -v b="$t1" -v e="$(epoch_sum < "$TMP/train.out")" \
      'BEGIN { print b - a - e }')" >> "$TMP/e2e.txt"
    echo "train acc $(tail -n 1 "$TMP/train.out" | sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p')" >> "$TMP/e2e.txt"

    # Through the API: submit, follow its events until it has finished.
    echo "  API run $r/$E2E_RUNS" >&2
    t0=$(now)
    job=$(submit "$URL" "$TMP/fashion.json")
    st=$( [ -n "$job" ] && watch_done "$URL" "$job" 3600)
    t1=$(now)
    if [ "$st" != succeeded ]; then
      echo "service.sh: the API job ended '$st'" >&2
      tail -n 5 "$TMP/e2e.log" >&2
      failed=1
      break
    fi
    res=$(curl -sf "$URL/v1/jobs/$job")
    c_at=$(echo "$res" | json_str created_at)
    f_at=$(echo "$res" | json_str finished_at)
    echo "api wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" >> "$TMP/e2e.txt"
    echo "api server $(awk -v a="$(date -d "$c_at" +%s.%N)" -v b="$(date -d "$f_at" +%s.%N)" \
      'BEGIN { print b - a }')" >> "$TMP/e2e.txt"
    curl -sf "$URL/v1/jobs/$job/metrics" > "$TMP/metrics.json"
    echo "api epoch $(epoch_median < "$TMP/metrics.json")" >> "$TMP/e2e.txt"
    echo "api outside $(awk -v a="$t0" -v b="$t1" -v e="$(epoch_sum < "$TMP/metrics.json")" \
      'BEGIN { print b - a - e }')" >> "$TMP/e2e.txt"
    echo "api acc $(echo "$res" | sed -n 's/.*"test_metrics":{[^}]*"accuracy":\([0-9.]*\).*/\1/p')" \
      >> "$TMP/e2e.txt"
  done
  [ -n "$tr_id" ] && [ -n "$te_id" ] || { echo "service.sh: Fashion-MNIST upload failed" >&2; failed=1; }
  stop "$FPID"
  e2e_get() { awk -v a="$1" -v b="$2" '$1 == a && $2 == b { print $3 }' "$TMP/e2e.txt" | median; }
  api_s=$(e2e_get api wall); srv_s=$(e2e_get api server); tr_s=$(e2e_get train wall)
  api_ep=$(e2e_get api epoch); tr_ep=$(e2e_get train epoch)
  e2e=$(ratio "$api_s" "$tr_s")
  echo "-- end to end: Fashion-MNIST 784-512-256-10, $EPOCHS epochs, ${blas:-?} threads both ways (median of $E2E_RUNS interleaved runs)"
  api_out=$(e2e_get api outside); tr_out=$(e2e_get train outside)
  awk -v api="$api_s" -v srv="$srv_s" -v tr="$tr_s" -v ae="$api_ep" -v te="$tr_ep" -v up="$up_s" \
      -v ao="$api_out" -v to="$tr_out" \
      -v aa="$(e2e_get api acc)" -v ta="$(e2e_get train acc)" 'BEGIN {
    f = "%-34s %9s s"
    printf f "  (training-set upload %s s, not counted)\n", "API submit -> succeeded", api == "" ? "n/a" : sprintf("%.2f", api), up
    printf f "  (created_at -> finished_at)\n", "API server-side", srv == "" ? "n/a" : sprintf("%.2f", srv)
    printf f "\n", "fitd train (wall)", tr == "" ? "n/a" : sprintf("%.2f", tr)
    printf "median epoch API / fitd train:     %s / %s s\n", ae == "" ? "n/a" : sprintf("%.3f", ae), te == "" ? "n/a" : sprintf("%.3f", te)
    printf "outside epochs API / fitd train:   %s / %s s  (wall - sum of epoch seconds: loading, commits)\n", ao == "" ? "n/a" : sprintf("%.2f", ao), to == "" ? "n/a" : sprintf("%.2f", to)
    printf "test accuracy API / fitd train:    %s / %s\n", aa == "" ? "n/a" : sprintf("%.4f", aa), ta == "" ? "n/a" : sprintf("%.4f", ta) }'
  echo "time ratio API/fitd train:         $e2e"
  for k in "api wall" "train wall"; do
    printf 'runs %-10s (s):              %s\n' "${k% wall}" \
      "$(awk -v k="$k" '$1 " " $2 == k { printf "%.2f ", $3 }' "$TMP/e2e.txt")"
  done
else
  failed=1
fi

echo
echo "== summary (targets of issue 3)"
printf '%-46s %10s  %-8s %s\n' "target" "value" "goal" "result"
check "fitd/bare req/s, idle" "$ri" ">=" 0.5
check "fitd/bare req/s, while training" "$rt" ">=" 0.5
check "fitd p99 ms while training" "${ft_p99:-}" "<" 20
check "API/fitd train time, Fashion-MNIST" "$e2e" "<=" 1.05
[ "$failed" = 0 ] || echo "service.sh: some steps failed (see the messages above)" >&2
exit "$failed"

#!/bin/sh
# The sweep benchmark (issue 6; figures, not tests). Run from the repo root:
#   sh bench/sweep.sh BUILD          (BUILD/fitd must be built)
# A 12-trial grid on tests/fixtures/digits.csv (Dense 64 relu, kernel l2 in
# {0, 1e-4, 1e-3, 1e-2} x dropout rate in {0, 0.2, 0.5}, Dense 10 softmax, Adam,
# batch 32, validation_split 0.2), timed three ways, wall clock:
#   1. POST /v1/sweeps with max_parallel 2 on a fitd with 2 workers, polled to the end;
#   2. the same 12 specs as POST /v1/jobs, one at a time, each waited for in turn;
#   3. 12 sequential PyTorch runs of the same models (bench/torch_sweep.py).
# Target: 1. takes <= 0.6 x 2. Needs curl, python3 (JSON) and /usr/bin/python3
# with torch for 3. (skipped when missing).
# Environment: BENCH_SWEEP_EPOCHS=20 epochs per trial.
set -u
BUILD=${1:-build}
EPOCHS=${BENCH_SWEEP_EPOCHS:-20}
CSV=tests/fixtures/digits.csv
FITD=$BUILD/fitd
[ -x "$FITD" ] || { echo "sweep.sh: $FITD is not built" >&2; exit 1; }
[ -f "$CSV" ] || { echo "sweep.sh: run from the repo root" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "sweep.sh: curl is missing" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fitd-sweep.XXXXXX") || exit 1
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

now() { python3 -c 'import time; print("%.3f" % time.monotonic())'; }
json() { python3 -c "import sys, json; d = json.load(sys.stdin); print($1)"; }
# The first "status" member of a resource (the sweep's or the job's own): polled
# with grep, not python, so that polling takes no CPU from the two workers.
status_of() { curl -sf "$1" | grep -o '"status":"[a-z]*"' | head -n 1 | cut -d'"' -f4; }

"$FITD" serve --listen 127.0.0.1:0 --db "$TMP/fitd.db" --port-file "$TMP/port" --workers 2 \
  --log-level warn 2>"$TMP/log" &
PID=$!
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$TMP/port" ] || { echo "sweep.sh: fitd did not start" >&2; cat "$TMP/log" >&2; exit 1; }
URL=http://127.0.0.1:$(cat "$TMP/port")
DS=$(curl -sf -X POST "$URL/v1/datasets?name=digits&label=label" -H 'Content-Type: text/csv' \
  --data-binary @"$CSV" | json 'd["id"]') || { echo "sweep.sh: upload failed" >&2; exit 1; }

# The base spec with the two swept values filled in ($1 = l2, $2 = rate).
spec() {
  printf '{"data":{"train":"%s"},"model":{"input_shape":[64],"layers":[' "$DS"
  printf '{"type":"dense","units":64,"activation":"relu","kernel_regularizer":{"l2":%s}},' "$1"
  printf '{"type":"dropout","rate":%s},{"type":"dense","units":10,"activation":"softmax"}]},' "$2"
  printf '"compile":{"optimizer":{"name":"adam","learning_rate":0.001},'
  printf '"loss":"sparse_categorical_crossentropy","metrics":["accuracy"]},'
  printf '"fit":{"epochs":%s,"batch_size":32,"validation_split":0.2,"seed":3}}' "$EPOCHS"
}

# 1. the sweep
BODY="{\"base\":$(spec 0 0),\"method\":\"grid\",\"max_parallel\":2,\"parameters\":{"
BODY="$BODY\"/model/layers/0/kernel_regularizer/l2\":[0,0.0001,0.001,0.01],"
BODY="$BODY\"/model/layers/1/rate\":[0,0.2,0.5]}}"
t0=$(now)
SID=$(curl -sf -X POST "$URL/v1/sweeps" -H 'Content-Type: application/json' -d "$BODY" |
  json 'd["id"]') || { echo "sweep.sh: sweep refused" >&2; exit 1; }
while :; do
  ST=$(status_of "$URL/v1/sweeps/$SID")
  case $ST in queued|running) sleep 0.05 ;; *) break ;; esac
done
t1=$(now)
SWEEP_S=$(python3 -c "print('%.2f' % ($t1 - $t0))")
SWEEP_BEST=$(curl -sf "$URL/v1/sweeps/$SID" | json '"%.4f" % d["best"]["objective"]')
echo "sweep: 12 trials, $EPOCHS epochs, max_parallel 2, 2 workers: ${SWEEP_S} s (status $ST, best val_loss $SWEEP_BEST)"

# 2. the same jobs, one at a time
t0=$(now)
for l2 in 0 0.0001 0.001 0.01; do
  for rate in 0 0.2 0.5; do
    JID=$(curl -sf -X POST "$URL/v1/jobs" -H 'Content-Type: application/json' -d "$(spec $l2 $rate)" |
      json 'd["id"]') || { echo "sweep.sh: job refused" >&2; exit 1; }
    while :; do
      ST=$(status_of "$URL/v1/jobs/$JID")
      case $ST in queued|running) sleep 0.05 ;; *) break ;; esac
    done
  done
done
t1=$(now)
SEQ_S=$(python3 -c "print('%.2f' % ($t1 - $t0))")
RATIO=$(python3 -c "print('%.2f' % ($SWEEP_S / $SEQ_S))")
VERDICT=$(python3 -c "print('MEETS' if $SWEEP_S <= 0.6 * $SEQ_S else 'MISS')")
echo "jobs one at a time: ${SEQ_S} s"
echo "sweep / one-at-a-time: ${RATIO}x (target <= 0.6x: $VERDICT)"

# 3. PyTorch, sequential
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  OUT=$(/usr/bin/python3 bench/torch_sweep.py --epochs "$EPOCHS" --csv "$CSV" 2>/dev/null | grep '^RESULT')
  TORCH_S=$(echo "$OUT" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
  TORCH_BEST=$(echo "$OUT" | sed -n 's/.*best_val_loss=\([0-9.,]*\).*/\1/p' |
    python3 -c 'import sys; print("%.4f" % min(float(v) for v in sys.stdin.read().split(",")))')
  echo "pytorch, 12 sequential runs (2 threads): ${TORCH_S} s (best val_loss $TORCH_BEST)"
  echo "sweep / pytorch: $(python3 -c "print('%.2f' % ($SWEEP_S / $TORCH_S))")x"
else
  echo "pytorch: skipped (/usr/bin/python3 has no torch; make deps-bench)"
fi

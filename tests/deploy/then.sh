#!/usr/bin/env bash
# then.sh — the end-to-end check `make docker-check` runs against the fitd
# container (the THEN command of ../shared/tools/docker-check), on the host, with
# curl, sed and grep only. The container must run with FITD_WORKERS=1 and a
# volume on /var/lib/fitd.
#
# Environment (exported by docker-check): BASE_URL (http://127.0.0.1:PORT),
# CONTAINER (its name), ENGINE (the docker/podman command, may hold flags).
#
# 1. upload tests/fixtures/digits.csv; train the classic example model (Dense 64
#    relu l2(0.001), Dropout 0.2, Dense 10 softmax, adam) to `succeeded`; download
#    its weights (a safetensors file) and its metrics;
# 2. start a long job and queue a third one behind it (one worker);
# 3. restart the container (SIGTERM, graceful drain, start again);
# 4. the dataset, the first job, its metrics and its weights (same sha256) are
#    unchanged; the long job was put back in the queue and resumes where it
#    stopped, not from epoch 0; cancelling it lets the queued job run to
#    `succeeded`.
# Every wait is bounded; the first failed check ends the script with a message
# and a non-zero status.
set -euo pipefail

: "${BASE_URL:?BASE_URL is not set (run me through docker-check)}"
: "${CONTAINER:?CONTAINER is not set}"
: "${ENGINE:?ENGINE is not set}"
cd "$(dirname "$0")/../.."
DIGITS=tests/fixtures/digits.csv
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fitd-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say() { printf 'then.sh: %s\n' "$*"; }
fail() {
  printf 'then.sh: FAIL: %s\n' "$*" >&2
  [ -s "$TMP/body" ] && printf 'then.sh: last reply: %s\n' "$(head -c 600 "$TMP/body")" >&2
  printf 'then.sh: the container log ends:\n' >&2
  $ENGINE logs "$CONTAINER" 2>&1 | grep -v 'systemd' | tail -n 25 >&2
  exit 1
}

# req METHOD PATH [curl args...]: the reply body goes to $TMP/body, the status to
# stdout (000 when there was no reply).
req() {
  local m=$1 p=$2
  shift 2
  curl --noproxy '*' -s -o "$TMP/body" -w '%{http_code}' --max-time 30 -X "$m" "$BASE_URL$p" "$@" \
    || true
}
# expect CODE METHOD PATH [curl args...]: req, and fail unless the status is CODE.
expect() {
  local want=$1 code
  shift
  code=$(req "$@")
  [ "$code" = "$want" ] || fail "$1 $2: HTTP $code, expected $want"
}
# The first "id" / "status" member of the reply (the resource's own).
body_id() { sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$TMP/body"; }
body_status() { grep -o '"status":"[a-z]*"' "$TMP/body" | head -n 1 | sed 's/.*:"\(.*\)"/\1/'; }
body_epoch() {
  local e
  e=$(grep -o '"progress":{"epoch":[0-9]*' "$TMP/body" | sed 's/.*://')
  echo "${e:-0}"
}

# wait_status JOB WANT SECONDS: poll until the job's status is WANT.
wait_status() {
  local job=$1 want=$2 secs=$3 st="" end
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    expect 200 GET "/v1/jobs/$job"
    st=$(body_status)
    [ "$st" = "$want" ] && return 0
    case "$st" in succeeded | failed | cancelled)
      fail "job $job is $st, expected $want" ;;
    esac
    sleep 0.5
  done
  fail "job $job still $st after ${secs}s, expected $want"
}

wait_healthy() {
  local secs=$1 end
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ "$(req GET /healthz)" = 200 ] && return 0
    sleep 0.5
  done
  fail "no 200 from /healthz within ${secs}s"
}

# check_weights FILE: a safetensors file: 8-byte little-endian header length N,
# then N bytes of JSON naming the tensors, then the data.
check_weights() {
  local f=$1 size n first
  size=$(wc -c < "$f")
  [ "$size" -gt 8 ] || fail "weights: $size bytes"
  n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
  first=$(dd if="$f" bs=1 skip=8 count=1 2>/dev/null)
  [ "$first" = "{" ] || fail "weights: the safetensors header does not start with '{'"
  if [ "$n" -le 0 ] || [ $((n + 8)) -ge "$size" ]; then
    fail "weights: header length $n, file $size bytes"
  fi
  head -c $((n + 8)) "$f" | grep '"dense/kernel"' > /dev/null || fail "weights: no dense/kernel tensor"
}

# spec NAME DATASET UNITS EPOCHS: the classic example model as a job spec.
spec() {
  printf '{"name":"%s","data":{"train":"%s"},"model":{"input_shape":[64],"layers":[' "$1" "$2"
  printf '{"type":"dense","units":%s,"activation":"relu","kernel_regularizer":{"l2":0.001}},' "$3"
  printf '{"type":"dropout","rate":0.2},{"type":"dense","units":10,"activation":"softmax"}]},'
  printf '"compile":{"optimizer":{"name":"adam","learning_rate":0.001},'
  printf '"loss":"sparse_categorical_crossentropy","metrics":["accuracy"]},'
  printf '"fit":{"epochs":%s,"batch_size":32,"validation_split":0.2,"seed":42}}' "$4"
}
submit() {
  expect 202 POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$(spec "$@")"
  body_id
}

# ------------------------------------------------------------------ in the container
uid=$($ENGINE exec "$CONTAINER" sh -c 'id -u') || fail "$ENGINE exec failed"
[ "$uid" != 0 ] || fail "fitd runs as root in the container"
tools=$($ENGINE exec "$CONTAINER" sh -c 'command -v curl wget gcc cc make || true')
[ -z "$tools" ] || fail "the runtime image holds build or download tools: $tools"
$ENGINE exec "$CONTAINER" fitd healthcheck || fail "fitd healthcheck in the container: not 0"
if $ENGINE exec "$CONTAINER" fitd healthcheck --url http://127.0.0.1:1/healthz 2>/dev/null; then
  fail "fitd healthcheck against a closed port exited 0"
fi
say "container: uid $uid, no curl/compiler, fitd healthcheck 0 (and 1 on a closed port)"

# ------------------------------------------------------------------ before the restart
wait_healthy 30
# A reused volume may hold jobs that would run before ours on the one worker.
for st in queued running; do
  expect 200 GET "/v1/jobs?status=$st"
  ! grep -q '"id":"job_' "$TMP/body" || fail "the volume holds $st jobs: start from a fresh volume"
done
expect 201 POST "/v1/datasets?name=digits&label=label" -H 'Content-Type: text/csv' \
  --data-binary "@$DIGITS"
DS=$(body_id)
[ -n "$DS" ] || fail "no dataset id"
grep -q '"n_samples":1797' "$TMP/body" || fail "digits: expected 1797 samples"
say "dataset $DS uploaded"

JOB1=$(submit classic "$DS" 64 10)
[ -n "$JOB1" ] || fail "no job id"
wait_status "$JOB1" succeeded 120
say "job $JOB1 (Dense 64 relu l2, Dropout 0.2, Dense 10 softmax; 10 epochs) succeeded"

expect 200 GET "/v1/jobs/$JOB1/weights"
cp "$TMP/body" "$TMP/weights1"
check_weights "$TMP/weights1"
W1=$(sha256sum < "$TMP/weights1" | cut -d' ' -f1)
expect 200 GET "/v1/jobs/$JOB1/metrics"
cp "$TMP/body" "$TMP/metrics1"
n=$(grep -o '"val_loss":' "$TMP/metrics1" | wc -l)
[ "$n" -eq 10 ] || fail "metrics: $n epochs with val_loss, expected 10"
expect 200 GET "/v1/jobs/$JOB1"
cp "$TMP/body" "$TMP/job1"
expect 200 GET "/v1/datasets/$DS"
cp "$TMP/body" "$TMP/ds"
say "weights $(wc -c < "$TMP/weights1") bytes, sha256 $W1; metrics: 10 epochs"

# One worker: the long job runs, the third waits behind it.
JOB2=$(submit long "$DS" 1024 5000)
JOB3=$(submit queued-before-restart "$DS" 64 10)
wait_status "$JOB2" running 60
end=$(($(date +%s) + 60))
e2=0
while [ "$e2" -lt 3 ]; do
  [ "$(date +%s)" -lt "$end" ] || fail "job $JOB2 did not reach epoch 3 within 60s"
  sleep 0.5
  expect 200 GET "/v1/jobs/$JOB2"
  e2=$(body_epoch)
done
expect 200 GET "/v1/jobs/$JOB3"
[ "$(body_status)" = queued ] || fail "job $JOB3 is $(body_status), expected queued (FITD_WORKERS=1?)"
say "job $JOB2 running (epoch $e2 of 5000), job $JOB3 queued behind it"

# ------------------------------------------------------------------ restart
say "restarting the container ($ENGINE restart $CONTAINER)"
# (podman without systemd complains about healthcheck timers on stderr: shown on failure only)
$ENGINE restart "$CONTAINER" > /dev/null 2> "$TMP/restart.err" \
  || fail "$ENGINE restart failed: $(cat "$TMP/restart.err")"
wait_healthy 60
# (grep reads the whole log: with -q it could stop at the match and the writer's
# broken pipe would fail the pipeline under pipefail)
$ENGINE logs "$CONTAINER" 2>&1 | grep '"msg":"stopped"' > /dev/null \
  || fail "fitd did not log a graceful stop on SIGTERM"
say "healthy again; the log shows a graceful stop"

# ------------------------------------------------------------------ after the restart
expect 200 GET "/v1/datasets/$DS"
cmp -s "$TMP/body" "$TMP/ds" || fail "dataset $DS changed across the restart"
expect 200 GET "/v1/jobs/$JOB1"
cmp -s "$TMP/body" "$TMP/job1" || fail "job $JOB1 changed across the restart"
expect 200 GET "/v1/jobs/$JOB1/metrics"
cmp -s "$TMP/body" "$TMP/metrics1" || fail "job $JOB1's metrics changed across the restart"
expect 200 GET "/v1/jobs/$JOB1/weights"
[ "$(sha256sum < "$TMP/body" | cut -d' ' -f1)" = "$W1" ] || fail "job $JOB1's weights changed"
say "dataset, job, metrics and weights (sha256 $W1) unchanged"

# The long job went back to the queue and resumes from its checkpoint.
wait_status "$JOB2" running 60
expect 200 GET "/v1/jobs/$JOB2"
e2b=$(body_epoch)
[ "$e2b" -ge "$e2" ] || fail "job $JOB2 restarted at epoch $e2b, it had reached $e2"
expect 200 GET "/v1/jobs/$JOB3"
[ "$(body_status)" = queued ] || fail "job $JOB3 is $(body_status) while $JOB2 runs, expected queued"
say "job $JOB2 resumed at epoch $e2b (was $e2 before the restart); $JOB3 still queued"

expect 202 POST "/v1/jobs/$JOB2/cancel"
wait_status "$JOB2" cancelled 60
wait_status "$JOB3" succeeded 120
expect 200 GET "/v1/jobs/$JOB3/weights"
check_weights "$TMP/body"
expect 200 GET "/v1/jobs/$JOB3/metrics"
n=$(grep -o '"val_loss":' "$TMP/body" | wc -l)
[ "$n" -eq 10 ] || fail "job $JOB3 metrics: $n epochs, expected 10"
say "job $JOB2 cancelled; job $JOB3, queued before the restart, succeeded (10 epochs, weights ok)"
say "all checks passed"

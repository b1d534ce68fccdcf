#!/usr/bin/env bash
# crash_test.sh — kill -9 fitd at random moments and check that nothing it
# acknowledged is lost or damaged, and that every job still ends exactly as an
# uninterrupted run of the same spec does.
#
#   bash tests/crash/crash_test.sh [--kills N] [--max-seconds S] [--jobs N]
#                                  [--datasets N] [--workers N] [--seed N] [--keep]
#
# Run from the repository root. FITD_BIN names the binary (default build/fitd).
# Needs bash, curl, sqlite3 (the CLI), sha256sum and od.
#
# 1. Reference: a fitd on its own database trains every (spec, dataset variant)
#    pair once, without kills; the SHA-256 of each result's tensor bytes is kept.
# 2. Crash loop: fitd runs on a fresh database while a client in the background
#    uploads datasets (some rate-limited, so kills land mid-upload) and submits
#    jobs (fixed seeds) against whatever instance is up. After a random delay
#    (sometimes during start-up and recovery, before fitd is even healthy) fitd
#    gets SIGKILL, and with fitd dead the database is checked:
#      - PRAGMA integrity_check is ok;
#      - every job whose submission got a 202 exists;
#      - every dataset whose upload got a 201 exists, its sha256 column equals the
#        201's, and the SHA-256 recomputed from its stored chunks equals both;
#      - every job's metrics rows are exactly epochs 1..epochs_done, and its
#        checkpoint (if any) is at epochs_done;
#    then fitd is restarted on the same database.
# 3. End: the client stops, fitd drains the queue, is stopped with SIGTERM (must
#    exit 0), the checks run once more, and every job in the database (acknowledged
#    or not) must be `succeeded` with the reference hash of its spec and dataset.
#
# Bounded by --kills and --max-seconds (the kill loop stops at 70 % of it; the
# rest is for draining). Exit 0 when every check passed (and prints the figures),
# 1 on a failed check, 2 on a usage error, 77 when a needed tool is missing.
set -u

# Spec 1 has a kernel regularizer: it once caught a gradient fill that read reused
# heap memory (a NaN at epoch 1, batch 2 in about 1 job in 70 in a long-lived fitd).
KILLS=8 MAX_SECONDS=60 JOBS=16 DATASETS=4 WORKERS=2 SEED=$$ KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --kills) KILLS=$2; shift ;;
    --max-seconds) MAX_SECONDS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --datasets) DATASETS=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --keep) KEEP=1 ;;
    *) echo "crash_test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
FITD_BIN=${FITD_BIN:-build/fitd}
FIXTURE=tests/fixtures/digits.csv
SLOW=1
[ -n "${FITD_TEST_SANITIZED:-}" ] && SLOW=4
[ -n "${FITD_TEST_SLOW:-}" ] && SLOW=$FITD_TEST_SLOW
for tool in curl sqlite3 sha256sum od; do
  command -v $tool >/dev/null || { echo "crash_test: $tool is needed (skipped)" >&2; exit 77; }
done
[ -x "$FITD_BIN" ] || { echo "crash_test: no fitd at $FITD_BIN" >&2; exit 2; }
[ -r "$FIXTURE" ] || { echo "crash_test: run from the repository root" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fitd-crash-XXXXXX") || exit 2
pid="" client_pid="" failures=0
cleanup() {
  [ -n "$client_pid" ] && kill $client_pid 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  if [ $KEEP = 1 ] || [ $failures -gt 0 ]; then echo "crash_test: kept $work"
  else rm -rf "$work"; fi
}
trap cleanup EXIT
RANDOM=$SEED
now() { date +%s.%N; }
t_start=$(now)
elapsed() { awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
over() { awk -v a="$t_start" -v b="$(now)" -v l="$1" 'BEGIN { exit !(b - a > l) }'; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# Random seconds in [lo, hi) with millisecond steps.
rand_s() { awk -v lo="$1" -v hi="$2" -v r=$((RANDOM * 32768 + RANDOM)) \
  'BEGIN { printf "%.3f", lo + (hi - lo) * r / 1073741824 }'; }
json_str() { grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/.*: *"\(.*\)"/\1/'; }
sql() { sqlite3 -cmd '.timeout 10000' "$@"; }

# Dataset variants: the whole file and its first 1000 rows.
cp "$FIXTURE" "$work/v0.csv"
head -n 1001 "$FIXTURE" >"$work/v1.csv"
# Job specs: name "crash-s<i>" tells the checks which spec a job ran.
spec() { # spec INDEX DATASET_ID
  case $1 in
    0) layers='{"type": "dense", "units": 1024, "activation": "relu"}, {"type": "dropout", "rate": 0.2},
          {"type": "dense", "units": 10, "activation": "softmax"}'
       fit='"epochs": 8, "batch_size": 2, "validation_split": 0.2, "seed": 1'; opt='"adam"' ;;
    1) layers='{"type": "dense", "units": 512, "activation": "relu", "kernel_regularizer": {"l2": 0.001}},
          {"type": "dense", "units": 10, "activation": "softmax"}'
       fit='"epochs": 10, "batch_size": 4, "seed": 2'
       opt='{"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}' ;;
    *) layers='{"type": "dense", "units": 1024, "activation": "tanh"}, {"type": "dropout", "rate": 0.5},
          {"type": "dense", "units": 10, "activation": "softmax"}'
       fit='"epochs": 6, "batch_size": 2, "validation_split": 0.1, "seed": 3'; opt='"adam"' ;;
  esac
  printf '{"name": "crash-s%s", "data": {"train": "%s"}, "model": {"input_shape": [64], "layers": [%s]},
 "compile": {"optimizer": %s, "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
 "fit": {%s}}' "$1" "$2" "$layers" "$opt" "$fit"
}
N_SPECS=3

# ---------------------------------------------------------------- fitd

start_fitd() { # start_fitd DB LOG
  rm -f "$work/port"
  "$FITD_BIN" serve --listen 127.0.0.1:0 --db "$1" --port-file "$work/port" \
    --workers "$WORKERS" --crash-limit 0 --log-level warn >>"$2" 2>&1 &
  pid=$!
}
wait_healthy() {
  local i
  for ((i = 0; i < 750 * SLOW; i++)); do
    kill -0 "$pid" 2>/dev/null || { fail "fitd exited during start-up"; tail -n 5 "$work"/*.log; return 1; }
    if [ -s "$work/port" ] &&
       curl -s -m 2 -o /dev/null "http://127.0.0.1:$(cat "$work/port")/healthz"; then return 0; fi
    sleep 0.02
  done
  fail "fitd did not become healthy"; return 1
}
url() { echo "http://127.0.0.1:$(cat "$work/port" 2>/dev/null)$1"; }
# Upload variant $1 to the running fitd; prints "id sha256" on 201.
upload() { # upload VARIANT [curl options...]
  local v=$1 out="$work/up.$BASHPID" code; shift
  code=$(curl -s -m 60 "$@" -o "$out" -w '%{http_code}' -H 'Content-Type: text/csv' \
    --data-binary @"$work/v$v.csv" "$(url "/v1/datasets?name=v$v&label=label")" 2>/dev/null)
  [ "$code" = 201 ] && echo "$(json_str id <"$out") $(json_str sha256 <"$out")"
}
submit() { # submit SPEC DATASET_ID; prints the job id on 202
  local out="$work/sub.$BASHPID" body="$work/spec.$BASHPID" code
  spec "$1" "$2" >"$body"
  code=$(curl -s -m 30 -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$body" "$(url /v1/jobs)" 2>/dev/null)
  [ "$code" = 202 ] && json_str id <"$out"
}
# Wait until no job is queued or running (fitd up). $1 = timeout seconds.
drain_queue() {
  local db=$1 limit=$2 t0 n
  t0=$(now)
  while :; do
    n=$(sql "$db" "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
    [ "$n" = 0 ] && return 0
    awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && {
      fail "$n jobs still unfinished after ${limit}s"; return 1; }
    kill -0 "$pid" 2>/dev/null || { fail "fitd died while draining"; return 1; }
    sleep 0.1
  done
}
stop_fitd() { # SIGTERM; must exit 0 within 15 s
  kill -TERM "$pid"
  local i
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "fitd ignored SIGTERM"; kill -9 "$pid"; fi
  wait "$pid"; local rc=$?
  [ $rc = 0 ] || fail "fitd exited $rc after SIGTERM"
  pid=""
}
# SHA-256 of a safetensors file's tensor bytes (the header names the job).
tensor_hash() {
  local hlen
  hlen=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((hlen + 9)) "$1" | sha256sum | cut -c1-64
}
# "JOB_ID SPEC VARIANT_SHA" for every job (spec from the name, dataset from its sha).
jobs_table() {
  sql "$1" "SELECT j.id, substr(j.name, 8), d.sha256 FROM jobs j
            LEFT JOIN datasets d ON d.id = j.train_dataset_id ORDER BY j.seq" | tr '|' ' '
}
# Hash the final weights of every succeeded job: "JOB_ID HASH".
weights_hashes() {
  local db=$1 dir="$work/w" id
  rm -rf "$dir"; mkdir -p "$dir"
  sql "$db" "SELECT writefile('$dir/' || job_id, data) FROM job_weights" >/dev/null
  for f in "$dir"/*; do [ -e "$f" ] && echo "$(basename "$f") $(tensor_hash "$f")"; done
}

# ---------------------------------------------------------------- checks

# With fitd dead (or idle): the database holds everything acknowledged, intact.
check_db() {
  local db=$1 line id sha want got
  local ic
  ic=$(sql "$db" "PRAGMA integrity_check")
  [ "$ic" = ok ] || fail "integrity_check: $ic"
  sql "$db" "SELECT id FROM jobs" | sort >"$work/db.jobs"
  cut -d' ' -f1 "$work/jobs.acc" | sort | comm -23 - "$work/db.jobs" >"$work/missing"
  [ -s "$work/missing" ] && fail "acknowledged jobs missing: $(tr '\n' ' ' <"$work/missing")"
  # Datasets: sha256 column as acknowledged, and recomputed from the chunks.
  rm -rf "$work/blobs"; mkdir -p "$work/blobs"
  sql "$db" "SELECT writefile(printf('%s/blobs/%s.%s.%08d', '$work', dataset_id, part, chunk), data)
             FROM dataset_chunks" >/dev/null
  sql "$db" "SELECT id, sha256 FROM datasets" | tr '|' ' ' >"$work/db.ds"
  while read -r id sha; do
    got=$(cat "$work/blobs/$id.x."* "$work/blobs/$id.y."* 2>/dev/null | sha256sum | cut -c1-64)
    [ "$got" = "$sha" ] || fail "dataset $id: stored data hashes to $got, its sha256 says $sha"
    grep -q " $sha\$" "$work/variants" || fail "dataset $id: sha256 $sha is no uploaded variant"
  done <"$work/db.ds"
  while read -r id sha; do
    want=$(grep "^$id " "$work/db.ds" | cut -d' ' -f2)
    [ -n "$want" ] || { fail "acknowledged dataset $id missing"; continue; }
    [ "$want" = "$sha" ] || fail "dataset $id: sha256 $want, acknowledged $sha"
  done <"$work/ds.acc"
  # Metrics rows are exactly 1..epochs_done; a checkpoint sits at epochs_done.
  local bad
  bad=$(sql "$db" "SELECT j.id FROM jobs j WHERE
      (SELECT count(*) FROM job_metrics m WHERE m.job_id = j.id) <> j.epochs_done
      OR EXISTS (SELECT 1 FROM job_metrics m WHERE m.job_id = j.id
                 AND (m.epoch < 1 OR m.epoch > j.epochs_done))
      OR EXISTS (SELECT 1 FROM job_checkpoints c WHERE c.job_id = j.id AND c.epoch <> j.epochs_done)")
  [ -z "$bad" ] || fail "jobs with inconsistent metrics or checkpoint: $bad"
}

# Did the kill land inside a write transaction? The WAL then ends in frames of no
# commit (a frame's "database size after commit" field is 0 unless it commits).
wal_open_tx() {
  local wal="$1-wal" size ps salt n i off fs
  [ -s "$wal" ] || return 1
  size=$(stat -c %s "$wal"); [ "$size" -gt 32 ] || return 1
  ps=$(od -An -t u1 -j 8 -N 4 "$wal" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
  [ "$ps" -gt 0 ] || return 1
  salt=$(od -An -t x1 -j 16 -N 8 "$wal" | tr -d ' \n')
  fs=$((24 + ps)); n=$(((size - 32) / fs))
  for ((i = n - 1; i >= 0 && i >= n - 64; i--)); do
    off=$((32 + i * fs))
    [ "$(od -An -t x1 -j $((off + 8)) -N 8 "$wal" | tr -d ' \n')" = "$salt" ] || continue
    [ "$(od -An -t u4 -j $((off + 4)) -N 4 "$wal" | tr -d ' ')" = 0 ] && return 0
    return 1
  done
  return 1
}

# ---------------------------------------------------------------- 1. reference

: >"$work/variants"
ref_db="$work/ref.db"
start_fitd "$ref_db" "$work/ref.log"
wait_healthy || exit 1
for v in 0 1; do
  read -r id sha < <(upload $v) || { fail "reference upload failed"; exit 1; }
  echo "$v $sha" >>"$work/variants"
  for ((s = 0; s < N_SPECS; s++)); do
    [ -n "$(submit $s "$id")" ] || { fail "reference submission failed"; exit 1; }
  done
done
drain_queue "$ref_db" $((120 * SLOW)) || exit 1
stop_fitd
[ "$(sql "$ref_db" "SELECT count(*) FROM jobs WHERE status <> 'succeeded'")" = 0 ] ||
  { fail "reference jobs did not all succeed"; exit 1; }
weights_hashes "$ref_db" >"$work/ref.hashes"
# "SPEC VARIANT_SHA HASH" per reference job.
jobs_table "$ref_db" | while read -r id s sha; do
  echo "$s $sha $(grep "^$id " "$work/ref.hashes" | cut -d' ' -f2)"
done >"$work/ref"
[ "$(wc -l <"$work/ref")" = $((2 * N_SPECS)) ] || { fail "reference incomplete"; exit 1; }
t_ref=$(elapsed)

# ---------------------------------------------------------------- 2. kills

db="$work/fitd.db"
: >"$work/jobs.acc"; : >"$work/ds.acc"
# Two clients, an uploader and a submitter, spread their work over the expected
# length of the kill loop (under a second per kill), so kills find every kind of
# work going on. Each says in state.<role> whether a request is under way.
loop_s=$(awk -v k="$KILLS" -v s=$SLOW -v m="$MAX_SECONDS" \
  'BEGIN { t = k * 0.8 * (s > 1 ? 1.5 : 1); if (t > m * 0.7) t = m * 0.7; print t }')
client() { # client upload|submit
  local role=$1 nds njobs line id s v rate pace
  RANDOM=$((SEED + ${#role}))
  if [ "$role" = upload ]; then pace=$(awk -v t="$loop_s" -v n="$DATASETS" 'BEGIN { print t / n }')
  else pace=$(awk -v t="$loop_s" -v n="$JOBS" 'BEGIN { print t / n }'); fi
  echo idle >"$work/state.$role"
  while [ ! -e "$work/stop" ]; do
    [ -s "$work/port" ] || { sleep 0.05; continue; }
    nds=$(wc -l <"$work/ds.acc"); njobs=$(wc -l <"$work/jobs.acc")
    if [ "$role" = upload ] && [ "$nds" -lt "$DATASETS" ]; then
      v=$((RANDOM % 2)); rate=()
      [ $((RANDOM % 3)) != 0 ] && rate=(--limit-rate $((100 + RANDOM % 400))K)
      echo busy >"$work/state.$role"
      line=$(upload $v "${rate[@]}") && echo "$line" >>"$work/ds.acc"
    elif [ "$role" = submit ] && [ "$njobs" -lt "$JOBS" ] && [ "$nds" -gt 0 ]; then
      id=$(sed -n "$((RANDOM % nds + 1))p" "$work/ds.acc" | cut -d' ' -f1)
      s=$((RANDOM % N_SPECS))
      echo busy >"$work/state.$role"
      line=$(submit $s "$id") && echo "$line" >>"$work/jobs.acc"
    else
      sleep 0.1; continue
    fi
    echo idle >"$work/state.$role"
    sleep "$(rand_s 0 "$pace")"
  done
}

# Wait (up to about 1 s) until a running job is in the last tenth of an epoch,
# then a few more milliseconds. Returns 1 if no job is running or got there.
near_epoch_end() {
  local i p b n
  for ((i = 0; i < 100; i++)); do
    p=$(curl -s -m 1 "$(url '/v1/jobs?status=running&limit=1')" | grep -o '"progress":{[^}]*}' | head -n 1)
    [ -n "$p" ] || return 1
    b=$(echo "$p" | grep -o '"batch":[0-9]*' | cut -d: -f2)
    n=$(echo "$p" | grep -o '"batches":[0-9]*' | cut -d: -f2)
    if [ -n "$b" ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ $((b * 10)) -ge $((n * 9)) ]; then
      sleep "$(rand_s 0 0.02)"; return 0
    fi
    sleep 0.005
  done
  return 1
}
kills=0 in_tx=0 with_running=0 early=0 k_upload=0 k_submit=0 aimed=0
start_fitd "$db" "$work/fitd.log"
wait_healthy || exit 1
client upload &
client_pid=$!
client submit &
client_pid="$client_pid $!"
budget=$(awk -v m="$MAX_SECONDS" 'BEGIN { print m * 0.7 }')
while [ $kills -lt "$KILLS" ] && ! over "$budget"; do
  mode=$((RANDOM % 10))
  if [ $mode = 0 ]; then
    sleep "$(rand_s 0 0.4)"; early=$((early + 1)) # start-up, recovery
  else
    wait_healthy || break
    sleep "$(rand_s 0.02 1.2)"
    # Three kills in ten aim at an epoch's end: its validation pass and the commit
    # of its metrics row and checkpoint.
    [ $mode -le 3 ] && near_epoch_end && aimed=$((aimed + 1))
  fi
  kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
  kills=$((kills + 1))
  grep -q busy "$work/state.upload" && k_upload=$((k_upload + 1))
  grep -q busy "$work/state.submit" && k_submit=$((k_submit + 1))
  wal_open_tx "$db" && in_tx=$((in_tx + 1))
  n=$(sql "$db" "SELECT count(*) FROM jobs WHERE status = 'running'" 2>/dev/null)
  [ "${n:-0}" -gt 0 ] && with_running=$((with_running + 1))
  check_db "$db"
  [ $failures = 0 ] || break
  start_fitd "$db" "$work/fitd.log"
done

# ---------------------------------------------------------------- 3. the end

touch "$work/stop"; wait $client_pid; client_pid=""
if [ $failures = 0 ]; then
  wait_healthy
  left=$(awk -v m="$MAX_SECONDS" -v e="$(elapsed)" -v s=$SLOW 'BEGIN { l = m - e; if (l < 30 * s) l = 30 * s; print int(l) }')
  drain_queue "$db" "$left"
  stop_fitd
  check_db "$db"
  weights_hashes "$db" >"$work/hashes"
  jobs_table "$db" >"$work/jobs.all"
  while read -r id s sha; do
    st=$(sql "$db" "SELECT status || ' ' || coalesce(error, '') FROM jobs WHERE id = '$id'")
    [ "${st%% *}" = succeeded ] || { fail "job $id ended $st"; continue; }
    want=$(grep "^$s $sha " "$work/ref" | cut -d' ' -f3)
    got=$(grep "^$id " "$work/hashes" | cut -d' ' -f2)
    [ -n "$want" ] && [ "$want" = "$got" ] ||
      fail "job $id (spec $s): weights hash $got, reference ${want:-none}"
  done <"$work/jobs.all"
fi
[ -n "$pid" ] && { kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""; }

n_jobs=$(wc -l <"$work/jobs.all" 2>/dev/null || echo 0)
echo "crash_test: kills=$kills (during an upload $k_upload, a submission $k_submit;" \
  "during start-up $early; with jobs running $with_running; aimed at an epoch's end $aimed;" \
  "inside a write transaction $in_tx) jobs=$n_jobs (acknowledged $(wc -l <"$work/jobs.acc"))" \
  "datasets=$(wc -l <"$work/ds.acc") reference=${t_ref}s time=$(elapsed)s failures=$failures" \
  "seed=$SEED"
[ $failures = 0 ]

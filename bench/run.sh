#!/bin/sh
# fitd's benchmark against PyTorch (figures, not tests). Run from the repo root:
#   sh bench/run.sh BUILD          (make bench does this after building BUILD)
# Environment, to shorten or steer a run:
#   BENCH_EPOCHS=10          Fashion-MNIST epochs (medians over epochs 2..N)
#   BENCH_DIGITS_EPOCHS=20   digits epochs
#   BENCH_SGEMM_SECONDS=2    length of each cblas_sgemm measurement
#   BENCH_TORCH2="omp-passive openblas"   PyTorch 2-thread configurations to try
#   BENCH_DATA=/usr/share/datasets/fashion-mnist   (Debian's dataset-fashion-mnist)
#   BENCH_PYTHON=/usr/bin/python3                  (the interpreter with python3-torch)
# Exit status: 0 when every run finished (a missed target is not a failure),
# 1 when a run crashed or failed.
set -u
BUILD=${1:-build}
EPOCHS=${BENCH_EPOCHS:-10}
DIGITS_EPOCHS=${BENCH_DIGITS_EPOCHS:-20}
SGEMM_S=${BENCH_SGEMM_SECONDS:-2}
TORCH2=${BENCH_TORCH2:-omp-passive openblas}
DATA=${BENCH_DATA:-/usr/share/datasets/fashion-mnist}
PY=${BENCH_PYTHON:-/usr/bin/python3}
CSV=tests/fixtures/digits.csv
CORE=$BUILD/bench/bench_core
OUT=$BUILD/bench/results
LOG=$BUILD/bench/log.txt

mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.txt
: > "$LOG"
failed=0

# run NAME CMD... : keep the RESULT line in $OUT/NAME.txt, progress in $LOG.
run() {
  name=$1; shift
  echo "running $name" >&2
  if "$@" > "$OUT/$name.txt" 2>> "$LOG" && grep -q '^RESULT ' "$OUT/$name.txt"; then
    return 0
  fi
  echo "bench: $name failed (see $LOG)" >&2
  failed=1
  return 1
}

# get NAME KEY: one value from a RESULT line ("" if the run failed).
get() {
  [ -f "$OUT/$1.txt" ] || return 0
  sed -n "s/^RESULT .* $2=\([^ ]*\).*/\1/p" "$OUT/$1.txt" | head -n 1
}

# Interleave fitd and PyTorch so slow phases of a noisy machine hit both.
run fitd_t1 "$CORE" fashion "$DATA" --threads 1 --epochs "$EPOCHS" --sgemm-seconds "$SGEMM_S"
run torch_t1 "$PY" bench/torch_mlp.py fashion --config t1 --epochs "$EPOCHS" --data "$DATA"
run fitd_t2 "$CORE" fashion "$DATA" --threads 2 --epochs "$EPOCHS" --sgemm-seconds "$SGEMM_S"
for c in $TORCH2; do
  run "torch_t2_$c" "$PY" bench/torch_mlp.py fashion --config "$c" --epochs "$EPOCHS" --data "$DATA"
done
run fitd_digits "$CORE" digits "$CSV" --threads 1 --epochs "$DIGITS_EPOCHS"
run torch_digits "$PY" bench/torch_mlp.py digits --config t1 --epochs "$DIGITS_EPOCHS" --csv "$CSV"

# The fastest PyTorch 2-thread configuration.
best2=""
best2_ms=""
for c in $TORCH2; do
  ms=$(get "torch_t2_$c" epoch_ms)
  [ -n "$ms" ] || continue
  if [ -z "$best2_ms" ] || awk -v a="$ms" -v b="$best2_ms" 'BEGIN { exit !(a < b) }'; then
    best2=$c
    best2_ms=$ms
  fi
done

# fashion_line LABEL NAME: one line of Fashion-MNIST figures.
fashion_line() {
  if [ -z "$(get "$2" epoch_ms)" ]; then
    printf '%-34s FAILED\n' "$1"
    return
  fi
  awk -v l="$1" -v ms="$(get "$2" epoch_ms)" -v sps="$(get "$2" samples_per_s)" \
      -v rss="$(get "$2" peak_rss_kb)" -v acc="$(get "$2" test_acc)" 'BEGIN {
    printf "%-34s %8.1f ms/epoch %8.0f samples/s  peak RSS %7.1f MiB  test acc %.4f\n",
           l, ms, sps, rss / 1024, acc }'
}

# ratio A B: A / B to 3 places, or "n/a".
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a";
                                   else printf "%.3f\n", a / b }'
}

echo
echo "== fitd bench: $(nproc) cores, OpenBLAS core $(get fitd_t1 blas_core), $EPOCHS epochs" \
     "(median ms over epochs 2..$EPOCHS), digits $DIGITS_EPOCHS epochs"
echo "-- Fashion-MNIST MLP 784-512-256-10, dropout 0.2, L2 1e-4, Adam 1e-3, batch 128"
fashion_line "fitd T=1" fitd_t1
fashion_line "torch T=1" torch_t1
for c in $TORCH2; do
  fashion_line "torch T=2 ($c)" "torch_t2_$c"
done
fashion_line "fitd T=2" fitd_t2
echo "torch T=2 best configuration:      ${best2:-none}"
r1=$(ratio "$(get fitd_t1 epoch_ms)" "$(get torch_t1 epoch_ms)")
r2=$(ratio "$(get fitd_t2 epoch_ms)" "$best2_ms")
echo "time ratio fitd/torch T=1:         $r1"
echo "time ratio fitd/torch T=2:         $r2 (torch $best2)"
# CPU time per epoch: at 1 thread it is the epoch's own work, which a busy shared
# machine inflates far less than the wall time (the target is on wall time).
rc1=$(ratio "$(get fitd_t1 cpu_epoch_ms)" "$(get torch_t1 cpu_epoch_ms)")
echo "CPU-time ratio fitd/torch T=1:     $rc1 (fitd $(get fitd_t1 cpu_epoch_ms) ms, torch $(get torch_t1 cpu_epoch_ms) ms CPU per epoch)"
echo "-- fitd efficiency: GEMM FLOPs per epoch / epoch time vs cblas_sgemm on the same calls (batch 128)"
for t in 1 2; do
  n=fitd_t$t
  if [ -z "$(get $n train_gflops)" ]; then
    echo "efficiency T=$t:                    FAILED"
    continue
  fi
  awk -v t="$t" -v g="$(get $n epoch_gflop)" -v tr="$(get $n train_gflops)" \
      -v s="$(get $n sgemm_gflops)" -v f="$(get $n efficiency)" -v sm="$(get $n sgemm_epoch_ms)" \
      -v ms="$(get $n epoch_ms)" -v sb="$(get $n sgemm_before)" -v sa="$(get $n sgemm_after)" 'BEGIN {
    printf "efficiency T=%d:                    training %.1f GFLOP/s, sgemm %.1f GFLOP/s (before %.1f, after %.1f), fraction %.3f (%.1f GFLOP/epoch; sgemm-bound epoch %.0f ms, other work %.0f ms)\n",
           t, tr, s, sb, sa, f, g, sm, ms - sm }'
done
echo "-- small model: digits Dense 64 relu l2 1e-3 -> Dropout 0.2 -> Dense 10, SGD 0.01, batch 32, T=1"
for n in fitd_digits torch_digits; do
  if [ -z "$(get $n samples_per_s)" ]; then
    printf '%-34s FAILED\n' "${n%_digits} digits"
    continue
  fi
  awk -v l="${n%_digits} digits" -v ms="$(get $n epoch_ms)" -v sps="$(get $n samples_per_s)" \
      -v acc="$(get $n test_acc)" 'BEGIN {
    printf "%-34s %8.2f ms/epoch %8.0f samples/s  train acc %.4f\n", l, ms, sps, acc }'
done
rd=$(ratio "$(get fitd_digits samples_per_s)" "$(get torch_digits samples_per_s)")
echo "samples/s ratio fitd/torch digits: $rd"

# check LABEL VALUE OP GOAL: one summary line, PASS when VALUE OP GOAL holds.
check() {
  awk -v l="$1" -v v="$2" -v op="$3" -v g="$4" 'BEGIN {
    if (v == "" || v == "n/a" || g == "n/a") { printf "%-48s %10s  %-12s %s\n", l, "n/a", op " " g, "MISS"; exit }
    ok = (op == "<=") ? (v + 0 <= g + 0) : (op == ">=") ? (v + 0 >= g + 0) : (v + 0 < g + 0)
    printf "%-48s %10s  %-12s %s\n", l, v, op " " g, ok ? "PASS" : "MISS" }'
}

acc1=$(get fitd_t1 test_acc)
acc2=$(get fitd_t2 test_acc)
tacc1=$(get torch_t1 test_acc)
tacc2=$(get "torch_t2_$best2" test_acc)
minacc=$(awk -v a="$acc1" -v b="$acc2" 'BEGIN { if (a == "" || b == "") print ""; else print (a < b ? a : b) }')
floor1=$(awk -v a="$tacc1" 'BEGIN { if (a != "") printf "%.4f", a - 0.005 }')
floor2=$(awk -v a="$tacc2" 'BEGIN { if (a != "") printf "%.4f", a - 0.005 }')
frss=$(awk -v a="$(get fitd_t1 peak_rss_kb)" -v b="$(get fitd_t2 peak_rss_kb)" \
  'BEGIN { if (a == "" || b == "") print ""; else printf "%.1f", (a > b ? a : b) / 1024 }')
trss=$(awk -v a="$(get torch_t1 peak_rss_kb)" -v b="$(get "torch_t2_$best2" peak_rss_kb)" \
  'BEGIN { if (a == "" || b == "") print ""; else printf "%.1f", (a < b ? a : b) / 1024 }')

echo
echo "== summary (targets of issue 2)"
printf '%-48s %10s  %-12s %s\n' "target" "value" "goal" "result"
check "fitd/torch epoch time, T=1" "$r1" "<=" 0.5
check "fitd/torch epoch time, T=2 (torch $best2)" "$r2" "<=" 0.45
check "fitd test acc T=1 vs torch T=1 - 0.005" "$acc1" ">=" "${floor1:-n/a}"
check "fitd test acc T=2 vs torch T=2 - 0.005" "$acc2" ">=" "${floor2:-n/a}"
check "fitd test acc (lower of T=1, T=2)" "$minacc" ">=" 0.88
check "fitd/torch samples/s, digits T=1" "$rd" ">=" 10
check "fitd peak RSS MiB vs torch's (lowest)" "$frss" "<" "${trss:-n/a}"
[ "$failed" = 0 ] || echo "bench: some runs failed; see $LOG" >&2
exit "$failed"

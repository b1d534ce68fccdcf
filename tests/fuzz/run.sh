#!/bin/sh
# tests/fuzz/run.sh BUILD [SECONDS] [TARGET...] — build fitd's libFuzzer targets with
# clang into BUILD/fuzz/ and run each for SECONDS (default 60), failing on any
# crash, sanitizer report, leak or broken property (see tests/fuzz/fuzz.h).
#
# Every core/*.c and server/*.c (but main.c) is compiled with
# -fsanitize=fuzzer-no-link,address,undefined; each tests/fuzz/fuzz_<t>.h, compiled
# as C with -DFITD_FUZZER (which adds LLVMFuzzerTestOneInput), is linked with them
# and -fsanitize=fuzzer. A target starts from tests/fuzz/corpus/<t>/ and
# tests/fuzz/crashes/<t>/; what it learns goes to BUILD/fuzz/work/<t>/ (the
# committed corpus is never written), a crashing input to BUILD/fuzz/artifacts/<t>/.
# Minimize a crash (BUILD/fuzz/fuzz_<t> -minimize_crash=1 -runs=10000 FILE), fix it,
# and commit it under tests/fuzz/crashes/<t>/: `make test` replays it
# (tests/unit/test_fuzz_replay.c). Env: CC (default clang), FUZZ_JOBS (parallel
# compiles), FUZZ_ARGS (extra libFuzzer flags).
set -eu
BUILD=${1:?usage: tests/fuzz/run.sh BUILD [SECONDS] [TARGET...]}
SECONDS_EACH=${2:-60}
[ $# -ge 2 ] && shift 2 || shift $#
cd "$(dirname "$0")/../.."
CC=${CC:-clang}
case "$CC" in *clang*) ;; *) CC=clang ;; esac
OUT="$BUILD/fuzz"
TARGETS=${*:-"spec csv idx safetensors multipart router"}
PKGS="openblas jansson libmicrohttpd sqlite3 nettle zlib"
PKG_CFLAGS=$(pkg-config --cflags $PKGS)
PKG_LIBS=$(pkg-config --libs $PKGS)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-std=c11 -D_DEFAULT_SOURCE -fno-math-errno -g -O1 -Wall -Wextra -Wformat=2 -Wshadow \
 -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Werror $SAN \
 -Icore -Iserver -Itests/fuzz -I$OUT/gen $PKG_CFLAGS -DFITD_VERSION=\"fuzz\" -DFITD_GIT_REV=\"fuzz\""
rm -rf "$OUT/obj/tests"
mkdir -p "$OUT/obj/core" "$OUT/obj/server" "$OUT/gen"

# The embedded migrations and API document, as the Makefile generates them.
sh server/embed.sh $(ls migrations/*.sql | sort) api-docs/openapi.yaml >"$OUT/gen/embedded.c.tmp"
mv "$OUT/gen/embedded.c.tmp" "$OUT/gen/embedded.c"

# Compile (only what changed), FUZZ_JOBS at a time.
SRCS="$(ls core/*.c) $(ls server/*.c | grep -v '^server/main\.c$') $OUT/gen/embedded.c"
echo "fuzz: compiling with $CC into $OUT"
jobs_max=${FUZZ_JOBS:-4}; n=0; fail=0; pids=""
for s in $SRCS; do
  o="$OUT/obj/$(echo "$s" | sed "s#^$OUT/##; s#\.c\$#.o#")"
  if [ -f "$o" ] && [ ! "$s" -nt "$o" ] && \
     [ -z "$(find core server tests/fuzz -name '*.h' -newer "$o" 2>/dev/null | head -1)" ]; then
    continue
  fi
  mkdir -p "$(dirname "$o")"
  # shellcheck disable=SC2086
  $CC $CFLAGS -Wno-missing-prototypes -fsanitize=fuzzer-no-link -c -o "$o" "$s" &
  pids="$pids $!"; n=$((n + 1))
  if [ "$n" -ge "$jobs_max" ]; then
    for p in $pids; do wait "$p" || fail=1; done
    pids=""; n=0
  fi
done
for p in $pids; do wait "$p" || fail=1; done
[ "$fail" -eq 0 ] || { echo "fuzz: compilation failed" >&2; exit 1; }
OBJS=$(find "$OUT/obj/core" "$OUT/obj/server" "$OUT/obj/gen" -name '*.o' 2>/dev/null | sort)
for t in $TARGETS; do
  echo "fuzz: linking fuzz_$t"
  $CC $CFLAGS -DFITD_FUZZER -fsanitize=fuzzer -o "$OUT/fuzz_$t" -x c "tests/fuzz/fuzz_$t.h" -x none $OBJS \
    $PKG_LIBS -lpthread -lm
done

# Run.
status=0
summary=""
for t in $TARGETS; do
  work="$OUT/work/$t"; art="$OUT/artifacts/$t"
  mkdir -p "$work" "$art"
  seeds=""
  for d in "tests/fuzz/corpus/$t" "tests/fuzz/crashes/$t"; do [ -d "$d" ] && seeds="$seeds $d"; done
  log="$OUT/fuzz_$t.log"
  echo "fuzz: running fuzz_$t for ${SECONDS_EACH}s (log $log)"
  # shellcheck disable=SC2086
  if "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=3072 \
       -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" ${FUZZ_ARGS:-} \
       "$work" $seeds >"$log" 2>&1; then
    res=ok
  else
    res=FAILED; status=1
    tail -n 40 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | sed 's/ft: //')
  line=$(printf '%-12s %-6s execs %-9s exec/s %-7s cov %-6s ft %s' "$t" "$res" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}")
  summary="$summary
$line"
done
echo "fuzz summary:$summary"
[ "$status" -eq 0 ] || echo "fuzz: crashing inputs are in $OUT/artifacts/"
exit "$status"

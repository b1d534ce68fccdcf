#!/bin/sh
# Run every test binary in BUILD/tests; print one summary line of test cases.
# Exit non-zero if any binary fails (cmocka exits with the number of failures;
# a sanitizer report makes the process fail too).
BUILD=${1:-build}
# Integration tests start this binary (the sanitized one under make asan).
export FITD_BIN="${FITD_BIN:-$BUILD/fitd}"
passed=0 failed=0 bad=""
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  log="$t.log"
  if "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
  p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then
    bad="$bad $(basename "$t")"
    [ "$f" -eq 0 ] && failed=$((failed + 1))
    echo "FAIL $(basename "$t") (exit $rc):"; tail -n 60 "$log"
  else
    echo "ok   $(basename "$t") ($p)"
  fi
done
echo "$passed passed, $failed failed"
[ -z "$bad" ] || { echo "failing:$bad"; exit 1; }

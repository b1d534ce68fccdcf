#!/bin/sh
# Run every test binary in BUILD/tests; print one summary line of test cases.
# Exit non-zero if any binary fails (cmocka exits with the number of failures;
# a sanitizer report makes the process fail too).
#
# Then the API-document coverage check: every integration test's fitd appends
# "METHOD ROUTE STATUS" per request to $FITD_ACCESS_LOG (tests/support.c it_stop),
# and `test_openapi --coverage` compares those with the (method, path, status)
# triples api-docs/openapi.yaml documents, less tests/openapi-untested.txt.
# And every response the tests received (tests/support.c it_record_response, to
# $FITD_RESPONSE_LOG) must match the document's schema for it
# (tests/openapi_responses.py), and each route's query parameters the ones the
# document lists (tests/openapi_query.py).
BUILD=${1:-build}
# Integration tests start this binary (the sanitized one under make asan).
export FITD_BIN="${FITD_BIN:-$BUILD/fitd}"
export FITD_ACCESS_LOG="$BUILD/tests/access-statuses.txt"
export FITD_RESPONSE_LOG="$BUILD/tests/responses.jsonl"
mkdir -p "$BUILD/tests" && : >"$FITD_ACCESS_LOG" && : >"$FITD_RESPONSE_LOG" || exit 1
passed=0 failed=0 bad=""
# run NAME COMMAND...: run one test binary, log to $BUILD/tests/NAME.log, count.
run() {
  name=$1; shift
  log="$BUILD/tests/$name.log"
  if "$@" >"$log" 2>&1; then rc=0; else rc=$?; fi
  p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then
    bad="$bad $name"
    [ "$f" -eq 0 ] && failed=$((failed + 1))
    echo "FAIL $name (exit $rc):"; tail -n 60 "$log"
  else
    echo "ok   $name ($p)"
  fi
}
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run "$(basename "$t")" "$t"
done
# After every integration test ran: the statuses they saw vs the API document.
if [ -x "$BUILD/tests/test_openapi" ]; then
  run openapi-coverage "$BUILD/tests/test_openapi" --coverage "$FITD_ACCESS_LOG"
else
  echo "FAIL openapi-coverage: $BUILD/tests/test_openapi is missing"; bad="$bad openapi-coverage"
  failed=$((failed + 1))
fi
# Debian's python3 with python3-yaml and python3-jsonschema (tests/deps.sh test).
run openapi-responses /usr/bin/python3 tests/openapi_responses.py "$FITD_RESPONSE_LOG"
# The query parameters each route takes vs those the document lists.
if "$BUILD/tests/test_openapi" --routes >"$BUILD/tests/routes.txt"; then
  run openapi-query /usr/bin/python3 tests/openapi_query.py "$BUILD/tests/routes.txt"
else
  echo "FAIL openapi-query: test_openapi --routes failed"; bad="$bad openapi-query"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ -z "$bad" ] || { echo "failing:$bad"; exit 1; }

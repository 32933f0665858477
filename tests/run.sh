#!/usr/bin/env bash
# Runs every test and prints one closing line: "N passed, N failed".
#   unit tests:        $BUILD/unit/*_test (cmocka), counted per test case
#   integration tests: tests/test_*.py (real binaries on loopback), counted
#                      per test function by tests/harness.py
#   fuzz targets:      tests/fuzz/run.sh --brief, one count per target
# Usage: tests/run.sh [NAME]   runs only the unit binaries / test files whose
#                              name contains NAME.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
PYTHON=${PYTHON:-/usr/bin/python3}
filter=${1:-}
passed=0
failed=0
failures=()

for t in "$BUILD"/unit/*_test; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ -z "$filter" || "$name" == *"$filter"* ]] || continue
    out=$(CMOCKA_MESSAGE_OUTPUT=stdout timeout 120 "$t" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or timed out
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$name")
        printf '%s\n' "$out" | grep -E 'FAILED|ERROR|Failure|error' | head -20
    fi
    echo "unit $name: $p passed, $f failed"
done

for t in tests/test_*.py; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .py)
    [[ -z "$filter" || "$name" == *"$filter"* ]] || continue
    log=$(mktemp)
    BUILD="$BUILD" BIN="$BIN" PYTHONPATH="$BUILD/gen:tests" timeout 900 "$PYTHON" "$t" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\2/p' "$log" | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$name")
        tail -60 "$log"
    else
        grep -E '^(PASS|FAIL|SKIP) ' "$log"
    fi
    rm -f "$log"
    echo "integration $name: $p passed, $f failed"
done

# Fuzz targets, briefly: seeds and kept regressions, then a few seconds each.
if [[ -z "$filter" || fuzz == *"$filter"* ]] && [ -f tests/fuzz/run.sh ]; then
    log=$(mktemp)
    BUILD="$BUILD" timeout 900 bash tests/fuzz/run.sh --brief >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\2/p' "$log" | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("fuzz")
        tail -60 "$log"
    else
        grep -E '^(PASS|FAIL) ' "$log"
    fi
    rm -f "$log"
    echo "fuzz: $p passed, $f failed"
fi

[ ${#failures[@]} -eq 0 ] || echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ and runs them.
#
#   tests/fuzz/run.sh [--brief | --replay] [--seconds N] [TARGET...]
#
#   (default)   every target fuzzes for FUZZ_SECONDS (default 60) seconds,
#               growing a working corpus kept in $BUILD/fuzz/corpus/<target>
#   --brief     for `make test`: FUZZ_BRIEF_SECONDS (default 10) seconds of
#               fuzzing each, from the seeds in a scratch corpus
#   --replay    only the regression and seed inputs, no fuzzing
#   --seconds N overrides the fuzzing time per target
#   TARGET      fuzz_frame, fuzz_tally_request, ... (default: all)
#
# First, in every mode, each input in tests/fuzz/regressions/<target>/ is run
# on its own; a target whose regressions still fail is reported with them
# and not fuzzed.  The seeds of tests/fuzz/corpus/<target>/ start the
# fuzzing (and are all run before it).
#
# A target that crashes, leaks, hangs or breaks one of its invariants fails;
# the input that did it is copied to tests/fuzz/regressions/<target>/ (keep
# it there: it is replayed on every run from then on) and the report is
# printed.  One line per target, then "fuzz: N passed, M failed" and, last,
# "RESULT passed=N failed=M" for tests/run.sh.  Exit status 0 when nothing
# failed.
#
# Objects and binaries go to $BUILD/fuzz (BUILD defaults to build).  Needs
# clang with libFuzzer (Debian: clang, libclang-rt-14-dev).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
FUZZ_CC=${FUZZ_CC:-clang}
seconds=${FUZZ_SECONDS:-60}
mode=full
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --brief) mode=brief; seconds=${FUZZ_BRIEF_SECONDS:-10} ;;
    --replay) mode=replay ;;
    --seconds) seconds=$2; shift ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
    esac
    shift
done

result() {
    echo "fuzz: $1 passed, $2 failed"
    echo "RESULT passed=$1 failed=$2"
    [ "$2" -eq 0 ]
    exit
}

# ---- build -------------------------------------------------------------------
mkdir -p "$OUT"
probe=$OUT/probe
if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
    "$FUZZ_CC" -x c -fsanitize=fuzzer,address,undefined -o "$probe" - >/dev/null 2>&1; then
    echo "FAIL fuzz: $FUZZ_CC cannot build libFuzzer targets (Debian: apt-get install clang libclang-rt-14-dev)"
    result 0 1
fi
rm -f "$probe"
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        targets+=("$(basename "$f" .c)")
    done
fi

# ---- run ---------------------------------------------------------------------
# Inputs as large as two maximal client frames; the ZeroMQ messages have no
# frame limit, but 64 KiB already covers thousands of commands.
max_len() {
    case "$1" in
    fuzz_frame) echo 140000 ;;
    *) echo 65536 ;;
    esac
}

# Prints the report of a failed run: the invariant or sanitizer lines and
# the frames of each stack that are ours (not libFuzzer's, libc's or the
# failure helper's).
report() {
    grep -E '^FUZZ INVARIANT|^==[0-9]+==ERROR|^SUMMARY|runtime error|^ +#[0-9]+ |ALARM|^Running|out-of-memory|leak' "$1" |
        grep -vE 'fuzzer::|__sanitizer|libc\.so|nptl/|stdlib/|signal/|in fz_fail|in _start|__libc_start|in main .*fuzz_' |
        head -40
}

passed=0
failed=0
for t in "${targets[@]}"; do
    bin=$OUT/$t
    if [ ! -f "tests/fuzz/$t.c" ]; then
        echo "FAIL $t: no such target"
        failed=$((failed + 1))
        continue
    fi
    # Built one by one, so that a source in the middle of a change only
    # fails the targets that link it.
    t0=$(date +%s)
    if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -f tests/fuzz/fuzz.mk OUT="$OUT" FUZZ_CC="$FUZZ_CC" -j2 "$bin" \
        >"$OUT/build-$t.log" 2>&1; then
        echo "FAIL $t: does not build (log: $OUT/build-$t.log)"
        grep -E 'error:|Error [0-9]|undefined reference' "$OUT/build-$t.log" | head -20
        failed=$((failed + 1))
        continue
    fi
    built=$(($(date +%s) - t0))
    seeds=tests/fuzz/corpus/$t
    regr=tests/fuzz/regressions/$t
    arts=$OUT/artifacts/$t
    log=$OUT/$t.log
    mkdir -p "$seeds" "$regr" "$arts"
    rm -f "$arts"/*
    opts=(-close_fd_mask=2 -rss_limit_mb=2048 -timeout=60 -max_len="$(max_len "$t")"
          -dict=tests/fuzz/canvass.dict
          -artifact_prefix="$arts/" -print_final_stats=1)
    nregr=$(find "$regr" -maxdepth 1 -type f ! -name '.*' | wc -l)
    nseeds=$(find "$seeds" -maxdepth 1 -type f ! -name '.*' | wc -l)
    start=$(date +%s)
    : >"$log"
    # Each regression input on its own, so that every one that still fails
    # is named; fuzzing starts only when they all pass.
    failing=()
    while IFS= read -r -d '' r; do
        if ! timeout 600 "$bin" "${opts[@]}" "$r" >"$log.one" 2>&1; then
            failing+=("$r")
            cat "$log.one" >>"$log"
        fi
    done < <(find "$regr" -maxdepth 1 -type f ! -name '.*' -print0 | sort -z)
    rm -f "$log.one"
    rc=0
    if [ ${#failing[@]} -gt 0 ]; then
        failed=$((failed + 1))
        echo "FAIL $t: ${#failing[@]} of $nregr regression inputs still fail (log: $log)"
        for r in "${failing[@]}"; do
            echo "  $r"
        done
        report "$log" | grep -E '^FUZZ INVARIANT|^==[0-9]+==ERROR|^SUMMARY: [A-Z]|runtime error' |
            sort | uniq -c | head -20
        continue
    fi
    case $mode in
    replay)
        timeout 600 "$bin" "${opts[@]}" -runs=0 "$seeds" >>"$log" 2>&1 || rc=$? ;;
    brief)
        work=$OUT/work/$t
        rm -rf "$work" && mkdir -p "$work"
        timeout $((seconds + 300)) "$bin" "${opts[@]}" -max_total_time="$seconds" \
            "$work" "$seeds" >>"$log" 2>&1 || rc=$? ;;
    full)
        work=$OUT/corpus/$t
        mkdir -p "$work"
        timeout $((seconds + 300)) "$bin" "${opts[@]}" -max_total_time="$seconds" \
            "$work" "$seeds" "$regr" >>"$log" 2>&1 || rc=$? ;;
    esac
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $t: ${runs:-0} inputs in $took s (built in $built s), cov ${cov:-?}, $nseeds seeds, $nregr regressions"
        continue
    fi
    failed=$((failed + 1))
    echo "FAIL $t: exit $rc after $took s (log: $log)"
    report "$log"
    for a in "$arts"/*; do
        [ -f "$a" ] || continue
        hex=$(head -c 64 "$a" | od -An -tx1 | tr -d ' \n')
        same=""
        for r in "$regr"/*; do
            if [ -f "$r" ] && cmp -s "$a" "$r"; then same=$r; break; fi
        done
        if [ -n "$same" ]; then
            echo "  the failing input is regression $same"
        else
            cp "$a" "$regr/"
            echo "  kept as regression: $regr/$(basename "$a") ($(stat -c %s "$a") bytes: $hex)"
        fi
    done
done
result "$passed" "$failed"

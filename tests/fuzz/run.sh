#!/bin/sh
# run.sh -- runs libFuzzer harnesses one after the other and sums them up.
#
#   run.sh BUILD_DIR MODE AMOUNT HARNESS[:AMOUNT]...
#
# MODE "time": each harness runs AMOUNT seconds (-max_total_time);
# MODE "runs": each harness runs AMOUNT inputs (-runs). A harness written
# NAME:N runs N instead of AMOUNT.
# Each harness starts from its seeds (BUILD_DIR/seeds/NAME, read only), the
# inputs of past findings (tests/fuzz/regressions/NAME, read only, when
# there are any: each runs first, every time) and its own growing corpus
# (BUILD_DIR/corpus/NAME, kept between runs). A crash,
# sanitizer report, leak, timeout or out-of-memory writes the input to
# BUILD_DIR/crashes/NAME-* and makes the script fail (after the other
# harnesses ran). So does a harness that accepted none of its inputs (the
# count each prints at exit, fz_accepted): it then tests nothing past the
# first checks of its loader, as the HDF5 harnesses once did unnoticed.
# Prints one line per harness (inputs, seconds, coverage, corpus size, inputs
# accepted) and a total; the full log of each is BUILD_DIR/logs/NAME.log.
#
# FUZZ_NICE (default 10) is the nice level; FUZZ_FLAGS adds libFuzzer flags.
set -u
build=$1 mode=$2 amount=$3
shift 3
case $mode in
time) flag="-max_total_time" ;;
runs) flag="-runs" ;;
*) echo "run.sh: MODE must be time or runs" >&2; exit 2 ;;
esac
mkdir -p "$build/logs" "$build/crashes"
# Huge allocations must be reported (libFuzzer's -malloc_limit_mb), not
# answered with NULL: a small input that makes the library ask for
# gigabytes is a finding (issue 13).
export ASAN_OPTIONS="allocator_may_return_null=0:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# Leaks inside libhdf5 itself are not ours to fix (see the file).
export LSAN_OPTIONS="suppressions=$(dirname "$0")/lsan-suppressions.txt:print_suppressions=0:${LSAN_OPTIONS:-}"
failed="" total_runs=0 total_secs=0
printf '%-16s %12s %8s %10s %8s %6s %10s %s\n' harness inputs seconds inputs/s coverage corpus accepted result
for item in "$@"; do
    h=${item%%:*}
    n=$amount
    [ "$h" != "$item" ] && n=${item#*:}
    limit="$flag=$n"
    bin="$build/fuzz_$h"
    mkdir -p "$build/corpus/$h"
    regress="$(dirname "$0")/regressions/$h"
    [ -d "$regress" ] || regress=""
    # The harnesses that reach libhdf5 (read_hdf5, read_auto): a hostile
    # HDF5 file can make libhdf5 itself ask for hundreds of GB (seen in its
    # metadata cache, H5C_protect); it copes with the NULL that malloc
    # returns in real use, and that is not our code to bound. So for these
    # two only, allocations above 256 MB are answered with NULL (ASan's
    # max_allocation_size_mb) instead of being reported; every other harness
    # keeps the strict rule above. Why not grant them: ASan maps shadow
    # memory for all of it, an eighth of the size (a 17 GB request libhdf5
    # made for a 2 KB file cost 2.1 GB of RSS under ASan, 12 MB in the real
    # tool), and libhdf5 also fills what it gets: H5Fopen alone took 1.6 GB
    # for another 2 KB file, in the real tool too (docs/RELIABILITY.md says
    # so). Inputs are at most 4 KB, so no allocation of our readers needs
    # 256 MB, and theirs fail cleanly on NULL. libhdf5's own memory errors, seen by
    # ASan where it calls memcpy and the like, are suppressed for them too
    # (asan-suppressions.txt says why); errors in our code are still
    # reported.
    hdf5_opts="" hdf5_asan=""
    case "$h" in read_hdf5|read_auto)
        hdf5_opts="-malloc_limit_mb=1000000000"
        hdf5_asan=":allocator_may_return_null=1:max_allocation_size_mb=256:suppressions=$(dirname "$0")/asan-suppressions.txt" ;;
    esac
    start=$(date +%s)
    # shellcheck disable=SC2086
    ASAN_OPTIONS="$ASAN_OPTIONS$hdf5_asan" \
    nice -n "${FUZZ_NICE:-10}" "$bin" $limit -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 $hdf5_opts \
        -artifact_prefix="$build/crashes/$h-" ${FUZZ_FLAGS:-} \
        "$build/corpus/$h" "$build/seeds/$h" $regress >"$build/logs/$h.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/logs/$h.log" | tail -n 1)
    cov=$(grep -a -o 'cov: [0-9]*' "$build/logs/$h.log" | tail -n 1 | cut -d' ' -f2)
    corp=$(ls "$build/corpus/$h" | wc -l)
    acc=$(sed -n 's/^fz_accepted: *//p' "$build/logs/$h.log" | tail -n 1)
    runs=${runs:-0}
    result=ok
    if [ $rc -ne 0 ]; then result="FAILED (exit $rc)"; failed="$failed $h"
    elif [ "${acc:-0}" -eq 0 ]; then result="FAILED (accepted no input)"; failed="$failed $h"; fi
    rate=$(( secs > 0 ? runs / secs : runs ))
    printf '%-16s %12s %8s %10s %8s %6s %10s %s\n' "$h" "$runs" "$secs" "$rate" "${cov:-?}" "$corp" "${acc:-?}" "$result"
    total_runs=$((total_runs + runs)) total_secs=$((total_secs + secs))
done
printf '%-16s %12s %8s\n' total "$total_runs" "$total_secs"
if [ -n "$failed" ]; then
    for h in $failed; do
        echo "---- $h: tail of $build/logs/$h.log"
        tail -n 40 "$build/logs/$h.log"
    done
    echo "fuzz: FAILED:$failed (inputs in $build/crashes/)"
    exit 1
fi

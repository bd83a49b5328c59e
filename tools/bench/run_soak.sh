#!/usr/bin/env bash
# tools/bench/run_soak.sh — the soak benchmark of issue 5: `runs` times
# (default 1) runs `netsys-bench soak` (10 minutes of resilient-client churn
# through the fault-injecting proxy, one process) and prints its result line
# (workload soak_churn, metric rss_growth_bytes: RSS growth after the warm-up;
# target < 1 MiB). With more than one run, a median line follows. Not part of
# ctest or CI: one run takes DURATION seconds plus about half a minute.
#
#   tools/bench/run_soak.sh [runs]
#
# Environment:
#   DURATION   seconds in all, warm-up included (default 600)
#   WARMUP     seconds before the RSS baseline (default 60)
#   CLIENTS    resilient clients (default 50)
#   SOAK_ARGS  more `netsys-bench soak` options (e.g. "--rate 50 --faults none")
#   NETSYS_BENCH, RAW  as in run_echo.sh (use a Release build)
#
# stdout: the result line of every run, then the median line if runs > 1.
# stderr: the {"event":"sample",...} lines as they come, and failures. Exit
# status 1 if a run failed (its line says why: "ok":false and "error"), 2 if
# netsys-bench could not be started. Every run is bounded: netsys-bench has
# its own watchdog (duration + 150 s), and this script stops it by its PID
# (SIGTERM, then SIGKILL) 60 s after that.
set -u

set -- "${1:-1}"
# shellcheck source=tools/bench/common.sh
. "$(dirname "$0")/common.sh"

duration=${DURATION:-600}
warmup=${WARMUP:-60}
clients=${CLIENTS:-50}
for v in "$duration" "$warmup" "$clients"; do
    case $v in
    '' | *[!0-9]*)
        echo "$0: DURATION, WARMUP and CLIENTS are whole numbers" >&2
        exit 2
        ;;
    esac
done
bound=$((duration + 210))

raw=$(mktemp)
out=$(mktemp)
pid=

# stop: SIGTERM to the running soak, SIGKILL after 10 s; reaps it.
stop() {
    stop_pid "$pid" soak 10
    pid=
}

# show_events: passes the {"event":...} lines of `out` after the first
# `shown` on to stderr; sets `shown` to the lines seen so far.
show_events() {
    local lines
    lines=$(wc -l <"$out")
    if [ "$lines" -gt "$shown" ]; then
        sed -n "$((shown + 1)),${lines}p" "$out" | grep '"event"' >&2
        shown=$lines
    fi
}
trap 'stop; rm -f "$raw" "$out"' EXIT
trap 'exit 130' INT TERM

failures=0
for ((r = 1; r <= runs; r++)); do
    : >"$out"
    # shellcheck disable=SC2086 # SOAK_ARGS is a list of options
    "$bench" soak --duration "$duration" --warmup "$warmup" --clients "$clients" \
        ${SOAK_ARGS:-} >"$out" &
    pid=$!
    echo "$0: run $r of $runs: soak (pid $pid), ${duration} s, warm-up ${warmup} s, $clients clients" >&2
    shown=0
    status=124
    for ((t = 0; t < bound * 2; t++)); do
        # Pass the sample lines on as they come.
        show_events
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            status=$?
            pid=
            break
        fi
        sleep 0.5
    done
    if [ -n "$pid" ]; then
        echo "$0: run $r: no end after $bound s, stopping it" >&2
        stop
    fi
    show_events
    line=$(grep '"workload":"soak_churn"' "$out" | head -n 1)
    if [ -n "$line" ]; then
        echo "$line"
        [ -n "${RAW:-}" ] && echo "$line" >>"$RAW"
    fi
    if [ "$status" -ne 0 ] || [ -z "$line" ]; then
        echo "$0: run $r failed (exit $status)" >&2
        failures=$((failures + 1))
        continue
    fi
    printf '%s\t%s\n' "$r" "$line" >>"$raw"
done

if [ "$runs" -gt 1 ]; then
    medians run_soak \
        --extra rss_after_warmup,rss_end,rss_max,rss_slope_bytes_per_min,heap_growth_bytes,reconnects,sent,echoed \
        --params clients,duration_s,warmup_s,rate_per_client,size,faults,schedulers
    exit $?
fi
[ "$failures" -eq 0 ]

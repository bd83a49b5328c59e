#!/usr/bin/env bash
# tools/bench/run_runtime.sh — runs the runtime benchmarks w2-limit, w2, w1, w3
# in turn, `runs` rounds (default 5), so that a noisy neighbour hurts all of
# them alike; then prints one JSON line per workload with the medians, and
# the ratios w2 / w2-limit (and w1 / w1-limit when both ran).
#
#   tools/bench/run_runtime.sh [runs]
#
# Environment:
#   NETSYS_BENCH   path to netsys-bench (default: build/bench/tools/bench/netsys-bench
#                  under the repository root, else build/release/...)
#   WORKLOADS      the workloads of one round, in order (default
#                  "w2-limit w2 w1 w3"; "w1-limit" is the optional baseline for w1)
#   W1_ARGS W2_ARGS W3_ARGS LIMIT_ARGS W1_LIMIT_ARGS   extra options for each
#                  workload (e.g. W2_ARGS="--m 1M" for a quick try)
#   RAW            also append every raw result line to this file
#
# stdout: the median lines only. stderr: every raw line as it comes, and
# failures. Exit status 1 if any run failed (its figures are left out).
set -u

# shellcheck source=tools/bench/common.sh
. "$(dirname "$0")/common.sh"

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
failures=0

for ((r = 1; r <= runs; r++)); do
    for w in ${WORKLOADS:-w2-limit w2 w1 w3}; do
        case $w in
        w2-limit) extra=${LIMIT_ARGS:-} ;;
        w1-limit) extra=${W1_LIMIT_ARGS:-} ;;
        w2) extra=${W2_ARGS:-} ;;
        w1) extra=${W1_ARGS:-} ;;
        w3) extra=${W3_ARGS:-} ;;
        *) extra= ;;
        esac
        # shellcheck disable=SC2086 # extra is a list of options
        line=$("$bench" "$w" $extra)
        collect "$r" "$w" $? "$line"
    done
done

medians run_runtime \
    --extra ns_per_roundtrip,ns_per_msg,ns_per_actor,peak_rss_kb,bytes_per_actor \
    --params n,m,producers,schedulers,placement,producer_flow,producer_batch,window,spawn_batch,child_state_bytes,consumer_sched,producer_scheds \
    --ratio w2:w2-limit --ratio w1:w1-limit

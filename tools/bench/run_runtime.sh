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

runs=${1:-5}
case $runs in
'' | *[!0-9]* | 0)
    echo "usage: $0 [runs]   (runs: a positive integer, default 5)" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
bench=${NETSYS_BENCH:-}
if [ -z "$bench" ]; then
    # The documented build dir first, then the release preset's.
    for dir in build/bench build/release; do
        bench=$root/$dir/tools/bench/netsys-bench
        [ -x "$bench" ] && break
    done
fi
if [ ! -x "$bench" ]; then
    echo "$0: $bench not found; build it first:" >&2
    echo "  cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build/bench --target netsys-bench" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "$0: needs python3" >&2; exit 2; }

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
        rc=$?
        if [ $rc -ne 0 ] || [ -z "$line" ]; then
            echo "$0: round $r: $w failed (exit $rc): $line" >&2
            failures=$((failures + 1))
            continue
        fi
        echo "$line" >&2
        printf '%s\t%s\n' "$r" "$line" >>"$raw"
        if [ -n "${RAW:-}" ]; then
            echo "$line" >>"$RAW"
        fi
    done
done

python3 - "$raw" "$runs" "$failures" <<'EOF'
import json, statistics, sys

path, runs, failures = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
by_workload = {}   # workload -> list of (round, record)
order = []
with open(path) as f:
    for text in f:
        rnd, line = text.rstrip("\n").split("\t", 1)
        rec = json.loads(line)
        if not rec.get("ok", True) or rec.get("value") is None:
            continue
        w = rec["workload"]
        if w not in by_workload:
            by_workload[w] = []
            order.append(w)
        by_workload[w].append((int(rnd), rec))

# Figures worth a median besides the metric itself.
EXTRA = ["ns_per_roundtrip", "ns_per_msg", "ns_per_actor", "peak_rss_kb", "bytes_per_actor"]
# Parameters copied from the first run (they are the same in every run).
PARAMS = ["n", "m", "producers", "schedulers", "placement", "producer_flow", "producer_batch",
          "window", "spawn_batch", "child_state_bytes", "consumer_sched", "producer_scheds"]

def fmt(x):
    return round(x, 4) if isinstance(x, float) and abs(x) < 1000 else (round(x, 1) if isinstance(x, float) else x)

medians = {}
for w in order:
    recs = [rec for _, rec in by_workload[w]]
    values = [rec["value"] for rec in recs]
    first = recs[0]
    out = {"system": "netsys", "workload": w, "metric": first["metric"], "stat": "median",
           "runs": len(values), "value": fmt(statistics.median(values)), "unit": first["unit"],
           "min": fmt(min(values)), "max": fmt(max(values))}
    for key in EXTRA:
        xs = [rec[key] for rec in recs if isinstance(rec.get(key), (int, float))]
        if xs:
            out[key] = fmt(statistics.median(xs))
    for key in PARAMS:
        if key in first:
            out[key] = first[key]
    medians[w] = statistics.median(values)
    print(json.dumps(out, separators=(",", ":")))

# value: ratio of the medians; paired_*: over the per-round ratios.
for top, base in (("w2", "w2-limit"), ("w1", "w1-limit")):
    if top not in medians or base not in medians or medians[base] <= 0:
        continue
    base_by_round = {rnd: rec["value"] for rnd, rec in by_workload[base]}
    paired = [rec["value"] / base_by_round[rnd] for rnd, rec in by_workload[top]
              if base_by_round.get(rnd)]
    out = {"system": "netsys", "workload": top + "/" + base, "metric": "ratio", "stat": "median",
           "runs": len(paired), "value": fmt(medians[top] / medians[base]), "unit": "1",
           "paired_median": fmt(statistics.median(paired)) if paired else None,
           "paired_min": fmt(min(paired)) if paired else None,
           "paired_max": fmt(max(paired)) if paired else None}
    print(json.dumps(out, separators=(",", ":")))

if failures:
    print(json.dumps({"system": "netsys", "workload": "run_runtime", "failed_runs": failures,
                      "rounds": runs}, separators=(",", ":")))
    sys.exit(1)
EOF

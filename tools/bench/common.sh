# tools/bench/common.sh — what the run_*.sh scripts share: the runs argument
# and finding netsys-bench. Sourced, not run. Sets `runs`, `root`, `bench`.
# Not for: the workloads themselves.

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
    echo "  cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build/bench --target netsys-bench netsys-baseline-echo-server" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "$0: needs python3" >&2; exit 2; }

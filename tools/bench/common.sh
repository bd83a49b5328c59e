# shellcheck shell=bash disable=SC2034,SC2154 # variables set for, and by, the sourcing scripts
# tools/bench/common.sh — what the run_*.sh scripts share: the runs argument,
# finding netsys-bench, CPU pinning, stopping a background process by its PID,
# waiting for a server's port, recording result lines and the median lines.
# Sourced, not run. Sets `runs`, `root`, `bench`; the functions below use the
# caller's `raw` (the file of "round<TAB>line" records) and `failures`.
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

# set_pins WHO: sets `server_pin` (CPU 0) and `client_pin` (CPU 1) to taskset
# prefixes; empty, with a note on stderr naming WHO ("server", "servers"),
# under PIN=0 or without taskset.
set_pins() {
    server_pin=()
    client_pin=()
    if [ "${PIN:-1}" = 0 ]; then
        echo "$0: note: PIN=0, $1 and client run unpinned" >&2
    elif command -v taskset >/dev/null; then
        server_pin=(taskset -c 0)
        client_pin=(taskset -c 1)
    else
        echo "$0: note: taskset not found, $1 and client run unpinned" >&2
    fi
}

# stop_pid PID NAME [SECONDS]: SIGTERM to PID, SIGKILL if it is still there
# after SECONDS (default 5); reaps it and sets `stop_status` to its exit
# status. Returns 1 if it had to be killed. No PID: nothing to do.
stop_pid() {
    stop_status=0
    [ -n "$1" ] || return 0
    local secs=${3:-5} killed=0
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq $((secs * 10))); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        echo "$0: $2 ($1) ignored SIGTERM for $secs s, killing it" >&2
        kill -KILL "$1" 2>/dev/null
        killed=1
    fi
    wait "$1" 2>/dev/null
    stop_status=$?
    return $killed
}

# wait_port FILE PID TICKS [PREFIX]: polls FILE every 0.05 s, at most TICKS
# times, for a line (starting with the sed regex PREFIX) with "port":N, until
# PID has exited; sets `port` to N, or empty if none came.
wait_port() {
    port=
    for _ in $(seq "$3"); do
        port=$(sed -n "s/${4:-}.*\"port\":\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
}

# record ROUND LINE: passes a result line on to stderr, to `raw` and to $RAW.
record() {
    echo "$2" >&2
    printf '%s\t%s\n' "$1" "$2" >>"$raw"
    if [ -n "${RAW:-}" ]; then
        echo "$2" >>"$RAW"
    fi
}

# collect ROUND WHAT RC LINE: records LINE of a finished run; if it failed
# (RC non-zero or no line) says so, counts it in `failures` and returns 1.
collect() {
    if [ "$3" -ne 0 ] || [ -z "$4" ]; then
        echo "$0: round $1: $2 failed (exit $3): $4" >&2
        failures=$((failures + 1))
        return 1
    fi
    record "$1" "$4"
}

# medians SCRIPT OPTION...: the median lines of `raw` (medians.py).
medians() {
    local script=$1
    shift
    python3 "$root/tools/bench/medians.py" "$raw" "$runs" "$failures" "$script" "$@"
}

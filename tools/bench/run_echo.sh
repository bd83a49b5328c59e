#!/usr/bin/env bash
# tools/bench/run_echo.sh — W4 (TCP echo throughput) and W5 (TCP echo latency)
# against one echo server on 127.0.0.1: starts the server on a free port,
# runs W4 then W5 `runs` times (default 5) with `netsys-bench echo-client`,
# prints one JSON line per workload with the medians, stops the server.
#
#   tools/bench/run_echo.sh [runs]
#
# Server on CPU 0, client on CPU 1 (taskset), so that the two never share a
# core; without taskset both run unpinned (a note on stderr says so).
#
# Environment:
#   SERVER_CMD     the server to measure, as a command line; the script appends
#                  "--port 0" and reads the bound port from the {"port":N} line
#                  it must print on stdout, and stops it with SIGTERM. Default:
#                  the raw-libuv baseline, netsys-baseline-echo-server. The netsys
#                  echo server (coming with the TCP listener actor) will be
#                  measured by pointing SERVER_CMD at it, with the same contract.
#   SERVER_LABEL   names the server in the result lines (default "baseline-libuv"
#                  for the default server, else "custom")
#   NETSYS_BENCH   path to netsys-bench (default: build/bench/..., else
#                  build/release/...)
#   W4_ARGS W5_ARGS  extra echo-client options (e.g. W4_ARGS="--count 20000")
#   PIN            0: do not pin (both processes wherever the OS puts them)
#   RAW            also append every raw result line to this file
#
# stdout: the median lines only. stderr: every raw line as it comes, and
# failures. Exit status 1 if any run failed (its figures are left out), 2 if
# the server or the client could not be started.
set -u

# shellcheck source=tools/bench/common.sh
. "$(dirname "$0")/common.sh"
server_cmd=${SERVER_CMD:-}
label=${SERVER_LABEL:-}
if [ -z "$server_cmd" ]; then
    server_cmd=$(dirname "$bench")/netsys-baseline-echo-server
    label=${label:-baseline-libuv}
    if [ ! -x "$server_cmd" ]; then
        echo "$0: $server_cmd not found; build the netsys-baseline-echo-server target" >&2
        exit 2
    fi
fi
label=${label:-custom}

server_pin=()
client_pin=()
if [ "${PIN:-1}" = 0 ]; then
    echo "$0: note: PIN=0, server and client run unpinned" >&2
elif command -v taskset >/dev/null; then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
else
    echo "$0: note: taskset not found, server and client run unpinned" >&2
fi

raw=$(mktemp)
server_out=$(mktemp)
server_pid=

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    # Bounded: a server that ignores SIGTERM for 5 s is killed.
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "$0: server $server_pid ignored SIGTERM, killing it" >&2
        kill -KILL "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=
}
trap 'stop_server; rm -f "$raw" "$server_out"' EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086 # SERVER_CMD is a command line
"${server_pin[@]}" $server_cmd --port 0 >"$server_out" &
server_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/^{"port":\([0-9][0-9]*\)}$/\1/p' "$server_out" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$port" ]; then
    echo "$0: the server ($server_cmd) printed no {\"port\":N} line within 5 s" >&2
    exit 2
fi
echo "$0: server $label (pid $server_pid) on 127.0.0.1:$port" >&2

failures=0
for ((r = 1; r <= runs; r++)); do
    for w in w4_tcp_echo_tput w5_tcp_echo_lat; do
        case $w in
        w4_tcp_echo_tput) args="--size 64 --window 128 --count 200000 --warmup 10000 ${W4_ARGS:-}" ;;
        w5_tcp_echo_lat) args="--size 64 --window 1 --count 20000 --warmup 1000 ${W5_ARGS:-}" ;;
        esac
        # shellcheck disable=SC2086 # args is a list of options
        line=$("${client_pin[@]}" "$bench" echo-client --host 127.0.0.1 --port "$port" \
            --workload "$w" --server-label "$label" $args)
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

stop_server

python3 "$root/tools/bench/medians.py" "$raw" "$runs" "$failures" run_echo \
    --extra msgs_per_s,mb_per_s,p50_us,p99_us,p999_us,max_us \
    --params count,size,window,warmup,host,server

#!/usr/bin/env bash
# tools/bench/run_echo.sh — W4 (TCP echo throughput) and W5 (TCP echo latency),
# the netsys echo server against the raw-libuv baseline in the same run. Each
# of `runs` rounds (default 5) starts every server in turn on a free port (the
# order alternates from round to round, so neither always goes first), runs
# W4 then W5 against it with `netsys-bench echo-client`, and stops it by its
# PID. Prints one median JSON line per workload and server, then the ratios
# netsys / baseline (W4: msgs/s, target >= 0.8; W5: p50 RTT, target <= 1.2).
#
#   tools/bench/run_echo.sh [runs]
#
# Every server on CPU 0, the client on CPU 1 (taskset), so that client and
# server never share a core and both servers get the same placement; without
# taskset (or with PIN=0) everything runs unpinned (a note on stderr says so).
#
# Environment:
#   SERVERS        the servers, in the order of odd rounds (even rounds reverse
#                  it); default "baseline-libuv netsys":
#                    baseline-libuv  netsys-baseline-echo-server (next to netsys-bench)
#                    netsys          netsys-bench echo-server $NETSYS_SERVER_ARGS
#                    anything else   $SERVER_CMD
#                  A server command gets "--port 0" appended, must print a line
#                  with "port":N on stdout once listening, and stop on SIGTERM.
#   NETSYS_SERVER_ARGS  echo-server options (default "--schedulers 1": one
#                  scheduler thread, as the baseline has one loop, on the one
#                  CPU the servers are pinned to)
#   SERVER_CMD     a server command line; alone (SERVERS unset) it is the only
#                  server measured, named SERVER_LABEL (default "custom")
#   NETSYS_BENCH   path to netsys-bench (default: build/bench/..., else
#                  build/release/...)
#   W4_ARGS W5_ARGS  extra echo-client options (e.g. W4_ARGS="--count 20000")
#   PIN            0: do not pin
#   RAW            also append every raw result line to this file
#
# stdout: the median and ratio lines only. stderr: every raw line as it comes,
# and failures. Exit status 1 if any run failed (its figures are left out), 2
# if a server or the client could not be started.
set -u

# shellcheck source=tools/bench/common.sh
. "$(dirname "$0")/common.sh"

if [ -n "${SERVERS:-}" ]; then
    read -r -a servers <<<"$SERVERS"
elif [ -n "${SERVER_CMD:-}" ]; then
    servers=("${SERVER_LABEL:-custom}")
else
    servers=(baseline-libuv netsys)
fi
netsys_server_args=${NETSYS_SERVER_ARGS---schedulers 1}

# The command line of server $1 (word-split by the caller).
server_command() {
    case $1 in
    baseline-libuv) echo "$(dirname "$bench")/netsys-baseline-echo-server" ;;
    netsys) echo "$bench echo-server $netsys_server_args" ;;
    *) echo "${SERVER_CMD:-}" ;;
    esac
}
for s in "${servers[@]}"; do
    cmd=$(server_command "$s")
    if [ -z "$cmd" ]; then
        echo "$0: server '$s' needs SERVER_CMD" >&2
        exit 2
    fi
    exe=${cmd%% *}
    if [ ! -x "$exe" ]; then
        echo "$0: $exe not found; build the netsys-bench and netsys-baseline-echo-server targets" >&2
        exit 2
    fi
done

set_pins servers

raw=$(mktemp)
server_out=$(mktemp)
server_pid=
server_label=

# Stops the running server by its PID: SIGTERM, SIGKILL after 5 s. Returns 1
# if it had to be killed or exited with a non-zero status.
stop_server() {
    local pid=$server_pid
    server_pid=
    stop_pid "$pid" "server $server_label" || return 1
    if [ "$stop_status" -ne 0 ]; then
        echo "$0: server $server_label ($pid) exited with status $stop_status after SIGTERM" >&2
        return 1
    fi
}
trap 'stop_server; rm -f "$raw" "$server_out"' EXIT
trap 'exit 130' INT TERM

# Starts server $1 and sets `port`; exits 2 if it does not listen within 5 s.
start_server() {
    server_label=$1
    local cmd
    cmd=$(server_command "$1")
    : >"$server_out"
    # shellcheck disable=SC2086 # cmd is a command line
    "${server_pin[@]}" $cmd --port 0 >"$server_out" &
    server_pid=$!
    wait_port "$server_out" "$server_pid" 100
    if [ -z "$port" ]; then
        echo "$0: server $1 ($cmd) printed no \"port\":N line within 5 s" >&2
        exit 2
    fi
    echo "$0: server $1 (pid $server_pid) on 127.0.0.1:$port" >&2
}

failures=0
for ((r = 1; r <= runs; r++)); do
    order=("${servers[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do
            order+=("${servers[i]}")
        done
    fi
    for s in "${order[@]}"; do
        start_server "$s"
        for w in w4_tcp_echo_tput w5_tcp_echo_lat; do
            case $w in
            w4_tcp_echo_tput) args="--size 64 --window 128 --count 200000 --warmup 10000 ${W4_ARGS:-}" ;;
            w5_tcp_echo_lat) args="--size 64 --window 1 --count 20000 --warmup 1000 ${W5_ARGS:-}" ;;
            esac
            # shellcheck disable=SC2086 # args is a list of options
            line=$("${client_pin[@]}" "$bench" echo-client --host 127.0.0.1 --port "$port" \
                --workload "$w" --server-label "$s" --timeout 60 $args)
            collect "$r" "$w against $s" $? "$line"
        done
        stop_server || failures=$((failures + 1))
    done
done

ratios=()
have() { for s in "${servers[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
if have netsys && have baseline-libuv; then
    ratios=(--ratio w4_tcp_echo_tput@netsys:w4_tcp_echo_tput@baseline-libuv
        --ratio w5_tcp_echo_lat@netsys:w5_tcp_echo_lat@baseline-libuv)
fi
medians run_echo --split server \
    --extra msgs_per_s,mb_per_s,p50_us,p99_us,p999_us,max_us \
    --params count,size,window,warmup,host "${ratios[@]}"

#!/usr/bin/env bash
# tools/bench/run_idle.sh — W6 (memory per idle session): `runs` times
# (default 5) starts `netsys-bench echo-server --expect-conns C`, connects C
# idle TCP connections to it with `netsys-bench idle-client --conns C`, and
# collects the server's w6_idle_conns line (RSS growth / C; target <= 1 KiB).
# Prints the median line on stdout. Every process is stopped by its PID and
# every wait is bounded.
#
#   tools/bench/run_idle.sh [runs]
#
# Server on CPU 0, client on CPU 1 (taskset), as in run_echo.sh; PIN=0 or no
# taskset: unpinned.
#
# Environment:
#   CONNS               connections (default 10000); both processes raise their
#                       soft RLIMIT_NOFILE to the hard limit, which must exceed it
#   NETSYS_SERVER_ARGS  extra echo-server options (e.g. "--schedulers 1")
#   HOLD_S              idle-client --hold-s (default 150)
#   NETSYS_BENCH, PIN, RAW  as in run_echo.sh
#
# stdout: the median line. stderr: the raw lines and failures. Exit status 1
# if a run failed, 2 if a process could not be started.
set -u

# shellcheck source=tools/bench/common.sh
. "$(dirname "$0")/common.sh"

conns=${CONNS:-10000}
hold_s=${HOLD_S:-150}
server_args=${NETSYS_SERVER_ARGS:-}
# The server gives up by itself after 120 s without C sessions (plus at most
# 20 s of settling); this script waits a little longer, then kills it.
server_wait_s=200

set_pins server

raw=$(mktemp)
server_out=$(mktemp)
client_out=$(mktemp)
server_pid=
client_pid=

# await PID SECONDS: waits until PID has exited, at most SECONDS; sets
# `status` to its exit status (or 124 if it was still running).
await() {
    local ticks=$(($2 * 5))
    for ((t = 0; t < ticks; t++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$1" 2>/dev/null; then
        status=124
        return
    fi
    wait "$1" 2>/dev/null
    status=$?
}

trap 'stop_pid "$client_pid" client; stop_pid "$server_pid" server; rm -f "$raw" "$server_out" "$client_out"' EXIT
trap 'exit 130' INT TERM

failures=0
for ((r = 1; r <= runs; r++)); do
    : >"$server_out"
    : >"$client_out"
    # shellcheck disable=SC2086 # server_args is a list of options
    "${server_pin[@]}" "$bench" echo-server --port 0 --expect-conns "$conns" $server_args \
        >"$server_out" &
    server_pid=$!
    # The ready line comes once the RSS before has settled (at most ~10 s).
    wait_port "$server_out" "$server_pid" 300 '^{"event":"listening"'
    if [ -z "$port" ]; then
        echo "$0: round $r: echo-server printed no listening line within 15 s" >&2
        cat "$server_out" >&2
        exit 2
    fi
    echo "$0: round $r: server (pid $server_pid) on 127.0.0.1:$port, $conns connections" >&2

    "${client_pin[@]}" "$bench" idle-client --port "$port" --conns "$conns" --hold-s "$hold_s" \
        >"$client_out" &
    client_pid=$!

    # Wait for the server to print its line and exit; a client that fails
    # first (it could not connect) ends the round at once.
    deadline=$((SECONDS + server_wait_s))
    client_status=
    while kill -0 "$server_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        if [ -z "$client_status" ] && ! kill -0 "$client_pid" 2>/dev/null; then
            wait "$client_pid" 2>/dev/null
            client_status=$?
            client_pid=
            if [ "$client_status" -ne 0 ]; then
                echo "$0: round $r: idle-client failed (exit $client_status), stopping the server" >&2
                break
            fi
        fi
        sleep 0.2
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "$0: round $r: server still running, stopping it" >&2
        stop_pid "$server_pid" server
        server_status=124
    else
        wait "$server_pid" 2>/dev/null
        server_status=$?
    fi
    server_pid=
    # The server is gone, so the client sees every connection close.
    if [ -n "$client_pid" ]; then
        await "$client_pid" 30
        client_status=$status
        if [ "$client_status" -eq 124 ]; then
            echo "$0: round $r: client still running 30 s after the server ended" >&2
            stop_pid "$client_pid" client
        fi
        client_pid=
    fi

    line=$(grep '"workload":"w6_idle_conns"' "$server_out" | head -n 1)
    client_line=$(head -n 1 "$client_out")
    [ -n "$client_line" ] && echo "$client_line" >&2
    if [ "$server_status" -ne 0 ] || [ -z "$line" ]; then
        echo "$0: round $r: w6 failed (server exit $server_status, client exit $client_status): $line" >&2
        failures=$((failures + 1))
        continue
    fi
    record "$r" "$line"
done

medians run_idle \
    --extra heap_bytes_per_conn,rss_before,rss_after,peak_rss_kb,reach_s,settle_s \
    --params conns,schedulers,settled

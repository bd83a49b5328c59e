/* tools/bench/bench_echo_server.c — `netsys-bench echo-server`: the netsys
 * server that W4/W5 (TCP echo throughput and latency) measure against the
 * raw-libuv baseline, and the server half of W6 (memory per idle session).
 *
 * The server is what a netsys user would write: a runtime, one listener
 * (nsys_listener_start) whose sessions run the built-in echo handler
 * (nsys_handler_echo), length codec. Nothing here touches a byte on the data
 * path; that is the point of the measurement.
 *
 * Serving (W4/W5): prints {"event":"listening",...,"port":N,...} on stdout
 * once bound, runs until SIGINT/SIGTERM (nsys_runtime_wait with
 * NSYS_WAIT_SIGNALS) or --duration, then prints {"event":"stopped",...} with
 * the listener's counters, stops the runtime and exits 0.
 *
 * W6 (--expect-conns C): samples the RSS once the listener runs and before
 * the ready line (so before any client connects), waits (bounded) until the
 * listener's session table holds C sessions, waits until the RSS stops
 * moving (3 equal samples 100 ms apart, bounded), prints the w6 result line
 * and exits. The per-connection figure is (RSS after - RSS before) / C; the
 * heap figure from mallinfo2 (allocated bytes, touched or not) sits next to it.
 *
 * Not for: generating load (bench_echo_client.c, bench_idle_client.c).
 */
#define _GNU_SOURCE
#include "bench_rt.h"

#include <netsys/net.h>

#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NOT_GIVEN UINT64_MAX
#define EXPECT_WAIT_S_DEFAULT 120.0
#define SAMPLE_MS 100u
#define SETTLE_EQUAL_SAMPLES 3u
#define SETTLE_MAX_S 10.0
#define MAX_CONNS 1000000u
#define MAX_PAYLOAD_LIMIT (UINT64_C(1) << 30)

static const char cmd_name[] = "echo-server";
static const char w6_workload[] = "w6_idle_conns";
static const char w6_metric[] = "rss_bytes_per_conn";

typedef struct server_opts {
    const char *host;
    uint64_t port;
    uint64_t expect_conns; /* NOT_GIVEN: serve until a signal */
    uint64_t max_payload;  /* 0: the transport's default */
    double expect_wait_s;
    double duration_s; /* 0: until a signal */
    bench_rt_opts_t rt;
} server_opts_t;

/* Bytes malloc has handed out and not had back, in every arena plus mmap'd
 * chunks: what the sessions allocated whether or not they touched it. */
static uint64_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* Sleeps about `ms` through nsys_runtime_wait, so that SIGINT/SIGTERM and a
 * failure recorded by bench_run_fail end the wait. Returns 0 after the pause,
 * or 1 with the reason in `why`/`code`. */
static int pause_ms(bench_run_t *run, unsigned ms, nsys_wake_t *why, int *code)
{
    *why = 0;
    *code = 0;
    int rc = nsys_runtime_wait(run->rt, NSYS_WAIT_SIGNALS, ms, why, code);
    if (rc != 0) {
        bench_run_fail(run, "nsys_runtime_wait: %s", nsys_strerror(rc));
        return 1;
    }
    return *why == NSYS_WAKE_TIMEOUT ? 0 : 1;
}

static const char *wake_text(nsys_wake_t why, int code, char *buf, size_t len)
{
    if (why == NSYS_WAKE_SIGNAL)
        snprintf(buf, len, "signal %d", code);
    else if (why == NSYS_WAKE_REQUEST)
        snprintf(buf, len, "stop request (code %d)", code);
    else
        snprintf(buf, len, "wake-up %d (code %d)", (int)why, code);
    return buf;
}

/* Samples the RSS every SAMPLE_MS until SETTLE_EQUAL_SAMPLES in a row are
 * equal or SETTLE_MAX_S passed. Returns 0 (settled or not, *settled says),
 * 1 if a signal or a failure interrupted it. */
static int settle_rss(bench_run_t *run, uint64_t *rss, bool *settled, double *waited_s)
{
    uint64_t t0 = bench_now_ns();
    uint64_t last = bench_rss_bytes();
    unsigned equal = 1;
    *settled = false;
    while ((double)(bench_now_ns() - t0) / 1e9 < SETTLE_MAX_S) {
        nsys_wake_t why;
        int code;
        if (pause_ms(run, SAMPLE_MS, &why, &code) != 0) {
            char text[64];
            bench_run_fail(run, "interrupted while the RSS settled: %s",
                           wake_text(why, code, text, sizeof text));
            return 1;
        }
        uint64_t now = bench_rss_bytes();
        equal = now == last ? equal + 1 : 1;
        last = now;
        if (equal >= SETTLE_EQUAL_SAMPLES) {
            *settled = true;
            break;
        }
    }
    *rss = last;
    *waited_s = (double)(bench_now_ns() - t0) / 1e9;
    return 0;
}

static void print_w6_failure(bench_run_t *run, const server_opts_t *o,
                             const nsys_listener_info_t *info)
{
    bench_json_t j;
    bench_json_begin(&j, w6_workload, w6_metric, NAN, "bytes");
    bench_json_bool(&j, "ok", false);
    bench_json_str(&j, "error", bench_run_error(run));
    bench_json_u64(&j, "conns", o->expect_conns);
    if (info != NULL) {
        bench_json_u64(&j, "sessions", info->sessions);
        bench_json_u64(&j, "accepted", info->accepted);
        bench_json_u64(&j, "refused", info->refused);
        bench_json_u64(&j, "accept_errors", info->accept_errors);
    }
    bench_json_print(&j);
}

static void json_listener_counters(bench_json_t *j, const nsys_listener_info_t *info)
{
    bench_json_u64(j, "sessions", info->sessions);
    bench_json_u64(j, "accepted", info->accepted);
    bench_json_u64(j, "refused", info->refused);
    bench_json_u64(j, "accept_errors", info->accept_errors);
    bench_json_u64(j, "accept_pauses", info->accept_pauses);
}

/* --expect-conns: the W6 measurement, from the ready line to the result. */
static int measure_idle_sessions(bench_run_t *run, const server_opts_t *o, nsys_ref_t listener,
                                 uint64_t rss_before, uint64_t heap_before, double settle_before_s)
{
    nsys_listener_info_t info;
    memset(&info, 0, sizeof info);
    uint64_t t0 = bench_now_ns();
    for (;;) {
        int rc = nsys_listener_info(run->rt, listener, &info);
        if (rc != 0) {
            bench_run_fail(run, "nsys_listener_info: %s", nsys_strerror(rc));
            print_w6_failure(run, o, NULL);
            return 1;
        }
        atomic_store_explicit(&run->progress, info.sessions, memory_order_relaxed);
        if (info.sessions >= o->expect_conns)
            break;
        double waited = (double)(bench_now_ns() - t0) / 1e9;
        if (waited >= o->expect_wait_s) {
            bench_run_fail(run,
                           "only %u of %llu sessions after %.1f s (accepted %llu, refused %llu, "
                           "accept errors %llu)",
                           info.sessions, (unsigned long long)o->expect_conns, waited,
                           (unsigned long long)info.accepted, (unsigned long long)info.refused,
                           (unsigned long long)info.accept_errors);
            print_w6_failure(run, o, &info);
            return 1;
        }
        nsys_wake_t why;
        int code;
        if (pause_ms(run, SAMPLE_MS, &why, &code) != 0) {
            char text[64];
            bench_run_fail(run, "interrupted at %u of %llu sessions: %s", info.sessions,
                           (unsigned long long)o->expect_conns,
                           wake_text(why, code, text, sizeof text));
            print_w6_failure(run, o, &info);
            return 1;
        }
    }
    double reach_s = (double)(bench_now_ns() - t0) / 1e9;
    bench_err(cmd_name, "%u sessions after %.2f s; waiting for the RSS to settle", info.sessions,
              reach_s);

    uint64_t rss_after = 0;
    bool settled = false;
    double settle_s = 0;
    if (settle_rss(run, &rss_after, &settled, &settle_s) != 0) {
        print_w6_failure(run, o, &info);
        return 1;
    }
    uint64_t heap_after = heap_in_use();
    /* The sessions must still be there: the figure is for C live ones. */
    int rc = nsys_listener_info(run->rt, listener, &info);
    if (rc != 0 || info.sessions < o->expect_conns) {
        bench_run_fail(run, "sessions dropped to %u of %llu while the RSS settled", info.sessions,
                       (unsigned long long)o->expect_conns);
        print_w6_failure(run, o, &info);
        return 1;
    }

    double conns = (double)o->expect_conns;
    double per_conn = ((double)rss_after - (double)rss_before) / conns;
    bench_json_t j;
    bench_json_begin(&j, w6_workload, w6_metric, per_conn, "bytes");
    bench_json_bool(&j, "ok", true);
    bench_json_u64(&j, "conns", o->expect_conns);
    bench_json_u64(&j, "rss_before", rss_before);
    bench_json_u64(&j, "rss_after", rss_after);
    bench_json_f64(&j, "heap_bytes_per_conn", ((double)heap_after - (double)heap_before) / conns);
    bench_json_u64(&j, "heap_before", heap_before);
    bench_json_u64(&j, "heap_after", heap_after);
    bench_json_u64(&j, "peak_rss_kb", bench_status_kb("VmHWM"));
    bench_json_bool(&j, "settled", settled);
    bench_json_f64(&j, "settle_before_s", settle_before_s);
    bench_json_f64(&j, "settle_s", settle_s);
    bench_json_f64(&j, "reach_s", reach_s);
    json_listener_counters(&j, &info);
    bench_json_u64(&j, "schedulers", o->rt.schedulers);
    bench_json_u64(&j, "max_payload", o->max_payload);
    bench_run_json_counters(run, &j);
    bench_json_print(&j);
    return 0;
}

/* Serving: until a signal or --duration. */
static int serve(bench_run_t *run, const server_opts_t *o, nsys_ref_t listener)
{
    uint64_t timeout_ms = o->duration_s > 0 ? (uint64_t)(o->duration_s * 1000.0) : 0;
    if (o->duration_s > 0 && timeout_ms == 0)
        timeout_ms = 1;
    nsys_wake_t why = 0;
    int code = 0;
    int rc = nsys_runtime_wait(run->rt, NSYS_WAIT_SIGNALS, timeout_ms, &why, &code);
    if (rc != 0) {
        bench_run_fail(run, "nsys_runtime_wait: %s", nsys_strerror(rc));
        return 1;
    }
    if (why == NSYS_WAKE_REQUEST) /* only bench_run_fail asks: a failure */
        return 1;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof info);
    rc = nsys_listener_info(run->rt, listener, &info);
    bench_json_t j;
    bench_json_begin_event(&j, "stopped");
    bench_json_str(&j, "reason", why == NSYS_WAKE_SIGNAL ? "signal" : "duration");
    if (why == NSYS_WAKE_SIGNAL)
        bench_json_i64(&j, "signal", code);
    if (rc == 0)
        json_listener_counters(&j, &info);
    else
        bench_json_str(&j, "listener_info_error", nsys_strerror(rc));
    bench_run_json_counters(run, &j);
    bench_json_print(&j);
    return 0;
}

static const char usage[] =
    "usage: netsys-bench echo-server --port P [--host H] [--schedulers N]\n"
    "                                [--max-payload S] [--duration S]\n"
    "                                [--expect-conns C [--expect-wait-s S]]\n"
    "\n"
    "The netsys length-framed TCP echo server (W4/W5): a listener on H:P (default\n"
    "127.0.0.1; port 0 picks a free one) whose sessions run nsys_handler_echo.\n"
    "Prints {\"event\":\"listening\",...,\"port\":N,...} on stdout once bound, serves\n"
    "until SIGINT/SIGTERM (or --duration), prints {\"event\":\"stopped\",...}, exits 0.\n"
    "\n"
    "With --expect-conns C (W6, w6_idle_conns): samples the RSS before the ready\n"
    "line, waits until the listener holds C sessions (at most --expect-wait-s,\n"
    "default 120), waits until the RSS stops changing (3 equal samples 100 ms\n"
    "apart, at most 10 s), prints the result line (metric rss_bytes_per_conn =\n"
    "RSS growth / C) and exits. Connect the C clients with `netsys-bench idle-client`.\n"
    "\n"
    "Watchdog: none while serving unless --timeout is given; with --expect-conns\n"
    "the default is expect-wait-s + 70 s.\n";

static int run(int argc, char **argv)
{
    server_opts_t o = {
        .host = "127.0.0.1",
        .port = NOT_GIVEN,
        .expect_conns = NOT_GIVEN,
        .max_payload = 0,
        .expect_wait_s = EXPECT_WAIT_S_DEFAULT,
        .duration_s = 0,
        .rt = BENCH_RT_OPTS_DEFAULTS,
    };
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"host", BENCH_OPT_STRING, &o.host, "address to listen on (default 127.0.0.1)"},
        {"port", BENCH_OPT_U64, &o.port, "TCP port, 0: any free one (required)"},
        {"max-payload", BENCH_OPT_U64, &o.max_payload,
         "largest message, bytes (default: the transport's, 1 MiB)"},
        {"duration", BENCH_OPT_DOUBLE, &o.duration_s,
         "stop after S seconds (default: on a signal)"},
        {"expect-conns", BENCH_OPT_U64, &o.expect_conns,
         "W6: measure the RSS per session once C sessions exist, then exit"},
        {"expect-wait-s", BENCH_OPT_DOUBLE, &o.expect_wait_s,
         "W6: fail if C sessions do not exist after S seconds (default 120)"},
        BENCH_RT_OPT_ENTRIES(o.rt),
        {NULL, BENCH_OPT_U64, NULL, NULL},
    };
    int prc = bench_parse_timeout(argc, argv, usage, opts, &common, 0);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if (bench_rt_opts_check(cmd_name, &o.rt) != 0)
        return 2;
    bool w6 = o.expect_conns != NOT_GIVEN;
    if (o.port == NOT_GIVEN || o.port > 65535) {
        bench_err(cmd_name, "--port 0..65535 is required");
        return 2;
    }
    if (o.max_payload > MAX_PAYLOAD_LIMIT || o.duration_s < 0 || o.duration_s > 1e6 ||
        (w6 && (o.expect_conns < 1 || o.expect_conns > MAX_CONNS || !(o.expect_wait_s > 0) ||
                o.expect_wait_s > 3600))) {
        bench_err(cmd_name, "need --max-payload <= 2^30, 0 <= --duration <= 1e6, "
                            "1 <= --expect-conns <= 1000000, 0 < --expect-wait-s <= 3600");
        return 2;
    }
    if (w6 && common.timeout_s == 0)
        bench_watchdog_start(cmd_name, o.expect_wait_s + SETTLE_MAX_S * 2 + 50.0);

    /* A peer that leaves with echoes in flight must cost a write error, not
     * the process. */
    signal(SIGPIPE, SIG_IGN);
    uint64_t nofile = 0;
    if (bench_raise_nofile(&nofile) == 0 && w6 && nofile < o.expect_conns + 64)
        bench_err(cmd_name,
                  "warning: RLIMIT_NOFILE is %llu, too low for %llu sessions (raise ulimit -Hn)",
                  (unsigned long long)nofile, (unsigned long long)o.expect_conns);

    static bench_run_t run; /* the watchdog reads run.progress until exit */
    if (bench_run_start(&run, cmd_name, &o.rt, 0) != 0) {
        if (w6)
            print_w6_failure(&run, &o, NULL);
        return 1;
    }
    if (w6)
        bench_watchdog_progress(&run.progress, o.expect_conns);

    nsys_listener_opts_t lo = NSYS_LISTENER_OPTS_DEFAULTS;
    lo.name = "bench-echo";
    lo.host = o.host;
    lo.port = (uint16_t)o.port;
    lo.handler = &nsys_handler_echo;
    lo.transport.max_payload = (size_t)o.max_payload;
    nsys_ref_t listener = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof info);
    int rc = nsys_listener_start(run.rt, &lo, &listener, &info);
    if (rc != 0) {
        bench_run_fail(&run, "nsys_listener_start(%s:%llu): %s: %s", o.host,
                       (unsigned long long)o.port, nsys_strerror(rc), nsys_net_last_error());
        if (w6)
            print_w6_failure(&run, &o, NULL);
        bench_run_finish(&run);
        return 1;
    }

    /* W6's "before": the runtime and the listener exist and have settled,
     * no client has been told the port yet. nsys_listener_info is answered
     * by the listener actor, so its init has run once it returns. */
    uint64_t rss_before = 0, heap_before = 0;
    double settle_before_s = 0;
    if (w6) {
        nsys_listener_info_t first;
        bool settled = false;
        rc = nsys_listener_info(run.rt, listener, &first);
        if (rc != 0)
            bench_run_fail(&run, "nsys_listener_info: %s", nsys_strerror(rc));
        if (rc != 0 || settle_rss(&run, &rss_before, &settled, &settle_before_s) != 0) {
            print_w6_failure(&run, &o, NULL);
            bench_run_finish(&run);
            return 1;
        }
        heap_before = heap_in_use();
    }

    bench_json_t j;
    bench_json_begin_event(&j, "listening");
    bench_json_str(&j, "server", "netsys");
    bench_json_str(&j, "address", info.address);
    bench_json_u64(&j, "port", info.port);
    bench_json_u64(&j, "schedulers", o.rt.schedulers);
    bench_json_u64(&j, "max_payload", o.max_payload);
    bench_json_str(&j, "handler", "echo");
    bench_json_i64(&j, "pid", (int64_t)getpid());
    if (w6) {
        bench_json_u64(&j, "expect_conns", o.expect_conns);
        bench_json_u64(&j, "rss_before", rss_before);
    }
    bench_json_print(&j);

    int result =
        w6 ? measure_idle_sessions(&run, &o, listener, rss_before, heap_before, settle_before_s)
           : serve(&run, &o, listener);
    uint64_t t_stop = bench_now_ns();
    if (bench_run_finish(&run) != 0)
        result = 1;
    bench_info(&common, cmd_name, "runtime stopped in %.1f ms",
               (double)(bench_now_ns() - t_stop) / 1e6);
    return result;
}

const bench_cmd_t bench_cmd_echo_server = {
    .name = "echo-server",
    .summary = "netsys TCP echo server for W4/W5; W6 memory per idle session (--expect-conns)",
    .run = run,
};

/* tools/bench/bench_echo_client.c — `netsys-bench echo-client`: the load
 * generator of W4 (TCP echo throughput) and W5 (TCP echo latency). Raw libuv,
 * one connection, no netsys actors: what it measures is the server at the
 * other end (the hand-written baseline in baseline/echo_server.c, later the
 * netsys echo server).
 *
 * Wire format: each message is a 4-byte big-endian payload length, then the
 * payload; bytes 0..7 of a payload are the message's sequence number (little
 * endian), the rest 0xAB. At most `window` messages are outstanding; whenever
 * echoes arrive the client tops the window up with one uv_write of all the new
 * frames. Every echo is checked: length, sequence number (so order), payload
 * bytes. A mismatch or an early close fails the run (exit 1, "ok":false).
 *
 * Timing: warmup + count messages are sent; the timed section runs from the
 * arrival of the last warm-up echo (or the first send, with --warmup 0) to the
 * arrival of the last echo. The RTT of each timed message is its echo's
 * arrival minus the moment its frame was handed to uv_write (so it includes
 * time queued behind the window); one clock read per read callback and per
 * write.
 *
 * Not for: serving. The servers live elsewhere (see docs/BENCHMARKS.md, W4/W5).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define FRAME_HEADER 4u
#define MAX_PAYLOAD (UINT64_C(1) << 20)
#define SEQ_BYTES 8u
#define FILL_BYTE 0xAB
#define READ_BUFFER_MIN (64u * 1024u)
#define NOT_GIVEN UINT64_MAX

static const char cmd_name[] = "echo-client";

/* One batch of frames; owned by the write, freed in its callback. */
typedef struct frames_write {
    uv_write_t req;
    char data[];
} frames_write_t;

typedef struct client {
    uv_loop_t loop;
    uv_tcp_t tcp;
    uv_connect_t connect;
    bool tcp_open;

    uint64_t size, window, count, warmup, total;
    uint64_t sent, received;
    _Atomic uint64_t progress; /* received, for the watchdog */

    uint64_t *send_ns; /* [total]: when each frame went to uv_write */
    uint64_t *rtt_ns;  /* [count]: RTT of each timed message */
    uint64_t start_ns, end_ns;

    char *rbuf; /* received bytes not yet parsed; rlen of rcap used */
    size_t rcap, rlen;

    bool done, failed;
    char error[256];
} client_t;

static void put_be32(char *p, uint32_t v)
{
    unsigned char *u = (unsigned char *)p;
    u[0] = (unsigned char)(v >> 24);
    u[1] = (unsigned char)(v >> 16);
    u[2] = (unsigned char)(v >> 8);
    u[3] = (unsigned char)v;
}

static uint32_t get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

static void put_le64(char *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (char)(unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const char *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return v;
}

static void client_close(client_t *c)
{
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, NULL);
}

static void client_fail(client_t *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void client_fail(client_t *c, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof c->error, fmt, ap);
        va_end(ap);
        c->failed = true;
    }
    client_close(c);
}

/* ---- sending ------------------------------------------------------------- */

static void on_frames_written(uv_write_t *req, int status)
{
    client_t *c = req->handle->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED)
        client_fail(c, "write: %s", uv_strerror(status));
}

/* Sends as many new frames as the window allows, in one write. */
static void top_up(client_t *c)
{
    uint64_t room = c->window - (c->sent - c->received);
    uint64_t left = c->total - c->sent;
    uint64_t n = room < left ? room : left;
    if (n == 0 || c->failed || c->done)
        return;
    size_t frame = FRAME_HEADER + (size_t)c->size;
    frames_write_t *w = malloc(sizeof *w + (size_t)n * frame);
    if (w == NULL) {
        client_fail(c, "out of memory for %llu frames", (unsigned long long)n);
        return;
    }
    char *p = w->data;
    for (uint64_t i = 0; i < n; i++, p += frame) {
        put_be32(p, (uint32_t)c->size);
        put_le64(p + FRAME_HEADER, c->sent + i);
        memset(p + FRAME_HEADER + SEQ_BYTES, FILL_BYTE, (size_t)c->size - SEQ_BYTES);
    }
    uint64_t now = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        c->send_ns[c->sent + i] = now;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)((size_t)n * frame));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_frames_written);
    if (rc < 0) {
        free(w);
        client_fail(c, "write: %s", uv_strerror(rc));
        return;
    }
    c->sent += n;
}

/* ---- receiving ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *c = handle->data;
    /* on_read keeps less than one frame buffered and rcap >= 2 frames. */
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* Checks one echoed payload; false (and the run failed) on a mismatch. */
static bool check_echo(client_t *c, const char *payload)
{
    uint64_t seq = get_le64(payload);
    if (seq != c->received) {
        client_fail(c, "echo %llu carries sequence number %llu", (unsigned long long)c->received,
                    (unsigned long long)seq);
        return false;
    }
    for (size_t i = SEQ_BYTES; i < c->size; i++) {
        if ((unsigned char)payload[i] != FILL_BYTE) {
            client_fail(c, "echo %llu: payload byte %zu is 0x%02x, not 0x%02x",
                        (unsigned long long)seq, i, (unsigned char)payload[i], FILL_BYTE);
            return false;
        }
    }
    return true;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    client_t *c = stream->data;
    if (nread < 0) {
        client_fail(c, "connection %s after %llu of %llu echoes",
                    nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread),
                    (unsigned long long)c->received, (unsigned long long)c->total);
        return;
    }
    if (nread == 0)
        return;
    uint64_t now = bench_now_ns();
    c->rlen += (size_t)nread;
    size_t at = 0;
    size_t frame = FRAME_HEADER + (size_t)c->size;
    while (c->rlen - at >= FRAME_HEADER) {
        uint32_t len = get_be32(c->rbuf + at);
        if (len != c->size) {
            client_fail(c, "echo %llu has length %u, sent %llu", (unsigned long long)c->received,
                        len, (unsigned long long)c->size);
            return;
        }
        if (c->rlen - at < frame)
            break;
        if (c->received >= c->sent) {
            client_fail(c, "echo %llu arrived, only %llu sent", (unsigned long long)c->received,
                        (unsigned long long)c->sent);
            return;
        }
        if (!check_echo(c, c->rbuf + at + FRAME_HEADER))
            return;
        uint64_t seq = c->received++;
        if (seq >= c->warmup)
            c->rtt_ns[seq - c->warmup] = now - c->send_ns[seq];
        if (c->received == c->warmup)
            c->start_ns = now;
        at += frame;
    }
    if (c->received == c->total) {
        if (c->rlen > at) {
            client_fail(c, "%zu bytes after the last echo", c->rlen - at);
            return;
        }
        c->end_ns = now;
        c->done = true;
        atomic_store_explicit(&c->progress, c->received, memory_order_relaxed);
        client_close(c);
        return;
    }
    memmove(c->rbuf, c->rbuf + at, c->rlen - at);
    c->rlen -= at;
    atomic_store_explicit(&c->progress, c->received, memory_order_relaxed);
    top_up(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    client_t *c = req->data;
    if (status < 0) {
        client_fail(c, "connect: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        client_fail(c, "read: %s", uv_strerror(rc));
        return;
    }
    if (c->warmup == 0)
        c->start_ns = bench_now_ns();
    top_up(c);
}

/* ---- figures ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted[0..n), in microseconds. */
static double percentile_us(const uint64_t *sorted, uint64_t n, double p)
{
    if (n == 0)
        return NAN;
    uint64_t rank = (uint64_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e3;
}

/* ---- the subcommand ------------------------------------------------------ */

static const char usage[] =
    "usage: netsys-bench echo-client --port P [--host H] [--workload W] [--count K]\n"
    "                                [--size S] [--window W] [--warmup N] [--server-label L]\n"
    "\n"
    "Load generator for the TCP echo workloads. One connection to H:P (default host\n"
    "127.0.0.1), TCP_NODELAY; messages are a 4-byte big-endian length and S payload\n"
    "bytes (sequence number in bytes 0..7, little endian, then 0xAB), at most W\n"
    "outstanding. Every echo's length, order and content is checked. Timed from the\n"
    "last warm-up echo to the last echo.\n"
    "\n"
    "  w4_tcp_echo_tput (default): metric msgs_per_s; defaults S=64 W=128 K=200000 N=10000\n"
    "  w5_tcp_echo_lat:            metric rtt_p50_us; defaults S=64 W=1   K=20000  N=1000\n";

static int run(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *workload = "w4_tcp_echo_tput";
    const char *label = NULL;
    uint64_t port = NOT_GIVEN, count = NOT_GIVEN, size = NOT_GIVEN, window = NOT_GIVEN,
             warmup = NOT_GIVEN;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"host", BENCH_OPT_STRING, &host, "server IPv4 address (default 127.0.0.1)"},
        {"port", BENCH_OPT_U64, &port, "server port (required)"},
        {"workload", BENCH_OPT_STRING, &workload, "w4_tcp_echo_tput or w5_tcp_echo_lat"},
        {"count", BENCH_OPT_U64, &count, "timed messages (after the warm-up)"},
        {"size", BENCH_OPT_U64, &size, "payload bytes, 8 .. 1048576"},
        {"window", BENCH_OPT_U64, &window, "messages outstanding at most"},
        {"warmup", BENCH_OPT_U64, &warmup, "untimed messages first"},
        {"server-label", BENCH_OPT_STRING, &label, "names the server in the result line"},
        {NULL, BENCH_OPT_U64, NULL, NULL},
    };
    int prc = bench_parse(argc, argv, usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : 2;

    bool tput = strcmp(workload, "w4_tcp_echo_tput") == 0;
    if (!tput && strcmp(workload, "w5_tcp_echo_lat") != 0) {
        bench_err(cmd_name, "unknown --workload '%s' (w4_tcp_echo_tput or w5_tcp_echo_lat)",
                  workload);
        return 2;
    }
    if (size == NOT_GIVEN)
        size = 64;
    if (window == NOT_GIVEN)
        window = tput ? 128 : 1;
    if (count == NOT_GIVEN)
        count = tput ? 200000 : 20000;
    if (warmup == NOT_GIVEN)
        warmup = tput ? 10000 : 1000;
    if (port == NOT_GIVEN || port == 0 || port > 65535) {
        bench_err(cmd_name, "--port 1..65535 is required");
        return 2;
    }
    if (size < SEQ_BYTES || size > MAX_PAYLOAD || window < 1 || window > 1000000 || count < 1 ||
        count > (UINT64_C(1) << 32) || warmup > (UINT64_C(1) << 32)) {
        bench_err(cmd_name, "need 8 <= size <= 1048576, 1 <= window <= 1000000, "
                            "1 <= count <= 2^32, warmup <= 2^32");
        return 2;
    }
    if (window * (FRAME_HEADER + size) > (UINT64_C(1) << 31)) {
        bench_err(cmd_name, "window x frame size over 2 GiB");
        return 2;
    }
    const char *metric = tput ? "msgs_per_s" : "rtt_p50_us";
    const char *unit = tput ? "1/s" : "us";

    /* A server that goes away mid-write must fail the run, not kill it. */
    signal(SIGPIPE, SIG_IGN);

    static client_t c; /* the watchdog reads c.progress until exit */
    c.size = size;
    c.window = window;
    c.count = count;
    c.warmup = warmup;
    c.total = count + warmup;
    c.send_ns = malloc((size_t)c.total * sizeof *c.send_ns);
    c.rtt_ns = malloc((size_t)count * sizeof *c.rtt_ns);
    size_t frame = FRAME_HEADER + (size_t)size;
    c.rcap = 2 * frame > READ_BUFFER_MIN ? 2 * frame : READ_BUFFER_MIN;
    c.rbuf = malloc(c.rcap);
    int rc = 0;
    struct sockaddr_in addr;
    if (c.send_ns == NULL || c.rtt_ns == NULL || c.rbuf == NULL) {
        client_fail(&c, "out of memory");
    } else if ((rc = uv_ip4_addr(host, (int)port, &addr)) < 0) {
        client_fail(&c, "bad host '%s': %s", host, uv_strerror(rc));
    } else {
        /* Touch the sample arrays now, so page faults stay out of the timing. */
        memset(c.send_ns, 0, (size_t)c.total * sizeof *c.send_ns);
        memset(c.rtt_ns, 0, (size_t)count * sizeof *c.rtt_ns);
        bench_watchdog_progress(&c.progress, c.total);
        uv_loop_init(&c.loop);
        uv_tcp_init(&c.loop, &c.tcp);
        c.tcp_open = true;
        c.tcp.data = &c;
        c.connect.data = &c;
        bench_info(&common, cmd_name, "connecting to %s:%llu", host, (unsigned long long)port);
        rc = uv_tcp_connect(&c.connect, &c.tcp, (const struct sockaddr *)&addr, on_connect);
        if (rc < 0)
            client_fail(&c, "connect: %s", uv_strerror(rc));
        uv_run(&c.loop, UV_RUN_DEFAULT);
        uv_loop_close(&c.loop);
        if (!c.failed && !c.done)
            client_fail(&c, "the loop ended after %llu of %llu echoes",
                        (unsigned long long)c.received, (unsigned long long)c.total);
    }

    bench_json_t j;
    if (c.failed) {
        bench_err(cmd_name, "%s", c.error);
        bench_json_begin(&j, workload, metric, NAN, unit);
        bench_json_bool(&j, "ok", false);
        bench_json_str(&j, "error", c.error);
    } else {
        double secs = (double)(c.end_ns - c.start_ns) / 1e9;
        double msgs_per_s = secs > 0 ? (double)count / secs : NAN;
        qsort(c.rtt_ns, (size_t)count, sizeof *c.rtt_ns, cmp_u64);
        double p50 = percentile_us(c.rtt_ns, count, 0.50);
        double p99 = percentile_us(c.rtt_ns, count, 0.99);
        double p999 = percentile_us(c.rtt_ns, count, 0.999);
        bench_json_begin(&j, workload, metric, tput ? msgs_per_s : p50, unit);
        bench_json_bool(&j, "ok", true);
        bench_json_f64(&j, "msgs_per_s", msgs_per_s);
        /* Payload bytes echoed per second, one direction, in 10^6 bytes. */
        bench_json_f64(&j, "mb_per_s", msgs_per_s * (double)size / 1e6);
        bench_json_f64(&j, "p50_us", p50);
        bench_json_f64(&j, "p99_us", p99);
        bench_json_f64(&j, "p999_us", p999);
        bench_json_f64(&j, "max_us", (double)c.rtt_ns[count - 1] / 1e3);
        bench_json_f64(&j, "elapsed_s", secs);
    }
    bench_json_u64(&j, "count", count);
    bench_json_u64(&j, "size", size);
    bench_json_u64(&j, "window", window);
    bench_json_u64(&j, "warmup", warmup);
    bench_json_str(&j, "host", host);
    bench_json_u64(&j, "port", port);
    if (label != NULL)
        bench_json_str(&j, "server", label);
    bench_json_print(&j);
    free(c.send_ns);
    free(c.rtt_ns);
    free(c.rbuf);
    return c.failed ? 1 : 0;
}

const bench_cmd_t bench_cmd_echo_client = {
    .name = "echo-client",
    .summary = "TCP echo load generator for W4 (throughput) and W5 (latency)",
    .run = run,
};

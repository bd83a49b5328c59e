/* examples/resilient_client.c — a client that rides out a flaky link with
 * nsys_tcp_client_start and callbacks: it sends a numbered message every
 * `--interval` ms, checks every echo, prints the client's events (connected,
 * disconnected, retrying in N ms, gave up, send failed) and ends with the
 * client's own accounting: sent = written + failed (+ what still waits).
 *
 * With --port it talks to an echo server that is already running, e.g.
 *
 *   netsys run examples/echo_server.json      # or build/.../netsys-echo-server
 *   netsys-resilient-client --port 7000
 *
 * and you can stop and restart that server to watch the client reconnect
 * with backoff, its outbox keeping what you send meanwhile. Without --port
 * it brings its own bad network: an echo listener and, in front of it, a
 * fault-injecting proxy (nsys_proxy_start) that adds latency and resets the
 * link every second; both on free loopback ports.
 *
 * It uses only the public API. Exit status 0 when echoes came back and
 * none went backwards or came back mangled (those a dead link took are
 * counted, not errors), 1 otherwise.
 *
 *   netsys-resilient-client [--host H] [--port P] [--interval MS] [--duration S]
 */
#include <netsys/netsys.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_SIZE 16 /* 8 bytes of sequence number, then 8 of padding */

/* Shared between the main thread (sends) and the client's callbacks (which
 * run on its scheduler thread, one at a time). */
typedef struct app {
    atomic_uint_fast64_t next_expected; /* the sequence number the next echo should carry */
    atomic_uint_fast64_t echoed;
    atomic_uint_fast64_t skipped; /* numbers whose echo never came (a link died with them) */
    atomic_uint_fast64_t bad;     /* echoes that went backwards or were mangled */
    atomic_uint_fast64_t connects;
} app_t;

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void on_message(nsys_runtime_t *rt, nsys_ref_t client, const uint8_t *data, size_t len,
                       void *ud)
{
    app_t *app = ud;
    (void)rt;
    (void)client;
    uint64_t want = atomic_load(&app->next_expected);
    uint64_t seq = len == MSG_SIZE ? get_u64le(data) : 0;
    if (seq < want) {
        atomic_fetch_add(&app->bad, 1);
        return;
    }
    /* TCP keeps order on one link; a gap means the messages in it were on
     * a link that died after the kernel took them (the client counted them
     * as written; only the application can know the peer never saw them). */
    atomic_fetch_add(&app->skipped, seq - want);
    atomic_fetch_add(&app->echoed, 1);
    atomic_store(&app->next_expected, seq + 1);
}

static void on_event(nsys_runtime_t *rt, const nsys_client_event_t *ev, void *ud)
{
    app_t *app = ud;
    (void)rt;
    switch (ev->kind) {
    case NSYS_CLIENT_EV_CONNECTED:
        atomic_fetch_add(&app->connects, 1);
        printf("connected to %s\n", ev->peer);
        break;
    case NSYS_CLIENT_EV_DISCONNECTED:
        printf("disconnected: %s\n", ev->message);
        break;
    case NSYS_CLIENT_EV_RETRYING:
        printf("retrying in %" PRIu64 " ms (%s)\n", ev->delay_ms, ev->message);
        break;
    case NSYS_CLIENT_EV_GAVE_UP:
        printf("gave up: %s\n", ev->message);
        break;
    case NSYS_CLIENT_EV_SEND_FAILED:
        printf("message %" PRIu64 " failed: %s\n", ev->msg_id, ev->message);
        break;
    }
    fflush(stdout);
}

/* ---- the bad network of the self-contained mode -------------------------- */

/* An echo listener and a proxy in front of it; *port is the proxy's. */
static int start_flaky_network(nsys_runtime_t *rt, uint16_t *port)
{
    nsys_listener_opts_t lo = {.host = "127.0.0.1",
                               .port = 0,
                               .transport = NSYS_TRANSPORT_OPTS_DEFAULTS,
                               .handler = &nsys_handler_echo,
                               .owner = NSYS_REF_NONE,
                               .observer = NSYS_REF_NONE};
    nsys_ref_t echo;
    nsys_listener_info_t info;
    int rc = nsys_listener_start(rt, &lo, &echo, &info);
    if (rc != 0) {
        fprintf(stderr, "echo listener: %s\n", nsys_net_last_error());
        return rc;
    }
    nsys_proxy_opts_t po = NSYS_PROXY_OPTS_DEFAULTS;
    po.upstream_host = "127.0.0.1";
    po.upstream_port = info.port;
    po.faults.latency_ms = 10;
    po.faults.jitter_ms = 5;
    po.faults.reset_every_ms = 1000;
    nsys_ref_t proxy;
    nsys_proxy_stats_t ps;
    rc = nsys_proxy_start(rt, &po, &proxy, &ps);
    if (rc != 0) {
        fprintf(stderr, "proxy: %s\n", nsys_net_last_error());
        return rc;
    }
    printf("echo server on %s behind a proxy on %s (10+-5 ms latency, reset every 1 s)\n",
           info.address, ps.address);
    *port = ps.port;
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *to, const char *argv0)
{
    fprintf(to,
            "usage: %s [--host H] [--port P] [--interval MS] [--duration S]\n"
            "  --host H        echo server to talk to (default 127.0.0.1)\n"
            "  --port P        its port; without it, start an echo server behind a flaky proxy\n"
            "  --interval MS   one message every MS ms (default 20)\n"
            "  --duration S    stop after S seconds (default 0: at Ctrl-C)\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    uint64_t port = 0, interval = 20, duration = 0;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(opt, "--host") == 0 && arg != NULL) {
            host = arg;
        } else if (!((strcmp(opt, "--port") == 0 && parse_u64(arg, 1, 65535, &port) == 0) ||
                     (strcmp(opt, "--interval") == 0 && parse_u64(arg, 1, 60000, &interval) == 0) ||
                     (strcmp(opt, "--duration") == 0 && parse_u64(arg, 1, 86400, &duration) == 0))) {
            fprintf(stderr, "%s: bad or incomplete option '%s'\n", argv[0], opt);
            usage(stderr, argv[0]);
            return 2;
        }
        i++;
    }

    /* The events are printed below; the library's own info lines (every
     * reconnect again) only with NSYS_LOG=info. */
    nsys_log_level_t level = NSYS_LOG_WARN;
    const char *env = getenv("NSYS_LOG");
    if (env == NULL || nsys_log_level_parse(env, &level) != 0)
        level = NSYS_LOG_WARN;
    nsys_log_set_level(level);

    nsys_runtime_t *rt = NULL;
    int rc = nsys_runtime_new(NULL, &rt);
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_new: %s\n", nsys_strerror(rc));
        return 1;
    }
    uint16_t target = (uint16_t)port;
    if (port == 0 && start_flaky_network(rt, &target) != 0) {
        nsys_runtime_free(rt);
        return 1;
    }

    app_t app;
    atomic_init(&app.next_expected, 1);
    atomic_init(&app.echoed, 0);
    atomic_init(&app.skipped, 0);
    atomic_init(&app.bad, 0);
    atomic_init(&app.connects, 0);

    nsys_client_opts_t co = NSYS_CLIENT_OPTS_DEFAULTS;
    co.name = "example";
    co.host = host;
    co.port = target;
    co.connect_timeout_ms = 2000;
    co.backoff.initial_ms = 100; /* quicker than gRPC's 1 s, for a demo */
    co.backoff.max_ms = 5000;
    co.heartbeat_ms = 1000; /* a frozen peer is noticed within 2 s */
    co.on_message = on_message;
    co.on_event = on_event;
    co.user_data = &app;
    nsys_ref_t client;
    rc = nsys_tcp_client_start(rt, &co, &client);
    if (rc != 0) {
        fprintf(stderr, "nsys_tcp_client_start: %s\n", nsys_strerror(rc));
        nsys_runtime_free(rt);
        return 1;
    }
    printf("client of %s:%u: one message every %" PRIu64 " ms; Ctrl-C stops it\n", host,
           (unsigned)target, interval);
    fflush(stdout);

    /* The main thread sends; nsys_net_send never blocks: while the link is
     * down messages wait in the client's outbox (1024 messages / 4 MiB by
     * default; past that they fail with a SEND_FAILED event). */
    uint64_t seq = 1, start = uv_hrtime() / 1000000u;
    for (;;) {
        uint8_t msg[MSG_SIZE] = {0};
        for (int i = 0; i < 8; i++)
            msg[i] = (uint8_t)(seq >> (8 * i));
        if (nsys_net_send(rt, client, msg, sizeof msg) != 0)
            break; /* the client is gone (it gave up) */
        seq++;
        nsys_wake_t why = NSYS_WAKE_TIMEOUT;
        rc = nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, interval, &why, NULL);
        if (rc != 0 || why == NSYS_WAKE_SIGNAL)
            break;
        if (duration > 0 && uv_hrtime() / 1000000u - start >= duration * 1000u)
            break;
    }

    nsys_client_stats_t st;
    if (nsys_client_stats(rt, client, &st) == 0)
        printf("client: sent %" PRIu64 " = written %" PRIu64 " + failed %" PRIu64
               " + not written yet %" PRIu64 "; %" PRIu64 " failed attempts or lost links\n",
               st.sent, st.written, st.failed, st.sent - st.written - st.failed, st.failures);
    uint64_t bad = atomic_load(&app.bad);
    uint64_t connects = atomic_load(&app.connects);
    printf("app: %" PRIu64 " echoed, %" PRIu64 " gone with a dead link, %" PRIu64
           " bad; %" PRIu64 " reconnects\n",
           atomic_load(&app.echoed), atomic_load(&app.skipped), bad,
           connects > 0 ? connects - 1 : 0);
    rc = nsys_runtime_stop(rt);
    nsys_runtime_free(rt);
    return rc == 0 && bad == 0 && atomic_load(&app.echoed) > 0 ? 0 : 1;
}

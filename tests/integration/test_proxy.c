/* tests/integration/test_proxy.c — the fault-injecting proxy as
 * netsys/proxy.h states it, with real sockets on 127.0.0.1: a client
 * (common/net.h) talks length-prefixed frames to an echo listener (the
 * built-in echo handler, `length` codec) through the proxy, which forwards
 * raw bytes, so every frame must come back intact.
 *
 * Faults are checked by what a client sees: a round trip that takes at least
 * the added latency, a transfer no faster than the bandwidth, a connection
 * that is reset after a time or a byte count, silence on an open socket, a
 * refused connection, a reset when the upstream is down. Timings are only
 * ever asserted as lower bounds (an upper bound only as a generous "it did
 * happen"); everything else waits for its event with a bound.
 */
#include "common/net.h"
#include "common/probe.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <netsys/proxy.h>

static nsys_runtime_t *rt;
static nsys_ref_t upstream;
static uint16_t upstream_port;

static void setup(void)
{
    nsys_log_set_level(NSYS_LOG_ERROR);
    cr_assert_eq(t_runtime(2, &rt), 0);
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.name = "upstream";
    nsys_listener_info_t info;
    int rc = nsys_listener_start(rt, &o, &upstream, &info);
    cr_assert_eq(rc, 0, "upstream echo: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    upstream_port = info.port;
}

static void teardown(void)
{
    nsys_runtime_free(rt);
    rt = NULL;
}

TestSuite(proxy, .init = setup, .fini = teardown, .timeout = 180);

/* Frees the runtime (with every proxy, connection and timer) and fails the
 * test if anything leaked. */
static void finish(void)
{
    T_RUNTIME_FREE(rt);
    rt = NULL;
}

static nsys_proxy_opts_t proxy_opts(const nsys_proxy_faults_t *f)
{
    nsys_proxy_opts_t o = NSYS_PROXY_OPTS_DEFAULTS;
    o.name = "test.proxy";
    o.upstream_host = "127.0.0.1";
    o.upstream_port = upstream_port;
    if (f != NULL)
        o.faults = *f;
    return o;
}

static nsys_ref_t start_with(const nsys_proxy_opts_t *o, uint16_t *port)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    nsys_proxy_stats_t st;
    int rc = nsys_proxy_start(rt, o, &ref, &st);
    cr_assert_eq(rc, 0, "nsys_proxy_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    cr_assert_neq(ref, NSYS_REF_NONE);
    cr_assert_neq(st.port, 0, "no bound port reported");
    *port = st.port;
    return ref;
}

static nsys_ref_t start_proxy(const nsys_proxy_faults_t *f, uint16_t *port)
{
    nsys_proxy_opts_t o = proxy_opts(f);
    return start_with(&o, port);
}

static int connect_to(uint16_t port)
{
    int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
    cr_assert_geq(fd, 0, "connect to 127.0.0.1:%u: %s", port, strerror(-fd));
    return fd;
}

static nsys_proxy_stats_t stats_of(nsys_ref_t proxy)
{
    nsys_proxy_stats_t st;
    T_ASSERT_STATS(nsys_proxy_stats, rt, proxy, st);
    return st;
}

/* Polls the proxy's counters until `pred(st)` holds (bounded). */
#define WAIT_STATS(proxy, st, pred)                                                                \
    do {                                                                                           \
        T_WAIT(((st) = stats_of(proxy), (pred)), T_WAIT_MS);                                       \
        cr_assert(pred, "the proxy's counters never satisfied: %s", #pred);                        \
    } while (0)

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void expect_echo(int fd, const void *payload, uint32_t len)
{
    int rc = t_echo_once(fd, payload, len, T_WAIT_MS);
    cr_assert_eq(rc, 0, "echo of %u bytes through the proxy: %d (%s)", len, rc,
                 rc < 0 ? strerror(-rc) : "closed");
}

/* A port on 127.0.0.1 where nothing listens (bound, never listened, closed). */
static uint16_t dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    uint16_t port = t_local_port(fd);
    close(fd);
    return port;
}

/* ---- plain forwarding ----------------------------------------------------------- */

Test(proxy, forwards_one_client_byte_exact_and_counts_it)
{
    uint16_t port;
    nsys_ref_t px = start_proxy(NULL, &port);
    int fd = connect_to(port);
    static const uint32_t sizes[] = {0, 1, 5, 100, 1500, 65536, 300000};
    uint8_t *buf = malloc(300000);
    cr_assert_not_null(buf);
    uint64_t wire = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill_pattern(buf, sizes[i], (uint32_t)i);
        expect_echo(fd, buf, sizes[i]);
        wire += sizes[i] + 4u;
    }
    free(buf);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.bytes_up == wire && st.bytes_down == wire);
    cr_expect_eq(st.accepted, 1);
    cr_expect_eq(st.active, 1);
    cr_expect_eq(st.upstream_connects, 1);
    cr_expect_eq(st.upstream_failures + st.resets + st.refused + st.bytes_dropped, 0);
    close(fd);
    WAIT_STATS(px, st, st.active == 0);
    finish();
}

Test(proxy, forwards_many_clients_at_once_each_its_own_stream)
{
    enum { CLIENTS = 16, ROUNDS = 20, LEN = 3000 };
    uint16_t port;
    nsys_ref_t px = start_proxy(NULL, &port);
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = connect_to(port);
    uint8_t out[LEN], back[LEN];
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < CLIENTS; i++) { /* everyone sends, then everyone reads */
            fill_pattern(out, LEN, (uint32_t)(r * CLIENTS + i));
            cr_assert_eq(t_send_frame(fds[i], out, LEN), 0);
        }
        for (int i = 0; i < CLIENTS; i++) {
            size_t got = 0;
            int rc = t_read_frame(fds[i], back, sizeof back, &got, T_WAIT_MS);
            cr_assert_eq(rc, 0, "client %d round %d: %d", i, r, rc);
            fill_pattern(out, LEN, (uint32_t)(r * CLIENTS + i));
            cr_assert_eq(got, LEN);
            cr_assert_arr_eq(back, out, LEN, "client %d got another client's bytes", i);
        }
    }
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.accepted == CLIENTS && st.upstream_connects == CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    WAIT_STATS(px, st, st.active == 0);
    finish();
}

/* A writer thread streams frames while the test thread reads the echoes:
 * megabytes through both directions with back-pressure in play. */
typedef struct streamer {
    int fd;
    int frames;
    uint32_t len;
    int rc;
} streamer_t;

static void *stream_frames(void *arg)
{
    streamer_t *s = arg;
    uint8_t *buf = malloc(s->len);
    s->rc = buf != NULL ? 0 : -ENOMEM;
    for (int i = 0; i < s->frames && s->rc == 0; i++) {
        fill_pattern(buf, s->len, (uint32_t)i + 1000u);
        s->rc = t_send_frame(s->fd, buf, s->len);
    }
    free(buf);
    return NULL;
}

/* Reads every frame the writer `th` streams on s->fd, checks each against
 * its pattern, joins the writer, and fails the test if either side did. */
static void receive_stream(streamer_t *s, pthread_t th)
{
    uint8_t *want = malloc(s->len), *got = malloc(s->len);
    cr_assert(want != NULL && got != NULL);
    int rc = 0;
    for (int i = 0; i < s->frames && rc == 0; i++) {
        size_t n = 0;
        rc = t_read_frame(s->fd, got, s->len, &n, T_WAIT_MS);
        if (rc == 0) {
            fill_pattern(want, s->len, (uint32_t)i + 1000u);
            rc = n == s->len && memcmp(want, got, s->len) == 0 ? 0 : -EBADMSG;
        }
        if (rc != 0)
            cr_log_error("frame %d: %d", i, rc);
    }
    pthread_join(th, NULL);
    free(want);
    free(got);
    cr_assert_eq(s->rc, 0, "writer: %d", s->rc);
    cr_assert_eq(rc, 0);
}

Test(proxy, large_transfers_arrive_intact)
{
    uint16_t port;
    nsys_proxy_opts_t o = proxy_opts(NULL);
    o.max_buffered = 256 * 1024; /* small, so the pause and resume paths run */
    nsys_ref_t px = start_with(&o, &port);
    int fd = connect_to(port);
    streamer_t s = {.fd = fd, .frames = 32, .len = 256 * 1024};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, stream_frames, &s), 0);
    receive_stream(&s, th);
    nsys_proxy_stats_t st;
    uint64_t wire = (uint64_t)s.frames * (s.len + 4u);
    WAIT_STATS(px, st, st.bytes_up == wire && st.bytes_down == wire);
    close(fd);
    finish();
}

/* A client that stops reading fills the proxy's buffer for it: the proxy
 * stops reading the upstream (which in turn stops reading the proxy, which
 * stops reading the client), and when the client reads again everything
 * flows and arrives intact. */
Test(proxy, back_pressure_holds_a_client_that_stops_reading_and_loses_nothing)
{
    uint16_t port;
    nsys_proxy_opts_t o = proxy_opts(NULL);
    o.max_buffered = 128 * 1024;
    nsys_ref_t px = start_with(&o, &port);
    t_connect_opts_t co = {.rcvbuf = 4096};
    int fd = t_tcp_connect_ex("127.0.0.1", port, T_WAIT_MS, &co);
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    streamer_t s = {.fd = fd, .frames = 128, .len = 64 * 1024}; /* 8 MiB */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, stream_frames, &s), 0);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.pauses >= 1); /* nobody reads: the proxy pushed back */
    receive_stream(&s, th);
    close(fd);
    finish();
}

/* ---- latency and bandwidth ----------------------------------------------------------- */

Test(proxy, latency_adds_at_least_its_delay_each_way)
{
    nsys_proxy_faults_t f = {.latency_ms = 100};
    uint16_t port;
    start_proxy(&f, &port);
    int fd = connect_to(port);
    const char msg[] = "slow";
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = t_now_ns();
        expect_echo(fd, msg, sizeof msg);
        uint64_t ms = (t_now_ns() - t0) / 1000000u;
        cr_expect_geq(ms, 200, "round trip %d took %llu ms, under 2 x 100 ms", i,
                      (unsigned long long)ms);
        cr_expect_lt(ms, 200 + 10000, "round trip %d took %llu ms", i, (unsigned long long)ms);
    }
    close(fd);
    finish();
}

Test(proxy, jitter_never_reorders_a_stream)
{
    enum { FRAMES = 60 };
    nsys_proxy_faults_t f = {.latency_ms = 20, .jitter_ms = 20};
    uint16_t port;
    start_proxy(&f, &port);
    int fd = connect_to(port);
    cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)), 0);
    uint32_t want[FRAMES];
    for (uint32_t i = 0; i < FRAMES; i++) { /* one segment each, so many chunks */
        want[i] = i * 7919u;
        cr_assert_eq(t_send_frame(fd, &want[i], sizeof want[i]), 0);
        struct timespec ts = {0, 1000000}; /* spread the chunks over the jitter window */
        nanosleep(&ts, NULL);
    }
    for (uint32_t i = 0; i < FRAMES; i++) {
        uint32_t got = 0;
        size_t n = 0;
        int rc = t_read_frame(fd, &got, sizeof got, &n, T_WAIT_MS);
        cr_assert_eq(rc, 0, "frame %u: %d", i, rc);
        cr_assert_eq(n, sizeof got);
        cr_assert_eq(got, want[i], "frame %u came back as %u: reordered", i, got);
    }
    close(fd);
    finish();
}

Test(proxy, bandwidth_limit_slows_a_transfer_down)
{
    enum { LEN = 256 * 1024 };
    nsys_proxy_faults_t f = {.bandwidth = 1024 * 1024}; /* 1 MiB/s each way */
    uint16_t port;
    nsys_ref_t px = start_proxy(&f, &port);
    int fd = connect_to(port);
    uint8_t *buf = malloc(LEN);
    cr_assert_not_null(buf);
    fill_pattern(buf, LEN, 42);
    uint64_t t0 = t_now_ns();
    expect_echo(fd, buf, LEN); /* 256 KiB up and 256 KiB back: ~500 ms */
    uint64_t ms = (t_now_ns() - t0) / 1000000u;
    free(buf);
    cr_expect_geq(ms, 400, "512 KiB through 1 MiB/s took only %llu ms", (unsigned long long)ms);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.bytes_down == LEN + 4u);
    close(fd);
    finish();
}

/* ---- resets -------------------------------------------------------------------------- */

Test(proxy, reset_after_bytes_closes_the_client_at_that_count)
{
    nsys_proxy_faults_t f = {.reset_after_bytes = 1000};
    uint16_t port;
    nsys_ref_t px = start_proxy(&f, &port);
    int fd = connect_to(port);
    uint8_t buf[600];
    fill_pattern(buf, sizeof buf, 7);
    /* 604 bytes up, then the echo is cut after 396 of its 604 bytes. */
    int rc = t_echo_once(fd, buf, sizeof buf, T_WAIT_MS);
    cr_assert(t_closed_by_peer(rc), "expected a close or reset, got %d", rc);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.resets == 1 && st.active == 0);
    cr_expect_eq(st.bytes_up, 604);
    cr_expect_eq(st.bytes_up + st.bytes_down, 1000, "forwarded %llu bytes",
                 (unsigned long long)(st.bytes_up + st.bytes_down));
    close(fd);
    finish();
}

Test(proxy, reset_every_closes_each_connection_after_its_time)
{
    nsys_proxy_faults_t f = {.reset_every_ms = 400};
    uint16_t port;
    nsys_ref_t px = start_proxy(&f, &port);
    uint64_t t0 = t_now_ns();
    int fd = connect_to(port);
    expect_echo(fd, "alive", 5); /* it works until the reset */
    int rc = t_wait_closed(fd, T_WAIT_MS);
    uint64_t ms = (t_now_ns() - t0) / 1000000u;
    cr_assert(t_closed_by_peer(rc), "expected a close or reset, got %d", rc);
    cr_expect_geq(ms, 400, "reset after %llu ms", (unsigned long long)ms);
    close(fd);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.resets == 1 && st.active == 0);
    finish();
}

/* An idle connection is reset too once reset_every is switched on. */
Test(proxy, reset_every_set_at_run_time_reaches_idle_connections)
{
    uint16_t port;
    nsys_ref_t px = start_proxy(NULL, &port);
    int fd = connect_to(port);
    expect_echo(fd, "idle", 4);
    nsys_proxy_faults_t f = {.reset_every_ms = 200};
    cr_assert_eq(nsys_proxy_set_faults(rt, px, &f), 0);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(t_closed_by_peer(rc), "expected a close or reset, got %d", rc);
    close(fd);
    finish();
}

/* ---- blackhole --------------------------------------------------------------------------- */

Test(proxy, blackhole_is_silent_on_an_open_socket_until_cleared)
{
    uint16_t port;
    nsys_ref_t px = start_proxy(NULL, &port);
    int fd = connect_to(port);
    expect_echo(fd, "before", 6);

    nsys_proxy_faults_t hole = {.blackhole = true};
    cr_assert_eq(nsys_proxy_set_faults(rt, px, &hole), 0);
    cr_assert_eq(t_send_frame(fd, "lost", 4), 0);
    uint8_t back[16];
    size_t n = 0;
    int rc = t_read_frame(fd, back, sizeof back, &n, 300);
    cr_assert_eq(rc, -ETIMEDOUT, "expected silence on an open socket, got %d", rc);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.bytes_dropped == 8 && st.active == 1);
    cr_expect(st.faults.blackhole);

    nsys_proxy_faults_t none = {0};
    cr_assert_eq(nsys_proxy_set_faults(rt, px, &none), 0);
    expect_echo(fd, "after", 5); /* "lost" was dropped whole: the stream is intact */
    close(fd);
    finish();
}

/* ---- refuse -------------------------------------------------------------------------------- */

/* A new connection that echoes: 0; closed at once by the proxy: 1 (the
 * reset may even beat the end of the client's connect). */
static int try_connection(uint16_t port)
{
    int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
    if (fd == -ECONNRESET)
        return 1;
    cr_assert_geq(fd, 0, "connect to 127.0.0.1:%u: %s", port, strerror(-fd));
    int rc = t_echo_once(fd, "hello", 5, T_WAIT_MS);
    close(fd);
    cr_assert(rc == 0 || t_closed_by_peer(rc), "unexpected result %d", rc);
    return rc == 0 ? 0 : 1;
}

Test(proxy, refuse_for_closes_new_connections_then_accepts_again)
{
    uint16_t port;
    nsys_ref_t px = start_proxy(NULL, &port);
    int old = connect_to(port);
    expect_echo(old, "old", 3);

    uint64_t t0 = t_now_ns();
    nsys_proxy_faults_t f = {.refuse_for_ms = 500};
    cr_assert_eq(nsys_proxy_set_faults(rt, px, &f), 0);
    cr_assert_eq(try_connection(port), 1, "a new connection was not refused");
    expect_echo(old, "old", 3); /* open connections are not touched */

    /* Wait for the period to end: retry, 20 ms apart, within the bound. */
    int refused = 1;
    uint64_t deadline = t_now_ms() + T_WAIT_MS;
    while (refused && t_now_ms() < deadline) {
        refused = try_connection(port);
        if (refused) {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    uint64_t ms = (t_now_ns() - t0) / 1000000u;
    cr_assert_eq(refused, 0, "still refusing after %llu ms", (unsigned long long)ms);
    cr_expect_geq(ms, 500, "accepting again after only %llu ms", (unsigned long long)ms);
    nsys_proxy_stats_t st = stats_of(px);
    cr_expect_geq(st.refused, 1);
    cr_expect(!st.refusing);
    close(old);
    finish();
}

/* ---- upstream failures ------------------------------------------------------------------ */

Test(proxy, upstream_down_closes_the_client_promptly)
{
    nsys_proxy_opts_t o = proxy_opts(NULL);
    o.upstream_port = dead_port();
    uint16_t port;
    nsys_ref_t px = start_with(&o, &port);
    uint64_t t0 = t_now_ns();
    int fd = connect_to(port);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    uint64_t ms = (t_now_ns() - t0) / 1000000u;
    cr_assert(t_closed_by_peer(rc), "expected a close or reset, got %d", rc);
    cr_expect_lt(ms, 5000, "closed only after %llu ms", (unsigned long long)ms);
    close(fd);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.upstream_failures == 1 && st.active == 0);
    cr_expect_eq(st.upstream_connects, 0);
    finish();
}

Test(proxy, upstream_close_closes_the_client_after_delivering_its_bytes)
{
    uint16_t port;
    nsys_proxy_faults_t f = {.latency_ms = 50};
    nsys_ref_t px = start_proxy(&f, &port);
    int fd = connect_to(port);
    expect_echo(fd, "bye", 3);
    cr_assert_eq(t_send_frame(fd, "last", 4), 0);
    uint8_t back[8];
    size_t n = 0;
    cr_assert_eq(t_read_frame(fd, back, sizeof back, &n, T_WAIT_MS), 0);
    /* Stopping the upstream closes its sessions: the proxy then closes ours. */
    cr_assert_eq(nsys_listener_stop(rt, upstream), 0);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(t_closed_by_peer(rc), "expected a close, got %d", rc);
    close(fd);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.active == 0);
    finish();
}

/* ---- control ------------------------------------------------------------------------------ */

Test(proxy, schedule_applies_its_steps_in_time)
{
    nsys_proxy_step_t steps[] = {
        {.at_ms = 0, .faults = {.latency_ms = 1}},
        {.at_ms = 300, .faults = {.blackhole = true}},
    };
    nsys_proxy_opts_t o = proxy_opts(NULL);
    o.schedule = steps;
    o.schedule_len = 2;
    uint16_t port;
    uint64_t t0 = t_now_ns();
    nsys_ref_t px = start_with(&o, &port);
    nsys_proxy_stats_t st = stats_of(px);
    if (st.schedule_steps == 1) /* unless this thread was slow */
        cr_expect_eq(st.faults.latency_ms, 1);
    WAIT_STATS(px, st, st.schedule_steps == 2);
    cr_expect_geq((t_now_ns() - t0) / 1000000u, 300);
    cr_expect(st.faults.blackhole);

    /* set_faults ends the schedule. */
    nsys_proxy_faults_t none = {0};
    cr_assert_eq(nsys_proxy_set_faults(rt, px, &none), 0);
    int fd = connect_to(port);
    expect_echo(fd, "free", 4);
    close(fd);
    finish();
}

Test(proxy, repeating_schedule_starts_over)
{
    nsys_proxy_step_t steps[] = {
        {.at_ms = 0, .faults = {0}},
        {.at_ms = 50, .faults = {.latency_ms = 5}},
    };
    nsys_proxy_opts_t o = proxy_opts(NULL);
    o.schedule = steps;
    o.schedule_len = 2;
    o.repeat_ms = 100;
    uint16_t port;
    nsys_ref_t px = start_with(&o, &port);
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.schedule_steps >= 6); /* three cycles */
    finish();
}

Test(proxy, bad_options_and_faults_are_refused_with_a_reason)
{
    nsys_proxy_opts_t o = proxy_opts(NULL);
    o.upstream_host = NULL;
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_expect_eq(nsys_proxy_start(rt, &o, &ref, NULL), NSYS_EINVAL);
    cr_expect(strstr(nsys_net_last_error(), "upstream") != NULL, "%s", nsys_net_last_error());

    o = proxy_opts(NULL);
    o.faults.latency_ms = NSYS_PROXY_DELAY_MAX_MS + 1;
    cr_expect_eq(nsys_proxy_start(rt, &o, &ref, NULL), NSYS_EINVAL);

    nsys_proxy_step_t steps[] = {{.at_ms = 100}, {.at_ms = 50}};
    o = proxy_opts(NULL);
    o.schedule = steps;
    o.schedule_len = 2;
    cr_expect_eq(nsys_proxy_start(rt, &o, &ref, NULL), NSYS_EINVAL);

    /* The port is taken: the bind error, and nothing runs. */
    o = proxy_opts(NULL);
    o.listen_port = upstream_port;
    cr_expect_eq(nsys_proxy_start(rt, &o, &ref, NULL), UV_EADDRINUSE);
    cr_expect(strstr(nsys_net_last_error(), "address already in use") != NULL, "%s",
              nsys_net_last_error());

    uint16_t port;
    nsys_ref_t px = start_proxy(NULL, &port);
    nsys_proxy_faults_t bad = {.bandwidth = NSYS_PROXY_BANDWIDTH_MAX + 1};
    cr_expect_eq(nsys_proxy_set_faults(rt, px, &bad), NSYS_EINVAL);
    cr_expect_eq(nsys_proxy_set_faults(rt, px, NULL), NSYS_EINVAL);
    finish();
}

Test(proxy, stop_closes_every_connection_and_frees_everything)
{
    nsys_proxy_faults_t f = {.latency_ms = 2000}; /* chunks are held when it stops */
    uint16_t port;
    nsys_ref_t px = start_proxy(&f, &port);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_to(port);
        cr_assert_eq(t_send_frame(fds[i], "held", 4), 0);
    }
    nsys_proxy_stats_t st;
    WAIT_STATS(px, st, st.active == 4 && st.upstream_connects == 4);
    cr_assert_eq(nsys_proxy_stop(rt, px), 0);
    for (int i = 0; i < 4; i++) {
        int rc = t_wait_closed(fds[i], T_WAIT_MS);
        cr_expect(t_closed_by_peer(rc), "client %d: %d", i, rc);
        close(fds[i]);
    }
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, px), "the proxy is still alive");
    cr_expect_eq(nsys_proxy_stats(rt, px, &st), NSYS_ENOACTOR);
    nsys_listener_info_t li;
    T_ASSERT_EVENTUALLY(nsys_listener_info(rt, upstream, &li) == 0 && li.sessions == 0,
                        "the upstream still has sessions");
    finish();
}

/* ---- config ---------------------------------------------------------------------------------- */

Test(proxy, starts_from_a_config_document)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"supervisor\": {\"children\": [{\"id\": \"flaky\", \"behaviour\": \"proxy\", "
             "\"args\": {\"port\": 0, \"upstream_port\": %u, "
             "\"faults\": {\"latency\": \"30ms\"}}}]}}",
             (unsigned)upstream_port);
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    int rc = nsys_config_load_string(doc, strlen(doc), "test", &cfg, &d);
    if (rc != 0)
        nsys_config_diag_print(d, "test", stderr);
    cr_assert_eq(rc, 0);
    nsys_ref_t root;
    char err[256] = "";
    rc = nsys_supervisor_start(rt, nsys_config_root(cfg), &root, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    nsys_child_info_t *kids = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_supervisor_which_children(rt, root, &kids, &n), 0);
    cr_assert_eq(n, 1);
    nsys_ref_t px = kids[0].ref;
    nsys_free(kids);
    nsys_proxy_stats_t st = stats_of(px);
    cr_assert_neq(st.port, 0);
    cr_expect_eq(st.faults.latency_ms, 30);
    int fd = connect_to(st.port);
    uint64_t t0 = t_now_ns();
    expect_echo(fd, "configured", 10);
    cr_expect_geq((t_now_ns() - t0) / 1000000u, 60);
    close(fd);
    nsys_config_free(cfg);
    finish();
}

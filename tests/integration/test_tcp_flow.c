/* tests/integration/test_tcp_flow.c — how sessions pace and end
 * connections: a peer that never reads makes the server stop reading
 * (write-side back-pressure), so the server's memory stays bounded however
 * much the peer pushes; and the idle timeout closes a silent connection
 * (not too early, not too late) while a chatty one stays open.
 *
 * The server runs in this process, so "the server's memory" is this
 * process's resident set; the client writes from a static buffer and
 * allocates nothing while it pushes.
 */
#include "common/net.h"
#include "common/probe.h"
#include "common/tcp_fixture.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

static void setup(void)
{
    t_tcp_setup(NSYS_LOG_WARN, true);
}

TestSuite(tcp_flow, .init = setup, .fini = t_tcp_teardown, .timeout = 120);

/* ---- a peer that never reads -------------------------------------------------- */

#define BIG_FRAME (64u * 1024u)
#define PUSH_LIMIT (256ull << 20)
#define STALL_MS 2000u /* no progress for this long: the server stopped reading */

static uint8_t frame_buf[BIG_FRAME + 4];

Test(tcp_flow, a_peer_that_never_reads_makes_the_server_stop_reading_and_memory_stays_bounded)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.transport.max_payload = BIG_FRAME;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s", nsys_net_last_error());

    memset(frame_buf + 4, 'x', BIG_FRAME);
    t_put_u32be(frame_buf, BIG_FRAME);

    t_connect_opts_t co = {.rcvbuf = 4096};
    int fd = t_tcp_connect_ex("127.0.0.1", info.port, T_WAIT_MS, &co);
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    cr_assert_eq(t_set_nonblocking(fd, true), 0);

    size_t rss0 = t_rss_bytes();
    size_t rss_max = rss0;
    unsigned long long pushed = 0;
    size_t off = 0; /* within the current frame */
    uint64_t last_progress = t_now_ms();
    bool stalled = false;
    while (pushed < PUSH_LIMIT) {
        struct pollfd p = {fd, POLLOUT, 0};
        int n = poll(&p, 1, 100);
        if (n > 0) {
            ssize_t w = send(fd, frame_buf + off, sizeof(frame_buf) - off, MSG_NOSIGNAL);
            if (w > 0) {
                pushed += (unsigned long long)w;
                off = (off + (size_t)w) % sizeof(frame_buf);
                last_progress = t_now_ms();
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                cr_assert_fail("send after %llu bytes: %s (the server closed on us?)", pushed,
                               strerror(errno));
            }
        }
        size_t rss = t_rss_bytes();
        if (rss > rss_max)
            rss_max = rss;
        if (t_now_ms() - last_progress >= STALL_MS) {
            stalled = true;
            break;
        }
    }
    size_t growth = rss_max > rss0 ? rss_max - rss0 : 0;
    cr_log_info("pushed %llu MiB, stalled %d, RSS growth %zu KiB", pushed >> 20, stalled,
                growth >> 10);
    cr_assert_lt(growth, 64u << 20,
                 "the server's memory grew by %zu MiB while the peer pushed %llu "
                 "MiB without reading",
                 growth >> 20, pushed >> 20);
    cr_assert(stalled, "the peer pushed %llu MiB without ever being held back", pushed >> 20);
    cr_assert_eq(sessions_of(l), 1, "the session should still be there, paused");

    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0, "the session never went away after the peer closed");
    finish();
}

/* ---- pushes to a peer that never reads ------------------------------------------- */

#define PUSH_FRAME (64u * 1024u)
#define PUSH_FRAMES 256u /* 16 MiB: far past the limit, far below trouble */
#define PUSH_WRITE_LIMIT (1024u * 1024u)

static uint8_t push_buf[PUSH_FRAME];

/* write_high stops reading from the peer, which bounds replies; pushes from
 * other actors are not replies. Past write_limit the connection ends with
 * NSYS_ENOBUFS and a text that says why, instead of queueing without end. */
Test(tcp_flow, pushes_to_a_peer_that_never_reads_end_the_connection_at_write_limit)
{
    cr_assert_eq(t_probe_spawn(rt, &owner, NULL, NULL), 0);
    nsys_listener_opts_t o = t_listener_opts(NULL);
    o.owner = t_probe_ref(&owner);
    o.transport.max_payload = PUSH_FRAME;
    o.transport.write_high = PUSH_WRITE_LIMIT / 4;
    o.transport.write_limit = PUSH_WRITE_LIMIT;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s", nsys_net_last_error());

    t_connect_opts_t co = {.rcvbuf = 4096};
    int fd = t_tcp_connect_ex("127.0.0.1", info.port, T_WAIT_MS, &co);
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    cr_assert(t_recs_wait_type(&owner.inbox, NSYS_MSG_NET_OPEN, 1, T_WAIT_MS));
    t_rec_t open;
    cr_assert(t_recs_get(&owner.inbox, (size_t)t_recs_find_type(&owner.inbox, NSYS_MSG_NET_OPEN, 0),
                         &open));
    nsys_ref_t session = open.from;

    size_t rss0 = t_rss_bytes();
    memset(push_buf, 'p', sizeof push_buf);
    unsigned sent = 0;
    for (; sent < PUSH_FRAMES; sent++)
        if (nsys_net_send(rt, session, push_buf, sizeof push_buf) != 0)
            break; /* the session is gone already */
    cr_assert(t_recs_wait_type(&owner.inbox, NSYS_MSG_NET_ERROR, 1, T_WAIT_MS),
              "no error after %u pushes of %u KiB", sent, PUSH_FRAME >> 10);
    t_rec_t err;
    cr_assert(t_recs_get(&owner.inbox,
                         (size_t)t_recs_find_type(&owner.inbox, NSYS_MSG_NET_ERROR, 0), &err));
    nsys_net_event_t ev;
    memcpy(&ev, err.bytes, sizeof err.bytes < sizeof ev ? sizeof err.bytes : sizeof ev);
    cr_expect_eq(ev.code, NSYS_ENOBUFS, "code %s", nsys_strerror(ev.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0, "the session outlived its write limit");
    if (!T_SANITIZED) /* sanitizers keep freed memory */
        cr_expect_lt(t_rss_bytes(), rss0 + 8u * PUSH_WRITE_LIMIT, "RSS grew by %zu KiB",
                     (t_rss_bytes() - rss0) >> 10);
    close(fd);
    finish();
}

/* ---- a receiver that holds what it got ------------------------------------------ */

/* The owner keeps every message buffer it is sent (the bytes stay counted
 * against the connection's read_high) until the test tells it to let go. */
static nsys_buf_t **kept;
static size_t nkept, kept_cap, kept_bytes;
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool keeping; /* false: messages are dropped once handled */

static int keeping_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)ctx;
    (void)p;
    if (msg->type != NSYS_MSG_NET_MESSAGE || !atomic_load(&keeping))
        return 0;
    nsys_buf_t *b = nsys_msg_take_buf(msg);
    if (b == NULL)
        return NSYS_EINVAL; /* the contract says MESSAGE carries a buffer */
    pthread_mutex_lock(&kept_mu);
    if (nkept == kept_cap) {
        size_t cap = kept_cap ? kept_cap * 2 : 256;
        nsys_buf_t **v = realloc(kept, cap * sizeof(*v));
        if (v == NULL) {
            pthread_mutex_unlock(&kept_mu);
            nsys_buf_unref(b);
            return NSYS_ENOMEM;
        }
        kept = v;
        kept_cap = cap;
    }
    kept[nkept++] = b;
    kept_bytes += nsys_buf_len(b);
    pthread_mutex_unlock(&kept_mu);
    return 0;
}

/* Runs inside the owner: releases everything it kept; with a non-NULL arg
 * it also stops keeping. */
static int release_kept(nsys_ctx_t *ctx, void *arg)
{
    (void)ctx;
    if (arg != NULL)
        atomic_store(&keeping, false);
    pthread_mutex_lock(&kept_mu);
    for (size_t i = 0; i < nkept; i++)
        nsys_buf_unref(kept[i]);
    nkept = 0;
    kept_bytes = 0;
    pthread_mutex_unlock(&kept_mu);
    return 0;
}

static size_t kept_count(void)
{
    pthread_mutex_lock(&kept_mu);
    size_t n = nkept;
    pthread_mutex_unlock(&kept_mu);
    return n;
}

static size_t kept_total(void)
{
    pthread_mutex_lock(&kept_mu);
    size_t n = kept_bytes;
    pthread_mutex_unlock(&kept_mu);
    return n;
}

#define HOLD_FRAME (16u * 1024u)
#define READ_HIGH (256u * 1024u)

/* Pushes HOLD_FRAME frames without blocking until no byte went out for
 * STALL_MS or `limit` bytes were pushed; returns the bytes pushed. */
static unsigned long long push_until_stalled(int fd, unsigned long long limit, bool *stalled)
{
    static uint8_t f[HOLD_FRAME + 4];
    t_put_u32be(f, HOLD_FRAME);
    memset(f + 4, 'h', HOLD_FRAME);
    unsigned long long pushed = 0;
    size_t off = 0;
    uint64_t last = t_now_ms();
    *stalled = false;
    while (pushed < limit) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 100) > 0) {
            ssize_t w = send(fd, f + off, sizeof(f) - off, MSG_NOSIGNAL);
            if (w > 0) {
                pushed += (unsigned long long)w;
                off = (off + (size_t)w) % sizeof(f);
                last = t_now_ms();
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                cr_assert_fail("send after %llu bytes: %s", pushed, strerror(errno));
            }
        }
        if (t_now_ms() - last >= STALL_MS) {
            *stalled = true;
            break;
        }
    }
    return pushed;
}

Test(tcp_flow, a_receiver_that_holds_its_messages_pauses_reading_until_it_lets_go)
{
    atomic_store(&keeping, true);
    owner.hook = keeping_hook;
    cr_assert_eq(t_probe_spawn(rt, &owner, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&owner.inited) == 1);
    nsys_listener_opts_t o = t_listener_opts(NULL);
    o.owner = t_probe_ref(&owner);
    o.transport.read_high = READ_HIGH;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s", nsys_net_last_error());

    int fd = t_tcp_connect("127.0.0.1", info.port, T_WAIT_MS);
    cr_assert_geq(fd, 0);
    cr_assert_eq(t_set_nonblocking(fd, true), 0);
    /* A small, fixed send buffer: Linux reports a socket writable only once
     * half of what it has queued is gone, so with an autotuned one (MiBs)
     * the few hundred KiB the server reads after the release would not make
     * room for a single new byte here, and the test would see no progress. */
    int sndbuf = 16 * 1024;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    bool stalled = false;
    unsigned long long pushed = push_until_stalled(fd, 256ull << 20, &stalled);
    size_t held = kept_total();
    cr_log_info("pushed %llu KiB before stalling; the owner holds %zu KiB in %zu messages",
                pushed >> 10, held >> 10, kept_count());
    cr_assert(stalled, "the peer pushed %llu MiB while the receiver held everything", pushed >> 20);
    /* read_high plus what one read can bring in over it. */
    cr_assert_leq(held, READ_HIGH + 2 * NSYS_TRANSPORT_READ_CHUNK + HOLD_FRAME,
                  "the receiver was handed %zu KiB with read_high %u KiB", held >> 10,
                  READ_HIGH >> 10);
    cr_assert_gt(kept_count(), 0, "nothing was delivered at all");

    /* Letting go resumes reading: more messages arrive. */
    size_t before = kept_count();
    int fn_rc = -1;
    cr_assert_eq(t_call(rt, t_probe_ref(&owner), release_kept, NULL, &fn_rc), 0);
    T_ASSERT_EVENTUALLY(kept_count() > 0 || before == 0,
                        "no message arrived after the receiver released %zu", before);
    pushed = push_until_stalled(fd, 256ull << 20, &stalled);
    cr_assert(stalled);
    cr_assert_gt(pushed, 0, "reading never resumed after the receiver let go");

    /* A session paused by read_high reads nothing, so it learns of the
     * peer's close only once its receiver lets go and it reads on to the
     * FIN. */
    close(fd);
    cr_assert_eq(t_call(rt, t_probe_ref(&owner), release_kept, &keeping, &fn_rc), 0);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0, "the session never went away after the peer closed");
    finish();
    free(kept);
    kept = NULL;
    kept_cap = 0;
}

/* ---- idle timeout ---------------------------------------------------------------- */

static nsys_ref_t start_idle_server(uint16_t *port, uint64_t idle_ms)
{
    net_log.echo = true;
    nsys_tcp_server_opts_t so = t_facade_opts(&net_log);
    so.listen.transport.idle_timeout_ms = idle_ms;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_tcp_server_start(rt, &so, &l, &info);
    cr_assert_eq(rc, 0, "nsys_tcp_server_start: %s", nsys_net_last_error());
    *port = info.port;
    return l;
}

Test(tcp_flow, the_idle_timeout_closes_a_silent_connection_neither_early_nor_late)
{
    uint16_t port;
    nsys_ref_t l = start_idle_server(&port, 200);
    uint64_t t0 = t_now_ms();
    int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
    cr_assert_geq(fd, 0);
    int rc = t_wait_closed(fd, 5000);
    uint64_t elapsed = t_now_ms() - t0;
    close(fd);
    cr_assert(rc == 0 || rc == -ECONNRESET, "a silent connection was not closed within 5 s: %d",
              rc);
    cr_assert_geq(elapsed, 150, "closed after %" PRIu64 " ms, the timeout is 200 ms", elapsed);
    cr_log_info("idle close after %" PRIu64 " ms", elapsed);

    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_CLOSED, 1, T_WAIT_MS));
    t_net_entry_t d;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_CLOSED, 0, &d));
    cr_assert_eq(d.code, NSYS_ETIMEDOUT, "exit reason %d (%s), want NSYS_ETIMEDOUT", d.code,
                 nsys_errname(d.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_flow, a_connection_that_keeps_talking_outlives_the_idle_timeout)
{
    uint16_t port;
    /* A timeout well above the 50 ms pace, so that a loaded machine that
     * stalls this thread for a while cannot make the talk look idle. */
    nsys_ref_t l = start_idle_server(&port, 1000);
    int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
    cr_assert_geq(fd, 0);
    uint64_t start = t_now_ms();
    int rounds = 0;
    while (t_now_ms() - start < 2500) {
        int rc = t_echo_once(fd, "tick", 4, T_WAIT_MS);
        cr_assert_eq(rc, 0, "round %d after %" PRIu64 " ms: %d (closed while talking?)", rounds,
                     t_now_ms() - start, rc);
        rounds++;
        /* Paces the talk at 50 ms, a twentieth of the timeout; waits for nothing. */
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(t_echo_once(fd, "last", 4, T_WAIT_MS), 0);
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_CLOSED), 0);
    /* Silent from now on: the timeout applies again. */
    int rc = t_wait_closed(fd, 5000);
    cr_assert(rc == 0 || rc == -ECONNRESET, "not closed once silent: %d", rc);
    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

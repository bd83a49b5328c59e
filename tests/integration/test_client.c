/* tests/integration/test_client.c — the resilient client (connection actor)
 * against real listeners on 127.0.0.1: echo round trips, reconnects that
 * keep the same actor, the outbox across an outage, the accounting identity
 * sent = written + failed, distinct dial errors and the connect timeout. */
#include <criterion/criterion.h>

#include <netsys/netsys.h>

#include <inttypes.h>

#include "common/client_fixture.h"
#include "common/net.h"
#include "common/probe.h"

#define TO 120

/* ---- fixtures (the shared parts are in common/client_fixture.h) ------------------------- */

static nsys_runtime_t *rt;
static t_client_seen_t seen;

static void new_runtime(void)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    cr_assert(t_client_seen_init(&seen, 0));
}

static void finish(void)
{
    nsys_runtime_stop(rt);
    T_RUNTIME_FREE(rt);
    t_client_seen_destroy(&seen);
}

static nsys_ref_t echo_server(uint16_t port, uint16_t *bound)
{
    nsys_ref_t l;
    int rc = t_echo_listener_start(rt, port, &l, bound);
    cr_assert_eq(rc, 0, "listener on %u: %s", (unsigned)port, nsys_net_last_error());
    return l;
}

static void stop_and_wait(nsys_ref_t l)
{
    cr_assert(t_listener_stop_wait(rt, l, T_WAIT_MS), "the listener did not stop");
}

static nsys_client_opts_t client_opts(uint16_t port)
{
    return t_client_opts(port, &seen);
}

static nsys_client_stats_t stats(nsys_ref_t c)
{
    nsys_client_stats_t st;
    cr_assert_eq(nsys_client_stats(rt, c, &st), 0);
    return st;
}

/* ---- tests ---------------------------------------------------------------------------------- */

Test(client, connects_sends_and_receives_echoes_in_order, .timeout = TO)
{
    new_runtime();
    uint16_t port;
    echo_server(0, &port);
    nsys_client_opts_t o = client_opts(port);
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) == 1);
    for (uint64_t i = 0; i < 1000; i++)
        cr_assert_eq(t_client_send_seq(rt, c, i), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.received) == 1000, "got %" PRIu64,
                        (uint64_t)atomic_load(&seen.received));
    cr_assert_eq(atomic_load(&seen.out_of_order), 0);
    nsys_client_stats_t st = stats(c);
    cr_assert_eq(st.sent, 1000);
    cr_assert_eq(st.written, 1000);
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(st.state, NSYS_CLIENT_UP);
    finish();
}

Test(client, messages_sent_while_down_wait_and_flush_in_order_after_connect, .timeout = TO)
{
    new_runtime();
    /* Find a free port, then leave it empty: the first attempts are refused. */
    uint16_t port;
    nsys_ref_t l = echo_server(0, &port);
    stop_and_wait(l);
    nsys_client_opts_t o = client_opts(port);
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.retrying) >= 2);
    cr_assert_eq(atomic_load(&seen.last_code), UV_ECONNREFUSED);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(t_client_send_seq(rt, c, i), 0);
    T_ASSERT_EVENTUALLY(stats(c).outbox_messages == 100);
    cr_assert_eq(stats(c).written, 0);
    echo_server(port, NULL);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.received) == 100);
    cr_assert_eq(atomic_load(&seen.out_of_order), 0, "the outbox must flush in order");
    nsys_client_stats_t st = stats(c);
    cr_assert_eq(st.written, 100);
    cr_assert_eq(st.outbox_messages, 0);
    cr_assert(nsys_is_alive(rt, c), "a link failure never kills the client");
    finish();
}

/* A handler that drops every connection as soon as it opens. */
static int refuse_open(nsys_session_t *s, void *state, void *arg)
{
    (void)s, (void)state, (void)arg;
    return NSYS_ECANCELED;
}
static const nsys_session_handler_t dropper = {.name = "dropper", .on_open = refuse_open};

Test(client, the_same_actor_survives_a_thousand_reconnects_and_leaks_nothing, .timeout = TO)
{
    new_runtime();
    nsys_listener_opts_t lo = t_listener_opts(&dropper);
    nsys_listener_info_t info;
    nsys_ref_t l;
    cr_assert_eq(nsys_listener_start(rt, &lo, &l, &info), 0);
    nsys_client_opts_t o = client_opts(info.port);
    o.backoff.initial_ms = 1;
    o.backoff.max_ms = 1;
    o.backoff.jitter = NSYS_BACKOFF_NO_JITTER;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) >= 50);
    nsys_metrics_t m0;
    cr_assert_eq(nsys_metrics_get(rt, &m0), 0);
    int fds0 = !T_SANITIZED || T_ASAN ? t_open_fds() : 0;
    size_t rss0 = t_rss_bytes();
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) >= 1050, "connected %d times",
                        atomic_load(&seen.connected));
    nsys_client_stats_t st = stats(c);
    cr_assert_geq(st.reconnects, 1000);
    cr_assert(nsys_is_alive(rt, c), "the client actor must be the same one");
    nsys_metrics_t m1;
    cr_assert_eq(nsys_metrics_get(rt, &m1), 0);
    /* At any moment one session may be alive on the server side. */
    cr_assert_leq(m1.actors_alive, m0.actors_alive + 1, "live actors grew from %" PRIu64 " to %" PRIu64,
                  (uint64_t)m0.actors_alive, (uint64_t)m1.actors_alive);
    /* Reading /proc/self/fd while the runtime opens sockets is a race
     * ThreadSanitizer reports (closedir against socket); count elsewhere. */
    if (!T_SANITIZED || T_ASAN)
        cr_assert_leq(t_open_fds(), fds0 + 2, "descriptors grew from %d to %d", fds0, t_open_fds());
    size_t rss1 = t_rss_bytes();
    if (!T_SANITIZED) /* sanitizers hold freed memory; ASan's leak check covers this */
        cr_assert_lt(rss1, rss0 + 4u * 1024u * 1024u, "RSS grew by %zu bytes", rss1 - rss0);
    cr_assert_eq(nsys_client_stop(rt, c), 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, c));
    nsys_listener_info_t li;
    T_ASSERT_EVENTUALLY(nsys_listener_info(rt, l, &li) == 0 && li.sessions == 0,
                        "sessions left on the server");
    finish();
}

Test(client, accounting_holds_when_the_server_restarts_under_load, .timeout = TO)
{
    new_runtime();
    uint16_t port;
    nsys_ref_t l = echo_server(0, &port);
    nsys_client_opts_t o = client_opts(port);
    o.outbox_max_messages = 64;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) == 1);
    uint64_t sent = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 200; i++, sent++)
            cr_assert_eq(t_client_send_seq(rt, c, sent), 0);
        stop_and_wait(l);
        for (int i = 0; i < 200; i++, sent++)
            cr_assert_eq(t_client_send_seq(rt, c, sent), 0);
        l = echo_server(port, NULL);
        int want = round + 2;
        T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) >= want);
    }
    T_ASSERT_EVENTUALLY(stats(c).outbox_messages == 0);
    nsys_client_stats_t st = stats(c);
    cr_assert_eq(st.sent, sent);
    cr_assert_eq(st.sent, st.written + st.failed, "sent %" PRIu64 " != written %" PRIu64
                 " + failed %" PRIu64, st.sent, st.written, st.failed);
    cr_assert_eq((uint64_t)atomic_load(&seen.send_failed), st.failed,
                 "every failure is reported");
    cr_assert_gt(st.failed, 0, "64-message outbox over 200-message outages must overflow");
    finish();
}

Test(client, gives_up_after_max_attempts_with_the_last_error, .timeout = TO)
{
    new_runtime();
    uint16_t port;
    nsys_ref_t l = echo_server(0, &port);
    stop_and_wait(l);
    nsys_client_opts_t o = client_opts(port);
    o.max_attempts = 3;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.gave_up) == 1);
    cr_assert_eq(atomic_load(&seen.retrying), 2, "3 attempts: 2 retries, then give up");
    cr_assert_eq(atomic_load(&seen.gave_up_code), UV_ECONNREFUSED);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, c));
    char text[NSYS_NET_MESSAGE_MAX];
    t_client_seen_last_text(&seen, text, sizeof text);
    cr_assert(strstr(text, "refused") != NULL, "text: %s", text);
    finish();
}

Test(client, stop_on_ends_at_the_first_matching_error, .timeout = TO)
{
    new_runtime();
    uint16_t port;
    nsys_ref_t l = echo_server(0, &port);
    stop_and_wait(l);
    nsys_client_opts_t o = client_opts(port);
    int stop_on[] = {UV_ECONNREFUSED};
    o.stop_on = stop_on;
    o.nstop_on = 1;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.gave_up) == 1);
    cr_assert_eq(atomic_load(&seen.retrying), 0);
    finish();
}

Test(client, connect_timeout_fires_at_the_configured_time, .timeout = TO)
{
    new_runtime();
    t_syn_sink_t sink;
    int rc = t_syn_sink_open(&sink);
    cr_assert_eq(rc, 0, "no silent listener: %s", strerror(-rc));
    uint16_t port = sink.port;
    nsys_client_opts_t o = client_opts(port);
    o.connect_timeout_ms = 400;
    o.max_attempts = 1;
    uint64_t t0 = t_now_ms();
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.gave_up) == 1);
    uint64_t took = t_now_ms() - t0;
    cr_assert_eq(atomic_load(&seen.gave_up_code), UV_ETIMEDOUT);
    cr_assert_geq(took, 360, "timed out after %" PRIu64 " ms, before 400 - 10 %%", took);
    cr_assert_leq(took, T_SANITIZED ? 2000 : 800, "timed out after %" PRIu64 " ms", took);
    char text[NSYS_NET_MESSAGE_MAX];
    t_client_seen_last_text(&seen, text, sizeof text);
    cr_assert(strstr(text, "timed out after 400 ms") != NULL, "text: %s", text);
    t_syn_sink_close(&sink);
    finish();
}

Test(client, owner_mode_gets_events_and_messages_as_actor_messages, .timeout = TO)
{
    new_runtime();
    t_probe_t probe;
    t_probe_init(&probe);
    cr_assert_eq(t_probe_spawn(rt, &probe, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&probe.inited) == 1);
    uint16_t port;
    echo_server(0, &port);
    nsys_client_opts_t o = client_opts(port);
    o.on_message = NULL;
    o.on_event = NULL;
    o.owner = t_probe_ref(&probe);
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    cr_assert(t_recs_wait_type(&probe.inbox, NSYS_MSG_CLIENT_EVENT, 1, T_WAIT_MS));
    cr_assert_eq(nsys_net_send(rt, c, "hello", 5), 0);
    cr_assert(t_recs_wait_type(&probe.inbox, NSYS_MSG_NET_MESSAGE, 1, T_WAIT_MS));
    t_rec_t rec;
    cr_assert(t_recs_get(&probe.inbox, (size_t)t_recs_find_type(&probe.inbox, NSYS_MSG_NET_MESSAGE, 0),
                         &rec));
    cr_assert_eq(rec.from, c);
    cr_assert_eq(rec.size, 5);
    finish();
    t_probe_destroy(&probe);
}

Test(client, a_heartbeat_without_the_length_codec_is_refused_at_start, .timeout = TO)
{
    new_runtime();
    uint16_t port;
    nsys_ref_t l = echo_server(0, &port);
    nsys_client_opts_t o = client_opts(port);
    o.transport.codec = NSYS_CODEC_RAW;
    o.heartbeat_ms = 100;
    nsys_ref_t c = NSYS_REF_NONE;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), NSYS_EINVAL);
    cr_assert_str_eq(nsys_net_last_error(),
                     "nsys_tcp_client_start: the heartbeat needs the length codec");
    /* Bad backoff options are refused the same way, before any actor. */
    o = client_opts(port);
    o.backoff.multiplier = 0.5;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), NSYS_EINVAL);
    cr_assert(strstr(nsys_net_last_error(), "invalid backoff options") != NULL, "%s",
              nsys_net_last_error());
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_failed, 0, "no actor was started");
    cr_assert_eq(atomic_load(&seen.connected), 0);
    nsys_listener_info_t li;
    cr_assert_eq(nsys_listener_info(rt, l, &li), 0);
    cr_assert_eq(li.accepted, 0, "it never dialled");
    finish();
}

Test(client, max_attempts_counts_failed_dials_not_a_lost_link, .timeout = TO)
{
    new_runtime();
    uint16_t port;
    nsys_ref_t l = echo_server(0, &port);
    nsys_client_opts_t o = client_opts(port);
    o.max_attempts = 2;
    o.backoff.reset_after_ms = 50;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) == 1);
    /* The link stays up past reset_after_ms (a stable link: the time is the
     * condition here, not an event), then goes: that is not an attempt. Two
     * refused dials are. */
    uint64_t up_at = t_now_ms();
    T_WAIT(t_now_ms() - up_at > 2 * o.backoff.reset_after_ms, T_WAIT_MS);
    stop_and_wait(l);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.gave_up) == 1);
    cr_assert_eq(atomic_load(&seen.disconnected), 1);
    cr_assert_eq(atomic_load(&seen.retrying), 2, "retries: one after the loss, one after dial 1");
    cr_assert_eq(atomic_load(&seen.gave_up_code), UV_ECONNREFUSED);
    finish();
}

/* A server that accepts and resets every connection at once (a proxy
 * refusing) is given up on like one that refuses: a link lost before it
 * stayed up for reset_after_ms is a failed attempt. */
Test(client, links_lost_at_once_count_as_failed_attempts, .timeout = TO)
{
    new_runtime();
    nsys_proxy_opts_t po = NSYS_PROXY_OPTS_DEFAULTS;
    po.upstream_host = "127.0.0.1";
    po.upstream_port = 9;
    po.faults.refuse = true;
    nsys_ref_t proxy;
    nsys_proxy_stats_t ps;
    cr_assert_eq(nsys_proxy_start(rt, &po, &proxy, &ps), 0, "%s", nsys_net_last_error());
    nsys_client_opts_t o = client_opts(ps.port);
    o.max_attempts = 3;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.gave_up) == 1, "the client never gave up");
    cr_assert_eq(atomic_load(&seen.gave_up_code), UV_ECONNRESET, "gave up with %s",
                 nsys_strerror(atomic_load(&seen.gave_up_code)));
    cr_assert_leq(atomic_load(&seen.connected), 3, "%d links", atomic_load(&seen.connected));
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, c));
    finish();
}

/* A link too slow for what is sent (the server never reads): the client
 * hands its connection no more than about write_high at a time, the rest
 * waits in the outbox where drop_oldest drops the oldest to make room. The
 * link stays up (the connection's write_limit is never reached) and every
 * message is accounted for. */
Test(client, a_slow_link_keeps_the_rest_in_the_outbox_where_drop_oldest_applies, .timeout = TO)
{
    enum { N = 1024, SIZE = 4096 };
    new_runtime();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    int small = 4096;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* inherited by accepts */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    socklen_t sl = sizeof sa;
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

    nsys_client_opts_t o = client_opts(ntohs(sa.sin_port));
    o.transport.write_high = 64 * 1024;
    o.outbox_max_bytes = 256 * 1024;
    o.overflow = NSYS_OUTBOX_DROP_OLDEST;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) == 1);
    static uint8_t msg[SIZE];
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_net_send(rt, c, msg, sizeof msg), 0);
    T_ASSERT_EVENTUALLY(stats(c).sent == N, "the client took %" PRIu64 " of %d", stats(c).sent,
                        (int)N);
    nsys_client_stats_t st = stats(c);
    cr_assert_eq(st.sent, st.written + st.failed + st.outbox_messages,
                 "sent %" PRIu64 " written %" PRIu64 " failed %" PRIu64 " waiting %zu", st.sent,
                 st.written, st.failed, st.outbox_messages);
    cr_assert_gt(st.failed, 0, "4 MiB through a link that takes nothing: some must be dropped");
    cr_assert_leq(st.outbox_bytes, o.outbox_max_bytes);
    cr_assert_eq(st.state, NSYS_CLIENT_UP, "the link must stay up (no write_limit hit)");
    cr_assert_eq(atomic_load(&seen.disconnected), 0);
    cr_assert_eq((uint64_t)atomic_load(&seen.send_failed), st.failed);
    finish();
    close(lfd);
}

/* write_limit is raised to fit any frame max_payload allows on top of a
 * queue at write_high: a 512 KiB echo works with write_limit 128 KiB. */
Test(client, a_frame_larger_than_a_small_write_limit_still_goes, .timeout = TO)
{
    new_runtime();
    nsys_listener_opts_t lo = t_listener_opts(&nsys_handler_echo);
    lo.transport.write_high = 64 * 1024;
    lo.transport.write_limit = 128 * 1024;
    nsys_ref_t l;
    nsys_listener_info_t info;
    cr_assert_eq(nsys_listener_start(rt, &lo, &l, &info), 0, "%s", nsys_net_last_error());
    nsys_client_opts_t o = client_opts(info.port);
    o.transport = lo.transport;
    nsys_ref_t c;
    cr_assert_eq(nsys_tcp_client_start(rt, &o, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.connected) == 1);
    static uint8_t big[512 * 1024];
    cr_assert_eq(nsys_net_send(rt, c, big, sizeof big), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.received) == 1, "no echo of the 512 KiB frame");
    cr_assert_eq((uint64_t)atomic_load(&seen.bytes), sizeof big);
    cr_assert_eq(atomic_load(&seen.disconnected), 0);
    finish();
}

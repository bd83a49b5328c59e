/* tests/integration/test_tcp_framing.c — the length codec on a live
 * connection: zero-length and exactly-maximum payloads echo; a frame one
 * byte over the maximum, or a header claiming 4 GiB, closes the connection
 * and says "payload exceeds maximum (N > LIMIT)" through every channel a
 * server has (forwarding-mode events, the facade's on_error, a handler's
 * on_close) without the server allocating for it; a frame written one byte
 * at a time and 500 frames in one write arrive whole and in order; and
 * sends over the maximum are refused with NSYS_EMSGSIZE and the same text.
 *
 * Servers use max_payload 4096 unless a test says otherwise.
 */
#include "common/net.h"
#include "common/probe.h"
#include "common/tcp_fixture.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#define MAXP 4096u

static void setup(void)
{
    t_tcp_setup(NSYS_LOG_ERROR, true); /* oversize frames are logged; expected here */
}

TestSuite(tcp_framing, .init = setup, .fini = t_tcp_teardown, .timeout = 120);

/* An echo listener with max_payload MAXP. */
static nsys_ref_t start_echo(uint16_t *port)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.transport.max_payload = MAXP;
    return t_tcp_listen(&o, port);
}

/* A forwarding listener whose owner probe echoes (max_payload `maxp`). */
static nsys_ref_t start_owned(size_t maxp, uint16_t *port)
{
    t_tcp_spawn_owner(true);
    nsys_listener_opts_t o = t_listener_opts(NULL);
    o.owner = t_probe_ref(&owner);
    o.transport.max_payload = maxp;
    return t_tcp_listen(&o, port);
}

/* Sends a header claiming `claim` bytes and then `send` payload bytes
 * (write errors after the header are expected: the server may be gone). */
static void send_claim(int fd, uint32_t claim, size_t send)
{
    uint8_t hdr[4];
    t_put_u32be(hdr, claim);
    cr_assert_eq(t_write_all(fd, hdr, 4), 0);
    if (send > 0) {
        uint8_t *p = calloc(1, send);
        cr_assert_not_null(p);
        (void)t_write_all(fd, p, send);
        free(p);
    }
}

static void assert_closed_by_server(int fd)
{
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(rc == 0 || rc == -ECONNRESET,
              "the server kept the connection open (or failed oddly): %d (%s)", rc,
              strerror(rc < 0 ? -rc : 0));
}

Test(tcp_framing, echoes_a_zero_length_payload)
{
    uint16_t port;
    start_echo(&port);
    int fd = t_tcp_connect_local(port);
    uint8_t zero[4] = {0, 0, 0, 0};
    cr_assert_eq(t_write_all(fd, zero, 4), 0);
    uint8_t back[4] = {1, 1, 1, 1};
    int rc = t_read_exact(fd, back, 4, T_WAIT_MS, NULL);
    cr_assert_eq(rc, 0, "no echo of the empty frame: %d", rc);
    cr_assert_eq(memcmp(back, zero, 4), 0, "echo header %02x%02x%02x%02x", back[0], back[1],
                 back[2], back[3]);
    /* The stream is still in step. */
    cr_assert_eq(t_echo_once(fd, "after", 5, T_WAIT_MS), 0);
    close(fd);
    finish();
}

Test(tcp_framing, echoes_a_payload_of_exactly_max_payload)
{
    uint16_t port;
    start_echo(&port);
    int fd = t_tcp_connect_local(port);
    uint8_t *p = malloc(MAXP);
    cr_assert_not_null(p);
    for (size_t i = 0; i < MAXP; i++)
        p[i] = (uint8_t)(i * 7 + 3);
    int rc = t_echo_once(fd, p, MAXP, T_WAIT_MS);
    free(p);
    cr_assert_eq(rc, 0, "echo of %u bytes: %d", MAXP, rc);
    close(fd);
    finish();
}

Test(tcp_framing, a_frame_one_byte_over_the_maximum_closes_the_connection_and_names_both_sizes)
{
    uint16_t port;
    nsys_ref_t l = start_owned(MAXP, &port);
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "ok", 2, T_WAIT_MS), 0);
    send_claim(fd, MAXP + 1, MAXP + 1);
    assert_closed_by_server(fd);
    close(fd);

    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_CLOSED, 1, T_WAIT_MS), "no CLOSED event");
    t_net_entry_t cl;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_CLOSED, 0, &cl));
    cr_assert_eq(cl.code, NSYS_EMSGSIZE, "CLOSED code %d (%s), want NSYS_EMSGSIZE", cl.code,
                 nsys_errname(cl.code));
    char texts[1024];
    t_net_log_texts(&net_log, texts, sizeof(texts));
    cr_assert(t_net_log_has_text(&net_log, "payload exceeds maximum (4097 > 4096)", NULL),
              "no ERROR/CLOSED event names the sizes; events: %s", texts);
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_MESSAGE), 1,
                 "the oversized frame was "
                 "delivered");
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_framing, the_facade_reports_an_oversized_frame_through_on_error)
{
    net_log.echo = true;
    nsys_tcp_server_opts_t so = t_facade_opts(&net_log);
    so.listen.transport.max_payload = MAXP;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_tcp_server_start(rt, &so, &l, &info);
    cr_assert_eq(rc, 0, "nsys_tcp_server_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());

    int fd = t_tcp_connect_local(info.port);
    send_claim(fd, MAXP + 1, MAXP + 1);
    assert_closed_by_server(fd);
    close(fd);

    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_CLOSED, 1, T_WAIT_MS),
              "on_disconnect never ran");
    t_net_entry_t e, d;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_CLOSED, 0, &d));
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_ERROR, 0, &e), "on_error never ran");
    cr_assert_eq(e.code, NSYS_EMSGSIZE, "on_error code %d (%s)", e.code, nsys_errname(e.code));
    cr_assert(strstr(e.text, "payload exceeds maximum (4097 > 4096)") != NULL,
              "on_error message \"%s\"", e.text);
    cr_assert(strstr(e.text, "127.0.0.1:") != NULL, "on_error message should name the peer: \"%s\"",
              e.text);
    cr_assert_eq(e.session, d.session);
    cr_assert_eq(d.code, NSYS_EMSGSIZE, "on_disconnect reason %d (%s)", d.code,
                 nsys_errname(d.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

/* ---- a handler that records what nsys_session_send and on_close report ---- */

typedef struct h_log {
    pthread_mutex_t mu;
    int messages;
    int over_rc;
    char over_error[NSYS_NET_MESSAGE_MAX];
    int echo_rc;
    int closes;
    int close_reason;
    char close_text[256];
} h_log_t;

static h_log_t hlog;
static uint8_t big_payload[MAXP + 1]; /* read-only for the handlers */

static int h_open(nsys_session_t *s, void *state, void *arg)
{
    (void)s;
    *(h_log_t **)state = arg;
    return 0;
}

static int h_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    h_log_t *h = *(h_log_t **)state;
    int over = nsys_session_send(s, big_payload, sizeof(big_payload));
    char err[NSYS_NET_MESSAGE_MAX];
    t_copy_text(err, sizeof(err), nsys_net_last_error());
    int echo = nsys_session_send(s, nsys_buf_data(msg), nsys_buf_len(msg));
    pthread_mutex_lock(&h->mu);
    h->messages++;
    h->over_rc = over;
    memcpy(h->over_error, err, sizeof(err));
    h->echo_rc = echo;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static void h_close(nsys_session_t *s, void *state, int reason, const char *text)
{
    (void)s;
    h_log_t *h = *(h_log_t **)state;
    pthread_mutex_lock(&h->mu);
    h->closes++;
    h->close_reason = reason;
    t_copy_text(h->close_text, sizeof(h->close_text), text);
    pthread_mutex_unlock(&h->mu);
}

static const nsys_session_handler_t recording_handler = {
    .name = "test.recording",
    .state_size = sizeof(h_log_t *),
    .on_open = h_open,
    .on_message = h_message,
    .on_close = h_close,
};

static int hlog_closes(void)
{
    pthread_mutex_lock(&hlog.mu);
    int n = hlog.closes;
    pthread_mutex_unlock(&hlog.mu);
    return n;
}

static nsys_ref_t start_recording(uint16_t *port)
{
    memset(&hlog, 0, sizeof(hlog));
    pthread_mutex_init(&hlog.mu, NULL);
    nsys_listener_opts_t o = t_listener_opts(&recording_handler);
    o.handler_arg = &hlog;
    o.transport.max_payload = MAXP;
    return t_tcp_listen(&o, port);
}

Test(tcp_framing, session_send_over_the_maximum_returns_emsgsize_with_the_sizes)
{
    uint16_t port;
    nsys_ref_t l = start_recording(&port);
    int fd = t_tcp_connect_local(port);
    /* The handler tries an oversized send first, then echoes: the echo must
     * be the only frame that comes back. */
    int rc = t_echo_once(fd, "hi", 2, T_WAIT_MS);
    cr_assert_eq(rc, 0, "after a refused oversized send the echo should still come: %d", rc);
    pthread_mutex_lock(&hlog.mu);
    int over = hlog.over_rc, echo = hlog.echo_rc;
    char err[NSYS_NET_MESSAGE_MAX];
    memcpy(err, hlog.over_error, sizeof(err));
    pthread_mutex_unlock(&hlog.mu);
    cr_assert_eq(over, NSYS_EMSGSIZE, "nsys_session_send(4097 bytes) = %d (%s)", over,
                 nsys_errname(over));
    cr_assert(strstr(err, "payload exceeds maximum (4097 > 4096)") != NULL,
              "nsys_net_last_error() = \"%s\"", err);
    cr_assert_eq(echo, 0);
    close(fd);
    T_ASSERT_EVENTUALLY(hlog_closes() == 1);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
    pthread_mutex_destroy(&hlog.mu);
}

Test(tcp_framing, on_close_gets_the_oversize_text_when_the_peer_sends_too_much)
{
    uint16_t port;
    nsys_ref_t l = start_recording(&port);
    int fd = t_tcp_connect_local(port);
    send_claim(fd, MAXP + 1, 16);
    assert_closed_by_server(fd);
    close(fd);
    T_ASSERT_EVENTUALLY(hlog_closes() == 1, "on_close never ran");
    pthread_mutex_lock(&hlog.mu);
    int reason = hlog.close_reason, messages = hlog.messages;
    char text[256];
    memcpy(text, hlog.close_text, sizeof(text));
    pthread_mutex_unlock(&hlog.mu);
    cr_assert_eq(reason, NSYS_EMSGSIZE, "on_close reason %d (%s)", reason, nsys_errname(reason));
    cr_assert(strstr(text, "payload exceeds maximum (4097 > 4096)") != NULL, "on_close text \"%s\"",
              text);
    cr_assert_eq(messages, 0);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
    pthread_mutex_destroy(&hlog.mu);
}

Test(tcp_framing, net_send_over_the_maximum_inside_a_facade_callback_returns_emsgsize)
{
    net_log.echo = true;
    net_log.over_len = MAXP + 1;
    nsys_tcp_server_opts_t so = t_facade_opts(&net_log);
    so.listen.transport.max_payload = MAXP;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_tcp_server_start(rt, &so, &l, &info);
    cr_assert_eq(rc, 0, "nsys_tcp_server_start: %s", nsys_net_last_error());
    int fd = t_tcp_connect_local(info.port);
    rc = t_echo_once(fd, "hi", 2, T_WAIT_MS);
    cr_assert_eq(rc, 0, "the echo after a refused oversized send: %d", rc);
    t_net_entry_t m;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_MESSAGE, 0, &m));
    cr_assert_eq(m.over_rc, NSYS_EMSGSIZE, "nsys_net_send(4097 bytes) in on_message = %d (%s)",
                 m.over_rc, nsys_errname(m.over_rc));
    cr_assert(strstr(m.over_error, "payload exceeds maximum (4097 > 4096)") != NULL,
              "nsys_net_last_error() = \"%s\"", m.over_error);
    cr_assert_eq(m.reply_rc, 0);
    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_framing, net_send_over_the_maximum_from_outside_is_refused_and_the_connection_lives_on)
{
    uint16_t port;
    nsys_ref_t l = start_owned(MAXP, &port);
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "hi", 2, T_WAIT_MS), 0);
    t_net_entry_t open;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_OPEN, 0, &open));

    /* From outside the session the contract allows either an immediate
     * NSYS_EMSGSIZE or a request the session refuses with an ERROR event to
     * its owner; either way the text names both sizes. */
    int rc = nsys_net_send(rt, open.session, big_payload, sizeof(big_payload));
    cr_log_info("oversized nsys_net_send from outside: %s (%s)", nsys_errname(rc),
                rc != 0 ? nsys_net_last_error() : "refused by the session");
    if (rc == NSYS_EMSGSIZE) {
        cr_assert(strstr(nsys_net_last_error(), "payload exceeds maximum (4097 > 4096)") != NULL,
                  "nsys_net_last_error() = \"%s\"", nsys_net_last_error());
    } else {
        cr_assert_eq(rc, 0, "nsys_net_send(4097 bytes) from outside = %d (%s)", rc,
                     nsys_errname(rc));
        cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_ERROR, 1, T_WAIT_MS),
                  "the session neither refused the send at once nor sent an ERROR event");
        t_net_entry_t e;
        cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_ERROR, 0, &e));
        cr_assert_eq(e.code, NSYS_EMSGSIZE, "ERROR code %d (%s)", e.code, nsys_errname(e.code));
        cr_assert(strstr(e.text, "payload exceeds maximum (4097 > 4096)") != NULL,
                  "ERROR text \"%s\"", e.text);
        cr_assert_eq(e.session, open.session);
    }
    /* Nothing of it went out, and the stream is still in step. */
    rc = t_echo_once(fd, "still here", 10, T_WAIT_MS);
    cr_assert_eq(rc, 0, "the connection should survive a refused send: %d", rc);
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_CLOSED), 0);
    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_framing, a_header_claiming_4_GiB_closes_the_connection_without_allocating)
{
    uint16_t port;
    nsys_ref_t l = start_owned(0, &port); /* the default maximum, 1 MiB */
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "ok", 2, T_WAIT_MS), 0);
    size_t rss0 = t_rss_bytes();
    send_claim(fd, 0xFFFFFFFFu, 1024);
    assert_closed_by_server(fd);
    close(fd);
    size_t rss1 = t_rss_bytes();
    size_t growth = rss1 > rss0 ? rss1 - rss0 : 0;
    cr_assert_lt(growth, 16u << 20, "RSS grew by %zu KiB on a 4 GiB claim", growth >> 10);

    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_CLOSED, 1, T_WAIT_MS));
    char texts[1024];
    t_net_log_texts(&net_log, texts, sizeof(texts));
    cr_assert(t_net_log_has_text(&net_log, "payload exceeds maximum (4294967295 > 1048576)", NULL),
              "events: %s", texts);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_framing, a_frame_written_one_byte_at_a_time_arrives_whole)
{
    uint16_t port;
    start_echo(&port);
    t_connect_opts_t co = {.nodelay = true};
    int fd = t_tcp_connect_ex("127.0.0.1", port, T_WAIT_MS, &co);
    cr_assert_geq(fd, 0);
    uint8_t payload[200];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(255 - i);
    uint8_t frame[sizeof(payload) + 4];
    size_t n = t_frame_encode(frame, payload, sizeof(payload));
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(t_write_all(fd, frame + i, 1), 0);
        /* Shapes the traffic (one segment per byte), waits for nothing. */
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    uint8_t back[sizeof(payload)];
    size_t len = 0;
    int rc = t_read_frame(fd, back, sizeof(back), &len, T_WAIT_MS);
    cr_assert_eq(rc, 0, "no echo: %d", rc);
    cr_assert_eq(len, sizeof(payload));
    cr_assert_eq(memcmp(back, payload, len), 0);
    close(fd);
    finish();
}

#define NFRAMES 500

static size_t frame_len(int i)
{
    return (size_t)(i * 37) % 61; /* 0..60, zero-length frames included */
}

static uint8_t frame_byte(int i, size_t k)
{
    return (uint8_t)(i + 13 * k);
}

Test(tcp_framing, five_hundred_frames_in_one_write_are_echoed_in_order)
{
    uint16_t port;
    start_echo(&port);
    int fd = t_tcp_connect_local(port);
    size_t total = 0;
    for (int i = 0; i < NFRAMES; i++)
        total += 4 + frame_len(i);
    uint8_t *buf = malloc(total);
    cr_assert_not_null(buf);
    size_t off = 0;
    for (int i = 0; i < NFRAMES; i++) {
        uint8_t p[64];
        for (size_t k = 0; k < frame_len(i); k++)
            p[k] = frame_byte(i, k);
        off += t_frame_encode(buf + off, p, (uint32_t)frame_len(i));
    }
    cr_assert_eq(t_write_all(fd, buf, total), 0);
    free(buf);
    for (int i = 0; i < NFRAMES; i++) {
        uint8_t back[64];
        size_t len = 0;
        int rc = t_read_frame(fd, back, sizeof(back), &len, T_WAIT_MS);
        cr_assert_eq(rc, 0, "frame %d: %d", i, rc);
        cr_assert_eq(len, frame_len(i), "frame %d: %zu bytes, want %zu (out of order?)", i, len,
                     frame_len(i));
        for (size_t k = 0; k < len; k++)
            cr_assert_eq(back[k], frame_byte(i, k), "frame %d byte %zu", i, k);
    }
    close(fd);
    finish();
}

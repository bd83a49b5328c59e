/* tests/integration/test_tcp_echo.c — a TCP server as netsys/net.h states
 * it, reached by real sockets on 127.0.0.1: the built-in echo handler, the
 * callback facade (connect, message, disconnect, with the peer's address),
 * forwarding mode (an owner actor gets OPEN, MESSAGE, CLOSED and replies by
 * the session's ref), and sends to a session that is gone.
 *
 * The client side is common/net.h: blocking sockets with deadlines. Events
 * seen by actors and callbacks land in a t_net_log_t the test thread waits
 * on with a bound.
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

TestSuite(tcp_echo, .init = setup, .fini = t_tcp_teardown, .timeout = 120);

static nsys_ref_t start_listener(const nsys_listener_opts_t *o, nsys_listener_info_t *info)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    int rc = nsys_listener_start(rt, o, &ref, info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    cr_assert_neq(ref, NSYS_REF_NONE);
    cr_assert_neq(info->port, 0, "no bound port reported");
    return ref;
}

/* An owner probe that echoes every MESSAGE and a forwarding listener for
 * it; *port gets the listener's port. */
static nsys_ref_t start_owned(uint16_t *port)
{
    t_tcp_spawn_owner(true);
    nsys_listener_opts_t o = t_listener_opts(NULL);
    o.owner = t_probe_ref(&owner);
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    nsys_ref_t l = start_listener(&o, &info);
    *port = info.port;
    return l;
}

/* A connection whose session has echoed one frame, so its OPEN is logged. */
static int connect_echoed(uint16_t port)
{
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "x", 1, T_WAIT_MS), 0);
    return fd;
}

/* The first OPEN or CLOSED event, waited for with a bound. */
static t_net_entry_t first_event(uint32_t type)
{
    const char *name = type == NSYS_MSG_NET_OPEN ? "OPEN" : "CLOSED";
    cr_assert(t_net_log_wait(&net_log, type, 1, T_WAIT_MS), "no %s event", name);
    t_net_entry_t e;
    cr_assert(t_net_log_nth(&net_log, type, 0, &e), "no %s event", name);
    return e;
}

Test(tcp_echo, echoes_a_frame_through_the_built_in_echo_handler)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.port = 0;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    nsys_ref_t l = start_listener(&o, &info);

    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", info.port);
    cr_assert_str_eq(info.address, want, "start reported address \"%s\"", info.address);

    int fd = t_tcp_connect_local(info.port);
    const char msg[] = "hello, netsys";
    int rc = t_echo_once(fd, msg, sizeof(msg) - 1, T_WAIT_MS);
    cr_assert_eq(rc, 0, "echo round trip: %d (%s)", rc, strerror(rc < 0 ? -rc : 0));
    /* A second message on the same connection. */
    rc = t_echo_once(fd, "again", 5, T_WAIT_MS);
    cr_assert_eq(rc, 0, "second echo: %d", rc);

    nsys_listener_info_t now;
    cr_assert_eq(nsys_listener_info(rt, l, &now), 0);
    cr_assert_eq(now.sessions, 1);
    cr_assert_eq(now.accepted, 1);
    cr_assert_eq(now.port, info.port);
    cr_assert(now.accepting);

    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0, "the session table never emptied (%u)",
                        sessions_of(l));
    finish();
}

Test(tcp_echo, server_facade_reports_connect_message_and_disconnect_with_the_peer)
{
    net_log.echo = true;
    nsys_tcp_server_opts_t so = t_facade_opts(&net_log);
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_tcp_server_start(rt, &so, &l, &info);
    cr_assert_eq(rc, 0, "nsys_tcp_server_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    cr_assert_neq(info.port, 0);

    /* The callback table is copied: the caller's struct may go. */
    memset(&so, 0, sizeof(so));

    int fd = t_tcp_connect_local(info.port);
    uint16_t local = t_local_port(fd);
    rc = t_echo_once(fd, "ping", 4, T_WAIT_MS);
    cr_assert_eq(rc, 0, "echo through on_message/nsys_net_send: %d", rc);
    close(fd);

    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_CLOSED, 1, T_WAIT_MS),
              "on_disconnect never ran");
    t_net_entry_t c, m, d;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_OPEN, 0, &c), "on_connect never ran");
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_MESSAGE, 0, &m), "on_message never ran");
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_CLOSED, 0, &d));

    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", local);
    cr_assert_str_eq(c.peer, want, "on_connect peer \"%s\", want \"%s\"", c.peer, want);
    cr_assert_neq(c.session, NSYS_REF_NONE);
    cr_assert_eq(m.session, c.session, "on_message for another session");
    cr_assert_eq(d.session, c.session, "on_disconnect for another session");
    cr_assert_eq(m.size, 4);
    cr_assert_eq(memcmp(m.data, "ping", 4), 0);
    cr_assert_eq(m.reply_rc, 0, "nsys_net_send inside on_message: %s", nsys_strerror(m.reply_rc));
    cr_assert_eq(d.code, 0, "a peer's orderly close should be reason 0, got %d (%s)", d.code,
                 nsys_errname(d.code));
    cr_assert(c.t_ns <= m.t_ns && m.t_ns <= d.t_ns, "callbacks out of order");
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_OPEN), 1);
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_MESSAGE), 1);
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_ERROR), 0);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
    cr_assert_eq(t_net_log_count(&net_log, NSYS_MSG_NET_CLOSED), 1, "on_disconnect ran twice");
}

Test(tcp_echo, owner_mode_forwards_open_message_closed_and_its_replies_reach_the_client)
{
    uint16_t port;
    nsys_ref_t l = start_owned(&port);

    int fd = t_tcp_connect_local(port);
    uint16_t local = t_local_port(fd);
    const char msg[] = "forward me";
    int rc = t_echo_once(fd, msg, sizeof(msg) - 1, T_WAIT_MS);
    cr_assert_eq(rc, 0, "the owner's reply never reached the client: %d", rc);

    t_net_entry_t open = first_event(NSYS_MSG_NET_OPEN), m;
    cr_assert(open.event_ok, "OPEN's payload is %zu bytes, want sizeof(nsys_net_event_t) = %zu",
              open.size, sizeof(nsys_net_event_t));
    cr_assert_neq(open.from, NSYS_REF_NONE);
    cr_assert_eq(open.session, open.from, "event.session should be the sender");
    cr_assert_eq(open.listener, l, "event.listener");
    cr_assert_eq(open.code, 0);
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", local);
    cr_assert_str_eq(open.peer, want);

    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_MESSAGE, 0, &m));
    cr_assert_eq(m.from, open.from, "MESSAGE from another actor than OPEN");
    cr_assert_eq(m.size, sizeof(msg) - 1);
    cr_assert_eq(memcmp(m.data, msg, sizeof(msg) - 1), 0);
    cr_assert_eq(m.reply_rc, 0, "nsys_net_send from the owner: %s", nsys_strerror(m.reply_rc));

    close(fd);
    t_net_entry_t cl = first_event(NSYS_MSG_NET_CLOSED);
    cr_assert(cl.event_ok);
    cr_assert_eq(cl.from, open.from);
    cr_assert_eq(cl.code, 0, "clean close should be code 0, got %d (%s)", cl.code,
                 nsys_errname(cl.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, open.session), "the session outlived its connection");
    finish();
}

Test(tcp_echo, a_send_to_a_session_that_is_gone_returns_enoactor)
{
    uint16_t port;
    nsys_ref_t l = start_owned(&port);

    int fd = connect_echoed(port);
    t_net_entry_t open = first_event(NSYS_MSG_NET_OPEN);
    nsys_ref_t session = open.from;

    /* While it lives, a send from outside the runtime reaches the client. */
    cr_assert_eq(nsys_net_send(rt, session, "pushed", 6), 0);
    uint8_t buf[16];
    size_t len = 0;
    cr_assert_eq(t_read_frame(fd, buf, sizeof(buf), &len, T_WAIT_MS), 0);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(buf, "pushed", 6), 0);
    /* ... and so does a buffer, moved without a copy. */
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("buffer", 6, &b), 0);
    cr_assert_eq(nsys_net_send_buf(rt, session, b), 0);
    cr_assert_eq(t_read_frame(fd, buf, sizeof(buf), &len, T_WAIT_MS), 0);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(buf, "buffer", 6), 0);

    close(fd);
    first_event(NSYS_MSG_NET_CLOSED);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, session));

    int rc = nsys_net_send(rt, session, "late", 4);
    cr_assert_eq(rc, NSYS_ENOACTOR, "nsys_net_send to a gone session: %d (%s)", rc,
                 nsys_errname(rc));
    rc = nsys_net_close(rt, session);
    cr_assert_eq(rc, NSYS_ENOACTOR, "nsys_net_close to a gone session: %d", rc);
    rc = nsys_net_abort(rt, session);
    cr_assert_eq(rc, NSYS_ENOACTOR, "nsys_net_abort to a gone session: %d", rc);
    nsys_buf_t *late = NULL;
    cr_assert_eq(nsys_buf_from("late", 4, &late), 0);
    rc = nsys_net_send_buf(rt, session, late);
    cr_assert_eq(rc, NSYS_ENOACTOR, "nsys_net_send_buf to a gone session: %d", rc);
    nsys_buf_unref(late); /* a failed send leaves the reference with the caller */
    finish();
}

Test(tcp_echo, net_close_from_outside_ends_the_session_gracefully)
{
    uint16_t port;
    nsys_ref_t l = start_owned(&port);

    int fd = connect_echoed(port);
    t_net_entry_t open = first_event(NSYS_MSG_NET_OPEN);

    /* A send queued before the close is flushed before the FIN. */
    cr_assert_eq(nsys_net_send(rt, open.session, "bye", 3), 0);
    cr_assert_eq(nsys_net_close(rt, open.session), 0);
    uint8_t buf[8];
    size_t len = 0;
    cr_assert_eq(t_read_frame(fd, buf, sizeof(buf), &len, T_WAIT_MS), 0, "lost the last send");
    cr_assert_eq(len, 3);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert_eq(rc, 0, "want an orderly FIN after nsys_net_close, got %d", rc);
    close(fd);

    t_net_entry_t cl = first_event(NSYS_MSG_NET_CLOSED);
    cr_assert_eq(cl.code, 0, "graceful close should be exit reason 0, got %d (%s)", cl.code,
                 nsys_errname(cl.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_echo, a_peer_that_resets_ends_its_session_with_econnreset)
{
    uint16_t port;
    nsys_ref_t l = start_owned(&port);

    int fd = connect_echoed(port);
    struct linger lg = {1, 0}; /* close() sends RST */
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);

    t_net_entry_t cl = first_event(NSYS_MSG_NET_CLOSED);
    cr_assert_eq(cl.code, UV_ECONNRESET, "CLOSED code %d (%s), want UV_ECONNRESET", cl.code,
                 nsys_errname(cl.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

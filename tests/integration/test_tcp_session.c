/* tests/integration/test_tcp_session.c — the session handler interface of
 * netsys/net.h on live connections: on_open sees the listener's
 * handler_arg, the session's ref, peer and listener, and can refuse the
 * connection (no on_close then); on_info gets other messages sent to the
 * session; handler_arg is retained once for the listener and once per
 * session and every retain is released; nsys_net_abort ends a session with
 * NSYS_ECANCELED; the discard handler answers nothing; the handler
 * registry knows the built-ins by their config names.
 */
#include "common/net.h"
#include "common/probe.h"
#include "common/tcp_fixture.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

static void setup(void)
{
    t_tcp_setup(NSYS_LOG_ERROR, true);
}

TestSuite(tcp_session, .init = setup, .fini = t_tcp_teardown, .timeout = 120);

/* ---- a handler that records its callbacks ---------------------------------------- */

#define INFO_TYPE (NSYS_MSG_USER + 77u)

typedef struct h_log {
    pthread_mutex_t mu;
    bool refuse; /* on_open returns NSYS_ECANCELED */
    int opens, closes, infos, messages;
    void *open_arg;
    nsys_ref_t self, listener;
    bool ctx_matches; /* nsys_self(nsys_session_ctx(s)) == nsys_session_ref(s) */
    bool conn_present;
    char peer[NSYS_NET_PEER_MAX];
    uint32_t info_type;
    nsys_ref_t info_from;
    int close_reason;
    char close_text[256];
    int send_before_close, send_after_close;
} h_log_t;

static h_log_t hlog;

static void hlog_begin(void)
{
    memset(&hlog, 0, sizeof(hlog));
    pthread_mutex_init(&hlog.mu, NULL);
}

static int hlog_get(const int *field)
{
    pthread_mutex_lock(&hlog.mu);
    int v = *field;
    pthread_mutex_unlock(&hlog.mu);
    return v;
}

static nsys_ref_t hlog_self(void)
{
    pthread_mutex_lock(&hlog.mu);
    nsys_ref_t r = hlog.self;
    pthread_mutex_unlock(&hlog.mu);
    return r;
}

static int h_open(nsys_session_t *s, void *state, void *arg)
{
    *(void **)state = arg;
    pthread_mutex_lock(&hlog.mu);
    hlog.opens++;
    hlog.open_arg = arg;
    hlog.self = nsys_session_ref(s);
    hlog.listener = nsys_session_listener(s);
    hlog.ctx_matches = nsys_self(nsys_session_ctx(s)) == nsys_session_ref(s);
    hlog.conn_present = nsys_session_conn(s) != NULL;
    t_copy_text(hlog.peer, sizeof(hlog.peer), nsys_session_peer(s));
    bool refuse = hlog.refuse;
    pthread_mutex_unlock(&hlog.mu);
    return refuse ? NSYS_ECANCELED : 0;
}

static bool is_command(nsys_buf_t *msg, const char *cmd)
{
    return nsys_buf_len(msg) == strlen(cmd) && memcmp(nsys_buf_data(msg), cmd, strlen(cmd)) == 0;
}

/* Echoes, except for two commands: "close" sends "bye", closes gracefully
 * and tries one more send; "fail" returns UV_EPROTO. */
static int h_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    (void)state;
    pthread_mutex_lock(&hlog.mu);
    hlog.messages++;
    pthread_mutex_unlock(&hlog.mu);
    if (is_command(msg, "fail"))
        return UV_EPROTO;
    if (is_command(msg, "close")) {
        int rc = nsys_session_send(s, "bye", 3);
        nsys_session_close(s);
        int after = nsys_session_send(s, "late", 4);
        pthread_mutex_lock(&hlog.mu);
        hlog.send_before_close = rc;
        hlog.send_after_close = after;
        pthread_mutex_unlock(&hlog.mu);
        return 0;
    }
    return nsys_session_send(s, nsys_buf_data(msg), nsys_buf_len(msg));
}

static int h_info(nsys_session_t *s, void *state, nsys_msg_t *msg)
{
    (void)state;
    pthread_mutex_lock(&hlog.mu);
    hlog.infos++;
    hlog.info_type = msg->type;
    hlog.info_from = msg->from;
    pthread_mutex_unlock(&hlog.mu);
    /* Tell the client, so the test knows when it ran. */
    return nsys_session_send(s, msg->data, msg->size);
}

static void h_close(nsys_session_t *s, void *state, int reason, const char *text)
{
    (void)s;
    (void)state;
    pthread_mutex_lock(&hlog.mu);
    hlog.closes++;
    hlog.close_reason = reason;
    t_copy_text(hlog.close_text, sizeof(hlog.close_text), text);
    pthread_mutex_unlock(&hlog.mu);
}

static const nsys_session_handler_t recording = {
    .name = "test.recording",
    .state_size = sizeof(void *),
    .on_open = h_open,
    .on_message = h_message,
    .on_info = h_info,
    .on_close = h_close,
};

static int arg_token; /* its address is the handler_arg */

Test(tcp_session, on_open_sees_the_arg_the_ref_the_peer_and_the_listener)
{
    hlog_begin();
    nsys_listener_opts_t o = t_listener_opts(&recording);
    o.handler_arg = &arg_token;
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    uint16_t local = t_local_port(fd);
    cr_assert_eq(t_echo_once(fd, "hello", 5, T_WAIT_MS), 0);

    pthread_mutex_lock(&hlog.mu);
    h_log_t seen = hlog;
    pthread_mutex_unlock(&hlog.mu);
    cr_assert_eq(seen.opens, 1);
    cr_assert_eq(seen.open_arg, &arg_token, "on_open got another arg");
    cr_assert_neq(seen.self, NSYS_REF_NONE);
    cr_assert_eq(seen.listener, l, "nsys_session_listener");
    cr_assert(seen.ctx_matches, "nsys_session_ctx is not the session's actor");
    cr_assert(seen.conn_present, "nsys_session_conn is NULL in on_open");
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", local);
    cr_assert_str_eq(seen.peer, want);

    close(fd);
    T_ASSERT_EVENTUALLY(hlog_get(&hlog.closes) == 1, "on_close never ran");
    cr_assert_eq(hlog_get(&hlog.close_reason), 0, "a peer's close is reason 0, got %d",
                 hlog_get(&hlog.close_reason));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, seen.self));
    finish();
    pthread_mutex_destroy(&hlog.mu);
}

Test(tcp_session, a_connection_refused_by_on_open_is_aborted_without_on_close)
{
    hlog_begin();
    hlog.refuse = true;
    nsys_listener_opts_t o = t_listener_opts(&recording);
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(rc == 0 || rc == -ECONNRESET, "a refused connection stayed open: %d", rc);
    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    cr_assert_eq(hlog_get(&hlog.opens), 1);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, hlog_self()));
    cr_assert_eq(hlog_get(&hlog.closes), 0, "on_close ran for a refused connection");
    finish();
    cr_assert_eq(hlog_get(&hlog.closes), 0, "on_close ran for a refused connection");
    pthread_mutex_destroy(&hlog.mu);
}

Test(tcp_session, on_info_gets_other_messages_sent_to_the_session)
{
    hlog_begin();
    nsys_listener_opts_t o = t_listener_opts(&recording);
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "up", 2, T_WAIT_MS), 0);
    nsys_ref_t session = hlog_self();

    cr_assert_eq(nsys_send(rt, session, INFO_TYPE, "note", 4), 0);
    uint8_t buf[8];
    size_t len = 0;
    cr_assert_eq(t_read_frame(fd, buf, sizeof(buf), &len, T_WAIT_MS), 0, "on_info never sent");
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(buf, "note", 4), 0);
    cr_assert_eq(hlog_get(&hlog.infos), 1);
    pthread_mutex_lock(&hlog.mu);
    uint32_t type = hlog.info_type;
    nsys_ref_t from = hlog.info_from;
    pthread_mutex_unlock(&hlog.mu);
    cr_assert_eq(type, INFO_TYPE);
    cr_assert_eq(from, NSYS_REF_NONE, "sent from outside the runtime");
    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
    pthread_mutex_destroy(&hlog.mu);
}

Test(tcp_session, a_graceful_close_in_a_handler_flushes_what_was_queued_and_refuses_later_sends)
{
    hlog_begin();
    nsys_listener_opts_t o = t_listener_opts(&recording);
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_send_frame(fd, "close", 5), 0);
    uint8_t buf[8];
    size_t len = 0;
    int rc = t_read_frame(fd, buf, sizeof(buf), &len, T_WAIT_MS);
    cr_assert_eq(rc, 0, "the send queued before nsys_session_close was lost: %d", rc);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(buf, "bye", 3), 0);
    rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert_eq(rc, 0, "want an orderly FIN (and nothing after \"bye\"), got %d", rc);
    close(fd);
    T_ASSERT_EVENTUALLY(hlog_get(&hlog.closes) == 1);
    cr_assert_eq(hlog_get(&hlog.send_before_close), 0);
    cr_assert_eq(hlog_get(&hlog.send_after_close), NSYS_ECANCELED,
                 "nsys_session_send after nsys_session_close = %d (%s)",
                 hlog_get(&hlog.send_after_close), nsys_errname(hlog_get(&hlog.send_after_close)));
    cr_assert_eq(hlog_get(&hlog.close_reason), 0, "graceful close is reason 0, got %d",
                 hlog_get(&hlog.close_reason));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
    pthread_mutex_destroy(&hlog.mu);
}

Test(tcp_session, a_non_zero_return_from_on_message_aborts_with_that_reason)
{
    hlog_begin();
    nsys_listener_opts_t o = t_listener_opts(&recording);
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "ok", 2, T_WAIT_MS), 0);
    cr_assert_eq(t_send_frame(fd, "fail", 4), 0);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(rc == 0 || rc == -ECONNRESET, "not closed after on_message failed: %d", rc);
    close(fd);
    T_ASSERT_EVENTUALLY(hlog_get(&hlog.closes) == 1, "on_close never ran");
    cr_assert_eq(hlog_get(&hlog.close_reason), UV_EPROTO, "on_close reason %d (%s)",
                 hlog_get(&hlog.close_reason), nsys_errname(hlog_get(&hlog.close_reason)));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
    pthread_mutex_destroy(&hlog.mu);
}

/* ---- handler_arg reference counting ------------------------------------------------ */

static atomic_int retains, releases;

static void arg_retain(void *arg)
{
    if (arg == &arg_token)
        atomic_fetch_add(&retains, 1);
}

static void arg_release(void *arg)
{
    if (arg == &arg_token)
        atomic_fetch_add(&releases, 1);
}

Test(tcp_session, handler_arg_is_retained_by_the_listener_and_each_session_and_all_released)
{
    atomic_store(&retains, 0);
    atomic_store(&releases, 0);
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.handler_arg = &arg_token;
    o.handler_arg_retain = arg_retain;
    o.handler_arg_release = arg_release;
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    T_ASSERT_EVENTUALLY(atomic_load(&retains) == 1, "the listener retains once; retains = %d",
                        atomic_load(&retains));
    enum { N = 5 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = t_tcp_connect_local(port);
        cr_assert_eq(t_echo_once(fds[i], "r", 1, T_WAIT_MS), 0);
    }
    cr_assert_eq(atomic_load(&retains), 1 + N, "retains %d, want %d", atomic_load(&retains), 1 + N);
    cr_assert_eq(atomic_load(&releases), 0);
    for (int i = 0; i < 2; i++)
        close(fds[i]);
    T_ASSERT_EVENTUALLY(atomic_load(&releases) == 2, "releases %d after 2 sessions ended",
                        atomic_load(&releases));
    cr_assert_eq(nsys_listener_stop(rt, l), 0);
    for (int i = 2; i < N; i++) {
        cr_assert(t_closed_by_peer(t_wait_closed(fds[i], T_WAIT_MS)));
        close(fds[i]);
    }
    T_ASSERT_EVENTUALLY(atomic_load(&releases) == 1 + N, "releases %d, retains %d",
                        atomic_load(&releases), atomic_load(&retains));
    finish();
    cr_assert_eq(atomic_load(&releases), atomic_load(&retains));
}

/* ---- abort, discard, registry --------------------------------------------------------- */

Test(tcp_session, net_abort_ends_the_session_at_once_with_ecanceled)
{
    t_tcp_spawn_owner(true);
    nsys_listener_opts_t o = t_listener_opts(NULL);
    o.owner = t_probe_ref(&owner);
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    cr_assert_eq(t_echo_once(fd, "x", 1, T_WAIT_MS), 0);
    t_net_entry_t open;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_OPEN, 0, &open));

    cr_assert_eq(nsys_net_abort(rt, open.session), 0);
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(rc == 0 || rc == -ECONNRESET, "not closed by abort: %d", rc);
    close(fd);
    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_CLOSED, 1, T_WAIT_MS));
    t_net_entry_t cl;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_CLOSED, 0, &cl));
    cr_assert_eq(cl.code, NSYS_ECANCELED, "CLOSED code %d (%s), want NSYS_ECANCELED", cl.code,
                 nsys_errname(cl.code));
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, open.session));
    finish();
}

Test(tcp_session, the_discard_handler_answers_nothing)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_discard);
    uint16_t port;
    nsys_ref_t l = t_tcp_listen(&o, &port);
    int fd = t_tcp_connect_local(port);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(t_send_frame(fd, "dropped", 7), 0);
    /* Our FIN ends the session; everything before it was read, so what
     * comes back before the server's FIN is all it ever sent. */
    cr_assert_eq(shutdown(fd, SHUT_WR), 0);
    uint8_t b;
    size_t got = 0;
    int rc = t_read_exact(fd, &b, 1, T_WAIT_MS, &got);
    cr_assert_eq(rc, T_NET_EOF, "want EOF with nothing before it, got %d after %zu bytes", rc, got);
    close(fd);
    T_ASSERT_EVENTUALLY(sessions_of(l) == 0);
    finish();
}

Test(tcp_session, the_registry_knows_the_built_ins_and_refuses_a_taken_name)
{
    cr_assert_eq(nsys_net_find_handler("echo"), &nsys_handler_echo);
    cr_assert_eq(nsys_net_find_handler("discard"), &nsys_handler_discard);
    cr_assert_eq(nsys_net_find_handler("log"), &nsys_handler_log);
    cr_assert_null(nsys_net_find_handler("test.no-such-handler"));
    cr_assert_eq(nsys_net_register_handler("test.recording", &recording), 0);
    cr_assert_eq(nsys_net_find_handler("test.recording"), &recording);
    cr_assert_eq(nsys_net_register_handler("test.recording", &recording), NSYS_EEXIST);
    cr_assert_eq(nsys_net_register_handler("echo", &recording), NSYS_EEXIST);
    cr_assert_eq(nsys_net_find_handler("echo"), &nsys_handler_echo);
    finish();
}

/* actors/connection.c — the resilient client (connection actor).
 *
 * One actor owns at most one live connection and keeps its identity through
 * every reconnect: the dial, the connection and the retry timer are renewed,
 * the actor, its outbox and its counters are not. A link failure is an event,
 * not an exit.
 *
 * The outbox is a ring of (message, number, end offset). A message is handed
 * to the connection as soon as there is one; its end offset is the
 * connection's cumulative queued-byte count after it. Once the connection's
 * sent-byte count passes it, the message is written and leaves the ring. When
 * a connection ends, every message still in the ring goes again, in order, on
 * the next one. Failures are reported one by one, so sent = written + failed.
 *
 * Heartbeat (length codec only): after heartbeat_ms without receiving a
 * message the client sends a zero-length frame; any message back (netsys's
 * echo handler answers with the same empty frame) proves the link alive.
 * With none within heartbeat_timeout_ms the link is declared dead and the
 * client reconnects. With the heartbeat on, zero-length frames from the
 * server are taken as pongs, not delivered.
 *
 * max_attempts counts consecutive failed connection attempts; losing a link
 * counts as one only if it went down before it stayed up for the backoff's
 * reset period (otherwise the count starts over).
 *
 * The first redial after a lost link waits a uniformly random part of the
 * backoff's current delay (full jitter), the later ones the usual band.
 * Not for: servers (listener.c, session.c). */
#include <netsys/client.h>
#include <netsys/log.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/internal.h"

#define MSG_RETRY 443u     /* private: the backoff delay is over */
#define MSG_HEARTBEAT 444u /* private: heartbeat tick */

typedef struct outmsg {
    nsys_buf_t *buf;
    uint64_t id;
    uint64_t end; /* 0: not on the current connection */
} outmsg_t;

/* Client options that own their strings and stop_on list (copies), for
 * the start arguments and the actor alike. */
typedef struct owned_opts {
    nsys_client_opts_t o; /* name, host and stop_on point at the copies below */
    char *name, *host;
    int *stop_on;
} owned_opts_t;

static void owned_opts_free(owned_opts_t *w)
{
    free(w->name);
    free(w->host);
    free(w->stop_on);
    w->name = w->host = NULL;
    w->stop_on = NULL;
}

/* Copies `src` into `w` (a NULL name becomes `default_name`, which may be
 * NULL too). NSYS_ENOMEM, with nothing kept, when out of memory. */
static int owned_opts_copy(owned_opts_t *w, const nsys_client_opts_t *src, const char *default_name)
{
    const char *name = src->name != NULL ? src->name : default_name;
    w->o = *src;
    w->name = name != NULL ? strdup(name) : NULL;
    w->host = strdup(src->host);
    w->stop_on = src->nstop_on > 0 ? malloc(src->nstop_on * sizeof(int)) : NULL;
    if (w->host == NULL || (name != NULL && w->name == NULL) ||
        (src->nstop_on > 0 && w->stop_on == NULL)) {
        owned_opts_free(w);
        return NSYS_ENOMEM;
    }
    if (src->nstop_on > 0)
        memcpy(w->stop_on, src->stop_on, src->nstop_on * sizeof(int));
    w->o.name = w->name;
    w->o.host = w->host;
    w->o.stop_on = w->stop_on;
    return 0;
}

typedef struct client {
    nsys_ctx_t *ctx;
    nsys_runtime_t *rt;
    owned_opts_t own; /* own.o: the options, defaults applied */
    nsys_client_state_t state;
    nsys_dial_t *dial;
    nsys_conn_t *conn;
    nsys_backoff_t bo;
    uint64_t backoff_ms;
    uint32_t fails; /* consecutive failed connection attempts (brief links included) */
    uint64_t up_since_ms; /* when the current link came up */
    char peer[NSYS_NET_PEER_MAX];
    /* outbox ring */
    outmsg_t *ring;
    size_t cap, head, count, bytes;
    size_t handed; /* ring entries [head, head+handed) are on the connection */
    /* subscribers */
    nsys_ref_t *subs;
    size_t nsubs, capsubs;
    /* heartbeat */
    uint64_t last_rx_ms, ping_at_ms;
    uint8_t stopping;
    nsys_client_stats_t st;
} client_t;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

const char *nsys_client_state_name(nsys_client_state_t s)
{
    switch (s) {
    case NSYS_CLIENT_IDLE:
        return "idle";
    case NSYS_CLIENT_CONNECTING:
        return "connecting";
    case NSYS_CLIENT_UP:
        return "up";
    case NSYS_CLIENT_BACKOFF:
        return "backoff";
    }
    return "?";
}

/* ---- events ------------------------------------------------------------------------ */

static void emit(client_t *c, nsys_client_event_kind_t kind, int code, uint64_t msg_id,
                 const char *text)
{
    nsys_client_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.client = nsys_self(c->ctx);
    ev.kind = kind;
    ev.code = code;
    ev.attempt = kind == NSYS_CLIENT_EV_CONNECTED ? c->fails + 1 : c->fails;
    ev.delay_ms = c->backoff_ms;
    ev.msg_id = msg_id;
    snprintf(ev.peer, sizeof ev.peer, "%s", c->peer);
    snprintf(ev.message, sizeof ev.message, "%s", text != NULL ? text : "");
    if (c->own.o.on_event != NULL)
        c->own.o.on_event(c->rt, &ev, c->own.o.user_data);
    if (c->own.o.owner != NSYS_REF_NONE)
        nsys_send(c->rt, c->own.o.owner, NSYS_MSG_CLIENT_EVENT, &ev, sizeof ev);
    for (size_t i = 0; i < c->nsubs;) {
        if (nsys_send(c->rt, c->subs[i], NSYS_MSG_CLIENT_EVENT, &ev, sizeof ev) == NSYS_ENOACTOR)
            c->subs[i] = c->subs[--c->nsubs]; /* gone: forget it */
        else
            i++;
    }
}

/* ---- the outbox -------------------------------------------------------------------------- */

static outmsg_t *at(client_t *c, size_t i) { return &c->ring[(c->head + i) % c->cap]; }

static void fail_msg(client_t *c, outmsg_t *m, int code, const char *why)
{
    c->st.failed++;
    emit(c, NSYS_CLIENT_EV_SEND_FAILED, code, m->id, why);
    nsys_buf_unref(m->buf);
    m->buf = NULL;
}

static void pop_front(client_t *c)
{
    outmsg_t *m = at(c, 0);
    c->bytes -= nsys_buf_len(m->buf);
    c->head = (c->head + 1) % c->cap;
    c->count--;
}

/* Takes entry i (not on the connection) out of the ring. */
static outmsg_t remove_at(client_t *c, size_t i)
{
    outmsg_t m = *at(c, i);
    for (; i + 1 < c->count; i++)
        *at(c, i) = *at(c, i + 1);
    c->count--;
    c->bytes -= nsys_buf_len(m.buf);
    return m;
}

/* Hands the messages not yet on the connection to it, in order, while its
 * write queue is below write_high: past that the rest waits in the outbox
 * (where drop_oldest can still drop it) and goes once the socket drains
 * (flush_hook). So the client never queues more than about write_high plus
 * one message on a connection, far from its write_limit. */
static void hand_over(client_t *c)
{
    if (c->state != NSYS_CLIENT_UP || c->conn == NULL)
        return;
    while (c->handed < c->count &&
           nsys_conn_write_queued(c->conn) < c->own.o.transport.write_high) {
        outmsg_t *m = at(c, c->handed);
        int rc = nsys_conn_send_buf(c->conn, nsys_buf_ref(m->buf));
        if (rc != 0) {
            nsys_buf_unref(m->buf); /* the extra reference */
            if (rc == NSYS_ECANCELED || rc == NSYS_ENOBUFS)
                return; /* the connection is ending: it goes on the next one */
            /* Refused for good (no memory to queue it): report it, drop it. */
            char why[NSYS_NET_MESSAGE_MAX];
            snprintf(why, sizeof why, "cannot queue the message: %s", uv_strerror(rc));
            outmsg_t dead = remove_at(c, c->handed);
            fail_msg(c, &dead, rc, why);
            continue;
        }
        m->end = nsys_conn_bytes_queued_total(c->conn);
        c->handed++;
    }
}

/* Retires the messages the kernel has taken. */
static void settle(client_t *c)
{
    if (c->conn == NULL)
        return;
    uint64_t sent = nsys_conn_bytes_sent(c->conn);
    while (c->handed > 0 && at(c, 0)->end <= sent) {
        nsys_buf_t *b = at(c, 0)->buf;
        pop_front(c);
        nsys_buf_unref(b);
        c->handed--;
        c->st.written++;
    }
}

static void outbox_add(client_t *c, nsys_buf_t *b)
{
    uint64_t id = ++c->st.sent;
    size_t len = nsys_buf_len(b);
    outmsg_t m = {.buf = b, .id = id};
    if (len > c->own.o.transport.max_payload) {
        char text[NSYS_NET_MESSAGE_MAX];
        snprintf(text, sizeof text, "payload exceeds maximum (%zu > %zu)", len,
                 c->own.o.transport.max_payload);
        fail_msg(c, &m, NSYS_EMSGSIZE, text);
        return;
    }
    if (len > c->own.o.outbox_max_bytes) { /* would empty the outbox and still not fit */
        char text[NSYS_NET_MESSAGE_MAX];
        snprintf(text, sizeof text, "message of %zu bytes is larger than the outbox (%zu bytes)",
                 len, c->own.o.outbox_max_bytes);
        fail_msg(c, &m, NSYS_ENOSPC, text);
        return;
    }
    while (c->count >= c->own.o.outbox_max_messages || c->bytes + len > c->own.o.outbox_max_bytes) {
        /* Only a message not yet on the connection can be dropped. */
        if (c->own.o.overflow != NSYS_OUTBOX_DROP_OLDEST || c->handed >= c->count) {
            char text[NSYS_NET_MESSAGE_MAX];
            snprintf(text, sizeof text, "outbox full (%zu messages, %zu bytes; limits %zu, %zu)",
                     c->count, c->bytes, c->own.o.outbox_max_messages, c->own.o.outbox_max_bytes);
            fail_msg(c, &m, NSYS_ENOSPC, text);
            return;
        }
        outmsg_t old = remove_at(c, c->handed);
        fail_msg(c, &old, NSYS_ENOSPC, "dropped from a full outbox (drop_oldest)");
    }
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        outmsg_t *r = malloc(cap * sizeof *r);
        if (r == NULL) {
            fail_msg(c, &m, NSYS_ENOMEM, "out of memory for the outbox");
            return;
        }
        for (size_t i = 0; i < c->count; i++)
            r[i] = *at(c, i);
        free(c->ring);
        c->ring = r;
        c->cap = cap;
        c->head = 0;
    }
    *at(c, c->count) = m;
    c->count++;
    c->bytes += len;
    hand_over(c);
}

/* ---- connecting and backing off ------------------------------------------------------------------ */

static void start_connect(client_t *c);

static bool is_permanent(const client_t *c, int code)
{
    for (size_t i = 0; i < c->own.o.nstop_on; i++)
        if (c->own.stop_on[i] == code)
            return true;
    return false;
}

/* A failed dial (`attempt`) or a lost link: back off, or give up. A link
 * lost before it stayed up for the backoff's reset period counts as a
 * failed attempt too (a server that accepts and drops at once must not keep
 * a client with max_attempts forever); one that stayed up longer starts the
 * count over. */
static void failed(client_t *c, int code, const char *text, bool attempt)
{
    c->st.failures++;
    bool counts = attempt || now_ms() - c->up_since_ms < c->bo.opts.reset_after_ms;
    if (counts)
        c->fails++;
    else
        c->fails = 0;
    nsys_backoff_failure(&c->bo);
    bool out_of_attempts = counts && c->own.o.max_attempts > 0 && c->fails >= c->own.o.max_attempts;
    if (is_permanent(c, code) || out_of_attempts) {
        char why[NSYS_NET_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s: %s", out_of_attempts ? "attempts exhausted" : "stop_on error",
                 text);
        NSYS_LOG(NSYS_LOG_WARN, "client %s: giving up after %u failed attempt%s: %s", c->own.name,
                 c->fails, c->fails == 1 ? "" : "s", why);
        emit(c, NSYS_CLIENT_EV_GAVE_UP, code, 0, why);
        nsys_exit(c->ctx, code != 0 ? code : NSYS_EFAILED);
        return;
    }
    /* The first redial after a lost link draws from all of [0, delay]: the
     * clients of a server that went away all lose it at once, and in the
     * symmetric band (+-20 %) they would come back together. */
    c->backoff_ms = attempt ? nsys_backoff_next(&c->bo) : nsys_backoff_next_full_jitter(&c->bo);
    c->st.attempt = c->fails;
    c->st.backoff_ms = c->backoff_ms;
    c->state = NSYS_CLIENT_BACKOFF;
    NSYS_LOG(NSYS_LOG_INFO, "client %s: %s; retrying in %llu ms (%u failed attempt%s)", c->own.name,
             text, (unsigned long long)c->backoff_ms, c->fails, c->fails == 1 ? "" : "s");
    emit(c, NSYS_CLIENT_EV_RETRYING, code, 0, text);
    int rc = nsys_send_after(c->ctx, nsys_self(c->ctx), c->backoff_ms, MSG_RETRY, NULL, 0, NULL);
    if (rc != 0) /* without the timer the client would wait forever: fail instead */
        nsys_exit(c->ctx, rc);
}

static bool conn_enter(void *ud) { return nsys_io_enter(((client_t *)ud)->ctx); }
static void conn_leave(void *ud) { nsys_io_leave(((client_t *)ud)->ctx); }

static int conn_message(void *ud, nsys_conn_t *conn, nsys_buf_t *msg)
{
    (void)conn;
    client_t *c = ud;
    c->last_rx_ms = now_ms();
    c->ping_at_ms = 0;
    if (c->own.o.heartbeat_ms > 0 && nsys_buf_len(msg) == 0 &&
        c->own.o.transport.codec == NSYS_CODEC_LENGTH) {
        nsys_buf_unref(msg); /* a pong */
        return 0;
    }
    c->st.received++;
    if (c->own.o.on_message != NULL) {
        c->own.o.on_message(c->rt, nsys_self(c->ctx), nsys_buf_data(msg), nsys_buf_len(msg),
                        c->own.o.user_data);
        nsys_buf_unref(msg);
    } else if (c->own.o.owner == NSYS_REF_NONE ||
               nsys_send_buf(c->rt, c->own.o.owner, NSYS_MSG_NET_MESSAGE, msg) != 0) {
        nsys_buf_unref(msg);
    }
    return 0;
}

static void conn_close(void *ud, nsys_conn_t *conn, nsys_conn_end_t end, int code, const char *text)
{
    client_t *c = ud;
    settle(c); /* what the kernel took before the end counts as written */
    nsys_conn_free(conn);
    c->conn = NULL;
    c->handed = 0; /* the rest goes again on the next connection */
    for (size_t i = 0; i < c->count; i++)
        at(c, i)->end = 0;
    if (end != NSYS_CONN_END_ERROR)
        code = UV_EOF;
    emit(c, NSYS_CLIENT_EV_DISCONNECTED, code, 0, text);
    if (c->stopping) {
        nsys_exit(c->ctx, NSYS_REASON_NORMAL);
        return;
    }
    failed(c, code, text, false);
}

static const nsys_conn_events_t client_events = {
    .enter = conn_enter,
    .leave = conn_leave,
    .on_message = conn_message,
    .on_close = conn_close,
};

static void dial_done(void *ud, int status, int fd, const char *text)
{
    client_t *c = ud;
    c->dial = NULL;
    if (!nsys_io_enter(c->ctx)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (status != 0) {
        failed(c, status, text, true);
        nsys_io_leave(c->ctx);
        return;
    }
    int rc = nsys_conn_open_fd(nsys_ctx_loop(c->ctx), fd, &c->own.o.transport, &client_events, c,
                               &c->conn);
    if (rc != 0) {
        close(fd);
        char why[NSYS_NET_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s: cannot use the connection: %s", text, uv_strerror(rc));
        failed(c, rc, why, true);
        nsys_io_leave(c->ctx);
        return;
    }
    nsys_conn_set_owner(c->conn, c->rt, nsys_self(c->ctx));
    snprintf(c->peer, sizeof c->peer, "%s", text);
    c->state = NSYS_CLIENT_UP;
    c->st.state = c->state;
    if (c->st.connects++ > 0)
        c->st.reconnects++;
    c->up_since_ms = now_ms(); /* fails starts over only if this link lasts */
    nsys_backoff_success(&c->bo); /* the delays reset once this stays up */
    c->last_rx_ms = now_ms();
    c->ping_at_ms = 0;
    NSYS_LOG(NSYS_LOG_INFO, "client %s: connected to %s", c->own.name, text);
    emit(c, NSYS_CLIENT_EV_CONNECTED, 0, 0, text);
    hand_over(c);
    nsys_io_leave(c->ctx);
}

static void start_connect(client_t *c)
{
    c->state = NSYS_CLIENT_CONNECTING;
    c->st.state = c->state;
    int rc = nsys_dial(nsys_ctx_loop(c->ctx), c->own.host, c->own.o.port, c->own.o.connect_timeout_ms,
                       dial_done, c, &c->dial);
    if (rc != 0) {
        char text[NSYS_NET_MESSAGE_MAX];
        snprintf(text, sizeof text, "%s:%u: cannot start a connect: %s", c->own.host,
                 (unsigned)c->own.o.port, uv_strerror(rc));
        failed(c, rc, text, true);
    }
}

static void flush_hook(nsys_ctx_t *ctx, void *state)
{
    (void)ctx;
    client_t *c = state;
    if (c->conn == NULL)
        return;
    settle(c);
    hand_over(c); /* what waited for the queue to drain below write_high */
    if (c->conn == NULL)
        return;
    nsys_conn_flush(c->conn);
    settle(c);
}

/* ---- the actor ------------------------------------------------------------------------------------ */

/* What a start can refuse before any actor exists (nsys_tcp_client_start)
 * and init checks again (the behaviour spawned directly): 0, or NSYS_EINVAL
 * with *why set. `bo` gets the backoff. */
static int check_opts(const nsys_client_opts_t *o, nsys_backoff_t *bo, const char **why)
{
    nsys_backoff_opts_t defaults = nsys_backoff_grpc_defaults();
    if (nsys_backoff_init(bo, &o->backoff, &defaults) != 0) {
        *why = "invalid backoff options (multiplier below 1, jitter above 1, or initial above max)";
        return NSYS_EINVAL;
    }
    if (o->heartbeat_ms > 0 && o->transport.codec != NSYS_CODEC_LENGTH) {
        *why = "the heartbeat needs the length codec"; /* a raw stream has no empty message */
        return NSYS_EINVAL;
    }
    return 0;
}

static int client_init(nsys_ctx_t *ctx, void *state, void *args)
{
    client_t *c = state;
    const nsys_client_opts_t *o = args;
    if (o == NULL || o->host == NULL || o->port == 0) {
        NSYS_LOG(NSYS_LOG_ERROR, "client: host and port are required");
        return NSYS_EINVAL;
    }
    c->ctx = ctx;
    c->rt = nsys_ctx_runtime(ctx);
    if (owned_opts_copy(&c->own, o, "client") != 0)
        return NSYS_ENOMEM;
    nsys_transport_opts_resolve(&o->transport, &c->own.o.transport);
    if (c->own.o.connect_timeout_ms == 0)
        c->own.o.connect_timeout_ms = NSYS_DIAL_TIMEOUT_DEFAULT_MS;
    if (c->own.o.outbox_max_messages == 0)
        c->own.o.outbox_max_messages = NSYS_CLIENT_OUTBOX_MESSAGES_DEFAULT;
    if (c->own.o.outbox_max_bytes == 0)
        c->own.o.outbox_max_bytes = NSYS_CLIENT_OUTBOX_BYTES_DEFAULT;
    if (c->own.o.heartbeat_ms > 0 && c->own.o.heartbeat_timeout_ms == 0)
        c->own.o.heartbeat_timeout_ms = c->own.o.heartbeat_ms;
    const char *bad = NULL;
    int rc = check_opts(o, &c->bo, &bad);
    if (rc != 0) {
        NSYS_LOG(NSYS_LOG_ERROR, "client %s: %s", c->own.name, bad);
        owned_opts_free(&c->own);
        return rc;
    }
    nsys_set_turn_hook(ctx, flush_hook);
    if (c->own.o.heartbeat_ms > 0) {
        uint64_t tick = c->own.o.heartbeat_ms < c->own.o.heartbeat_timeout_ms ? c->own.o.heartbeat_ms
                                                                      : c->own.o.heartbeat_timeout_ms;
        tick = tick / 4 > 0 ? tick / 4 : 1;
        rc = nsys_send_interval(ctx, nsys_self(ctx), tick, MSG_HEARTBEAT, NULL, 0, NULL);
        if (rc != 0) {
            owned_opts_free(&c->own);
            return rc;
        }
    }
    start_connect(c);
    return 0;
}

static void heartbeat(client_t *c)
{
    if (c->state != NSYS_CLIENT_UP || c->conn == NULL)
        return;
    uint64_t now = now_ms();
    if (c->ping_at_ms != 0) {
        if (now - c->ping_at_ms >= c->own.o.heartbeat_timeout_ms) {
            char text[NSYS_NET_MESSAGE_MAX];
            snprintf(text, sizeof text, "heartbeat: no reply within %llu ms",
                     (unsigned long long)c->own.o.heartbeat_timeout_ms);
            nsys_conn_abort(c->conn, NSYS_ETIMEDOUT, text);
        }
        return;
    }
    if (now - c->last_rx_ms >= c->own.o.heartbeat_ms && nsys_conn_send(c->conn, NULL, 0) == 0)
        c->ping_at_ms = now;
}

static int client_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    client_t *c = state;
    switch (msg->type) {
    case NSYS_MSG_NET_SEND: {
        nsys_buf_t *b = nsys_msg_take_buf(msg);
        if (b == NULL && nsys_buf_from(msg->data, msg->size, &b) != 0) {
            outmsg_t m = {.id = ++c->st.sent};
            fail_msg(c, &m, NSYS_ENOMEM, "out of memory");
            return 0;
        }
        outbox_add(c, b);
        return 0;
    }
    case MSG_RETRY:
        if (c->state == NSYS_CLIENT_BACKOFF)
            start_connect(c);
        return 0;
    case MSG_HEARTBEAT:
        heartbeat(c);
        return 0;
    case NSYS_MSG_NET_RESUME:
        nsys_conn_resume_check(c->conn);
        return 0;
    case NSYS_MSG_NET_ABORT: /* as for a session: end now */
        nsys_exit(ctx, NSYS_ECANCELED);
        return 0;
    case NSYS_MSG_NET_CLOSE:
        c->stopping = 1;
        if (c->conn != NULL)
            nsys_conn_close(c->conn);
        else
            nsys_exit(ctx, NSYS_REASON_NORMAL);
        return 0;
    case NSYS_MSG_CLIENT_SUBSCRIBE:
        for (size_t i = 0; i < c->nsubs; i++)
            if (c->subs[i] == msg->from)
                return 0; /* once is enough */
        if (msg->from != NSYS_REF_NONE) {
            if (c->nsubs == c->capsubs) {
                size_t cap = c->capsubs ? c->capsubs * 2 : 4;
                nsys_ref_t *s = realloc(c->subs, cap * sizeof *s);
                if (s == NULL)
                    return 0;
                c->subs = s;
                c->capsubs = cap;
            }
            c->subs[c->nsubs++] = msg->from;
        }
        return 0;
    case NSYS_MSG_CLIENT_STATS: {
        nsys_client_stats_t st = c->st;
        st.state = c->state;
        st.attempt = c->fails;
        st.outbox_messages = c->count;
        st.outbox_bytes = c->bytes;
        nsys_send(c->rt, msg->from, NSYS_MSG_CLIENT_STATS, &st, sizeof st);
        return 0;
    }
    default:
        return 0;
    }
}

static void client_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    client_t *c = state;
    if (c->dial != NULL)
        nsys_dial_cancel(c->dial);
    if (c->conn != NULL) {
        nsys_conn_flush(c->conn);
        settle(c);
        nsys_conn_free(c->conn);
        c->conn = NULL;
    }
    /* Whatever waits now will never be written: report each. */
    char why[NSYS_NET_MESSAGE_MAX];
    snprintf(why, sizeof why, "the client stopped (%s) before it was written",
             nsys_errname(reason));
    while (c->count > 0) {
        outmsg_t m = *at(c, 0);
        pop_front(c);
        fail_msg(c, &m, NSYS_ECANCELED, why);
    }
    free(c->ring);
    free(c->subs);
    owned_opts_free(&c->own);
}

const nsys_behaviour_t nsys_client_behaviour = {
    .name = "client",
    .state_size = sizeof(client_t),
    .init = client_init,
    .handle = client_handle,
    .terminate = client_terminate,
};

/* ---- the API ------------------------------------------------------------------------------------------ */

static void start_args_free(void *p)
{
    owned_opts_free(p);
    free(p);
}

int nsys_tcp_client_start(nsys_runtime_t *rt, const nsys_client_opts_t *opts, nsys_ref_t *ref)
{
    if (rt == NULL || opts == NULL || opts->host == NULL || opts->port == 0) {
        nsys__net_set_error("nsys_tcp_client_start: host and port are required");
        return NSYS_EINVAL;
    }
    nsys_backoff_t scratch;
    const char *why = NULL;
    if (check_opts(opts, &scratch, &why) != 0) {
        nsys__net_set_error("nsys_tcp_client_start: %s", why);
        return NSYS_EINVAL;
    }
    /* init runs later, on the client's scheduler: give it options that
     * live until then. */
    owned_opts_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NSYS_ENOMEM;
    if (owned_opts_copy(a, opts, NULL) != 0) {
        free(a);
        return NSYS_ENOMEM;
    }
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.args = a;
    so.args_free = start_args_free;
    int rc = nsys_spawn(rt, &nsys_client_behaviour, &so, ref);
    if (rc != 0)
        start_args_free(a);
    return rc;
}

int nsys_client_stop(nsys_runtime_t *rt, nsys_ref_t client)
{
    return nsys_exit_signal(rt, client, NSYS_REASON_SHUTDOWN);
}

int nsys_client_stats(nsys_runtime_t *rt, nsys_ref_t client, nsys_client_stats_t *out)
{
    return nsys_call_reply(rt, client, NSYS_MSG_CLIENT_STATS, NULL, 0, out, sizeof *out);
}

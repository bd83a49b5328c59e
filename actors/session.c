/* actors/session.c — the session actor: owns one accepted connection, runs a
 * handler behaviour on it or forwards its events to an owner actor.
 *
 * The connection's libuv callbacks run as the actor (nsys_io_enter/leave),
 * so a handler sees the same guarantees from a read as from a message, and
 * what a turn or a read queued is written in one writev by the turn hook.
 * When the connection ends the session exits with the connection's reason;
 * when the session exits for any other reason (its listener stops, it is
 * killed), terminate frees the connection. Either way everything it owned is
 * freed. Not for: accepting (listener.c) or the socket itself (transport/). */
#include <netsys/framing.h>
#include <netsys/log.h>
#include <netsys/net.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/internal.h"
#include "transport/internal.h"

/* Payloads up to this size fit in a message node (the runtime's inline
 * size); larger ones are wrapped in a buffer so the session queues them
 * without another copy. */
#define INLINE_SEND_MAX 40u

/* A server holds one per connection, so it keeps nothing it can get
 * elsewhere: the runtime and the listener (its parent, which spawned it)
 * come from the context, the peer's text from the connection. */
struct nsys_session {
    nsys_ctx_t *ctx;
    /* Ours from init to the end of terminate; after `ended` (terminate has
     * closed it) only its peer text is read. */
    nsys_conn_t *conn;
    const nsys_session_handler_t *handler;
    union {
        void *hstate;     /* with a handler: its state block (ours), or NULL */
        nsys_ref_t owner; /* without one: the actor the events go to */
    };
    void *harg;
    void (*harg_release)(void *);
    uint8_t opened; /* on_open succeeded: on_close is owed */
    uint8_t ended;  /* terminate began: the handler's calls see no connection */
};

/* The connection while the handler may use it. */
static nsys_conn_t *live_conn(const nsys_session_t *s) { return s->ended ? NULL : s->conn; }

static const char *peer_of(const nsys_session_t *s) { return nsys_conn_peer(s->conn); }

static nsys_runtime_t *rt_of(const nsys_session_t *s) { return nsys_ctx_runtime(s->ctx); }

/* ---- events to the owner --------------------------------------------------------- */

static void event_fill(const nsys_session_t *s, nsys_net_event_t *ev, int code, const char *text)
{
    memset(ev, 0, sizeof *ev);
    ev->session = nsys_self(s->ctx);
    ev->listener = nsys_parent(s->ctx);
    ev->code = code;
    snprintf(ev->peer, sizeof ev->peer, "%.*s", (int)sizeof ev->peer - 1, peer_of(s));
    snprintf(ev->message, sizeof ev->message, "%s", text != NULL ? text : "");
}

/* An error the session reports without ending (an oversized send it was
 * asked to make): to the owner, or to the handler's on_info. */
static void report_error(nsys_session_t *s, int code, const char *text)
{
    nsys_net_event_t ev;
    event_fill(s, &ev, code, text);
    if (s->handler == NULL) {
        nsys_send(rt_of(s), s->owner, NSYS_MSG_NET_ERROR, &ev, sizeof ev);
    } else if (s->handler->on_info != NULL) {
        nsys_msg_t m = {.type = NSYS_MSG_NET_ERROR, .from = nsys_self(s->ctx), .data = &ev,
                        .size = sizeof ev};
        int rc = s->handler->on_info(s, s->hstate, &m);
        if (rc != 0)
            nsys_session_abort(s, rc);
    } else {
        NSYS_LOG(NSYS_LOG_WARN, "session %s: %s", peer_of(s), text);
    }
}

/* ---- connection events ---------------------------------------------------------------- */

static bool conn_enter(void *ud) { return nsys_io_enter(((nsys_session_t *)ud)->ctx); }
static void conn_leave(void *ud) { nsys_io_leave(((nsys_session_t *)ud)->ctx); }

static int conn_message(void *ud, nsys_conn_t *c, nsys_buf_t *msg)
{
    (void)c;
    nsys_session_t *s = ud;
    if (s->handler != NULL) {
        int rc = s->handler->on_message != NULL ? s->handler->on_message(s, s->hstate, msg) : 0;
        nsys_buf_unref(msg);
        return rc;
    }
    int rc = nsys_send_buf(rt_of(s), s->owner, NSYS_MSG_NET_MESSAGE, msg);
    if (rc != 0)
        nsys_buf_unref(msg); /* the owner is gone; its DOWN ends us */
    return 0;
}

static void conn_close(void *ud, nsys_conn_t *c, nsys_conn_end_t end, int code, const char *text)
{
    (void)c, (void)text; /* terminate reads the text from the connection */
    nsys_session_t *s = ud;
    nsys_exit(s->ctx, end == NSYS_CONN_END_ERROR ? code : NSYS_REASON_NORMAL);
}

static const nsys_conn_events_t session_events = {
    .enter = conn_enter,
    .leave = conn_leave,
    .on_message = conn_message,
    .on_close = conn_close,
};

static void flush_hook(nsys_ctx_t *ctx, void *state)
{
    (void)ctx;
    nsys_session_t *s = state;
    nsys_conn_flush(s->conn);
}

/* ---- the actor -------------------------------------------------------------------------- */

void nsys__session_args_free(void *p)
{
    nsys__session_args_t *a = p;
    if (a->fd >= 0)
        close(a->fd);
    if (a->handler_arg_release != NULL)
        a->handler_arg_release(a->handler_arg);
    free(a);
}

static int session_init(nsys_ctx_t *ctx, void *state, void *args)
{
    nsys_session_t *s = state;
    nsys__session_args_t *a = args;
    s->ctx = ctx;
    s->handler = a->handler;
    int rc = 0;
    if (s->handler != NULL) {
        if (s->handler->state_size > 0 && (s->hstate = calloc(1, s->handler->state_size)) == NULL)
            return NSYS_ENOMEM;
    } else {
        s->owner = a->owner;
        if ((rc = nsys_monitor(ctx, s->owner, NULL)) != 0)
            return rc;
    }
    rc = nsys_conn_open_fd(nsys_ctx_loop(ctx), a->fd, &a->transport, &session_events, s, &s->conn);
    if (rc != 0) {
        if (s->handler != NULL)
            free(s->hstate);
        return rc; /* args_free closes the fd */
    }
    a->fd = -1; /* the connection owns it now */
    /* The handler argument's reference moves from the args to us. */
    s->harg = a->handler_arg;
    s->harg_release = a->handler_arg_release;
    a->handler_arg_release = NULL;
    nsys_conn_set_owner(s->conn, rt_of(s), nsys_self(ctx));
    nsys_set_turn_hook(ctx, flush_hook);

    if (s->handler != NULL) {
        rc = s->handler->on_open != NULL ? s->handler->on_open(s, s->hstate, s->harg) : 0;
        if (rc != 0) {
            nsys_conn_abort(s->conn, rc, "refused by on_open");
            nsys_exit(ctx, rc);
            return 0; /* terminate frees the connection */
        }
    } else {
        nsys_net_event_t ev;
        event_fill(s, &ev, 0, "connected");
        nsys_send(rt_of(s), s->owner, NSYS_MSG_NET_OPEN, &ev, sizeof ev);
    }
    s->opened = 1;
    return 0;
}

static int session_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    nsys_session_t *s = state;
    switch (msg->type) {
    case NSYS_MSG_NET_SEND: {
        nsys_buf_t *b = nsys_msg_take_buf(msg);
        int rc = b != NULL ? nsys_conn_send_buf(s->conn, b) : nsys_conn_send(s->conn, msg->data, msg->size);
        if (rc != 0) {
            nsys_buf_unref(b);
            if (rc == NSYS_EMSGSIZE) {
                char text[NSYS_NET_MESSAGE_MAX];
                snprintf(text, sizeof text, "%s: send refused: %s", peer_of(s),
                         nsys_net_last_error());
                report_error(s, rc, text);
            }
        }
        return 0;
    }
    case NSYS_MSG_NET_CLOSE:
        nsys_conn_close(s->conn);
        return 0;
    case NSYS_MSG_NET_ABORT:
        nsys_conn_abort(s->conn, NSYS_ECANCELED, "aborted");
        return 0;
    case NSYS_MSG_NET_RESUME:
        nsys_conn_resume_check(s->conn);
        break; /* a handler with connections of its own may want it too */
    case NSYS_MSG_DOWN:
        if (s->handler == NULL && msg->size == sizeof(nsys_down_t) &&
            ((nsys_down_t *)msg->data)->ref == s->owner) {
            nsys_conn_abort(s->conn, NSYS_ESHUTDOWN, "its owner exited");
            return 0;
        }
        break;
    default:
        break;
    }
    (void)ctx;
    if (s->handler != NULL && s->handler->on_info != NULL)
        return s->handler->on_info(s, s->hstate, msg);
    return 0;
}

static void session_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    nsys_session_t *s = state;
    char text[NSYS_NET_MESSAGE_MAX];
    const char *why = nsys__conn_end_text(s->conn);
    if (why != NULL)
        snprintf(text, sizeof text, "%s", why);
    else
        snprintf(text, sizeof text, "%s: session ended (%s)", peer_of(s), nsys_strerror(reason));
    /* Closed before on_close, as documented; freed after it, since the
     * connection holds the peer text that on_close and the events name. */
    nsys__conn_detach(s->conn);
    s->ended = 1;
    if (s->opened) {
        if (s->handler != NULL) {
            if (s->handler->on_close != NULL)
                s->handler->on_close(s, s->hstate, reason, text);
        } else {
            nsys_net_event_t ev;
            if (!nsys_reason_is_clean(reason)) {
                event_fill(s, &ev, reason, text);
                nsys_send(rt_of(s), s->owner, NSYS_MSG_NET_ERROR, &ev, sizeof ev);
            }
            event_fill(s, &ev, reason, text);
            nsys_send(rt_of(s), s->owner, NSYS_MSG_NET_CLOSED, &ev, sizeof ev);
        }
    }
    nsys_conn_free(s->conn);
    s->conn = NULL;
    if (s->handler != NULL)
        free(s->hstate);
    if (s->harg_release != NULL)
        s->harg_release(s->harg);
}

const nsys_behaviour_t nsys__session_behaviour = {
    .name = "session",
    .state_size = sizeof(nsys_session_t),
    .init = session_init,
    .handle = session_handle,
    .terminate = session_terminate,
};

/* ---- the handler's view ------------------------------------------------------------------- */

int nsys_session_send(nsys_session_t *s, const void *data, size_t len)
{
    return s != NULL ? nsys_conn_send(live_conn(s), data, len) : NSYS_EINVAL;
}

int nsys_session_send_buf(nsys_session_t *s, nsys_buf_t *msg)
{
    return s != NULL ? nsys_conn_send_buf(live_conn(s), msg) : NSYS_EINVAL;
}

void nsys_session_close(nsys_session_t *s)
{
    if (s != NULL)
        nsys_conn_close(live_conn(s));
}

void nsys_session_abort(nsys_session_t *s, int reason)
{
    if (s != NULL)
        nsys_conn_abort(live_conn(s), reason != 0 ? reason : NSYS_ECANCELED,
                        "aborted by its handler");
}

nsys_ref_t nsys_session_ref(const nsys_session_t *s) { return s != NULL ? nsys_self(s->ctx) : 0; }
nsys_ref_t nsys_session_listener(const nsys_session_t *s)
{
    return s != NULL ? nsys_parent(s->ctx) : 0;
}
nsys_ctx_t *nsys_session_ctx(nsys_session_t *s) { return s != NULL ? s->ctx : NULL; }
const char *nsys_session_peer(const nsys_session_t *s) { return s != NULL ? peer_of(s) : ""; }
nsys_conn_t *nsys_session_conn(nsys_session_t *s) { return s != NULL ? live_conn(s) : NULL; }

/* ---- by ref, from anywhere ----------------------------------------------------------------- */

/* The session whose callback runs on this thread, if it is `ref`. */
static nsys_session_t *current_session(nsys_ref_t ref)
{
    nsys_ctx_t *cur = nsys_current();
    if (cur == NULL || nsys_self(cur) != ref || !nsys__session_is(cur))
        return NULL; /* only a session's state may be read as one */
    nsys_session_t *s = nsys_ctx_state(cur);
    return live_conn(s) != NULL ? s : NULL;
}

int nsys_net_send(nsys_runtime_t *rt, nsys_ref_t session, const void *data, size_t len)
{
    nsys_session_t *s = current_session(session);
    if (s != NULL)
        return nsys_session_send(s, data, len);
    if (len > NSYS_FRAMING_WIRE_MAX_PAYLOAD) {
        nsys__net_set_error("payload exceeds maximum (%zu > %zu)", len,
                            (size_t)NSYS_FRAMING_WIRE_MAX_PAYLOAD);
        return NSYS_EMSGSIZE;
    }
    if (len <= INLINE_SEND_MAX) /* travels inside the message node: no buffer */
        return nsys_send(rt, session, NSYS_MSG_NET_SEND, data, len);
    nsys_buf_t *b;
    int rc = nsys_buf_from(data, len, &b);
    if (rc != 0)
        return rc;
    rc = nsys_send_buf(rt, session, NSYS_MSG_NET_SEND, b);
    if (rc != 0)
        nsys_buf_unref(b);
    return rc;
}

int nsys_net_send_buf(nsys_runtime_t *rt, nsys_ref_t session, nsys_buf_t *msg)
{
    nsys_session_t *s = current_session(session);
    if (s != NULL)
        return nsys_session_send_buf(s, msg);
    return nsys_send_buf(rt, session, NSYS_MSG_NET_SEND, msg);
}

int nsys_net_close(nsys_runtime_t *rt, nsys_ref_t session)
{
    nsys_session_t *s = current_session(session);
    if (s != NULL) {
        nsys_session_close(s);
        return 0;
    }
    return nsys_send(rt, session, NSYS_MSG_NET_CLOSE, NULL, 0);
}

int nsys_net_abort(nsys_runtime_t *rt, nsys_ref_t session)
{
    nsys_session_t *s = current_session(session);
    if (s != NULL) {
        nsys_session_abort(s, NSYS_ECANCELED);
        return 0;
    }
    return nsys_send(rt, session, NSYS_MSG_NET_ABORT, NULL, 0);
}

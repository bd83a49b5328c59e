/* actors/tcp_server.c — the callback facade: a listener whose sessions run a
 * handler that calls the user's four functions. The callback table lives in
 * one reference-counted block shared by the listener and its sessions, so it
 * stays valid until the last session's on_disconnect has run.
 * Not for: anything a handler behaviour cannot do (this is a thin adapter). */
#include <netsys/net.h>

#include <stdatomic.h>
#include <stdlib.h>

typedef struct server {
    atomic_size_t refs;
    nsys_tcp_server_opts_t o;
} server_t;

static void server_retain(void *arg)
{
    atomic_fetch_add_explicit(&((server_t *)arg)->refs, 1, memory_order_relaxed);
}

static void server_release(void *arg)
{
    server_t *sv = arg;
    if (atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel) == 1)
        free(sv);
}

typedef struct fstate {
    server_t *sv;
} fstate_t;

static int f_open(nsys_session_t *s, void *state, void *arg)
{
    fstate_t *f = state;
    f->sv = arg;
    if (f->sv->o.on_connect != NULL)
        f->sv->o.on_connect(nsys_ctx_runtime(nsys_session_ctx(s)), nsys_session_ref(s),
                            nsys_session_peer(s), f->sv->o.user_data);
    return 0;
}

static int f_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    fstate_t *f = state;
    if (f->sv->o.on_message != NULL)
        f->sv->o.on_message(nsys_ctx_runtime(nsys_session_ctx(s)), nsys_session_ref(s),
                            nsys_buf_data(msg), nsys_buf_len(msg), f->sv->o.user_data);
    return 0;
}

static int f_info(nsys_session_t *s, void *state, nsys_msg_t *msg)
{
    fstate_t *f = state;
    if (msg->type == NSYS_MSG_NET_ERROR && msg->size == sizeof(nsys_net_event_t) &&
        f->sv->o.on_error != NULL) {
        const nsys_net_event_t *ev = msg->data;
        f->sv->o.on_error(nsys_ctx_runtime(nsys_session_ctx(s)), nsys_session_ref(s), ev->code,
                          ev->message, f->sv->o.user_data);
    }
    return 0;
}

static void f_close(nsys_session_t *s, void *state, int reason, const char *text)
{
    fstate_t *f = state;
    nsys_runtime_t *rt = nsys_ctx_runtime(nsys_session_ctx(s));
    if (!nsys_reason_is_clean(reason) && f->sv->o.on_error != NULL)
        f->sv->o.on_error(rt, nsys_session_ref(s), reason, text, f->sv->o.user_data);
    if (f->sv->o.on_disconnect != NULL)
        f->sv->o.on_disconnect(rt, nsys_session_ref(s), reason, f->sv->o.user_data);
}

static const nsys_session_handler_t facade_handler = {
    .name = "tcp_server",
    .state_size = sizeof(fstate_t),
    .on_open = f_open,
    .on_message = f_message,
    .on_info = f_info,
    .on_close = f_close,
};

int nsys_tcp_server_start(nsys_runtime_t *rt, const nsys_tcp_server_opts_t *opts, nsys_ref_t *ref,
                          nsys_listener_info_t *info)
{
    if (rt == NULL || opts == NULL)
        return NSYS_EINVAL;
    server_t *sv = malloc(sizeof *sv);
    if (sv == NULL)
        return NSYS_ENOMEM;
    atomic_init(&sv->refs, 1);
    sv->o = *opts;
    nsys_listener_opts_t lo = opts->listen;
    lo.handler = &facade_handler;
    lo.handler_arg = sv;
    lo.handler_arg_retain = server_retain;
    lo.handler_arg_release = server_release;
    lo.owner = NSYS_REF_NONE;
    int rc = nsys_listener_start(rt, &lo, ref, info);
    server_release(sv); /* ours; the listener took its own */
    return rc;
}

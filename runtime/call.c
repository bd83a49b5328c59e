/* runtime/call.c — nsys_call: request/reply from a thread outside the
 * runtime. A short-lived actor sends the request as itself, so the reply
 * comes back to it; it hands the reply to the waiting thread through a
 * reference-counted rendezvous and exits. The rendezvous outlives whichever
 * side gives up first (a timed-out caller, or an actor killed at shutdown). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define CALL_DEFAULT_TIMEOUT_MS 5000u

typedef struct rendezvous {
    uv_mutex_t mu;
    uv_cond_t cond;
    _Atomic int refs;
    int init_ran; /* touched by the calling actor only */
    int done;
    int status;
    uint32_t type;
    nsys_ref_t to;
    void *request;
    size_t request_size;
    void (*request_free)(void *); /* set: request is a moved pointer, not bytes */
    uint32_t reply_type;
    void *reply;
    size_t reply_size;
} rendezvous_t;

static void rv_release(void *p)
{
    rendezvous_t *rv = p;
    if (atomic_fetch_sub(&rv->refs, 1) != 1)
        return;
    uv_mutex_destroy(&rv->mu);
    uv_cond_destroy(&rv->cond);
    if (rv->request_free == NULL)
        free(rv->request);
    else if (rv->request != NULL) /* not moved to the receiver */
        rv->request_free(rv->request);
    free(rv->reply);
    free(rv);
}

static void rv_finish(rendezvous_t *rv, int status, uint32_t type, const void *data, size_t size)
{
    uv_mutex_lock(&rv->mu);
    if (!rv->done) {
        rv->done = 1;
        rv->status = status;
        rv->reply_type = type;
        if (status == 0 && size > 0) {
            rv->reply = malloc(size);
            if (rv->reply == NULL)
                rv->status = NSYS_ENOMEM;
            else {
                memcpy(rv->reply, data, size);
                rv->reply_size = size;
            }
        }
        uv_cond_signal(&rv->cond);
    }
    uv_mutex_unlock(&rv->mu);
}

typedef struct caller_state {
    rendezvous_t *rv;
} caller_state_t;

static int caller_init(nsys_ctx_t *ctx, void *state, void *args)
{
    caller_state_t *st = state;
    rendezvous_t *rv = args;
    rv->init_ran = 1;
    st->rv = rv;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    int rc = nsys_monitor(ctx, rv->to, NULL);
    if (rc == 0 && rv->request_free != NULL) {
        rc = nsys_send_ptr(rt, rv->to, rv->type, rv->request, rv->request_size, rv->request_free);
        if (rc == 0)
            rv->request = NULL; /* moved */
    } else if (rc == 0) {
        rc = nsys_send(rt, rv->to, rv->type, rv->request, rv->request_size);
    }
    if (rc != 0) {
        rv_finish(rv, rc, 0, NULL, 0);
        nsys_exit(ctx, NSYS_REASON_NORMAL);
    }
    return 0;
}

static int caller_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    caller_state_t *st = state;
    if (msg->type == NSYS_MSG_DOWN)
        rv_finish(st->rv, NSYS_ENOACTOR, 0, NULL, 0);
    else if (msg->from == st->rv->to)
        rv_finish(st->rv, 0, msg->type, msg->data, msg->size);
    else
        return 0; /* not the reply */
    nsys_exit(ctx, NSYS_REASON_NORMAL);
    return 0;
}

static void caller_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    caller_state_t *st = state;
    rv_finish(st->rv, reason == NSYS_REASON_NORMAL ? NSYS_ECANCELED : reason, 0, NULL, 0);
    rv_release(st->rv);
}

/* The spawn's args_free: gives back the actor's reference if init never ran
 * (the runtime stopped first); after init, terminate does. */
static void caller_args_free(void *args)
{
    rendezvous_t *rv = args;
    if (!rv->init_ran) {
        rv_finish(rv, NSYS_ESTOPPED, 0, NULL, 0);
        rv_release(rv);
    }
}

static const nsys_behaviour_t caller_behaviour = {
    .name = "nsys.call",
    .state_size = sizeof(caller_state_t),
    .init = caller_init,
    .handle = caller_handle,
    .terminate = caller_terminate,
};

static int call(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *data, size_t size,
                void *ptr, void (*ptr_free)(void *), uint64_t timeout_ms, uint32_t *reply_type,
                void **reply, size_t *reply_size)
{
    rendezvous_t *rv = calloc(1, sizeof *rv);
    if (rv == NULL)
        return NSYS_ENOMEM;
    uv_mutex_init(&rv->mu);
    uv_cond_init(&rv->cond);
    atomic_init(&rv->refs, 2); /* the waiting thread's and the calling actor's */
    rv->type = type;
    rv->to = to;
    if (ptr_free != NULL) {
        rv->request = ptr;
        rv->request_size = size;
        rv->request_free = ptr_free;
    } else if (size > 0) {
        rv->request = malloc(size);
        if (rv->request == NULL) {
            rv_release(rv);
            rv_release(rv);
            return NSYS_ENOMEM;
        }
        memcpy(rv->request, data, size);
        rv->request_size = size;
    }
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = rv;
    o.args_free = caller_args_free;
    nsys_ref_t caller;
    int rc = nsys_spawn(rt, &caller_behaviour, &o, &caller);
    if (rc != 0) {
        rv_release(rv);
        rv_release(rv);
        return rc;
    }
    uint64_t ms = timeout_ms ? timeout_ms : CALL_DEFAULT_TIMEOUT_MS;
    uint64_t deadline = uv_hrtime() + ms * 1000000u;
    uv_mutex_lock(&rv->mu);
    while (!rv->done) {
        uint64_t now = uv_hrtime();
        if (now >= deadline || uv_cond_timedwait(&rv->cond, &rv->mu, deadline - now) != 0) {
            if (!rv->done) {
                rv->done = 1;
                rv->status = NSYS_ETIMEDOUT;
            }
        }
    }
    rc = rv->status;
    if (rc == 0) {
        if (reply_type != NULL)
            *reply_type = rv->reply_type;
        if (reply_size != NULL)
            *reply_size = rv->reply_size;
        if (reply != NULL) {
            *reply = rv->reply;
            rv->reply = NULL;
        }
    }
    uv_mutex_unlock(&rv->mu);
    if (rc == NSYS_ETIMEDOUT)
        nsys_kill(rt, caller); /* it may be gone already */
    rv_release(rv);
    return rc;
}

int nsys_call(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *data, size_t size,
              uint64_t timeout_ms, uint32_t *reply_type, void **reply, size_t *reply_size)
{
    if (rt == NULL || to == NSYS_REF_NONE || (data == NULL && size > 0) || type < NSYS_MSG_SYSTEM_MAX)
        return NSYS_EINVAL;
    if (nsys__tls_sched != NULL)
        return NSYS_EBUSY;
    return call(rt, to, type, data, size, NULL, NULL, timeout_ms, reply_type, reply, reply_size);
}

int nsys_call_ptr(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, void *ptr, size_t size,
                  void (*free_fn)(void *), uint64_t timeout_ms, uint32_t *reply_type, void **reply,
                  size_t *reply_size)
{
    int rc = 0;
    if (rt == NULL || to == NSYS_REF_NONE || free_fn == NULL || type < NSYS_MSG_SYSTEM_MAX)
        rc = NSYS_EINVAL;
    else if (nsys__tls_sched != NULL)
        rc = NSYS_EBUSY;
    if (rc != 0) {
        if (free_fn != NULL)
            free_fn(ptr);
        return rc;
    }
    return call(rt, to, type, NULL, size, ptr, free_fn, timeout_ms, reply_type, reply, reply_size);
}

int nsys_call_reply(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *req,
                    size_t req_size, void *out, size_t size)
{
    if (out == NULL)
        return NSYS_EINVAL;
    void *reply = NULL;
    size_t got = 0;
    uint32_t rtype = 0;
    int rc = nsys_call(rt, to, type, req, req_size, 0, &rtype, &reply, &got);
    if (rc == 0 && (rtype != type || got != size))
        rc = NSYS_EINVAL;
    if (rc == 0)
        memcpy(out, reply, size);
    nsys_free(reply);
    return rc;
}

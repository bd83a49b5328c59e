/* tests/common/probe.h — a probe actor the test thread drives and observes.
 *
 * A probe records every message it receives (type, sender, payload head,
 * DOWN/EXIT bodies) into a t_recs_t the test waits on, and runs functions
 * inside itself on request (t_probe_call), so a test can call the APIs that
 * need an actor context — monitor, link, trap_exit, timers — and observe the
 * messages they cause. It also records init, terminate and the exit reason.
 *
 * The t_probe_t belongs to the test and must outlive the runtime: free the
 * runtime first, then t_probe_destroy().
 *
 * A trapping probe exits when it receives EXIT with NSYS_REASON_SHUTDOWN
 * (unless ignore_shutdown is set or a hook is installed).
 *
 * Message types the probe understands (all others are just recorded):
 *   T_MSG_CALL    run a function inside the probe (see t_probe_call)
 *   T_MSG_RETURN  payload int: handle returns that value (to fail the actor)
 *   T_MSG_EXITME  payload int: nsys_exit(ctx, value), handle returns 0
 *
 * Not for: measuring anything. Never cr_assert from inside a probe.
 */
#ifndef NSYS_TESTS_COMMON_PROBE_H
#define NSYS_TESTS_COMMON_PROBE_H

#include "common/wait.h"

#include <netsys/netsys.h>

#define T_MSG_A (NSYS_MSG_USER + 1u)
#define T_MSG_B (NSYS_MSG_USER + 2u)
#define T_MSG_C (NSYS_MSG_USER + 3u)
#define T_MSG_SENTINEL (NSYS_MSG_USER + 0x100u)
#define T_MSG_TICK (NSYS_MSG_USER + 0x101u)
#define T_MSG_RETURN (NSYS_MSG_USER + 0xFFF0u)
#define T_MSG_EXITME (NSYS_MSG_USER + 0xFFF1u)
#define T_MSG_CALL (NSYS_MSG_USER + 0xFFF2u)

typedef struct t_probe {
    t_recs_t inbox;
    bool trap;                 /* set before spawn: trap exits from init */
    bool ignore_shutdown;      /* trapping: stay on EXIT(SHUTDOWN) instead of leaving */
    bool defer_ack;            /* set before spawn: nsys_defer_ack in init */
    int (*hook)(nsys_ctx_t *ctx, struct t_probe *p, nsys_msg_t *msg); /* optional, after recording */
    void *user;                /* free use by the test */
    _Atomic uint64_t ref;      /* nsys_self, set in init */
    _Atomic uint64_t parent;   /* nsys_parent, set in init */
    atomic_uint sched;         /* scheduler it runs on */
    atomic_int inited;
    atomic_int terminated;
    atomic_int term_reason;
    atomic_int handled;
} t_probe_t;

static inline void t_probe_init(t_probe_t *p)
{
    memset(p, 0, sizeof(*p));
    t_recs_init(&p->inbox);
}

static inline void t_probe_destroy(t_probe_t *p)
{
    t_recs_destroy(&p->inbox);
}

/* A completion shared by the caller and the probe; the last one out frees it,
 * so a caller that gave up waiting leaves nothing dangling. */
typedef struct t_call_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;
    bool done;
    int rc;
} t_call_done_t;

typedef struct t_call {
    int (*fn)(nsys_ctx_t *ctx, void *arg);
    void *arg;
    t_call_done_t *done;
} t_call_t;

static inline void t_call_done_unref(t_call_done_t *d)
{
    if (atomic_fetch_sub(&d->refs, 1) == 1) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
    }
}

static inline void t_rec_from_msg(t_rec_t *rec, nsys_ctx_t *ctx, const nsys_msg_t *msg)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = msg->type;
    rec->from = msg->from;
    rec->self = nsys_self(ctx);
    rec->size = msg->size;
    rec->data = msg->data;
    rec->sched = nsys_ctx_scheduler(ctx);
    rec->t_ns = t_now_ns();
    if (msg->data != NULL && msg->size > 0)
        memcpy(rec->bytes, msg->data, msg->size < T_REC_INLINE ? msg->size : T_REC_INLINE);
}

static inline nsys_down_t t_rec_down(const t_rec_t *rec)
{
    nsys_down_t d;
    memcpy(&d, rec->bytes, sizeof(d));
    return d;
}

static inline nsys_exit_t t_rec_exit(const t_rec_t *rec)
{
    nsys_exit_t e;
    memcpy(&e, rec->bytes, sizeof(e));
    return e;
}

static inline int t_rec_int(const t_rec_t *rec)
{
    int v;
    memcpy(&v, rec->bytes, sizeof(v));
    return v;
}

static inline int t_probe_b_init(nsys_ctx_t *ctx, void *state, void *args)
{
    t_probe_t *p = args;
    *(t_probe_t **)state = p;
    atomic_store(&p->ref, nsys_self(ctx));
    atomic_store(&p->parent, nsys_parent(ctx));
    atomic_store(&p->sched, nsys_ctx_scheduler(ctx));
    if (p->trap)
        nsys_trap_exit(ctx, true);
    if (p->defer_ack)
        nsys_defer_ack(ctx);
    atomic_store(&p->inited, 1);
    return 0;
}

static inline int t_probe_b_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    t_probe_t *p = *(t_probe_t **)state;
    atomic_fetch_add(&p->handled, 1);
    if (msg->type == T_MSG_CALL && msg->size == sizeof(t_call_t)) {
        t_call_t call;
        memcpy(&call, msg->data, sizeof(call));
        int rc = call.fn(ctx, call.arg);
        pthread_mutex_lock(&call.done->mu);
        call.done->rc = rc;
        call.done->done = true;
        pthread_cond_broadcast(&call.done->cv);
        pthread_mutex_unlock(&call.done->mu);
        t_call_done_unref(call.done);
        return 0;
    }
    t_rec_t rec;
    t_rec_from_msg(&rec, ctx, msg);
    t_recs_push(&p->inbox, &rec);
    if (msg->type == T_MSG_RETURN && msg->size == sizeof(int))
        return t_rec_int(&rec);
    if (msg->type == T_MSG_EXITME && msg->size == sizeof(int)) {
        nsys_exit(ctx, t_rec_int(&rec));
        return 0;
    }
    if (p->hook != NULL)
        return p->hook(ctx, p, msg);
    /* A trapping probe leaves on the runtime's shutdown signal (as a
     * supervisor would), so nsys_runtime_stop need not wait for the grace. */
    if (msg->type == NSYS_MSG_EXIT && !p->ignore_shutdown && msg->size == sizeof(nsys_exit_t) &&
        t_rec_exit(&rec).reason == NSYS_REASON_SHUTDOWN)
        nsys_exit(ctx, NSYS_REASON_SHUTDOWN);
    return 0;
}

static inline void t_probe_b_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    t_probe_t *p = *(t_probe_t **)state;
    atomic_store(&p->term_reason, reason);
    atomic_store(&p->terminated, 1);
}

static inline const nsys_behaviour_t *t_probe_behaviour(void)
{
    static const nsys_behaviour_t b = {
        .name = "test.probe",
        .state_size = sizeof(t_probe_t *),
        .init = t_probe_b_init,
        .handle = t_probe_b_handle,
        .terminate = t_probe_b_terminate,
    };
    return &b;
}

/* Spawns the probe (opts may be NULL); *out (may be NULL) gets its ref. */
static inline int t_probe_spawn(nsys_runtime_t *rt, t_probe_t *p, const nsys_spawn_opts_t *opts,
                                nsys_ref_t *out)
{
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    if (opts != NULL)
        o = *opts;
    o.args = p;
    o.args_free = NULL;
    nsys_ref_t ref = NSYS_REF_NONE;
    int rc = nsys_spawn(rt, t_probe_behaviour(), &o, &ref);
    if (rc == 0)
        atomic_store(&p->ref, ref);
    if (out != NULL)
        *out = ref;
    return rc;
}

static inline nsys_ref_t t_probe_ref(t_probe_t *p)
{
    return atomic_load(&p->ref);
}

/* Runs fn(ctx, arg) inside the actor `probe` and waits up to timeout_ms for it.
 * Returns 0 (and *fn_rc, may be NULL, gets fn's result), a send error, or
 * NSYS_ETIMEDOUT. */
static inline int t_call_timeout(nsys_runtime_t *rt, nsys_ref_t probe, int (*fn)(nsys_ctx_t *, void *),
                                 void *arg, int *fn_rc, uint64_t timeout_ms)
{
    t_call_done_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NSYS_ENOMEM;
    pthread_mutex_init(&d->mu, NULL);
    t_cond_init(&d->cv);
    atomic_store(&d->refs, 2);
    t_call_t call = {fn, arg, d};
    int rc = nsys_send(rt, probe, T_MSG_CALL, &call, sizeof(call));
    if (rc != 0) {
        atomic_store(&d->refs, 1);
        t_call_done_unref(d);
        return rc;
    }
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&d->mu);
    int wrc = 0;
    while (!d->done && wrc != ETIMEDOUT)
        wrc = pthread_cond_timedwait(&d->cv, &d->mu, &dl);
    bool done = d->done;
    int result = d->rc;
    pthread_mutex_unlock(&d->mu);
    t_call_done_unref(d);
    if (!done)
        return NSYS_ETIMEDOUT;
    if (fn_rc != NULL)
        *fn_rc = result;
    return 0;
}

static inline int t_call(nsys_runtime_t *rt, nsys_ref_t probe, int (*fn)(nsys_ctx_t *, void *), void *arg,
                         int *fn_rc)
{
    return t_call_timeout(rt, probe, fn, arg, fn_rc, T_WAIT_MS);
}

static inline int t_send_int(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, int value)
{
    return nsys_send(rt, to, type, &value, sizeof(value));
}

/* Waits for the next DOWN in p's inbox (the k-th overall) and returns it. */
static inline bool t_probe_wait_down(t_probe_t *p, size_t k, nsys_down_t *out, uint64_t timeout_ms)
{
    if (!t_recs_wait_type(&p->inbox, NSYS_MSG_DOWN, k + 1, timeout_ms))
        return false;
    t_rec_t rec;
    long i = t_recs_find_type(&p->inbox, NSYS_MSG_DOWN, k);
    if (i < 0 || !t_recs_get(&p->inbox, (size_t)i, &rec))
        return false;
    *out = t_rec_down(&rec);
    return true;
}

static inline bool t_probe_wait_exit(t_probe_t *p, size_t k, nsys_exit_t *out, uint64_t timeout_ms)
{
    if (!t_recs_wait_type(&p->inbox, NSYS_MSG_EXIT, k + 1, timeout_ms))
        return false;
    t_rec_t rec;
    long i = t_recs_find_type(&p->inbox, NSYS_MSG_EXIT, k);
    if (i < 0 || !t_recs_get(&p->inbox, (size_t)i, &rec))
        return false;
    *out = t_rec_exit(&rec);
    return true;
}

/* ---- call bodies many tests share ---------------------------------------- */

typedef struct t_monitor_arg {
    nsys_ref_t target;
    uint64_t id;
    int rc;
} t_monitor_arg_t;

static inline int t_fn_monitor(nsys_ctx_t *ctx, void *arg)
{
    t_monitor_arg_t *a = arg;
    a->rc = nsys_monitor(ctx, a->target, &a->id);
    return a->rc;
}

static inline int t_fn_link(nsys_ctx_t *ctx, void *arg)
{
    return nsys_link(ctx, *(nsys_ref_t *)arg);
}

static inline int t_fn_unlink(nsys_ctx_t *ctx, void *arg)
{
    return nsys_unlink(ctx, *(nsys_ref_t *)arg);
}

/* Monitors `target` from probe `p`; returns the nsys_monitor result. */
static inline int t_monitor(nsys_runtime_t *rt, t_probe_t *p, nsys_ref_t target, uint64_t *id)
{
    t_monitor_arg_t a = {target, 0, 0};
    int fn_rc = 0;
    int rc = t_call(rt, t_probe_ref(p), t_fn_monitor, &a, &fn_rc);
    if (rc != 0)
        return rc;
    if (id != NULL)
        *id = a.id;
    return fn_rc;
}

/* Records the scheduler of the running actor and returns 0. */
static inline int t_fn_noop(nsys_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return 0;
}

/* A runtime with `n` schedulers (0: default) and the other options default. */
static inline int t_runtime(unsigned n, nsys_runtime_t **out)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = n;
    return nsys_runtime_new(&o, out);
}

#endif

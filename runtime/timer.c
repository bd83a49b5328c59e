/* runtime/timer.c — actor timers on the owner's loop: send-after, interval,
 * cancel. A timer belongs to its actor: it is touched only on the actor's
 * thread, dies with it, and its record is freed in the libuv close callback.
 * A firing aimed at the actor itself carries the timer id and is claimed at
 * delivery, so a cancel that comes between firing and delivery still wins. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct nsys__timer {
    uv_timer_t handle;
    nsys__timer_t *prev, *next;
    nsys__actor_t *owner;
    nsys_ref_t to;
    uint64_t id;
    uint32_t type;
    uint8_t periodic;
    size_t size;
    _Alignas(8) unsigned char data[];
};

static void on_close(uv_handle_t *h) { free(h->data); }

static void timer_unlink(nsys__actor_t *a, nsys__timer_t *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        a->ext->timers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void timer_drop(nsys__actor_t *a, nsys__timer_t *t)
{
    timer_unlink(a, t);
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *)&t->handle, on_close);
}

static nsys__timer_t *find(nsys__actor_t *a, uint64_t id)
{
    if (a->ext == NULL)
        return NULL;
    for (nsys__timer_t *t = a->ext->timers; t != NULL; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static void on_fire(uv_timer_t *h)
{
    nsys__timer_t *t = h->data;
    nsys__actor_t *a = t->owner;
    nsys_runtime_t *rt = a->sched->rt;
    bool to_self = t->to == a->self;
    nsys__node_t *n = nsys__node_alloc(rt);
    if (n != NULL && nsys__node_fill_copy(n, t->data, t->size) != 0) {
        nsys__node_free(rt, n);
        n = NULL;
    }
    if (n == NULL) {
        NSYS_LOG(NSYS_LOG_ERROR, "timer %llu: out of memory, firing lost", (unsigned long long)t->id);
    } else {
        n->msg.type = t->type;
        n->msg.from = a->self;
        if (to_self) {
            n->hdr.flags |= NSYS__NODE_F_TIMER;
            n->aux = t->id;
        }
        if (nsys__send_node(rt, t->to, n) != 0) {
            nsys__node_release_payload(n);
            nsys__node_free(rt, n);
        }
    }
    /* A one-shot to itself stays listed until delivery claims it. */
    if (!t->periodic && !to_self)
        timer_drop(a, t);
}

bool nsys__timer_claim(nsys__actor_t *a, uint64_t id)
{
    nsys__timer_t *t = find(a, id);
    if (t == NULL)
        return false;
    if (!t->periodic)
        timer_drop(a, t);
    return true;
}

void nsys__timers_cancel_all(nsys__actor_t *a)
{
    while (a->ext != NULL && a->ext->timers != NULL)
        timer_drop(a, a->ext->timers);
}

static int start(nsys_ctx_t *ctx, nsys_ref_t to, uint64_t ms, bool periodic, uint32_t type,
                 const void *data, size_t size, nsys_timer_t *out)
{
    if (ctx == NULL || nsys__tls_sched != ctx->sched || (data == NULL && size > 0))
        return NSYS_EINVAL;
    if (type < NSYS_MSG_SYSTEM_MAX || (periodic && ms == 0))
        return NSYS_EINVAL;
    nsys__ext_t *e = nsys__ext(ctx);
    nsys__timer_t *t = e != NULL ? malloc(sizeof *t + size) : NULL;
    if (t == NULL)
        return NSYS_ENOMEM;
    uv_timer_init(&ctx->sched->loop, &t->handle);
    t->handle.data = t;
    t->owner = ctx;
    t->to = to == NSYS_REF_NONE ? ctx->self : to;
    t->id = ++e->next_timer_id;
    t->type = type;
    t->periodic = periodic;
    t->size = size;
    if (size > 0)
        memcpy(t->data, data, size);
    t->prev = NULL;
    t->next = e->timers;
    if (e->timers != NULL)
        e->timers->prev = t;
    e->timers = t;
    /* The loop's clock is cached per iteration and turns may have run since:
     * refresh it, or a timer started after a slow handler fires early. */
    uv_update_time(&ctx->sched->loop);
    uv_timer_start(&t->handle, on_fire, ms, periodic ? ms : 0);
    if (out != NULL)
        *out = t->id;
    return 0;
}

int nsys_send_after(nsys_ctx_t *ctx, nsys_ref_t to, uint64_t delay_ms, uint32_t type,
                    const void *data, size_t size, nsys_timer_t *timer)
{
    return start(ctx, to, delay_ms, false, type, data, size, timer);
}

int nsys_send_interval(nsys_ctx_t *ctx, nsys_ref_t to, uint64_t interval_ms, uint32_t type,
                       const void *data, size_t size, nsys_timer_t *timer)
{
    return start(ctx, to, interval_ms, true, type, data, size, timer);
}

int nsys_timer_cancel(nsys_ctx_t *ctx, nsys_timer_t timer)
{
    if (ctx == NULL || nsys__tls_sched != ctx->sched)
        return NSYS_EINVAL;
    nsys__timer_t *t = find(ctx, timer);
    if (t == NULL)
        return NSYS_ENOENT;
    timer_drop(ctx, t);
    return 0;
}

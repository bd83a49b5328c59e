/* runtime/actor.c — an actor's life: spawn, turns, system messages,
 * monitors and links, exit, retirement and the final free.
 *
 * Everything here that touches an actor's fields runs on the actor's own
 * scheduler thread. Other threads only push into its mailbox or raise its
 * kill flag, under the protection of the reclamation epoch (scheduler
 * threads) or a pin (outside threads).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- small arrays in the lazily allocated extension ---------------------- */

nsys__ext_t *nsys__ext(nsys__actor_t *a)
{
    if (a->ext == NULL)
        a->ext = calloc(1, sizeof *a->ext);
    return a->ext;
}

/* The first allocation holds one entry: an actor that is linked, monitored
 * or monitoring most often has one peer (a session: its listener's
 * monitor), and a server holds one such actor per connection, so room for
 * four would cost each of them 48 bytes more (docs/BENCHMARKS.md, W6). */
static int grow(void **arr, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 1;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return NSYS_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int refs_add(nsys_ref_t **arr, uint32_t *n, uint32_t *cap, nsys_ref_t r)
{
    for (uint32_t i = 0; i < *n; i++)
        if ((*arr)[i] == r)
            return 0;
    if (*n == *cap && grow((void **)arr, cap, sizeof **arr) != 0)
        return NSYS_ENOMEM;
    (*arr)[(*n)++] = r;
    return 0;
}

static bool refs_remove(nsys_ref_t *arr, uint32_t *n, nsys_ref_t r)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i] == r) {
            arr[i] = arr[--*n];
            return true;
        }
    }
    return false;
}

static int watchers_add(nsys__watcher_t **arr, uint32_t *n, uint32_t *cap, nsys_ref_t r, uint64_t id)
{
    if (*n == *cap && grow((void **)arr, cap, sizeof **arr) != 0)
        return NSYS_ENOMEM;
    (*arr)[*n].ref = r;
    (*arr)[*n].id = id;
    (*n)++;
    return 0;
}

static bool watchers_remove_id(nsys__watcher_t *arr, uint32_t *n, uint64_t id, nsys_ref_t *ref)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i].id == id) {
            if (ref != NULL)
                *ref = arr[i].ref;
            arr[i] = arr[--*n];
            return true;
        }
    }
    return false;
}

static void ext_free(nsys__actor_t *a)
{
    if (a->ext == NULL)
        return;
    free(a->ext->links);
    free(a->ext->watchers);
    free(a->ext->monitors);
    free(a->ext);
    a->ext = NULL;
}

/* Sends a DOWN for monitor `id` of `ref` to `watcher`. */
static int send_down(nsys_runtime_t *rt, nsys_ref_t watcher, nsys_ref_t ref, uint64_t id, int reason)
{
    nsys_down_t d = {.ref = ref, .monitor = id, .reason = reason};
    nsys__node_t *n = nsys__node_alloc(rt);
    if (n == NULL)
        return NSYS_ENOMEM;
    n->msg.type = NSYS_MSG_DOWN;
    n->msg.from = ref;
    nsys__node_fill_copy(n, &d, sizeof d);
    int rc = nsys__send_node(rt, watcher, n);
    if (rc != 0)
        nsys__node_free(rt, n);
    return rc;
}

/* ---- context accessors ---------------------------------------------------- */

nsys_ref_t nsys_self(const nsys_ctx_t *ctx) { return ctx != NULL ? ctx->self : NSYS_REF_NONE; }
nsys_ref_t nsys_parent(const nsys_ctx_t *ctx) { return ctx != NULL ? ctx->parent : NSYS_REF_NONE; }
nsys_runtime_t *nsys_ctx_runtime(const nsys_ctx_t *ctx) { return ctx != NULL ? ctx->sched->rt : NULL; }
uv_loop_t *nsys_ctx_loop(const nsys_ctx_t *ctx) { return ctx != NULL ? &ctx->sched->loop : NULL; }
unsigned nsys_ctx_scheduler(const nsys_ctx_t *ctx) { return ctx != NULL ? ctx->sched->index : 0; }
void *nsys_ctx_state(const nsys_ctx_t *ctx) { return ctx != NULL ? (void *)ctx->state : NULL; }
const nsys_behaviour_t *nsys_ctx_behaviour(const nsys_ctx_t *ctx) { return ctx != NULL ? ctx->beh : NULL; }
nsys_ctx_t *nsys_current(void) { return nsys__tls_actor; }

static void fail(nsys__actor_t *a, int reason)
{
    if (!a->exiting) {
        a->exiting = 1;
        a->exit_reason = reason;
    }
}

void nsys_exit(nsys_ctx_t *ctx, int reason)
{
    if (ctx != NULL)
        fail(ctx, reason);
}

void nsys_set_turn_hook(nsys_ctx_t *ctx, void (*hook)(nsys_ctx_t *ctx, void *state))
{
    if (ctx != NULL)
        ctx->turn_hook = hook;
}

bool nsys_io_enter(nsys_ctx_t *ctx)
{
    if (ctx == NULL || !ctx->initialized || ctx->exiting || ctx->sched != nsys__tls_sched ||
        atomic_load_explicit(&ctx->kill_req, memory_order_relaxed))
        return false;
    if (nsys__tls_actor == ctx) { /* already running as it: a nested call */
        ctx->io_depth++;
        return true;
    }
    if (nsys__tls_actor != NULL)
        return false; /* another actor's callback: never run two at once */
    nsys__tls_actor = ctx;
    return true;
}

void nsys_io_leave(nsys_ctx_t *ctx)
{
    if (ctx == NULL || nsys__tls_actor != ctx)
        return;
    if (ctx->io_depth > 0) {
        ctx->io_depth--;
        return;
    }
    if (ctx->turn_hook != NULL && !ctx->exiting)
        ctx->turn_hook(ctx, ctx->state);
    nsys__tls_actor = NULL;
    nsys__stage_flush(ctx->sched);
    if (ctx->exiting && !ctx->wake_sent) {
        /* The exit is carried out by the actor's next turn, which this
         * message makes sure happens even with an empty mailbox. */
        ctx->wake_sent = 1;
        nsys__send_sys(ctx->sched->rt, ctx->self, ctx->self, NSYS__MSG_WAKE, NULL);
    }
}

bool nsys_trap_exit(nsys_ctx_t *ctx, bool trap)
{
    if (ctx == NULL)
        return false;
    bool old = ctx->trap != 0;
    ctx->trap = trap ? 1 : 0;
    return old;
}

/* ---- spawn ------------------------------------------------------------------ */

static nsys__sched_t *place(nsys_runtime_t *rt, const nsys_spawn_opts_t *o)
{
    switch (o->placement) {
    case NSYS_PLACE_INDEX:
        return o->sched_index < rt->nsched ? &rt->scheds[o->sched_index] : NULL;
    case NSYS_PLACE_DEFAULT:
    case NSYS_PLACE_SAME:
        if (nsys__on_runtime_thread(rt))
            return nsys__tls_sched;
        /* fall through */
    case NSYS_PLACE_ANY: {
        unsigned i = atomic_fetch_add_explicit(&rt->rr, 1, memory_order_relaxed);
        return &rt->scheds[i % rt->nsched];
    }
    default:
        return NULL;
    }
}

static void top_add(nsys_runtime_t *rt, nsys_ref_t ref)
{
    uv_mutex_lock(&rt->top_mu);
    if (rt->ntop == rt->captop) {
        /* Forget the dead before growing. */
        size_t k = 0;
        for (size_t i = 0; i < rt->ntop; i++)
            if (nsys_is_alive(rt, rt->top[i]))
                rt->top[k++] = rt->top[i];
        rt->ntop = k;
        if (rt->ntop * 2 >= rt->captop) {
            size_t ncap = rt->captop ? rt->captop * 2 : 16;
            nsys_ref_t *p = realloc(rt->top, ncap * sizeof *p);
            if (p == NULL) { /* the forced phase of the stop still gets it */
                uv_mutex_unlock(&rt->top_mu);
                return;
            }
            rt->top = p;
            rt->captop = ncap;
        }
    }
    rt->top[rt->ntop++] = ref;
    uv_mutex_unlock(&rt->top_mu);
}

int nsys_spawn(nsys_runtime_t *rt, const nsys_behaviour_t *beh, const nsys_spawn_opts_t *opts,
               nsys_ref_t *out)
{
    static const nsys_spawn_opts_t defaults = NSYS_SPAWN_OPTS_DEFAULTS;
    if (rt == NULL || beh == NULL || beh->handle == NULL)
        return NSYS_EINVAL;
    const nsys_spawn_opts_t *o = opts != NULL ? opts : &defaults;
    bool internal;
    int rc = nsys__gate_enter(rt, &internal);
    if (rc != 0)
        return rc;
    if (atomic_load_explicit(&rt->state, memory_order_acquire) >= NSYS__RT_FORCE) {
        nsys__gate_leave(rt, internal);
        return NSYS_ESTOPPED;
    }
    nsys__actor_t *parent = internal ? nsys__tls_actor : NULL;
    if ((o->link || o->monitor || o->ack) && parent == NULL) {
        nsys__gate_leave(rt, internal);
        return NSYS_ENOTACTOR;
    }
    nsys__sched_t *s = place(rt, o);
    if (s == NULL) {
        nsys__gate_leave(rt, internal);
        return NSYS_EINVAL;
    }

    nsys__actor_t *a = calloc(1, sizeof *a + beh->state_size);
    uint32_t slot = 0, gen = 0;
    rc = a == NULL ? NSYS_ENOMEM : nsys__table_alloc(&rt->table, &slot, &gen);
    if (rc != 0)
        goto fail;
    a->beh = beh;
    a->sched = s;
    a->self = ((nsys_ref_t)gen << 32) | slot;
    a->parent = parent != NULL ? parent->self : NSYS_REF_NONE;
    a->ack_to = o->ack ? parent->self : NSYS_REF_NONE;
    a->args = o->args;
    a->args_free = o->args_free;
    a->stub.kind = NSYS__NODE_STUB;
    /* Not marked empty: nobody but us schedules it, and init runs first. */
    nsys__mailbox_init(&a->mb, &a->stub.link);

    uint64_t mon_id = 0;
    if (o->link || o->monitor) {
        nsys__ext_t *pe = nsys__ext(parent), *ce = nsys__ext(a);
        rc = (pe == NULL || ce == NULL) ? NSYS_ENOMEM : 0;
        if (rc == 0 && o->link) {
            rc = refs_add(&ce->links, &ce->nlinks, &ce->caplinks, parent->self);
            if (rc == 0)
                rc = refs_add(&pe->links, &pe->nlinks, &pe->caplinks, a->self);
        }
        if (rc == 0 && o->monitor) {
            mon_id = atomic_fetch_add_explicit(&rt->monitor_seq, 1, memory_order_relaxed) + 1;
            rc = watchers_add(&ce->watchers, &ce->nwatchers, &ce->capwatchers, parent->self, mon_id);
            if (rc == 0)
                rc = watchers_add(&pe->monitors, &pe->nmonitors, &pe->capmonitors, a->self, mon_id);
        }
        if (rc != 0) {
            if (pe != NULL) {
                refs_remove(pe->links, &pe->nlinks, a->self);
                watchers_remove_id(pe->monitors, &pe->nmonitors, mon_id, NULL);
            }
            nsys__table_release(&rt->table, slot);
            goto fail;
        }
    }

    nsys__slot_t *sl = nsys__table_slot(&rt->table, slot);
    atomic_store_explicit(&sl->actor, a, memory_order_relaxed);
    atomic_store_explicit(&sl->word, ((uint64_t)gen << 32) | NSYS__ALIVE, memory_order_release);
    atomic_fetch_add_explicit(&rt->spawned, 1, memory_order_relaxed);
    if (parent == NULL)
        top_add(rt, a->self);
    if (o->monitor && o->monitor_id != NULL)
        *o->monitor_id = mon_id;
    if (out != NULL)
        *out = a->self;
    nsys__schedule(a);
    nsys__gate_leave(rt, internal);
    return 0;

fail:
    if (a != NULL)
        ext_free(a);
    free(a);
    nsys__gate_leave(rt, internal);
    return rc;
}

/* ---- turns and dispatch --------------------------------------------------------- */

static void call_handle(nsys__actor_t *a, nsys_msg_t *msg)
{
    int rc = a->beh->handle(a, a->state, msg);
    if (rc != 0)
        fail(a, rc > 0 ? NSYS_EFAILED : rc);
}

/* Drops the spawn args if init did not consume them (it never ran). */
static void free_args(nsys__actor_t *a)
{
    if (a->args_free != NULL)
        a->args_free(a->args);
    a->args = NULL;
    a->args_free = NULL;
}

/* The first turn: join the scheduler's list and run init. */
static void do_init(nsys__actor_t *a)
{
    nsys__sched_t *s = a->sched;
    a->started = 1;
    a->prev = NULL;
    a->next = s->actors;
    if (s->actors != NULL)
        s->actors->prev = a;
    s->actors = a;
    a->listed = 1;
    nsys__counter_add(&s->nactors, 1);
    int rc = a->beh->init != NULL ? a->beh->init(a, a->state, a->args) : 0;
    free_args(a);
    if (rc != 0) {
        fail(a, rc > 0 ? NSYS_EFAILED : rc);
        return;
    }
    a->initialized = 1;
    if (!a->ack_deferred)
        nsys_ack(a);
}

void nsys_defer_ack(nsys_ctx_t *ctx)
{
    if (ctx != NULL)
        ctx->ack_deferred = 1;
}

int nsys_ack(nsys_ctx_t *ctx)
{
    if (ctx == NULL)
        return NSYS_EINVAL;
    if (ctx->ack_to == NSYS_REF_NONE)
        return 0;
    nsys_ref_t to = ctx->ack_to;
    ctx->ack_to = NSYS_REF_NONE;
    nsys_runtime_t *rt = ctx->sched->rt;
    nsys__node_t *n = nsys__node_alloc(rt);
    if (n == NULL)
        return NSYS_ENOMEM;
    nsys_started_t st = {.ref = ctx->self};
    n->msg.type = NSYS_MSG_STARTED;
    n->msg.from = ctx->self;
    nsys__node_fill_copy(n, &st, sizeof st);
    int rc = nsys__send_node(rt, to, n);
    if (rc != 0)
        nsys__node_free(rt, n);
    return rc == NSYS_ENOACTOR ? 0 : rc;
}

/* An exit signal. For a trapping actor the node itself becomes the
 * NSYS_MSG_EXIT message, so the handler sees a real message. */
static void on_signal(nsys__actor_t *a, nsys__node_t *n)
{
    nsys__sysmsg_t sm;
    memcpy(&sm, n->msg.data, sizeof sm);
    if (sm.linked) {
        /* Only a live link carries an exit; an unlinked peer's is stale. */
        if (a->ext == NULL || !refs_remove(a->ext->links, &a->ext->nlinks, sm.ref))
            return;
    }
    if (a->trap) {
        nsys_exit_t ex = {.from = sm.ref, .reason = sm.reason};
        memcpy(n->inline_bytes, &ex, sizeof ex);
        n->msg.type = NSYS_MSG_EXIT;
        n->msg.from = sm.ref;
        n->msg.data = n->inline_bytes;
        n->msg.size = sizeof ex;
        call_handle(a, &n->msg);
    } else if (sm.reason != NSYS_REASON_NORMAL) {
        fail(a, sm.reason);
    }
}

static void dispatch(nsys__actor_t *a, nsys__node_t *n)
{
    nsys_msg_t *msg = &n->msg;
    nsys__sysmsg_t *sm = msg->data;
    nsys__ext_t *e;
    switch (msg->type) {
    case NSYS__MSG_MONITOR:
        e = nsys__ext(a);
        if (e == NULL || watchers_add(&e->watchers, &e->nwatchers, &e->capwatchers, sm->ref, sm->id) != 0)
            fail(a, NSYS_ENOMEM);
        break;
    case NSYS__MSG_DEMONITOR:
        if (a->ext != NULL)
            watchers_remove_id(a->ext->watchers, &a->ext->nwatchers, sm->id, NULL);
        break;
    case NSYS__MSG_LINK:
        e = nsys__ext(a);
        if (e == NULL || refs_add(&e->links, &e->nlinks, &e->caplinks, sm->ref) != 0)
            fail(a, NSYS_ENOMEM);
        break;
    case NSYS__MSG_UNLINK:
        if (a->ext != NULL)
            refs_remove(a->ext->links, &a->ext->nlinks, sm->ref);
        break;
    case NSYS__MSG_SIGNAL:
        on_signal(a, n);
        break;
    case NSYS__MSG_KILL:
    case NSYS__MSG_WAKE:
        break; /* the flag, checked before each message, did the work */
    case NSYS_MSG_DOWN: {
        /* Deliver only DOWNs of monitors still held: demonitor flushes. */
        nsys_down_t *d = msg->data;
        if (msg->size == sizeof *d && a->ext != NULL &&
            watchers_remove_id(a->ext->monitors, &a->ext->nmonitors, d->monitor, NULL))
            call_handle(a, msg);
        break;
    }
    default:
        if ((n->hdr.flags & NSYS__NODE_F_TIMER) && !nsys__timer_claim(a, n->aux))
            break; /* cancelled after it fired */
        call_handle(a, msg);
        break;
    }
    nsys__node_release_payload(n);
}

void nsys__run_turn(nsys__sched_t *s, nsys__actor_t *a)
{
    nsys_runtime_t *rt = s->rt;
    nsys__tls_actor = a;
    unsigned n = 0;
    if (!a->started && !atomic_load_explicit(&a->kill_req, memory_order_relaxed)) {
        do_init(a);
        n++;
    }
    for (; n < rt->batch && !a->exiting; n++) {
        if (atomic_load_explicit(&a->kill_req, memory_order_relaxed)) {
            a->exiting = 1;
            a->exit_reason = NSYS_REASON_KILLED;
            break;
        }
        nsys__mpsc_node_t *old = NULL;
        nsys__mpsc_node_t *link = nsys__mailbox_pop(&a->mb, &old);
        if (link == NULL)
            break;
        nsys__node_free(rt, (nsys__node_t *)old);
        dispatch(a, (nsys__node_t *)link);
    }
    if (atomic_load_explicit(&a->kill_req, memory_order_relaxed) && !a->exiting) {
        a->exiting = 1;
        a->exit_reason = NSYS_REASON_KILLED;
    }
    if (a->turn_hook != NULL && !a->exiting)
        a->turn_hook(a, a->state);
    nsys__tls_actor = NULL;
    nsys__stage_flush(s);
    nsys__counter_add(&s->handled, n);
    if (a->exiting) {
        nsys__exit_actor(a);
        nsys__retire(s, a);
    } else if (n >= rt->batch || !nsys__mailbox_mark_empty(&a->mb)) {
        nsys__schedule(a); /* more to do: back of the line */
    }
}

/* ---- exit --------------------------------------------------------------------------- */

/* Runs on the actor's thread with a pin held by the caller. Calls terminate,
 * cancels timers, marks the slot dead, releases the name, and tells links and
 * monitors. The memory goes when the last pin does (nsys__finalize). */
void nsys__exit_actor(nsys__actor_t *a)
{
    nsys__sched_t *s = a->sched;
    nsys_runtime_t *rt = s->rt;
    int reason = a->exit_reason;
    if (a->initialized && a->beh->terminate != NULL) {
        nsys__tls_actor = a;
        a->beh->terminate(a, a->state, reason);
        nsys__tls_actor = NULL;
        nsys__stage_flush(s); /* what terminate sent goes before our exit signals */
    }
    a->initialized = 0;
    free_args(a);
    nsys__timers_cancel_all(a);

    nsys__slot_t *sl = nsys__table_slot(&rt->table, NSYS_REF_SLOT(a->self));
    atomic_fetch_and_explicit(&sl->word, ~NSYS__ALIVE, memory_order_seq_cst);
    if (atomic_load_explicit(&a->named, memory_order_seq_cst))
        nsys__registry_remove_ref(rt, a->self);

    /* Monitor and link requests that reached us before we died count: their
     * senders learn the real reason. What else is queued is dropped. */
    nsys__mpsc_node_t *old = NULL, *link;
    while ((link = nsys__mailbox_pop(&a->mb, &old)) != NULL) {
        nsys__node_free(rt, (nsys__node_t *)old);
        nsys__node_t *n = (nsys__node_t *)link;
        uint32_t type = n->msg.type;
        if (type == NSYS__MSG_MONITOR || type == NSYS__MSG_LINK || type == NSYS__MSG_DEMONITOR ||
            type == NSYS__MSG_UNLINK)
            dispatch(a, n);
        else if (type >= NSYS_MSG_SYSTEM_MAX)
            nsys__dead_letter(rt, type, a->self);
        nsys__node_release_payload(n);
    }

    nsys__ext_t *e = a->ext;
    if (e != NULL) {
        for (uint32_t i = 0; i < e->nlinks; i++) {
            nsys__sysmsg_t sm = {.ref = a->self, .reason = reason, .linked = 1};
            nsys__send_sys(rt, a->self, e->links[i], NSYS__MSG_SIGNAL, &sm);
        }
        for (uint32_t i = 0; i < e->nwatchers; i++)
            send_down(rt, e->watchers[i].ref, a->self, e->watchers[i].id, reason);
        for (uint32_t i = 0; i < e->nmonitors; i++) {
            nsys__sysmsg_t sm = {.id = e->monitors[i].id};
            nsys__send_sys(rt, a->self, e->monitors[i].ref, NSYS__MSG_DEMONITOR, &sm);
        }
    }
    ext_free(a);

    if (a->listed) {
        if (a->prev != NULL)
            a->prev->next = a->next;
        else
            s->actors = a->next;
        if (a->next != NULL)
            a->next->prev = a->prev;
        a->listed = 0;
        nsys__counter_add(&s->nactors, (uint64_t)-1);
    }
    a->exited = 1;
    atomic_fetch_add_explicit(&rt->exited, 1, memory_order_relaxed);
    if (!nsys_reason_is_clean(reason))
        atomic_fetch_add_explicit(&rt->failed, 1, memory_order_relaxed);
    nsys__notify_exit(rt);
}

/* Terminates an actor from its scheduler outside a turn (forced stop). An
 * idle actor's mailbox is unmarked first so that no late sender queues it; if
 * a sender already took the mark, the actor is (or will be) in the ready
 * queue, and the stop's final drain skips it there. */
void nsys__actor_force_exit(nsys__actor_t *a, int reason)
{
    nsys__mailbox_unmark(&a->mb);
    fail(a, reason);
    nsys__exit_actor(a);
    nsys__retire(a->sched, a);
}

/* Retires an exited actor: it waits in its scheduler's limbo until no thread
 * can still reach it (see nsys__reclaim). */
void nsys__retire(nsys__sched_t *s, nsys__actor_t *a)
{
    a->retired_at = atomic_load_explicit(&s->rt->epoch, memory_order_seq_cst);
    a->next = s->limbo;
    s->limbo = a;
}

/* Frees a retired actor nobody can reach any more. What is still queued is
 * answered (monitor and link requests learn the actor is gone) or dropped;
 * `quiet` (the forced stop) sends nothing. */
void nsys__finalize(nsys_runtime_t *rt, nsys__actor_t *a, bool quiet)
{
    nsys__mpsc_node_t *old = NULL, *link;
    while ((link = nsys__mailbox_pop(&a->mb, &old)) != NULL) {
        nsys__node_free(rt, (nsys__node_t *)old);
        nsys__node_t *n = (nsys__node_t *)link;
        nsys__sysmsg_t *sm = n->msg.data;
        if (quiet) {
            /* nothing is answered while everything stops */
        } else if (n->msg.type == NSYS__MSG_MONITOR) {
            send_down(rt, sm->ref, a->self, sm->id, NSYS_REASON_NOPROC);
        } else if (n->msg.type == NSYS__MSG_LINK) {
            nsys__sysmsg_t ex = {.ref = a->self, .reason = NSYS_REASON_NOPROC, .linked = 1};
            nsys__send_sys(rt, a->self, sm->ref, NSYS__MSG_SIGNAL, &ex);
        } else if (n->msg.type >= NSYS_MSG_SYSTEM_MAX) {
            nsys__dead_letter(rt, n->msg.type, a->self);
        }
        nsys__node_release_payload(n);
    }
    nsys__node_free(rt, (nsys__node_t *)a->mb.tail);
    nsys__table_release(&rt->table, NSYS_REF_SLOT(a->self));
    free(a);
}

/* ---- monitors, links, signals ------------------------------------------------------ */

/* Calls on an actor's own context belong on its scheduler's thread. */
static bool own_thread(const nsys_ctx_t *ctx) { return ctx != NULL && nsys__tls_sched == ctx->sched; }

int nsys_monitor(nsys_ctx_t *ctx, nsys_ref_t target, uint64_t *monitor_id)
{
    if (!own_thread(ctx) || target == NSYS_REF_NONE)
        return NSYS_EINVAL;
    nsys_runtime_t *rt = ctx->sched->rt;
    nsys__ext_t *e = nsys__ext(ctx);
    if (e == NULL)
        return NSYS_ENOMEM;
    uint64_t id = atomic_fetch_add_explicit(&rt->monitor_seq, 1, memory_order_relaxed) + 1;
    if (watchers_add(&e->monitors, &e->nmonitors, &e->capmonitors, target, id) != 0)
        return NSYS_ENOMEM;
    nsys__sysmsg_t sm = {.ref = ctx->self, .id = id};
    int rc = nsys__send_sys(rt, ctx->self, target, NSYS__MSG_MONITOR, &sm);
    if (rc == NSYS_ENOACTOR)
        rc = send_down(rt, ctx->self, target, id, NSYS_REASON_NOPROC);
    if (rc != 0) {
        watchers_remove_id(e->monitors, &e->nmonitors, id, NULL);
        return rc;
    }
    if (monitor_id != NULL)
        *monitor_id = id;
    return 0;
}

int nsys_demonitor(nsys_ctx_t *ctx, uint64_t monitor_id)
{
    if (!own_thread(ctx))
        return NSYS_EINVAL;
    nsys_ref_t target;
    if (ctx->ext == NULL ||
        !watchers_remove_id(ctx->ext->monitors, &ctx->ext->nmonitors, monitor_id, &target))
        return NSYS_ENOENT;
    nsys__sysmsg_t sm = {.id = monitor_id};
    nsys__send_sys(ctx->sched->rt, ctx->self, target, NSYS__MSG_DEMONITOR, &sm);
    return 0;
}

int nsys_link(nsys_ctx_t *ctx, nsys_ref_t target)
{
    if (!own_thread(ctx) || target == NSYS_REF_NONE)
        return NSYS_EINVAL;
    if (target == ctx->self)
        return 0;
    nsys__ext_t *e = nsys__ext(ctx);
    if (e == NULL || refs_add(&e->links, &e->nlinks, &e->caplinks, target) != 0)
        return NSYS_ENOMEM;
    nsys__sysmsg_t sm = {.ref = ctx->self};
    int rc = nsys__send_sys(ctx->sched->rt, ctx->self, target, NSYS__MSG_LINK, &sm);
    if (rc != 0)
        refs_remove(e->links, &e->nlinks, target);
    return rc;
}

int nsys_unlink(nsys_ctx_t *ctx, nsys_ref_t target)
{
    if (!own_thread(ctx) || target == NSYS_REF_NONE)
        return NSYS_EINVAL;
    if (ctx->ext == NULL || !refs_remove(ctx->ext->links, &ctx->ext->nlinks, target))
        return 0;
    nsys__sysmsg_t sm = {.ref = ctx->self};
    nsys__send_sys(ctx->sched->rt, ctx->self, target, NSYS__MSG_UNLINK, &sm);
    return 0;
}

int nsys_exit_signal(nsys_runtime_t *rt, nsys_ref_t to, int reason)
{
    if (rt == NULL || to == NSYS_REF_NONE)
        return NSYS_EINVAL;
    bool internal;
    int rc = nsys__gate_enter(rt, &internal);
    if (rc != 0)
        return rc;
    nsys_ref_t from = nsys__current_ref(rt);
    nsys__sysmsg_t sm = {.ref = from, .reason = reason, .linked = 0};
    rc = nsys__send_sys(rt, from, to, NSYS__MSG_SIGNAL, &sm);
    nsys__gate_leave(rt, internal);
    return rc;
}

int nsys_kill(nsys_runtime_t *rt, nsys_ref_t to)
{
    if (rt == NULL || to == NSYS_REF_NONE)
        return NSYS_EINVAL;
    bool internal;
    int rc = nsys__gate_enter(rt, &internal);
    if (rc != 0)
        return rc;
    nsys__actor_t *a = nsys__acquire(rt, to, internal);
    if (a == NULL) {
        nsys__gate_leave(rt, internal);
        return NSYS_ENOACTOR;
    }
    atomic_store_explicit(&a->kill_req, 1, memory_order_relaxed);
    nsys__node_t *n = nsys__node_alloc(rt);
    if (n != NULL) {
        /* A message makes sure an idle actor runs and sees the flag. */
        n->msg.type = NSYS__MSG_KILL;
        n->msg.from = nsys__current_ref(rt);
        if (nsys__mailbox_push(&a->mb, &n->hdr.link))
            nsys__schedule(a);
    }
    nsys__release(rt, a, internal);
    nsys__gate_leave(rt, internal);
    return n != NULL ? 0 : NSYS_ENOMEM;
}

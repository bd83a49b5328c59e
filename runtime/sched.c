/* runtime/sched.c — a scheduler thread: runs ready actors in turns,
 * interleaved with its libuv loop, spins briefly when idle, then parks in
 * uv_run until a uv_async wake-up, a timer or I/O. Also its part of the
 * forced stop. Not for: deciding what actors do (actor.c). */
#include "internal.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* A busy scheduler looks at the clock every POLL_CHECK_CYCLES cycles and
 * polls I/O and timers when POLL_INTERVAL_NS have passed since the last poll:
 * I/O latency under load stays bounded while the poll's system call is
 * amortised over many turns. */
#define POLL_CHECK_CYCLES 16u
#define POLL_INTERVAL_NS 100000u

static void on_async(uv_async_t *h)
{
    nsys__sched_t *s = h->data;
    nsys__counter_add(&s->wakeups, 1);
}

static nsys__actor_t *actor_of(nsys__mpsc_node_t *n)
{
    return (nsys__actor_t *)((char *)n - offsetof(nsys__actor_t, rq));
}

static nsys__actor_t *local_pop(nsys__sched_t *s)
{
    nsys__mpsc_node_t *n = s->local_head;
    if (n == NULL)
        return NULL;
    s->local_head = atomic_load_explicit(&n->next, memory_order_relaxed);
    if (s->local_head == NULL)
        s->local_tail = NULL;
    s->local_count--;
    return actor_of(n);
}

/* Moves what other threads made ready onto the local list. */
static void take_incoming(nsys__sched_t *s)
{
    nsys__mpsc_node_t *n;
    while ((n = nsys__runq_pop(&s->runq)) != NULL) {
        atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
        if (s->local_tail != NULL)
            atomic_store_explicit(&s->local_tail->next, n, memory_order_relaxed);
        else
            s->local_head = n;
        s->local_tail = n;
        s->local_count++;
    }
}

/* One cycle: every actor ready at its start gets one turn. */
static void run_cycle(nsys__sched_t *s)
{
    take_incoming(s);
    uint64_t budget = s->local_count;
    atomic_store_explicit(&s->ready_depth.v, budget, memory_order_relaxed);
    for (uint64_t i = 0; i < budget; i++) {
        nsys__actor_t *a = local_pop(s);
        if (a == NULL)
            break;
        nsys__run_turn(s, a);
    }
}

static bool has_work(nsys__sched_t *s)
{
    return s->local_head != NULL || nsys__runq_maybe_nonempty(&s->runq);
}

static bool stopping(nsys__sched_t *s)
{
    return atomic_load_explicit(&s->phase, memory_order_acquire) != NSYS__PHASE_RUN;
}

static bool spin(nsys__sched_t *s)
{
    int64_t limit = s->rt->spin_ns;
    if (limit <= 0)
        return false;
    uint64_t start = uv_hrtime();
    for (unsigned i = 1;; i++) {
        if (nsys__runq_maybe_nonempty(&s->runq) || stopping(s))
            return true;
        CPU_RELAX();
        if ((i & 63u) == 0 && (int64_t)(uv_hrtime() - start) > limit)
            return false;
    }
}

/* ---- epoch-based reclamation ---------------------------------------------- */

/* Between cycles a scheduler holds no pointer to another actor, so it can
 * announce the current global epoch. The epoch advances once every running
 * scheduler has announced it; an actor retired at epoch r is freed once the
 * epoch reaches r + 2, when no scheduler can still be inside a cycle that
 * found it alive. A parked scheduler announces NSYS__EPOCH_IDLE and joins
 * again (lazily, see lookup in table.c) before it next touches an actor. */
#define ANNOUNCE_EVERY_CYCLES 64u

void nsys__epoch_announce(nsys__sched_t *s)
{
    uint64_t e = atomic_load_explicit(&s->rt->epoch, memory_order_seq_cst);
    atomic_store_explicit(&s->epoch, e, memory_order_seq_cst);
    s->in_epoch = true;
    s->cycles_since_announce = 0;
}

static void try_advance(nsys_runtime_t *rt, uint64_t e)
{
    for (unsigned i = 0; i < rt->nsched; i++) {
        uint64_t v = atomic_load_explicit(&rt->scheds[i].epoch, memory_order_seq_cst);
        if (v != NSYS__EPOCH_IDLE && v != e)
            return;
    }
    atomic_compare_exchange_strong_explicit(&rt->epoch, &e, e + 1, memory_order_seq_cst,
                                            memory_order_relaxed);
}

/* Frees what is safe to free in this scheduler's limbo (newest first, so the
 * scan stops being useful where entries get too young). `all`: the forced
 * stop, when nothing can reach anything any more. */
void nsys__reclaim(nsys__sched_t *s, bool all)
{
    nsys_runtime_t *rt = s->rt;
    if (s->limbo == NULL)
        return;
    uint64_t e = 0;
    if (!all) {
        nsys__epoch_announce(s);
        try_advance(rt, atomic_load_explicit(&rt->epoch, memory_order_seq_cst));
        e = atomic_load_explicit(&rt->epoch, memory_order_seq_cst);
    }
    nsys__actor_t **pp = &s->limbo;
    while (*pp != NULL) {
        nsys__actor_t *a = *pp;
        bool ready = all;
        if (!ready && a->retired_at + 2 <= e) {
            nsys__slot_t *sl = nsys__table_slot(&rt->table, NSYS_REF_SLOT(a->self));
            ready = (atomic_load_explicit(&sl->word, memory_order_acquire) & NSYS__PINS_MASK) == 0;
        }
        if (ready) {
            *pp = a->next;
            nsys__finalize(rt, a, all);
        } else {
            pp = &a->next;
        }
    }
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        NSYS_LOG(NSYS_LOG_WARN, "a libuv handle of type %s was still open at shutdown; closing it "
                 "(an actor's terminate should have)", uv_handle_type_name(uv_handle_get_type(h)));
        uv_close(h, NULL);
    }
}

/* The forced stop, on this scheduler's thread: terminate every actor it owns,
 * newest first; wait for every scheduler (and the stopping thread) to get
 * there; then release what is still queued and close the loop. */
static void force_stop(nsys__sched_t *s)
{
    nsys_runtime_t *rt = s->rt;
    if (!s->in_epoch)
        nsys__epoch_announce(s);
    while (s->actors != NULL)
        nsys__actor_force_exit(s->actors, NSYS_REASON_SHUTDOWN);
    uv_barrier_wait(&rt->force_barrier);
    /* No outside caller is left and no actor code runs any more: what is
     * still queued here either exited above or never ran init. */
    take_incoming(s);
    nsys__actor_t *a;
    while ((a = local_pop(s)) != NULL) {
        if (!a->exited) {
            a->exiting = 1;
            a->exit_reason = NSYS_REASON_SHUTDOWN;
            nsys__exit_actor(a);
            nsys__retire(s, a);
        }
    }
    /* Once every scheduler got here nothing sends any more: free it all. */
    uv_barrier_wait(&rt->drained_barrier);
    nsys__reclaim(s, true);
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_close((uv_handle_t *)&s->reclaim_timer, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_walk(&s->loop, on_walk_close, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0)
        NSYS_LOG(NSYS_LOG_ERROR, "scheduler %u: loop did not close cleanly", s->index);
}

#define RECLAIM_RETRY_MS 1

static void on_reclaim_timer(uv_timer_t *t) { (void)t; /* waking the loop is the point */ }

static void sched_main(void *arg)
{
    nsys__sched_t *s = arg;
    nsys__tls_sched = s;
    nsys__epoch_announce(s);
    for (;;) {
        run_cycle(s);
        if (stopping(s))
            break;
        if (s->limbo != NULL)
            nsys__reclaim(s, false);
        else if (++s->cycles_since_announce >= ANNOUNCE_EVERY_CYCLES)
            nsys__epoch_announce(s);
        if (s->local_head != NULL) {
            if (++s->cycles_since_poll >= POLL_CHECK_CYCLES) {
                s->cycles_since_poll = 0;
                uint64_t now = uv_hrtime();
                if (now - s->last_poll_ns >= POLL_INTERVAL_NS) {
                    s->last_poll_ns = now;
                    uv_run(&s->loop, UV_RUN_NOWAIT);
                }
            }
            continue;
        }
        /* Idle: poll I/O once, spin a little, then park. */
        s->cycles_since_poll = 0;
        s->last_poll_ns = uv_hrtime();
        uv_run(&s->loop, UV_RUN_NOWAIT);
        if (has_work(s) || spin(s))
            continue;
        /* Give retired actors their chance before sleeping: with the other
         * schedulers idle or current, two advances free them. */
        for (int i = 0; i < 3 && s->limbo != NULL; i++)
            nsys__reclaim(s, false);
        atomic_store_explicit(&s->sleeping, 1, memory_order_seq_cst);
        if (has_work(s) || stopping(s)) {
            atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
            continue;
        }
        nsys__counter_add(&s->parks, 1);
        atomic_store_explicit(&s->epoch, NSYS__EPOCH_IDLE, memory_order_seq_cst);
        s->in_epoch = false;
        s->parked = true;
        /* Retired actors still waiting (a busy scheduler has not passed the
         * epoch yet, or an outside thread pins one): come back for them
         * soon, or their slots would stay taken until the next message. */
        if (s->limbo != NULL)
            uv_timer_start(&s->reclaim_timer, on_reclaim_timer, RECLAIM_RETRY_MS, 0);
        uv_run(&s->loop, UV_RUN_ONCE);
        uv_timer_stop(&s->reclaim_timer);
        s->parked = false;
        atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
        if (!s->in_epoch)
            nsys__epoch_announce(s);
    }
    force_stop(s);
    nsys__pool_local_free(s->rt, &s->pool);
    nsys__tls_sched = NULL;
}

int nsys__sched_start(nsys_runtime_t *rt, nsys__sched_t *s, unsigned index)
{
    s->rt = rt;
    s->index = index;
    nsys__runq_init(&s->runq);
    atomic_init(&s->sleeping, 0);
    atomic_init(&s->phase, NSYS__PHASE_RUN);
    atomic_init(&s->epoch, NSYS__EPOCH_IDLE);
    int rc = uv_loop_init(&s->loop);
    if (rc != 0)
        return rc;
    rc = uv_async_init(&s->loop, &s->async, on_async);
    if (rc != 0) {
        uv_loop_close(&s->loop);
        return rc;
    }
    s->async.data = s;
    uv_timer_init(&s->loop, &s->reclaim_timer);
    rc = uv_thread_create(&s->thread, sched_main, s);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->reclaim_timer, NULL);
        uv_close((uv_handle_t *)&s->async, NULL);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        uv_loop_close(&s->loop);
    }
    return rc;
}

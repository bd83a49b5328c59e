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
    while (s->actors != NULL)
        nsys__actor_force_exit(s->actors, NSYS_REASON_SHUTDOWN);
    uv_barrier_wait(&s->rt->force_barrier);
    /* Nothing can become ready any more; what is queued never ran init. */
    take_incoming(s);
    nsys__actor_t *a;
    while ((a = local_pop(s)) != NULL) {
        if (!a->exited) {
            a->exiting = 1;
            a->exit_reason = NSYS_REASON_SHUTDOWN;
            nsys__exit_actor(a);
        }
        nsys__unpin(s->rt, a);
    }
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_walk(&s->loop, on_walk_close, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0)
        NSYS_LOG(NSYS_LOG_ERROR, "scheduler %u: loop did not close cleanly", s->index);
}

static void sched_main(void *arg)
{
    nsys__sched_t *s = arg;
    nsys__tls_sched = s;
    for (;;) {
        run_cycle(s);
        if (stopping(s))
            break;
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
        atomic_store_explicit(&s->sleeping, 1, memory_order_seq_cst);
        if (has_work(s) || stopping(s)) {
            atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
            continue;
        }
        nsys__counter_add(&s->parks, 1);
        uv_run(&s->loop, UV_RUN_ONCE);
        atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
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
    int rc = uv_loop_init(&s->loop);
    if (rc != 0)
        return rc;
    rc = uv_async_init(&s->loop, &s->async, on_async);
    if (rc != 0) {
        uv_loop_close(&s->loop);
        return rc;
    }
    s->async.data = s;
    rc = uv_thread_create(&s->thread, sched_main, s);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->async, NULL);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        uv_loop_close(&s->loop);
    }
    return rc;
}

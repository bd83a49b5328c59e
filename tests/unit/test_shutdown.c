/* tests/unit/test_shutdown.c — nsys_runtime_stop: queued messages freed,
 * terminate for every live actor, top-level actors stopped newest first with
 * a timeout, libuv handles closed, racing senders, thousands of actors. The
 * leak checkers (ASan/LSan, valgrind) are half of every test here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"
#include "runtime/internal.h" /* a scheduler's phase, to hold it until the forced stop */

static atomic_int g_freed;

static void free_and_count(void *p)
{
    free(p);
    atomic_fetch_add(&g_freed, 1);
}

/* ---- an actor that handles slowly -------------------------------------- */

typedef struct slow {
    atomic_int handled;
    atomic_int terminated;
    atomic_int inited;
    int us;
} slow_t;

static int slow_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    *(slow_t **)state = args;
    atomic_fetch_add(&((slow_t *)args)->inited, 1);
    return 0;
}

static int slow_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)msg;
    slow_t *s = *(slow_t **)state;
    t_busy_us((uint64_t)s->us);
    atomic_fetch_add(&s->handled, 1);
    return 0;
}

static void slow_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    slow_t *s = *(slow_t **)state;
    atomic_fetch_add(&s->terminated, 1);
}

static const nsys_behaviour_t slow_b = {
    .name = "test.slow",
    .state_size = sizeof(slow_t *),
    .init = slow_init,
    .handle = slow_handle,
    .terminate = slow_terminate,
};

static nsys_runtime_t *runtime_with_timeout(unsigned scheds, uint64_t timeout_ms)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = scheds;
    o.shutdown_timeout_ms = timeout_ms;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    return rt;
}

Test(shutdown, messages_still_queued_at_stop_are_freed_exactly_once, .timeout = 300)
{
    nsys_runtime_t *rt = runtime_with_timeout(2, 50);
    slow_t s = {0};
    s.us = 1000;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &s;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &slow_b, &o, &ref), 0);
    enum { N = 1000 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_send_ptr(rt, ref, T_MSG_A, malloc(48), 48, free_and_count), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&s.handled) >= 1);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    int handled = atomic_load(&s.handled);
    cr_assert_eq(atomic_load(&g_freed), N, "%d of %d pointers freed (%d handled)", atomic_load(&g_freed), N,
                 handled);
    cr_assert_eq(atomic_load(&s.terminated), 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_freed), N);
}

typedef struct child_spawn {
    slow_t *s;
    nsys_ref_t child;
    int rc;
} child_spawn_t;

static int fn_spawn_slow_child(nsys_ctx_t *ctx, void *arg)
{
    child_spawn_t *c = arg;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = c->s;
    c->rc = nsys_spawn(nsys_ctx_runtime(ctx), &slow_b, &o, &c->child);
    return 0;
}

Test(shutdown, messages_queued_to_a_child_actor_are_freed_too, .timeout = 300)
{
    nsys_runtime_t *rt = runtime_with_timeout(2, 50);
    t_probe_t parent;
    t_probe_init(&parent);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &parent, NULL, &pref), 0);
    slow_t s = {0};
    s.us = 2000;
    child_spawn_t c = {&s, 0, -1};
    cr_assert_eq(t_call(rt, pref, fn_spawn_slow_child, &c, NULL), 0);
    cr_assert_eq(c.rc, 0);
    enum { N = 500 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_send_ptr(rt, c.child, T_MSG_A, malloc(16), 16, free_and_count), 0);
    /* The parent leaves at the first signal and the child is no top-level
     * actor, so the stop reaches its forced phase at once: a child whose
     * first turn has not come by then never ran init and gets no terminate
     * (the next test). This one is about a child that did. */
    T_ASSERT_EVENTUALLY(atomic_load(&s.inited) == 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_freed), N);
    cr_assert_eq(atomic_load(&s.terminated), 1, "terminated %d times", atomic_load(&s.terminated));
    t_probe_destroy(&parent);
}

/* An actor that, on any message, spawns a slow child on its own scheduler
 * and keeps that scheduler busy until the forced stop has begun there, so
 * the child's first turn never comes. */
typedef struct holder {
    slow_t *s;
    _Atomic uint64_t child;
    atomic_int saw_force;
} holder_t;

static int holder_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    *(holder_t **)state = args;
    return 0;
}

static int holder_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)msg;
    holder_t *h = *(holder_t **)state;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_SAME;
    o.args = h->s;
    nsys_ref_t child = NSYS_REF_NONE;
    int rc = nsys_spawn(rt, &slow_b, &o, &child);
    if (rc != 0)
        return rc;
    atomic_store(&h->child, child);
    nsys__sched_t *own = &rt->scheds[nsys_ctx_scheduler(ctx)];
    uint64_t deadline = t_now_ms() + T_WAIT_MS;
    while (atomic_load(&own->phase) != NSYS__PHASE_FORCE && t_now_ms() < deadline) {
    }
    atomic_store(&h->saw_force, atomic_load(&own->phase) == NSYS__PHASE_FORCE);
    return 0;
}

Test(shutdown, a_child_stopped_before_its_first_turn_gets_no_terminate_and_its_messages_are_freed,
     .timeout = 300)
{
    static const nsys_behaviour_t holder_b = {
        .name = "test.holder",
        .state_size = sizeof(holder_t *),
        .init = holder_init,
        .handle = holder_handle,
    };
    nsys_runtime_t *rt = runtime_with_timeout(2, 20);
    slow_t s = {0};
    holder_t h = {.s = &s};
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &h;
    nsys_ref_t holder;
    cr_assert_eq(nsys_spawn(rt, &holder_b, &o, &holder), 0);
    cr_assert_eq(t_send_int(rt, holder, T_MSG_A, 0), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&h.child) != NSYS_REF_NONE);
    nsys_ref_t child = atomic_load(&h.child);
    enum { N = 100 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_send_ptr(rt, child, T_MSG_A, malloc(16), 16, free_and_count), 0);
    T_RUNTIME_FREE(rt);
    cr_assert(atomic_load(&h.saw_force), "the holder gave up before the forced stop");
    cr_assert_eq(atomic_load(&g_freed), N, "%d of %d queued messages freed", atomic_load(&g_freed),
                 N);
    cr_assert_eq(atomic_load(&s.inited), 0, "the child ran init");
    cr_assert_eq(atomic_load(&s.terminated), 0, "terminate ran for a child whose init never ran");
}

/* ---- terminate order -------------------------------------------------------- */

typedef struct order {
    pthread_mutex_t mu;
    int seq[64];
    int reason[64];
    int n;
} order_t;

static order_t g_order = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct order_state {
    int index;
} order_state_t;

static int order_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    ((order_state_t *)state)->index = (int)(intptr_t)args;
    return 0;
}

static int order_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static void order_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    pthread_mutex_lock(&g_order.mu);
    if (g_order.n < 64) {
        g_order.reason[g_order.n] = reason;
        g_order.seq[g_order.n++] = ((order_state_t *)state)->index;
    }
    pthread_mutex_unlock(&g_order.mu);
}

static const nsys_behaviour_t order_b = {
    .name = "test.order",
    .state_size = sizeof(order_state_t),
    .init = order_init,
    .handle = order_handle,
    .terminate = order_terminate,
};

Test(shutdown, top_level_actors_are_stopped_newest_first_with_reason_shutdown)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    enum { N = 12 };
    for (int i = 0; i < N; i++) {
        nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
        o.args = (void *)(intptr_t)i;
        cr_assert_eq(nsys_spawn(rt, &order_b, &o, NULL), 0);
    }
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    cr_assert_eq(g_order.n, N, "%d of %d actors terminated", g_order.n, N);
    for (int k = 0; k < N; k++) {
        cr_assert_eq(g_order.seq[k], N - 1 - k, "terminate #%d was actor %d, expected %d", k, g_order.seq[k],
                     N - 1 - k);
        cr_assert_eq(g_order.reason[k], NSYS_REASON_SHUTDOWN, "actor %d ended with %s", g_order.seq[k],
                     nsys_errname(g_order.reason[k]));
    }
    T_RUNTIME_FREE(rt);
}

/* ---- every live actor is terminated -------------------------------------- */

typedef struct spawn2 {
    int rc[2];
} spawn2_t;

static atomic_int g_terms;

static int counted_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    (void)state;
    (void)args;
    return 0;
}

static int counted_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static void counted_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    (void)state;
    (void)reason;
    atomic_fetch_add(&g_terms, 1);
}

static const nsys_behaviour_t counted_b = {
    .name = "test.counted",
    .init = counted_init,
    .handle = counted_handle,
    .terminate = counted_terminate,
};

static int fn_spawn_two(nsys_ctx_t *ctx, void *arg)
{
    spawn2_t *s = arg;
    for (int i = 0; i < 2; i++)
        s->rc[i] = nsys_spawn(nsys_ctx_runtime(ctx), &counted_b, NULL, NULL);
    return 0;
}

Test(shutdown, terminate_runs_for_every_live_actor_top_level_or_not, .timeout = 300)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 50 };
    t_probe_t *p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++) {
        t_probe_init(&p[i]);
        nsys_ref_t r;
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, &r), 0);
        spawn2_t s = {{-1, -1}};
        cr_assert_eq(t_call(rt, r, fn_spawn_two, &s, NULL), 0);
        cr_assert_eq(s.rc[0], 0);
        cr_assert_eq(s.rc[1], 0);
    }
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    cr_assert_eq(atomic_load(&g_terms), 2 * N, "%d of %d children terminated", atomic_load(&g_terms), 2 * N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(atomic_load(&p[i].terminated), 1, "probe %d not terminated", i);
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < N; i++)
        t_probe_destroy(&p[i]);
    free(p);
}

/* ---- trapping top-level actors ------------------------------------------- */

static int leave_on_exit_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)p;
    if (msg->type == NSYS_MSG_EXIT) {
        nsys_exit_t e;
        memcpy(&e, msg->data, sizeof(e));
        nsys_exit(ctx, e.reason);
    }
    return 0;
}

Test(shutdown, a_trapping_top_level_actor_gets_exit_shutdown_and_may_leave_cleanly)
{
    nsys_runtime_t *rt = runtime_with_timeout(2, 5000);
    t_probe_t p;
    t_probe_init(&p);
    p.trap = true;
    p.hook = leave_on_exit_hook;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&p.inited) == 1);
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    cr_assert_lt(t_now_ms() - t0, 4000, "stop waited for the timeout although the actor left");
    cr_assert_eq(t_recs_count_type(&p.inbox, NSYS_MSG_EXIT), 1);
    t_rec_t r;
    t_recs_get(&p.inbox, (size_t)t_recs_find_type(&p.inbox, NSYS_MSG_EXIT, 0), &r);
    cr_assert_eq(t_rec_exit(&r).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_eq(atomic_load(&p.terminated), 1);
    cr_assert_eq(atomic_load(&p.term_reason), NSYS_REASON_SHUTDOWN);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(shutdown, a_top_level_actor_that_ignores_shutdown_is_forced_after_the_timeout, .timeout = 300)
{
    nsys_runtime_t *rt = runtime_with_timeout(2, 200);
    t_probe_t p;
    t_probe_init(&p);
    p.trap = true; /* receives the EXIT and ignores it */
    p.ignore_shutdown = true;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&p.inited) == 1);
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    uint64_t took = t_now_ms() - t0;
    cr_assert_geq(took, 150, "stop did not grant the %d ms grace (took %llu ms)", 200, (unsigned long long)took);
    cr_assert_lt(took, 20000);
    cr_assert_eq(t_recs_count_type(&p.inbox, NSYS_MSG_EXIT), 1, "the shutdown signal never arrived");
    cr_assert_eq(atomic_load(&p.terminated), 1, "terminate was skipped for a forced actor");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* ---- many actors --------------------------------------------------------- */

Test(shutdown, stop_with_ten_thousand_live_actors_terminates_them_all, .timeout = 300)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 10000 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_spawn(rt, &counted_b, NULL, NULL), 0, "spawn %d", i);
    nsys_metrics_t m;
    T_WAIT(nsys_metrics_get(rt, &m) == 0 && m.actors_alive == N, T_WAIT_MS);
    cr_assert_eq(m.actors_alive, N);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    cr_assert_eq(atomic_load(&g_terms), N, "%d of %d terminated", atomic_load(&g_terms), N);
    T_RUNTIME_FREE(rt);
}

static atomic_int g_args_freed;
static atomic_int g_inits;

static void args_free_count(void *p)
{
    free(p);
    atomic_fetch_add(&g_args_freed, 1);
}

static int args_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    (void)state;
    (void)args;
    atomic_fetch_add(&g_inits, 1);
    return 0;
}

Test(shutdown, args_free_runs_for_actors_whose_init_never_ran, .timeout = 300)
{
    static const nsys_behaviour_t b = {.name = "test.args", .init = args_init, .handle = counted_handle};
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
        o.args = malloc(24);
        o.args_free = args_free_count;
        cr_assert_eq(nsys_spawn(rt, &b, &o, NULL), 0);
    }
    cr_assert_eq(nsys_runtime_stop(rt), 0); /* at once: some inits have not run */
    cr_assert_eq(atomic_load(&g_args_freed), N, "%d of %d args freed (%d inits ran)", atomic_load(&g_args_freed),
                 N, atomic_load(&g_inits));
    T_RUNTIME_FREE(rt);
}

/* ---- libuv handles owned by actors -------------------------------------- */

static atomic_int g_handle_closed;
static atomic_int g_handle_opened;

static void on_timer(uv_timer_t *t)
{
    (void)t;
}

static void on_close(uv_handle_t *h)
{
    free(h);
    atomic_fetch_add(&g_handle_closed, 1);
}

static int handle_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)args;
    uv_timer_t *t = malloc(sizeof(*t));
    if (t == NULL || uv_timer_init(nsys_ctx_loop(ctx), t) != 0) {
        free(t);
        return NSYS_ENOMEM;
    }
    uv_timer_start(t, on_timer, 1, 1);
    *(uv_timer_t **)state = t;
    atomic_fetch_add(&g_handle_opened, 1);
    return 0;
}

static void handle_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    uv_close((uv_handle_t *)*(uv_timer_t **)state, on_close);
}

Test(shutdown, stop_waits_for_the_close_callbacks_of_actor_handles, .timeout = 300)
{
    static const nsys_behaviour_t b = {
        .name = "test.handle",
        .state_size = sizeof(uv_timer_t *),
        .init = handle_init,
        .handle = counted_handle,
        .terminate = handle_terminate,
    };
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 40 };
    nsys_ref_t r[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_spawn(rt, &b, NULL, &r[i]), 0);
    /* every init has run (a kill before init would skip init and terminate) */
    T_ASSERT_EVENTUALLY(atomic_load(&g_handle_opened) == N);
    /* some exit before the stop, through the same terminate */
    for (int i = 0; i < N; i += 4)
        cr_assert_eq(nsys_kill(rt, r[i]), 0);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    cr_assert_eq(atomic_load(&g_handle_closed), N, "%d of %d close callbacks ran before stop returned",
                 atomic_load(&g_handle_closed), N);
    T_RUNTIME_FREE(rt);
}

/* ---- senders racing the stop ---------------------------------------------- */

typedef struct racer {
    nsys_runtime_t *rt;
    nsys_ref_t to;
    long accepted;
    long refused_other;
    bool saw_stopped;
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    uint64_t deadline = t_now_ms() + 60000;
    while (t_now_ms() < deadline) {
        void *p = malloc(32);
        int rc = nsys_send_ptr(r->rt, r->to, T_MSG_A, p, 32, free_and_count);
        if (rc == 0) {
            r->accepted++;
            continue;
        }
        free(p);
        if (rc == NSYS_ESTOPPED) {
            r->saw_stopped = true;
            break;
        }
        if (rc != NSYS_ENOACTOR)
            r->refused_other++;
    }
    return NULL;
}

Test(shutdown, senders_racing_the_stop_get_estopped_and_every_accepted_message_is_freed, .timeout = 300)
{
    nsys_runtime_t *rt = runtime_with_timeout(2, 100);
    slow_t s = {0};
    s.us = 0;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &s;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &slow_b, &o, &ref), 0);
    racer_t r[2] = {{rt, ref, 0, 0, false}, {rt, ref, 0, 0, false}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&s.handled) >= 2000);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_assert(r[i].saw_stopped, "sender %d never saw NSYS_ESTOPPED", i);
        cr_assert_eq(r[i].refused_other, 0, "sender %d got unexpected errors", i);
    }
    long accepted = r[0].accepted + r[1].accepted;
    cr_assert_eq(atomic_load(&g_freed), accepted, "%d freed of %ld accepted", atomic_load(&g_freed), accepted);
    T_RUNTIME_FREE(rt);
}

/* ---- calls made by terminate during shutdown ------------------------------ */

typedef struct late {
    int spawn_rc;
    int send_rc;
    bool spawn_args_ours;
} late_t;

static late_t g_late = {1, 1, false};

static void late_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)state;
    (void)reason;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = malloc(16);
    o.args_free = args_free_count;
    g_late.spawn_rc = nsys_spawn(nsys_ctx_runtime(ctx), &counted_b, &o, NULL);
    if (g_late.spawn_rc != 0) {
        free(o.args); /* refused: the caller keeps args */
        g_late.spawn_args_ours = true;
    }
    void *p = malloc(16);
    g_late.send_rc = nsys_send_ptr(nsys_ctx_runtime(ctx), nsys_self(ctx), T_MSG_A, p, 16, free_and_count);
    if (g_late.send_rc != 0)
        free(p);
}

Test(shutdown, spawns_and_sends_from_terminate_during_stop_leak_nothing)
{
    static const nsys_behaviour_t b = {
        .name = "test.late", .init = counted_init, .handle = counted_handle, .terminate = late_terminate};
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    cr_assert_eq(nsys_spawn(rt, &b, NULL, NULL), 0);
    nsys_metrics_t m;
    T_WAIT(nsys_metrics_get(rt, &m) == 0 && m.actors_alive == 1, T_WAIT_MS);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    T_RUNTIME_FREE(rt);
    cr_assert_neq(g_late.spawn_rc, 1, "terminate never ran");
    if (g_late.spawn_rc == 0)
        cr_assert_eq(atomic_load(&g_args_freed), 1, "args of a spawn accepted during stop were never freed");
    else
        cr_assert_eq(atomic_load(&g_args_freed), 0);
    if (g_late.send_rc == 0)
        cr_assert_eq(atomic_load(&g_freed), 1, "a message accepted during stop was never freed");
    else
        cr_assert_eq(atomic_load(&g_freed), 0);
}

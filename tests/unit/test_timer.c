/* tests/unit/test_timer.c — nsys_send_after, nsys_send_interval and
 * nsys_timer_cancel: order, repetition, cancellation (including a firing
 * already queued), timers dying with their owner. "Never fires" is checked
 * by waiting for a later sentinel timer, never by sleeping. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

typedef struct timer_env {
    nsys_runtime_t *rt;
    t_probe_t a, b;
    nsys_ref_t ra, rb;
} timer_env_t;

static timer_env_t *env_new(void)
{
    timer_env_t *e = calloc(1, sizeof(*e));
    cr_assert_eq(t_runtime(2, &e->rt), 0);
    t_probe_init(&e->a);
    t_probe_init(&e->b);
    cr_assert_eq(t_probe_spawn(e->rt, &e->a, NULL, &e->ra), 0);
    cr_assert_eq(t_probe_spawn(e->rt, &e->b, NULL, &e->rb), 0);
    return e;
}

static void env_free(timer_env_t *e)
{
    T_RUNTIME_FREE(e->rt);
    t_probe_destroy(&e->a);
    t_probe_destroy(&e->b);
    free(e);
}

typedef struct after_arg {
    nsys_ref_t to;
    uint64_t delay;
    uint32_t type;
    int value;
    nsys_timer_t timer;
    int rc;
    uint64_t t0_ns;
} after_arg_t;

static int fn_after(nsys_ctx_t *ctx, void *arg)
{
    after_arg_t *a = arg;
    a->t0_ns = t_now_ns();
    a->rc = nsys_send_after(ctx, a->to, a->delay, a->type, &a->value, sizeof(a->value), &a->timer);
    a->value = -1; /* the timer must have copied the data */
    return 0;
}

static int fn_interval(nsys_ctx_t *ctx, void *arg)
{
    after_arg_t *a = arg;
    a->t0_ns = t_now_ns();
    a->rc = nsys_send_interval(ctx, a->to, a->delay, a->type, &a->value, sizeof(a->value), &a->timer);
    return 0;
}

typedef struct cancel_arg {
    nsys_timer_t timer;
    int rc;
    t_probe_t *self;
    size_t ticks_at_cancel;
    after_arg_t sentinel;
} cancel_arg_t;

static int fn_cancel(nsys_ctx_t *ctx, void *arg)
{
    cancel_arg_t *c = arg;
    c->rc = nsys_timer_cancel(ctx, c->timer);
    if (c->self != NULL)
        c->ticks_at_cancel = t_recs_count_type(&c->self->inbox, T_MSG_TICK);
    if (c->sentinel.delay != 0)
        fn_after(ctx, &c->sentinel);
    return 0;
}

static after_arg_t start_after(timer_env_t *e, nsys_ref_t on, nsys_ref_t to, uint64_t delay, uint32_t type, int value)
{
    after_arg_t a = {to, delay, type, value, 0, -1, 0};
    cr_assert_eq(t_call(e->rt, on, fn_after, &a, NULL), 0);
    cr_assert_eq(a.rc, 0, "send_after: %s", nsys_errname(a.rc));
    return a;
}

/* ---- one-shot timers ----------------------------------------------------- */

typedef struct order_arg {
    nsys_timer_t timers[8];
    int rc[8];
} order_arg_t;

static int fn_order(nsys_ctx_t *ctx, void *arg)
{
    order_arg_t *o = arg;
    /* label = expected arrival position */
    const uint64_t delays[8] = {90, 20, 60, 35, 35, 35, 5, 35};
    const int labels[8] = {7, 1, 6, 2, 3, 4, 0, 5};
    for (int i = 0; i < 8; i++)
        o->rc[i] = nsys_send_after(ctx, NSYS_REF_NONE, delays[i], T_MSG_TICK, &labels[i], sizeof(int),
                                   &o->timers[i]);
    return 0;
}

Test(timer, one_shots_fire_in_delay_order_and_equal_delays_in_creation_order)
{
    timer_env_t *e = env_new();
    order_arg_t o;
    memset(&o, 0, sizeof(o));
    cr_assert_eq(t_call(e->rt, e->ra, fn_order, &o, NULL), 0);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(o.rc[i], 0);
        for (int j = i + 1; j < 8; j++)
            cr_assert_neq(o.timers[i], o.timers[j], "timers %d and %d share an id", i, j);
    }
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 8, T_WAIT_MS));
    for (int k = 0; k < 8; k++) {
        t_rec_t r;
        t_recs_get(&e->a.inbox, (size_t)t_recs_find_type(&e->a.inbox, T_MSG_TICK, (size_t)k), &r);
        cr_assert_eq(t_rec_int(&r), k, "arrival %d was timer labelled %d", k, t_rec_int(&r));
    }
    env_free(e);
}

Test(timer, a_timer_message_is_from_its_actor_carries_a_copy_and_is_not_early)
{
    timer_env_t *e = env_new();
    after_arg_t a = start_after(e, e->ra, NSYS_REF_NONE, 80, T_MSG_TICK, 4242);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&e->a.inbox, (size_t)t_recs_find_type(&e->a.inbox, T_MSG_TICK, 0), &r);
    cr_assert_eq(r.from, e->ra, "a timer message is sent as if by the actor");
    cr_assert_eq(r.size, sizeof(int));
    cr_assert_eq(t_rec_int(&r), 4242, "the timer did not copy its data");
    uint64_t waited_ms = (r.t_ns - a.t0_ns) / 1000000u;
    cr_assert_geq(waited_ms, 78, "an 80 ms timer fired after %llu ms", (unsigned long long)waited_ms);
    env_free(e);
}

static int slow_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    t_busy_us(50000);
    return 0;
}

Test(timer, a_timer_started_right_after_a_slow_handler_is_not_early)
{
    /* One scheduler: the probe's turn comes right after a 50 ms handler, so
     * a loop clock cached before that handler is 50 ms stale. */
    static const nsys_behaviour_t slow_b = {.name = "test.slow", .handle = slow_handle};
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref, slow;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    cr_assert_eq(nsys_spawn(rt, &slow_b, NULL, &slow), 0);
    cr_assert_eq(t_call(rt, pref, t_fn_noop, NULL, NULL), 0);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(nsys_send(rt, slow, T_MSG_A, NULL, 0), 0);
        after_arg_t a = {NSYS_REF_NONE, 30, T_MSG_TICK, round, 0, -1, 0};
        cr_assert_eq(t_call(rt, pref, fn_after, &a, NULL), 0);
        cr_assert_eq(a.rc, 0);
        cr_assert(t_recs_wait_type(&p.inbox, T_MSG_TICK, (size_t)round + 1, T_WAIT_MS));
        t_rec_t r;
        t_recs_get(&p.inbox, (size_t)t_recs_find_type(&p.inbox, T_MSG_TICK, (size_t)round), &r);
        double waited = (double)(r.t_ns - a.t0_ns) / 1e6;
        cr_assert_geq(waited, 28.0, "round %d: a 30 ms timer fired after %.1f ms (stale loop clock?)", round,
                      waited);
    }
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(timer, send_after_delivers_to_another_actor)
{
    timer_env_t *e = env_new();
    start_after(e, e->ra, e->rb, 10, T_MSG_TICK, 9);
    cr_assert(t_recs_wait_type(&e->b.inbox, T_MSG_TICK, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&e->b.inbox, 0, &r);
    cr_assert_eq(r.from, e->ra);
    cr_assert_eq(t_rec_int(&r), 9);
    cr_assert_eq(t_recs_count_type(&e->a.inbox, T_MSG_TICK), 0);
    env_free(e);
}

Test(timer, zero_delay_fires_soon)
{
    timer_env_t *e = env_new();
    start_after(e, e->ra, NSYS_REF_NONE, 0, T_MSG_TICK, 1);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 1, T_WAIT_MS));
    env_free(e);
}

typedef struct many_arg {
    int n;
    int failures;
    uint64_t created_hi_ns[500]; /* just after each nsys_send_after returned */
} many_arg_t;

typedef struct due {
    int delay;
    int idx;
    uint64_t created_lo_ns; /* just before nsys_send_after was called */
} due_t;

static int fn_many(nsys_ctx_t *ctx, void *arg)
{
    many_arg_t *m = arg;
    for (int i = 0; i < m->n; i++) {
        due_t d = {(i * 37) % 50, i, t_now_ns()};
        if (nsys_send_after(ctx, NSYS_REF_NONE, (uint64_t)d.delay, T_MSG_TICK, &d, sizeof(d), NULL) != 0)
            m->failures++;
        m->created_hi_ns[i] = t_now_ns();
    }
    return 0;
}

Test(timer, many_timers_each_fire_once_in_due_order)
{
    timer_env_t *e = env_new();
    static many_arg_t m;
    memset(&m, 0, sizeof m);
    m.n = 500;
    cr_assert_eq(t_call(e->rt, e->ra, fn_many, &m, NULL), 0);
    cr_assert_eq(m.failures, 0);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 500, T_WAIT_MS));
    start_after(e, e->ra, NSYS_REF_NONE, 60, T_MSG_SENTINEL, 0);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count_type(&e->a.inbox, T_MSG_TICK), 500, "a timer fired twice");
    /* Creating 500 timers takes a while (a long while under sanitizers, where
     * the thread may also be preempted inside a call), so a timer's due time
     * is only known to lie in [before the call, after it] + delay, and loop
     * time has 1 ms steps. In firing order, no timer may come after one that
     * was certainly due later than it. */
    uint64_t max_lo = 0;
    int max_lo_delay = -1;
    for (size_t k = 0; k < 500; k++) {
        t_rec_t r;
        t_recs_get(&e->a.inbox, (size_t)t_recs_find_type(&e->a.inbox, T_MSG_TICK, k), &r);
        due_t d;
        memcpy(&d, r.bytes, sizeof(d));
        uint64_t due_lo = d.created_lo_ns + (uint64_t)d.delay * 1000000u;
        uint64_t due_hi = m.created_hi_ns[d.idx] + (uint64_t)d.delay * 1000000u + 1000000u;
        cr_assert_geq(due_hi, max_lo, "a %d ms timer (due %.1f ms later) fired before a %d ms one",
                      max_lo_delay, (double)(max_lo - due_hi) / 1e6, d.delay);
        cr_assert_geq(r.t_ns + 1000000u, due_lo, "a %d ms timer fired early", d.delay);
        if (due_lo > max_lo) {
            max_lo = due_lo;
            max_lo_delay = d.delay;
        }
    }
    env_free(e);
}

/* ---- periodic timers ------------------------------------------------------ */

Test(timer, interval_fires_repeatedly_and_never_after_cancel_returns)
{
    timer_env_t *e = env_new();
    after_arg_t a = {NSYS_REF_NONE, 10, T_MSG_TICK, 3, 0, -1, 0};
    cr_assert_eq(t_call(e->rt, e->ra, fn_interval, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 5, T_WAIT_MS), "the interval did not repeat");
    t_rec_t first;
    t_recs_get(&e->a.inbox, (size_t)t_recs_find_type(&e->a.inbox, T_MSG_TICK, 0), &first);
    cr_assert_geq((first.t_ns - a.t0_ns) / 1000000u, 9, "the first tick came before one interval");
    cr_assert_eq(t_rec_int(&first), 3);
    cr_assert_eq(first.from, e->ra);

    cancel_arg_t c;
    memset(&c, 0, sizeof(c));
    c.timer = a.timer;
    c.self = &e->a;
    c.sentinel = (after_arg_t){NSYS_REF_NONE, 80, T_MSG_SENTINEL, 0, 0, -1, 0};
    cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &c, NULL), 0);
    cr_assert_eq(c.rc, 0, "cancel of a live interval: %s", nsys_errname(c.rc));
    cr_assert_eq(c.sentinel.rc, 0);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count_type(&e->a.inbox, T_MSG_TICK), c.ticks_at_cancel,
                 "%zu ticks arrived after cancel returned",
                 t_recs_count_type(&e->a.inbox, T_MSG_TICK) - c.ticks_at_cancel);
    /* cancelling it again: it is gone */
    cancel_arg_t again = {a.timer, 1, NULL, 0, {0}};
    cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &again, NULL), 0);
    cr_assert_eq(again.rc, NSYS_ENOENT);
    env_free(e);
}

Test(timer, interval_to_another_actor_repeats)
{
    timer_env_t *e = env_new();
    after_arg_t a = {e->rb, 5, T_MSG_TICK, 8, 0, -1, 0};
    cr_assert_eq(t_call(e->rt, e->ra, fn_interval, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    cr_assert(t_recs_wait_type(&e->b.inbox, T_MSG_TICK, 4, T_WAIT_MS));
    cancel_arg_t c = {a.timer, 1, NULL, 0, {0}};
    cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &c, NULL), 0);
    cr_assert_eq(c.rc, 0);
    env_free(e);
}

typedef struct bad_arg {
    int rc[8];
} bad_arg_t;

static int fn_bad_timers(nsys_ctx_t *ctx, void *arg)
{
    bad_arg_t *b = arg;
    nsys_timer_t t;
    b->rc[0] = nsys_send_interval(ctx, NSYS_REF_NONE, 0, T_MSG_TICK, NULL, 0, &t);
    b->rc[1] = nsys_send_after(ctx, NSYS_REF_NONE, 10, 0, NULL, 0, &t);
    b->rc[2] = nsys_send_after(ctx, NSYS_REF_NONE, 10, NSYS_MSG_SYSTEM_MAX - 1, NULL, 0, &t);
    b->rc[3] = nsys_send_interval(ctx, NSYS_REF_NONE, 10, 5, NULL, 0, &t);
    b->rc[4] = nsys_send_after(ctx, NSYS_REF_NONE, 10, T_MSG_TICK, NULL, 4, &t);
    b->rc[5] = nsys_send_interval(ctx, NSYS_REF_NONE, 10, T_MSG_TICK, NULL, 4, &t);
    return 0;
}

Test(timer, bad_arguments_are_refused_with_einval)
{
    timer_env_t *e = env_new();
    bad_arg_t b;
    memset(&b, 1, sizeof(b));
    cr_assert_eq(t_call(e->rt, e->ra, fn_bad_timers, &b, NULL), 0);
    const char *what[] = {"interval 0", "reserved type 0", "reserved type 255", "interval reserved type",
                          "after NULL data with size", "interval NULL data with size"};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(b.rc[i], NSYS_EINVAL, "%s: %s", what[i], nsys_errname(b.rc[i]));
    start_after(e, e->ra, NSYS_REF_NONE, 40, T_MSG_SENTINEL, 0);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count(&e->a.inbox), 1, "a refused timer fired");
    env_free(e);
}

/* ---- cancel ----------------------------------------------------------------- */

Test(timer, cancel_of_a_fired_one_shot_is_enoent)
{
    timer_env_t *e = env_new();
    after_arg_t a = start_after(e, e->ra, NSYS_REF_NONE, 5, T_MSG_TICK, 1);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 1, T_WAIT_MS));
    cancel_arg_t c = {a.timer, 1, NULL, 0, {0}};
    cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &c, NULL), 0);
    cr_assert_eq(c.rc, NSYS_ENOENT, "cancel after firing: %s", nsys_errname(c.rc));
    env_free(e);
}

Test(timer, cancel_before_firing_means_it_never_fires)
{
    timer_env_t *e = env_new();
    after_arg_t a = start_after(e, e->ra, e->rb, 30, T_MSG_TICK, 1);
    cancel_arg_t c = {a.timer, 1, NULL, 0, {e->rb, 100, T_MSG_SENTINEL, 0, 0, -1, 0}};
    cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &c, NULL), 0);
    cr_assert_eq(c.rc, 0);
    cr_assert(t_recs_wait_type(&e->b.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count_type(&e->b.inbox, T_MSG_TICK), 0, "a cancelled timer fired");
    cancel_arg_t again = {a.timer, 1, NULL, 0, {0}};
    cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &again, NULL), 0);
    cr_assert_eq(again.rc, NSYS_ENOENT, "second cancel: %s", nsys_errname(again.rc));
    env_free(e);
}

Test(timer, cancel_of_unknown_ids_is_enoent)
{
    timer_env_t *e = env_new();
    const nsys_timer_t ids[] = {0, 1, 12345, UINT64_MAX};
    for (int i = 0; i < 4; i++) {
        cancel_arg_t c = {ids[i], 1, NULL, 0, {0}};
        cr_assert_eq(t_call(e->rt, e->ra, fn_cancel, &c, NULL), 0);
        cr_assert_eq(c.rc, NSYS_ENOENT, "cancel(%llu): %s", (unsigned long long)ids[i], nsys_errname(c.rc));
    }
    env_free(e);
}

Test(timer, an_actor_cannot_cancel_another_actors_timer)
{
    timer_env_t *e = env_new();
    after_arg_t a = start_after(e, e->ra, NSYS_REF_NONE, 40, T_MSG_TICK, 1);
    cancel_arg_t c = {a.timer, 1, NULL, 0, {0}};
    cr_assert_eq(t_call(e->rt, e->rb, fn_cancel, &c, NULL), 0);
    cr_assert_eq(c.rc, NSYS_ENOENT, "cancel from another actor: %s", nsys_errname(c.rc));
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_TICK, 1, T_WAIT_MS), "the owner's timer was cancelled");
    env_free(e);
}

/* Hooks for the "already queued" case: T_MSG_A waits until everything is
 * queued, starts a 1 ms timer to self then burns 3 ms; T_MSG_B burns 50 us (fillers, so the loop gets to run
 * timers between batches); T_MSG_C cancels. */
typedef struct queued {
    t_gate_t all_sent; /* A waits until the test queued B... and C */
    nsys_timer_t timer;
    int start_rc;
    int cancel_rc;
    atomic_int cancelled;
} queued_t;

static int queued_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    queued_t *q = p->user;
    if (msg->type == T_MSG_A) {
        int v = 1;
        t_gate_wait(&q->all_sent, T_WAIT_MS);
        q->start_rc = nsys_send_after(ctx, NSYS_REF_NONE, 1, T_MSG_TICK, &v, sizeof(v), &q->timer);
        t_busy_us(3000);
    } else if (msg->type == T_MSG_B) {
        t_busy_us(50);
    } else if (msg->type == T_MSG_C) {
        q->cancel_rc = nsys_timer_cancel(ctx, q->timer);
        atomic_store(&q->cancelled, 1);
    }
    return 0;
}

Test(timer, cancel_drops_a_firing_already_queued_to_the_actor)
{
    nsys_runtime_opts_t ro = NSYS_RUNTIME_OPTS_DEFAULTS;
    ro.schedulers = 2;
    ro.batch = 16;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&ro, &rt), 0);
    for (int round = 0; round < 5; round++) {
        t_probe_t p;
        t_probe_init(&p);
        queued_t q;
        memset(&q, 0, sizeof(q));
        t_gate_init(&q.all_sent);
        q.start_rc = q.cancel_rc = 1;
        p.user = &q;
        p.hook = queued_hook;
        nsys_ref_t ref;
        cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
        cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 0), 0);
        for (int i = 0; i < 200; i++)
            cr_assert_eq(nsys_send(rt, ref, T_MSG_B, NULL, 0), 0);
        cr_assert_eq(nsys_send(rt, ref, T_MSG_C, NULL, 0), 0);
        t_gate_open(&q.all_sent);
        T_ASSERT_EVENTUALLY(atomic_load(&q.cancelled) == 1);
        cr_assert_eq(q.start_rc, 0);
        cr_assert_eq(q.cancel_rc, 0, "round %d: cancel before the tick was handled: %s", round,
                     nsys_errname(q.cancel_rc));
        cr_assert_eq(t_recs_count_type(&p.inbox, T_MSG_TICK), 0, "round %d: tick handled before cancel", round);
        /* the sentinel is queued after anything the timer could have queued */
        cr_assert_eq(t_call(rt, ref, t_fn_noop, NULL, NULL), 0);
        after_arg_t s = {NSYS_REF_NONE, 20, T_MSG_SENTINEL, 0, 0, -1, 0};
        cr_assert_eq(t_call(rt, ref, fn_after, &s, NULL), 0);
        cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
        cr_assert_eq(t_recs_count_type(&p.inbox, T_MSG_TICK), 0, "round %d: a cancelled firing was delivered",
                     round);
        cr_assert_eq(nsys_kill(rt, ref), 0);
        T_ASSERT_EVENTUALLY(atomic_load(&p.terminated) == 1);
        t_probe_destroy(&p);
        t_gate_destroy(&q.all_sent);
    }
    T_RUNTIME_FREE(rt);
}

/* ---- owner exit ---------------------------------------------------------- */

typedef struct owner_arg {
    nsys_ref_t to;
    int rc1, rc2;
} owner_arg_t;

static int fn_timers_then_exit(nsys_ctx_t *ctx, void *arg)
{
    owner_arg_t *o = arg;
    int v = 1;
    o->rc1 = nsys_send_after(ctx, o->to, 30, T_MSG_TICK, &v, sizeof(v), NULL);
    o->rc2 = nsys_send_interval(ctx, o->to, 10, T_MSG_TICK, &v, sizeof(v), NULL);
    nsys_exit(ctx, NSYS_REASON_NORMAL);
    return 0;
}

Test(timer, timers_of_an_exited_actor_never_fire)
{
    timer_env_t *e = env_new();
    t_probe_t owner;
    t_probe_init(&owner);
    nsys_ref_t oref;
    cr_assert_eq(t_probe_spawn(e->rt, &owner, NULL, &oref), 0);
    owner_arg_t o = {e->rb, -1, -1};
    cr_assert_eq(t_call(e->rt, oref, fn_timers_then_exit, &o, NULL), 0);
    cr_assert_eq(o.rc1, 0);
    cr_assert_eq(o.rc2, 0);
    T_ASSERT_EVENTUALLY(atomic_load(&owner.terminated) == 1);
    /* created after the owner is gone, due well after the owner's timers */
    start_after(e, e->ra, e->rb, 120, T_MSG_SENTINEL, 0);
    cr_assert(t_recs_wait_type(&e->b.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count_type(&e->b.inbox, T_MSG_TICK), 0, "%zu timer messages from a dead actor",
                 t_recs_count_type(&e->b.inbox, T_MSG_TICK));
    env_free(e);
    t_probe_destroy(&owner);
}

Test(timer, a_timer_aimed_at_a_dead_actor_is_harmless)
{
    timer_env_t *e = env_new();
    T_ASSERT_EVENTUALLY(atomic_load(&e->b.inited) == 1);
    cr_assert_eq(nsys_kill(e->rt, e->rb), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&e->b.terminated) == 1);
    after_arg_t a = {e->rb, 5, T_MSG_TICK, 1, 0, -1, 0};
    cr_assert_eq(t_call(e->rt, e->ra, fn_after, &a, NULL), 0);
    cr_assert(a.rc == 0 || a.rc == NSYS_ENOACTOR, "send_after to a dead actor: %s", nsys_errname(a.rc));
    start_after(e, e->ra, NSYS_REF_NONE, 40, T_MSG_SENTINEL, 0);
    cr_assert(t_recs_wait_type(&e->a.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert(nsys_is_alive(e->rt, e->ra));
    env_free(e);
}

Test(timer, pending_timers_are_released_at_shutdown)
{
    timer_env_t *e = env_new();
    start_after(e, e->ra, NSYS_REF_NONE, 100000, T_MSG_TICK, 1);
    after_arg_t a = {e->rb, 50000, T_MSG_TICK, 2, 0, -1, 0};
    cr_assert_eq(t_call(e->rt, e->ra, fn_interval, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    uint64_t t0 = t_now_ms();
    env_free(e); /* LeakSanitizer/valgrind check the timers were freed */
    cr_assert_lt(t_now_ms() - t0, 10000, "shutdown waited for pending timers");
}

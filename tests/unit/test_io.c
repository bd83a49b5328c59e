/* tests/unit/test_io.c — libuv callbacks run as an actor (nsys_io_enter /
 * nsys_io_leave) and turn hooks (nsys_set_turn_hook).
 *
 * The "I/O" here is a uv_timer_t the actor starts on its own loop: its
 * callback runs between turns, exactly like a socket's read callback. */
#include <criterion/criterion.h>

#include <netsys/netsys.h>

#include "common/probe.h"

#define T_IO_MSG (NSYS_MSG_USER + 7u)
#define T_IO_KICK (NSYS_MSG_USER + 8u)

typedef struct io_case {
    nsys_ref_t probe;
    int exit_reason; /* the timer callback exits with this if non-zero */
    atomic_int enter_ok;
    atomic_int nested_ok;
    atomic_int hooks;
    atomic_int hooks_in_io;
    atomic_int after_exit_enter; /* io_enter result after nsys_exit (must be 0) */
    atomic_int current_matches;
    _Atomic(nsys_ctx_t *) ctx;
} io_case_t;

typedef struct io_actor {
    io_case_t *c;
    nsys_ctx_t *ctx;
    uv_timer_t *timer;
    int in_io;
} io_actor_t;

static void timer_closed(uv_handle_t *h) { free(h); }

static void timer_cb(uv_timer_t *t)
{
    io_actor_t *a = t->data;
    bool ok = nsys_io_enter(a->ctx);
    atomic_store(&a->c->enter_ok, ok ? 1 : 0);
    if (!ok)
        return;
    a->in_io = 1;
    atomic_store(&a->c->current_matches, nsys_current() == a->ctx ? 1 : 0);
    bool nested = nsys_io_enter(a->ctx);
    atomic_store(&a->c->nested_ok, nested ? 1 : 0);
    if (nested)
        nsys_io_leave(a->ctx); /* inner leave: no hook, still the actor */
    /* Sent as the actor: the probe sees it as the sender. */
    nsys_send(nsys_ctx_runtime(a->ctx), a->c->probe, T_IO_MSG, "io", 2);
    if (a->c->exit_reason != 0) {
        nsys_exit(a->ctx, a->c->exit_reason);
        atomic_store(&a->c->after_exit_enter, 1); /* set below if enter succeeds */
    }
    nsys_io_leave(a->ctx);
    a->in_io = 0;
    if (a->c->exit_reason != 0)
        atomic_store(&a->c->after_exit_enter, nsys_io_enter(a->ctx) ? 2 : 0);
}

static void hook(nsys_ctx_t *ctx, void *state)
{
    (void)ctx;
    io_actor_t *a = state;
    atomic_fetch_add(&a->c->hooks, 1);
    if (a->in_io)
        atomic_fetch_add(&a->c->hooks_in_io, 1);
}

static int io_init(nsys_ctx_t *ctx, void *state, void *args)
{
    io_actor_t *a = state;
    a->c = args;
    a->ctx = ctx;
    atomic_store(&a->c->ctx, ctx);
    a->timer = malloc(sizeof *a->timer);
    if (a->timer == NULL)
        return NSYS_ENOMEM;
    uv_timer_init(nsys_ctx_loop(ctx), a->timer);
    a->timer->data = a;
    nsys_set_turn_hook(ctx, hook);
    return 0;
}

static int io_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    io_actor_t *a = state;
    if (msg->type == T_IO_KICK)
        uv_timer_start(a->timer, timer_cb, 1, 0);
    return 0;
}

static void io_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx, (void)reason;
    io_actor_t *a = state;
    uv_close((uv_handle_t *)a->timer, timer_closed);
}

static const nsys_behaviour_t io_behaviour = {
    .name = "test.io", .state_size = sizeof(io_actor_t), .init = io_init, .handle = io_handle,
    .terminate = io_terminate};

static nsys_runtime_t *rt;
static t_probe_t probe;

static nsys_ref_t setup(io_case_t *c)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    t_probe_init(&probe);
    cr_assert_eq(t_probe_spawn(rt, &probe, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&probe.inited) == 1);
    c->probe = t_probe_ref(&probe);
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.args = c;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &io_behaviour, &so, &ref), 0);
    cr_assert_eq(t_monitor(rt, &probe, ref, NULL), 0);
    return ref;
}

Test(io, a_callback_runs_as_the_actor_and_ends_with_its_turn_hook, .timeout = 60)
{
    io_case_t c = {0};
    nsys_ref_t ref = setup(&c);
    cr_assert_eq(nsys_send(rt, ref, T_IO_KICK, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&probe.inbox, T_IO_MSG, 1, T_WAIT_MS));
    long i = t_recs_find_type(&probe.inbox, T_IO_MSG, 0);
    t_rec_t rec;
    cr_assert(t_recs_get(&probe.inbox, (size_t)i, &rec));
    cr_assert_eq(rec.from, ref, "a send from inside the bracket is stamped with the actor");
    cr_assert_eq(atomic_load(&c.enter_ok), 1);
    cr_assert_eq(atomic_load(&c.nested_ok), 1);
    cr_assert_eq(atomic_load(&c.current_matches), 1);
    T_ASSERT_EVENTUALLY(atomic_load(&c.hooks_in_io) == 1,
                        "the hook ran %d times at the outer leave", atomic_load(&c.hooks_in_io));
    cr_assert_geq(atomic_load(&c.hooks), 2, "the hook also runs after turns");
    cr_assert(nsys_is_alive(rt, ref));
    nsys_runtime_stop(rt);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&probe);
}

Test(io, an_exit_asked_for_in_a_callback_is_carried_out_promptly, .timeout = 60)
{
    io_case_t c = {.exit_reason = NSYS_ECANCELED};
    nsys_ref_t ref = setup(&c);
    cr_assert_eq(nsys_send(rt, ref, T_IO_KICK, NULL, 0), 0);
    nsys_down_t down;
    cr_assert(t_probe_wait_down(&probe, 0, &down, T_WAIT_MS), "the actor never exited");
    cr_assert_eq(down.ref, ref);
    cr_assert_eq(down.reason, NSYS_ECANCELED);
    cr_assert_eq(atomic_load(&c.after_exit_enter), 0,
                 "nsys_io_enter must refuse an exiting actor");
    nsys_runtime_stop(rt);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&probe);
}

Test(io, enter_refuses_outside_the_actors_thread, .timeout = 60)
{
    cr_assert_not(nsys_io_enter(NULL));
    io_case_t c = {0};
    nsys_ref_t ref = setup(&c);
    cr_assert_eq(nsys_send(rt, ref, T_IO_KICK, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&probe.inbox, T_IO_MSG, 1, T_WAIT_MS));
    /* The actor is alive and idle; this thread is not its scheduler. */
    nsys_ctx_t *ctx = atomic_load(&c.ctx);
    cr_assert_not_null(ctx);
    cr_assert_not(nsys_io_enter(ctx), "entered an actor from a foreign thread");
    cr_assert_null(nsys_current());
    nsys_io_leave(ctx); /* harmless when not entered */
    cr_assert(nsys_is_alive(rt, ref));
    nsys_runtime_stop(rt);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&probe);
}

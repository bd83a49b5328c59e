/* tests/unit/test_runtime.c — runtime lifecycle: new/stop/free, options,
 * nsys_runtime_wait and its wake reasons, calls after stop, actor context
 * accessors (include/netsys/runtime.h, "Runtime" and "Actors"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/probe.h"
#include "common/wait.h"

Test(runtime, new_with_null_opts_starts_one_scheduler_per_cpu)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(NULL, &rt), 0);
    cr_assert_not_null(rt);
    unsigned n = nsys_runtime_schedulers(rt);
    unsigned par = uv_available_parallelism();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert(n == par || (long)n == online, "schedulers=%u, cpus=%u/%ld", n, par, online);
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.schedulers, n);
    T_RUNTIME_FREE(rt);
}

Test(runtime, new_with_default_opts_macro_equals_null_opts)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    unsigned par = uv_available_parallelism();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = nsys_runtime_schedulers(rt);
    cr_assert(n == par || (long)n == online);
    T_RUNTIME_FREE(rt);
}

Test(runtime, new_honours_explicit_scheduler_counts)
{
    const unsigned counts[] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        nsys_runtime_t *rt = NULL;
        cr_assert_eq(t_runtime(counts[i], &rt), 0);
        cr_assert_eq(nsys_runtime_schedulers(rt), counts[i]);
        nsys_metrics_t m;
        cr_assert_eq(nsys_metrics_get(rt, &m), 0);
        cr_assert_eq(m.schedulers, counts[i]);
        nsys_sched_metrics_t sm;
        for (unsigned s = 0; s < counts[i]; s++)
            cr_assert_eq(nsys_sched_metrics_get(rt, s, &sm), 0);
        cr_assert_lt(nsys_sched_metrics_get(rt, counts[i], &sm), 0);
        T_RUNTIME_FREE(rt);
    }
}

Test(runtime, new_rejects_a_null_out_pointer)
{
    cr_assert_eq(nsys_runtime_new(NULL, NULL), NSYS_EINVAL);
}

Test(runtime, null_runtime_arguments_are_refused_not_fatal)
{
    nsys_runtime_free(NULL);
    cr_assert_eq(nsys_runtime_stop(NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_runtime_request_stop(NULL, 1), NSYS_EINVAL);
    nsys_wake_t why;
    cr_assert_eq(nsys_runtime_wait(NULL, 0, 10, &why, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_spawn(NULL, t_probe_behaviour(), NULL, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_send(NULL, 1, T_MSG_A, NULL, 0), NSYS_EINVAL);
    cr_assert_eq(nsys_exit_signal(NULL, 1, NSYS_ESHUTDOWN), NSYS_EINVAL);
    cr_assert_eq(nsys_kill(NULL, 1), NSYS_EINVAL);
    cr_assert_eq(nsys_is_alive(NULL, 1), false);
    cr_assert_eq(nsys_register(NULL, "x", 1), NSYS_EINVAL);
    cr_assert_eq(nsys_unregister(NULL, "x"), NSYS_EINVAL);
    nsys_ref_t r;
    cr_assert_eq(nsys_whereis(NULL, "x", &r), NSYS_EINVAL);
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(NULL, &m), NSYS_EINVAL);
    nsys_sched_metrics_t sm;
    cr_assert_eq(nsys_sched_metrics_get(NULL, 0, &sm), NSYS_EINVAL);
    char *json = NULL;
    cr_assert_eq(nsys_metrics_json(NULL, &json), NSYS_EINVAL);
    nsys_free(NULL);
}

Test(runtime, max_actors_bounds_the_actor_table)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    o.max_actors = 4;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    t_probe_t p[5];
    nsys_ref_t refs[5];
    for (int i = 0; i < 5; i++)
        t_probe_init(&p[i]);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, &refs[i]), 0, "spawn %d", i);
    int rc = t_probe_spawn(rt, &p[4], NULL, &refs[4]);
    cr_assert_eq(rc, NSYS_ETOOMANY, "a 5th actor in a table of 4: %s", nsys_errname(rc));
    cr_assert_eq(t_send_int(rt, refs[0], T_MSG_EXITME, 0), 0);
    rc = -1;
    T_WAIT((rc = t_probe_spawn(rt, &p[4], NULL, &refs[4])) == 0, T_WAIT_MS);
    cr_assert_eq(rc, 0, "the slot of an exited actor was not given back (%s)", nsys_errname(rc));
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < 5; i++)
        t_probe_destroy(&p[i]);
}

Test(runtime, wait_times_out_with_wake_timeout)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    nsys_wake_t why = 0;
    int code = 12345;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_wait(rt, 0, 60, &why, &code), 0);
    uint64_t took = t_now_ms() - t0;
    cr_assert_eq(why, NSYS_WAKE_TIMEOUT);
    cr_assert_geq(took, 55, "returned after %llu ms of a 60 ms timeout", (unsigned long long)took);
    T_RUNTIME_FREE(rt);
}

Test(runtime, wait_timeout_applies_to_flagged_waits_too)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, NULL), 0);
    nsys_wake_t why = 0;
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_NO_ACTORS, 30, &why, NULL), 0);
    cr_assert_eq(why, NSYS_WAKE_TIMEOUT, "an actor is alive, so only the timeout can wake");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

typedef struct stopper {
    nsys_runtime_t *rt;
    int code;
    int rc;
} stopper_t;

static void *stopper_main(void *arg)
{
    stopper_t *s = arg;
    struct timespec ts = {0, 20 * 1000 * 1000}; /* either order is correct */
    nanosleep(&ts, NULL);
    s->rc = nsys_runtime_request_stop(s->rt, s->code);
    return NULL;
}

Test(runtime, wait_returns_request_with_its_code_when_another_thread_requests_stop)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    stopper_t s = {rt, 42, -1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, stopper_main, &s), 0);
    nsys_wake_t why = 0;
    int code = 0;
    cr_assert_eq(nsys_runtime_wait(rt, 0, T_WAIT_MS, &why, &code), 0);
    pthread_join(th, NULL);
    cr_assert_eq(s.rc, 0);
    cr_assert_eq(why, NSYS_WAKE_REQUEST);
    cr_assert_eq(code, 42);
    T_RUNTIME_FREE(rt);
}

Test(runtime, request_stop_made_before_wait_is_not_lost)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    cr_assert_eq(nsys_runtime_request_stop(rt, -7), 0);
    nsys_wake_t why = 0;
    int code = 0;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_wait(rt, 0, T_WAIT_MS, &why, &code), 0);
    cr_assert_eq(why, NSYS_WAKE_REQUEST);
    cr_assert_eq(code, -7);
    cr_assert_lt(t_now_ms() - t0, T_WAIT_MS / 2);
    T_RUNTIME_FREE(rt);
}

static int fn_request_stop(nsys_ctx_t *ctx, void *arg)
{
    return nsys_runtime_request_stop(nsys_ctx_runtime(ctx), *(int *)arg);
}

Test(runtime, request_stop_called_by_an_actor_wakes_wait_with_its_code)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    int code_in = 99, fn_rc = -1;
    cr_assert_eq(t_call(rt, ref, fn_request_stop, &code_in, &fn_rc), 0);
    cr_assert_eq(fn_rc, 0);
    nsys_wake_t why = 0;
    int code = 0;
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_NO_ACTORS, T_WAIT_MS, &why, &code), 0);
    cr_assert_eq(why, NSYS_WAKE_REQUEST);
    cr_assert_eq(code, 99);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(runtime, wait_accepts_null_why_and_code)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    cr_assert_eq(nsys_runtime_wait(rt, 0, 5, NULL, NULL), 0);
    cr_assert_eq(nsys_runtime_request_stop(rt, 1), 0);
    cr_assert_eq(nsys_runtime_wait(rt, 0, T_WAIT_MS, NULL, NULL), 0);
    T_RUNTIME_FREE(rt);
}

Test(runtime, wait_for_no_actors_returns_at_once_when_none_is_alive)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    nsys_wake_t why = 0;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_NO_ACTORS, T_WAIT_MS, &why, NULL), 0);
    cr_assert_eq(why, NSYS_WAKE_NO_ACTORS);
    cr_assert_lt(t_now_ms() - t0, T_WAIT_MS / 2);
    T_RUNTIME_FREE(rt);
}

static int late_exit_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)state;
    (void)args;
    return nsys_send_after(ctx, NSYS_REF_NONE, 50, T_MSG_TICK, NULL, 0, NULL);
}

static int late_exit_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)state;
    if (msg->type == T_MSG_TICK)
        nsys_exit(ctx, NSYS_REASON_NORMAL);
    return 0;
}

static const nsys_behaviour_t late_exit = {
    .name = "test.late_exit",
    .init = late_exit_init,
    .handle = late_exit_handle,
};

Test(runtime, wait_for_no_actors_returns_when_the_last_actor_exits)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    nsys_ref_t a, b;
    cr_assert_eq(nsys_spawn(rt, &late_exit, NULL, &a), 0);
    cr_assert_eq(nsys_spawn(rt, &late_exit, NULL, &b), 0);
    nsys_wake_t why = 0;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_NO_ACTORS, T_WAIT_MS, &why, NULL), 0);
    cr_assert_eq(why, NSYS_WAKE_NO_ACTORS);
    cr_assert_geq(t_now_ms() - t0, 40, "returned before the actors' 50 ms timers fired");
    cr_assert_not(nsys_is_alive(rt, a));
    cr_assert_not(nsys_is_alive(rt, b));
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_alive, 0);
    T_RUNTIME_FREE(rt);
}

static void noop_signal_handler(int sig)
{
    (void)sig;
}

typedef struct raiser {
    int sig;
    int raised;
} raiser_t;

/* Raises the signal once the runtime has installed its handler (so an early
 * signal cannot kill the test); falls back to raising after a while in case
 * the runtime catches signals without a handler (then ours makes it
 * harmless). Raised exactly once: after wait returns, libuv may restore the
 * default action. */
static void *raiser_main(void *arg)
{
    raiser_t *r = arg;
    t_poll_t poll = t_poll_begin(3000);
    for (;;) {
        struct sigaction cur;
        sigaction(r->sig, NULL, &cur);
        if (cur.sa_handler != noop_signal_handler)
            break;
        if (!t_poll_continue(&poll))
            break;
    }
    raise(r->sig);
    r->raised = 1;
    return NULL;
}

static void wait_for_signal(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = noop_signal_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(sig, &sa, NULL), 0);

    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    raiser_t r = {sig, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, raiser_main, &r), 0);
    nsys_wake_t why = 0;
    int code = 0;
    int rc = nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, T_WAIT_MS, &why, &code);
    pthread_join(th, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(why, NSYS_WAKE_SIGNAL, "woke with %d instead of the signal", (int)why);
    cr_assert_eq(code, sig);
    T_RUNTIME_FREE(rt);
}

Test(runtime, wait_for_signals_wakes_on_sigterm_raised_by_another_thread, .timeout = 60)
{
    wait_for_signal(SIGTERM);
}

Test(runtime, wait_for_signals_wakes_on_sigint_raised_by_another_thread, .timeout = 60)
{
    wait_for_signal(SIGINT);
}

Test(runtime, a_signal_between_two_waits_is_kept_for_the_next_wait_not_fatal, .timeout = 60)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    nsys_wake_t why = 0;
    int code = 0;
    /* The first wait installs the watchers and times out. */
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, 1, &why, &code), 0);
    cr_assert_eq(why, NSYS_WAKE_TIMEOUT);
    /* Between waits: with the default action this would end the process. */
    cr_assert_eq(raise(SIGTERM), 0);
    why = 0;
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, T_WAIT_MS, &why, &code), 0);
    cr_assert_eq(why, NSYS_WAKE_SIGNAL, "woke with %d instead of the pending SIGTERM", (int)why);
    cr_assert_eq(code, SIGTERM);
    /* Consumed: the next wait times out. */
    why = 0;
    cr_assert_eq(nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, 1, &why, &code), 0);
    cr_assert_eq(why, NSYS_WAKE_TIMEOUT);
    T_RUNTIME_FREE(rt);
}

Test(runtime, stop_twice_is_harmless)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, NULL), 0);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    int rc = nsys_runtime_stop(rt);
    cr_assert(rc == 0 || rc == NSYS_ESTOPPED, "second stop returned %s", nsys_errname(rc));
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&p.terminated), 1);
    t_probe_destroy(&p);
}

Test(runtime, free_without_stop_terminates_live_actors)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p[3];
    for (int i = 0; i < 3; i++) {
        t_probe_init(&p[i]);
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, NULL), 0);
    }
    for (int i = 0; i < 3; i++)
        T_ASSERT_EVENTUALLY(atomic_load(&p[i].inited) == 1, "probe %d never started", i);
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(atomic_load(&p[i].terminated), 1, "probe %d was not terminated", i);
        cr_assert_eq(atomic_load(&p[i].term_reason), NSYS_REASON_SHUTDOWN);
        t_probe_destroy(&p[i]);
    }
}

static int freed_ptrs;
static void count_free(void *p)
{
    (void)p;
    __atomic_add_fetch(&freed_ptrs, 1, __ATOMIC_SEQ_CST);
}

static int args_freed;
static void count_args_free(void *p)
{
    (void)p;
    __atomic_add_fetch(&args_freed, 1, __ATOMIC_SEQ_CST);
}

Test(runtime, every_call_that_acts_on_actors_fails_with_estopped_after_stop)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    cr_assert_eq(nsys_register(rt, "before-stop", ref), 0);
    cr_assert_eq(nsys_runtime_stop(rt), 0);

    int dummy = 0;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &dummy;
    o.args_free = count_args_free;
    nsys_ref_t out = 77;
    cr_assert_eq(nsys_spawn(rt, t_probe_behaviour(), &o, &out), NSYS_ESTOPPED);
    cr_assert_eq(args_freed, 0, "args_free ran although spawn failed");
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, "x", 1), NSYS_ESTOPPED);
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("abc", 3, &b), 0);
    cr_assert_eq(nsys_send_buf(rt, ref, T_MSG_A, b), NSYS_ESTOPPED);
    cr_assert_eq(nsys_buf_refcount(b), 1, "the caller keeps its buffer on error");
    nsys_buf_unref(b);
    cr_assert_eq(nsys_send_ptr(rt, ref, T_MSG_A, &dummy, sizeof(dummy), count_free), NSYS_ESTOPPED);
    cr_assert_eq(freed_ptrs, 0, "free_fn ran although send_ptr failed");
    void *reply = NULL;
    cr_assert_eq(nsys_call(rt, ref, T_MSG_A, NULL, 0, 100, NULL, &reply, NULL), NSYS_ESTOPPED);
    cr_assert_eq(nsys_exit_signal(rt, ref, NSYS_ESHUTDOWN), NSYS_ESTOPPED);
    cr_assert_eq(nsys_kill(rt, ref), NSYS_ESTOPPED);
    cr_assert_not(nsys_is_alive(rt, ref));
    cr_assert_eq(nsys_register(rt, "after-stop", ref), NSYS_ESTOPPED);
    cr_assert_eq(nsys_unregister(rt, "before-stop"), NSYS_ESTOPPED);
    nsys_ref_t w = 0;
    cr_assert_eq(nsys_whereis(rt, "before-stop", &w), NSYS_ESTOPPED);
    nsys_wake_t why;
    cr_assert_eq(nsys_runtime_wait(rt, 0, 10, &why, NULL), NSYS_ESTOPPED);
    int rc = nsys_runtime_request_stop(rt, 1);
    cr_assert(rc == 0 || rc == NSYS_ESTOPPED, "request_stop after stop: %s", nsys_errname(rc));
    cr_assert_eq(nsys_runtime_schedulers(rt), 2);

    /* metrics stay readable and show the final state */
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_spawned, 1);
    cr_assert_eq(m.actors_alive, 0);
    cr_assert_eq(m.actors_exited, 1);
    nsys_sched_metrics_t sm;
    cr_assert_eq(nsys_sched_metrics_get(rt, 0, &sm), 0);
    cr_assert_eq(sm.actors, 0);
    char *json = NULL;
    cr_assert_eq(nsys_metrics_json(rt, &json), 0);
    cr_assert_not_null(json);
    nsys_free(json);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

typedef struct inside_calls {
    int stop_rc;
    int wait_rc;
} inside_calls_t;

static int fn_stop_from_inside(nsys_ctx_t *ctx, void *arg)
{
    inside_calls_t *c = arg;
    c->stop_rc = nsys_runtime_stop(nsys_ctx_runtime(ctx));
    nsys_wake_t why;
    c->wait_rc = nsys_runtime_wait(nsys_ctx_runtime(ctx), 0, 10, &why, NULL);
    return 0;
}

Test(runtime, stop_and_wait_from_a_scheduler_thread_are_refused_without_deadlock, .timeout = 60)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    inside_calls_t c = {1, 1};
    cr_assert_eq(t_call(rt, ref, fn_stop_from_inside, &c, NULL), 0, "the call never returned");
    cr_assert_eq(c.stop_rc, NSYS_EBUSY, "nsys_runtime_stop from an actor returned %s", nsys_errname(c.stop_rc));
    cr_assert_lt(c.wait_rc, 0, "nsys_runtime_wait from an actor returned %d", c.wait_rc);
    cr_assert(nsys_is_alive(rt, ref), "the refused stop still stopped the caller");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(runtime, two_runtimes_run_side_by_side)
{
    nsys_runtime_t *rt1 = NULL, *rt2 = NULL;
    cr_assert_eq(t_runtime(1, &rt1), 0);
    cr_assert_eq(t_runtime(2, &rt2), 0);
    t_probe_t p1, p2;
    t_probe_init(&p1);
    t_probe_init(&p2);
    nsys_ref_t r1, r2;
    cr_assert_eq(t_probe_spawn(rt1, &p1, NULL, &r1), 0);
    cr_assert_eq(t_probe_spawn(rt2, &p2, NULL, &r2), 0);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(t_send_int(rt1, r1, T_MSG_A, i), 0);
        cr_assert_eq(t_send_int(rt2, r2, T_MSG_B, i), 0);
    }
    cr_assert(t_recs_wait_count(&p1.inbox, 100, T_WAIT_MS));
    cr_assert(t_recs_wait_count(&p2.inbox, 100, T_WAIT_MS));
    cr_assert_eq(t_recs_count_type(&p1.inbox, T_MSG_A), 100);
    cr_assert_eq(t_recs_count_type(&p2.inbox, T_MSG_B), 100);
    T_RUNTIME_FREE(rt1);
    /* rt2 is unaffected by rt1 going away */
    cr_assert_eq(t_send_int(rt2, r2, T_MSG_C, 1), 0);
    cr_assert(t_recs_wait_type(&p2.inbox, T_MSG_C, 1, T_WAIT_MS));
    T_RUNTIME_FREE(rt2);
    t_probe_destroy(&p1);
    t_probe_destroy(&p2);
}

typedef struct ctx_facts {
    nsys_ctx_t *current;
    nsys_ctx_t *ctx;
    nsys_ref_t self;
    nsys_runtime_t *rt;
    uv_loop_t *loop;
    void *state;
    unsigned sched;
} ctx_facts_t;

static int fn_ctx_facts(nsys_ctx_t *ctx, void *arg)
{
    ctx_facts_t *f = arg;
    f->current = nsys_current();
    f->ctx = ctx;
    f->self = nsys_self(ctx);
    f->rt = nsys_ctx_runtime(ctx);
    f->loop = nsys_ctx_loop(ctx);
    f->state = nsys_ctx_state(ctx);
    f->sched = nsys_ctx_scheduler(ctx);
    return 0;
}

Test(runtime, current_is_null_outside_and_the_running_actor_inside)
{
    cr_assert_null(nsys_current());
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    cr_assert_null(nsys_current());
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_INDEX;
    o.sched_index = 1;
    cr_assert_eq(t_probe_spawn(rt, &p, &o, &ref), 0);
    ctx_facts_t f;
    memset(&f, 0, sizeof(f));
    cr_assert_eq(t_call(rt, ref, fn_ctx_facts, &f, NULL), 0);
    cr_assert_not_null(f.ctx);
    cr_assert_eq(f.current, f.ctx);
    cr_assert_eq(f.self, ref);
    cr_assert_eq(f.rt, rt);
    cr_assert_not_null(f.loop);
    cr_assert_not_null(f.state);
    cr_assert_eq(*(t_probe_t **)f.state, &p, "ctx_state is not the state callbacks get");
    cr_assert_eq(f.sched, 1);
    cr_assert_null(nsys_current());
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(runtime, null_contexts_and_messages_are_ignored_not_fatal)
{
    cr_assert_eq(nsys_self(NULL), NSYS_REF_NONE);
    cr_assert_eq(nsys_parent(NULL), NSYS_REF_NONE);
    cr_assert_null(nsys_ctx_runtime(NULL));
    cr_assert_null(nsys_ctx_loop(NULL));
    cr_assert_null(nsys_ctx_state(NULL));
    nsys_exit(NULL, NSYS_EFAILED);
    cr_assert_eq(nsys_trap_exit(NULL, true), false);
    nsys_defer_ack(NULL);
    cr_assert_lt(nsys_ack(NULL), 0);
    cr_assert_null(nsys_msg_take_buf(NULL));
    cr_assert_null(nsys_msg_take_ptr(NULL));
}

typedef struct thread_seen {
    pthread_t th;
    int mismatches;
    int calls;
} thread_seen_t;

static int fn_thread(nsys_ctx_t *ctx, void *arg)
{
    (void)ctx;
    thread_seen_t *s = arg;
    if (s->calls == 0)
        s->th = pthread_self();
    else if (!pthread_equal(s->th, pthread_self()))
        s->mismatches++;
    s->calls++;
    return 0;
}

Test(runtime, each_scheduler_is_its_own_thread_and_actors_stay_pinned)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    t_probe_t p[4];
    nsys_ref_t ref[4];
    thread_seen_t seen[4];
    memset(seen, 0, sizeof(seen));
    for (unsigned i = 0; i < 4; i++) {
        t_probe_init(&p[i]);
        nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
        o.placement = NSYS_PLACE_INDEX;
        o.sched_index = i;
        cr_assert_eq(t_probe_spawn(rt, &p[i], &o, &ref[i]), 0);
    }
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 4; i++)
            cr_assert_eq(t_call(rt, ref[i], fn_thread, &seen[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(seen[i].mismatches, 0, "actor %d ran on more than one thread", i);
        cr_assert_not(pthread_equal(seen[i].th, pthread_self()), "actor ran on the test thread");
        for (int j = i + 1; j < 4; j++)
            cr_assert_not(pthread_equal(seen[i].th, seen[j].th), "schedulers %d and %d share a thread", i, j);
    }
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < 4; i++)
        t_probe_destroy(&p[i]);
}

Test(runtime, options_batch_spin_and_timeout_are_accepted)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    o.batch = 1;
    o.spin_us = -1;
    o.shutdown_timeout_ms = 100;
    o.max_actors = 1000;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(t_send_int(rt, ref, T_MSG_A, i), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 200, T_WAIT_MS), "a never-spinning runtime lost a wake-up");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

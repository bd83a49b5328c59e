/* tests/unit/test_call.c — nsys_call: request/reply from threads outside the
 * runtime. Replies, empty replies, timeouts, a target that exits without
 * answering, late replies, concurrency, and the refusals runtime.h names. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

#define T_MSG_ECHO (NSYS_MSG_USER + 20u)    /* reply T_MSG_ECHOED with the same bytes */
#define T_MSG_EMPTY (NSYS_MSG_USER + 21u)   /* reply T_MSG_EMPTIED, no payload */
#define T_MSG_IGNORE (NSYS_MSG_USER + 22u)  /* no reply */
#define T_MSG_LEAVE (NSYS_MSG_USER + 23u)   /* exit without replying */
#define T_MSG_LATE (NSYS_MSG_USER + 24u)    /* reply after 200 ms */
#define T_MSG_TWICE (NSYS_MSG_USER + 25u)   /* two replies */
#define T_MSG_ECHOED (NSYS_MSG_USER + 30u)
#define T_MSG_EMPTIED (NSYS_MSG_USER + 31u)

typedef struct server {
    atomic_int requests;
    atomic_int late_rc;
    atomic_int late_sent;
    nsys_ref_t last_from;
} server_t;

static int server_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    *(server_t **)state = args;
    return 0;
}

static int server_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    server_t *s = *(server_t **)state;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    atomic_fetch_add(&s->requests, 1);
    switch (msg->type) {
    case T_MSG_ECHO:
        s->last_from = msg->from;
        return nsys_send(rt, msg->from, T_MSG_ECHOED, msg->data, msg->size);
    case T_MSG_EMPTY:
        return nsys_send(rt, msg->from, T_MSG_EMPTIED, NULL, 0);
    case T_MSG_LEAVE:
        nsys_exit(ctx, NSYS_REASON_NORMAL);
        return 0;
    case T_MSG_LATE:
        return nsys_send_after(ctx, NSYS_REF_NONE, 200, T_MSG_TICK, &msg->from, sizeof(msg->from), NULL);
    case T_MSG_TICK: {
        nsys_ref_t to;
        memcpy(&to, msg->data, sizeof(to));
        atomic_store(&s->late_rc, nsys_send(rt, to, T_MSG_ECHOED, "late", 4));
        atomic_store(&s->late_sent, 1);
        return 0;
    }
    case T_MSG_TWICE:
        nsys_send(rt, msg->from, T_MSG_ECHOED, "one", 3);
        return nsys_send(rt, msg->from, T_MSG_ECHOED, "two", 3);
    default:
        return 0;
    }
}

static const nsys_behaviour_t server_b = {
    .name = "test.server",
    .state_size = sizeof(server_t *),
    .init = server_init,
    .handle = server_handle,
};

typedef struct call_env {
    nsys_runtime_t *rt;
    server_t s;
    nsys_ref_t ref;
} call_env_t;

static call_env_t *env_new(void)
{
    call_env_t *e = calloc(1, sizeof(*e));
    cr_assert_eq(t_runtime(2, &e->rt), 0);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &e->s;
    cr_assert_eq(nsys_spawn(e->rt, &server_b, &o, &e->ref), 0);
    return e;
}

static void env_free(call_env_t *e)
{
    T_RUNTIME_FREE(e->rt);
    free(e);
}

Test(call, returns_the_reply_payload_and_type)
{
    call_env_t *e = env_new();
    uint32_t type = 0;
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_ECHO, "ping!", 5, 5000, &type, &reply, &size), 0);
    cr_assert_eq(type, T_MSG_ECHOED);
    cr_assert_eq(size, 5);
    cr_assert_not_null(reply);
    cr_assert_eq(memcmp(reply, "ping!", 5), 0);
    nsys_free(reply);
    cr_assert_neq(e->s.last_from, NSYS_REF_NONE, "the request must come from a (temporary) actor");
    cr_assert_neq(e->s.last_from, e->ref);
    env_free(e);
}

Test(call, carries_large_payloads_both_ways)
{
    call_env_t *e = env_new();
    size_t n = 256u << 10;
    uint8_t *req = malloc(n);
    for (size_t i = 0; i < n; i++)
        req[i] = (uint8_t)(i * 7u + 3u);
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_ECHO, req, n, 10000, NULL, &reply, &size), 0);
    cr_assert_eq(size, n);
    cr_assert_eq(memcmp(reply, req, n), 0);
    nsys_free(reply);
    free(req);
    env_free(e);
}

Test(call, an_empty_reply_has_size_zero)
{
    call_env_t *e = env_new();
    uint32_t type = 0;
    void *reply = (void *)1;
    size_t size = 99;
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_EMPTY, NULL, 0, 5000, &type, &reply, &size), 0);
    cr_assert_eq(type, T_MSG_EMPTIED);
    cr_assert_eq(size, 0);
    nsys_free(reply); /* NULL or an empty block */
    env_free(e);
}

Test(call, times_out_with_etimedout_when_nobody_answers)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    size_t size = 0;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_IGNORE, NULL, 0, 100, NULL, &reply, &size), NSYS_ETIMEDOUT);
    uint64_t took = t_now_ms() - t0;
    cr_assert_geq(took, 95, "gave up after %llu ms of 100", (unsigned long long)took);
    cr_assert_null(reply);
    T_ASSERT_EVENTUALLY(atomic_load(&e->s.requests) == 1, "the request never arrived");
    /* the temporary actor is gone again */
    nsys_metrics_t m;
    T_WAIT(nsys_metrics_get(e->rt, &m) == 0 && m.actors_alive == 1, T_WAIT_MS);
    cr_assert_eq(m.actors_alive, 1, "the call left %llu actors behind", (unsigned long long)m.actors_alive - 1);
    env_free(e);
}

Test(call, fails_with_enoactor_when_the_target_exits_without_answering)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_LEAVE, NULL, 0, 20000, NULL, &reply, NULL), NSYS_ENOACTOR);
    cr_assert_lt(t_now_ms() - t0, 10000, "waited for the timeout instead of the exit");
    cr_assert_null(reply);
    env_free(e);
}

Test(call, to_a_dead_or_never_valid_ref_fails_with_enoactor)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    nsys_ref_t never = ((nsys_ref_t)9 << 32) | 1234u;
    cr_assert_eq(nsys_call(e->rt, never, T_MSG_ECHO, "x", 1, 2000, NULL, &reply, NULL), NSYS_ENOACTOR);
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_LEAVE, NULL, 0, 2000, NULL, &reply, NULL), NSYS_ENOACTOR);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(e->rt, e->ref));
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_ECHO, "x", 1, 2000, NULL, &reply, NULL), NSYS_ENOACTOR);
    cr_assert_null(reply);
    env_free(e);
}

Test(call, a_late_reply_after_the_timeout_is_dropped_safely)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_LATE, NULL, 0, 30, NULL, &reply, NULL), NSYS_ETIMEDOUT);
    T_ASSERT_EVENTUALLY(atomic_load(&e->s.late_sent) == 1);
    cr_assert_eq(atomic_load(&e->s.late_rc), NSYS_ENOACTOR, "the late reply reached someone: %s",
                 nsys_errname(atomic_load(&e->s.late_rc)));
    /* and the server still answers the next caller */
    size_t size = 0;
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_ECHO, "next", 4, 5000, NULL, &reply, &size), 0);
    cr_assert_eq(size, 4);
    cr_assert_eq(memcmp(reply, "next", 4), 0);
    nsys_free(reply);
    env_free(e);
}

Test(call, only_the_first_reply_is_returned)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_TWICE, NULL, 0, 5000, NULL, &reply, &size), 0);
    cr_assert_eq(size, 3);
    cr_assert_eq(memcmp(reply, "one", 3), 0);
    nsys_free(reply);
    env_free(e);
}

Test(call, refuses_reserved_types_and_bad_arguments)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    cr_assert_eq(nsys_call(NULL, e->ref, T_MSG_ECHO, NULL, 0, 100, NULL, &reply, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_call(e->rt, e->ref, 0, NULL, 0, 100, NULL, &reply, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_call(e->rt, e->ref, NSYS_MSG_SYSTEM_MAX - 1, NULL, 0, 100, NULL, &reply, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_call(e->rt, e->ref, T_MSG_ECHO, NULL, 8, 100, NULL, &reply, NULL), NSYS_EINVAL);
    cr_assert_null(reply);
    cr_assert_eq(atomic_load(&e->s.requests), 0);
    env_free(e);
}

typedef struct inside {
    nsys_ref_t to;
    int rc;
} inside_t;

static int fn_call_inside(nsys_ctx_t *ctx, void *arg)
{
    inside_t *in = arg;
    void *reply = NULL;
    in->rc = nsys_call(nsys_ctx_runtime(ctx), in->to, T_MSG_ECHO, "x", 1, 1000, NULL, &reply, NULL);
    nsys_free(reply);
    return 0;
}

Test(call, from_a_scheduler_thread_is_refused_with_ebusy)
{
    call_env_t *e = env_new();
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(e->rt, &p, NULL, &pref), 0);
    inside_t in = {e->ref, 1};
    cr_assert_eq(t_call(e->rt, pref, fn_call_inside, &in, NULL), 0);
    cr_assert_eq(in.rc, NSYS_EBUSY, "nsys_call inside an actor: %s", nsys_errname(in.rc));
    env_free(e);
    t_probe_destroy(&p);
}

static atomic_int g_ptr_freed;
static atomic_int g_null_freed;

static void count_ptr_free(void *p)
{
    if (p == NULL)
        atomic_fetch_add(&g_null_freed, 1);
    free(p);
    atomic_fetch_add(&g_ptr_freed, 1);
}

Test(call, call_ptr_delivers_the_pointer_and_frees_it_once)
{
    call_env_t *e = env_new();
    char *req = malloc(6);
    memcpy(req, "moved", 6);
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(nsys_call_ptr(e->rt, e->ref, T_MSG_ECHO, req, 6, count_ptr_free, 5000, NULL, &reply, &size), 0);
    cr_assert_eq(size, 6);
    cr_assert_str_eq(reply, "moved");
    nsys_free(reply);
    T_ASSERT_EVENTUALLY(atomic_load(&g_ptr_freed) >= 1, "the request pointer was not released after handling");
    T_RUNTIME_FREE(e->rt);
    free(e);
    cr_assert_eq(atomic_load(&g_null_freed), 0, "free_fn was called %d times with NULL",
                 atomic_load(&g_null_freed));
    cr_assert_eq(atomic_load(&g_ptr_freed), 1, "free_fn ran %d times for one request", atomic_load(&g_ptr_freed));
}

Test(call, call_ptr_releases_the_pointer_on_every_failure)
{
    call_env_t *e = env_new();
    void *reply = NULL;
    nsys_ref_t never = ((nsys_ref_t)9 << 32) | 1234u;
    cr_assert_eq(nsys_call_ptr(e->rt, never, T_MSG_ECHO, malloc(8), 8, count_ptr_free, 1000, NULL, &reply, NULL),
                 NSYS_ENOACTOR);
    T_ASSERT_EVENTUALLY(atomic_load(&g_ptr_freed) >= 1, "not released after ENOACTOR");
    cr_assert_eq(nsys_call_ptr(e->rt, e->ref, 3, malloc(8), 8, count_ptr_free, 1000, NULL, &reply, NULL),
                 NSYS_EINVAL);
    T_ASSERT_EVENTUALLY(atomic_load(&g_ptr_freed) - atomic_load(&g_null_freed) >= 2, "not released after EINVAL");
    cr_assert_eq(nsys_call_ptr(e->rt, e->ref, T_MSG_IGNORE, malloc(8), 8, count_ptr_free, 30, NULL, &reply, NULL),
                 NSYS_ETIMEDOUT);
    T_ASSERT_EVENTUALLY(atomic_load(&g_ptr_freed) - atomic_load(&g_null_freed) >= 3, "not released after a timeout");
    cr_assert_null(reply);
    T_RUNTIME_FREE(e->rt);
    free(e);
    cr_assert_eq(atomic_load(&g_null_freed), 0, "free_fn was called %d times with NULL",
                 atomic_load(&g_null_freed));
    cr_assert_eq(atomic_load(&g_ptr_freed), 3, "free_fn ran %d times for 3 requests", atomic_load(&g_ptr_freed));
}

Test(call, call_ptr_without_free_fn_is_refused)
{
    call_env_t *e = env_new();
    static char keep[4] = "abc";
    void *reply = NULL;
    cr_assert_eq(nsys_call_ptr(e->rt, e->ref, T_MSG_ECHO, keep, 4, NULL, 1000, NULL, &reply, NULL), NSYS_EINVAL);
    cr_assert_eq(atomic_load(&e->s.requests), 0);
    env_free(e);
}

#define CALLERS 4
#define CALLS 300

typedef struct caller {
    nsys_runtime_t *rt;
    nsys_ref_t to;
    int id;
    int wrong;
    int failed;
} caller_t;

static void *caller_main(void *arg)
{
    caller_t *c = arg;
    for (int i = 0; i < CALLS; i++) {
        int req[2] = {c->id, i};
        void *reply = NULL;
        size_t size = 0;
        int rc = nsys_call(c->rt, c->to, T_MSG_ECHO, req, sizeof(req), 10000, NULL, &reply, &size);
        if (rc != 0)
            c->failed++;
        else if (size != sizeof(req) || memcmp(reply, req, sizeof(req)) != 0)
            c->wrong++;
        nsys_free(reply);
    }
    return NULL;
}

Test(call, concurrent_callers_each_get_their_own_reply, .timeout = 120)
{
    call_env_t *e = env_new();
    caller_t c[CALLERS];
    pthread_t th[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        c[i] = (caller_t){e->rt, e->ref, i, 0, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, caller_main, &c[i]), 0);
    }
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(c[i].failed, 0, "caller %d: %d calls failed", i, c[i].failed);
        cr_assert_eq(c[i].wrong, 0, "caller %d got %d replies meant for others", i, c[i].wrong);
    }
    nsys_metrics_t m;
    T_WAIT(nsys_metrics_get(e->rt, &m) == 0 && m.actors_alive == 1, T_WAIT_MS);
    cr_assert_eq(m.actors_alive, 1, "temporary actors left behind");
    env_free(e);
}

typedef struct stop_caller {
    nsys_runtime_t *rt;
    nsys_ref_t to;
    int rc;
    atomic_int started;
} stop_caller_t;

static void *stop_caller_main(void *arg)
{
    stop_caller_t *c = arg;
    void *reply = NULL;
    atomic_store(&c->started, 1);
    c->rc = nsys_call(c->rt, c->to, T_MSG_IGNORE, NULL, 0, 40000, NULL, &reply, NULL);
    nsys_free(reply);
    return NULL;
}

Test(call, a_call_waiting_when_the_runtime_stops_returns_an_error, .timeout = 120)
{
    call_env_t *e = env_new();
    stop_caller_t c = {e->rt, e->ref, 1, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, stop_caller_main, &c), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&e->s.requests) == 1, "the request never arrived");
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_runtime_stop(e->rt), 0);
    pthread_join(th, NULL);
    cr_assert_lt(t_now_ms() - t0, 30000);
    cr_assert_lt(c.rc, 0, "a call outlived the runtime with %d", c.rc);
    cr_assert_neq(c.rc, NSYS_ETIMEDOUT, "the call only ended by its own timeout");
    env_free(e);
}

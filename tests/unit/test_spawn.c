/* tests/unit/test_spawn.c — nsys_spawn: argument checks, placement, args and
 * args_free, parent/self, zeroed state, init failure, nsys_exit in init,
 * link/monitor at spawn. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

#define KID_STATE 4096

/* One kid_t per spawned actor; it tells the actor what to do and records
 * what happened to it. */
typedef struct kid {
    int init_rc;       /* init returns this */
    bool exit_in_init; /* init calls nsys_exit(exit_reason) */
    int exit_reason;
    atomic_int init_calls;
    atomic_int term_calls;
    atomic_int term_reason;
    atomic_int handled;
    atomic_int args_freed;
    atomic_int state_dirty; /* init found a non-zero byte */
    atomic_int args_seen;   /* init got this very kid_t as args */
    atomic_uint sched;
    _Atomic uint64_t self;
    _Atomic uint64_t parent;
} kid_t;

static void kid_args_free(void *args)
{
    kid_t *k = args;
    atomic_fetch_add(&k->args_freed, 1);
}

static int kid_init(nsys_ctx_t *ctx, void *state, void *args)
{
    kid_t *k = args;
    unsigned char *s = state;
    for (size_t i = 0; i < KID_STATE; i++) {
        if (s[i] != 0) {
            atomic_store(&k->state_dirty, 1);
            break;
        }
    }
    memset(s, 0xAB, KID_STATE);
    memcpy(s, &k, sizeof(k)); /* keep a pointer for handle/terminate */
    atomic_store(&k->args_seen, 1);
    atomic_store(&k->sched, nsys_ctx_scheduler(ctx));
    atomic_store(&k->self, nsys_self(ctx));
    atomic_store(&k->parent, nsys_parent(ctx));
    if (k->exit_in_init)
        nsys_exit(ctx, k->exit_reason);
    atomic_fetch_add(&k->init_calls, 1);
    return k->init_rc;
}

static kid_t *kid_of(void *state)
{
    kid_t *k;
    memcpy(&k, state, sizeof(k));
    return k;
}

static int kid_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    kid_t *k = kid_of(state);
    atomic_fetch_add(&k->handled, 1);
    if (msg->type == T_MSG_EXITME) {
        int r;
        memcpy(&r, msg->data, sizeof(r));
        nsys_exit(ctx, r);
    }
    return 0;
}

static void kid_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    kid_t *k = kid_of(state);
    atomic_store(&k->term_reason, reason);
    atomic_fetch_add(&k->term_calls, 1);
}

static const nsys_behaviour_t kid_b = {
    .name = "test.kid",
    .state_size = KID_STATE,
    .init = kid_init,
    .handle = kid_handle,
    .terminate = kid_terminate,
};

static int noinit_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static const nsys_behaviour_t noinit_b = {.name = "test.noinit", .handle = noinit_handle};

static nsys_spawn_opts_t kid_opts(kid_t *k)
{
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = k;
    o.args_free = kid_args_free;
    return o;
}

static uint64_t spawned_count(nsys_runtime_t *rt)
{
    nsys_metrics_t m;
    if (nsys_metrics_get(rt, &m) != 0)
        return UINT64_MAX;
    return m.actors_spawned;
}

/* ---- argument checks ------------------------------------------------------ */

Test(spawn, rejects_null_runtime_null_behaviour_and_a_missing_handle)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    kid_t k = {0};
    nsys_spawn_opts_t o = kid_opts(&k);
    nsys_ref_t ref = 123;
    cr_assert_eq(nsys_spawn(NULL, &kid_b, &o, &ref), NSYS_EINVAL);
    cr_assert_eq(nsys_spawn(rt, NULL, &o, &ref), NSYS_EINVAL);
    nsys_behaviour_t no_handle = kid_b;
    no_handle.handle = NULL;
    cr_assert_eq(nsys_spawn(rt, &no_handle, &o, &ref), NSYS_EINVAL);
    cr_assert_eq(atomic_load(&k.args_freed), 0, "args_free ran although spawn failed");
    cr_assert_eq(spawned_count(rt), 0);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.init_calls), 0);
    cr_assert_eq(atomic_load(&k.args_freed), 0);
}

Test(spawn, works_with_null_opts_and_null_out)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    cr_assert_eq(nsys_spawn(rt, &noinit_b, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(spawned_count(rt) == 1, "spawned %llu", (unsigned long long)spawned_count(rt));
    T_RUNTIME_FREE(rt);
}

#define SPAWN_THREADS 4
#define SPAWN_PER_THREAD 500

typedef struct spawner {
    nsys_runtime_t *rt;
    nsys_ref_t refs[SPAWN_PER_THREAD];
    kid_t *kids;
    int failures;
} spawner_t;

static void *spawner_main(void *arg)
{
    spawner_t *s = arg;
    for (int i = 0; i < SPAWN_PER_THREAD; i++) {
        s->kids[i].exit_in_init = true;
        nsys_spawn_opts_t o = kid_opts(&s->kids[i]);
        if (nsys_spawn(s->rt, &kid_b, &o, &s->refs[i]) != 0)
            s->failures++;
    }
    return NULL;
}

static int cmp_ref(const void *a, const void *b)
{
    nsys_ref_t x = *(const nsys_ref_t *)a, y = *(const nsys_ref_t *)b;
    return x < y ? -1 : x > y;
}

Test(spawn, refs_from_concurrent_spawns_are_never_none_and_never_repeat, .timeout = 120)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    spawner_t *s = calloc(SPAWN_THREADS, sizeof(*s));
    kid_t *kids = calloc(SPAWN_THREADS * SPAWN_PER_THREAD, sizeof(*kids));
    cr_assert(s != NULL && kids != NULL);
    pthread_t th[SPAWN_THREADS];
    for (int t = 0; t < SPAWN_THREADS; t++) {
        s[t].rt = rt;
        s[t].kids = kids + t * SPAWN_PER_THREAD;
        cr_assert_eq(pthread_create(&th[t], NULL, spawner_main, &s[t]), 0);
    }
    for (int t = 0; t < SPAWN_THREADS; t++)
        pthread_join(th[t], NULL);
    nsys_ref_t *all = malloc(sizeof(nsys_ref_t) * SPAWN_THREADS * SPAWN_PER_THREAD);
    size_t n = 0;
    for (int t = 0; t < SPAWN_THREADS; t++) {
        cr_assert_eq(s[t].failures, 0);
        for (int i = 0; i < SPAWN_PER_THREAD; i++) {
            cr_assert_neq(s[t].refs[i], NSYS_REF_NONE);
            all[n++] = s[t].refs[i];
        }
    }
    qsort(all, n, sizeof(all[0]), cmp_ref);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(all[i], all[i - 1], "ref %llx handed out twice", (unsigned long long)all[i]);
    for (int t = 0; t < SPAWN_THREADS; t++) {
        for (int i = 0; i < SPAWN_PER_THREAD; i++) {
            kid_t *k = &s[t].kids[i];
            T_ASSERT_EVENTUALLY(atomic_load(&k->term_calls) == 1, "kid %d/%d never terminated", t, i);
            cr_assert_eq(atomic_load(&k->args_freed), 1);
            cr_assert_eq(atomic_load(&k->self), s[t].refs[i], "nsys_self differs from the spawned ref");
        }
    }
    T_RUNTIME_FREE(rt);
    free(all);
    free(kids);
    free(s);
}

/* ---- placement ------------------------------------------------------------ */

Test(spawn, placement_any_round_robins_over_schedulers)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    kid_t k[8];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 8; i++) {
        nsys_spawn_opts_t o = kid_opts(&k[i]);
        o.placement = NSYS_PLACE_ANY;
        cr_assert_eq(nsys_spawn(rt, &kid_b, &o, NULL), 0);
    }
    int per[4] = {0};
    for (int i = 0; i < 8; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1, "kid %d never started", i);
        unsigned s = atomic_load(&k[i].sched);
        cr_assert_lt(s, 4);
        per[s]++;
    }
    for (int s = 0; s < 4; s++)
        cr_assert_eq(per[s], 2, "scheduler %d got %d of 8 actors (%d %d %d %d)", s, per[s], per[0], per[1],
                     per[2], per[3]);
    T_RUNTIME_FREE(rt);
}

typedef struct inner_spawn {
    nsys_spawn_opts_t opts;
    const nsys_behaviour_t *b;
    int rc;
    nsys_ref_t ref;
    unsigned my_sched;
    nsys_ref_t me;
} inner_spawn_t;

static int fn_spawn(nsys_ctx_t *ctx, void *arg)
{
    inner_spawn_t *s = arg;
    s->my_sched = nsys_ctx_scheduler(ctx);
    s->me = nsys_self(ctx);
    s->rc = nsys_spawn(nsys_ctx_runtime(ctx), s->b, &s->opts, &s->ref);
    return s->rc;
}

static t_probe_t *spawn_probe_at(nsys_runtime_t *rt, unsigned sched, nsys_ref_t *ref)
{
    t_probe_t *p = calloc(1, sizeof(*p));
    t_probe_init(p);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_INDEX;
    o.sched_index = sched;
    if (t_probe_spawn(rt, p, &o, ref) != 0)
        return NULL;
    return p;
}

static void free_probe(t_probe_t *p)
{
    t_probe_destroy(p);
    free(p);
}

Test(spawn, placement_any_from_an_actor_spreads_beyond_its_scheduler)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    nsys_ref_t pref;
    t_probe_t *p = spawn_probe_at(rt, 2, &pref);
    cr_assert_not_null(p);
    kid_t k[8];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 8; i++) {
        inner_spawn_t s = {kid_opts(&k[i]), &kid_b, -1, 0, 0, 0};
        s.opts.placement = NSYS_PLACE_ANY;
        cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
        cr_assert_eq(s.rc, 0);
    }
    int per[4] = {0};
    for (int i = 0; i < 8; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        per[atomic_load(&k[i].sched) % 4]++;
    }
    for (int s = 0; s < 4; s++)
        cr_assert_eq(per[s], 2, "scheduler %d got %d of 8", s, per[s]);
    T_RUNTIME_FREE(rt);
    free_probe(p);
}

Test(spawn, placement_default_from_an_actor_keeps_the_callers_scheduler)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    nsys_ref_t pref;
    t_probe_t *p = spawn_probe_at(rt, 3, &pref);
    cr_assert_not_null(p);
    kid_t k[6];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 6; i++) {
        inner_spawn_t s = {kid_opts(&k[i]), &kid_b, -1, 0, 0, 0};
        cr_assert_eq(s.opts.placement, NSYS_PLACE_DEFAULT, "NSYS_SPAWN_OPTS_DEFAULTS is not the default placement");
        cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
        cr_assert_eq(s.rc, 0);
    }
    for (int i = 0; i < 6; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        cr_assert_eq(atomic_load(&k[i].sched), 3, "kid %d left its parent's scheduler", i);
    }
    T_RUNTIME_FREE(rt);
    free_probe(p);
}

Test(spawn, placement_default_from_outside_round_robins)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    kid_t k[8];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 8; i++) {
        nsys_spawn_opts_t o = kid_opts(&k[i]);
        cr_assert_eq(nsys_spawn(rt, &kid_b, &o, NULL), 0);
    }
    int per[4] = {0};
    for (int i = 0; i < 8; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        per[atomic_load(&k[i].sched) % 4]++;
    }
    for (int s = 0; s < 4; s++)
        cr_assert_eq(per[s], 2, "scheduler %d got %d of 8", s, per[s]);
    T_RUNTIME_FREE(rt);
}

Test(spawn, placement_same_keeps_the_parents_scheduler)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    nsys_ref_t pref;
    t_probe_t *p = spawn_probe_at(rt, 2, &pref);
    cr_assert_not_null(p);
    kid_t k[6];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 6; i++) {
        inner_spawn_t s = {kid_opts(&k[i]), &kid_b, -1, 0, 0, 0};
        s.opts.placement = NSYS_PLACE_SAME;
        cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
        cr_assert_eq(s.rc, 0);
        cr_assert_eq(s.my_sched, 2);
    }
    for (int i = 0; i < 6; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        cr_assert_eq(atomic_load(&k[i].sched), 2, "kid %d left its parent's scheduler", i);
    }
    T_RUNTIME_FREE(rt);
    free_probe(p);
}

Test(spawn, placement_same_from_outside_round_robins)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    kid_t k[4];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 4; i++) {
        nsys_spawn_opts_t o = kid_opts(&k[i]);
        o.placement = NSYS_PLACE_SAME;
        cr_assert_eq(nsys_spawn(rt, &kid_b, &o, NULL), 0);
    }
    int per[4] = {0};
    for (int i = 0; i < 4; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        per[atomic_load(&k[i].sched) % 4]++;
    }
    for (int s = 0; s < 4; s++)
        cr_assert_eq(per[s], 1, "scheduler %d got %d of 4", s, per[s]);
    T_RUNTIME_FREE(rt);
}

Test(spawn, placement_index_is_honoured_for_every_scheduler)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(4, &rt), 0);
    kid_t k[8];
    memset(k, 0, sizeof(k));
    const unsigned want[8] = {3, 3, 0, 1, 2, 1, 0, 3};
    for (int i = 0; i < 8; i++) {
        nsys_spawn_opts_t o = kid_opts(&k[i]);
        o.placement = NSYS_PLACE_INDEX;
        o.sched_index = want[i];
        cr_assert_eq(nsys_spawn(rt, &kid_b, &o, NULL), 0);
    }
    for (int i = 0; i < 8; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        cr_assert_eq(atomic_load(&k[i].sched), want[i]);
    }
    T_RUNTIME_FREE(rt);
}

Test(spawn, placement_index_out_of_range_is_refused_and_args_stay_with_the_caller)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    kid_t k = {0};
    nsys_spawn_opts_t o = kid_opts(&k);
    o.placement = NSYS_PLACE_INDEX;
    nsys_ref_t ref = 0;
    o.sched_index = 2;
    cr_assert_eq(nsys_spawn(rt, &kid_b, &o, &ref), NSYS_EINVAL);
    o.sched_index = UINT_MAX;
    cr_assert_eq(nsys_spawn(rt, &kid_b, &o, &ref), NSYS_EINVAL);
    o.placement = (nsys_placement_t)7;
    o.sched_index = 0;
    cr_assert_eq(nsys_spawn(rt, &kid_b, &o, &ref), NSYS_EINVAL);
    cr_assert_eq(spawned_count(rt), 0);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.args_freed), 0);
    cr_assert_eq(atomic_load(&k.init_calls), 0);
}

/* ---- args, parent, self, state -------------------------------------------- */

Test(spawn, init_gets_the_args_and_args_free_runs_exactly_once)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    kid_t k = {0};
    nsys_spawn_opts_t o = kid_opts(&k);
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &kid_b, &o, &ref), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&k.args_freed) == 1, "args_free never ran after init");
    cr_assert_eq(atomic_load(&k.args_seen), 1);
    cr_assert_eq(atomic_load(&k.init_calls), 1);
    cr_assert(nsys_is_alive(rt, ref));
    cr_assert_eq(t_send_int(rt, ref, T_MSG_EXITME, 0), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&k.term_calls) == 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.args_freed), 1, "args_free ran more than once");
}

Test(spawn, args_free_runs_once_when_init_fails)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    kid_t k = {0};
    k.init_rc = NSYS_ECONFIG;
    nsys_spawn_opts_t o = kid_opts(&k);
    cr_assert_eq(nsys_spawn(rt, &kid_b, &o, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&k.args_freed) == 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.args_freed), 1);
    cr_assert_eq(atomic_load(&k.term_calls), 0, "terminate ran after a failed init");
}

static atomic_int g_plain_freed;
static void plain_args_free(void *p)
{
    free(p);
    atomic_fetch_add(&g_plain_freed, 1);
}

Test(spawn, args_free_runs_once_when_the_behaviour_has_no_init)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = malloc(32);
    o.args_free = plain_args_free;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &noinit_b, &o, &ref), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&g_plain_freed) == 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_plain_freed), 1);
}

Test(spawn, parent_is_none_from_outside_and_the_spawner_from_inside)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    kid_t top = {0}, child = {0};
    nsys_spawn_opts_t o = kid_opts(&top);
    nsys_ref_t top_ref;
    cr_assert_eq(nsys_spawn(rt, &kid_b, &o, &top_ref), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&top.init_calls) == 1);
    cr_assert_eq(atomic_load(&top.parent), NSYS_REF_NONE);
    cr_assert_eq(atomic_load(&top.self), top_ref);

    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    inner_spawn_t s = {kid_opts(&child), &kid_b, -1, 0, 0, 0};
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    T_ASSERT_EVENTUALLY(atomic_load(&child.init_calls) == 1);
    cr_assert_eq(atomic_load(&child.parent), pref);
    cr_assert_eq(atomic_load(&child.self), s.ref);
    cr_assert_eq(s.me, pref);
    cr_assert_neq(s.ref, pref);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(spawn, state_is_zeroed_before_every_init)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 300 };
    kid_t *k = calloc(N, sizeof(*k));
    for (int i = 0; i < N; i++) {
        k[i].exit_in_init = true; /* dirty the state, then free it for reuse */
        nsys_spawn_opts_t o = kid_opts(&k[i]);
        cr_assert_eq(nsys_spawn(rt, &kid_b, &o, NULL), 0);
        if (i % 10 == 9) /* let some exit so their memory is reused */
            T_ASSERT_EVENTUALLY(atomic_load(&k[i].term_calls) == 1);
    }
    for (int i = 0; i < N; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&k[i].init_calls) == 1);
        cr_assert_eq(atomic_load(&k[i].state_dirty), 0, "actor %d started with a dirty state", i);
    }
    T_RUNTIME_FREE(rt);
    free(k);
}

static int zero_state_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)state;
    if (msg->type == T_MSG_EXITME)
        nsys_exit(ctx, NSYS_ETIMEDOUT);
    return 0;
}

Test(spawn, zero_state_size_is_allowed)
{
    static const nsys_behaviour_t b = {.name = "test.stateless", .state_size = 0, .handle = zero_state_handle};
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref, ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    cr_assert_eq(nsys_spawn(rt, &b, NULL, &ref), 0);
    cr_assert_eq(t_monitor(rt, &p, ref, NULL), 0);
    cr_assert_eq(t_send_int(rt, ref, T_MSG_EXITME, 0), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.reason, NSYS_ETIMEDOUT);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* ---- init failure and nsys_exit in init --------------------------------- */

Test(spawn, init_failure_sends_down_with_its_reason_and_skips_terminate)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t k = {0};
    k.init_rc = NSYS_ECONFIG;
    uint64_t mon = 0;
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.monitor = true;
    s.opts.monitor_id = &mon;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS), "no DOWN after init failed");
    cr_assert_eq(d.ref, s.ref);
    cr_assert_eq(d.monitor, mon);
    cr_assert_eq(d.reason, NSYS_ECONFIG, "reason %s", nsys_errname(d.reason));
    cr_assert_eq(atomic_load(&k.term_calls), 0, "terminate ran after a failed init");
    cr_assert_not(nsys_is_alive(rt, s.ref));
    nsys_metrics_t m;
    T_WAIT(nsys_metrics_get(rt, &m) == 0 && m.actors_failed == 1, T_WAIT_MS);
    cr_assert_eq(m.actors_failed, 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.term_calls), 0);
    t_probe_destroy(&p);
}

Test(spawn, init_failure_signals_a_linked_trapping_parent)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    p.trap = true;
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t k = {0};
    k.init_rc = NSYS_ETIMEDOUT;
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.link = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    nsys_exit_t e;
    cr_assert(t_probe_wait_exit(&p, 0, &e, T_WAIT_MS), "no EXIT after a linked init failed");
    cr_assert_eq(e.from, s.ref);
    cr_assert_eq(e.reason, NSYS_ETIMEDOUT);
    cr_assert(nsys_is_alive(rt, pref));
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

static void exit_in_init_case(int reason)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t k = {0};
    k.exit_in_init = true;
    k.exit_reason = reason;
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.monitor = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    /* queued before init can have finished: must never be handled */
    int rc = t_send_int(rt, s.ref, T_MSG_A, 1);
    cr_assert(rc == 0 || rc == NSYS_ENOACTOR);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.reason, reason, "reason %s", nsys_errname(d.reason));
    cr_assert_eq(atomic_load(&k.init_calls), 1);
    T_ASSERT_EVENTUALLY(atomic_load(&k.term_calls) == 1, "terminate must run: init returned 0");
    cr_assert_eq(atomic_load(&k.term_reason), reason);
    cr_assert_eq(atomic_load(&k.handled), 0, "a message was handled after nsys_exit in init");
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.term_calls), 1);
    t_probe_destroy(&p);
}

Test(spawn, exit_in_init_exits_after_init_with_that_reason_and_runs_terminate)
{
    exit_in_init_case(NSYS_ECANCELED);
}

Test(spawn, normal_exit_in_init_is_a_normal_exit)
{
    exit_in_init_case(NSYS_REASON_NORMAL);
}

/* ---- link and monitor at spawn ------------------------------------------ */

Test(spawn, monitor_at_spawn_gives_the_id_the_down_carries)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t k = {0};
    uint64_t mon = 0;
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.monitor = true;
    s.opts.monitor_id = &mon;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    cr_assert_eq(t_send_int(rt, s.ref, T_MSG_EXITME, NSYS_EMSGSIZE), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.monitor, mon);
    cr_assert_eq(d.ref, s.ref);
    cr_assert_eq(d.reason, NSYS_EMSGSIZE);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(spawn, link_at_spawn_links_both_ways)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p, watcher;
    t_probe_init(&p);
    t_probe_init(&watcher);
    nsys_ref_t pref, wref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    cr_assert_eq(t_probe_spawn(rt, &watcher, NULL, &wref), 0);
    kid_t k = {0};
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.link = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    T_ASSERT_EVENTUALLY(atomic_load(&k.init_calls) == 1);
    cr_assert_eq(t_monitor(rt, &watcher, s.ref, NULL), 0);
    /* the parent fails; the linked child must follow with the same reason */
    cr_assert_eq(t_send_int(rt, pref, T_MSG_EXITME, NSYS_EBUSY), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&watcher, 0, &d, T_WAIT_MS), "linked child survived its parent's failure");
    cr_assert_eq(d.ref, s.ref);
    cr_assert_eq(d.reason, NSYS_EBUSY);
    T_ASSERT_EVENTUALLY(atomic_load(&k.term_calls) == 1);
    cr_assert_eq(atomic_load(&k.term_reason), NSYS_EBUSY);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
    t_probe_destroy(&watcher);
}

Test(spawn, link_or_monitor_at_spawn_from_outside_an_actor_is_refused)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    kid_t k = {0};
    nsys_spawn_opts_t o = kid_opts(&k);
    o.link = true;
    int rc = nsys_spawn(rt, &kid_b, &o, NULL);
    cr_assert(rc == NSYS_ENOTACTOR || rc == NSYS_EINVAL, "link from outside: %s", nsys_errname(rc));
    o = kid_opts(&k);
    uint64_t mon = 0;
    o.monitor = true;
    o.monitor_id = &mon;
    rc = nsys_spawn(rt, &kid_b, &o, NULL);
    cr_assert(rc == NSYS_ENOTACTOR || rc == NSYS_EINVAL, "monitor from outside: %s", nsys_errname(rc));
    cr_assert_eq(spawned_count(rt), 0, "a refused spawn created an actor");
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.args_freed), 0, "args_free ran although spawn failed");
    cr_assert_eq(atomic_load(&k.init_calls), 0);
}

Test(spawn, monitor_at_spawn_without_an_id_pointer_still_delivers_down)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t k = {0};
    k.exit_in_init = true;
    k.exit_reason = NSYS_ENOSPC;
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.monitor = true;
    s.opts.monitor_id = NULL;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.reason, NSYS_ENOSPC);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* ---- start acknowledgement -------------------------------------------------- */

static int started_count(t_probe_t *p)
{
    return (int)t_recs_count_type(&p->inbox, NSYS_MSG_STARTED);
}

Test(spawn, ack_sends_started_to_the_parent_once_init_returns)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t k = {0};
    inner_spawn_t s = {kid_opts(&k), &kid_b, -1, 0, 0, 0};
    s.opts.ack = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    cr_assert(t_recs_wait_type(&p.inbox, NSYS_MSG_STARTED, 1, T_WAIT_MS), "no NSYS_MSG_STARTED");
    cr_assert_eq(atomic_load(&k.init_calls), 1, "STARTED came before init returned");
    t_rec_t r;
    t_recs_get(&p.inbox, (size_t)t_recs_find_type(&p.inbox, NSYS_MSG_STARTED, 0), &r);
    nsys_started_t st;
    memcpy(&st, r.bytes, sizeof(st));
    cr_assert_eq(r.size, sizeof(nsys_started_t));
    cr_assert_eq(st.ref, s.ref);
    cr_assert_eq(r.from, s.ref);
    cr_assert_eq(nsys_send(rt, pref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(started_count(&p), 1, "more than one STARTED");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(spawn, no_started_without_ack_and_none_when_init_fails)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t pref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    kid_t plain = {0}, failing = {0};
    failing.init_rc = NSYS_ECANCELED;
    inner_spawn_t s1 = {kid_opts(&plain), &kid_b, -1, 0, 0, 0};
    s1.opts.monitor = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s1, NULL), 0);
    inner_spawn_t s2 = {kid_opts(&failing), &kid_b, -1, 0, 0, 0};
    s2.opts.monitor = true;
    s2.opts.ack = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s2, NULL), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.ref, s2.ref);
    cr_assert_eq(d.reason, NSYS_ECANCELED);
    T_ASSERT_EVENTUALLY(atomic_load(&plain.init_calls) == 1);
    cr_assert_eq(t_send_int(rt, s1.ref, T_MSG_EXITME, 0), 0);
    cr_assert(t_probe_wait_down(&p, 1, &d, T_WAIT_MS));
    cr_assert_eq(started_count(&p), 0, "STARTED without ack, or after a failed init");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

static int fn_ack(nsys_ctx_t *ctx, void *arg)
{
    (void)arg;
    return nsys_ack(ctx);
}

static void spawn_deferring_child(nsys_runtime_t *rt, nsys_ref_t pref, t_probe_t *child, nsys_ref_t *cref)
{
    child->defer_ack = true;
    inner_spawn_t s = {NSYS_SPAWN_OPTS_DEFAULTS, t_probe_behaviour(), -1, 0, 0, 0};
    s.opts.args = child;
    s.opts.ack = true;
    s.opts.monitor = true;
    cr_assert_eq(t_call(rt, pref, fn_spawn, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    *cref = s.ref;
    /* the child's init has run once it answers a call */
    cr_assert_eq(t_call(rt, s.ref, t_fn_noop, NULL, NULL), 0);
}

Test(spawn, defer_ack_holds_started_until_the_child_calls_ack)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p, child;
    t_probe_init(&p);
    t_probe_init(&child);
    nsys_ref_t pref, cref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    spawn_deferring_child(rt, pref, &child, &cref);
    cr_assert_eq(nsys_send(rt, pref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(started_count(&p), 0, "STARTED although the child deferred it");
    int fn_rc = -1;
    cr_assert_eq(t_call(rt, cref, fn_ack, NULL, &fn_rc), 0);
    cr_assert_eq(fn_rc, 0, "nsys_ack: %s", nsys_errname(fn_rc));
    cr_assert(t_recs_wait_type(&p.inbox, NSYS_MSG_STARTED, 1, T_WAIT_MS), "nsys_ack sent nothing");
    t_rec_t r;
    t_recs_get(&p.inbox, (size_t)t_recs_find_type(&p.inbox, NSYS_MSG_STARTED, 0), &r);
    nsys_started_t st;
    memcpy(&st, r.bytes, sizeof(st));
    cr_assert_eq(st.ref, cref);
    /* a second ack sends nothing more */
    cr_assert_eq(t_call(rt, cref, fn_ack, NULL, &fn_rc), 0);
    cr_assert_eq(nsys_send(rt, pref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 2, T_WAIT_MS));
    cr_assert_eq(started_count(&p), 1);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
    t_probe_destroy(&child);
}

Test(spawn, a_child_that_exits_before_its_deferred_ack_shows_only_the_exit)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p, child;
    t_probe_init(&p);
    t_probe_init(&child);
    nsys_ref_t pref, cref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &pref), 0);
    spawn_deferring_child(rt, pref, &child, &cref);
    cr_assert_eq(t_send_int(rt, cref, T_MSG_EXITME, NSYS_ETIMEDOUT), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&p, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.reason, NSYS_ETIMEDOUT);
    cr_assert_eq(nsys_send(rt, pref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(started_count(&p), 0, "STARTED for a child that never acknowledged");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
    t_probe_destroy(&child);
}

Test(spawn, ack_from_outside_an_actor_is_refused)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    kid_t k = {0};
    nsys_spawn_opts_t o = kid_opts(&k);
    o.ack = true;
    int rc = nsys_spawn(rt, &kid_b, &o, NULL);
    cr_assert(rc == NSYS_ENOTACTOR || rc == NSYS_EINVAL, "ack from outside: %s", nsys_errname(rc));
    cr_assert_eq(spawned_count(rt), 0);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&k.args_freed), 0);
    cr_assert_lt(nsys_ack(NULL), 0);
}

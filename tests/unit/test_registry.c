/* tests/unit/test_registry.c — nsys_register / nsys_whereis /
 * nsys_unregister: the error cases runtime.h names, names released when an
 * actor exits, name validation, races for one name. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

typedef struct reg_env {
    nsys_runtime_t *rt;
    t_probe_t p[4];
    nsys_ref_t r[4];
} reg_env_t;

static reg_env_t *env_new(void)
{
    reg_env_t *e = calloc(1, sizeof(*e));
    cr_assert_eq(t_runtime(2, &e->rt), 0);
    for (int i = 0; i < 4; i++) {
        t_probe_init(&e->p[i]);
        cr_assert_eq(t_probe_spawn(e->rt, &e->p[i], NULL, &e->r[i]), 0);
    }
    return e;
}

static void env_free(reg_env_t *e)
{
    T_RUNTIME_FREE(e->rt);
    for (int i = 0; i < 4; i++)
        t_probe_destroy(&e->p[i]);
    free(e);
}

Test(registry, register_then_whereis_then_unregister)
{
    reg_env_t *e = env_new();
    cr_assert_eq(nsys_register(e->rt, "db", e->r[1]), 0);
    nsys_ref_t out = 0;
    cr_assert_eq(nsys_whereis(e->rt, "db", &out), 0);
    cr_assert_eq(out, e->r[1]);
    cr_assert_eq(nsys_unregister(e->rt, "db"), 0);
    cr_assert_eq(nsys_whereis(e->rt, "db", &out), NSYS_ENOENT);
    cr_assert_eq(nsys_unregister(e->rt, "db"), NSYS_ENOENT);
    cr_assert(nsys_is_alive(e->rt, e->r[1]), "unregister hurt the actor");
    env_free(e);
}

Test(registry, whereis_and_unregister_of_unknown_names_are_enoent)
{
    reg_env_t *e = env_new();
    nsys_ref_t out = 99;
    cr_assert_eq(nsys_whereis(e->rt, "nobody", &out), NSYS_ENOENT);
    cr_assert_eq(nsys_unregister(e->rt, "nobody"), NSYS_ENOENT);
    env_free(e);
}

Test(registry, a_name_in_use_is_refused_with_enametaken)
{
    reg_env_t *e = env_new();
    cr_assert_eq(nsys_register(e->rt, "svc", e->r[0]), 0);
    cr_assert_eq(nsys_register(e->rt, "svc", e->r[1]), NSYS_ENAMETAKEN);
    cr_assert_eq(nsys_register(e->rt, "svc", e->r[0]), NSYS_ENAMETAKEN);
    nsys_ref_t out;
    cr_assert_eq(nsys_whereis(e->rt, "svc", &out), 0);
    cr_assert_eq(out, e->r[0], "a refused register moved the name");
    env_free(e);
}

Test(registry, an_actor_with_a_name_cannot_take_a_second_one)
{
    reg_env_t *e = env_new();
    cr_assert_eq(nsys_register(e->rt, "first", e->r[0]), 0);
    cr_assert_eq(nsys_register(e->rt, "second", e->r[0]), NSYS_EHASNAME);
    nsys_ref_t out;
    cr_assert_eq(nsys_whereis(e->rt, "second", &out), NSYS_ENOENT);
    /* after unregistering it may take another */
    cr_assert_eq(nsys_unregister(e->rt, "first"), 0);
    cr_assert_eq(nsys_register(e->rt, "second", e->r[0]), 0);
    cr_assert_eq(nsys_whereis(e->rt, "second", &out), 0);
    cr_assert_eq(out, e->r[0]);
    /* and the old name is free for others */
    cr_assert_eq(nsys_register(e->rt, "first", e->r[1]), 0);
    env_free(e);
}

Test(registry, a_dead_actor_cannot_be_registered)
{
    reg_env_t *e = env_new();
    cr_assert_eq(t_monitor(e->rt, &e->p[0], e->r[1], NULL), 0);
    cr_assert_eq(t_send_int(e->rt, e->r[1], T_MSG_EXITME, 0), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&e->p[0], 0, &d, T_WAIT_MS));
    cr_assert_eq(nsys_register(e->rt, "late", e->r[1]), NSYS_ENOACTOR);
    nsys_ref_t out;
    cr_assert_eq(nsys_whereis(e->rt, "late", &out), NSYS_ENOENT);
    env_free(e);
}

static void name_released_case(bool killed)
{
    reg_env_t *e = env_new();
    cr_assert_eq(nsys_register(e->rt, "worker", e->r[1]), 0);
    cr_assert_eq(t_monitor(e->rt, &e->p[0], e->r[1], NULL), 0);
    if (killed)
        cr_assert_eq(nsys_kill(e->rt, e->r[1]), 0);
    else
        cr_assert_eq(t_send_int(e->rt, e->r[1], T_MSG_EXITME, NSYS_EFAILED), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&e->p[0], 0, &d, T_WAIT_MS));
    nsys_ref_t out = 0;
    cr_assert_eq(nsys_whereis(e->rt, "worker", &out), NSYS_ENOENT, "the name outlived its actor (-> %llx)",
                 (unsigned long long)out);
    cr_assert_eq(nsys_unregister(e->rt, "worker"), NSYS_ENOENT);
    cr_assert_eq(nsys_register(e->rt, "worker", e->r[2]), 0, "the released name cannot be reused");
    cr_assert_eq(nsys_whereis(e->rt, "worker", &out), 0);
    cr_assert_eq(out, e->r[2]);
    env_free(e);
}

Test(registry, the_name_is_released_when_the_actor_exits)
{
    name_released_case(false);
}

Test(registry, the_name_is_released_when_the_actor_is_killed)
{
    name_released_case(true);
}

Test(registry, invalid_names_are_refused_with_einval)
{
    reg_env_t *e = env_new();
    char long_name[300];
    memset(long_name, 'n', sizeof(long_name));
    long_name[256] = '\0'; /* 256 bytes: one too many */
    nsys_ref_t out;
    cr_assert_eq(nsys_register(e->rt, NULL, e->r[0]), NSYS_EINVAL);
    cr_assert_eq(nsys_register(e->rt, "", e->r[0]), NSYS_EINVAL);
    cr_assert_eq(nsys_register(e->rt, long_name, e->r[0]), NSYS_EINVAL);
    cr_assert_eq(nsys_whereis(e->rt, NULL, &out), NSYS_EINVAL);
    cr_assert_eq(nsys_whereis(e->rt, "x", NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_unregister(e->rt, NULL), NSYS_EINVAL);
    long_name[255] = '\0'; /* 255 bytes: the longest allowed */
    cr_assert_eq(nsys_register(e->rt, long_name, e->r[0]), 0);
    cr_assert_eq(nsys_whereis(e->rt, long_name, &out), 0);
    cr_assert_eq(out, e->r[0]);
    env_free(e);
}

Test(registry, never_valid_refs_cannot_be_registered)
{
    reg_env_t *e = env_new();
    int rc = nsys_register(e->rt, "none", NSYS_REF_NONE);
    cr_assert(rc == NSYS_ENOACTOR || rc == NSYS_EINVAL, "%s", nsys_errname(rc));
    rc = nsys_register(e->rt, "huge", ((nsys_ref_t)1 << 32) | 0xfffffff0u);
    cr_assert(rc == NSYS_ENOACTOR || rc == NSYS_EINVAL, "%s", nsys_errname(rc));
    env_free(e);
}

Test(registry, names_are_copied_and_compared_by_content)
{
    reg_env_t *e = env_new();
    char buf[32];
    strcpy(buf, "copied");
    cr_assert_eq(nsys_register(e->rt, buf, e->r[3]), 0);
    strcpy(buf, "changed");
    nsys_ref_t out = 0;
    cr_assert_eq(nsys_whereis(e->rt, "copied", &out), 0);
    cr_assert_eq(out, e->r[3]);
    cr_assert_eq(nsys_whereis(e->rt, "changed", &out), NSYS_ENOENT);
    cr_assert_eq(nsys_whereis(e->rt, "copie", &out), NSYS_ENOENT);
    cr_assert_eq(nsys_whereis(e->rt, "copied!", &out), NSYS_ENOENT);
    cr_assert_eq(nsys_whereis(e->rt, "COPIED", &out), NSYS_ENOENT);
    env_free(e);
}

typedef struct reg_arg {
    nsys_runtime_t *rt;
    nsys_ref_t ref;
    int rc;
} reg_arg_t;

static int fn_register_self(nsys_ctx_t *ctx, void *arg)
{
    reg_arg_t *a = arg;
    a->rc = nsys_register(nsys_ctx_runtime(ctx), "me", nsys_self(ctx));
    return 0;
}

Test(registry, an_actor_can_register_itself_and_be_found_by_name)
{
    reg_env_t *e = env_new();
    reg_arg_t a = {e->rt, 0, -1};
    cr_assert_eq(t_call(e->rt, e->r[2], fn_register_self, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    nsys_ref_t out;
    cr_assert_eq(nsys_whereis(e->rt, "me", &out), 0);
    cr_assert_eq(out, e->r[2]);
    cr_assert_eq(nsys_send(e->rt, out, T_MSG_A, "byname", 7), 0);
    cr_assert(t_recs_wait_type(&e->p[2].inbox, T_MSG_A, 1, T_WAIT_MS));
    env_free(e);
}

#define RACERS 4
#define ROUNDS 200

typedef struct racer {
    nsys_runtime_t *rt;
    nsys_ref_t ref;
    pthread_barrier_t *bar;
    int rc[ROUNDS];
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    char name[16];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(name, sizeof(name), "one-%d", i);
        pthread_barrier_wait(r->bar); /* start together */
        r->rc[i] = nsys_register(r->rt, name, r->ref);
        pthread_barrier_wait(r->bar); /* the test thread checks */
        pthread_barrier_wait(r->bar); /* ... and unregisters */
    }
    return NULL;
}

Test(registry, concurrent_registrations_of_one_name_have_exactly_one_winner, .timeout = 60)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p[RACERS];
    racer_t r[RACERS];
    pthread_t th[RACERS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, RACERS + 1);
    for (int i = 0; i < RACERS; i++) {
        t_probe_init(&p[i]);
        r[i].rt = rt;
        r[i].bar = &bar;
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, &r[i].ref), 0);
    }
    for (int i = 0; i < RACERS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    int bad_round = -1, winners = 0, losers = 0;
    nsys_ref_t owner = 0, winner = 0;
    for (int k = 0; k < ROUNDS; k++) {
        char name[16];
        snprintf(name, sizeof(name), "one-%d", k);
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        int w = 0, l = 0;
        for (int i = 0; i < RACERS; i++) {
            if (r[i].rc[k] == 0) {
                w++;
                winner = r[i].ref;
            } else if (r[i].rc[k] == NSYS_ENAMETAKEN) {
                l++;
            }
        }
        if ((w != 1 || l != RACERS - 1 || nsys_whereis(rt, name, &owner) != 0 || owner != winner) &&
            bad_round < 0)
            bad_round = k;
        winners += w;
        losers += l;
        nsys_unregister(rt, name);
        pthread_barrier_wait(&bar);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    cr_assert_eq(bad_round, -1, "round %d: not exactly one winner owning the name", bad_round);
    cr_assert_eq(winners, ROUNDS);
    cr_assert_eq(losers, ROUNDS * (RACERS - 1));
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < RACERS; i++)
        t_probe_destroy(&p[i]);
}

Test(registry, a_thousand_names_resolve_to_their_actors, .timeout = 60)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 1000 };
    t_probe_t *p = calloc(N, sizeof(*p));
    nsys_ref_t *refs = calloc(N, sizeof(*refs));
    char name[32];
    for (int i = 0; i < N; i++) {
        t_probe_init(&p[i]);
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, &refs[i]), 0);
        snprintf(name, sizeof(name), "actor/%d", i);
        cr_assert_eq(nsys_register(rt, name, refs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        nsys_ref_t out = 0;
        snprintf(name, sizeof(name), "actor/%d", i);
        cr_assert_eq(nsys_whereis(rt, name, &out), 0);
        cr_assert_eq(out, refs[i], "%s resolves to the wrong actor", name);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "actor/%d", i);
        cr_assert_eq(nsys_unregister(rt, name), 0);
    }
    for (int i = 0; i < N; i++) {
        nsys_ref_t out = 0;
        snprintf(name, sizeof(name), "actor/%d", i);
        cr_assert_eq(nsys_whereis(rt, name, &out), i % 2 ? 0 : NSYS_ENOENT, "%s", name);
    }
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < N; i++)
        t_probe_destroy(&p[i]);
    free(p);
    free(refs);
}

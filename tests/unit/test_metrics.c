/* tests/unit/test_metrics.c — nsys_metrics_get, nsys_sched_metrics_get and
 * nsys_metrics_json: counters move exactly as the actors and messages do. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

static nsys_metrics_t metrics(nsys_runtime_t *rt)
{
    nsys_metrics_t m;
    memset(&m, 0xff, sizeof(m));
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    return m;
}

static nsys_sched_metrics_t sched_metrics(nsys_runtime_t *rt, unsigned i)
{
    nsys_sched_metrics_t m;
    memset(&m, 0xff, sizeof(m));
    cr_assert_eq(nsys_sched_metrics_get(rt, i, &m), 0);
    return m;
}

Test(metrics, a_fresh_runtime_reports_zeroes)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(3, &rt), 0);
    nsys_metrics_t m = metrics(rt);
    cr_assert_eq(m.messages_sent, 0);
    cr_assert_eq(m.messages_handled, 0);
    cr_assert_eq(m.dead_letters, 0);
    cr_assert_eq(m.actors_alive, 0);
    cr_assert_eq(m.actors_spawned, 0);
    cr_assert_eq(m.actors_exited, 0);
    cr_assert_eq(m.actors_failed, 0);
    cr_assert_eq(m.schedulers, 3);
    for (unsigned i = 0; i < 3; i++) {
        nsys_sched_metrics_t s = sched_metrics(rt, i);
        cr_assert_eq(s.messages_handled, 0);
        cr_assert_eq(s.actors, 0);
    }
    T_RUNTIME_FREE(rt);
}

Test(metrics, null_and_out_of_range_arguments_are_refused)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    cr_assert_eq(nsys_metrics_get(rt, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_sched_metrics_get(rt, 0, NULL), NSYS_EINVAL);
    nsys_sched_metrics_t s;
    cr_assert_lt(nsys_sched_metrics_get(rt, 2, &s), 0, "scheduler 2 of 2 exists?");
    cr_assert_lt(nsys_sched_metrics_get(rt, 1000000, &s), 0);
    cr_assert_eq(nsys_metrics_json(rt, NULL), NSYS_EINVAL);
    T_RUNTIME_FREE(rt);
}

Test(metrics, actor_counters_follow_spawns_and_exits)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    enum { N = 10 };
    t_probe_t p[N];
    nsys_ref_t r[N];
    for (int i = 0; i < N; i++) {
        t_probe_init(&p[i]);
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        T_ASSERT_EVENTUALLY(atomic_load(&p[i].inited) == 1);
    nsys_metrics_t m = metrics(rt);
    cr_assert_eq(m.actors_spawned, N);
    cr_assert_eq(m.actors_alive, N);
    cr_assert_eq(m.actors_exited, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(t_send_int(rt, r[i], T_MSG_EXITME, 0), 0);
    cr_assert_eq(t_send_int(rt, r[5], T_MSG_EXITME, NSYS_EBUSY), 0);
    cr_assert_eq(t_send_int(rt, r[6], T_MSG_RETURN, NSYS_ENOMEM), 0);
    cr_assert_eq(nsys_kill(rt, r[7]), 0);
    T_WAIT((m = metrics(rt)).actors_exited == 8, T_WAIT_MS);
    cr_assert_eq(m.actors_exited, 8);
    cr_assert_eq(m.actors_failed, 3, "failed=%llu: two errors and one kill", (unsigned long long)m.actors_failed);
    cr_assert_eq(m.actors_alive, 2);
    cr_assert_eq(m.actors_spawned, N);
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < N; i++)
        t_probe_destroy(&p[i]);
}

Test(metrics, sent_and_handled_count_each_user_message_once)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t r;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &r), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&p.inited) == 1);
    nsys_metrics_t m0 = metrics(rt);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(t_send_int(rt, r, T_MSG_A, i), 0);
    nsys_metrics_t m1 = metrics(rt);
    cr_assert_eq(m1.messages_sent - m0.messages_sent, 100);
    cr_assert(t_recs_wait_count(&p.inbox, 100, T_WAIT_MS));
    nsys_metrics_t m2;
    T_WAIT((m2 = metrics(rt)).messages_handled - m0.messages_handled >= 100, T_WAIT_MS);
    cr_assert_eq(m2.messages_handled - m0.messages_handled, 100);
    cr_assert_eq(m2.messages_sent - m0.messages_sent, 100);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(metrics, dead_letters_count_failed_sends)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    nsys_ref_t stale = ((nsys_ref_t)3 << 32) | 2u;
    for (int i = 0; i < 25; i++)
        cr_assert_eq(nsys_send(rt, stale, T_MSG_A, NULL, 0), NSYS_ENOACTOR);
    nsys_metrics_t m = metrics(rt);
    cr_assert_eq(m.dead_letters, 25);
    cr_assert_eq(m.messages_sent, 0, "a dead letter counted as sent");
    T_RUNTIME_FREE(rt);
}

Test(metrics, scheduler_metrics_count_the_actors_pinned_to_each)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(3, &rt), 0);
    const unsigned where[4] = {1, 1, 1, 0};
    t_probe_t p[4];
    nsys_ref_t r[4];
    for (int i = 0; i < 4; i++) {
        t_probe_init(&p[i]);
        nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
        o.placement = NSYS_PLACE_INDEX;
        o.sched_index = where[i];
        cr_assert_eq(t_probe_spawn(rt, &p[i], &o, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        T_ASSERT_EVENTUALLY(atomic_load(&p[i].inited) == 1);
    cr_assert_eq(sched_metrics(rt, 0).actors, 1);
    cr_assert_eq(sched_metrics(rt, 1).actors, 3);
    cr_assert_eq(sched_metrics(rt, 2).actors, 0);
    cr_assert_eq(t_send_int(rt, r[0], T_MSG_EXITME, 0), 0);
    T_ASSERT_EVENTUALLY(sched_metrics(rt, 1).actors == 2, "scheduler 1 still counts %llu actors",
                        (unsigned long long)sched_metrics(rt, 1).actors);
    cr_assert_eq(sched_metrics(rt, 0).actors, 1);
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < 4; i++)
        t_probe_destroy(&p[i]);
}

Test(metrics, scheduler_handled_counts_add_up_to_the_total)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(3, &rt), 0);
    t_probe_t p[3];
    nsys_ref_t r[3];
    for (unsigned i = 0; i < 3; i++) {
        t_probe_init(&p[i]);
        nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
        o.placement = NSYS_PLACE_INDEX;
        o.sched_index = i;
        cr_assert_eq(t_probe_spawn(rt, &p[i], &o, &r[i]), 0);
    }
    const int per[3] = {10, 50, 200};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < per[i]; k++)
            cr_assert_eq(t_send_int(rt, r[i], T_MSG_A, k), 0);
    for (int i = 0; i < 3; i++)
        cr_assert(t_recs_wait_count(&p[i].inbox, (size_t)per[i], T_WAIT_MS));
    uint64_t sum = 0;
    nsys_metrics_t m;
    T_WAIT((m = metrics(rt)).messages_handled >= 260, T_WAIT_MS);
    for (unsigned i = 0; i < 3; i++) {
        nsys_sched_metrics_t s = sched_metrics(rt, i);
        cr_assert_geq(s.messages_handled, (uint64_t)per[i], "scheduler %u handled %llu", i,
                      (unsigned long long)s.messages_handled);
        sum += s.messages_handled;
    }
    m = metrics(rt);
    cr_assert_eq(sum, m.messages_handled);
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < 3; i++)
        t_probe_destroy(&p[i]);
}

Test(metrics, an_idle_scheduler_parks_and_cross_thread_sends_wake_it)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    o.spin_us = -1;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.placement = NSYS_PLACE_INDEX;
    so.sched_index = 1;
    nsys_ref_t r;
    cr_assert_eq(t_probe_spawn(rt, &p, &so, &r), 0);
    for (int i = 0; i < 20; i++) {
        uint64_t parks = sched_metrics(rt, 1).parks;
        T_WAIT(sched_metrics(rt, 1).parks > parks, 50);
        cr_assert_eq(t_send_int(rt, r, T_MSG_A, i), 0);
        cr_assert(t_recs_wait_count(&p.inbox, (size_t)i + 1, T_WAIT_MS));
    }
    nsys_sched_metrics_t s = sched_metrics(rt, 1);
    cr_assert_gt(s.parks, 0, "a never-spinning idle scheduler never parked");
    cr_assert_gt(s.wakeups, 0, "sends from the test thread never woke scheduler 1");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

static uint64_t json_u64(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    cr_assert(cJSON_IsNumber(v), "key \"%s\" missing or not a number", key);
    return (uint64_t)v->valuedouble;
}

Test(metrics, json_parses_and_matches_the_counters)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t r;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &r), 0);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(t_send_int(rt, r, T_MSG_A, i), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 30, T_WAIT_MS));
    nsys_ref_t stale = ((nsys_ref_t)5 << 32) | 77u;
    cr_assert_eq(nsys_send(rt, stale, T_MSG_A, NULL, 0), NSYS_ENOACTOR);
    nsys_metrics_t m;
    T_WAIT((m = metrics(rt)).messages_handled >= 30, T_WAIT_MS);

    char *json = NULL;
    cr_assert_eq(nsys_metrics_json(rt, &json), 0);
    cr_assert_not_null(json);
    cJSON *root = cJSON_Parse(json);
    cr_assert_not_null(root, "not JSON: %s", json);
    cr_assert(cJSON_IsObject(root));
    m = metrics(rt);
    cr_assert_eq(json_u64(root, "messages_sent"), m.messages_sent);
    cr_assert_eq(json_u64(root, "messages_handled"), m.messages_handled);
    cr_assert_eq(json_u64(root, "dead_letters"), m.dead_letters);
    cr_assert_eq(json_u64(root, "dead_letters"), 1);
    cr_assert_eq(json_u64(root, "actors_alive"), 1);
    cr_assert_eq(json_u64(root, "actors_spawned"), 1);
    cr_assert_eq(json_u64(root, "actors_exited"), 0);
    cr_assert_eq(json_u64(root, "actors_failed"), 0);
    const cJSON *scheds = cJSON_GetObjectItemCaseSensitive(root, "schedulers");
    cr_assert(cJSON_IsArray(scheds), "\"schedulers\" is not an array");
    cr_assert_eq(cJSON_GetArraySize(scheds), 2);
    uint64_t actors = 0;
    for (int i = 0; i < 2; i++) {
        const cJSON *s = cJSON_GetArrayItem(scheds, i);
        cr_assert(cJSON_IsObject(s));
        json_u64(s, "messages_handled");
        json_u64(s, "ready_depth");
        json_u64(s, "parks");
        json_u64(s, "wakeups");
        actors += json_u64(s, "actors");
    }
    cr_assert_eq(actors, 1);
    cJSON_Delete(root);
    nsys_free(json);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

typedef struct reader {
    nsys_runtime_t *rt;
    atomic_int *stop;
    int errors;
    int reads;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    while (!atomic_load(r->stop) || r->reads < 10) {
        nsys_metrics_t m;
        nsys_sched_metrics_t s;
        char *json = NULL;
        if (nsys_metrics_get(r->rt, &m) != 0 || nsys_sched_metrics_get(r->rt, 1, &s) != 0 ||
            nsys_metrics_json(r->rt, &json) != 0)
            r->errors++;
        else if (m.actors_alive > m.actors_spawned)
            r->errors++;
        nsys_free(json);
        r->reads++;
    }
    return NULL;
}

Test(metrics, can_be_read_from_other_threads_while_actors_run, .timeout = 120)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    atomic_int stop = 0;
    reader_t rd[2] = {{rt, &stop, 0, 0}, {rt, &stop, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    t_probe_t p[20];
    for (int i = 0; i < 20; i++) {
        t_probe_init(&p[i]);
        nsys_ref_t r;
        cr_assert_eq(t_probe_spawn(rt, &p[i], NULL, &r), 0);
        for (int k = 0; k < 100; k++)
            cr_assert_eq(t_send_int(rt, r, T_MSG_A, k), 0);
        if (i % 2)
            cr_assert_eq(t_send_int(rt, r, T_MSG_EXITME, 0), 0);
    }
    for (int i = 0; i < 20; i++)
        cr_assert(t_recs_wait_count(&p[i].inbox, 100, T_WAIT_MS));
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(rd[i].errors, 0);
    }
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < 20; i++)
        t_probe_destroy(&p[i]);
}

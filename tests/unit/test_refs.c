/* tests/unit/test_refs.c — refs stay safe forever: stale refs, reused slots
 * and refs that never named anything fail cleanly (NSYS_ENOACTOR), count as
 * dead letters, and never reach another actor. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

static uint64_t dead_letters(nsys_runtime_t *rt)
{
    nsys_metrics_t m;
    if (nsys_metrics_get(rt, &m) != 0)
        return UINT64_MAX;
    return m.dead_letters;
}

/* Spawns a probe, makes it exit normally and waits for its DOWN at `watcher`. */
static nsys_ref_t spawn_and_end(nsys_runtime_t *rt, t_probe_t *watcher, t_probe_t *victim, size_t down_index)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_assert_eq(t_probe_spawn(rt, victim, NULL, &ref), 0);
    cr_assert_eq(t_monitor(rt, watcher, ref, NULL), 0);
    cr_assert_eq(t_send_int(rt, ref, T_MSG_EXITME, 0), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(watcher, down_index, &d, T_WAIT_MS), "victim never went down");
    cr_assert_eq(d.ref, ref);
    T_WAIT(atomic_load(&victim->terminated) == 1, T_WAIT_MS);
    cr_assert_eq(atomic_load(&victim->terminated), 1, "terminate did not run");
    cr_assert_eq(atomic_load(&victim->term_reason), 0);
    return ref;
}

Test(refs, sending_to_an_exited_actor_fails_with_enoactor_and_counts_dead_letters)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t w, v;
    t_probe_init(&w);
    t_probe_init(&v);
    cr_assert_eq(t_probe_spawn(rt, &w, NULL, NULL), 0);
    nsys_ref_t gone = spawn_and_end(rt, &w, &v, 0);
    cr_assert_not(nsys_is_alive(rt, gone));
    uint64_t before = dead_letters(rt);
    cr_assert_eq(nsys_send(rt, gone, T_MSG_A, "x", 1), NSYS_ENOACTOR);
    cr_assert_eq(nsys_send(rt, gone, T_MSG_A, NULL, 0), NSYS_ENOACTOR);
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("y", 1, &b), 0);
    cr_assert_eq(nsys_send_buf(rt, gone, T_MSG_A, b), NSYS_ENOACTOR);
    cr_assert_eq(nsys_buf_refcount(b), 1);
    nsys_buf_unref(b);
    int x = 0;
    cr_assert_eq(nsys_send_ptr(rt, gone, T_MSG_A, &x, sizeof(x), NULL), NSYS_ENOACTOR);
    cr_assert_eq(dead_letters(rt), before + 4, "dead_letters %llu -> %llu after 4 stale sends",
                 (unsigned long long)before, (unsigned long long)dead_letters(rt));
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&w);
    t_probe_destroy(&v);
}

Test(refs, every_call_taking_a_stale_ref_fails_cleanly)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t w, v;
    t_probe_init(&w);
    t_probe_init(&v);
    nsys_ref_t wref;
    cr_assert_eq(t_probe_spawn(rt, &w, NULL, &wref), 0);
    nsys_ref_t gone = spawn_and_end(rt, &w, &v, 0);
    cr_assert_eq(nsys_exit_signal(rt, gone, NSYS_ESHUTDOWN), NSYS_ENOACTOR);
    cr_assert_eq(nsys_kill(rt, gone), NSYS_ENOACTOR);
    cr_assert_eq(nsys_register(rt, "ghost", gone), NSYS_ENOACTOR);
    nsys_ref_t out;
    cr_assert_eq(nsys_whereis(rt, "ghost", &out), NSYS_ENOENT);
    int fn_rc = 0;
    cr_assert_eq(t_call(rt, wref, t_fn_link, &gone, &fn_rc), 0);
    cr_assert_eq(fn_rc, NSYS_ENOACTOR, "link to a dead actor: %s", nsys_errname(fn_rc));
    /* monitoring a dead actor is allowed and answers at once */
    uint64_t id = 0;
    cr_assert_eq(t_monitor(rt, &w, gone, &id), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&w, 1, &d, T_WAIT_MS));
    cr_assert_eq(d.reason, NSYS_REASON_NOPROC);
    cr_assert_eq(d.ref, gone);
    cr_assert_eq(d.monitor, id);
    cr_assert(nsys_is_alive(rt, wref), "the watcher was hurt by a stale ref");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&w);
    t_probe_destroy(&v);
}

Test(refs, a_stale_ref_never_reaches_the_actor_that_reuses_its_slot)
{
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    o.max_actors = 16; /* a small table forces slot reuse */
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    t_probe_t w, v;
    t_probe_init(&w);
    t_probe_init(&v);
    cr_assert_eq(t_probe_spawn(rt, &w, NULL, NULL), 0);
    nsys_ref_t gone = spawn_and_end(rt, &w, &v, 0);

    /* Fill the table with live actors until one sits in the old slot. */
    enum { MAX = 16 };
    t_probe_t *live = calloc(MAX, sizeof(*live));
    nsys_ref_t reuse = NSYS_REF_NONE;
    int reuser = -1, n = 0;
    for (; n < MAX; n++) {
        t_probe_init(&live[n]);
        nsys_ref_t r = NSYS_REF_NONE;
        int rc = -1;
        T_WAIT((rc = t_probe_spawn(rt, &live[n], NULL, &r)) == 0, 2000);
        if (rc != 0)
            break;
        if (NSYS_REF_SLOT(r) == NSYS_REF_SLOT(gone)) {
            reuse = r;
            reuser = n;
            n++;
            break;
        }
    }
    cr_assert_geq(reuser, 0, "slot %u was never reused in a table of %d", NSYS_REF_SLOT(gone), MAX);
    cr_assert_neq(reuse, gone, "a reused slot must carry a new generation");
    cr_assert_neq(NSYS_REF_GEN(reuse), NSYS_REF_GEN(gone));
    cr_assert_not(nsys_is_alive(rt, gone));
    cr_assert(nsys_is_alive(rt, reuse));

    cr_assert_eq(nsys_send(rt, gone, T_MSG_A, "stale", 5), NSYS_ENOACTOR);
    cr_assert_eq(nsys_exit_signal(rt, gone, NSYS_ETIMEDOUT), NSYS_ENOACTOR);
    cr_assert_eq(nsys_kill(rt, gone), NSYS_ENOACTOR);
    cr_assert_eq(nsys_register(rt, "stale-name", gone), NSYS_ENOACTOR);
    cr_assert_eq(nsys_send(rt, reuse, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&live[reuser].inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count(&live[reuser].inbox), 1, "the new actor received a message for the old one");
    cr_assert(nsys_is_alive(rt, reuse), "the new actor was killed through the old ref");
    nsys_ref_t named;
    cr_assert_eq(nsys_whereis(rt, "stale-name", &named), NSYS_ENOENT);
    T_RUNTIME_FREE(rt);
    for (int i = 0; i < n; i++)
        t_probe_destroy(&live[i]);
    free(live);
    t_probe_destroy(&w);
    t_probe_destroy(&v);
}

static bool is_refusal(int rc)
{
    return rc == NSYS_ENOACTOR || rc == NSYS_EINVAL;
}

Test(refs, refs_that_never_named_an_actor_are_refused)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t live;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &live), 0);
    nsys_ref_t bad[64];
    size_t n = 0;
    bad[n++] = NSYS_REF_NONE;
    bad[n++] = ~(nsys_ref_t)0;
    bad[n++] = (nsys_ref_t)0xffffffffu;                 /* huge slot, generation 0 */
    bad[n++] = ((nsys_ref_t)1 << 32) | 0xfffffffeu;     /* huge slot, generation 1 */
    bad[n++] = ((nsys_ref_t)1 << 32) | (1u << 24);      /* first slot past the default table */
    bad[n++] = live + ((nsys_ref_t)1 << 32);            /* live slot, future generation */
    bad[n++] = live - ((nsys_ref_t)1 << 32);            /* live slot, past generation */
    bad[n++] = (nsys_ref_t)NSYS_REF_SLOT(live);         /* live slot, generation 0 */
    srand(12345);
    while (n < 64) {
        nsys_ref_t r = ((nsys_ref_t)(unsigned)rand() << 33) ^ ((nsys_ref_t)(unsigned)rand() << 11) ^
                       (nsys_ref_t)(unsigned)rand();
        if (r != live)
            bad[n++] = r;
    }
    uint64_t before = dead_letters(rt);
    for (size_t i = 0; i < n; i++) {
        nsys_ref_t r = bad[i];
        int rc = nsys_send(rt, r, T_MSG_A, "x", 1);
        cr_assert(is_refusal(rc), "send to %016llx: %s", (unsigned long long)r, nsys_errname(rc));
        rc = nsys_send_ptr(rt, r, T_MSG_A, &n, sizeof(n), NULL);
        cr_assert(is_refusal(rc), "send_ptr to %016llx: %s", (unsigned long long)r, nsys_errname(rc));
        rc = nsys_exit_signal(rt, r, NSYS_ETIMEDOUT);
        cr_assert(is_refusal(rc), "exit_signal to %016llx: %s", (unsigned long long)r, nsys_errname(rc));
        rc = nsys_kill(rt, r);
        cr_assert(is_refusal(rc), "kill %016llx: %s", (unsigned long long)r, nsys_errname(rc));
        rc = nsys_register(rt, "never", r);
        cr_assert(is_refusal(rc), "register %016llx: %s", (unsigned long long)r, nsys_errname(rc));
        cr_assert_not(nsys_is_alive(rt, r), "%016llx is alive", (unsigned long long)r);
    }
    cr_assert_geq(dead_letters(rt), before, "dead_letters went backwards");
    cr_assert_eq(t_send_int(rt, live, T_MSG_SENTINEL, 1), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count(&p.inbox), 1, "a bogus ref delivered to a live actor");
    cr_assert(nsys_is_alive(rt, live));
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(refs, refs_of_killed_actors_go_stale_too)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t w, v;
    t_probe_init(&w);
    t_probe_init(&v);
    nsys_ref_t vref;
    cr_assert_eq(t_probe_spawn(rt, &w, NULL, NULL), 0);
    cr_assert_eq(t_probe_spawn(rt, &v, NULL, &vref), 0);
    cr_assert_eq(t_monitor(rt, &w, vref, NULL), 0);
    cr_assert_eq(nsys_kill(rt, vref), 0);
    nsys_down_t d;
    cr_assert(t_probe_wait_down(&w, 0, &d, T_WAIT_MS));
    cr_assert_eq(d.reason, NSYS_REASON_KILLED);
    cr_assert_eq(nsys_send(rt, vref, T_MSG_A, NULL, 0), NSYS_ENOACTOR);
    cr_assert_eq(nsys_kill(rt, vref), NSYS_ENOACTOR);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&w);
    t_probe_destroy(&v);
}

Test(refs, stale_refs_stay_stale_across_many_slot_reuses, .timeout = 120)
{
    /* Slots are freed and reused again and again: every old ref must stay
     * stale and nothing may be delivered to the wrong actor. */
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    o.max_actors = 64;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    enum { ROUNDS = 300 };
    nsys_ref_t *old = calloc(ROUNDS, sizeof(*old));
    t_probe_t w;
    t_probe_init(&w);
    cr_assert_eq(t_probe_spawn(rt, &w, NULL, NULL), 0);
    for (int i = 0; i < ROUNDS; i++) {
        t_probe_t v;
        t_probe_init(&v);
        old[i] = spawn_and_end(rt, &w, &v, (size_t)i);
        for (int j = 0; j <= i; j++)
            cr_assert_eq(nsys_send(rt, old[j], T_MSG_A, NULL, 0), NSYS_ENOACTOR, "round %d ref %d", i, j);
        t_probe_destroy(&v);
    }
    cr_assert_eq(t_recs_count_type(&w.inbox, T_MSG_A), 0);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&w);
    free(old);
}

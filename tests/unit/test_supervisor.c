/* tests/unit/test_supervisor.c — supervisors as netsys/supervisor.h states
 * them: the four strategies under scripted failures, the three restart types
 * under every strategy, start order and reverse stop order, a failed start,
 * restart intensity escalating through two levels, backoff between restarts,
 * shutdown timeouts and brutal kills, dynamic children, introspection,
 * observer events, argument errors, and trees that are deep or wide.
 *
 * Children are the scripted worker of common/sup_worker.h; everything they
 * do lands in one log the test waits on with a bound. Absence ("not
 * restarted", "untouched") is checked after a point the supervisor must have
 * passed: its EXITED event for the child, then a which_children reply. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/sup_worker.h"
#include "common/wait.h"

/* ---- the world every test runs in ------------------------------------------------ */

static nsys_runtime_t *rt;
static t_probe_t obs; /* observer of supervisor events, and monitor of supervisors */
static nsys_ref_t obs_ref;

static void setup(void)
{
    nsys_log_set_level(NSYS_LOG_WARN); /* supervisors log every start and exit at info */
    sw_log_begin();
    t_probe_init(&obs);
    obs.hook = sw_observer_hook;
    obs_ref = NSYS_REF_NONE;
    cr_assert_eq(t_runtime(2, &rt), 0);
}

static void teardown(void)
{
    nsys_runtime_free(rt);
    rt = NULL;
    t_probe_destroy(&obs);
    sw_log_end();
}

TestSuite(supervisor, .init = setup, .fini = teardown, .timeout = 300);

/* The end of every test: frees the runtime and fails the test if that
 * leaked anything (LeakSanitizer at exit would not fail it). */
static void finish(void)
{
    T_RUNTIME_FREE(rt);
    rt = NULL;
}

static void start_observer(void)
{
    cr_assert_eq(t_probe_spawn(rt, &obs, NULL, &obs_ref), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&obs.inited) == 1, "the observer never started");
}

/* ---- specs ------------------------------------------------------------------------- */

/* A worker child: args are {"id": id, <extra>}; the document lives until
 * the test ends. `id` must outlive the spec (string literals do). */
static nsys_child_spec_t worker(const char *id, nsys_restart_t restart, const char *extra)
{
    char text[512];
    snprintf(text, sizeof(text), "{\"id\":\"%s\"%s%s}", id, extra != NULL ? "," : "",
             extra != NULL ? extra : "");
    const cJSON *args = sw_json(text);
    cr_assert_not_null(args, "the test's JSON does not parse: %s", text);
    nsys_child_spec_t c;
    memset(&c, 0, sizeof(c));
    c.id = id;
    c.type = NSYS_WORKER;
    c.behaviour = sw_behaviour();
    c.args = args;
    c.restart = restart;
    return c;
}

static nsys_child_spec_t sup_child(const char *id, const nsys_sup_spec_t *spec)
{
    nsys_child_spec_t c;
    memset(&c, 0, sizeof(c));
    c.id = id;
    c.type = NSYS_SUPERVISOR_CHILD;
    c.supervisor = spec;
    c.restart = NSYS_PERMANENT;
    return c;
}

static nsys_sup_spec_t sup_spec(nsys_strategy_t strategy, const nsys_child_spec_t *kids, size_t n)
{
    nsys_sup_spec_t s;
    memset(&s, 0, sizeof(s));
    s.strategy = strategy;
    s.children = kids;
    s.nchildren = n;
    s.observer = obs_ref;
    return s;
}

static nsys_ref_t start_sup(const nsys_sup_spec_t *spec)
{
    char err[512];
    nsys_ref_t ref = NSYS_REF_NONE;
    int rc = nsys_supervisor_start(rt, spec, &ref, err, sizeof(err));
    cr_assert_eq(rc, 0, "nsys_supervisor_start: %s (%s)", nsys_strerror(rc), err);
    cr_assert_neq(ref, NSYS_REF_NONE, "no supervisor ref");
    return ref;
}

/* ---- waiting on the log -------------------------------------------------------------- */

/* Waits for the n-th start of `id`; returns the ref of its latest start. */
static nsys_ref_t await_init(const char *id, size_t n)
{
    cr_assert(sw_wait(SW_INIT, id, n, T_WAIT_MS), "child '%s' started %zu times, want %zu", id,
              sw_count(SW_INIT, id), n);
    return sw_ref(id);
}

/* Waits for the n-th (1-based) record matching m and returns it. */
static sw_rec_t await_rec(sw_match_t m, size_t n, const char *what)
{
    cr_assert(sw_wait_from(m, 0, n, T_WAIT_MS), "%s #%zu never happened (%zu seen)", what, n,
              sw_count_from(m, 0));
    sw_rec_t r;
    cr_assert(sw_nth(m, n - 1, &r));
    return r;
}

static sw_rec_t await_term(const char *id, size_t n)
{
    return await_rec((sw_match_t){SW_TERM, id, 0, NSYS_REF_NONE}, n, "terminate");
}

static sw_rec_t await_event(nsys_sup_event_kind_t kind, const char *id, size_t n)
{
    return await_rec((sw_match_t){SW_EVENT, id, kind, NSYS_REF_NONE}, n, "supervisor event");
}

/* Waits until the supervisor reported that the child `ref` exited: after
 * that, its restart decision has been made. */
static sw_rec_t await_exited(nsys_ref_t ref)
{
    return await_rec((sw_match_t){SW_EVENT, NULL, NSYS_SUP_CHILD_EXITED, ref}, 1, "EXITED event");
}

#define ASSERT_TRACE(from, want)                                                                   \
    do {                                                                                           \
        char tr_[2048];                                                                            \
        sw_trace((from), tr_, sizeof(tr_));                                                        \
        cr_assert_str_eq(tr_, (want), "starts (+) and stops (-): want \"%s\", got \"%s\"", (want), \
                         tr_);                                                                     \
    } while (0)

/* ---- introspection helpers --------------------------------------------------------------- */

typedef struct kids_view {
    nsys_child_info_t *v;
    size_t n;
} kids_view_t;

static kids_view_t which(nsys_ref_t sup)
{
    kids_view_t k = {NULL, 0};
    int rc = nsys_supervisor_which_children(rt, sup, &k.v, &k.n);
    cr_assert_eq(rc, 0, "which_children: %s", nsys_strerror(rc));
    return k;
}

static const nsys_child_info_t *kid(const kids_view_t *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->v[i].id, id) == 0)
            return &k->v[i];
    return NULL;
}

static const nsys_child_info_t *kid_by_ref(const kids_view_t *k, nsys_ref_t ref)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i].ref == ref)
            return &k->v[i];
    return NULL;
}

static nsys_child_counts_t counts(nsys_ref_t sup)
{
    nsys_child_counts_t c;
    memset(&c, 0, sizeof(c));
    int rc = nsys_supervisor_count_children(rt, sup, &c);
    cr_assert_eq(rc, 0, "count_children: %s", nsys_strerror(rc));
    return c;
}

static uint64_t alive_now(void)
{
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    return m.actors_alive;
}

/* Monitors `target` from the observer probe. */
static void watch(nsys_ref_t target)
{
    cr_assert_eq(t_monitor(rt, &obs, target, NULL), 0, "could not monitor the supervisor");
}

static nsys_down_t await_down(void)
{
    nsys_down_t d;
    memset(&d, 0, sizeof(d));
    cr_assert(t_probe_wait_down(&obs, 0, &d, T_WAIT_MS), "no DOWN for the supervisor");
    return d;
}

/* ======================================================================================== */
/* Strategies                                                                                */

Test(supervisor, one_for_one_restarts_only_the_crashed_child_with_a_new_ref)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL),
                                worker("c", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    nsys_ref_t sup = start_sup(&spec);
    nsys_ref_t ra = await_init("a", 1), rb = await_init("b", 1), rc = await_init("c", 1);
    ASSERT_TRACE(0, "+a +b +c");

    size_t mark = sw_mark();
    cr_assert_eq(sw_crash(rt, "b", -5), 0);
    nsys_ref_t rb2 = await_init("b", 2);
    await_event(NSYS_SUP_CHILD_STARTED, "b", 2);
    ASSERT_TRACE(mark, "-b +b");
    cr_assert_eq(await_term("b", 1).reason, -5, "b terminated with its crash reason");
    cr_assert_neq(rb2, rb, "a restarted child is a new actor with a new ref");
    cr_assert_not(nsys_is_alive(rt, rb), "the crashed incarnation is gone");
    cr_assert(nsys_is_alive(rt, ra) && nsys_is_alive(rt, rc), "siblings kept running");
    cr_assert_eq(sw_ref("a"), ra);
    cr_assert_eq(sw_ref("c"), rc);

    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 3);
    cr_assert_eq(kid(&k, "b")->ref, rb2, "which_children shows the new ref");
    cr_assert_eq(kid(&k, "b")->restarts, 1);
    cr_assert_eq(kid(&k, "a")->restarts, 0);
    cr_assert_eq(kid(&k, "c")->restarts, 0);
    nsys_free(k.v);
    finish();
}

Test(supervisor, one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL),
                                worker("c", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ALL, kids, 3);
    nsys_ref_t sup = start_sup(&spec);
    nsys_ref_t ra = await_init("a", 1), rc = await_init("c", 1);

    size_t mark = sw_mark();
    cr_assert_eq(sw_crash(rt, "b", -5), 0);
    await_init("c", 2);
    await_event(NSYS_SUP_CHILD_STARTED, "c", 2);
    ASSERT_TRACE(mark, "-b -c -a +a +b +c");
    cr_assert_eq(await_term("b", 1).reason, -5);
    cr_assert_eq(await_term("c", 1).reason, NSYS_REASON_SHUTDOWN,
                 "siblings are stopped with shutdown");
    cr_assert_eq(await_term("a", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_neq(sw_ref("a"), ra);
    cr_assert_neq(sw_ref("c"), rc);

    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 3);
    for (size_t i = 0; i < k.n; i++)
        cr_assert(k.v[i].running && k.v[i].ref == sw_ref(k.v[i].id),
                  "'%s' runs its new incarnation", k.v[i].id);
    nsys_free(k.v);
    finish();
}

Test(supervisor, rest_for_one_restarts_the_crashed_child_and_those_after_it)
{
    start_observer();
    nsys_child_spec_t kids[] = {
        worker("a", NSYS_PERMANENT, NULL), worker("b", NSYS_PERMANENT, NULL),
        worker("c", NSYS_PERMANENT, NULL), worker("d", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_REST_FOR_ONE, kids, 4);
    nsys_ref_t sup = start_sup(&spec);
    nsys_ref_t ra = await_init("a", 1);
    await_init("d", 1);

    size_t mark = sw_mark();
    cr_assert_eq(sw_crash(rt, "b", -5), 0);
    await_init("d", 2);
    await_event(NSYS_SUP_CHILD_STARTED, "d", 2);
    ASSERT_TRACE(mark, "-b -d -c +b +c +d");
    cr_assert_eq(await_term("d", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_eq(await_term("c", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_eq(sw_ref("a"), ra, "the child before the crashed one is untouched");
    cr_assert(nsys_is_alive(rt, ra));
    cr_assert_eq(sw_count(SW_TERM, "a"), 0);

    kids_view_t k = which(sup);
    cr_assert_eq(kid(&k, "a")->ref, ra);
    cr_assert_eq(kid(&k, "b")->restarts, 1);
    nsys_free(k.v);
    finish();
}

/* A simple_one_for_one supervisor whose template is the worker "tmpl". */
static nsys_ref_t start_simple(nsys_restart_t restart)
{
    static nsys_child_spec_t tmpl;
    tmpl = worker("tmpl", restart, NULL);
    nsys_sup_spec_t spec = sup_spec(NSYS_SIMPLE_ONE_FOR_ONE, NULL, 0);
    spec.child_template = &tmpl;
    return start_sup(&spec);
}

/* Starts a dynamic child whose worker records itself as `id`. */
static nsys_ref_t start_dynamic(nsys_ref_t sup, const char *id, const char *extra)
{
    char text[256];
    snprintf(text, sizeof(text), "{\"id\":\"%s\"%s%s}", id, extra != NULL ? "," : "",
             extra != NULL ? extra : "");
    nsys_ref_t child = NSYS_REF_NONE;
    int rc = nsys_supervisor_start_child(rt, sup, sw_json(text), &child);
    cr_assert_eq(rc, 0, "start_child '%s': %s", id, nsys_strerror(rc));
    cr_assert_eq(sw_count(SW_INIT, id), 1, "start_child returns once the child's init ran");
    cr_assert_eq(child, sw_ref(id), "start_child returns the child's ref");
    return child;
}

Test(supervisor,
     simple_one_for_one_starts_dynamic_children_with_their_args_and_restarts_a_crashed_one)
{
    start_observer();
    nsys_ref_t sup = start_simple(NSYS_PERMANENT);
    cr_assert_eq(counts(sup).active, 0, "no children before start_child");
    nsys_ref_t d1 = start_dynamic(sup, "d1", NULL);
    nsys_ref_t d2 = start_dynamic(sup, "d2", NULL);
    cr_assert_neq(d1, d2);
    cr_assert_eq(sw_count(SW_INIT, "tmpl"), 0, "start_child's args replace the template's");
    nsys_ref_t d0 = NSYS_REF_NONE;
    cr_assert_eq(nsys_supervisor_start_child(rt, sup, NULL, &d0), 0);
    cr_assert_eq(sw_count(SW_INIT, "tmpl"), 1, "without args a child gets the template's");
    cr_assert_eq(d0, sw_ref("tmpl"));

    cr_assert_eq(sw_crash(rt, "d1", -5), 0);
    nsys_ref_t d1b = await_init("d1", 2);
    await_rec((sw_match_t){SW_EVENT, NULL, NSYS_SUP_CHILD_STARTED, d1b}, 1, "STARTED of d1");
    cr_assert_neq(d1b, d1);
    cr_assert_eq(sw_ref("d2"), d2, "the other dynamic child is untouched");
    cr_assert(nsys_is_alive(rt, d2));

    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 3);
    cr_assert_not_null(kid_by_ref(&k, d1b), "the restarted child is listed with its new ref");
    cr_assert_eq(kid_by_ref(&k, d1b)->restarts, 1);
    cr_assert_not_null(kid_by_ref(&k, d2));
    cr_assert_null(kid_by_ref(&k, d1));
    nsys_free(k.v);
    finish();
}

Test(supervisor, terminate_child_stops_a_dynamic_child_and_forgets_it)
{
    start_observer();
    nsys_ref_t sup = start_simple(NSYS_PERMANENT);
    nsys_ref_t d1 = start_dynamic(sup, "d1", NULL);
    nsys_ref_t d2 = start_dynamic(sup, "d2", NULL);

    cr_assert_eq(nsys_supervisor_terminate_child(rt, sup, d1), 0);
    cr_assert_eq(sw_count(SW_TERM, "d1"), 1, "terminate_child returns once the child stopped");
    cr_assert_eq(await_term("d1", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_not(nsys_is_alive(rt, d1));

    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 1, "the terminated dynamic child is removed");
    cr_assert_eq(k.v[0].ref, d2);
    nsys_free(k.v);
    nsys_child_counts_t c = counts(sup);
    cr_assert_eq(c.active, 1);
    cr_assert_eq(c.restarts, 0);
    cr_assert_eq(sw_count(SW_INIT, "d1"), 1, "and it is not restarted");
    cr_assert_neq(nsys_supervisor_terminate_child(rt, sup, d1), 0,
                  "terminating it again fails: it is no child any more");
    finish();
}

Test(supervisor, start_child_is_refused_by_a_supervisor_that_is_not_simple_one_for_one)
{
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    nsys_ref_t sup = start_sup(&spec);
    nsys_ref_t child = NSYS_REF_NONE;
    cr_assert_neq(nsys_supervisor_start_child(rt, sup, sw_json("{\"id\":\"x\"}"), &child), 0);
    cr_assert_eq(child, NSYS_REF_NONE);
    cr_assert_eq(sw_count(SW_INIT, "x"), 0);
    cr_assert_eq(counts(sup).specs, 1);
    finish();
}

Test(supervisor, a_dynamic_child_whose_init_fails_is_reported_to_the_caller_and_not_retried)
{
    start_observer();
    nsys_ref_t sup = start_simple(NSYS_PERMANENT);
    nsys_ref_t d1 = start_dynamic(sup, "d1", NULL);
    nsys_ref_t bad = NSYS_REF_NONE;
    int rc =
        nsys_supervisor_start_child(rt, sup, sw_json("{\"id\":\"bad\",\"fail_init\":-98}"), &bad);
    cr_assert_eq(rc, -98, "start_child returns the child's init error, got %d (%s)", rc,
                 nsys_strerror(rc));
    cr_assert_eq(bad, NSYS_REF_NONE);
    nsys_child_counts_t c = counts(sup);
    cr_assert_eq(c.specs, 1, "the child that never started is not kept (%u specs)", c.specs);
    cr_assert_eq(c.restarts, 0, "a failed start_child is not a crash to restart");
    cr_assert_eq(sw_count(SW_INIT_FAILED, "bad"), 1);
    cr_assert(nsys_is_alive(rt, sup) && nsys_is_alive(rt, d1));
    finish();
}

/* ======================================================================================== */
/* Restart types under every strategy                                                         */

/* Starts children `ids` (restart types `types`) under `strategy`. For
 * simple_one_for_one every child is a dynamic child of a template whose
 * restart type is types[0] (they all share it). */
static nsys_ref_t start_group(nsys_strategy_t strategy, const char *const *ids,
                              const nsys_restart_t *types, size_t n)
{
    nsys_ref_t sup;
    if (strategy == NSYS_SIMPLE_ONE_FOR_ONE) {
        sup = start_simple(types[0]);
        for (size_t i = 0; i < n; i++)
            start_dynamic(sup, ids[i], NULL);
    } else {
        static nsys_child_spec_t kids[8];
        cr_assert_leq(n, 8);
        for (size_t i = 0; i < n; i++)
            kids[i] = worker(ids[i], types[i], NULL);
        nsys_sup_spec_t spec = sup_spec(strategy, kids, n);
        sup = start_sup(&spec);
    }
    for (size_t i = 0; i < n; i++)
        await_init(ids[i], 1);
    return sup;
}

static void transient_is_restarted_after_a_crash(nsys_strategy_t strategy)
{
    start_observer();
    const char *ids[] = {"a", "t", "c"};
    nsys_restart_t types[] = {NSYS_TRANSIENT, NSYS_TRANSIENT, NSYS_TRANSIENT};
    if (strategy != NSYS_SIMPLE_ONE_FOR_ONE)
        types[0] = types[2] = NSYS_PERMANENT;
    nsys_ref_t sup = start_group(strategy, ids, types, 3);
    nsys_ref_t t1 = sw_ref("t");
    cr_assert_eq(sw_crash(rt, "t", -5), 0);
    nsys_ref_t t2 = await_init("t", 2);
    cr_assert_neq(t2, t1);
    cr_assert_eq(await_term("t", 1).reason, -5);
    await_rec((sw_match_t){SW_EVENT, NULL, NSYS_SUP_CHILD_STARTED, t2}, 1, "STARTED of t");
    cr_assert_eq(counts(sup).restarts, 1);
}

Test(supervisor, transient_child_is_restarted_after_a_crash_under_one_for_one)
{
    transient_is_restarted_after_a_crash(NSYS_ONE_FOR_ONE);
    finish();
}
Test(supervisor, transient_child_is_restarted_after_a_crash_under_one_for_all)
{
    transient_is_restarted_after_a_crash(NSYS_ONE_FOR_ALL);
    finish();
}
Test(supervisor, transient_child_is_restarted_after_a_crash_under_rest_for_one)
{
    transient_is_restarted_after_a_crash(NSYS_REST_FOR_ONE);
    finish();
}
Test(supervisor, transient_child_is_restarted_after_a_crash_under_simple_one_for_one)
{
    transient_is_restarted_after_a_crash(NSYS_SIMPLE_ONE_FOR_ONE);
    finish();
}

static void transient_is_not_restarted_after_a_clean_exit(nsys_strategy_t strategy)
{
    start_observer();
    const char *ids[] = {"a", "t1", "t2", "c"};
    nsys_restart_t types[] = {NSYS_TRANSIENT, NSYS_TRANSIENT, NSYS_TRANSIENT, NSYS_TRANSIENT};
    if (strategy != NSYS_SIMPLE_ONE_FOR_ONE)
        types[0] = types[3] = NSYS_PERMANENT;
    nsys_ref_t sup = start_group(strategy, ids, types, 4);
    nsys_ref_t ra = sw_ref("a"), rc = sw_ref("c"), t1 = sw_ref("t1"), t2 = sw_ref("t2");

    size_t mark = sw_mark();
    cr_assert_eq(sw_exit_with(rt, "t1", NSYS_REASON_NORMAL), 0);
    cr_assert_eq(await_exited(t1).reason, NSYS_REASON_NORMAL);
    cr_assert_eq(sw_exit_with(rt, "t2", NSYS_REASON_SHUTDOWN), 0);
    cr_assert_eq(await_exited(t2).reason, NSYS_REASON_SHUTDOWN);

    /* The decisions are made; which_children is answered after them. */
    kids_view_t k = which(sup);
    nsys_child_counts_t c = counts(sup);
    ASSERT_TRACE(mark, "-t1 -t2");
    cr_assert_eq(c.restarts, 0, "a normal or shutdown exit of a transient child is no crash");
    cr_assert_eq(c.active, 2);
    cr_assert_eq(sw_count(SW_INIT, "t1"), 1);
    cr_assert_eq(sw_count(SW_INIT, "t2"), 1);
    cr_assert(nsys_is_alive(rt, ra) && nsys_is_alive(rt, rc), "siblings are not disturbed");
    cr_assert_eq(sw_ref("a"), ra);
    cr_assert_eq(sw_ref("c"), rc);
    for (size_t i = 0; i < k.n; i++)
        cr_assert_eq(k.v[i].restarts, 0, "child '%s' restarted", k.v[i].id);
    cr_assert_null(kid_by_ref(&k, t1));
    cr_assert_null(kid_by_ref(&k, t2));
    if (strategy != NSYS_SIMPLE_ONE_FOR_ONE) {
        cr_assert_eq(k.n, 4, "a static transient child keeps its spec");
        cr_assert_not(kid(&k, "t1")->running);
        cr_assert_not(kid(&k, "t2")->running);
    }
    nsys_free(k.v);
}

Test(supervisor, transient_child_is_not_restarted_after_a_normal_or_shutdown_exit_under_one_for_one)
{
    transient_is_not_restarted_after_a_clean_exit(NSYS_ONE_FOR_ONE);
    finish();
}
Test(supervisor, transient_child_is_not_restarted_after_a_normal_or_shutdown_exit_under_one_for_all)
{
    transient_is_not_restarted_after_a_clean_exit(NSYS_ONE_FOR_ALL);
    finish();
}
Test(supervisor,
     transient_child_is_not_restarted_after_a_normal_or_shutdown_exit_under_rest_for_one)
{
    transient_is_not_restarted_after_a_clean_exit(NSYS_REST_FOR_ONE);
    finish();
}
Test(supervisor,
     transient_child_is_not_restarted_after_a_normal_or_shutdown_exit_under_simple_one_for_one)
{
    transient_is_not_restarted_after_a_clean_exit(NSYS_SIMPLE_ONE_FOR_ONE);
    finish();
}

static void temporary_is_not_restarted_after_a_crash(nsys_strategy_t strategy)
{
    start_observer();
    const char *ids[] = {"a", "x", "c"};
    nsys_restart_t types[] = {NSYS_TEMPORARY, NSYS_TEMPORARY, NSYS_TEMPORARY};
    if (strategy != NSYS_SIMPLE_ONE_FOR_ONE)
        types[0] = types[2] = NSYS_PERMANENT;
    nsys_ref_t sup = start_group(strategy, ids, types, 3);
    nsys_ref_t ra = sw_ref("a"), rc = sw_ref("c"), rx = sw_ref("x");

    size_t mark = sw_mark();
    cr_assert_eq(sw_crash(rt, "x", -5), 0);
    cr_assert_eq(await_exited(rx).reason, -5);
    kids_view_t k = which(sup);
    nsys_child_counts_t c = counts(sup);
    ASSERT_TRACE(mark, "-x");
    cr_assert_eq(c.restarts, 0, "a temporary child is never restarted");
    cr_assert_eq(k.n, 2, "the exited temporary child is gone from which_children");
    cr_assert_null(kid_by_ref(&k, rx));
    if (strategy != NSYS_SIMPLE_ONE_FOR_ONE)
        cr_assert_null(kid(&k, "x"));
    cr_assert_eq(sw_count(SW_INIT, "x"), 1);
    cr_assert(nsys_is_alive(rt, ra) && nsys_is_alive(rt, rc), "siblings are not disturbed");
    nsys_free(k.v);
}

Test(supervisor, temporary_child_is_not_restarted_after_a_crash_under_one_for_one)
{
    temporary_is_not_restarted_after_a_crash(NSYS_ONE_FOR_ONE);
    finish();
}
Test(supervisor, temporary_child_is_not_restarted_after_a_crash_under_one_for_all)
{
    temporary_is_not_restarted_after_a_crash(NSYS_ONE_FOR_ALL);
    finish();
}
Test(supervisor, temporary_child_is_not_restarted_after_a_crash_under_rest_for_one)
{
    temporary_is_not_restarted_after_a_crash(NSYS_REST_FOR_ONE);
    finish();
}
Test(supervisor, temporary_child_is_not_restarted_after_a_crash_under_simple_one_for_one)
{
    temporary_is_not_restarted_after_a_crash(NSYS_SIMPLE_ONE_FOR_ONE);
    finish();
}

/* Children y (temporary), b, x (temporary), c; b crashes. */
static nsys_ref_t crash_b_among_temporaries(nsys_strategy_t strategy, const char *want_trace,
                                            const char *last_restarted)
{
    start_observer();
    const char *ids[] = {"y", "b", "x", "c"};
    nsys_restart_t types[] = {NSYS_TEMPORARY, NSYS_PERMANENT, NSYS_TEMPORARY, NSYS_PERMANENT};
    nsys_ref_t sup = start_group(strategy, ids, types, 4);
    size_t mark = sw_mark();
    cr_assert_eq(sw_crash(rt, "b", -5), 0);
    nsys_ref_t last = await_init(last_restarted, 2);
    await_rec((sw_match_t){SW_EVENT, NULL, NSYS_SUP_CHILD_STARTED, last}, 1, "the last restart");
    ASSERT_TRACE(mark, want_trace);
    return sup;
}

Test(supervisor, temporary_sibling_is_left_alone_when_another_child_fails_under_one_for_one)
{
    nsys_ref_t sup = crash_b_among_temporaries(NSYS_ONE_FOR_ONE, "-b +b", "b");
    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 4);
    cr_assert(kid(&k, "x")->running && kid(&k, "y")->running);
    nsys_free(k.v);
    finish();
}

Test(supervisor,
     temporary_child_is_stopped_and_not_restarted_when_a_sibling_fails_under_one_for_all)
{
    nsys_ref_t sup = crash_b_among_temporaries(NSYS_ONE_FOR_ALL, "-b -c -x -y +b +c", "c");
    cr_assert_eq(await_term("x", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_eq(await_term("y", 1).reason, NSYS_REASON_SHUTDOWN);
    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 2, "only b and c are left");
    cr_assert_null(kid(&k, "x"), "the temporary child is gone from which_children");
    cr_assert_null(kid(&k, "y"));
    cr_assert(kid(&k, "b")->running && kid(&k, "c")->running);
    cr_assert_eq(sw_count(SW_INIT, "x"), 1);
    cr_assert_eq(sw_count(SW_INIT, "y"), 1);
    nsys_free(k.v);
    finish();
}

Test(supervisor,
     temporary_child_is_stopped_and_not_restarted_when_a_sibling_fails_under_rest_for_one)
{
    nsys_ref_t y = NSYS_REF_NONE;
    nsys_ref_t sup = crash_b_among_temporaries(NSYS_REST_FOR_ONE, "-b -c -x +b +c", "c");
    y = sw_ref("y");
    cr_assert_eq(await_term("x", 1).reason, NSYS_REASON_SHUTDOWN);
    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 3, "y, b and c are left");
    cr_assert_null(kid(&k, "x"), "the temporary child after b is gone from which_children");
    cr_assert(kid(&k, "y")->running, "the temporary child before b is untouched");
    cr_assert_eq(kid(&k, "y")->ref, y);
    cr_assert_eq(sw_count(SW_INIT, "x"), 1);
    nsys_free(k.v);
    finish();
}

/* ======================================================================================== */
/* Order, shutdown                                                                            */

Test(supervisor, children_start_in_order_and_stop_in_reverse_when_the_runtime_stops)
{
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL),
                                worker("c", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    start_sup(&spec);
    ASSERT_TRACE(0, "+a +b +c");
    size_t mark = sw_mark();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    ASSERT_TRACE(mark, "-c -b -a");
    for (int i = 0; i < 3; i++) {
        const char *id = (const char *[]){"a", "b", "c"}[i];
        cr_assert_eq(await_term(id, 1).reason, NSYS_REASON_SHUTDOWN, "'%s'", id);
    }
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_alive, 0);
    cr_assert_eq(m.actors_failed, 0, "an orderly stop fails nobody");
    finish();
}

Test(supervisor, an_exit_signal_from_outside_shuts_the_supervisor_down_in_reverse_order)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL),
                                worker("c", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    nsys_ref_t sup = start_sup(&spec);
    watch(sup);
    size_t mark = sw_mark();
    cr_assert_eq(nsys_exit_signal(rt, sup, NSYS_REASON_SHUTDOWN), 0);
    nsys_down_t d = await_down();
    cr_assert_eq(d.ref, sup);
    cr_assert_eq(d.reason, NSYS_REASON_SHUTDOWN, "the supervisor exited with %d", d.reason);
    ASSERT_TRACE(mark, "-c -b -a");
    cr_assert_eq(sw_count_events(NSYS_SUP_CHILD_RESTARTING, NULL), 0, "nothing restarted");
    finish();
}

/* ======================================================================================== */
/* A failed start                                                                             */

Test(supervisor, start_fails_with_the_childs_error_and_names_it_when_its_init_fails)
{
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, "\"fail_init\":-98"),
                                worker("c", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    char err[512] = "untouched";
    nsys_ref_t sup = NSYS_REF_NONE;
    int rc = nsys_supervisor_start(rt, &spec, &sup, err, sizeof(err));
    cr_assert_eq(rc, -98, "start returns b's init error, got %d (%s)", rc, nsys_strerror(rc));
    cr_assert_not_null(strstr(err, "'b'"), "err names the child: \"%s\"", err);
    cr_assert_eq(sup, NSYS_REF_NONE, "no ref for a supervisor that failed");
    cr_assert_eq(sw_count(SW_INIT_FAILED, "b"), 1);
    cr_assert_eq(await_term("a", 1).reason, NSYS_REASON_SHUTDOWN,
                 "a, started before b, was stopped");
    cr_assert_eq(sw_count(SW_INIT, "c"), 0, "c, after b, was never started");
    T_ASSERT_EVENTUALLY(alive_now() == 0, "%llu actors still alive",
                        (unsigned long long)alive_now());
    finish();
}

Test(supervisor, start_returns_only_after_the_children_started_before_the_failure_have_stopped)
{
    /* a takes 150 ms to stop: the header promises nothing is left running
     * when nsys_supervisor_start returns an error. */
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, "\"trap\":true,\"stop_delay_ms\":150"),
                                worker("b", NSYS_PERMANENT, "\"fail_init\":-98")};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    char err[512];
    int rc = nsys_supervisor_start(rt, &spec, NULL, err, sizeof(err));
    size_t terms = sw_count(SW_TERM, "a");
    nsys_ref_t a = sw_ref("a");
    cr_assert_eq(rc, -98);
    cr_assert_eq(terms, 1, "a was still running when nsys_supervisor_start returned");
    cr_assert_not(nsys_is_alive(rt, a));
    finish();
}

Test(supervisor, a_failed_start_deep_in_the_tree_names_the_failing_child)
{
    nsys_child_spec_t inner[] = {worker("ok", NSYS_PERMANENT, NULL),
                                 worker("db", NSYS_PERMANENT, "\"fail_init\":-98")};
    nsys_sup_spec_t mid = sup_spec(NSYS_ONE_FOR_ONE, inner, 2);
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL), sup_child("mid", &mid),
                                worker("z", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    char err[512] = "";
    int rc = nsys_supervisor_start(rt, &spec, NULL, err, sizeof(err));
    cr_assert_eq(rc, -98, "got %d (%s)", rc, nsys_strerror(rc));
    cr_assert_not_null(strstr(err, "'db'"), "err names the failing child: \"%s\"", err);
    cr_assert_eq(await_term("ok", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_eq(await_term("a", 1).reason, NSYS_REASON_SHUTDOWN);
    cr_assert_eq(sw_count(SW_INIT, "z"), 0);
    T_ASSERT_EVENTUALLY(alive_now() == 0, "%llu actors still alive",
                        (unsigned long long)alive_now());
    finish();
}

/* ======================================================================================== */
/* Intensity, escalation, backoff                                                             */

/* Every RESTARTING event: its delay is within the default backoff's first
 * band (10 ms +-20 %), and the child's next start came no earlier. */
static void check_first_restart_delays(size_t expected)
{
    sw_match_t m = {SW_EVENT, NULL, NSYS_SUP_CHILD_RESTARTING, NSYS_REF_NONE};
    cr_assert_eq(sw_count_from(m, 0), expected);
    for (size_t i = 0; i < expected; i++) {
        sw_rec_t r;
        cr_assert(sw_nth(m, i, &r));
        cr_assert(r.ev.delay_ms >= 8 && r.ev.delay_ms <= 12,
                  "restart %zu of '%s': delay %llu ms outside 10 ms +-20 %%", i, r.id,
                  (unsigned long long)r.ev.delay_ms);
    }
}

Test(supervisor, exceeding_the_intensity_escalates_through_two_levels)
{
    start_observer();
    nsys_child_spec_t inner[] = {worker("w", NSYS_PERMANENT, "\"crash_after_ms\":40")};
    nsys_sup_spec_t mid = sup_spec(NSYS_ONE_FOR_ONE, inner, 1);
    mid.intensity = 1;
    mid.period_ms = 5000;
    mid.observer = NSYS_REF_NONE; /* inherited from the root */
    nsys_child_spec_t kids[] = {sup_child("mid", &mid)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    spec.intensity = 1;
    spec.period_ms = 5000;
    nsys_ref_t root = start_sup(&spec);
    watch(root);

    nsys_down_t d = await_down();
    cr_assert_eq(d.ref, root);
    cr_assert_eq(d.reason, NSYS_EGAVEUP, "the root exited with %d (%s)", d.reason,
                 nsys_strerror(d.reason));

    /* mid gave up twice (two incarnations), then the root gave up. */
    sw_match_t gave_up = {SW_EVENT, NULL, NSYS_SUP_GAVE_UP, NSYS_REF_NONE};
    cr_assert_eq(sw_count_from(gave_up, 0), 3);
    sw_rec_t g0, g1, g2;
    cr_assert(sw_nth(gave_up, 0, &g0) && sw_nth(gave_up, 1, &g1) && sw_nth(gave_up, 2, &g2));
    cr_assert_neq(g0.ev.supervisor, root);
    cr_assert_neq(g1.ev.supervisor, root);
    cr_assert_neq(g0.ev.supervisor, g1.ev.supervisor, "the root restarted mid as a new actor");
    cr_assert_eq(g2.ev.supervisor, root);
    cr_assert_eq(g2.ev.reason, NSYS_EGAVEUP);

    sw_rec_t mid_exit = await_event(NSYS_SUP_CHILD_EXITED, "mid", 1);
    cr_assert_eq(mid_exit.ev.reason, NSYS_EGAVEUP, "mid exited with %d", mid_exit.ev.reason);
    cr_assert_eq(mid_exit.ev.supervisor, root);
    cr_assert_eq(sw_count(SW_INIT, "w"), 4, "two starts of w under each incarnation of mid");
    cr_assert_eq(sw_count(SW_TERM, "w"), 4);

    /* Three restarts, in order: w (under mid #1), mid, w (under mid #2). */
    check_first_restart_delays(3);
    sw_rec_t r0 = await_event(NSYS_SUP_CHILD_RESTARTING, NULL, 1);
    sw_rec_t r1 = await_event(NSYS_SUP_CHILD_RESTARTING, NULL, 2);
    sw_rec_t r2 = await_event(NSYS_SUP_CHILD_RESTARTING, NULL, 3);
    cr_assert_str_eq(r0.id, "w");
    cr_assert_str_eq(r1.id, "mid");
    cr_assert_str_eq(r2.id, "w");
    cr_assert_eq(r1.ev.supervisor, root);

    /* Each restart of w waited out its delay after the crash. */
    for (size_t k = 0; k < 2; k++) {
        sw_rec_t crash = await_term("w", 2 * k + 1),
                 next = await_rec((sw_match_t){SW_INIT, "w", 0, NSYS_REF_NONE}, 2 * k + 2,
                                  "restart of w");
        sw_rec_t r = k == 0 ? r0 : r2;
        uint64_t gap_ms = (next.t_ns - crash.t_ns) / 1000000u;
        cr_assert_geq(gap_ms + 5, r.ev.delay_ms, "w restarted %llu ms after its crash, delay %llu",
                      (unsigned long long)gap_ms, (unsigned long long)r.ev.delay_ms);
    }
    T_ASSERT_EVENTUALLY(alive_now() == 1, "only the observer is left, %llu alive",
                        (unsigned long long)alive_now());
    finish();
}

Test(supervisor, a_supervisor_that_allows_no_restarts_gives_up_on_the_first_crash)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL),
                                worker("c", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    spec.intensity = NSYS_SUP_NO_RESTARTS;
    nsys_ref_t sup = start_sup(&spec);
    watch(sup);
    size_t mark = sw_mark();
    cr_assert_eq(sw_crash(rt, "b", -5), 0);
    nsys_down_t d = await_down();
    cr_assert_eq(d.reason, NSYS_EGAVEUP);
    ASSERT_TRACE(mark, "-b -c -a");
    sw_rec_t g = await_event(NSYS_SUP_GAVE_UP, NULL, 1);
    cr_assert_eq(g.ev.supervisor, sup);
    cr_assert_eq(g.ev.reason, NSYS_EGAVEUP);
    cr_assert_eq(sw_count_events(NSYS_SUP_CHILD_RESTARTING, NULL), 0);
    finish();
}

Test(supervisor, a_crash_loop_is_spaced_by_an_exponential_backoff)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("w", NSYS_PERMANENT, "\"crash_after_ms\":0")};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    spec.intensity = 50;
    spec.period_ms = 60000;
    spec.backoff.initial_ms = 20;
    spec.backoff.max_ms = 1000;
    spec.backoff.multiplier = 2.0;
    spec.backoff.jitter = NSYS_BACKOFF_NO_JITTER;
    spec.backoff.reset_after_ms = 10000;
    start_sup(&spec);

    const uint64_t want[] = {20, 40, 80, 160, 320};
    for (size_t i = 0; i < 5; i++) {
        sw_rec_t r = await_event(NSYS_SUP_CHILD_RESTARTING, "w", i + 1);
        cr_assert_eq(r.ev.delay_ms, want[i], "restart %zu: want a delay of %llu ms, got %llu",
                     i + 1, (unsigned long long)want[i], (unsigned long long)r.ev.delay_ms);
        cr_assert_eq(r.ev.restarts, i + 1);
        sw_rec_t crash = await_term("w", i + 1);
        sw_rec_t next = await_rec((sw_match_t){SW_INIT, "w", 0, NSYS_REF_NONE}, i + 2, "restart");
        uint64_t gap_ms = (next.t_ns - crash.t_ns) / 1000000u;
        cr_assert_geq(gap_ms + 5, r.ev.delay_ms, "restart %zu came %llu ms after the crash", i + 1,
                      (unsigned long long)gap_ms);
    }
    finish();
}

Test(supervisor, restarts_spread_wider_than_the_period_never_exceed_the_intensity)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("w", NSYS_PERMANENT, "\"crash_after_ms\":60")};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    spec.intensity = 1;
    spec.period_ms = 30; /* crashes come at least 60 ms apart */
    nsys_ref_t sup = start_sup(&spec);
    await_event(NSYS_SUP_CHILD_RESTARTING, "w", 4);
    cr_assert_eq(sw_count_events(NSYS_SUP_GAVE_UP, NULL), 0, "one restart per period is allowed");
    cr_assert(nsys_is_alive(rt, sup));
    finish();
}

Test(supervisor, stopping_while_a_child_waits_out_its_backoff_cancels_the_restart)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    spec.backoff.initial_ms = 30000;
    spec.backoff.max_ms = 30000;
    start_sup(&spec);
    cr_assert_eq(sw_crash(rt, "b", -5), 0);
    sw_rec_t r = await_event(NSYS_SUP_CHILD_RESTARTING, "b", 1);
    cr_assert_geq(r.ev.delay_ms, 24000);
    uint64_t t0 = t_now_ns();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    uint64_t took_ms = (t_now_ns() - t0) / 1000000u;
    ASSERT_TRACE(0, "+a +b -b -a");
    cr_assert_lt(took_ms, 4000, "the stop waited %llu ms for a pending restart",
                 (unsigned long long)took_ms);
    cr_assert_eq(await_term("a", 1).reason, NSYS_REASON_SHUTDOWN);
    finish();
}

/* ======================================================================================== */
/* Shutdown timeouts                                                                          */

Test(supervisor, a_child_that_ignores_stop_is_killed_after_its_shutdown_timeout)
{
    nsys_child_spec_t kids[] = {
        worker("a", NSYS_PERMANENT, NULL),
        worker("stubborn", NSYS_PERMANENT, "\"trap\":true,\"ignore_stop\":true")};
    kids[1].shutdown_ms = 200;
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    start_sup(&spec);
    await_init("stubborn", 1);
    uint64_t t0 = t_now_ns();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    sw_rec_t sig = await_rec((sw_match_t){SW_EXIT_SIGNAL, "stubborn", 0, NSYS_REF_NONE}, 1,
                             "the shutdown signal");
    sw_rec_t term = await_term("stubborn", 1);
    cr_assert_eq(sig.reason, NSYS_REASON_SHUTDOWN, "it was asked to shut down first");
    cr_assert_eq(term.reason, NSYS_REASON_KILLED, "then killed, got reason %d (%s)", term.reason,
                 nsys_strerror(term.reason));
    /* The timer starts after t0, on a loop that was idle until the stop. */
    uint64_t waited_ms = (term.t_ns - t0) / 1000000u;
    cr_assert_geq(waited_ms, 190, "killed %llu ms after the stop began, before its 200 ms timeout",
                  (unsigned long long)waited_ms);
    cr_assert_lt(waited_ms, 4000, "the supervisor, not the runtime's forced stop, killed it");
    cr_assert_lt(sig.t_ns, term.t_ns);
    cr_assert_eq(await_term("a", 1).reason, NSYS_REASON_SHUTDOWN, "then the others stop");
    ASSERT_TRACE(0, "+a +stubborn -stubborn -a");
    finish();
}

Test(supervisor, a_brutal_child_is_killed_at_once_without_an_exit_signal)
{
    nsys_child_spec_t kids[] = {
        worker("stubborn", NSYS_PERMANENT, "\"trap\":true,\"ignore_stop\":true")};
    kids[0].shutdown_ms = NSYS_SHUTDOWN_BRUTAL;
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    start_sup(&spec);
    await_init("stubborn", 1);
    uint64_t t0 = t_now_ns();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    uint64_t took_ms = (t_now_ns() - t0) / 1000000u;
    sw_rec_t term = await_term("stubborn", 1);
    cr_assert_eq(term.reason, NSYS_REASON_KILLED, "got reason %d (%s)", term.reason,
                 nsys_strerror(term.reason));
    cr_assert_eq(sw_count(SW_EXIT_SIGNAL, "stubborn"), 0, "a brutal kill sends no exit signal");
    cr_assert_lt(took_ms, 2000, "the stop took %llu ms: it waited for something",
                 (unsigned long long)took_ms);
    finish();
}

/* ======================================================================================== */
/* Introspection and events                                                                   */

Test(supervisor, which_children_and_count_children_describe_the_children)
{
    start_observer();
    nsys_child_spec_t inner[] = {worker("inner", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t sub = sup_spec(NSYS_ONE_FOR_ONE, inner, 1);
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL), sup_child("s", &sub),
                                worker("t", NSYS_TRANSIENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    spec.intensity = 10;
    nsys_ref_t sup = start_sup(&spec);
    await_init("t", 1);

    for (size_t i = 1; i <= 2; i++) {
        cr_assert_eq(sw_crash(rt, "a", -5), 0);
        nsys_ref_t r = await_init("a", i + 1);
        await_rec((sw_match_t){SW_EVENT, "a", NSYS_SUP_CHILD_STARTED, r}, 1, "STARTED of a");
    }

    kids_view_t k = which(sup);
    cr_assert_eq(k.n, 3);
    cr_assert_str_eq(k.v[0].id, "a", "children are listed in spec order");
    cr_assert_str_eq(k.v[1].id, "s");
    cr_assert_str_eq(k.v[2].id, "t");
    cr_assert_eq(k.v[0].type, NSYS_WORKER);
    cr_assert_eq(k.v[1].type, NSYS_SUPERVISOR_CHILD);
    cr_assert_eq(k.v[0].restart, NSYS_PERMANENT);
    cr_assert_eq(k.v[2].restart, NSYS_TRANSIENT);
    cr_assert_eq(k.v[0].restarts, 2);
    cr_assert_eq(k.v[1].restarts, 0);
    cr_assert_eq(k.v[2].restarts, 0);
    for (size_t i = 0; i < 3; i++)
        cr_assert(k.v[i].running, "'%s' is running", k.v[i].id);
    cr_assert_eq(k.v[0].ref, sw_ref("a"));
    cr_assert_eq(k.v[2].ref, sw_ref("t"));
    sw_rec_t inner_init;
    cr_assert(sw_latest((sw_match_t){SW_INIT, "inner", 0, NSYS_REF_NONE}, &inner_init));
    cr_assert_eq(k.v[1].ref, inner_init.parent, "the supervisor child's ref is inner's parent");

    nsys_child_counts_t c = counts(sup);
    cr_assert_eq(c.specs, 3);
    cr_assert_eq(c.active, 3);
    cr_assert_eq(c.workers, 2);
    cr_assert_eq(c.supervisors, 1);
    cr_assert_eq(c.restarts, 2);

    kids_view_t sk = which(k.v[1].ref);
    cr_assert_eq(sk.n, 1, "a nested supervisor answers too");
    cr_assert_str_eq(sk.v[0].id, "inner");
    nsys_free(sk.v);
    nsys_free(k.v);
    finish();
}

Test(supervisor, the_observer_gets_started_exited_and_restarting_events)
{
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    nsys_ref_t sup = start_sup(&spec);
    sw_rec_t sa = await_event(NSYS_SUP_CHILD_STARTED, NULL, 1);
    sw_rec_t sb = await_event(NSYS_SUP_CHILD_STARTED, NULL, 2);
    cr_assert_str_eq(sa.id, "a", "STARTED events come in start order");
    cr_assert_str_eq(sb.id, "b");
    cr_assert_eq(sa.ev.supervisor, sup);
    cr_assert_eq(sa.ev.child, sw_ref("a"));
    nsys_ref_t b1 = sw_ref("b");
    cr_assert_eq(sb.ev.child, b1);

    cr_assert_eq(sw_crash(rt, "b", -71), 0);
    sw_rec_t ex = await_event(NSYS_SUP_CHILD_EXITED, "b", 1);
    cr_assert_eq(ex.ev.reason, -71, "EXITED carries the exit reason");
    cr_assert_eq(ex.ev.child, b1);
    cr_assert_eq(ex.ev.supervisor, sup);
    sw_rec_t rs = await_event(NSYS_SUP_CHILD_RESTARTING, "b", 1);
    cr_assert(rs.ev.delay_ms >= 8 && rs.ev.delay_ms <= 12, "first restart delay %llu ms",
              (unsigned long long)rs.ev.delay_ms);
    cr_assert_eq(rs.ev.restarts, 1);
    sw_rec_t s2 = await_event(NSYS_SUP_CHILD_STARTED, "b", 2);
    cr_assert_eq(s2.ev.child, await_init("b", 2));
    cr_assert_eq(sw_count_events(NSYS_SUP_GAVE_UP, NULL), 0);
    finish();
}

/* ======================================================================================== */
/* Argument errors                                                                            */

static void expect_rejected(const nsys_sup_spec_t *spec, const char *needle)
{
    char err[512] = "";
    nsys_ref_t ref = NSYS_REF_NONE;
    int rc = nsys_supervisor_start(rt, spec, &ref, err, sizeof(err));
    cr_assert_eq(rc, NSYS_EINVAL, "want NSYS_EINVAL (about %s), got %d (%s)",
                 needle != NULL ? needle : "the spec", rc, nsys_strerror(rc));
    cr_assert_neq(err[0], '\0', "no err text");
    if (needle != NULL)
        cr_assert_not_null(strstr(err, needle), "err \"%s\" does not mention %s", err, needle);
    cr_assert_eq(ref, NSYS_REF_NONE);
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_spawned, 0, "nothing was spawned for a rejected spec");
}

Test(supervisor, start_rejects_a_null_spec_with_einval_and_a_message)
{
    expect_rejected(NULL, NULL);
    finish();
}

Test(supervisor, start_rejects_duplicate_child_ids_and_names_the_id)
{
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("dup", NSYS_PERMANENT, NULL),
                                worker("dup", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 3);
    expect_rejected(&spec, "'dup'");
    finish();
}

Test(supervisor, start_rejects_a_worker_without_a_behaviour_and_names_it)
{
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("lazy", NSYS_PERMANENT, NULL)};
    kids[1].behaviour = NULL;
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    expect_rejected(&spec, "'lazy'");
    finish();
}

Test(supervisor, start_rejects_simple_one_for_one_without_a_template)
{
    nsys_sup_spec_t spec = sup_spec(NSYS_SIMPLE_ONE_FOR_ONE, NULL, 0);
    expect_rejected(&spec, "template");
    finish();
}

Test(supervisor, start_rejects_invalid_backoff_options)
{
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    spec.backoff.multiplier = 0.5;
    expect_rejected(&spec, "backoff");
    finish();
}

Test(supervisor, start_rejects_an_invalid_spec_nested_in_a_supervisor_child)
{
    nsys_child_spec_t inner[] = {worker("x", NSYS_PERMANENT, NULL),
                                 worker("x", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t sub = sup_spec(NSYS_ONE_FOR_ONE, inner, 2);
    nsys_child_spec_t kids[] = {sup_child("sub", &sub)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    expect_rejected(&spec, "'x'");
    finish();
}

Test(supervisor, start_rejects_an_invalid_restart_type_or_shutdown_on_any_child)
{
    nsys_child_spec_t inner[] = {worker("i", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t sub = sup_spec(NSYS_ONE_FOR_ONE, inner, 1);
    nsys_child_spec_t kids[] = {worker("w", NSYS_PERMANENT, NULL), sup_child("sub", &sub)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    kids[0].restart = (nsys_restart_t)7;
    expect_rejected(&spec, "'w'");
    kids[0].restart = NSYS_PERMANENT;
    kids[1].restart = (nsys_restart_t)7;
    expect_rejected(&spec, "'sub'");
    kids[1].restart = NSYS_PERMANENT;
    kids[1].shutdown_ms = -5;
    expect_rejected(&spec, "'sub'");
    finish();
}

Test(supervisor, start_rejects_a_spec_that_contains_itself)
{
    /* Built in C, a tree can loop back on itself; that is bad input, not a
     * reason to recurse until the stack runs out. */
    static nsys_sup_spec_t loop;
    static nsys_child_spec_t kids[1];
    kids[0] = sup_child("again", &loop);
    loop = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    expect_rejected(&loop, NULL);
    finish();
}

/* ======================================================================================== */
/* nsys_supervisor_spawn, from inside an actor                                                */

typedef struct spawn_arg {
    const nsys_sup_spec_t *spec;
    nsys_ref_t out;
} spawn_arg_t;

/* So that the runtime's stop does not wait its grace period for the probe. */
static int fn_untrap(nsys_ctx_t *ctx, void *arg)
{
    (void)arg;
    nsys_trap_exit(ctx, false);
    return 0;
}

static int fn_spawn_sup(nsys_ctx_t *ctx, void *arg)
{
    spawn_arg_t *a = arg;
    return nsys_supervisor_spawn(ctx, a->spec, &a->out);
}

Test(supervisor, spawn_from_an_actor_reports_started_once_the_children_run)
{
    obs.trap = true;
    start_observer();
    nsys_child_spec_t kids[] = {worker("a", NSYS_PERMANENT, NULL),
                                worker("b", NSYS_PERMANENT, NULL)};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 2);
    spawn_arg_t a = {&spec, NSYS_REF_NONE};
    int fn_rc = -1;
    cr_assert_eq(t_call(rt, obs_ref, fn_spawn_sup, &a, &fn_rc), 0);
    cr_assert_eq(fn_rc, 0);
    cr_assert(t_recs_wait_type(&obs.inbox, NSYS_MSG_STARTED, 1, T_WAIT_MS), "no STARTED");
    cr_assert_eq(sw_count(SW_INIT, "b"), 1, "STARTED came after every child started");
    t_rec_t rec;
    cr_assert(
        t_recs_get(&obs.inbox, (size_t)t_recs_find_type(&obs.inbox, NSYS_MSG_STARTED, 0), &rec));
    nsys_started_t st;
    memcpy(&st, rec.bytes, sizeof(st));
    cr_assert_eq(st.ref, a.out);
    cr_assert_eq(t_call(rt, obs_ref, fn_untrap, NULL, NULL), 0);
    finish();
}

Test(supervisor, a_failed_spawn_from_an_actor_arrives_only_as_an_exit_signal)
{
    obs.trap = true;
    start_observer();
    nsys_child_spec_t kids[] = {worker("bad", NSYS_PERMANENT, "\"fail_init\":-98")};
    nsys_sup_spec_t spec = sup_spec(NSYS_ONE_FOR_ONE, kids, 1);
    spec.observer = NSYS_REF_NONE;
    spawn_arg_t a = {&spec, NSYS_REF_NONE};
    int fn_rc = -1;
    cr_assert_eq(t_call(rt, obs_ref, fn_spawn_sup, &a, &fn_rc), 0);
    cr_assert_eq(fn_rc, 0);
    nsys_exit_t ex;
    cr_assert(t_probe_wait_exit(&obs, 0, &ex, T_WAIT_MS), "no exit signal");
    cr_assert_eq(ex.from, a.out);
    cr_assert_eq(ex.reason, -98);
    size_t n = t_recs_count(&obs.inbox);
    for (size_t i = 0; i < n; i++) {
        t_rec_t rec;
        cr_assert(t_recs_get(&obs.inbox, i, &rec));
        cr_assert_eq(rec.type, NSYS_MSG_EXIT, "the parent got an undocumented message of type %u",
                     rec.type);
    }
    cr_assert_eq(t_call(rt, obs_ref, fn_untrap, NULL, NULL), 0);
    finish();
}

/* ======================================================================================== */
/* Scale                                                                                      */

Test(supervisor, a_tree_ten_levels_deep_starts_and_stops_cleanly)
{
    enum { DEPTH = 10 };
    static char wid[DEPTH][8], sid[DEPTH][8];
    static nsys_sup_spec_t level[DEPTH];
    static nsys_child_spec_t kids[DEPTH][2];
    for (int i = DEPTH - 1; i >= 0; i--) {
        snprintf(wid[i], sizeof(wid[i]), "w%d", i);
        snprintf(sid[i], sizeof(sid[i]), "s%d", i);
        kids[i][0] = worker(wid[i], NSYS_PERMANENT, NULL);
        if (i < DEPTH - 1)
            kids[i][1] = sup_child(sid[i + 1], &level[i + 1]);
        level[i] = sup_spec(NSYS_ONE_FOR_ONE, kids[i], i < DEPTH - 1 ? 2 : 1);
    }
    nsys_ref_t root = start_sup(&level[0]);
    ASSERT_TRACE(0, "+w0 +w1 +w2 +w3 +w4 +w5 +w6 +w7 +w8 +w9");
    nsys_child_counts_t c = counts(root);
    cr_assert_eq(c.specs, 2);
    cr_assert_eq(c.active, 2);
    cr_assert_eq(c.workers, 1);
    cr_assert_eq(c.supervisors, 1);
    T_ASSERT_EVENTUALLY(alive_now() == 2 * DEPTH, "ten supervisors and ten workers, not %llu",
                        (unsigned long long)alive_now());

    size_t mark = sw_mark();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    ASSERT_TRACE(mark, "-w9 -w8 -w7 -w6 -w5 -w4 -w3 -w2 -w1 -w0");
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_alive, 0);
    cr_assert_eq(m.actors_failed, 0);
    finish();
}

/* Terminates recorded with a reason other than shutdown. */
static size_t terms_not_shutdown(void)
{
    size_t bad = 0;
    pthread_mutex_lock(&sw_log_g.mu);
    for (size_t i = 0; i < sw_log_g.n; i++)
        bad += sw_log_g.v[i].kind == SW_TERM && sw_log_g.v[i].reason != NSYS_REASON_SHUTDOWN;
    pthread_mutex_unlock(&sw_log_g.mu);
    return bad;
}

Test(supervisor, simple_one_for_one_with_ten_thousand_children_starts_and_stops_cleanly)
{
    enum { N = 10000 };
    /* A stop grace long enough that the supervisor, not the forced phase,
     * stops every child. */
    nsys_runtime_free(rt);
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    o.shutdown_timeout_ms = 120000;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);

    nsys_ref_t sup = start_simple(NSYS_PERMANENT);
    for (int i = 0; i < N; i++) {
        cJSON *args = cJSON_CreateObject();
        char id[16];
        snprintf(id, sizeof(id), "k%d", i);
        cr_assert_not_null(cJSON_AddStringToObject(args, "id", id));
        nsys_ref_t child = NSYS_REF_NONE;
        int rc = nsys_supervisor_start_child(rt, sup, args, &child);
        cJSON_Delete(args);
        cr_assert_eq(rc, 0, "start_child %d: %s", i, nsys_strerror(rc));
        cr_assert_neq(child, NSYS_REF_NONE);
    }
    nsys_child_counts_t c = counts(sup);
    cr_assert_eq(c.active, N, "active %u", c.active);
    cr_assert_eq(c.workers, N);
    cr_assert_eq(c.supervisors, 0);
    cr_assert_eq(c.restarts, 0);
    kids_view_t k = which(sup);
    cr_assert_eq(k.n, N);
    size_t running = 0;
    for (size_t i = 0; i < k.n; i++)
        running += k.v[i].running != 0;
    nsys_free(k.v);
    cr_assert_eq(running, N);
    cr_assert_eq(sw_count(SW_INIT, NULL), N);

    uint64_t t0 = t_now_ns();
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    cr_log_info("stopping %d children took %llu ms", N,
                (unsigned long long)((t_now_ns() - t0) / 1000000u));
    cr_assert_eq(sw_count(SW_TERM, NULL), N);
    cr_assert_eq(terms_not_shutdown(), 0, "every child was stopped with shutdown");
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_eq(m.actors_alive, 0);
    cr_assert_eq(m.actors_failed, 0);
    finish();
}

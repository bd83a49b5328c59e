/* tests/unit/test_monitor.c — monitors, links, trapping exits, exit signals,
 * nsys_kill and failure by return value (Erlang semantics as runtime.h
 * states them). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

typedef struct world {
    nsys_runtime_t *rt;
    t_probe_t p[8];
    nsys_ref_t r[8];
    int n;
} world_t;

/* A runtime with `n` probes; probes whose bit is set in `trap` trap exits. */
static world_t *world_new(int n, unsigned trap)
{
    world_t *w = calloc(1, sizeof(*w));
    cr_assert_eq(t_runtime(2, &w->rt), 0);
    w->n = n;
    for (int i = 0; i < n; i++) {
        t_probe_init(&w->p[i]);
        w->p[i].trap = (trap >> i) & 1u;
        cr_assert_eq(t_probe_spawn(w->rt, &w->p[i], NULL, &w->r[i]), 0);
    }
    for (int i = 0; i < n; i++)
        T_ASSERT_EVENTUALLY(atomic_load(&w->p[i].inited) == 1, "probe %d never started", i);
    return w;
}

static void world_free(world_t *w)
{
    T_RUNTIME_FREE(w->rt);
    for (int i = 0; i < w->n; i++)
        t_probe_destroy(&w->p[i]);
    free(w);
}

static nsys_down_t expect_down(t_probe_t *p, size_t k)
{
    nsys_down_t d;
    memset(&d, 0, sizeof(d));
    cr_assert(t_probe_wait_down(p, k, &d, T_WAIT_MS), "DOWN #%zu never arrived", k);
    return d;
}

static nsys_exit_t expect_exit(t_probe_t *p, size_t k)
{
    nsys_exit_t e;
    memset(&e, 0, sizeof(e));
    cr_assert(t_probe_wait_exit(p, k, &e, T_WAIT_MS), "EXIT #%zu never arrived", k);
    return e;
}

/* Sends a sentinel to p and waits for it: everything the test thread sent
 * to p before has been handled, and p is still alive. */
static void sync_probe(nsys_runtime_t *rt, t_probe_t *p)
{
    size_t before = t_recs_count_type(&p->inbox, T_MSG_SENTINEL);
    cr_assert_eq(nsys_send(rt, t_probe_ref(p), T_MSG_SENTINEL, NULL, 0), 0, "probe is gone");
    cr_assert(t_recs_wait_type(&p->inbox, T_MSG_SENTINEL, before + 1, T_WAIT_MS), "probe stopped answering");
}

static void link_probes(world_t *w, int a, int b)
{
    int fn_rc = -1;
    cr_assert_eq(t_call(w->rt, w->r[a], t_fn_link, &w->r[b], &fn_rc), 0);
    cr_assert_eq(fn_rc, 0, "link %d-%d: %s", a, b, nsys_errname(fn_rc));
}

/* ---- monitors ------------------------------------------------------------ */

enum { BY_EXIT, BY_RETURN, BY_KILL };

static void down_reason_case(int how, int value, int reason)
{
    world_t *w = world_new(2, 0);
    uint64_t id = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id), 0);
    if (how == BY_EXIT)
        cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, value), 0);
    else if (how == BY_RETURN)
        cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_RETURN, value), 0);
    else
        cr_assert_eq(nsys_kill(w->rt, w->r[1]), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.ref, w->r[1]);
    cr_assert_eq(d.monitor, id);
    cr_assert_eq(d.reason, reason, "reason %s, expected %s", nsys_errname(d.reason), nsys_errname(reason));
    T_ASSERT_EVENTUALLY(atomic_load(&w->p[1].terminated) == 1, "terminate never ran");
    cr_assert_eq(atomic_load(&w->p[1].term_reason), reason, "terminate got another reason than DOWN");
    sync_probe(w->rt, &w->p[0]);
    cr_assert_eq(t_recs_count_type(&w->p[0].inbox, NSYS_MSG_DOWN), 1, "more than one DOWN");
    world_free(w);
}

Test(monitor, down_carries_a_normal_exit_reason)
{
    down_reason_case(BY_EXIT, NSYS_REASON_NORMAL, NSYS_REASON_NORMAL);
}

Test(monitor, down_carries_a_custom_exit_reason)
{
    down_reason_case(BY_EXIT, NSYS_EMSGSIZE, NSYS_EMSGSIZE);
}

Test(monitor, handle_returning_an_error_fails_the_actor_with_that_reason)
{
    down_reason_case(BY_RETURN, NSYS_ETIMEDOUT, NSYS_ETIMEDOUT);
}

Test(monitor, handle_returning_a_positive_value_fails_with_efailed)
{
    down_reason_case(BY_RETURN, 7, NSYS_EFAILED);
}

Test(monitor, kill_reports_killed_and_still_runs_terminate)
{
    down_reason_case(BY_KILL, 0, NSYS_REASON_KILLED);
}

Test(monitor, monitoring_a_dead_actor_delivers_noproc_at_once)
{
    world_t *w = world_new(2, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_ECANCELED), 0);
    expect_down(&w->p[0], 0);
    uint64_t id = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id), 0);
    nsys_down_t d = expect_down(&w->p[0], 1);
    cr_assert_eq(d.ref, w->r[1]);
    cr_assert_eq(d.monitor, id);
    cr_assert_eq(d.reason, NSYS_REASON_NOPROC, "reason %s", nsys_errname(d.reason));
    world_free(w);
}

Test(monitor, monitoring_a_ref_that_never_existed_delivers_noproc)
{
    world_t *w = world_new(1, 0);
    nsys_ref_t never = ((nsys_ref_t)7 << 32) | 5000u;
    uint64_t id = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], never, &id), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.ref, never);
    cr_assert_eq(d.monitor, id);
    cr_assert_eq(d.reason, NSYS_REASON_NOPROC);
    world_free(w);
}

Test(monitor, two_monitors_deliver_two_downs_with_their_own_ids)
{
    world_t *w = world_new(2, 0);
    uint64_t id1 = 0, id2 = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id1), 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id2), 0);
    cr_assert_neq(id1, id2);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_EBUSY), 0);
    nsys_down_t a = expect_down(&w->p[0], 0), b = expect_down(&w->p[0], 1);
    cr_assert((a.monitor == id1 && b.monitor == id2) || (a.monitor == id2 && b.monitor == id1));
    cr_assert_eq(a.reason, NSYS_EBUSY);
    cr_assert_eq(b.reason, NSYS_EBUSY);
    sync_probe(w->rt, &w->p[0]);
    cr_assert_eq(t_recs_count_type(&w->p[0].inbox, NSYS_MSG_DOWN), 2);
    world_free(w);
}

Test(monitor, many_watchers_each_get_one_down)
{
    world_t *w = world_new(6, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(t_monitor(w->rt, &w->p[i], w->r[5], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[5], T_MSG_EXITME, NSYS_ENOSPC), 0);
    for (int i = 0; i < 5; i++) {
        nsys_down_t d = expect_down(&w->p[i], 0);
        cr_assert_eq(d.reason, NSYS_ENOSPC);
        sync_probe(w->rt, &w->p[i]);
        cr_assert_eq(t_recs_count_type(&w->p[i].inbox, NSYS_MSG_DOWN), 1);
    }
    world_free(w);
}

typedef struct demon_arg {
    uint64_t id;
    int rc;
    int rc2;
} demon_arg_t;

static int fn_demonitor(nsys_ctx_t *ctx, void *arg)
{
    demon_arg_t *a = arg;
    a->rc = nsys_demonitor(ctx, a->id);
    a->rc2 = nsys_demonitor(ctx, a->id);
    return 0;
}

Test(monitor, demonitor_before_exit_means_no_down)
{
    world_t *w = world_new(2, 0);
    uint64_t id = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id), 0);
    demon_arg_t a = {id, -1, -1};
    cr_assert_eq(t_call(w->rt, w->r[0], fn_demonitor, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    cr_assert_eq(a.rc2, NSYS_ENOENT, "demonitor twice: %s", nsys_errname(a.rc2));
    /* a second monitor placed afterwards shows when the DOWN would be due */
    uint64_t id2 = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id2), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_EBUSY), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.monitor, id2, "a DOWN came for the removed monitor");
    sync_probe(w->rt, &w->p[0]);
    cr_assert_eq(t_recs_count_type(&w->p[0].inbox, NSYS_MSG_DOWN), 1);
    world_free(w);
}

typedef struct queued_down {
    nsys_ref_t target;
    uint64_t id;
    int monitor_rc, kill_rc, demonitor_rc;
    bool target_gone;
} queued_down_t;

/* Inside the watcher: monitor, kill the target (on another scheduler), wait
 * until it is gone so that its DOWN is queued behind this very callback, then
 * demonitor. */
static int fn_monitor_kill_demonitor(nsys_ctx_t *ctx, void *arg)
{
    queued_down_t *q = arg;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    q->monitor_rc = nsys_monitor(ctx, q->target, &q->id);
    q->kill_rc = nsys_kill(rt, q->target);
    t_poll_t poll = t_poll_begin(T_WAIT_MS);
    while (nsys_is_alive(rt, q->target) && t_poll_continue(&poll)) {
    }
    q->target_gone = !nsys_is_alive(rt, q->target);
    /* is_alive may turn false a moment before the DOWN is queued */
    t_busy_us(20000);
    q->demonitor_rc = nsys_demonitor(ctx, q->id);
    return 0;
}

Test(monitor, demonitor_drops_a_down_that_is_already_queued)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t watcher, target;
    t_probe_init(&watcher);
    t_probe_init(&target);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_INDEX;
    o.sched_index = 0;
    nsys_ref_t wref, tref;
    cr_assert_eq(t_probe_spawn(rt, &watcher, &o, &wref), 0);
    o.sched_index = 1;
    cr_assert_eq(t_probe_spawn(rt, &target, &o, &tref), 0);
    queued_down_t q = {tref, 0, -1, -1, -1, false};
    cr_assert_eq(t_call(rt, wref, fn_monitor_kill_demonitor, &q, NULL), 0);
    cr_assert_eq(q.monitor_rc, 0);
    cr_assert_eq(q.kill_rc, 0);
    cr_assert(q.target_gone, "the target did not die while the watcher waited");
    cr_assert_eq(q.demonitor_rc, 0, "demonitor: %s", nsys_errname(q.demonitor_rc));
    /* anything queued before the call returned is handled before this */
    cr_assert_eq(nsys_send(rt, wref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&watcher.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    /* a second round trip, in case the DOWN was sent after our sentinel */
    cr_assert_eq(t_call(rt, wref, t_fn_noop, NULL, NULL), 0);
    cr_assert_eq(t_recs_count_type(&watcher.inbox, NSYS_MSG_DOWN), 0, "a DOWN arrived after demonitor");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&watcher);
    t_probe_destroy(&target);
}

typedef struct demon_ids {
    uint64_t ids[3];
    int rc[3];
} demon_ids_t;

static int fn_demonitor_ids(nsys_ctx_t *ctx, void *arg)
{
    demon_ids_t *a = arg;
    for (int i = 0; i < 3; i++)
        a->rc[i] = nsys_demonitor(ctx, a->ids[i]);
    return 0;
}

Test(monitor, demonitor_of_an_unknown_or_spent_id_is_enoent)
{
    world_t *w = world_new(2, 0);
    uint64_t id = 0;
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], &id), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, 0), 0);
    expect_down(&w->p[0], 0);
    demon_ids_t a = {{id, 0, id + 1000003u}, {1, 1, 1}};
    cr_assert_eq(t_call(w->rt, w->r[0], fn_demonitor_ids, &a, NULL), 0);
    cr_assert_eq(a.rc[0], NSYS_ENOENT, "demonitor after DOWN: %s", nsys_errname(a.rc[0]));
    cr_assert_eq(a.rc[1], NSYS_ENOENT, "demonitor(0): %s", nsys_errname(a.rc[1]));
    cr_assert_eq(a.rc[2], NSYS_ENOENT, "demonitor(unknown): %s", nsys_errname(a.rc[2]));
    world_free(w);
}

Test(monitor, calls_that_need_an_actor_refuse_a_null_context)
{
    uint64_t id = 0;
    cr_assert_lt(nsys_monitor(NULL, 1, &id), 0);
    cr_assert_lt(nsys_demonitor(NULL, 1), 0);
    cr_assert_lt(nsys_link(NULL, 1), 0);
    cr_assert_lt(nsys_unlink(NULL, 1), 0);
    nsys_timer_t t = 0;
    cr_assert_lt(nsys_send_after(NULL, 1, 10, T_MSG_A, NULL, 0, &t), 0);
    cr_assert_lt(nsys_send_interval(NULL, 1, 10, T_MSG_A, NULL, 0, &t), 0);
    cr_assert_lt(nsys_timer_cancel(NULL, 1), 0);
}

/* ---- links --------------------------------------------------------------- */

Test(monitor, abnormal_exit_kills_a_linked_non_trapping_peer_with_the_same_reason)
{
    world_t *w = world_new(3, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    link_probes(w, 1, 2);
    cr_assert_eq(t_send_int(w->rt, w->r[2], T_MSG_EXITME, NSYS_ETIMEDOUT), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.ref, w->r[1]);
    cr_assert_eq(d.reason, NSYS_ETIMEDOUT, "peer died with %s", nsys_errname(d.reason));
    T_ASSERT_EVENTUALLY(atomic_load(&w->p[1].terminated) == 1);
    cr_assert_eq(atomic_load(&w->p[1].term_reason), NSYS_ETIMEDOUT);
    world_free(w);
}

Test(monitor, links_work_in_both_directions)
{
    world_t *w = world_new(3, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[2], NULL), 0);
    link_probes(w, 1, 2);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_RETURN, NSYS_ECANCELED), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.ref, w->r[2]);
    cr_assert_eq(d.reason, NSYS_ECANCELED);
    world_free(w);
}

Test(monitor, normal_exit_does_not_kill_a_linked_peer)
{
    world_t *w = world_new(2, 0);
    link_probes(w, 0, 1);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_REASON_NORMAL), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, 0);
    sync_probe(w->rt, &w->p[0]);
    cr_assert(nsys_is_alive(w->rt, w->r[0]));
    cr_assert_eq(atomic_load(&w->p[0].terminated), 0);
    world_free(w);
}

Test(monitor, trapping_peer_receives_exit_with_sender_and_reason_and_survives)
{
    world_t *w = world_new(2, 1u << 0);
    link_probes(w, 0, 1);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_EMSGSIZE), 0);
    nsys_exit_t e = expect_exit(&w->p[0], 0);
    cr_assert_eq(e.from, w->r[1]);
    cr_assert_eq(e.reason, NSYS_EMSGSIZE);
    sync_probe(w->rt, &w->p[0]);
    cr_assert_eq(atomic_load(&w->p[0].terminated), 0);
    cr_assert_eq(t_recs_count_type(&w->p[0].inbox, NSYS_MSG_EXIT), 1);
    world_free(w);
}

Test(monitor, trapping_peer_receives_exit_for_a_normal_exit_too)
{
    world_t *w = world_new(2, 1u << 0);
    link_probes(w, 0, 1);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_REASON_NORMAL), 0);
    nsys_exit_t e = expect_exit(&w->p[0], 0);
    cr_assert_eq(e.from, w->r[1]);
    cr_assert_eq(e.reason, NSYS_REASON_NORMAL);
    sync_probe(w->rt, &w->p[0]);
    cr_assert_eq(t_recs_count_type(&w->p[0].inbox, NSYS_MSG_EXIT), 1);
    world_free(w);
}

Test(monitor, trapping_peer_of_a_killed_actor_gets_exit_killed)
{
    world_t *w = world_new(2, 1u << 0);
    link_probes(w, 0, 1);
    cr_assert_eq(nsys_kill(w->rt, w->r[1]), 0);
    nsys_exit_t e = expect_exit(&w->p[0], 0);
    cr_assert_eq(e.from, w->r[1]);
    cr_assert_eq(e.reason, NSYS_REASON_KILLED);
    sync_probe(w->rt, &w->p[0]);
    world_free(w);
}

typedef struct trap_arg {
    bool prev[3];
} trap_arg_t;

static int fn_trap_toggle(nsys_ctx_t *ctx, void *arg)
{
    trap_arg_t *a = arg;
    a->prev[0] = nsys_trap_exit(ctx, true);
    a->prev[1] = nsys_trap_exit(ctx, true);
    a->prev[2] = nsys_trap_exit(ctx, false);
    return 0;
}

Test(monitor, trap_exit_returns_the_previous_setting)
{
    world_t *w = world_new(1, 0);
    trap_arg_t a = {{true, false, false}};
    cr_assert_eq(t_call(w->rt, w->r[0], fn_trap_toggle, &a, NULL), 0);
    cr_assert_eq(a.prev[0], false, "an actor does not trap exits by default");
    cr_assert_eq(a.prev[1], true);
    cr_assert_eq(a.prev[2], true);
    world_free(w);
}

Test(monitor, unlink_stops_propagation)
{
    world_t *w = world_new(2, 0);
    link_probes(w, 0, 1);
    int fn_rc = -1;
    cr_assert_eq(t_call(w->rt, w->r[0], t_fn_unlink, &w->r[1], &fn_rc), 0);
    cr_assert_eq(fn_rc, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_ETIMEDOUT), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, NSYS_ETIMEDOUT);
    sync_probe(w->rt, &w->p[0]);
    cr_assert(nsys_is_alive(w->rt, w->r[0]), "unlinked peer died");
    world_free(w);
}

Test(monitor, unlink_from_the_other_side_stops_propagation_too)
{
    world_t *w = world_new(3, 0);
    link_probes(w, 0, 1);
    int fn_rc = -1;
    cr_assert_eq(t_call(w->rt, w->r[1], t_fn_unlink, &w->r[0], &fn_rc), 0);
    cr_assert_eq(fn_rc, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_ETIMEDOUT), 0);
    expect_down(&w->p[0], 0);
    sync_probe(w->rt, &w->p[0]);
    cr_assert(nsys_is_alive(w->rt, w->r[0]));
    world_free(w);
}

Test(monitor, exits_cascade_along_a_chain_of_links)
{
    /* p1 - p2 - p3, p0 watches p2 and p3 */
    world_t *w = world_new(4, 0);
    link_probes(w, 1, 2);
    link_probes(w, 2, 3);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[2], NULL), 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[3], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_ENOSPC), 0);
    nsys_down_t a = expect_down(&w->p[0], 0), b = expect_down(&w->p[0], 1);
    cr_assert_eq(a.reason, NSYS_ENOSPC);
    cr_assert_eq(b.reason, NSYS_ENOSPC);
    cr_assert((a.ref == w->r[2] && b.ref == w->r[3]) || (a.ref == w->r[3] && b.ref == w->r[2]));
    world_free(w);
}

Test(monitor, a_trapping_actor_stops_a_cascade)
{
    /* p1 - p2(trap) - p3 */
    world_t *w = world_new(4, 1u << 2);
    link_probes(w, 1, 2);
    link_probes(w, 2, 3);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, NSYS_ENOSPC), 0);
    expect_down(&w->p[0], 0);
    nsys_exit_t e = expect_exit(&w->p[2], 0);
    cr_assert_eq(e.from, w->r[1]);
    cr_assert_eq(e.reason, NSYS_ENOSPC);
    sync_probe(w->rt, &w->p[2]);
    sync_probe(w->rt, &w->p[3]);
    cr_assert(nsys_is_alive(w->rt, w->r[2]));
    cr_assert(nsys_is_alive(w->rt, w->r[3]));
    world_free(w);
}

/* ---- exit signals -------------------------------------------------------- */

Test(monitor, exit_signal_with_an_error_makes_a_non_trapping_actor_exit_with_it)
{
    world_t *w = world_new(2, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(nsys_exit_signal(w->rt, w->r[1], UV_ECONNRESET), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, UV_ECONNRESET);
    world_free(w);
}

Test(monitor, exit_signal_shutdown_makes_a_non_trapping_actor_exit_with_shutdown)
{
    world_t *w = world_new(2, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(nsys_exit_signal(w->rt, w->r[1], NSYS_REASON_SHUTDOWN), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, NSYS_REASON_SHUTDOWN);
    world_free(w);
}

Test(monitor, exit_signal_normal_is_ignored_by_a_non_trapping_actor)
{
    world_t *w = world_new(2, 0);
    cr_assert_eq(nsys_exit_signal(w->rt, w->r[1], NSYS_REASON_NORMAL), 0);
    sync_probe(w->rt, &w->p[1]);
    cr_assert(nsys_is_alive(w->rt, w->r[1]));
    cr_assert_eq(atomic_load(&w->p[1].terminated), 0);
    world_free(w);
}

Test(monitor, exit_signal_from_outside_reaches_a_trapping_actor_as_a_message)
{
    world_t *w = world_new(1, 1u << 0);
    cr_assert_eq(nsys_exit_signal(w->rt, w->r[0], NSYS_ETIMEDOUT), 0);
    cr_assert_eq(nsys_exit_signal(w->rt, w->r[0], NSYS_REASON_NORMAL), 0);
    nsys_exit_t a = expect_exit(&w->p[0], 0), b = expect_exit(&w->p[0], 1);
    cr_assert_eq(a.from, NSYS_REF_NONE);
    cr_assert_eq(a.reason, NSYS_ETIMEDOUT);
    cr_assert_eq(b.from, NSYS_REF_NONE);
    cr_assert_eq(b.reason, NSYS_REASON_NORMAL, "a trapping actor sees normal exit signals too");
    sync_probe(w->rt, &w->p[0]);
    cr_assert(nsys_is_alive(w->rt, w->r[0]));
    world_free(w);
}

typedef struct signal_arg {
    nsys_ref_t to;
    int reason;
    int rc;
} signal_arg_t;

static int fn_exit_signal(nsys_ctx_t *ctx, void *arg)
{
    signal_arg_t *a = arg;
    a->rc = nsys_exit_signal(nsys_ctx_runtime(ctx), a->to, a->reason);
    return 0;
}

Test(monitor, exit_signal_from_an_actor_names_it_as_the_sender)
{
    world_t *w = world_new(2, 1u << 1);
    signal_arg_t a = {w->r[1], NSYS_EBUSY, -1};
    cr_assert_eq(t_call(w->rt, w->r[0], fn_exit_signal, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    nsys_exit_t e = expect_exit(&w->p[1], 0);
    cr_assert_eq(e.from, w->r[0]);
    cr_assert_eq(e.reason, NSYS_EBUSY);
    world_free(w);
}

Test(monitor, an_actor_may_signal_itself_to_exit)
{
    world_t *w = world_new(2, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    signal_arg_t a = {w->r[1], NSYS_ECANCELED, -1};
    cr_assert_eq(t_call(w->rt, w->r[1], fn_exit_signal, &a, NULL), 0);
    cr_assert_eq(a.rc, 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, NSYS_ECANCELED);
    world_free(w);
}

/* ---- kill -------------------------------------------------------------- */

Test(monitor, kill_cannot_be_trapped)
{
    world_t *w = world_new(2, 1u << 1);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(nsys_kill(w->rt, w->r[1]), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, NSYS_REASON_KILLED);
    T_ASSERT_EVENTUALLY(atomic_load(&w->p[1].terminated) == 1, "terminate must still run after kill");
    cr_assert_eq(atomic_load(&w->p[1].term_reason), NSYS_REASON_KILLED);
    cr_assert_eq(t_recs_count_type(&w->p[1].inbox, NSYS_MSG_EXIT), 0, "the kill arrived as a message");
    world_free(w);
}

typedef struct gated {
    t_gate_t gate;
    atomic_int handled;
    atomic_int terminated;
    atomic_int reason;
} gated_t;

static int gated_init(nsys_ctx_t *ctx, void *state, void *args)
{
    *(gated_t **)state = args;
    nsys_trap_exit(ctx, true);
    return 0;
}

static int gated_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)msg;
    gated_t *g = *(gated_t **)state;
    if (atomic_fetch_add(&g->handled, 1) == 0)
        t_gate_wait(&g->gate, T_WAIT_MS);
    return 0;
}

static void gated_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    gated_t *g = *(gated_t **)state;
    atomic_store(&g->reason, reason);
    atomic_store(&g->terminated, 1);
}

static const nsys_behaviour_t gated_b = {
    .name = "test.gated",
    .state_size = sizeof(gated_t *),
    .init = gated_init,
    .handle = gated_handle,
    .terminate = gated_terminate,
};

Test(monitor, kill_takes_effect_before_the_next_queued_message)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    gated_t g;
    memset(&g, 0, sizeof(g));
    t_gate_init(&g.gate);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &g;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &gated_b, &o, &ref), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 0), 0);
    cr_assert(t_gate_wait_arrived(&g.gate, 1, T_WAIT_MS));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 0), 0);
    cr_assert_eq(nsys_kill(rt, ref), 0);
    t_gate_open(&g.gate);
    T_ASSERT_EVENTUALLY(atomic_load(&g.terminated) == 1);
    cr_assert_eq(atomic_load(&g.reason), NSYS_REASON_KILLED);
    cr_assert_eq(atomic_load(&g.handled), 1, "%d queued messages were handled after kill",
                 atomic_load(&g.handled) - 1);
    T_RUNTIME_FREE(rt);
    t_gate_destroy(&g.gate);
}

/* ---- exit reasons ---------------------------------------------------------- */

static int fn_exit_twice(nsys_ctx_t *ctx, void *arg)
{
    (void)arg;
    nsys_exit(ctx, NSYS_EMSGSIZE);
    nsys_exit(ctx, NSYS_ETIMEDOUT);
    nsys_exit(ctx, NSYS_REASON_NORMAL);
    return 0;
}

Test(monitor, the_first_exit_reason_given_wins)
{
    world_t *w = world_new(2, 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[1], NULL), 0);
    cr_assert_eq(t_call(w->rt, w->r[1], fn_exit_twice, NULL, NULL), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, NSYS_EMSGSIZE, "reason %s", nsys_errname(d.reason));
    world_free(w);
}

static int exit_then_fail_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)p;
    if (msg->type != T_MSG_C)
        return 0;
    nsys_exit(ctx, NSYS_ECANCELED);
    return NSYS_ETIMEDOUT;
}

Test(monitor, an_exit_reason_given_before_handle_fails_wins_over_the_return_value)
{
    world_t *w = world_new(1, 0);
    t_probe_t v;
    t_probe_init(&v);
    v.hook = exit_then_fail_hook;
    nsys_ref_t vref;
    cr_assert_eq(t_probe_spawn(w->rt, &v, NULL, &vref), 0);
    cr_assert_eq(t_monitor(w->rt, &w->p[0], vref, NULL), 0);
    cr_assert_eq(nsys_send(w->rt, vref, T_MSG_C, NULL, 0), 0);
    nsys_down_t d = expect_down(&w->p[0], 0);
    cr_assert_eq(d.reason, NSYS_ECANCELED, "reason %s", nsys_errname(d.reason));
    world_free(w);
    t_probe_destroy(&v);
}

Test(monitor, actors_failed_counts_abnormal_exits_only)
{
    world_t *w = world_new(4, 0);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(t_monitor(w->rt, &w->p[0], w->r[i], NULL), 0);
    nsys_metrics_t m0;
    cr_assert_eq(nsys_metrics_get(w->rt, &m0), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[1], T_MSG_EXITME, 0), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[2], T_MSG_EXITME, NSYS_EBUSY), 0);
    cr_assert_eq(t_send_int(w->rt, w->r[3], T_MSG_RETURN, NSYS_ENOMEM), 0);
    for (size_t k = 0; k < 3; k++)
        expect_down(&w->p[0], k);
    nsys_metrics_t m;
    T_WAIT(nsys_metrics_get(w->rt, &m) == 0 && m.actors_exited == m0.actors_exited + 3, T_WAIT_MS);
    cr_assert_eq(m.actors_exited, m0.actors_exited + 3);
    cr_assert_eq(m.actors_failed, m0.actors_failed + 2);
    cr_assert_eq(m.actors_alive, m0.actors_alive - 3);
    world_free(w);
}

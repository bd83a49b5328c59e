/* tools/bench/bench_sup.c — `netsys-bench sup-restart`: how long a
 * one_for_all supervisor with C children takes to restart them all after one
 * crashes, and what one restart decision costs.
 *
 * Timing comes from the supervisor's own events (nsys_sup_event_t.time_ns,
 * stamped on its thread), collected by an observer actor:
 *   decision  = RESTARTING.time - EXITED(crashed child).time: intensity check,
 *               backoff, and planning 2C steps;
 *   stop      = last EXITED(shutdown).time - EXITED(crashed child).time;
 *   start     = last STARTED.time - first STARTED.time, scaled by C/(C-1) for
 *               the first child's own start;
 *   restart   = stop + start. The backoff delay between the two phases (a
 *               policy, not a cost) is not counted.
 * Each of R rounds crashes one child; medians are reported.
 */
#include "bench.h"

#include <netsys/netsys.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_CRASH (NSYS_MSG_USER + 1u)

typedef struct round_stats {
    uint64_t crash_ns, decision_ns, last_exit_ns, first_start_ns, last_start_ns;
    uint32_t exits, starts;
} round_stats_t;

typedef struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t children;
    uint32_t started_total;
    round_stats_t r;
} shared_t;

static int worker_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    return msg->type == MSG_CRASH ? NSYS_EFAILED : 0;
}

static const nsys_behaviour_t worker_behaviour = {
    .name = "bench.sup.worker",
    .handle = worker_handle,
};

typedef struct observer {
    shared_t *sh;
} observer_t;

static int observer_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    ((observer_t *)state)->sh = args;
    return 0;
}

static int observer_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    shared_t *sh = ((observer_t *)state)->sh;
    if (msg->type != NSYS_MSG_SUP_EVENT || msg->size != sizeof(nsys_sup_event_t))
        return 0;
    const nsys_sup_event_t *ev = msg->data;
    pthread_mutex_lock(&sh->mu);
    round_stats_t *r = &sh->r;
    switch (ev->kind) {
    case NSYS_SUP_CHILD_EXITED:
        if (ev->reason == NSYS_EFAILED)
            r->crash_ns = ev->time_ns;
        else {
            r->exits++;
            r->last_exit_ns = ev->time_ns;
        }
        break;
    case NSYS_SUP_CHILD_RESTARTING:
        r->decision_ns = ev->time_ns - r->crash_ns;
        break;
    case NSYS_SUP_CHILD_STARTED:
        sh->started_total++;
        if (r->starts++ == 0)
            r->first_start_ns = ev->time_ns;
        r->last_start_ns = ev->time_ns;
        break;
    default:
        break;
    }
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

static const nsys_behaviour_t observer_behaviour = {
    .name = "bench.sup.observer",
    .state_size = sizeof(observer_t),
    .init = observer_init,
    .handle = observer_handle,
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Waits until pred holds or 30 s pass; false on timeout. */
static bool wait_for(shared_t *sh, bool (*pred)(const shared_t *))
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    pthread_mutex_lock(&sh->mu);
    int rc = 0;
    while (!pred(sh) && rc == 0)
        rc = pthread_cond_timedwait(&sh->cv, &sh->mu, &dl);
    bool ok = pred(sh);
    pthread_mutex_unlock(&sh->mu);
    return ok;
}

static bool all_started(const shared_t *sh)
{
    return sh->started_total >= sh->children;
}
static bool round_done(const shared_t *sh)
{
    return sh->r.crash_ns != 0 && sh->r.exits + 1 >= sh->children && sh->r.starts >= sh->children;
}

static const char usage[] =
    "usage: netsys-bench sup-restart [--children C] [--rounds R] [--schedulers N]\n"
    "\n"
    "A one_for_all supervisor with C children (default 1000) on N schedulers (default 2);\n"
    "R times (default 11) one child crashes and the supervisor restarts them all.\n"
    "Reports the median restart time (stop all + start all, backoff delay excluded)\n"
    "and the median cost of one restart decision, from the supervisor's event times.\n";

static int run(int argc, char **argv)
{
    uint64_t children = 1000, rounds = 11, schedulers = 2;
    const bench_opt_t opts[] = {
        {"children", BENCH_OPT_U64, &children, "children under the supervisor"},
        {"rounds", BENCH_OPT_U64, &rounds, "crashes to time"},
        {"schedulers", BENCH_OPT_U64, &schedulers, "scheduler threads"},
        {NULL, BENCH_OPT_FLAG, NULL, NULL},
    };
    bench_common_t common;
    int prc = bench_parse(argc, argv, usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if (children < 2 || children > 100000 || rounds < 1 || rounds > 1000 || schedulers < 1 ||
        schedulers > 64) {
        bench_err("sup-restart",
                  "need 2 <= children <= 100000, 1 <= rounds <= 1000, 1 <= schedulers <= 64");
        return 2;
    }

    shared_t sh = {.children = (uint32_t)children};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    nsys_runtime_opts_t ro = NSYS_RUNTIME_OPTS_DEFAULTS;
    ro.schedulers = (unsigned)schedulers;
    nsys_runtime_t *rt = NULL;
    int rc = nsys_runtime_new(&ro, &rt);
    if (rc != 0) {
        bench_err("sup-restart", "nsys_runtime_new: %s", nsys_strerror(rc));
        return 1;
    }
    nsys_log_set_level(NSYS_LOG_WARN);
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.args = &sh;
    nsys_ref_t observer = NSYS_REF_NONE, sup = NSYS_REF_NONE;
    rc = nsys_spawn(rt, &observer_behaviour, &so, &observer);

    nsys_child_spec_t *kids = calloc(children, sizeof *kids);
    char(*ids)[24] = calloc(children, sizeof *ids);
    uint64_t *restart = calloc(rounds, sizeof *restart),
             *decision = calloc(rounds, sizeof *decision);
    uint64_t *stop = calloc(rounds, sizeof *stop), *start = calloc(rounds, sizeof *start);
    bool ok = rc == 0 && kids != NULL && ids != NULL && restart != NULL && decision != NULL &&
              stop != NULL && start != NULL;
    if (ok) {
        for (uint64_t i = 0; i < children; i++) {
            snprintf(ids[i], sizeof ids[i], "w%llu", (unsigned long long)i);
            kids[i] = (nsys_child_spec_t){.id = ids[i], .behaviour = &worker_behaviour};
        }
        nsys_sup_spec_t spec = {
            .strategy = NSYS_ONE_FOR_ALL,
            .intensity = 1000000,
            .period_ms = 1000,
            .backoff = {.initial_ms = 1,
                        .max_ms = 1,
                        .multiplier = 1.0,
                        .jitter = NSYS_BACKOFF_NO_JITTER},
            .children = kids,
            .nchildren = children,
            .observer = observer,
        };
        char err[256];
        rc = nsys_supervisor_start(rt, &spec, &sup, err, sizeof err);
        if (rc != 0)
            bench_err("sup-restart", "start: %s", err);
        ok = rc == 0 && wait_for(&sh, all_started);
    }
    for (uint64_t round = 0; ok && round < rounds; round++) {
        nsys_child_info_t *info = NULL;
        size_t n = 0;
        pthread_mutex_lock(&sh.mu);
        memset(&sh.r, 0, sizeof sh.r);
        pthread_mutex_unlock(&sh.mu);
        ok = nsys_supervisor_which_children(rt, sup, &info, &n) == 0 && n == children &&
             info[n / 2].ref != NSYS_REF_NONE &&
             nsys_send(rt, info[n / 2].ref, MSG_CRASH, NULL, 0) == 0 && wait_for(&sh, round_done);
        nsys_free(info);
        if (!ok)
            break;
        round_stats_t r = sh.r;
        stop[round] = r.last_exit_ns - r.crash_ns;
        start[round] = (r.last_start_ns - r.first_start_ns) * children / (children - 1);
        restart[round] = stop[round] + start[round];
        decision[round] = r.decision_ns;
    }
    if (!ok)
        bench_err("sup-restart", "a round did not complete (timeout or error)");

    uint64_t parks = 0, wakeups = 0;
    for (unsigned i = 0; i < nsys_runtime_schedulers(rt); i++) {
        nsys_sched_metrics_t sm;
        if (nsys_sched_metrics_get(rt, i, &sm) == 0) {
            parks += sm.parks;
            wakeups += sm.wakeups;
        }
    }
    nsys_runtime_free(rt);
    if (ok) {
        bench_json_t j;
        double restart_ms = (double)median(restart, rounds) / 1e6;
        bench_json_begin(&j, "sup-restart", "restart_all_ms", restart_ms, "ms");
        bench_json_f64(&j, "decision_us", (double)median(decision, rounds) / 1e3);
        bench_json_f64(&j, "stop_all_ms", (double)median(stop, rounds) / 1e6);
        bench_json_f64(&j, "start_all_ms", (double)median(start, rounds) / 1e6);
        bench_json_u64(&j, "children", children);
        bench_json_u64(&j, "rounds", rounds);
        bench_json_u64(&j, "schedulers", schedulers);
        bench_json_str(&j, "strategy", "one_for_all");
        bench_json_u64(&j, "parks", parks);
        bench_json_u64(&j, "wakeups", wakeups);
        bench_json_print(&j);
    }
    free(kids);
    free(ids);
    free(restart);
    free(decision);
    free(stop);
    free(start);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
    return ok ? 0 : 1;
}

const bench_cmd_t bench_cmd_sup_restart = {
    .name = "sup-restart",
    .summary = "one_for_all supervisor with 1,000 children: restart-all time and decision cost",
    .run = run,
};

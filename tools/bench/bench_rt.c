/* tools/bench/bench_rt.c — the runtime side shared by netsys-bench's
 * subcommands: starting a runtime from the common options, waiting for a
 * run's end, reporting the runtime's counters, stopping it.
 *
 * Not for: workloads (bench_runtime.c and friends).
 */
#define _GNU_SOURCE
#include "bench_rt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int bench_run_start(bench_run_t *run, const char *cmd, const bench_rt_opts_t *opts,
                    uint32_t max_actors)
{
    memset(run, 0, sizeof *run);
    run->cmd = cmd;
    atomic_init(&run->ready, 0);
    atomic_init(&run->failed, false);
    atomic_init(&run->t0_ns, 0);
    atomic_init(&run->t1_ns, 0);
    atomic_init(&run->progress, 0);
    atomic_init(&run->error_state, 0);

    nsys_runtime_opts_t ro = NSYS_RUNTIME_OPTS_DEFAULTS;
    ro.schedulers = (unsigned)opts->schedulers;
    ro.batch = (unsigned)opts->batch;
    ro.spin_us = opts->spin_us < 0 ? -1 : (int)opts->spin_us;
    ro.max_actors = max_actors;
    int rc = nsys_runtime_new(&ro, &run->rt);
    if (rc != 0) {
        run->rt = NULL;
        bench_run_fail(run, "nsys_runtime_new: %s", nsys_strerror(rc));
        return 1;
    }
    return 0;
}

int bench_rt_opts_check(const char *cmd, const bench_rt_opts_t *opts)
{
    if (opts->schedulers == 0 || opts->schedulers > 1024 || opts->batch > 1000000 ||
        opts->spin_us > 1e6) {
        bench_err(cmd, "need 1 <= --schedulers <= 1024, --rt-batch <= 1000000, --spin-us <= 1e6");
        return 2;
    }
    return 0;
}

void bench_run_fail(bench_run_t *run, const char *fmt, ...)
{
    char msg[sizeof run->error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int none = 0;
    bool first = atomic_compare_exchange_strong(&run->error_state, &none, 1);
    if (first) {
        memcpy(run->error, msg, sizeof msg);
        atomic_store(&run->error_state, 2);
    }
    atomic_store(&run->failed, true);
    bench_err(run->cmd, "%s", msg);
    if (first && run->rt != NULL)
        nsys_runtime_request_stop(run->rt, 1);
}

void bench_run_done(bench_run_t *run)
{
    int rc = nsys_runtime_request_stop(run->rt, 0);
    if (rc != 0)
        bench_err(run->cmd, "nsys_runtime_request_stop: %s", nsys_strerror(rc));
}

int bench_run_await_ready(bench_run_t *run, unsigned count)
{
    const struct timespec pause = {0, 100 * 1000};
    while (atomic_load(&run->ready) < count) {
        if (atomic_load(&run->failed))
            return 1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

int bench_run_wait(bench_run_t *run, double timeout_s)
{
    nsys_wake_t why = 0;
    int code = 0;
    int rc = nsys_runtime_wait(run->rt, 0, (uint64_t)(timeout_s * 1000.0), &why, &code);
    if (rc != 0) {
        bench_run_fail(run, "nsys_runtime_wait: %s", nsys_strerror(rc));
        return 1;
    }
    if (atomic_load(&run->failed))
        return 1;
    if (why != NSYS_WAKE_REQUEST) {
        bench_run_fail(run, "nsys_runtime_wait woke for %d (code %d), not for the end of the run",
                       (int)why, code);
        return 1;
    }
    if (code != 0) {
        bench_run_fail(run, "run ended with code %d", code);
        return 1;
    }
    return 0;
}

void bench_run_json_counters(bench_run_t *run, bench_json_t *j)
{
    nsys_metrics_t m;
    memset(&m, 0, sizeof m);
    if (nsys_metrics_get(run->rt, &m) != 0)
        return;
    uint64_t parks = 0;
    uint64_t wakeups = 0;
    for (unsigned s = 0; s < m.schedulers; s++) {
        nsys_sched_metrics_t sm;
        memset(&sm, 0, sizeof sm);
        if (nsys_sched_metrics_get(run->rt, s, &sm) == 0) {
            parks += sm.parks;
            wakeups += sm.wakeups;
        }
    }
    bench_json_u64(j, "messages_sent", m.messages_sent);
    bench_json_u64(j, "messages_handled", m.messages_handled);
    bench_json_u64(j, "dead_letters", m.dead_letters);
    bench_json_u64(j, "parks", parks);
    bench_json_u64(j, "wakeups", wakeups);
}

int bench_run_finish(bench_run_t *run)
{
    if (run->rt == NULL)
        return 0;
    int rc = nsys_runtime_stop(run->rt);
    nsys_runtime_free(run->rt);
    run->rt = NULL;
    if (rc != 0) {
        bench_run_fail(run, "nsys_runtime_stop: %s", nsys_strerror(rc));
        return 1;
    }
    return 0;
}

const char *bench_run_error(bench_run_t *run)
{
    return atomic_load(&run->error_state) == 2 ? run->error : "";
}

/* tools/bench/bench_rt.h — helpers for subcommands that drive a netsys
 * runtime: the runtime options every such subcommand accepts, one run's
 * shared record (timestamps, readiness, the first failure), waiting for the
 * end with a bound, and the runtime's counters in the result line.
 *
 * Not for: measuring anything by itself; a workload decides what it times.
 */
#ifndef NSYS_TOOLS_BENCH_RT_H
#define NSYS_TOOLS_BENCH_RT_H

#include <stdatomic.h>

#include <netsys/netsys.h>

#include "bench.h"

typedef struct bench_rt_opts {
    uint64_t schedulers; /* default 2 */
    uint64_t batch;      /* messages per actor per turn; 0: the runtime's default */
    double spin_us;      /* 0: the runtime's default, < 0: never spin */
} bench_rt_opts_t;
#define BENCH_RT_OPTS_DEFAULTS                                                                     \
    {                                                                                              \
        2, 0, 0.0                                                                                  \
    }

/* Option table entries for a bench_rt_opts_t named `o`. */
#define BENCH_RT_OPT_ENTRIES(o)                                                                    \
    {"schedulers", BENCH_OPT_U64, &(o).schedulers, "scheduler threads (default 2)"},               \
        {"rt-batch", BENCH_OPT_U64, &(o).batch,                                                    \
         "runtime batch: messages per actor per turn (default: runtime's, 64)"},                   \
    {                                                                                              \
        "spin-us", BENCH_OPT_DOUBLE, &(o).spin_us,                                                 \
            "scheduler spin before parking, us (default: runtime's; <0: never)"                    \
    }

/* One run. Actors reach it through their spawn args. Timestamps are
 * CLOCK_MONOTONIC ns written by whichever thread starts or ends the timed
 * section. */
typedef struct bench_run {
    const char *cmd;
    nsys_runtime_t *rt;
    atomic_uint ready; /* actors whose init ran */
    atomic_bool failed;
    _Atomic uint64_t t0_ns;
    _Atomic uint64_t t1_ns;
    _Atomic uint64_t progress; /* advanced now and then by the workload, for the watchdog */
    atomic_int error_state;    /* 0: none, 1: being written, 2: error holds the first failure */
    char error[256];
} bench_run_t;

/* Checks the options after parsing: 0, or 2 with a message on stderr. */
int bench_rt_opts_check(const char *cmd, const bench_rt_opts_t *opts);

/* Creates the runtime. Returns 0, or 1 with the failure recorded. */
int bench_run_start(bench_run_t *run, const char *cmd, const bench_rt_opts_t *opts,
                    uint32_t max_actors);

/* Records the first failure (later ones only go to stderr) and wakes the
 * waiting main thread. Any thread. */
void bench_run_fail(bench_run_t *run, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The timed section is over: wakes the waiting main thread. Any thread. */
void bench_run_done(bench_run_t *run);

/* Main thread: waits (polling, bounded by the watchdog) until `count` actors
 * have called atomic_fetch_add(&run->ready, 1) in their init. */
int bench_run_await_ready(bench_run_t *run, unsigned count);

/* Main thread: waits for bench_run_done or bench_run_fail, at most
 * timeout_s. Returns 0 when the run ended well, 1 otherwise (failure
 * recorded). */
int bench_run_wait(bench_run_t *run, double timeout_s);

/* Adds the runtime's counters (messages, dead letters, parks, wake-ups). */
void bench_run_json_counters(bench_run_t *run, bench_json_t *j);

/* Stops and frees the runtime. Returns 0, or 1 if stopping failed. */
int bench_run_finish(bench_run_t *run);

/* The first failure, or "" if none. */
const char *bench_run_error(bench_run_t *run);

#endif

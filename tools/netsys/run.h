/* tools/netsys/run.h — what `netsys run`'s files share: the counters the
 * observer actor keeps and the main thread reads, the observer itself, the
 * live status line, and the summary printed at exit.
 *
 * Threads: the observer runs on a scheduler thread and only writes the
 * atomics in run_shared_t (and, when not on a terminal, event lines to
 * `events`); the main thread reads them. The struct belongs to cmd_run.c and
 * outlives the runtime.
 */
#ifndef NETSYS_TOOLS_RUN_H
#define NETSYS_TOOLS_RUN_H

#include "cli.h"

#include <stdatomic.h>

/* Every counter `run` keeps: X(ID, JSON_KEY, SUMMARY_LABEL, STATUS_LABEL).
 * JSON_KEY is the key in the --json summary (NULL: not there), SUMMARY_LABEL
 * its line in the human summary, STATUS_LABEL its field in the live status
 * line (NULL: not shown). A new counter is one line here plus the place that
 * counts it; the status line, both summaries and docs/CLI.md follow. */
#define RUN_COUNTERS(X)                                                                            \
    X(STARTED, "children_started", "children started", NULL)                                       \
    X(RESTARTS, "restarts", "restarts", "restarts")                                                \
    X(EXITS, "exits", "exits", NULL)                                                               \
    X(FAILURES, NULL, "failures", "failures")

typedef enum run_counter {
#define RUN_COUNTER_ENUM(id, json, label, status) RUN_##id,
    RUN_COUNTERS(RUN_COUNTER_ENUM)
#undef RUN_COUNTER_ENUM
        RUN_NCOUNTERS
} run_counter_t;

/* nsys_runtime_request_stop codes. */
#define RUN_WAKE_ROOT_DOWN 1 /* the observer saw the root supervisor exit */

typedef struct run_shared {
    nsys_runtime_t *rt;
    uint64_t start_ns; /* monotonic (uv_hrtime) time the tree began to start */
    FILE *events;      /* one line per supervisor event; NULL: none (a status line instead) */
    _Atomic uint64_t counters[RUN_NCOUNTERS];
    _Atomic uint64_t root; /* the root supervisor, once nsys_supervisor_start returned it */
    atomic_int root_reason;
    atomic_bool root_down; /* set after root_reason */
} run_shared_t;

/* What the status line and the summary show, read at one moment. */
typedef struct run_snapshot {
    uint64_t counters[RUN_NCOUNTERS];
    uint64_t traffic[CLI_NTRAFFIC]; /* the demo pingers' (cli.h) */
    int link_state;                 /* nsys_client_state_t, when traffic[PINGERS] > 0 */
    uint64_t backoff_ms;
    uint64_t uptime_ms;
} run_snapshot_t;

void run_snapshot_take(run_shared_t *sh, run_snapshot_t *out);

/* ---- observer (run_observer.c) ------------------------------------------ */

/* Spawns the observer: it counts NSYS_MSG_SUP_EVENT messages into `sh` and,
 * once told the root's ref with run_observer_watch, monitors it and on its
 * DOWN records the reason and wakes the main thread (RUN_WAKE_ROOT_DOWN). */
int run_observer_spawn(run_shared_t *sh, nsys_ref_t *out);
int run_observer_watch(run_shared_t *sh, nsys_ref_t observer, nsys_ref_t root);

/* ---- status line and summary (run_report.c) ------------------------------ */

/* Starts the live status line on standard output (a terminal): log lines are
 * then routed through a sink that clears the line before printing them. */
void run_status_begin(const char *name);
void run_status_draw(const run_snapshot_t *snap);
/* Clears the line and restores the default log sink. */
void run_status_end(void);

typedef enum run_stop {
    RUN_STOP_SIGNAL = 1,   /* SIGINT or SIGTERM */
    RUN_STOP_DURATION,     /* --duration elapsed */
    RUN_STOP_ROOT_EXIT,    /* the root supervisor exited on its own (gave up) */
    RUN_STOP_START_FAILED, /* nsys_supervisor_start failed */
    RUN_STOP_ERROR         /* the runtime failed under us */
} run_stop_t;

typedef struct run_outcome {
    const char *name; /* the document's name */
    run_stop_t stop;
    int signum;      /* RUN_STOP_SIGNAL */
    int reason;      /* RUN_STOP_ROOT_EXIT: the root's exit reason; START_FAILED/ERROR: error */
    int exit_status; /* what the process returns */
} run_outcome_t;

/* Prints the summary on standard output: a few lines of text, or exactly
 * one JSON line. */
void run_summary_print(const run_outcome_t *out, const run_snapshot_t *snap, bool json);

#endif

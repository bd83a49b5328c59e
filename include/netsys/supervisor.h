/* netsys/supervisor.h — supervisors: actors that start, watch and restart
 * other actors, with Erlang/OTP semantics.
 *
 * A supervisor starts its children in order, each one only after the previous
 * one's init succeeded, and stops them in reverse order. When a child exits
 * it applies the child's restart type and its own strategy; restarts are
 * spaced by a backoff (so a crash loop never spins) and counted against the
 * restart intensity: more than `intensity` restarts within `period_ms` makes
 * the supervisor stop every child and exit with NSYS_EGAVEUP, which its own
 * supervisor handles like any other child failure.
 *
 * Children are linked to their supervisor; a supervisor traps exits. An exit
 * signal from its parent (or from outside the runtime) makes a supervisor
 * stop its children in reverse order and exit with NSYS_REASON_SHUTDOWN.
 *
 * Worker children receive their spec's `args` (a cJSON object, or NULL) as
 * the init argument; it is only valid during init.
 */
#ifndef NETSYS_SUPERVISOR_H
#define NETSYS_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "backoff.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NSYS_EGAVEUP (error.h): the supervisor gave up, restart intensity
 * exceeded (an abnormal reason). */

typedef enum nsys_strategy {
    NSYS_ONE_FOR_ONE = 0,
    NSYS_ONE_FOR_ALL = 1,
    NSYS_REST_FOR_ONE = 2,
    NSYS_SIMPLE_ONE_FOR_ONE = 3
} nsys_strategy_t;

typedef enum nsys_restart {
    NSYS_PERMANENT = 0, /* always restarted */
    NSYS_TRANSIENT = 1, /* restarted only after an abnormal exit */
    NSYS_TEMPORARY = 2  /* never restarted, not even by a sibling's one_for_all */
} nsys_restart_t;

typedef enum nsys_child_type { NSYS_WORKER = 0, NSYS_SUPERVISOR_CHILD = 1 } nsys_child_type_t;

/* shutdown_ms special values; 0 means the default (5000 for workers,
 * infinity for supervisors, as in OTP). */
#define NSYS_SHUTDOWN_BRUTAL (-1)   /* killed at once */
#define NSYS_SHUTDOWN_INFINITY (-2) /* waited for without a bound */

struct nsys_sup_spec;

typedef struct nsys_child_spec {
    const char *id;                     /* required, unique among siblings, <= 63 bytes */
    nsys_child_type_t type;
    const nsys_behaviour_t *behaviour;  /* workers */
    const cJSON *args;                  /* workers: handed to init (copied), may be NULL */
    const struct nsys_sup_spec *supervisor; /* supervisor children */
    nsys_restart_t restart;
    int64_t shutdown_ms;
} nsys_child_spec_t;

/* intensity: 0 means the default 3; NSYS_SUP_NO_RESTARTS allows none. */
#define NSYS_SUP_NO_RESTARTS UINT32_MAX

typedef struct nsys_sup_spec {
    const char *name;       /* in logs and errors; NULL: "root" (nested: the child id) */
    nsys_strategy_t strategy;
    uint32_t intensity;     /* restarts allowed per period; 0: 3 */
    uint64_t period_ms;     /* 0: 5000 */
    nsys_backoff_opts_t backoff; /* zero fields: 10 ms initial, x2, 2 s max, +-20 %, reset 10 s */
    const nsys_child_spec_t *children;
    size_t nchildren;
    const nsys_child_spec_t *child_template; /* simple_one_for_one only */
    nsys_ref_t observer;    /* gets NSYS_MSG_SUP_EVENT messages; propagates to nested supervisors */
} nsys_sup_spec_t;

/* Default supervisor backoff. */
#define NSYS_SUP_BACKOFF_INITIAL_MS 10u
#define NSYS_SUP_BACKOFF_MAX_MS 2000u
#define NSYS_SUP_BACKOFF_MULTIPLIER 2.0
#define NSYS_SUP_BACKOFF_JITTER 0.2
#define NSYS_SUP_BACKOFF_RESET_MS 10000u
#define NSYS_SUP_DEFAULT_INTENSITY 3u
#define NSYS_SUP_DEFAULT_PERIOD_MS 5000u
#define NSYS_SUP_DEFAULT_SHUTDOWN_MS 5000

/* ---- events ------------------------------------------------------------------ */

#define NSYS_MSG_SUP_EVENT 300u /* payload: nsys_sup_event_t */

typedef enum nsys_sup_event_kind {
    NSYS_SUP_CHILD_STARTED = 1,
    NSYS_SUP_CHILD_EXITED = 2,    /* reason: the exit reason */
    NSYS_SUP_CHILD_RESTARTING = 3, /* delay_ms: backoff before the restart */
    NSYS_SUP_GAVE_UP = 4,          /* the supervisor exceeded its intensity */
    NSYS_SUP_START_FAILED = 5      /* a child's init failed while the supervisor started */
} nsys_sup_event_kind_t;

typedef struct nsys_sup_event {
    nsys_sup_event_kind_t kind;
    int reason;
    nsys_ref_t supervisor;
    nsys_ref_t child;
    uint64_t delay_ms;
    uint32_t restarts; /* restarts of this child so far */
    uint64_t time_ns;  /* when it happened: uv_hrtime() on the supervisor's thread */
    char id[64];
} nsys_sup_event_t;

/* ---- starting ---------------------------------------------------------------- */

/* Starts a supervisor from a thread outside the runtime and waits until all
 * its children (recursively) have started, or one failed: then nothing of the
 * tree is left running, the error is returned, and `err` (may be NULL) gets a
 * message naming the child path, e.g. "child 'db' (under 'root'): address in use".
 * The spec is copied; the caller may free it on return. */
int nsys_supervisor_start(nsys_runtime_t *rt, const nsys_sup_spec_t *spec, nsys_ref_t *out,
                          char *err, size_t errlen);

/* From inside an actor: spawns a supervisor linked to the caller; its start
 * result arrives later as an NSYS_MSG_STARTED (nsys_started_t) message, or as
 * an exit signal if it failed. */
int nsys_supervisor_spawn(nsys_ctx_t *ctx, const nsys_sup_spec_t *spec, nsys_ref_t *out);

/* ---- dynamic children (simple_one_for_one) ---------------------------------- */

/* Starts a child from the template with `args` (copied; NULL: template args).
 * Blocking: from a thread outside the runtime only. */
int nsys_supervisor_start_child(nsys_runtime_t *rt, nsys_ref_t sup, const cJSON *args,
                                nsys_ref_t *child);
int nsys_supervisor_terminate_child(nsys_runtime_t *rt, nsys_ref_t sup, nsys_ref_t child);

/* ---- introspection ------------------------------------------------------------ */

typedef struct nsys_child_info {
    char id[64];
    nsys_ref_t ref; /* NSYS_REF_NONE while not running */
    nsys_child_type_t type;
    nsys_restart_t restart;
    uint32_t restarts;
    int running;
} nsys_child_info_t;

typedef struct nsys_child_counts {
    uint32_t specs, active, supervisors, workers;
    uint64_t restarts; /* total restarts performed by this supervisor */
} nsys_child_counts_t;

/* Blocking, from a thread outside the runtime. *out is freed with nsys_free. */
int nsys_supervisor_which_children(nsys_runtime_t *rt, nsys_ref_t sup, nsys_child_info_t **out,
                                   size_t *n);
int nsys_supervisor_count_children(nsys_runtime_t *rt, nsys_ref_t sup, nsys_child_counts_t *out);

/* The same as messages, for actors: send the request type (no payload) to a
 * supervisor; the reply comes back to the sender with the same type and an
 * array of nsys_child_info_t / one nsys_child_counts_t as payload. */
#define NSYS_MSG_SUP_WHICH_CHILDREN 301u
#define NSYS_MSG_SUP_COUNT_CHILDREN 302u
#define NSYS_MSG_SUP_START_CHILD 303u     /* payload: a cJSON tree of args moved with nsys_send_ptr (free_fn cJSON_Delete), or none; reply nsys_sup_reply_t */
#define NSYS_MSG_SUP_TERMINATE_CHILD 304u /* payload: nsys_ref_t; reply nsys_sup_reply_t */

typedef struct nsys_sup_reply {
    int status;
    nsys_ref_t child;
} nsys_sup_reply_t;

#ifdef __cplusplus
}
#endif
#endif

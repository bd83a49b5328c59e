/* tests/common/sup_worker.h — a scripted worker and an event log for
 * supervisor tests.
 *
 * The worker ("test.sup_worker") takes a cJSON object as its init args:
 *   "id": "b"              the name it records itself under (required)
 *   "fail_init": -5        init returns this code (records SW_INIT_FAILED)
 *   "trap": true           traps exits (a shutdown arrives as NSYS_MSG_EXIT)
 *   "ignore_stop": true    with trap: ignores NSYS_MSG_EXIT (only a kill ends it)
 *   "stop_delay_ms": N     with trap: exits N ms after NSYS_MSG_EXIT, with its reason
 *   "crash_after_ms": N    fails N ms after init, with "crash_reason" (default -5)
 * and understands these messages from the test:
 *   SW_MSG_CRASH      payload int: handle returns it (an abnormal exit)
 *   SW_MSG_EXIT_WITH  payload int: nsys_exit(ctx, value) (0: a normal exit)
 *
 * Everything it does goes into one global, thread-safe log (sw_log_*) that
 * the test thread waits on with a bound: init (id, ref, parent, time),
 * terminate (id, reason, time), trapped exit signals. An observer probe (a
 * t_probe_t whose hook is sw_observer_hook) adds the supervisor events it
 * receives (NSYS_MSG_SUP_EVENT) to the same log, in full.
 *
 * A child's current ref is the ref of the latest SW_INIT recorded for its
 * id (sw_ref), which is how a test reaches a child that was restarted.
 *
 * Not for: anything but tests. Never cr_assert from inside the worker.
 */
#ifndef NSYS_TESTS_COMMON_SUP_WORKER_H
#define NSYS_TESTS_COMMON_SUP_WORKER_H

#include "common/probe.h"
#include "common/wait.h"

#include <cjson/cJSON.h>
#include <netsys/netsys.h>

#define SW_MSG_CRASH (NSYS_MSG_USER + 0x200u)
#define SW_MSG_EXIT_WITH (NSYS_MSG_USER + 0x201u)

#define SW_DEFAULT_CRASH_REASON (-5)

typedef enum sw_kind {
    SW_INIT = 1,        /* init succeeded */
    SW_INIT_FAILED = 2, /* init returned `reason` */
    SW_TERM = 3,        /* terminate ran with `reason` */
    SW_EXIT_SIGNAL = 4, /* a trapped NSYS_MSG_EXIT with `reason` arrived */
    SW_EVENT = 5        /* a supervisor event (ev; id and ref copied from it) */
} sw_kind_t;

typedef struct sw_rec {
    sw_kind_t kind;
    char id[64];
    nsys_ref_t ref;    /* the worker; for SW_EVENT the event's child */
    nsys_ref_t parent; /* SW_INIT: the worker's parent (its supervisor) */
    int reason;
    uint64_t t_ns; /* monotonic time of recording */
    nsys_sup_event_t ev;
} sw_rec_t;

typedef struct sw_log {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sw_rec_t *v;
    size_t n, cap;
    bool oom;
    cJSON **json; /* args documents made by sw_json, freed by sw_log_end */
    size_t njson, capjson;
} sw_log_t;

static sw_log_t sw_log_g;

/* Call once before a test uses the log (a fixture's init), and sw_log_end
 * after the runtime is freed. */
static inline void sw_log_begin(void)
{
    memset(&sw_log_g, 0, sizeof(sw_log_g));
    pthread_mutex_init(&sw_log_g.mu, NULL);
    t_cond_init(&sw_log_g.cv);
}

static inline void sw_log_end(void)
{
    for (size_t i = 0; i < sw_log_g.njson; i++)
        cJSON_Delete(sw_log_g.json[i]);
    free(sw_log_g.json);
    free(sw_log_g.v);
    pthread_mutex_destroy(&sw_log_g.mu);
    pthread_cond_destroy(&sw_log_g.cv);
    memset(&sw_log_g, 0, sizeof(sw_log_g));
}

/* Parses `text` into a document that lives until sw_log_end; NULL if the
 * text is not JSON (the caller asserts). */
static inline const cJSON *sw_json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        return NULL;
    pthread_mutex_lock(&sw_log_g.mu);
    if (sw_log_g.njson == sw_log_g.capjson) {
        size_t cap = sw_log_g.capjson ? sw_log_g.capjson * 2 : 16;
        cJSON **p = realloc(sw_log_g.json, cap * sizeof(*p));
        if (p == NULL) {
            pthread_mutex_unlock(&sw_log_g.mu);
            cJSON_Delete(j);
            return NULL;
        }
        sw_log_g.json = p;
        sw_log_g.capjson = cap;
    }
    sw_log_g.json[sw_log_g.njson++] = j;
    pthread_mutex_unlock(&sw_log_g.mu);
    return j;
}

static inline void sw_push(const sw_rec_t *rec)
{
    pthread_mutex_lock(&sw_log_g.mu);
    if (sw_log_g.n == sw_log_g.cap) {
        size_t cap = sw_log_g.cap ? sw_log_g.cap * 2 : 256;
        sw_rec_t *v = realloc(sw_log_g.v, cap * sizeof(*v));
        if (v == NULL) {
            sw_log_g.oom = true;
            pthread_mutex_unlock(&sw_log_g.mu);
            return;
        }
        sw_log_g.v = v;
        sw_log_g.cap = cap;
    }
    sw_log_g.v[sw_log_g.n++] = *rec;
    pthread_cond_broadcast(&sw_log_g.cv);
    pthread_mutex_unlock(&sw_log_g.mu);
}

static inline void sw_record(sw_kind_t kind, const char *id, nsys_ref_t ref, nsys_ref_t parent,
                             int reason)
{
    sw_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    snprintf(rec.id, sizeof(rec.id), "%s", id);
    rec.ref = ref;
    rec.parent = parent;
    rec.reason = reason;
    rec.t_ns = t_now_ns();
    sw_push(&rec);
}

/* ---- queries (any thread) ---------------------------------------------------- */

/* A filter: kind, id (NULL: any), event kind for SW_EVENT (0: any), ref
 * (the worker, or the event's child; NSYS_REF_NONE: any). */
typedef struct sw_match {
    sw_kind_t kind;
    const char *id;
    nsys_sup_event_kind_t ev;
    nsys_ref_t ref;
} sw_match_t;

static inline bool sw_matches(const sw_rec_t *r, sw_match_t m)
{
    return r->kind == m.kind && (m.id == NULL || strcmp(r->id, m.id) == 0) &&
           (m.kind != SW_EVENT || m.ev == 0 || r->ev.kind == m.ev) &&
           (m.ref == NSYS_REF_NONE || r->ref == m.ref);
}

static inline size_t sw_count_locked(sw_match_t m, size_t from)
{
    size_t c = 0;
    for (size_t i = from; i < sw_log_g.n; i++)
        c += sw_matches(&sw_log_g.v[i], m);
    return c;
}

/* Number of records matching m at index >= from. */
static inline size_t sw_count_from(sw_match_t m, size_t from)
{
    pthread_mutex_lock(&sw_log_g.mu);
    size_t c = sw_count_locked(m, from);
    pthread_mutex_unlock(&sw_log_g.mu);
    return c;
}

static inline size_t sw_count(sw_kind_t kind, const char *id)
{
    return sw_count_from((sw_match_t){kind, id, 0, NSYS_REF_NONE}, 0);
}

static inline size_t sw_count_events(nsys_sup_event_kind_t ev, const char *id)
{
    return sw_count_from((sw_match_t){SW_EVENT, id, ev, NSYS_REF_NONE}, 0);
}

/* Waits until at least n records at index >= from match m; true if so. */
static inline bool sw_wait_from(sw_match_t m, size_t from, size_t n, uint64_t timeout_ms)
{
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&sw_log_g.mu);
    int rc = 0;
    while (sw_count_locked(m, from) < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&sw_log_g.cv, &sw_log_g.mu, &dl);
    bool ok = sw_count_locked(m, from) >= n;
    pthread_mutex_unlock(&sw_log_g.mu);
    return ok;
}

static inline bool sw_wait(sw_kind_t kind, const char *id, size_t n, uint64_t timeout_ms)
{
    return sw_wait_from((sw_match_t){kind, id, 0, NSYS_REF_NONE}, 0, n, timeout_ms);
}

static inline bool sw_wait_event(nsys_sup_event_kind_t ev, const char *id, size_t n,
                                 uint64_t timeout_ms)
{
    return sw_wait_from((sw_match_t){SW_EVENT, id, ev, NSYS_REF_NONE}, 0, n, timeout_ms);
}

/* The k-th (0-based) record matching m, from index 0; false if none. */
static inline bool sw_nth(sw_match_t m, size_t k, sw_rec_t *out)
{
    bool found = false;
    pthread_mutex_lock(&sw_log_g.mu);
    for (size_t i = 0; i < sw_log_g.n; i++) {
        if (sw_matches(&sw_log_g.v[i], m)) {
            if (k == 0) {
                *out = sw_log_g.v[i];
                found = true;
                break;
            }
            k--;
        }
    }
    pthread_mutex_unlock(&sw_log_g.mu);
    return found;
}

/* The latest record matching m; false if none. */
static inline bool sw_latest(sw_match_t m, sw_rec_t *out)
{
    bool found = false;
    pthread_mutex_lock(&sw_log_g.mu);
    for (size_t i = sw_log_g.n; i-- > 0;) {
        if (sw_matches(&sw_log_g.v[i], m)) {
            *out = sw_log_g.v[i];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&sw_log_g.mu);
    return found;
}

/* The ref of the latest SW_INIT of `id`, or NSYS_REF_NONE. */
static inline nsys_ref_t sw_ref(const char *id)
{
    sw_rec_t r;
    return sw_latest((sw_match_t){SW_INIT, id, 0, NSYS_REF_NONE}, &r) ? r.ref : NSYS_REF_NONE;
}

/* Index of the next record: pass it as `from` to look only at what follows. */
static inline size_t sw_mark(void)
{
    pthread_mutex_lock(&sw_log_g.mu);
    size_t n = sw_log_g.n;
    pthread_mutex_unlock(&sw_log_g.mu);
    return n;
}

/* Writes the starts and stops recorded at index >= from as "+a -b +b",
 * "+id" for an init, "-id" for a terminate, in the order they happened. */
static inline void sw_trace(size_t from, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    pthread_mutex_lock(&sw_log_g.mu);
    for (size_t i = from; i < sw_log_g.n && used < len; i++) {
        const sw_rec_t *r = &sw_log_g.v[i];
        if (r->kind != SW_INIT && r->kind != SW_TERM)
            continue;
        int w = snprintf(buf + used, len - used, "%s%c%s", used ? " " : "",
                         r->kind == SW_INIT ? '+' : '-', r->id);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    pthread_mutex_unlock(&sw_log_g.mu);
}

/* ---- driving a worker from the test thread ------------------------------------ */

/* Makes the current incarnation of `id` fail with `reason` (handle returns it). */
static inline int sw_crash(nsys_runtime_t *rt, const char *id, int reason)
{
    return nsys_send(rt, sw_ref(id), SW_MSG_CRASH, &reason, sizeof(reason));
}

/* Makes the current incarnation of `id` exit with `reason` via nsys_exit. */
static inline int sw_exit_with(nsys_runtime_t *rt, const char *id, int reason)
{
    return nsys_send(rt, sw_ref(id), SW_MSG_EXIT_WITH, &reason, sizeof(reason));
}

/* ---- the worker behaviour ------------------------------------------------------- */

typedef struct sw_state {
    char id[64];
    bool ignore_stop;
    int64_t stop_delay_ms;
} sw_state_t;

static inline int64_t sw_arg_int(const cJSON *args, const char *key, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static inline bool sw_arg_bool(const cJSON *args, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(args, key));
}

static inline int sw_b_init(nsys_ctx_t *ctx, void *state, void *args)
{
    sw_state_t *st = state;
    const cJSON *a = args;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
    snprintf(st->id, sizeof(st->id), "%s", cJSON_IsString(id) ? id->valuestring : "?");
    int fail = (int)sw_arg_int(a, "fail_init", 0);
    if (fail != 0) {
        sw_record(SW_INIT_FAILED, st->id, nsys_self(ctx), nsys_parent(ctx), fail);
        return fail;
    }
    if (sw_arg_bool(a, "trap"))
        nsys_trap_exit(ctx, true);
    st->ignore_stop = sw_arg_bool(a, "ignore_stop");
    st->stop_delay_ms = sw_arg_int(a, "stop_delay_ms", 0);
    int64_t crash_after = sw_arg_int(a, "crash_after_ms", -1);
    if (crash_after >= 0) {
        int reason = (int)sw_arg_int(a, "crash_reason", SW_DEFAULT_CRASH_REASON);
        int rc = nsys_send_after(ctx, NSYS_REF_NONE, (uint64_t)crash_after, SW_MSG_CRASH, &reason,
                                 sizeof(reason), NULL);
        if (rc != 0)
            return rc;
    }
    sw_record(SW_INIT, st->id, nsys_self(ctx), nsys_parent(ctx), 0);
    return 0;
}

static inline int sw_b_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    sw_state_t *st = state;
    int v = 0;
    if (msg->size == sizeof(v))
        memcpy(&v, msg->data, sizeof(v));
    switch (msg->type) {
    case SW_MSG_CRASH:
        return v;
    case SW_MSG_EXIT_WITH:
        nsys_exit(ctx, v);
        return 0;
    case NSYS_MSG_EXIT: {
        nsys_exit_t ex;
        memcpy(&ex, msg->data, sizeof(ex));
        sw_record(SW_EXIT_SIGNAL, st->id, nsys_self(ctx), ex.from, ex.reason);
        if (st->ignore_stop)
            return 0;
        if (st->stop_delay_ms > 0)
            return nsys_send_after(ctx, NSYS_REF_NONE, (uint64_t)st->stop_delay_ms,
                                   SW_MSG_EXIT_WITH, &ex.reason, sizeof(ex.reason), NULL);
        nsys_exit(ctx, ex.reason);
        return 0;
    }
    default:
        return 0;
    }
}

static inline void sw_b_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    sw_state_t *st = state;
    sw_record(SW_TERM, st->id, nsys_self(ctx), NSYS_REF_NONE, reason);
}

static inline const nsys_behaviour_t *sw_behaviour(void)
{
    static const nsys_behaviour_t b = {
        .name = "test.sup_worker",
        .state_size = sizeof(sw_state_t),
        .init = sw_b_init,
        .handle = sw_b_handle,
        .terminate = sw_b_terminate,
    };
    return &b;
}

/* ---- the observer ------------------------------------------------------------------ */

/* A t_probe_t hook that copies supervisor events into the log in full. */
static inline int sw_observer_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)ctx;
    (void)p;
    if (msg->type != NSYS_MSG_SUP_EVENT || msg->size != sizeof(nsys_sup_event_t))
        return 0;
    sw_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.kind = SW_EVENT;
    memcpy(&rec.ev, msg->data, sizeof(rec.ev));
    snprintf(rec.id, sizeof(rec.id), "%s", rec.ev.id);
    rec.ref = rec.ev.child;
    rec.reason = rec.ev.reason;
    rec.t_ns = t_now_ns();
    sw_push(&rec);
    return 0;
}

#endif

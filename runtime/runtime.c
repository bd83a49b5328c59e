/* runtime/runtime.c — creating, waiting on, stopping and freeing a runtime,
 * and its metrics. The stop has two phases: an orderly one (top-level actors
 * get a shutdown exit signal, newest first, each awaited) and a forced one
 * (each scheduler terminates what is left and closes its loop). */
#include "internal.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>


#define DEFAULT_BATCH 64u
#define DEFAULT_SPIN_US 20
#define DEFAULT_SHUTDOWN_MS 5000u
#define DEFAULT_MAX_ACTORS (1u << 24)

void nsys_free(void *ptr) { free(ptr); }

static unsigned cpu_count(void)
{
    unsigned n = uv_available_parallelism();
    return n > 0 ? n : 1;
}

/* A write to a socket the peer has closed raises SIGPIPE, whose default
 * action kills the process; a network runtime wants EPIPE instead (as Redis
 * and Node do). A handler the program installed itself is left alone. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int nsys_runtime_new(const nsys_runtime_opts_t *opts, nsys_runtime_t **out)
{
    static const nsys_runtime_opts_t defaults = NSYS_RUNTIME_OPTS_DEFAULTS;
    if (out == NULL)
        return NSYS_EINVAL;
    const nsys_runtime_opts_t *o = opts != NULL ? opts : &defaults;
    if (o->schedulers > 1024 || o->batch > 1u << 20 || o->spin_us > 1000000)
        return NSYS_EINVAL;
    nsys__log_setup();
    ignore_sigpipe();

    nsys_runtime_t *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return NSYS_ENOMEM;
    rt->nsched = o->schedulers ? o->schedulers : cpu_count();
    rt->batch = o->batch ? o->batch : DEFAULT_BATCH;
    rt->spin_ns = o->spin_us < 0 ? 0 : (int64_t)(o->spin_us ? o->spin_us : DEFAULT_SPIN_US) * 1000;
    rt->shutdown_timeout_ms = o->shutdown_timeout_ms ? o->shutdown_timeout_ms : DEFAULT_SHUTDOWN_MS;
    uint32_t cap = o->max_actors ? o->max_actors : DEFAULT_MAX_ACTORS;
    if (cap > UINT32_MAX - 1)
        cap = UINT32_MAX - 1;

    int rc = nsys__table_init(&rt->table, cap + 1); /* slot 0 is never used */
    if (rc != 0) {
        free(rt);
        return rc;
    }
    rc = nsys__registry_new(&rt->registry);
    if (rc != 0) {
        nsys__table_free(&rt->table);
        free(rt);
        return rc;
    }
    uv_mutex_init(&rt->pool.mu);
    uv_mutex_init(&rt->top_mu);
    uv_mutex_init(&rt->wait_mu);
    uv_cond_init(&rt->wait_cond);
    uv_barrier_init(&rt->force_barrier, rt->nsched + 1);
    uv_barrier_init(&rt->drained_barrier, rt->nsched);
    rt->scheds = calloc(rt->nsched, sizeof *rt->scheds);
    if (rt->scheds == NULL) {
        rt->nsched = 0;
        nsys_runtime_free(rt);
        return NSYS_ENOMEM;
    }
    for (unsigned i = 0; i < rt->nsched; i++) {
        rc = nsys__sched_start(rt, &rt->scheds[i], i);
        if (rc != 0) {
            /* Stop the ones that run; the barrier counts only them. */
            unsigned started = i;
            rt->nsched = started;
            uv_barrier_destroy(&rt->force_barrier);
            uv_barrier_init(&rt->force_barrier, started + 1);
            uv_barrier_destroy(&rt->drained_barrier);
            uv_barrier_init(&rt->drained_barrier, started > 0 ? started : 1);
            nsys_runtime_free(rt);
            return rc;
        }
    }
    *out = rt;
    return 0;
}

unsigned nsys_runtime_schedulers(const nsys_runtime_t *rt) { return rt != NULL ? rt->nsched : 0; }

/* ---- waiting ------------------------------------------------------------------ */

static uint64_t alive_count(nsys_runtime_t *rt)
{
    uint64_t sp = atomic_load_explicit(&rt->spawned, memory_order_acquire);
    uint64_t ex = atomic_load_explicit(&rt->exited, memory_order_acquire);
    return sp > ex ? sp - ex : 0;
}

void nsys__notify_exit(nsys_runtime_t *rt)
{
    if (atomic_load_explicit(&rt->exit_watch, memory_order_acquire)) {
        uv_mutex_lock(&rt->wait_mu);
        uv_cond_broadcast(&rt->wait_cond);
        uv_mutex_unlock(&rt->wait_mu);
    }
    if (alive_count(rt) == 0) {
        uv_mutex_lock(&rt->wait_mu);
        if (rt->waiter != NULL)
            uv_async_send(rt->waiter);
        uv_mutex_unlock(&rt->wait_mu);
    }
}

int nsys_runtime_request_stop(nsys_runtime_t *rt, int code)
{
    if (rt == NULL)
        return NSYS_EINVAL;
    uv_mutex_lock(&rt->wait_mu);
    rt->stop_requested = 1;
    rt->stop_code = code;
    if (rt->waiter != NULL)
        uv_async_send(rt->waiter);
    uv_mutex_unlock(&rt->wait_mu);
    return 0;
}

typedef struct waitctx {
    nsys_runtime_t *rt;
    unsigned flags;
    nsys_wake_t why;
    int code;
    uv_async_t async;
    uv_timer_t timer;
} waitctx_t;

/* Under wait_mu. */
static bool wait_done(waitctx_t *w)
{
    if (w->why != 0)
        return true;
    if (w->rt->stop_requested) {
        w->rt->stop_requested = 0;
        w->why = NSYS_WAKE_REQUEST;
        w->code = w->rt->stop_code;
    } else if ((w->flags & NSYS_WAIT_NO_ACTORS) && alive_count(w->rt) == 0) {
        w->why = NSYS_WAKE_NO_ACTORS;
    }
    return w->why != 0;
}

static void wait_on_async(uv_async_t *h)
{
    waitctx_t *w = h->data;
    uv_mutex_lock(&w->rt->wait_mu);
    bool done = wait_done(w);
    uv_mutex_unlock(&w->rt->wait_mu);
    if (done)
        uv_stop(h->loop);
}

/* The signal watchers outlive each wait (see nsys_runtime_wait): a signal
 * that lands while no wait wants it is kept for the next one that does. */
static void wait_on_signal(uv_signal_t *h, int signum)
{
    nsys_runtime_t *rt = h->data;
    waitctx_t *w = rt->cur_wait;
    if (w != NULL && (w->flags & NSYS_WAIT_SIGNALS)) {
        if (w->why == 0) {
            w->why = NSYS_WAKE_SIGNAL;
            w->code = signum;
        }
        uv_stop(h->loop);
    } else {
        rt->pending_signal = signum;
    }
}

static void wait_on_timer(uv_timer_t *h)
{
    waitctx_t *w = h->data;
    if (w->why == 0)
        w->why = NSYS_WAKE_TIMEOUT;
    uv_stop(h->loop);
}

static int start_signals(nsys_runtime_t *rt)
{
    uv_signal_t *sig[2] = {&rt->sigint, &rt->sigterm};
    int nums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        int rc = uv_signal_init(&rt->wait_loop, sig[i]);
        if (rc == 0) {
            sig[i]->data = rt;
            rc = uv_signal_start(sig[i], wait_on_signal, nums[i]);
        }
        if (rc != 0)
            return rc;
        uv_unref((uv_handle_t *)sig[i]); /* they never keep a wait's loop running */
    }
    rt->signals_on = 1;
    return 0;
}

int nsys_runtime_wait(nsys_runtime_t *rt, unsigned flags, uint64_t timeout_ms, nsys_wake_t *why,
                      int *code)
{
    if (rt == NULL || nsys__tls_sched != NULL)
        return NSYS_EINVAL;
    if (atomic_load(&rt->state) >= NSYS__RT_STOPPED)
        return NSYS_ESTOPPED;
    uv_mutex_lock(&rt->wait_mu);
    bool busy = rt->waiting;
    rt->waiting = 1;
    uv_mutex_unlock(&rt->wait_mu);
    if (busy)
        return NSYS_EBUSY;

    /* One loop per runtime for waits, made on the first: the signal watchers
     * stay on it, so SIGINT/SIGTERM never fall back to their default action
     * between two waits. */
    int rc = 0;
    if (!rt->wait_loop_ready) {
        rc = uv_loop_init(&rt->wait_loop);
        rt->wait_loop_ready = rc == 0;
    }
    if (rc == 0 && (flags & NSYS_WAIT_SIGNALS) && !rt->signals_on)
        rc = start_signals(rt);
    if (rc != 0) {
        uv_mutex_lock(&rt->wait_mu);
        rt->waiting = 0;
        uv_mutex_unlock(&rt->wait_mu);
        return rc;
    }

    waitctx_t w = {.rt = rt, .flags = flags};
    uv_async_init(&rt->wait_loop, &w.async, wait_on_async);
    w.async.data = &w;
    if (timeout_ms > 0) {
        uv_timer_init(&rt->wait_loop, &w.timer);
        w.timer.data = &w;
        uv_timer_start(&w.timer, wait_on_timer, timeout_ms, 0);
    }
    if ((flags & NSYS_WAIT_SIGNALS) && rt->pending_signal != 0) {
        w.why = NSYS_WAKE_SIGNAL;
        w.code = rt->pending_signal;
        rt->pending_signal = 0;
    }
    rt->cur_wait = &w;

    uv_mutex_lock(&rt->wait_mu);
    rt->waiter = &w.async;
    bool done = wait_done(&w);
    uv_mutex_unlock(&rt->wait_mu);
    if (!done)
        uv_run(&rt->wait_loop, UV_RUN_DEFAULT);

    uv_mutex_lock(&rt->wait_mu);
    rt->waiter = NULL;
    uv_mutex_unlock(&rt->wait_mu);
    uv_close((uv_handle_t *)&w.async, NULL);
    if (timeout_ms > 0)
        uv_close((uv_handle_t *)&w.timer, NULL);
    uv_run(&rt->wait_loop, UV_RUN_DEFAULT); /* the closes; signals are unref'd */
    rt->cur_wait = NULL;
    uv_mutex_lock(&rt->wait_mu);
    rt->waiting = 0;
    uv_mutex_unlock(&rt->wait_mu);
    if (why != NULL)
        *why = w.why;
    if (code != NULL)
        *code = w.code;
    return 0;
}

/* ---- stopping -------------------------------------------------------------------- */

/* Orderly phase: each top-level actor, newest first, is asked to shut down and
 * awaited until the shared deadline. */
static void stop_top_level(nsys_runtime_t *rt)
{
    uv_mutex_lock(&rt->top_mu);
    size_t n = rt->ntop;
    nsys_ref_t *refs = n ? malloc(n * sizeof *refs) : NULL;
    if (refs != NULL)
        memcpy(refs, rt->top, n * sizeof *refs);
    uv_mutex_unlock(&rt->top_mu);
    if (refs == NULL)
        return;
    uint64_t deadline = uv_hrtime() + rt->shutdown_timeout_ms * 1000000u;
    atomic_store_explicit(&rt->exit_watch, 1, memory_order_seq_cst);
    for (size_t i = n; i-- > 0;) {
        if (!nsys_is_alive(rt, refs[i]))
            continue;
        nsys_exit_signal(rt, refs[i], NSYS_REASON_SHUTDOWN);
        uv_mutex_lock(&rt->wait_mu);
        while (nsys_is_alive(rt, refs[i])) {
            uint64_t now = uv_hrtime();
            if (now >= deadline)
                break;
            uv_cond_timedwait(&rt->wait_cond, &rt->wait_mu, deadline - now);
        }
        uv_mutex_unlock(&rt->wait_mu);
        if (uv_hrtime() >= deadline) {
            NSYS_LOG(NSYS_LOG_WARN, "shutdown: actors still alive after %llu ms; terminating them",
                     (unsigned long long)rt->shutdown_timeout_ms);
            break;
        }
    }
    atomic_store_explicit(&rt->exit_watch, 0, memory_order_seq_cst);
    free(refs);
}

int nsys_runtime_stop(nsys_runtime_t *rt)
{
    if (rt == NULL)
        return NSYS_EINVAL;
    if (nsys__tls_sched != NULL && nsys__tls_sched->rt == rt)
        return NSYS_EBUSY;
    int expected = NSYS__RT_RUNNING;
    if (!atomic_compare_exchange_strong(&rt->state, &expected, NSYS__RT_STOPPING))
        return 0; /* already stopping or stopped: harmless */
    stop_top_level(rt);

    /* Forced phase: shut the gate, wait for outside callers to leave it. */
    atomic_store_explicit(&rt->state, NSYS__RT_FORCE, memory_order_seq_cst);
    while (atomic_load_explicit(&rt->ext_inflight, memory_order_seq_cst) != 0)
        uv_sleep(0);
    for (unsigned i = 0; i < rt->nsched; i++) {
        atomic_store_explicit(&rt->scheds[i].phase, NSYS__PHASE_FORCE, memory_order_seq_cst);
        uv_async_send(&rt->scheds[i].async);
    }
    uv_barrier_wait(&rt->force_barrier);
    for (unsigned i = 0; i < rt->nsched; i++)
        uv_thread_join(&rt->scheds[i].thread);
    atomic_store_explicit(&rt->state, NSYS__RT_STOPPED, memory_order_seq_cst);
    return 0;
}

void nsys_runtime_free(nsys_runtime_t *rt)
{
    if (rt == NULL)
        return;
    nsys_runtime_stop(rt);
    if (rt->table.chunks != NULL && rt->table.high > 1)
        for (uint32_t i = 1; i < rt->table.high; i++) {
            nsys__slot_t *s = nsys__table_slot(&rt->table, i);
            if (s != NULL && (atomic_load(&s->word) & (NSYS__ALIVE | NSYS__PINS_MASK)) != 0)
                NSYS_LOG(NSYS_LOG_ERROR, "runtime free: slot %u still in use", i);
        }
    if (rt->wait_loop_ready) {
        if (rt->signals_on) {
            uv_close((uv_handle_t *)&rt->sigint, NULL);
            uv_close((uv_handle_t *)&rt->sigterm, NULL);
        }
        uv_run(&rt->wait_loop, UV_RUN_DEFAULT);
        uv_loop_close(&rt->wait_loop);
    }
    nsys__table_free(&rt->table);
    nsys__registry_free(rt->registry);
    nsys__pool_global_free(&rt->pool);
    uv_mutex_destroy(&rt->pool.mu);
    uv_mutex_destroy(&rt->top_mu);
    uv_mutex_destroy(&rt->wait_mu);
    uv_cond_destroy(&rt->wait_cond);
    uv_barrier_destroy(&rt->force_barrier);
    uv_barrier_destroy(&rt->drained_barrier);
    free(rt->top);
    free(rt->scheds);
    free(rt);
}

/* ---- metrics -------------------------------------------------------------------- */

int nsys_metrics_get(nsys_runtime_t *rt, nsys_metrics_t *out)
{
    if (rt == NULL || out == NULL)
        return NSYS_EINVAL;
    memset(out, 0, sizeof *out);
    out->messages_sent = atomic_load_explicit(&rt->ext_sent, memory_order_relaxed);
    for (unsigned i = 0; i < rt->nsched; i++) {
        out->messages_sent += nsys__counter_get(&rt->scheds[i].sent);
        out->messages_handled += nsys__counter_get(&rt->scheds[i].handled);
    }
    out->dead_letters = atomic_load_explicit(&rt->dead_letters, memory_order_relaxed);
    out->actors_exited = atomic_load_explicit(&rt->exited, memory_order_acquire);
    out->actors_spawned = atomic_load_explicit(&rt->spawned, memory_order_acquire);
    out->actors_alive =
        out->actors_spawned > out->actors_exited ? out->actors_spawned - out->actors_exited : 0;
    out->actors_failed = atomic_load_explicit(&rt->failed, memory_order_relaxed);
    out->schedulers = rt->nsched;
    return 0;
}

int nsys_sched_metrics_get(nsys_runtime_t *rt, unsigned sched, nsys_sched_metrics_t *out)
{
    if (rt == NULL || out == NULL || sched >= rt->nsched)
        return NSYS_EINVAL;
    nsys__sched_t *s = &rt->scheds[sched];
    out->messages_handled = nsys__counter_get(&s->handled);
    out->ready_depth = nsys__counter_get(&s->ready_depth);
    out->parks = nsys__counter_get(&s->parks);
    out->wakeups = nsys__counter_get(&s->wakeups);
    out->actors = nsys__counter_get(&s->nactors);
    return 0;
}

int nsys_metrics_json(nsys_runtime_t *rt, char **json)
{
    if (rt == NULL || json == NULL)
        return NSYS_EINVAL;
    nsys_metrics_t m;
    nsys_metrics_get(rt, &m);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root != NULL ? cJSON_AddArrayToObject(root, "schedulers") : NULL;
    if (arr == NULL) {
        cJSON_Delete(root);
        return NSYS_ENOMEM;
    }
    cJSON_AddNumberToObject(root, "messages_sent", (double)m.messages_sent);
    cJSON_AddNumberToObject(root, "messages_handled", (double)m.messages_handled);
    cJSON_AddNumberToObject(root, "dead_letters", (double)m.dead_letters);
    cJSON_AddNumberToObject(root, "actors_alive", (double)m.actors_alive);
    cJSON_AddNumberToObject(root, "actors_spawned", (double)m.actors_spawned);
    cJSON_AddNumberToObject(root, "actors_exited", (double)m.actors_exited);
    cJSON_AddNumberToObject(root, "actors_failed", (double)m.actors_failed);
    for (unsigned i = 0; i < rt->nsched; i++) {
        nsys_sched_metrics_t sm;
        nsys_sched_metrics_get(rt, i, &sm);
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            break;
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddNumberToObject(o, "messages_handled", (double)sm.messages_handled);
        cJSON_AddNumberToObject(o, "ready_depth", (double)sm.ready_depth);
        cJSON_AddNumberToObject(o, "parks", (double)sm.parks);
        cJSON_AddNumberToObject(o, "wakeups", (double)sm.wakeups);
        cJSON_AddNumberToObject(o, "actors", (double)sm.actors);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (s == NULL)
        return NSYS_ENOMEM;
    /* cJSON allocates with malloc by default, which nsys_free matches. */
    *json = s;
    return 0;
}

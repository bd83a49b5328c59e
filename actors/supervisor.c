/* actors/supervisor.c — the supervisor actor (Erlang/OTP semantics).
 *
 * A supervisor is an ordinary actor that traps exits. Everything it does is a
 * plan: a queue of steps (stop a child, start a child, wait out a backoff,
 * remove a child, exit) executed one at a time; each step completes on an
 * event (a child's exit, its start acknowledgement, a timer). A new decision
 * (a crash, a shutdown request, giving up) appends to the plan or replaces it,
 * and events that arrive for an abandoned step only update the child's state.
 *
 * Not for: how children are described in JSON (config/), nor what they do.
 */
#include <netsys/log.h>
#include <netsys/supervisor.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Private messages (netsys module range). */
#define MSG_TICK 310u        /* payload: uint64_t token of a delay step */
#define MSG_KILL_TIMER 311u  /* payload: uint64_t child serial */
#define MSG_RESTART 312u     /* payload: uint64_t child serial (one_for_one timers) */
#define MSG_START_FAILED 313u /* payload: NUL-terminated text, child supervisor -> parent */

#define ERR_TEXT_MAX 512

typedef enum cstate { C_STOPPED, C_WAITING, C_STARTING, C_RUNNING, C_STOPPING } cstate_t;

typedef struct child {
    uint64_t serial;
    char id[64];
    nsys_child_type_t type;
    const nsys_behaviour_t *beh;
    cJSON *args;
    nsys_sup_spec_t *sup; /* owned clone, supervisor children */
    nsys_restart_t restart;
    int64_t shutdown_ms;
    nsys_ref_t ref;
    cstate_t st;
    uint32_t restarts;
    nsys_backoff_t backoff;
    nsys_timer_t kill_timer;
    nsys_timer_t restart_timer;
    int dynamic;
    int removed;      /* gone from the children array; freed when no step refers to it */
    int steps;        /* plan steps referring to it */
    int start_failed; /* its last start attempt failed */
    nsys_ref_t reply_to; /* a start_child/terminate_child caller waiting for the outcome */
    uint32_t reply_type;
    char fail_text[ERR_TEXT_MAX]; /* detail from a child supervisor's failed start */
} child_t;

typedef enum step_kind { S_STOP, S_START, S_DELAY, S_REMOVE, S_EXIT, S_ACK } step_kind_t;

typedef struct step {
    step_kind_t kind;
    child_t *c;
    uint64_t arg; /* delay ms, or exit reason */
    uint64_t token;
    int begun;
    int ticked;
} step_t;

typedef enum phase { P_STARTING, P_RUNNING, P_SHUTTING_DOWN } phase_t;

typedef struct start_rv start_rv_t;

typedef struct sup_args {
    nsys_sup_spec_t *spec; /* owned */
    char *path;            /* owned */
    start_rv_t *rv;        /* root started from outside, or NULL */
    int parent_is_sup;     /* tell the parent why a start failed (MSG_START_FAILED) */
} sup_args_t;

typedef struct sup {
    nsys_sup_spec_t *spec;
    char *path;
    start_rv_t *rv;
    child_t **children;
    size_t n, cap;
    uint64_t next_serial;
    step_t *plan;
    size_t plan_n, plan_cap, plan_head;
    uint64_t next_token;
    uint64_t plan_epoch; /* bumped whenever the plan is replaced */
    uint64_t *restart_times; /* ring of the latest intensity+1 restarts */
    size_t rt_count, rt_next, rt_cap;
    uint32_t intensity;
    uint64_t period_ms;
    uint64_t total_restarts;
    phase_t phase;
    int parent_is_sup;
    nsys_ref_t observer;
    char err[ERR_TEXT_MAX];
} sup_t;

/* ---- the rendezvous for nsys_supervisor_start ------------------------------ */

struct start_rv {
    uv_mutex_t mu;
    uv_cond_t cond;
    int refs;
    int done;
    int status;
    char err[ERR_TEXT_MAX];
};

static void rv_release(start_rv_t *rv)
{
    uv_mutex_lock(&rv->mu);
    int left = --rv->refs;
    uv_mutex_unlock(&rv->mu);
    if (left == 0) {
        uv_mutex_destroy(&rv->mu);
        uv_cond_destroy(&rv->cond);
        free(rv);
    }
}

static void rv_finish(start_rv_t *rv, int status, const char *err)
{
    uv_mutex_lock(&rv->mu);
    if (!rv->done) {
        rv->done = 1;
        rv->status = status;
        snprintf(rv->err, sizeof rv->err, "%s", err != NULL ? err : "");
        uv_cond_signal(&rv->cond);
    }
    uv_mutex_unlock(&rv->mu);
}

/* ---- spec copies ------------------------------------------------------------- */

static void spec_free(nsys_sup_spec_t *s);
static nsys_sup_spec_t *spec_clone(const nsys_sup_spec_t *s);
static void sup_args_free(void *p);

static int child_spec_copy(nsys_child_spec_t *dst, const nsys_child_spec_t *src)
{
    *dst = *src;
    dst->id = NULL;
    dst->args = NULL;
    dst->supervisor = NULL;
    if (src->id != NULL && (dst->id = strdup(src->id)) == NULL)
        return NSYS_ENOMEM;
    if (src->args != NULL && (dst->args = cJSON_Duplicate(src->args, 1)) == NULL)
        return NSYS_ENOMEM;
    if (src->supervisor != NULL) {
        nsys_sup_spec_t *sub = spec_clone(src->supervisor);
        if (sub == NULL)
            return NSYS_ENOMEM;
        dst->supervisor = sub;
    }
    return 0;
}

static void child_spec_release(nsys_child_spec_t *c)
{
    free((char *)c->id);
    cJSON_Delete((cJSON *)c->args);
    spec_free((nsys_sup_spec_t *)c->supervisor);
}

static nsys_sup_spec_t *spec_clone(const nsys_sup_spec_t *s)
{
    nsys_sup_spec_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    *d = *s;
    d->name = NULL;
    d->children = NULL;
    d->child_template = NULL;
    d->nchildren = 0;
    if (s->name != NULL && (d->name = strdup(s->name)) == NULL)
        goto fail;
    if (s->nchildren > 0) {
        nsys_child_spec_t *kids = calloc(s->nchildren, sizeof *kids);
        if (kids == NULL)
            goto fail;
        d->children = kids;
        for (size_t i = 0; i < s->nchildren; i++) {
            d->nchildren = i + 1;
            if (child_spec_copy(&kids[i], &s->children[i]) != 0)
                goto fail;
        }
    }
    if (s->child_template != NULL) {
        nsys_child_spec_t *t = calloc(1, sizeof *t);
        if (t == NULL)
            goto fail;
        d->child_template = t;
        if (child_spec_copy(t, s->child_template) != 0)
            goto fail;
    }
    return d;
fail:
    spec_free(d);
    return NULL;
}

static void spec_free(nsys_sup_spec_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nchildren; i++)
        child_spec_release((nsys_child_spec_t *)&s->children[i]);
    free((void *)s->children);
    if (s->child_template != NULL) {
        child_spec_release((nsys_child_spec_t *)s->child_template);
        free((void *)s->child_template);
    }
    free((char *)s->name);
    free(s);
}

/* Nesting bound: deeper specs are refused, which also catches a spec that
 * contains itself (the copy would never end). Matches NSYS_CONFIG_MAX_DEPTH's
 * spirit: no sane tree is this deep. */
#define SPEC_MAX_DEPTH 64

static int spec_check(const nsys_sup_spec_t *s, int depth, char *err, size_t errlen);

static int child_check(const nsys_child_spec_t *c, const char *where, int depth, char *err,
                       size_t errlen)
{
    if (c->id == NULL || c->id[0] == '\0' || strlen(c->id) > 63) {
        snprintf(err, errlen, "%s: child id must be 1..63 bytes", where);
        return NSYS_EINVAL;
    }
    if (c->type == NSYS_WORKER && (c->behaviour == NULL || c->behaviour->handle == NULL)) {
        snprintf(err, errlen, "child '%s': a worker needs a behaviour with a handle callback", c->id);
        return NSYS_EINVAL;
    }
    if ((unsigned)c->restart > NSYS_TEMPORARY || (unsigned)c->type > NSYS_SUPERVISOR_CHILD ||
        c->shutdown_ms < NSYS_SHUTDOWN_INFINITY) {
        snprintf(err, errlen, "child '%s': invalid restart, type or shutdown", c->id);
        return NSYS_EINVAL;
    }
    if (c->type == NSYS_SUPERVISOR_CHILD) {
        if (c->supervisor == NULL) {
            snprintf(err, errlen, "child '%s': a supervisor child needs a supervisor spec", c->id);
            return NSYS_EINVAL;
        }
        if (depth + 1 >= SPEC_MAX_DEPTH) {
            snprintf(err, errlen,
                     "child '%s': supervisors nested more than %d deep (does a spec contain itself?)",
                     c->id, SPEC_MAX_DEPTH);
            return NSYS_EINVAL;
        }
        return spec_check(c->supervisor, depth + 1, err, errlen);
    }
    return 0;
}

static int spec_check(const nsys_sup_spec_t *s, int depth, char *err, size_t errlen)
{
    if ((unsigned)s->strategy > NSYS_SIMPLE_ONE_FOR_ONE) {
        snprintf(err, errlen, "invalid strategy %d", (int)s->strategy);
        return NSYS_EINVAL;
    }
    if (s->nchildren > 0 && s->children == NULL) {
        snprintf(err, errlen, "nchildren is %zu but children is NULL", s->nchildren);
        return NSYS_EINVAL;
    }
    if (s->strategy == NSYS_SIMPLE_ONE_FOR_ONE) {
        if (s->child_template == NULL || s->nchildren > 0) {
            snprintf(err, errlen, "simple_one_for_one needs a child template and no static children");
            return NSYS_EINVAL;
        }
        return child_check(s->child_template, "template", depth, err, errlen);
    }
    for (size_t i = 0; i < s->nchildren; i++) {
        int rc = child_check(&s->children[i], "children", depth, err, errlen);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->children[i].id, s->children[j].id) == 0) {
                snprintf(err, errlen, "duplicate child id '%s'", s->children[i].id);
                return NSYS_EINVAL;
            }
        }
    }
    nsys_backoff_t b;
    nsys_backoff_opts_t d = {NSYS_SUP_BACKOFF_INITIAL_MS, NSYS_SUP_BACKOFF_MAX_MS,
                             NSYS_SUP_BACKOFF_MULTIPLIER, NSYS_SUP_BACKOFF_JITTER,
                             NSYS_SUP_BACKOFF_RESET_MS};
    if (nsys_backoff_init(&b, &s->backoff, &d) != 0) {
        snprintf(err, errlen, "invalid backoff options");
        return NSYS_EINVAL;
    }
    return 0;
}

/* ---- children ------------------------------------------------------------------ */

static void free_child(child_t *c)
{
    cJSON_Delete(c->args);
    spec_free(c->sup);
    free(c);
}

static child_t *new_child(sup_t *s, const nsys_child_spec_t *cs, const cJSON *args_override)
{
    child_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->serial = ++s->next_serial;
    snprintf(c->id, sizeof c->id, "%s", cs->id != NULL ? cs->id : "child");
    c->type = cs->type;
    c->beh = cs->behaviour;
    c->restart = cs->restart;
    c->shutdown_ms = cs->shutdown_ms;
    if (c->shutdown_ms == 0)
        c->shutdown_ms = c->type == NSYS_SUPERVISOR_CHILD ? NSYS_SHUTDOWN_INFINITY
                                                          : NSYS_SUP_DEFAULT_SHUTDOWN_MS;
    const cJSON *args = args_override != NULL ? args_override : cs->args;
    if (args != NULL && (c->args = cJSON_Duplicate(args, 1)) == NULL)
        goto fail;
    if (cs->supervisor != NULL && (c->sup = spec_clone(cs->supervisor)) == NULL)
        goto fail;
    nsys_backoff_opts_t d = {NSYS_SUP_BACKOFF_INITIAL_MS, NSYS_SUP_BACKOFF_MAX_MS,
                             NSYS_SUP_BACKOFF_MULTIPLIER, NSYS_SUP_BACKOFF_JITTER,
                             NSYS_SUP_BACKOFF_RESET_MS};
    if (nsys_backoff_init(&c->backoff, &s->spec->backoff, &d) != 0)
        goto fail;
    return c;
fail:
    free_child(c);
    return NULL;
}

static int add_child(sup_t *s, child_t *c)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        child_t **p = realloc(s->children, ncap * sizeof *p);
        if (p == NULL)
            return NSYS_ENOMEM;
        s->children = p;
        s->cap = ncap;
    }
    s->children[s->n++] = c;
    return 0;
}

static void remove_child(sup_t *s, child_t *c)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->children[i] == c) {
            memmove(&s->children[i], &s->children[i + 1], (s->n - i - 1) * sizeof *s->children);
            s->n--;
            break;
        }
    }
    c->removed = 1;
    if (c->steps == 0)
        free_child(c);
}

static child_t *find_by_ref(sup_t *s, nsys_ref_t ref)
{
    if (ref == NSYS_REF_NONE)
        return NULL;
    for (size_t i = s->n; i-- > 0;)
        if (s->children[i]->ref == ref)
            return s->children[i];
    return NULL;
}

static child_t *find_by_serial(sup_t *s, uint64_t serial)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->children[i]->serial == serial)
            return s->children[i];
    return NULL;
}

static size_t index_of(sup_t *s, child_t *c)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->children[i] == c)
            return i;
    return s->n;
}

/* ---- events ---------------------------------------------------------------------- */

static void emit(nsys_ctx_t *ctx, sup_t *s, nsys_sup_event_kind_t kind, child_t *c, int reason,
                 uint64_t delay_ms)
{
    nsys_sup_event_t ev = {.kind = kind,
                           .reason = reason,
                           .supervisor = nsys_self(ctx),
                           .child = c != NULL ? c->ref : NSYS_REF_NONE,
                           .delay_ms = delay_ms,
                           .restarts = c != NULL ? c->restarts : 0,
                           .time_ns = uv_hrtime()};
    if (c != NULL)
        snprintf(ev.id, sizeof ev.id, "%s", c->id);
    switch (kind) {
    case NSYS_SUP_CHILD_STARTED:
        NSYS_LOG(NSYS_LOG_INFO, "supervisor %s: child '%s' started", s->path, ev.id);
        break;
    case NSYS_SUP_CHILD_EXITED:
        if (nsys_reason_is_clean(reason))
            NSYS_LOG(NSYS_LOG_INFO, "supervisor %s: child '%s' exited (%s)", s->path, ev.id,
                     nsys_strerror(reason));
        else
            NSYS_LOG(NSYS_LOG_WARN, "supervisor %s: child '%s' failed: %s", s->path, ev.id,
                     nsys_strerror(reason));
        break;
    case NSYS_SUP_CHILD_RESTARTING:
        NSYS_LOG(NSYS_LOG_INFO, "supervisor %s: restarting child '%s' in %llu ms (restart %u)",
                 s->path, ev.id, (unsigned long long)delay_ms, ev.restarts);
        break;
    case NSYS_SUP_GAVE_UP:
        NSYS_LOG(NSYS_LOG_ERROR,
                 "supervisor %s: restart intensity exceeded (at most %u restart%s in %llu ms); "
                 "stopping all children and giving up",
                 s->path, s->intensity, s->intensity == 1 ? "" : "s",
                 (unsigned long long)s->period_ms);
        break;
    case NSYS_SUP_START_FAILED:
        NSYS_LOG(NSYS_LOG_ERROR, "supervisor %s: %s", s->path, s->err);
        break;
    }
    if (s->observer != NSYS_REF_NONE)
        nsys_send(nsys_ctx_runtime(ctx), s->observer, NSYS_MSG_SUP_EVENT, &ev, sizeof ev);
}

/* ---- the plan ---------------------------------------------------------------------- */

static int push_step(sup_t *s, step_kind_t kind, child_t *c, uint64_t arg)
{
    if (s->plan_n == s->plan_cap) {
        size_t ncap = s->plan_cap ? s->plan_cap * 2 : 16;
        step_t *p = realloc(s->plan, ncap * sizeof *p);
        if (p == NULL)
            return NSYS_ENOMEM;
        s->plan = p;
        s->plan_cap = ncap;
    }
    step_t *st = &s->plan[s->plan_n++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->c = c;
    st->arg = arg;
    st->token = ++s->next_token;
    if (c != NULL)
        c->steps++;
    return 0;
}

static void drop_step(step_t *st)
{
    if (st->c != NULL && --st->c->steps == 0 && st->c->removed)
        free_child(st->c);
}

static void clear_plan(sup_t *s)
{
    for (size_t i = s->plan_head; i < s->plan_n; i++)
        drop_step(&s->plan[i]);
    s->plan_n = s->plan_head = 0;
    s->plan_epoch++;
}

static bool is_live(const child_t *c)
{
    return c->st == C_STARTING || c->st == C_RUNNING || c->st == C_STOPPING;
}

static void plan_stop_all(sup_t *s, size_t from)
{
    for (size_t i = s->n; i-- > from;)
        push_step(s, S_STOP, s->children[i], 0);
}

static void cjson_free(void *p) { cJSON_Delete(p); }

static const nsys_behaviour_t supervisor_behaviour;

static int spawn_child(nsys_ctx_t *ctx, sup_t *s, child_t *c)
{
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_ANY; /* spread the tree over the schedulers */
    o.link = true;
    o.ack = true;
    int rc;
    if (c->type == NSYS_SUPERVISOR_CHILD) {
        sup_args_t *a = calloc(1, sizeof *a);
        if (a == NULL)
            return NSYS_ENOMEM;
        a->spec = spec_clone(c->sup);
        size_t plen = strlen(s->path) + strlen(c->id) + 2;
        a->path = malloc(plen);
        if (a->spec == NULL || a->path == NULL) {
            spec_free(a->spec);
            free(a->path);
            free(a);
            return NSYS_ENOMEM;
        }
        snprintf(a->path, plen, "%s/%s", s->path, c->id);
        if (a->spec->observer == NSYS_REF_NONE)
            a->spec->observer = s->observer;
        a->parent_is_sup = 1;
        o.args = a;
        o.args_free = sup_args_free;
        rc = nsys_spawn(nsys_ctx_runtime(ctx), &supervisor_behaviour, &o, &c->ref);
        if (rc != 0)
            sup_args_free(a);
    } else {
        cJSON *args = NULL;
        if (c->args != NULL && (args = cJSON_Duplicate(c->args, 1)) == NULL)
            return NSYS_ENOMEM;
        o.args = args;
        o.args_free = args != NULL ? cjson_free : NULL;
        rc = nsys_spawn(nsys_ctx_runtime(ctx), c->beh, &o, &c->ref);
        if (rc != 0)
            cJSON_Delete(args);
    }
    return rc;
}

static void fail_start(nsys_ctx_t *ctx, sup_t *s, child_t *c, int reason);
static void reply(nsys_ctx_t *ctx, child_t *c, int status);
static void on_child_down(nsys_ctx_t *ctx, sup_t *s, child_t *c, int reason);

/* Begins a step; returns true when it is already complete. */
static bool step_begin(nsys_ctx_t *ctx, sup_t *s, step_t *st)
{
    child_t *c = st->c;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    switch (st->kind) {
    case S_STOP:
        if (c->st == C_WAITING) {
            nsys_timer_cancel(ctx, c->restart_timer);
            c->st = C_STOPPED;
        }
        if (c->st == C_STARTING || c->st == C_RUNNING) {
            c->st = C_STOPPING;
            if (c->shutdown_ms == NSYS_SHUTDOWN_BRUTAL) {
                nsys_kill(rt, c->ref);
            } else {
                nsys_exit_signal(rt, c->ref, NSYS_REASON_SHUTDOWN);
                if (c->shutdown_ms > 0)
                    nsys_send_after(ctx, NSYS_REF_NONE, (uint64_t)c->shutdown_ms, MSG_KILL_TIMER,
                                    &c->serial, sizeof c->serial, &c->kill_timer);
            }
            return false;
        }
        if (!is_live(c))
            reply(ctx, c, 0);
        return !is_live(c);
    case S_START: {
        if (c->removed || is_live(c))
            return true;
        c->start_failed = 0;
        c->st = C_STARTING;
        int rc = spawn_child(ctx, s, c);
        if (rc != 0) {
            c->st = C_STOPPED;
            c->ref = NSYS_REF_NONE;
            if (s->phase == P_STARTING)
                fail_start(ctx, s, c, rc);
            else
                on_child_down(ctx, s, c, rc);
            return true;
        }
        return false;
    }
    case S_DELAY:
        if (st->arg == 0)
            return true;
        nsys_send_after(ctx, NSYS_REF_NONE, st->arg, MSG_TICK, &st->token, sizeof st->token, NULL);
        return false;
    case S_REMOVE:
        if (!c->removed)
            remove_child(s, c);
        return true;
    case S_ACK:
        s->phase = P_RUNNING;
        if (s->rv != NULL) {
            rv_finish(s->rv, 0, NULL);
            rv_release(s->rv);
            s->rv = NULL;
        }
        nsys_ack(ctx);
        return true;
    case S_EXIT:
        nsys_exit(ctx, (int)(int64_t)st->arg);
        return false;
    }
    return true;
}

static bool step_done(step_t *st)
{
    switch (st->kind) {
    case S_STOP:
        return !is_live(st->c);
    case S_START:
        return st->c->removed || st->c->st != C_STARTING;
    case S_DELAY:
        return st->ticked;
    default:
        return false;
    }
}

static void advance(nsys_ctx_t *ctx, sup_t *s)
{
    while (s->plan_head < s->plan_n) {
        step_t *st = &s->plan[s->plan_head];
        if (!st->begun) {
            st->begun = 1;
            uint64_t epoch = s->plan_epoch;
            bool done = step_begin(ctx, s, st);
            if (s->plan_epoch != epoch)
                continue; /* the step's outcome replaced the plan */
            st = &s->plan[s->plan_head]; /* pushes may have moved it */
            if (!done)
                return;
        } else if (!step_done(st)) {
            return;
        }
        drop_step(st);
        s->plan_head++;
    }
    s->plan_n = s->plan_head = 0;
}

/* ---- decisions -------------------------------------------------------------------- */

static bool intensity_exceeded(sup_t *s)
{
    if (s->intensity == 0)
        return true;
    uint64_t now = uv_hrtime() / 1000000u;
    s->restart_times[s->rt_next] = now;
    s->rt_next = (s->rt_next + 1) % s->rt_cap;
    if (s->rt_count < s->rt_cap)
        s->rt_count++;
    if (s->rt_count <= s->intensity)
        return false;
    /* The ring holds intensity+1 entries: the oldest is at rt_next. */
    uint64_t oldest = s->restart_times[s->rt_next];
    return now - oldest < s->period_ms;
}

static void give_up(nsys_ctx_t *ctx, sup_t *s)
{
    emit(ctx, s, NSYS_SUP_GAVE_UP, NULL, NSYS_EGAVEUP, 0);
    s->phase = P_SHUTTING_DOWN;
    clear_plan(s);
    plan_stop_all(s, 0);
    push_step(s, S_EXIT, NULL, (uint64_t)(int64_t)NSYS_EGAVEUP);
}

/* The supervisor's own start failed because of child c: stop what started,
 * report, and exit with the child's reason. */
static void fail_start(nsys_ctx_t *ctx, sup_t *s, child_t *c, int reason)
{
    if (c->fail_text[0] != '\0')
        snprintf(s->err, sizeof s->err, "%s", c->fail_text);
    else
        snprintf(s->err, sizeof s->err, "child '%s' of supervisor '%s' failed to start: %s",
                 c->id, s->path, nsys_strerror(reason));
    emit(ctx, s, NSYS_SUP_START_FAILED, c, reason, 0);
    /* A starter waiting on the rendezvous hears of it from terminate, once
     * the children that did start have stopped. */
    if (s->rv == NULL && s->parent_is_sup) {
        nsys_send(nsys_ctx_runtime(ctx), nsys_parent(ctx), MSG_START_FAILED, s->err,
                  strlen(s->err) + 1);
    }
    s->phase = P_SHUTTING_DOWN;
    clear_plan(s);
    plan_stop_all(s, 0);
    push_step(s, S_EXIT, NULL, (uint64_t)(int64_t)reason);
}

static void reply(nsys_ctx_t *ctx, child_t *c, int status)
{
    if (c->reply_to == NSYS_REF_NONE)
        return;
    nsys_sup_reply_t r = {.status = status, .child = status == 0 ? c->ref : NSYS_REF_NONE};
    nsys_send(nsys_ctx_runtime(ctx), c->reply_to, c->reply_type, &r, sizeof r);
    c->reply_to = NSYS_REF_NONE;
}

/* A child exited (or could not be restarted) with `reason`, not at our request. */
static void on_child_down(nsys_ctx_t *ctx, sup_t *s, child_t *c, int reason)
{
    if (s->phase == P_SHUTTING_DOWN)
        return;
    bool restart = c->restart == NSYS_PERMANENT ||
                   (c->restart == NSYS_TRANSIENT && !nsys_reason_is_clean(reason));
    if (!restart) {
        c->st = C_STOPPED;
        if (c->restart == NSYS_TEMPORARY || c->dynamic)
            remove_child(s, c);
        return;
    }
    if (intensity_exceeded(s)) {
        give_up(ctx, s);
        return;
    }
    uint64_t delay = nsys_backoff_next(&c->backoff);
    c->restarts++;
    s->total_restarts++;
    emit(ctx, s, NSYS_SUP_CHILD_RESTARTING, c, reason, delay);
    size_t idx = index_of(s, c);
    switch (s->spec->strategy) {
    case NSYS_ONE_FOR_ONE:
    case NSYS_SIMPLE_ONE_FOR_ONE:
        c->st = C_WAITING;
        if (nsys_send_after(ctx, NSYS_REF_NONE, delay ? delay : 1, MSG_RESTART, &c->serial,
                            sizeof c->serial, &c->restart_timer) != 0) {
            c->st = C_STOPPED;
            push_step(s, S_START, c, 0);
        }
        break;
    case NSYS_ONE_FOR_ALL:
    case NSYS_REST_FOR_ONE: {
        size_t from = s->spec->strategy == NSYS_ONE_FOR_ALL ? 0 : idx;
        plan_stop_all(s, from);
        for (size_t i = from; i < s->n; i++)
            if (s->children[i]->restart == NSYS_TEMPORARY && s->children[i] != c)
                push_step(s, S_REMOVE, s->children[i], 0);
        push_step(s, S_DELAY, NULL, delay);
        for (size_t i = from; i < s->n; i++)
            if (s->children[i]->restart != NSYS_TEMPORARY || s->children[i] == c)
                push_step(s, S_START, s->children[i], 0);
        break;
    }
    }
}

static void shutdown_now(sup_t *s)
{
    if (s->phase == P_SHUTTING_DOWN)
        return;
    s->phase = P_SHUTTING_DOWN;
    clear_plan(s);
    plan_stop_all(s, 0);
    push_step(s, S_EXIT, NULL, (uint64_t)(int64_t)NSYS_REASON_SHUTDOWN);
}

/* ---- requests ------------------------------------------------------------------------ */

static void on_which(nsys_ctx_t *ctx, sup_t *s, nsys_msg_t *msg)
{
    nsys_child_info_t *info = calloc(s->n ? s->n : 1, sizeof *info);
    if (info == NULL) {
        nsys_send(nsys_ctx_runtime(ctx), msg->from, msg->type, NULL, 0);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        child_t *c = s->children[i];
        snprintf(info[i].id, sizeof info[i].id, "%s", c->id);
        info[i].ref = c->st == C_RUNNING ? c->ref : NSYS_REF_NONE;
        info[i].type = c->type;
        info[i].restart = c->restart;
        info[i].restarts = c->restarts;
        info[i].running = c->st == C_RUNNING;
    }
    nsys_send(nsys_ctx_runtime(ctx), msg->from, msg->type, info, s->n * sizeof *info);
    free(info);
}

static void on_count(nsys_ctx_t *ctx, sup_t *s, nsys_msg_t *msg)
{
    nsys_child_counts_t cc = {.specs = (uint32_t)s->n, .restarts = s->total_restarts};
    for (size_t i = 0; i < s->n; i++) {
        child_t *c = s->children[i];
        if (c->st == C_RUNNING)
            cc.active++;
        if (c->type == NSYS_SUPERVISOR_CHILD)
            cc.supervisors++;
        else
            cc.workers++;
    }
    nsys_send(nsys_ctx_runtime(ctx), msg->from, msg->type, &cc, sizeof cc);
}

static void on_start_child(nsys_ctx_t *ctx, sup_t *s, nsys_msg_t *msg)
{
    nsys_sup_reply_t r = {.status = NSYS_EINVAL};
    cJSON *args = NULL;
    if (s->spec->strategy != NSYS_SIMPLE_ONE_FOR_ONE || s->phase == P_SHUTTING_DOWN) {
        r.status = s->phase == P_SHUTTING_DOWN ? NSYS_ESHUTDOWN : NSYS_EINVAL;
        goto out;
    }
    args = nsys_msg_take_ptr(msg); /* a cJSON tree moved to us, or NULL */
    child_t *c = new_child(s, s->spec->child_template, args);
    if (c == NULL || add_child(s, c) != 0) {
        if (c != NULL)
            free_child(c);
        r.status = NSYS_ENOMEM;
        goto out;
    }
    c->dynamic = 1;
    c->reply_to = msg->from;
    c->reply_type = msg->type;
    push_step(s, S_START, c, 0);
    cJSON_Delete(args);
    return;
out:
    cJSON_Delete(args);
    nsys_send(nsys_ctx_runtime(ctx), msg->from, msg->type, &r, sizeof r);
}

static void on_terminate_child(nsys_ctx_t *ctx, sup_t *s, nsys_msg_t *msg)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    if (msg->size == sizeof ref)
        memcpy(&ref, msg->data, sizeof ref);
    child_t *c = find_by_ref(s, ref);
    if (c == NULL || s->phase == P_SHUTTING_DOWN) {
        nsys_sup_reply_t r = {.status = c == NULL ? NSYS_ENOENT : NSYS_ESHUTDOWN};
        nsys_send(nsys_ctx_runtime(ctx), msg->from, msg->type, &r, sizeof r);
        return;
    }
    /* Stopped at our request: not restarted; dynamic children are forgotten. */
    c->reply_to = msg->from;
    c->reply_type = msg->type;
    push_step(s, S_STOP, c, 0);
    if (c->dynamic)
        push_step(s, S_REMOVE, c, 0);
}

/* ---- the behaviour ----------------------------------------------------------------------- */

static void sup_args_free(void *p)
{
    sup_args_t *a = p;
    if (a == NULL)
        return;
    spec_free(a->spec);
    free(a->path);
    if (a->rv != NULL) {
        rv_finish(a->rv, NSYS_ESTOPPED, "the runtime stopped before the supervisor started");
        rv_release(a->rv);
    }
    free(a);
}

static int sup_init(nsys_ctx_t *ctx, void *state, void *args)
{
    sup_t *s = state;
    sup_args_t *a = args;
    s->spec = a->spec;
    s->path = a->path;
    s->rv = a->rv;
    s->parent_is_sup = a->parent_is_sup;
    a->spec = NULL;
    a->path = NULL;
    a->rv = NULL;
    nsys_trap_exit(ctx, true);
    nsys_defer_ack(ctx);
    s->observer = s->spec->observer;
    s->intensity = s->spec->intensity == 0 ? NSYS_SUP_DEFAULT_INTENSITY
                   : s->spec->intensity == NSYS_SUP_NO_RESTARTS ? 0
                                                                 : s->spec->intensity;
    s->period_ms = s->spec->period_ms ? s->spec->period_ms : NSYS_SUP_DEFAULT_PERIOD_MS;
    s->rt_cap = (size_t)s->intensity + 1;
    s->restart_times = calloc(s->rt_cap, sizeof *s->restart_times);
    if (s->restart_times == NULL)
        return NSYS_ENOMEM;
    s->phase = P_STARTING;
    for (size_t i = 0; i < s->spec->nchildren; i++) {
        child_t *c = new_child(s, &s->spec->children[i], NULL);
        if (c == NULL || add_child(s, c) != 0) {
            if (c != NULL)
                free_child(c);
            return NSYS_ENOMEM;
        }
        push_step(s, S_START, c, 0);
    }
    push_step(s, S_ACK, NULL, 0);
    advance(ctx, s);
    return 0;
}

static int sup_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    sup_t *s = state;
    uint64_t u64 = 0;
    if (msg->size == sizeof u64)
        memcpy(&u64, msg->data, sizeof u64);
    switch (msg->type) {
    case NSYS_MSG_STARTED: {
        nsys_started_t *st = msg->data;
        child_t *c = find_by_ref(s, st->ref);
        if (c != NULL && c->st == C_STARTING) {
            c->st = C_RUNNING;
            nsys_backoff_success(&c->backoff);
            emit(ctx, s, NSYS_SUP_CHILD_STARTED, c, 0, 0);
            reply(ctx, c, 0);
        }
        break;
    }
    case NSYS_MSG_EXIT: {
        nsys_exit_t *ex = msg->data;
        child_t *c = find_by_ref(s, ex->from);
        if (c == NULL) {
            if (ex->from == nsys_parent(ctx) || ex->from == NSYS_REF_NONE)
                shutdown_now(s);
            break;
        }
        cstate_t was = c->st;
        c->st = C_STOPPED;
        emit(ctx, s, NSYS_SUP_CHILD_EXITED, c, ex->reason, 0);
        c->ref = NSYS_REF_NONE;
        if (was == C_STOPPING) {
            nsys_timer_cancel(ctx, c->kill_timer);
            reply(ctx, c, 0);
        } else if (was == C_STARTING) {
            c->start_failed = 1;
            bool requested = c->dynamic && c->reply_to != NSYS_REF_NONE;
            reply(ctx, c, ex->reason != 0 ? ex->reason : NSYS_EFAILED);
            if (s->phase == P_STARTING)
                fail_start(ctx, s, c, ex->reason);
            else if (requested)
                remove_child(s, c); /* start_child failed: the caller knows, nothing is kept */
            else
                on_child_down(ctx, s, c, ex->reason);
        } else {
            on_child_down(ctx, s, c, ex->reason);
        }
        break;
    }
    case MSG_START_FAILED: {
        child_t *c = find_by_ref(s, msg->from);
        if (c != NULL && msg->size > 0)
            snprintf(c->fail_text, sizeof c->fail_text, "%.*s", (int)msg->size - 1,
                     (const char *)msg->data);
        break;
    }
    case MSG_TICK:
        if (s->plan_head < s->plan_n && s->plan[s->plan_head].kind == S_DELAY &&
            s->plan[s->plan_head].token == u64)
            s->plan[s->plan_head].ticked = 1;
        break;
    case MSG_KILL_TIMER: {
        child_t *c = find_by_serial(s, u64);
        if (c != NULL && c->st == C_STOPPING) {
            NSYS_LOG(NSYS_LOG_WARN,
                     "supervisor %s: child '%s' did not stop within %lld ms; killing it",
                     s->path, c->id, (long long)c->shutdown_ms);
            nsys_kill(nsys_ctx_runtime(ctx), c->ref);
        }
        break;
    }
    case MSG_RESTART: {
        child_t *c = find_by_serial(s, u64);
        if (c != NULL && c->st == C_WAITING && s->phase != P_SHUTTING_DOWN) {
            c->st = C_STOPPED;
            push_step(s, S_START, c, 0);
        }
        break;
    }
    case NSYS_MSG_SUP_WHICH_CHILDREN:
        on_which(ctx, s, msg);
        break;
    case NSYS_MSG_SUP_COUNT_CHILDREN:
        on_count(ctx, s, msg);
        break;
    case NSYS_MSG_SUP_START_CHILD:
        on_start_child(ctx, s, msg);
        break;
    case NSYS_MSG_SUP_TERMINATE_CHILD:
        on_terminate_child(ctx, s, msg);
        break;
    default:
        break;
    }
    advance(ctx, s);
    return 0;
}

static void sup_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    sup_t *s = state;
    if (s->rv != NULL) {
        rv_finish(s->rv, reason != 0 ? reason : NSYS_ESHUTDOWN,
                  s->err[0] ? s->err : "the supervisor exited while starting");
        rv_release(s->rv);
        s->rv = NULL;
    }
    clear_plan(s);
    for (size_t i = 0; i < s->n; i++)
        free_child(s->children[i]);
    free(s->children);
    free(s->plan);
    free(s->restart_times);
    spec_free(s->spec);
    free(s->path);
}

static const nsys_behaviour_t supervisor_behaviour = {
    .name = "supervisor",
    .state_size = sizeof(sup_t),
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

/* ---- public entry points ---------------------------------------------------------------- */

static sup_args_t *make_args(const nsys_sup_spec_t *spec, const char *path, char *err, size_t errlen,
                             int *rc)
{
    char buf[ERR_TEXT_MAX];
    *rc = spec_check(spec, 0, buf, sizeof buf);
    if (*rc != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s", buf);
        return NULL;
    }
    sup_args_t *a = calloc(1, sizeof *a);
    if (a != NULL) {
        a->spec = spec_clone(spec);
        a->path = strdup(path);
    }
    if (a == NULL || a->spec == NULL || a->path == NULL) {
        sup_args_free(a);
        *rc = NSYS_ENOMEM;
        return NULL;
    }
    return a;
}

int nsys_supervisor_start(nsys_runtime_t *rt, const nsys_sup_spec_t *spec, nsys_ref_t *out,
                          char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (rt == NULL || spec == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s is NULL", rt == NULL ? "the runtime" : "the spec");
        return NSYS_EINVAL;
    }
    if (nsys_current() != NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "nsys_supervisor_start blocks: call it from outside the "
                                  "runtime, or use nsys_supervisor_spawn from an actor");
        return NSYS_EBUSY;
    }
    int rc;
    sup_args_t *a = make_args(spec, spec->name != NULL ? spec->name : "root", err, errlen, &rc);
    if (a == NULL)
        return rc;
    start_rv_t *rv = calloc(1, sizeof *rv);
    if (rv == NULL) {
        sup_args_free(a);
        return NSYS_ENOMEM;
    }
    uv_mutex_init(&rv->mu);
    uv_cond_init(&rv->cond);
    rv->refs = 2;
    a->rv = rv;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = a;
    o.args_free = sup_args_free;
    nsys_ref_t ref;
    rc = nsys_spawn(rt, &supervisor_behaviour, &o, &ref);
    if (rc != 0) {
        sup_args_free(a); /* releases the supervisor's reference */
        rv_release(rv);
        return rc;
    }
    uv_mutex_lock(&rv->mu);
    while (!rv->done)
        uv_cond_wait(&rv->cond, &rv->mu);
    rc = rv->status;
    if (rc != 0 && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", rv->err);
    uv_mutex_unlock(&rv->mu);
    rv_release(rv);
    if (rc == 0 && out != NULL)
        *out = ref;
    return rc;
}

int nsys_supervisor_spawn(nsys_ctx_t *ctx, const nsys_sup_spec_t *spec, nsys_ref_t *out)
{
    if (ctx == NULL || spec == NULL)
        return NSYS_EINVAL;
    int rc;
    sup_args_t *a = make_args(spec, spec->name != NULL ? spec->name : "sup", NULL, 0, &rc);
    if (a == NULL)
        return rc;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = a;
    o.args_free = sup_args_free;
    o.link = true;
    o.ack = true;
    rc = nsys_spawn(nsys_ctx_runtime(ctx), &supervisor_behaviour, &o, out);
    if (rc != 0)
        sup_args_free(a);
    return rc;
}

static int sup_call(nsys_runtime_t *rt, nsys_ref_t sup, uint32_t type, const void *data,
                    size_t size, void **reply, size_t *reply_size)
{
    uint32_t rtype = 0;
    int rc = nsys_call(rt, sup, type, data, size, 0, &rtype, reply, reply_size);
    if (rc == 0 && rtype != type) {
        nsys_free(*reply);
        *reply = NULL;
        rc = NSYS_EINVAL; /* not a supervisor */
    }
    return rc;
}

static void cjson_delete(void *p) { cJSON_Delete(p); }

/* Starts a dynamic child: the args travel as a moved cJSON tree (parsing text
 * on the supervisor's thread would race on cJSON's global error state). */
int nsys_supervisor_start_child(nsys_runtime_t *rt, nsys_ref_t sup, const cJSON *args,
                                nsys_ref_t *child)
{
    if (rt == NULL || sup == NSYS_REF_NONE)
        return NSYS_EINVAL;
    if (nsys_current() != NULL)
        return NSYS_EBUSY;
    cJSON *copy = NULL;
    if (args != NULL && (copy = cJSON_Duplicate(args, 1)) == NULL)
        return NSYS_ENOMEM;
    void *reply = NULL;
    size_t size = 0;
    uint32_t rtype = 0;
    int rc = copy != NULL ? nsys_call_ptr(rt, sup, NSYS_MSG_SUP_START_CHILD, copy, 0, cjson_delete,
                                          0, &rtype, &reply, &size)
                          : nsys_call(rt, sup, NSYS_MSG_SUP_START_CHILD, NULL, 0, 0, &rtype, &reply,
                                      &size);
    if (rc == 0) {
        nsys_sup_reply_t r;
        if (rtype != NSYS_MSG_SUP_START_CHILD || size != sizeof r) {
            rc = NSYS_EINVAL; /* not a supervisor */
        } else {
            memcpy(&r, reply, sizeof r);
            rc = r.status;
            if (rc == 0 && child != NULL)
                *child = r.child;
        }
    }
    nsys_free(reply);
    return rc;
}

int nsys_supervisor_terminate_child(nsys_runtime_t *rt, nsys_ref_t sup, nsys_ref_t child)
{
    void *reply = NULL;
    size_t size = 0;
    int rc = sup_call(rt, sup, NSYS_MSG_SUP_TERMINATE_CHILD, &child, sizeof child, &reply, &size);
    if (rc == 0) {
        nsys_sup_reply_t r;
        rc = size == sizeof r ? (memcpy(&r, reply, sizeof r), r.status) : NSYS_EINVAL;
    }
    nsys_free(reply);
    return rc;
}

int nsys_supervisor_which_children(nsys_runtime_t *rt, nsys_ref_t sup, nsys_child_info_t **out,
                                   size_t *n)
{
    if (out == NULL || n == NULL)
        return NSYS_EINVAL;
    void *reply = NULL;
    size_t size = 0;
    int rc = sup_call(rt, sup, NSYS_MSG_SUP_WHICH_CHILDREN, NULL, 0, &reply, &size);
    if (rc != 0)
        return rc;
    *out = reply;
    *n = size / sizeof(nsys_child_info_t);
    return 0;
}

int nsys_supervisor_count_children(nsys_runtime_t *rt, nsys_ref_t sup, nsys_child_counts_t *out)
{
    if (out == NULL)
        return NSYS_EINVAL;
    void *reply = NULL;
    size_t size = 0;
    int rc = sup_call(rt, sup, NSYS_MSG_SUP_COUNT_CHILDREN, NULL, 0, &reply, &size);
    if (rc == 0) {
        if (size == sizeof *out)
            memcpy(out, reply, sizeof *out);
        else
            rc = NSYS_EINVAL;
    }
    nsys_free(reply);
    return rc;
}

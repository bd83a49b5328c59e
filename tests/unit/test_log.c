/* tests/unit/test_log.c — level gating, sinks, records and the default
 * stderr format (include/netsys/log.h). The level and sink are process-wide;
 * Criterion runs every test in its own process, so tests cannot disturb
 * each other. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/probe.h"
#include "common/wait.h"

#define MAX_KEPT 16

/* A thread-safe sink that counts records whose message starts with "t:" (the
 * runtime's own records are ignored) and keeps the first few. */
typedef struct sink {
    pthread_mutex_t mu;
    int calls;
    int all_calls;
    nsys_log_record_t rec[MAX_KEPT];
    char msg[MAX_KEPT][512];
    char file[MAX_KEPT][256];
} sink_t;

static sink_t g_sink = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sink_fn(void *userdata, const nsys_log_record_t *rec)
{
    sink_t *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->all_calls++;
    if (rec->message != NULL && strncmp(rec->message, "t:", 2) == 0) {
        if (s->calls < MAX_KEPT) {
            s->rec[s->calls] = *rec;
            snprintf(s->msg[s->calls], sizeof(s->msg[0]), "%s", rec->message);
            snprintf(s->file[s->calls], sizeof(s->file[0]), "%s", rec->file ? rec->file : "");
            s->rec[s->calls].message = s->msg[s->calls];
            s->rec[s->calls].file = s->file[s->calls];
        }
        s->calls++;
    }
    pthread_mutex_unlock(&s->mu);
}

static int sink_calls(void)
{
    pthread_mutex_lock(&g_sink.mu);
    int n = g_sink.calls;
    pthread_mutex_unlock(&g_sink.mu);
    return n;
}

static int g_evaluated;

static int side_effect(void)
{
    return ++g_evaluated;
}

Test(log, starts_at_info_unless_the_environment_says_otherwise)
{
    if (getenv("NSYS_LOG") == NULL)
        cr_assert_eq(nsys_log_get_level(), NSYS_LOG_INFO);
    else
        cr_assert_geq((int)nsys_log_get_level(), NSYS_LOG_OFF);
}

Test(log, set_level_is_read_back_for_every_level)
{
    for (int l = NSYS_LOG_OFF; l <= NSYS_LOG_TRACE; l++) {
        nsys_log_set_level((nsys_log_level_t)l);
        cr_assert_eq((int)nsys_log_get_level(), l);
        cr_assert_eq(NSYS_LOG_ENABLED(l), l != NSYS_LOG_OFF);
        cr_assert_eq(NSYS_LOG_ENABLED(NSYS_LOG_ERROR), l >= NSYS_LOG_ERROR);
    }
}

Test(log, disabled_levels_neither_call_the_sink_nor_evaluate_arguments)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_WARN);
    g_evaluated = 0;
    NSYS_LOG(NSYS_LOG_INFO, "t:info %d", side_effect());
    NSYS_LOG(NSYS_LOG_DEBUG, "t:debug %d", side_effect());
    NSYS_LOG(NSYS_LOG_TRACE, "t:trace %d", side_effect());
    cr_assert_eq(g_evaluated, 0, "arguments of disabled levels were evaluated");
    cr_assert_eq(sink_calls(), 0);
    NSYS_LOG(NSYS_LOG_WARN, "t:warn %d", side_effect());
    NSYS_LOG(NSYS_LOG_ERROR, "t:error %d", side_effect());
    cr_assert_eq(g_evaluated, 2);
    cr_assert_eq(sink_calls(), 2);
    nsys_log_set_sink(NULL, NULL);
}

Test(log, emit_itself_drops_records_of_disabled_levels)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_ERROR);
    nsys_log_emit(NSYS_LOG_WARN, __FILE__, __LINE__, "t:dropped");
    nsys_log_emit(NSYS_LOG_TRACE, __FILE__, __LINE__, "t:dropped");
    cr_assert_eq(sink_calls(), 0);
    nsys_log_emit(NSYS_LOG_ERROR, __FILE__, __LINE__, "t:kept");
    cr_assert_eq(sink_calls(), 1);
    nsys_log_set_sink(NULL, NULL);
}

Test(log, off_silences_even_errors)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_OFF);
    g_evaluated = 0;
    NSYS_LOG(NSYS_LOG_ERROR, "t:error %d", side_effect());
    nsys_log_emit(NSYS_LOG_ERROR, __FILE__, __LINE__, "t:error");
    cr_assert_eq(g_evaluated, 0);
    cr_assert_eq(sink_calls(), 0);
    nsys_log_set_sink(NULL, NULL);
}

Test(log, trace_level_lets_everything_through)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_TRACE);
    for (int l = NSYS_LOG_ERROR; l <= NSYS_LOG_TRACE; l++)
        NSYS_LOG((nsys_log_level_t)l, "t:level %d", l);
    cr_assert_eq(sink_calls(), 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq((int)g_sink.rec[i].level, NSYS_LOG_ERROR + i);
    nsys_log_set_sink(NULL, NULL);
}

Test(log, record_carries_message_location_time_and_no_actor_outside_the_runtime)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_INFO);
    uint64_t before = t_wall_ns();
    int line = __LINE__ + 1;
    NSYS_LOG(NSYS_LOG_WARN, "t:answer=%d %s", 42, "ok");
    uint64_t after = t_wall_ns();
    cr_assert_eq(sink_calls(), 1);
    const nsys_log_record_t *r = &g_sink.rec[0];
    cr_assert_eq(r->level, NSYS_LOG_WARN);
    cr_assert_str_eq(r->message, "t:answer=42 ok");
    cr_assert_eq(r->line, line);
    cr_assert_not_null(strstr(r->file, "test_log.c"), "file is %s", r->file);
    cr_assert_geq(r->time_ns + 1000000u, before, "time_ns is not the wall clock");
    cr_assert_leq(r->time_ns, after + 1000000u, "time_ns is not the wall clock");
    cr_assert_eq(r->scheduler, -1);
    cr_assert_eq(r->actor, 0);
    nsys_log_set_sink(NULL, NULL);
}

Test(log, long_messages_reach_the_sink_intact_or_truncated_but_terminated)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_INFO);
    static char big[20000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    NSYS_LOG(NSYS_LOG_ERROR, "t:%s", big);
    cr_assert_eq(sink_calls(), 1);
    cr_assert_eq(strncmp(g_sink.msg[0], "t:xxxx", 6), 0);
    nsys_log_set_sink(NULL, NULL);
}

typedef struct log_actor_arg {
    atomic_uint sched;
    _Atomic uint64_t self;
    atomic_int done;
} log_actor_arg_t;

static int log_actor_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)state;
    log_actor_arg_t *a = args;
    atomic_store(&a->sched, nsys_ctx_scheduler(ctx));
    atomic_store(&a->self, nsys_self(ctx));
    NSYS_LOG(NSYS_LOG_WARN, "t:from actor");
    atomic_store(&a->done, 1);
    nsys_exit(ctx, NSYS_REASON_NORMAL);
    return 0;
}

static int log_actor_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static const nsys_behaviour_t log_actor = {
    .name = "test.log_actor",
    .state_size = 0,
    .init = log_actor_init,
    .handle = log_actor_handle,
};

Test(log, sink_learns_the_scheduler_and_actor_when_called_from_an_actor)
{
    nsys_log_set_level(NSYS_LOG_INFO);
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    nsys_log_set_level(NSYS_LOG_INFO);
    nsys_log_set_sink(sink_fn, &g_sink);
    log_actor_arg_t a = {0};
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_INDEX;
    o.sched_index = 1;
    o.args = &a;
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_assert_eq(nsys_spawn(rt, &log_actor, &o, &ref), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&a.done) == 1, "actor never ran");
    cr_assert_eq(sink_calls(), 1);
    pthread_mutex_lock(&g_sink.mu);
    nsys_log_record_t r = g_sink.rec[0];
    pthread_mutex_unlock(&g_sink.mu);
    cr_assert_eq(r.scheduler, 1);
    cr_assert_eq(r.actor, ref);
    cr_assert_eq(r.actor, atomic_load(&a.self));
    T_RUNTIME_FREE(rt);
    nsys_log_set_sink(NULL, NULL);
}

#define SINK_THREADS 4
#define SINK_PER_THREAD 2000

static void *log_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < SINK_PER_THREAD; i++)
        NSYS_LOG(NSYS_LOG_INFO, "t:%d", i);
    return NULL;
}

Test(log, records_from_many_threads_all_reach_the_sink)
{
    nsys_log_set_sink(sink_fn, &g_sink);
    nsys_log_set_level(NSYS_LOG_INFO);
    pthread_t th[SINK_THREADS];
    for (int i = 0; i < SINK_THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, log_worker, NULL), 0);
    for (int i = 0; i < SINK_THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(sink_calls(), SINK_THREADS * SINK_PER_THREAD);
    nsys_log_set_sink(NULL, NULL);
}

/* Runs `fn` with fd 2 pointed at a temporary file; returns what was written. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    FILE *tmp = tmpfile();
    if (tmp == NULL)
        return NULL;
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long n = ftell(tmp);
    if (n < 0)
        n = 0;
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    if (out != NULL && n > 0 && fread(out, 1, (size_t)n, tmp) != (size_t)n)
        out[0] = '\0';
    fclose(tmp);
    return out;
}

static void emit_warn(void *arg)
{
    (void)arg;
    NSYS_LOG(NSYS_LOG_WARN, "t:to stderr %d", 7);
}

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE) != 0)
        return false;
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

Test(log, default_sink_writes_one_formatted_line_to_stderr)
{
    nsys_log_set_level(NSYS_LOG_INFO);
    nsys_log_set_sink(NULL, NULL);
    char *out = capture_stderr(emit_warn, NULL);
    cr_assert_not_null(out);
    cr_assert(matches(out, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z WARN +\\[-\\] "
                           "t:to stderr 7$"),
              "unexpected default line: <%s>", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not exactly one line: <%s>", out);
    free(out);
}

Test(log, setting_a_null_sink_restores_the_default)
{
    nsys_log_set_level(NSYS_LOG_INFO);
    nsys_log_set_sink(sink_fn, &g_sink);
    char *out = capture_stderr(emit_warn, NULL);
    cr_assert_eq(sink_calls(), 1);
    cr_assert_not_null(out);
    cr_assert_null(strstr(out, "t:to stderr"), "custom sink set but stderr got <%s>", out);
    free(out);
    nsys_log_set_sink(NULL, NULL);
    out = capture_stderr(emit_warn, NULL);
    cr_assert_eq(sink_calls(), 1, "the replaced sink was still called");
    cr_assert_not_null(out);
    cr_assert_not_null(strstr(out, "t:to stderr 7"), "default sink did not write: <%s>", out);
    free(out);
}

typedef struct rt_arg {
    nsys_runtime_t *rt;
    log_actor_arg_t a;
    nsys_ref_t ref;
} rt_arg_t;

static void spawn_logger(void *p)
{
    rt_arg_t *x = p;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_INDEX;
    o.sched_index = 1;
    o.args = &x->a;
    if (nsys_spawn(x->rt, &log_actor, &o, &x->ref) != 0)
        return;
    T_WAIT(atomic_load(&x->a.done) == 1, T_WAIT_MS);
    /* the actor has exited by now or soon; its line is written already */
}

Test(log, default_sink_names_scheduler_and_actor_inside_the_runtime)
{
    nsys_log_set_level(NSYS_LOG_INFO);
    nsys_log_set_sink(NULL, NULL);
    rt_arg_t x = {0};
    cr_assert_eq(t_runtime(2, &x.rt), 0);
    nsys_log_set_level(NSYS_LOG_WARN); /* keep the runtime's own info lines out */
    char *out = capture_stderr(spawn_logger, &x);
    cr_assert_eq(atomic_load(&x.a.done), 1);
    cr_assert_not_null(out);
    char expect[128];
    snprintf(expect, sizeof(expect), "WARN  [s1 a%u.%u] t:from actor", NSYS_REF_SLOT(x.ref),
             NSYS_REF_GEN(x.ref));
    char pattern[256];
    snprintf(pattern, sizeof(pattern), "Z WARN +\\[s1 a%u\\.%u\\] t:from actor$", NSYS_REF_SLOT(x.ref),
             NSYS_REF_GEN(x.ref));
    cr_assert(matches(out, pattern), "expected a line like <%s>, got <%s>", expect, out);
    free(out);
    T_RUNTIME_FREE(x.rt);
}

Test(log, level_parse_accepts_every_documented_name)
{
    const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    const nsys_log_level_t levels[] = {NSYS_LOG_OFF,  NSYS_LOG_ERROR, NSYS_LOG_WARN,
                                       NSYS_LOG_INFO, NSYS_LOG_DEBUG, NSYS_LOG_TRACE};
    for (int i = 0; i < 6; i++) {
        nsys_log_level_t l = (nsys_log_level_t)99;
        cr_assert_eq(nsys_log_level_parse(names[i], &l), 0, "%s", names[i]);
        cr_assert_eq(l, levels[i], "%s", names[i]);
    }
}

Test(log, level_parse_rejects_unknown_names_and_null_arguments)
{
    nsys_log_level_t l = NSYS_LOG_WARN;
    cr_assert_eq(nsys_log_level_parse("verbose", &l), NSYS_EINVAL);
    cr_assert_eq(nsys_log_level_parse("", &l), NSYS_EINVAL);
    cr_assert_eq(nsys_log_level_parse("info ", &l), NSYS_EINVAL);
    cr_assert_eq(nsys_log_level_parse("inf", &l), NSYS_EINVAL);
    cr_assert_eq(l, NSYS_LOG_WARN, "a failed parse wrote its output");
    cr_assert_eq(nsys_log_level_parse(NULL, &l), NSYS_EINVAL);
    cr_assert_eq(nsys_log_level_parse("info", NULL), NSYS_EINVAL);
}

Test(log, level_name_names_each_level_and_never_returns_null)
{
    const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i <= NSYS_LOG_TRACE; i++) {
        const char *n = nsys_log_level_name((nsys_log_level_t)i);
        cr_assert_not_null(n);
        cr_assert_eq(strcasecmp(n, names[i]), 0, "level %d is named %s", i, n);
        nsys_log_level_t back;
        cr_assert_eq(nsys_log_level_parse(names[i], &back), 0);
        cr_assert_eq((int)back, i);
    }
    cr_assert_not_null(nsys_log_level_name((nsys_log_level_t)42));
    cr_assert_not_null(nsys_log_level_name((nsys_log_level_t)-1));
}

Test(log, environment_sets_the_level_when_the_first_runtime_is_created)
{
    setenv("NSYS_LOG", "debug", 1);
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    cr_assert_eq(nsys_log_get_level(), NSYS_LOG_DEBUG);
    T_RUNTIME_FREE(rt);

    /* Only the first runtime reads it: a later one keeps the level set. */
    nsys_log_set_level(NSYS_LOG_ERROR);
    setenv("NSYS_LOG", "trace", 1);
    cr_assert_eq(t_runtime(1, &rt), 0);
    cr_assert_eq(nsys_log_get_level(), NSYS_LOG_ERROR);
    T_RUNTIME_FREE(rt);
}

Test(log, environment_off_silences_logging)
{
    setenv("NSYS_LOG", "off", 1);
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    cr_assert_eq(nsys_log_get_level(), NSYS_LOG_OFF);
    T_RUNTIME_FREE(rt);
}

Test(log, invalid_environment_value_leaves_the_default_level)
{
    setenv("NSYS_LOG", "loud", 1);
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    cr_assert_eq(nsys_log_get_level(), NSYS_LOG_INFO);
    T_RUNTIME_FREE(rt);
}

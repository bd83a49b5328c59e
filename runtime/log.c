/* runtime/log.c — leveled logging: level, sink, default stderr sink.
 * The level is one int read with a relaxed load by NSYS_LOG(); the sink and
 * its userdata are swapped and called under one mutex, which also keeps the
 * default sink's lines whole. Not for: metrics or tracing. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int nsys__log_level = NSYS_LOG_INFO;

static uv_once_t log_once = UV_ONCE_INIT;
static uv_mutex_t log_mu;
static nsys_log_sink_fn log_sink;
static void *log_userdata;

static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

static void log_init(void)
{
    uv_mutex_init(&log_mu);
    const char *env = getenv("NSYS_LOG");
    nsys_log_level_t lvl;
    if (env != NULL && nsys_log_level_parse(env, &lvl) == 0)
        __atomic_store_n(&nsys__log_level, (int)lvl, __ATOMIC_RELAXED);
}

void nsys__log_setup(void) { uv_once(&log_once, log_init); }

void nsys_log_set_level(nsys_log_level_t level)
{
    nsys__log_setup();
    if (level < NSYS_LOG_OFF)
        level = NSYS_LOG_OFF;
    if (level > NSYS_LOG_TRACE)
        level = NSYS_LOG_TRACE;
    __atomic_store_n(&nsys__log_level, (int)level, __ATOMIC_RELAXED);
}

nsys_log_level_t nsys_log_get_level(void)
{
    return (nsys_log_level_t)__atomic_load_n(&nsys__log_level, __ATOMIC_RELAXED);
}

void nsys_log_set_sink(nsys_log_sink_fn sink, void *userdata)
{
    nsys__log_setup();
    uv_mutex_lock(&log_mu);
    log_sink = sink;
    log_userdata = userdata;
    uv_mutex_unlock(&log_mu);
}

int nsys_log_level_parse(const char *name, nsys_log_level_t *out)
{
    if (name == NULL || out == NULL)
        return NSYS_EINVAL;
    for (int i = 0; i <= NSYS_LOG_TRACE; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (nsys_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = NSYS_LOG_WARN;
        return 0;
    }
    return NSYS_EINVAL;
}

const char *nsys_log_level_name(nsys_log_level_t level)
{
    if ((int)level < 0 || level > NSYS_LOG_TRACE)
        return "unknown";
    return level_names[level];
}

static void default_sink(const nsys_log_record_t *rec)
{
    time_t secs = (time_t)(rec->time_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char who[48];
    if (rec->scheduler < 0)
        snprintf(who, sizeof who, "-");
    else if (rec->actor == 0)
        snprintf(who, sizeof who, "s%d", rec->scheduler);
    else
        snprintf(who, sizeof who, "s%d a%u.%u", rec->scheduler, NSYS_REF_SLOT(rec->actor),
                 NSYS_REF_GEN(rec->actor));
    char upper[8];
    const char *name = nsys_log_level_name(rec->level);
    size_t i = 0;
    for (; name[i] != '\0' && i < sizeof upper - 1; i++)
        upper[i] = (char)(name[i] - 'a' + 'A');
    upper[i] = '\0';
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ %-5s [%s] %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            (unsigned)(rec->time_ns / 1000000u % 1000u), upper, who, rec->message);
}

void nsys_log_emit(nsys_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    if (!NSYS_LOG_ENABLED(level) || level == NSYS_LOG_OFF || fmt == NULL)
        return;
    nsys__log_setup();
    char stackbuf[512];
    char *msg = stackbuf;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stackbuf, sizeof stackbuf, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof stackbuf) {
        char *heap = malloc((size_t)n + 1);
        if (heap != NULL) {
            va_start(ap, fmt);
            vsnprintf(heap, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = heap;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    nsys__sched_t *s = nsys__tls_sched;
    nsys__actor_t *a = nsys__tls_actor;
    nsys_log_record_t rec = {
        .level = level,
        .time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
        .scheduler = s != NULL ? (int)s->index : -1,
        .actor = a != NULL ? a->self : 0,
        .file = file,
        .line = line,
        .message = msg,
    };
    uv_mutex_lock(&log_mu);
    if (log_sink != NULL)
        log_sink(log_userdata, &rec);
    else
        default_sink(&rec);
    uv_mutex_unlock(&log_mu);
    if (msg != stackbuf)
        free(msg);
}

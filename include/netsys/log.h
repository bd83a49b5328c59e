/* netsys/log.h — leveled logging with a pluggable sink.
 *
 * The level and sink are process-wide. NSYS_LOG() tests the level before it
 * evaluates its arguments, so a disabled level costs one relaxed load and a
 * branch. The default sink writes one line to stderr:
 *
 *   2026-11-21T11:22:33.456Z WARN  [s1 a42.3] message
 *
 * where s1 is the scheduler index and a42.3 the actor (slot.generation) that
 * was running, or [-] outside any scheduler. The initial level is NSYS_LOG_INFO,
 * or the value of the environment variable NSYS_LOG (error, warn, info, debug,
 * trace, off) read when the first runtime is created.
 */
#ifndef NETSYS_LOG_H
#define NETSYS_LOG_H

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nsys_log_level {
    NSYS_LOG_OFF = 0,
    NSYS_LOG_ERROR = 1,
    NSYS_LOG_WARN = 2,
    NSYS_LOG_INFO = 3,
    NSYS_LOG_DEBUG = 4,
    NSYS_LOG_TRACE = 5
} nsys_log_level_t;

typedef struct nsys_log_record {
    nsys_log_level_t level;
    uint64_t time_ns;   /* wall clock, ns since the Unix epoch */
    int scheduler;      /* scheduler index, -1 outside the runtime's threads */
    uint64_t actor;     /* ref of the running actor, 0 if none */
    const char *file;
    int line;
    const char *message; /* formatted, NUL-terminated, valid during the call */
} nsys_log_record_t;

/* A sink may be called from any thread at once; it must be thread-safe. */
typedef void (*nsys_log_sink_fn)(void *userdata, const nsys_log_record_t *rec);

void nsys_log_set_level(nsys_log_level_t level);
nsys_log_level_t nsys_log_get_level(void);

/* Replaces the sink; NULL restores the default stderr sink. */
void nsys_log_set_sink(nsys_log_sink_fn sink, void *userdata);

/* Parses "error", "warn", "info", "debug", "trace" or "off". */
int nsys_log_level_parse(const char *name, nsys_log_level_t *out);
const char *nsys_log_level_name(nsys_log_level_t level);

/* Formats and emits a record if `level` is enabled. Prefer NSYS_LOG(). */
void nsys_log_emit(nsys_log_level_t level, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Internal: the current level, read by NSYS_LOG without a call. */
extern int nsys__log_level;

#define NSYS_LOG_ENABLED(lvl)                                                                      \
    ((int)(lvl) > NSYS_LOG_OFF && __atomic_load_n(&nsys__log_level, __ATOMIC_RELAXED) >= (int)(lvl))

#define NSYS_LOG(lvl, ...)                                                                         \
    do {                                                                                           \
        if (NSYS_LOG_ENABLED(lvl))                                                                 \
            nsys_log_emit((lvl), __FILE__, __LINE__, __VA_ARGS__);                                 \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif

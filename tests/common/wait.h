/* tests/common/wait.h — bounded waiting for tests: clocks, polled
 * predicates with a deadline, gates, and a thread-safe record list that
 * actors fill and the test thread waits on.
 *
 * Tests never sleep and hope: they wait for the event they expect, with a
 * bound, and assert on what they saw. A bound is only reached when the test
 * is about to fail, so bounds are generous (sanitizers are slow).
 *
 * Not for: anything that needs the runtime (see common/probe.h). Never call
 * cr_assert from an actor or helper thread: record and let the test thread
 * assert.
 *
 * Criterion 2.4.1 caveat: when the tests of one program carry different
 * `.timeout` values, its runner leaks 48 bytes per test and LeakSanitizer
 * fails the whole program at exit. Use one `.timeout` value per test file.
 */
#ifndef NSYS_TESTS_COMMON_WAIT_H
#define NSYS_TESTS_COMMON_WAIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The default bound for "this should happen soon". */
#ifndef T_WAIT_MS
#define T_WAIT_MS 20000u
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif

/* ---- clocks ------------------------------------------------------------- */

static inline uint64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t t_now_ms(void)
{
    return t_now_ns() / 1000000u;
}

static inline uint64_t t_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burns CPU for `us` microseconds (to make an actor slow on purpose). */
static inline void t_busy_us(uint64_t us)
{
    uint64_t end = t_now_ns() + us * 1000u;
    while (t_now_ns() < end) {
    }
}

/* ---- polled predicates ---------------------------------------------------- */

typedef struct t_poll {
    uint64_t deadline_ns;
    unsigned round;
} t_poll_t;

static inline t_poll_t t_poll_begin(uint64_t timeout_ms)
{
    t_poll_t p = {t_now_ns() + timeout_ms * 1000000u, 0};
    return p;
}

/* One step of a bounded poll: false once the deadline passed, otherwise
 * backs off (yield, then sleeps growing to 1 ms) and returns true. */
static inline bool t_poll_continue(t_poll_t *p)
{
    if (t_now_ns() >= p->deadline_ns)
        return false;
    if (p->round < 50) {
        sched_yield();
    } else {
        unsigned shift = p->round - 50 < 10 ? p->round - 50 : 10;
        struct timespec ts = {0, (long)(1000u << shift)}; /* 1 us .. ~1 ms */
        nanosleep(&ts, NULL);
    }
    p->round++;
    return true;
}

/* Waits until `pred` holds or `timeout_ms` passed; re-check pred after. */
#define T_WAIT(pred, timeout_ms)                                                                   \
    do {                                                                                           \
        t_poll_t t_poll_ = t_poll_begin(timeout_ms);                                               \
        while (!(pred) && t_poll_continue(&t_poll_)) {                                             \
        }                                                                                          \
    } while (0)

#define T_FIRST_(a, ...) a
#define T_FIRST(...) T_FIRST_(__VA_ARGS__, 0)

/* T_ASSERT_EVENTUALLY(pred [, fmt, args...]): waits for `pred` with the
 * default bound, then asserts it (with the optional message). */
#define T_ASSERT_EVENTUALLY(...)                                                                   \
    do {                                                                                           \
        T_WAIT(T_FIRST(__VA_ARGS__), T_WAIT_MS);                                                   \
        cr_assert(__VA_ARGS__);                                                                    \
    } while (0)

/* ---- condition variables on the monotonic clock ------------------------- */

static inline void t_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

static inline struct timespec t_abs_deadline(uint64_t timeout_ms)
{
    uint64_t ns = t_now_ns() + timeout_ms * 1000000u;
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

/* ---- gate: blocks actors until the test opens it ------------------------- */

typedef struct t_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting; /* threads currently blocked in t_gate_wait */
    int arrived; /* threads that ever reached the gate */
} t_gate_t;

static inline void t_gate_init(t_gate_t *g)
{
    pthread_mutex_init(&g->mu, NULL);
    t_cond_init(&g->cv);
    g->open = false;
    g->waiting = 0;
    g->arrived = 0;
}

static inline void t_gate_destroy(t_gate_t *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* Blocks until the gate opens or timeout_ms passes; true if it opened. */
static inline bool t_gate_wait(t_gate_t *g, uint64_t timeout_ms)
{
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&g->mu);
    g->arrived++;
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    int rc = 0;
    while (!g->open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
    bool open = g->open;
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
    return open;
}

/* Waits until at least `n` threads reached the gate; true if they did. */
static inline bool t_gate_wait_arrived(t_gate_t *g, int n, uint64_t timeout_ms)
{
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (g->arrived < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
    bool ok = g->arrived >= n;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static inline void t_gate_open(t_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- records: a thread-safe list the test thread waits on ---------------- */

#define T_REC_INLINE 64

typedef struct t_rec {
    uint32_t type;
    uint64_t from;      /* msg->from */
    uint64_t self;      /* the recording actor */
    size_t size;        /* msg->size */
    const void *data;   /* msg->data as the receiver saw it (do not deref later) */
    unsigned sched;     /* scheduler the receiver ran on */
    uint64_t t_ns;      /* monotonic time of recording */
    int64_t value;      /* free use by the recorder */
    unsigned char bytes[T_REC_INLINE]; /* first bytes of the payload */
} t_rec_t;

typedef struct t_recs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    t_rec_t *v;
    size_t n, cap;
    bool oom;
} t_recs_t;

static inline void t_recs_init(t_recs_t *r)
{
    pthread_mutex_init(&r->mu, NULL);
    t_cond_init(&r->cv);
    r->v = NULL;
    r->n = r->cap = 0;
    r->oom = false;
}

static inline void t_recs_destroy(t_recs_t *r)
{
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static inline void t_recs_push(t_recs_t *r, const t_rec_t *rec)
{
    pthread_mutex_lock(&r->mu);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        t_rec_t *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            r->oom = true;
            pthread_mutex_unlock(&r->mu);
            return;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = *rec;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline size_t t_recs_count(t_recs_t *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Copies record i into *out; false if there is no such record. */
static inline bool t_recs_get(t_recs_t *r, size_t i, t_rec_t *out)
{
    pthread_mutex_lock(&r->mu);
    bool ok = i < r->n;
    if (ok)
        *out = r->v[i];
    else
        memset(out, 0, sizeof(*out));
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static inline size_t t_recs_count_type_locked(t_recs_t *r, uint32_t type)
{
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++)
        c += r->v[i].type == type;
    return c;
}

static inline size_t t_recs_count_type(t_recs_t *r, uint32_t type)
{
    pthread_mutex_lock(&r->mu);
    size_t c = t_recs_count_type_locked(r, type);
    pthread_mutex_unlock(&r->mu);
    return c;
}

/* Waits until at least n records exist; true if they do. */
static inline bool t_recs_wait_count(t_recs_t *r, size_t n, uint64_t timeout_ms)
{
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (r->n < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &dl);
    bool ok = r->n >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Waits until at least n records of `type` exist; true if they do. */
static inline bool t_recs_wait_type(t_recs_t *r, uint32_t type, size_t n, uint64_t timeout_ms)
{
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (t_recs_count_type_locked(r, type) < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &dl);
    bool ok = t_recs_count_type_locked(r, type) >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Index of the k-th (0-based) record of `type`, or -1. */
static inline long t_recs_find_type(t_recs_t *r, uint32_t type, size_t k)
{
    long found = -1;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].type == type) {
            if (k == 0) {
                found = (long)i;
                break;
            }
            k--;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

/* ---- leak checks ---------------------------------------------------------- */

/* Criterion reports a test as passed before LeakSanitizer (or valgrind) runs
 * at process exit, so a leak at exit fails nothing. Tests therefore check
 * for leaks themselves once the runtime is freed: anything the runtime lost
 * is unreachable by then, while what the test still owns is reachable from
 * its stack. Under ASan this asks LeakSanitizer; under valgrind, memcheck
 * (definitely lost bytes, and any memcheck error so far). Otherwise nothing. */
#if T_ASAN
int __lsan_do_recoverable_leak_check(void);
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define T_HAVE_MEMCHECK 1
#endif
#endif

/* True when running under valgrind. */
static inline bool t_on_valgrind(void)
{
#ifdef T_HAVE_MEMCHECK
    return RUNNING_ON_VALGRIND != 0;
#else
    return false;
#endif
}

/* Returns a description of the leaks found, or NULL if there are none. */
static inline const char *t_leaks(void)
{
#if T_ASAN
    if (__lsan_do_recoverable_leak_check() != 0)
        return "LeakSanitizer found leaks (details on stderr)";
#endif
#ifdef T_HAVE_MEMCHECK
    if (RUNNING_ON_VALGRIND) {
        unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
        VALGRIND_DO_QUICK_LEAK_CHECK;
        VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
        (void)reachable;
        (void)suppressed;
        if (leaked != 0)
            return "memcheck: definitely lost bytes (details on stderr)";
        if (VALGRIND_COUNT_ERRORS != 0)
            return "memcheck reported errors (details on stderr)";
        (void)dubious;
    }
#endif
    return NULL;
}

/* Fails the test if anything is leaked at this point. */
#define T_ASSERT_NO_LEAKS()                                                                        \
    do {                                                                                           \
        const char *t_leaks_ = t_leaks();                                                          \
        cr_assert_null(t_leaks_, "%s", t_leaks_ ? t_leaks_ : "");                                  \
    } while (0)

/* Frees the runtime and fails the test if anything leaked. */
#define T_RUNTIME_FREE(rt)                                                                         \
    do {                                                                                           \
        nsys_runtime_free(rt);                                                                     \
        T_ASSERT_NO_LEAKS();                                                                       \
    } while (0)

/* ---- process facts -------------------------------------------------------- */

/* Resident set size in bytes, from /proc/self/statm. */
static inline size_t t_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

#endif

/* tests/tsan_shim/runner.c — main() of the Criterion test programs in a
 * ThreadSanitizer build, in place of libcriterion (see criterion/criterion.h
 * here for why and for the API it serves).
 *
 * Tests register themselves from constructors. main() sorts them by suite and
 * name and runs each in a child process of its own, forked from a parent that
 * never starts a thread, so a test cannot disturb the next one and TSAN sees
 * every child as a fresh single-threaded program. The child records failed
 * checks in a shared anonymous mapping; the parent reads it once the child is
 * gone, kills a child that outlives its timeout, and prints Criterion's
 * lines: "[PASS] suite::name", "[FAIL] suite::name: file:line: message",
 * "[SKIP] ...", then the "[====] Synthesis: ..." line. It exits 0 iff no test
 * failed or crashed.
 *
 * Options: --filter PATTERN (fnmatch on "suite/name"; --pattern is the same),
 * -j N / --jobs N (tests at once, default 1 or $CRITERION_JOBS), --timeout S
 * (default per test when neither test nor suite sets one, else
 * $CRITERION_TEST_TIMEOUT, else 600), --fail-fast, --always-succeed, --list,
 * --help. Criterion's report and display options are accepted and ignored.
 *
 * Not for: anything but the tsan preset; the other presets use Criterion.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "criterion/criterion.h"
#include "criterion/logging.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CRS_DEFAULT_TIMEOUT_S 600.0
#define CRS_MAX_RECORDS 32 /* failures kept per test; the rest are only counted */
#define CRS_TEXT_MAX 1024
#define CRS_FILE_MAX 256
/* Child exit status after a cr_assert failed off the test's thread. */
#define CRS_EXIT_ABORTED 97
/* ThreadSanitizer's exit status after a report (its "exitcode" option); it
 * also exits with it on a fatal signal it caught (SEGV, BUS, FPE). */
#define CRS_SANITIZER_EXIT 66

/* ---- registration ---------------------------------------------------------- */

static struct crs_test *g_tests;
static struct crs_suite *g_suites;

void crs_register_test(struct crs_test *t)
{
    t->next = g_tests;
    g_tests = t;
}

void crs_register_suite(struct crs_suite *s)
{
    s->next = g_suites;
    g_suites = s;
}

/* ---- what a child reports to the parent --------------------------------- */

enum crs_phase { PHASE_START, PHASE_INIT, PHASE_BODY, PHASE_FINI, PHASE_DONE };

struct crs_record {
    char file[CRS_FILE_MAX];
    unsigned line;
    char text[CRS_TEXT_MAX];
};

/* Lives in a MAP_SHARED mapping: written by the child (under g_record_mu),
 * read by the parent after waitpid. */
struct crs_shared {
    int phase;
    int skipped;
    char skip_text[CRS_TEXT_MAX];
    unsigned failures; /* all of them, also those past CRS_MAX_RECORDS */
    unsigned nrecords;
    struct crs_record records[CRS_MAX_RECORDS];
};

/* Child side. */
static struct crs_shared *g_shared;
static pthread_t g_test_thread;
static jmp_buf g_abort_jmp;
static atomic_int g_jmp_armed; /* read by any thread whose cr_assert fails */
static pthread_mutex_t g_record_mu = PTHREAD_MUTEX_INITIALIZER;

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* Copies the n-th (1-based) top-level argument of `args`, the source text of
 * a check's arguments, into out: commas inside brackets, strings and
 * character constants do not split. */
static void nth_argument(const char *args, int n, char *out, size_t cap)
{
    int depth = 0, index = 1;
    const char *begin = args;
    for (const char *c = args;; c++) {
        if (*c == '"' || *c == '\'') {
            char quote = *c;
            while (c[1] != '\0' && c[1] != quote)
                c += c[1] == '\\' && c[2] != '\0' ? 2 : 1;
            if (c[1] != '\0')
                c++;
        } else if (*c == '(' || *c == '[' || *c == '{') {
            depth++;
        } else if (*c == ')' || *c == ']' || *c == '}') {
            depth--;
        } else if ((*c == ',' && depth == 0) || *c == '\0') {
            if (index == n) {
                while (begin < c && (*begin == ' ' || *begin == '\t' || *begin == '\n'))
                    begin++;
                int len = (int)(c - begin);
                snprintf(out, cap, "%.*s", len, begin);
                return;
            }
            if (*c == '\0')
                break;
            index++;
            begin = c + 1;
        }
    }
    snprintf(out, cap, "?");
}

/* Expands $1..$3 in a default message with the check's arguments. */
static void expand_default(const char *dflt, const char *args, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *c = dflt; *c != '\0' && len + 1 < cap; c++) {
        if (c[0] == '$' && c[1] >= '1' && c[1] <= '3') {
            char arg[CRS_TEXT_MAX / 4];
            nth_argument(args, c[1] - '0', arg, sizeof(arg));
            snprintf(out + len, cap - len, "%s", arg);
            len += strlen(out + len);
            c++;
        } else {
            out[len++] = *c;
            out[len] = '\0';
        }
    }
}

static void record_failure(const char *file, unsigned line, const char *dflt, const char *args,
                           const char *actual, const char *expected, const char *fmt, va_list ap)
{
    char user[CRS_TEXT_MAX / 2]; /* leaves room in `full` for the values */
    vsnprintf(user, sizeof(user), fmt, ap);
    const char *text = user + 1; /* drop the 'x' */
    if (text[0] == '\0') {
        expand_default(dflt, args, user, sizeof(user));
        text = user;
    }
    char full[CRS_TEXT_MAX];
    if (actual != NULL && expected != NULL)
        snprintf(full, sizeof(full), "%s\n    actual:   \"%s\"\n    expected: \"%s\"", text, actual,
                 expected);
    else if (actual != NULL)
        snprintf(full, sizeof(full), "%s\n    value: \"%s\"", text, actual);
    else
        copy_text(full, sizeof(full), text);

    if (g_shared == NULL) { /* outside any test: say it, nobody else will */
        fprintf(stderr, "[----] %s:%u: %s\n", file, line, full);
        return;
    }
    pthread_mutex_lock(&g_record_mu);
    g_shared->failures++;
    if (g_shared->nrecords < CRS_MAX_RECORDS) {
        struct crs_record *r = &g_shared->records[g_shared->nrecords++];
        copy_text(r->file, sizeof(r->file), file);
        r->line = line;
        copy_text(r->text, sizeof(r->text), full);
    }
    pthread_mutex_unlock(&g_record_mu);
}

/* Leaves the current phase: back to run_phase on the test's thread, else the
 * whole child goes (another thread cannot unwind the test's stack). */
__attribute__((noreturn)) static void end_test(void)
{
    if (g_shared != NULL && g_jmp_armed && pthread_equal(pthread_self(), g_test_thread))
        longjmp(g_abort_jmp, 1);
    fflush(stdout);
    fflush(stderr);
    _exit(CRS_EXIT_ABORTED);
}

void crs_expect_failed(const char *file, unsigned line, const char *dflt, const char *args,
                       const char *actual, const char *expected, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_failure(file, line, dflt, args, actual, expected, fmt, ap);
    va_end(ap);
}

void crs_assert_failed(const char *file, unsigned line, const char *dflt, const char *args,
                       const char *actual, const char *expected, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_failure(file, line, dflt, args, actual, expected, fmt, ap);
    va_end(ap);
    end_test();
}

void crs_skip(const char *fmt, ...)
{
    char text[CRS_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (g_shared != NULL) {
        pthread_mutex_lock(&g_record_mu);
        g_shared->skipped = 1;
        copy_text(g_shared->skip_text, sizeof(g_shared->skip_text), text + 1);
        pthread_mutex_unlock(&g_record_mu);
    }
    end_test();
}

void *cr_malloc(size_t size)
{
    return malloc(size);
}

void *cr_calloc(size_t nmemb, size_t size)
{
    return calloc(nmemb, size);
}

void *cr_realloc(void *ptr, size_t size)
{
    return realloc(ptr, size);
}

void cr_free(void *ptr)
{
    free(ptr);
}

void cr_log(enum criterion_severity severity, const char *msg, ...)
{
    static const char *const prefix[] = {"[----] ", "[WARN] ", "[ERR ] "};
    char text[CRS_TEXT_MAX];
    va_list ap;
    va_start(ap, msg);
    vsnprintf(text, sizeof(text), msg, ap);
    va_end(ap);
    unsigned i = (unsigned)severity < 3 ? (unsigned)severity : 2;
    fprintf(stderr, "%s%s\n", prefix[i], text);
}

/* ---- the plan: tests with their suite's options folded in -------------- */

struct crs_plan {
    const struct crs_test *test;
    char label[256]; /* "suite::name", or "suite::name[i]" for parameter i */
    void *param;     /* a ParameterizedTest's element */
    void (*suite_init)(void);
    void (*suite_fini)(void);
    double timeout;
    int signal;
    int exit_code;
    bool disabled;
};

static const struct crs_suite *find_suite(const char *name)
{
    for (const struct crs_suite *s = g_suites; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static int compare_plans(const void *a, const void *b)
{
    const struct crs_test *x = ((const struct crs_plan *)a)->test;
    const struct crs_test *y = ((const struct crs_plan *)b)->test;
    int c = strcmp(x->suite, y->suite);
    if (c == 0)
        c = strcmp(x->name, y->name);
    if (c == 0) /* the elements of one parameterized test, in order */
        c = (const char *)((const struct crs_plan *)a)->param <
                    (const char *)((const struct crs_plan *)b)->param
                ? -1
                : 1;
    return c;
}

static void plan_test(struct crs_plan *p, const struct crs_test *t, double default_timeout,
                      const struct criterion_test_params *params, size_t index)
{
    static const struct criterion_test_extra_data none;
    const struct crs_suite *s = find_suite(t->suite);
    const struct criterion_test_extra_data *so = s != NULL ? &s->opts : &none;
    memset(p, 0, sizeof(*p));
    p->test = t;
    if (params != NULL) {
        p->param = (char *)params->params + index * params->size;
        snprintf(p->label, sizeof(p->label), "%s::%s[%zu]", t->suite, t->name, index);
    } else {
        snprintf(p->label, sizeof(p->label), "%s::%s", t->suite, t->name);
    }
    p->suite_init = so->init;
    p->suite_fini = so->fini;
    p->timeout = t->opts.timeout > 0 ? t->opts.timeout
                 : so->timeout > 0   ? so->timeout
                                     : default_timeout;
    p->signal = t->opts.signal != 0 ? t->opts.signal : so->signal;
    p->exit_code = t->opts.exit_code != 0 ? t->opts.exit_code : so->exit_code;
    p->disabled = t->opts.disabled || so->disabled;
}

/* ---- the child ------------------------------------------------------------ */

/* Runs one fixture or the body; false if a cr_assert ended it. */
static bool run_phase(enum crs_phase phase, void (*fn)(void))
{
    if (fn == NULL)
        return true;
    g_shared->phase = phase;
    if (setjmp(g_abort_jmp) == 0) {
        g_jmp_armed = 1;
        fn();
        g_jmp_armed = 0;
        return true;
    }
    g_jmp_armed = 0;
    return false;
}

static const struct crs_plan *g_plan; /* child: the test it runs */

static void run_param_body(void)
{
    g_plan->test->param_fn(g_plan->param);
}

__attribute__((noreturn)) static void run_child(const struct crs_plan *p, struct crs_shared *shared)
{
    g_plan = p;
    g_shared = shared;
    g_test_thread = pthread_self();
    bool ok = run_phase(PHASE_INIT, p->suite_init);
    if (ok)
        ok = run_phase(PHASE_INIT, p->test->opts.init);
    if (ok)
        run_phase(PHASE_BODY, p->test->param_fn != NULL ? run_param_body : p->test->fn);
    run_phase(PHASE_FINI, p->test->opts.fini);
    run_phase(PHASE_FINI, p->suite_fini);
    g_shared->phase = PHASE_DONE;
    /* exit, not _exit: atexit handlers and the sanitizer's report at exit run,
     * and a non-zero status from them fails the test. */
    exit(0);
}

/* ---- the parent ------------------------------------------------------------ */

struct crs_slot {
    pid_t pid; /* 0: free */
    const struct crs_plan *plan;
    struct crs_shared *shared;
    double started, deadline;
    bool timed_out;
};

struct crs_totals {
    unsigned tested, passing, failing, crashing, skipped;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *phase_name(int phase)
{
    switch (phase) {
    case PHASE_INIT:
        return "setup";
    case PHASE_FINI:
        return "teardown";
    case PHASE_START:
        return "start";
    default:
        return "test body";
    }
}

/* The first failure goes on the [FAIL] line, the others follow it. */
static void print_fail(const struct crs_plan *p, const struct crs_shared *sh, double secs,
                       const char *why)
{
    const struct crs_test *t = p->test;
    if (why != NULL) {
        fprintf(stderr, "[FAIL] %s: %s:%u: %s (%.2fs)\n", p->label, t->file, t->line, why, secs);
    } else if (sh->nrecords > 0) {
        fprintf(stderr, "[FAIL] %s: %s:%u: %s (%.2fs)\n", p->label, sh->records[0].file,
                sh->records[0].line, sh->records[0].text, secs);
    } else {
        fprintf(stderr, "[FAIL] %s (%.2fs)\n", p->label, secs);
    }
    for (unsigned i = why != NULL ? 0 : 1; i < sh->nrecords; i++)
        fprintf(stderr, "[----]   %s:%u: %s\n", sh->records[i].file, sh->records[i].line,
                sh->records[i].text);
    if (sh->failures > sh->nrecords)
        fprintf(stderr, "[----]   ... and %u more failed checks\n", sh->failures - sh->nrecords);
}

/* Decides the outcome of a finished child, prints it, counts it; returns
 * false if it failed. */
static bool report(const struct crs_slot *slot, int status, struct crs_totals *tot)
{
    const struct crs_plan *p = slot->plan;
    const struct crs_shared *sh = slot->shared;
    double secs = now_s() - slot->started;
    char why[CRS_TEXT_MAX];
    bool crashed = false;
    bool passed = false;
    const char *reason = NULL;

    if (sh->skipped && sh->failures == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fprintf(stderr, "[SKIP] %s: %s\n", p->label,
                sh->skip_text[0] != '\0' ? sh->skip_text : "Test was skipped");
        tot->skipped++;
        return true;
    }
    tot->tested++;
    if (slot->timed_out) {
        snprintf(why, sizeof(why), "Timed out after %.2fs in its %s.", p->timeout,
                 phase_name(sh->phase));
        reason = why;
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (p->signal != 0 && sig == p->signal && sh->phase == PHASE_BODY) {
            passed = sh->failures == 0;
        } else if (p->signal != 0 && sh->phase == PHASE_BODY) {
            snprintf(why, sizeof(why), "Killed by signal %d (%s), expected signal %d (%s).", sig,
                     strsignal(sig), p->signal, strsignal(p->signal));
            reason = why;
        } else {
            crashed = true;
            snprintf(why, sizeof(why), "CRASH! Signal %d (%s) in its %s.", sig, strsignal(sig),
                     phase_name(sh->phase));
            reason = why;
        }
    } else {
        int code = WEXITSTATUS(status);
        bool sanitizer = code == CRS_SANITIZER_EXIT && p->exit_code != CRS_SANITIZER_EXIT;
        crashed = sanitizer;
        if (sanitizer) {
            snprintf(why, sizeof(why),
                     "ThreadSanitizer stopped the test in its %s (exit status %d): "
                     "see its report above.",
                     phase_name(sh->phase), code);
            reason = why;
        } else if (sh->failures > 0) {
            if (code != 0 && code != CRS_EXIT_ABORTED && code != p->exit_code) {
                snprintf(why, sizeof(why),
                         "Exited with status %d in its %s, after these failures:", code,
                         phase_name(sh->phase));
                reason = why;
            } /* else the records say it all */
        } else if (sh->phase != PHASE_DONE) {
            if (sh->phase == PHASE_BODY && code == p->exit_code && p->signal == 0) {
                passed = true;
            } else {
                snprintf(why, sizeof(why), "Exited with status %d in its %s.", code,
                         phase_name(sh->phase));
                reason = why;
            }
        } else if (code != 0) {
            snprintf(why, sizeof(why), "Exited with status %d after the test returned.", code);
            reason = why;
        } else if (p->exit_code != 0) {
            snprintf(why, sizeof(why), "The test returned; it should have exited with status %d.",
                     p->exit_code);
            reason = why;
        } else if (p->signal != 0) {
            snprintf(why, sizeof(why), "The test returned; it should have died of signal %d (%s).",
                     p->signal, strsignal(p->signal));
            reason = why;
        } else {
            passed = true;
        }
    }

    if (passed) {
        fprintf(stderr, "[PASS] %s: (%.2fs)\n", p->label, secs);
        tot->passing++;
        return true;
    }
    print_fail(p, sh, secs, reason);
    tot->failing++;
    tot->crashing += crashed;
    return false;
}

static void start_test(struct crs_slot *slot, const struct crs_plan *p, const sigset_t *child_mask)
{
    memset(slot->shared, 0, sizeof(*slot->shared));
    slot->plan = p;
    slot->timed_out = false;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "[ERR ] fork for %s: %s\n", p->label, strerror(errno));
        exit(2);
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, child_mask, NULL);
        run_child(p, slot->shared);
    }
    slot->pid = pid;
    slot->started = now_s();
    double timeout = p->timeout < 86400.0 * 365 ? p->timeout : 86400.0 * 365;
    slot->deadline = slot->started + timeout;
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--filter PATTERN] [-j N | --jobs N] [--timeout SECONDS]\n"
            "          [--fail-fast] [--always-succeed] [--list] [--help]\n"
            "Criterion-compatible runner of the ThreadSanitizer build (tests/tsan_shim).\n"
            "PATTERN is matched against \"suite/name\" as a shell glob.\n"
            "Criterion's output options (--verbose, --tap, --xml, ...) are ignored.\n",
            prog);
}

/* Options that take a value, in "--opt=value" or "--opt value" form. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "[ERR ] %s needs a value\n", name);
        exit(2);
    }
    return argv[++*i];
}

static bool is_ignored_option(const char *arg)
{
    static const char *const flags[] = {"--ascii",
                                        "--no-early-exit",
                                        "--full-stats",
                                        "--crash",
                                        "--short-filename",
                                        "-S",
                                        "--quiet",
                                        "-q",
                                        "--list-suites",
                                        "--ignore-warnings",
                                        "--debug",
                                        "--verbose",
                                        "-v"};
    static const char *const with_value[] = {
        "--verbose=", "--color=", "--tap",       "--xml", "--json",
        "--output=",  "--debug=", "--encoding=", "-O"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(arg, flags[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strncmp(arg, with_value[i], strlen(with_value[i])) == 0)
            return true;
    return false;
}

static double parse_seconds(const char *s, const char *what)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > 0)) {
        fprintf(stderr, "[ERR ] %s: not a positive number of seconds: %s\n", what, s);
        exit(2);
    }
    return v;
}

static unsigned parse_jobs(const char *s, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 0 || v > 1024) {
        fprintf(stderr, "[ERR ] %s: not a job count: %s\n", what, s);
        exit(2);
    }
    return v == 0 ? 1u : (unsigned)v; /* Criterion's 0 means "as many as CPUs"; keep it simple */
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    unsigned jobs = 1;
    double default_timeout = CRS_DEFAULT_TIMEOUT_S;
    bool fail_fast = false, always_succeed = false, list = false;
    const char *env;

    if ((env = getenv("CRITERION_JOBS")) != NULL && env[0] != '\0')
        jobs = parse_jobs(env, "CRITERION_JOBS");
    if ((env = getenv("CRITERION_TEST_TIMEOUT")) != NULL && env[0] != '\0')
        default_timeout = parse_seconds(env, "CRITERION_TEST_TIMEOUT");

    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = option_value(argc, argv, &i, "--filter")) != NULL ||
            (v = option_value(argc, argv, &i, "--pattern")) != NULL)
            filter = v;
        else if ((v = option_value(argc, argv, &i, "--jobs")) != NULL ||
                 (v = option_value(argc, argv, &i, "-j")) != NULL)
            jobs = parse_jobs(v, "--jobs");
        else if (strncmp(argv[i], "-j", 2) == 0 && argv[i][2] != '\0')
            jobs = parse_jobs(argv[i] + 2, "-j");
        else if ((v = option_value(argc, argv, &i, "--timeout")) != NULL)
            default_timeout = parse_seconds(v, "--timeout");
        else if (strcmp(argv[i], "--fail-fast") == 0)
            fail_fast = true;
        else if (strcmp(argv[i], "--always-succeed") == 0 || strcmp(argv[i], "-y") == 0)
            always_succeed = true;
        else if (strcmp(argv[i], "--list") == 0 || strcmp(argv[i], "-l") == 0)
            list = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("tsan_shim (Criterion 2.4 compatible subset)\n");
            return 0;
        } else if (!is_ignored_option(argv[i])) {
            fprintf(stderr, "[ERR ] unknown option: %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }

    /* Parameter functions run here, in the parent, before any fork. */
    size_t ntests = 0;
    for (const struct crs_test *t = g_tests; t != NULL; t = t->next)
        ntests++;
    struct criterion_test_params *params = calloc(ntests > 0 ? ntests : 1, sizeof(*params));
    bool *selected = calloc(ntests > 0 ? ntests : 1, sizeof(*selected));
    if (params == NULL || selected == NULL) {
        fprintf(stderr, "[ERR ] out of memory\n");
        return 2;
    }
    size_t n = 0, i = 0;
    for (const struct crs_test *t = g_tests; t != NULL; t = t->next, i++) {
        char id[512];
        snprintf(id, sizeof(id), "%s/%s", t->suite, t->name);
        selected[i] = filter == NULL || fnmatch(filter, id, 0) == 0;
        if (!selected[i])
            continue;
        if (t->param_fn != NULL) {
            params[i] = t->params();
            n += params[i].length;
        } else {
            n++;
        }
    }
    struct crs_plan *plans = calloc(n > 0 ? n : 1, sizeof(*plans));
    if (plans == NULL) {
        fprintf(stderr, "[ERR ] out of memory\n");
        return 2;
    }
    size_t k = 0;
    i = 0;
    for (const struct crs_test *t = g_tests; t != NULL; t = t->next, i++) {
        if (!selected[i])
            continue;
        if (t->param_fn == NULL)
            plan_test(&plans[k++], t, default_timeout, NULL, 0);
        for (size_t j = 0; t->param_fn != NULL && j < params[i].length; j++)
            plan_test(&plans[k++], t, default_timeout, &params[i], j);
    }
    qsort(plans, n, sizeof(*plans), compare_plans);

    if (list) {
        for (size_t i = 0; i < n; i++)
            printf("%s%s\n", plans[i].label, plans[i].disabled ? " (disabled)" : "");
        return 0;
    }

    /* SIGCHLD stays blocked in the parent, which waits for it with
     * sigtimedwait; children get the mask main() started with. */
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);

    if (jobs > n)
        jobs = n > 0 ? (unsigned)n : 1u;
    struct crs_slot *slots = calloc(jobs, sizeof(*slots));
    if (slots == NULL) {
        fprintf(stderr, "[ERR ] out of memory\n");
        return 2;
    }
    for (unsigned j = 0; j < jobs; j++) {
        slots[j].shared = mmap(NULL, sizeof(struct crs_shared), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (slots[j].shared == MAP_FAILED) {
            fprintf(stderr, "[ERR ] mmap: %s\n", strerror(errno));
            return 2;
        }
    }

    struct crs_totals tot = {0};
    size_t next = 0;
    unsigned running = 0;
    bool stop = false;
    for (;;) {
        while (!stop && next < n && running < jobs) {
            const struct crs_plan *p = &plans[next++];
            if (p->disabled) {
                fprintf(stderr, "[SKIP] %s: Test is disabled\n", p->label);
                tot.skipped++;
                continue;
            }
            struct crs_slot *slot = slots;
            while (slot->pid != 0)
                slot++;
            start_test(slot, p, &old_mask);
            running++;
        }
        if (running == 0)
            break;

        double now = now_s(), wake = now + 3600.0;
        for (unsigned j = 0; j < jobs; j++)
            if (slots[j].pid != 0 && !slots[j].timed_out && slots[j].deadline < wake)
                wake = slots[j].deadline;
        double wait = wake > now ? wake - now : 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        sigtimedwait(&chld, NULL, &ts); /* a SIGCHLD, the next deadline or EINTR */

        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (unsigned j = 0; j < jobs; j++) {
                if (slots[j].pid != pid)
                    continue;
                if (!report(&slots[j], status, &tot) && fail_fast)
                    stop = true;
                slots[j].pid = 0;
                running--;
            }
        }
        now = now_s();
        for (unsigned j = 0; j < jobs; j++) {
            if (slots[j].pid != 0 && !slots[j].timed_out && now >= slots[j].deadline) {
                kill(slots[j].pid, SIGKILL);
                slots[j].timed_out = true;
            }
        }
    }

    fprintf(stderr, "[====] Synthesis: Tested: %u | Passing: %u | Failing: %u | Crashing: %u \n",
            tot.tested, tot.passing, tot.failing, tot.crashing);
    for (unsigned j = 0; j < jobs; j++)
        munmap(slots[j].shared, sizeof(struct crs_shared));
    free(slots);
    free(plans);
    for (i = 0; i < ntests; i++)
        if (params[i].cleanup != NULL)
            params[i].cleanup(&params[i]);
    free(params);
    free(selected);
    return always_succeed || tot.failing == 0 ? 0 : 1;
}

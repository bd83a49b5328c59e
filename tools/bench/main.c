/* tools/bench/main.c — netsys-bench's entry point: the table of subcommands,
 * the option parser they share, the JSON result line, the watchdog and the
 * /proc memory readers.
 *
 * Not for: workloads. Each lives in its own file (bench_runtime.c,
 * bench_limit.c, ...) and is added to `commands` below.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

extern const bench_cmd_t bench_cmd_w1;
extern const bench_cmd_t bench_cmd_w2;
extern const bench_cmd_t bench_cmd_w3;
extern const bench_cmd_t bench_cmd_w2_limit;
extern const bench_cmd_t bench_cmd_w1_limit;
extern const bench_cmd_t bench_cmd_sup_restart;
extern const bench_cmd_t bench_cmd_echo_client;
extern const bench_cmd_t bench_cmd_echo_server;
extern const bench_cmd_t bench_cmd_idle_client;
extern const bench_cmd_t bench_cmd_soak;

/* New subcommands go here. */
/* clang-format off */
static const bench_cmd_t *const commands[] = {
    &bench_cmd_w1,
    &bench_cmd_w2,
    &bench_cmd_w3,
    &bench_cmd_w2_limit,
    &bench_cmd_w1_limit,
    &bench_cmd_sup_restart,
    &bench_cmd_echo_client,
    &bench_cmd_echo_server,
    &bench_cmd_idle_client,
    &bench_cmd_soak,
};
/* clang-format on */
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

#define DEFAULT_TIMEOUT_S 120.0

/* ---- diagnostics --------------------------------------------------------- */

void bench_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "netsys-bench %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void bench_info(const bench_common_t *common, const char *cmd, const char *fmt, ...)
{
    if (common == NULL || !common->verbose)
        return;
    va_list ap;
    fprintf(stderr, "netsys-bench %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- clock and memory ---------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

uint64_t bench_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    size_t klen = strlen(key);
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtoull(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

uint64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0)
        return 0;
    return (uint64_t)resident * (uint64_t)page;
}

int bench_raise_nofile(uint64_t *soft)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    return 0;
}

/* ---- watchdog ------------------------------------------------------------ */

static struct {
    char what[64];
    uint64_t deadline_ns;
    bool started;
    _Atomic(const _Atomic uint64_t *) progress; /* NULL until a workload sets it */
    _Atomic uint64_t progress_total;
} watchdog;

static void *watchdog_main(void *arg)
{
    (void)arg;
    uint64_t last = 0;
    uint64_t last_change_ns = bench_now_ns();
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= watchdog.deadline_ns)
            break;
        /* Wake once a second to see whether the run is moving at all, so the
         * message can tell a stall (lost wake-up) from a slow run. */
        uint64_t step =
            watchdog.deadline_ns - now < 1000000000u ? watchdog.deadline_ns - now : 1000000000u;
        struct timespec ts = {(time_t)(step / 1000000000u), (long)(step % 1000000000u)};
        nanosleep(&ts, NULL);
        const _Atomic uint64_t *p = atomic_load(&watchdog.progress);
        if (p != NULL) {
            uint64_t v = atomic_load_explicit(p, memory_order_relaxed);
            if (v != last) {
                last = v;
                last_change_ns = bench_now_ns();
            }
        }
    }
    char msg[256];
    int n;
    if (atomic_load(&watchdog.progress) != NULL)
        n = snprintf(msg, sizeof msg,
                     "netsys-bench %s: watchdog: no result before the timeout, giving up "
                     "(progress %llu of %llu, last advanced %.1f s ago)\n",
                     watchdog.what, (unsigned long long)last,
                     (unsigned long long)atomic_load(&watchdog.progress_total),
                     (double)(bench_now_ns() - last_change_ns) / 1e9);
    else
        n = snprintf(msg, sizeof msg,
                     "netsys-bench %s: watchdog: no result before the timeout, giving up\n",
                     watchdog.what);
    if (n > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    _exit(3);
}

void bench_watchdog_progress(const _Atomic uint64_t *counter, uint64_t total)
{
    atomic_store(&watchdog.progress_total, total);
    atomic_store(&watchdog.progress, counter);
}

void bench_watchdog_start(const char *what, double seconds)
{
    if (watchdog.started || !(seconds > 0))
        return;
    snprintf(watchdog.what, sizeof watchdog.what, "%s", what);
    watchdog.deadline_ns = bench_now_ns() + (uint64_t)(seconds * 1e9);
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, watchdog_main, NULL) != 0) {
        bench_err(what, "cannot start the watchdog thread");
        exit(2);
    }
    pthread_attr_destroy(&attr);
    watchdog.started = true;
}

/* ---- options ------------------------------------------------------------- */

/* Integers as people write them in benchmark commands: 1000000, 1e6, 1M, 10k.
 * Suffixes are decimal (k = 1e3, M = 1e6, G = 1e9). */
static int parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    char *end = NULL;
    errno = 0;
    if (strpbrk(s, ".eE") != NULL) {
        double d = strtod(s, &end);
        if (errno != 0 || *end != '\0' || !(d >= 0) || d > 1.8e19 || d != floor(d))
            return -1;
        *out = (uint64_t)d;
        return 0;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    uint64_t mult = 1;
    if (*end != '\0') {
        switch (*end) {
        case 'k':
        case 'K':
            mult = 1000;
            break;
        case 'm':
        case 'M':
            mult = 1000000;
            break;
        case 'g':
        case 'G':
            mult = 1000000000;
            break;
        default:
            return -1;
        }
        if (end[1] != '\0')
            return -1;
    }
    if (v > UINT64_MAX / mult)
        return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    if (errno != 0 || *end != '\0' || d != d)
        return -1;
    *out = d;
    return 0;
}

static void print_opt(const char *name, const char *arg, const char *help)
{
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", name, arg[0] ? " " : "", arg);
    printf("  %-22s %s\n", left, help);
}

static void print_usage(const char *usage, const bench_opt_t *opts, double default_timeout_s)
{
    printf("%s\n\nOptions:\n", usage);
    for (const bench_opt_t *o = opts; o != NULL && o->name != NULL; o++) {
        const char *arg = o->kind == BENCH_OPT_U64      ? "N"
                          : o->kind == BENCH_OPT_DOUBLE ? "X"
                          : o->kind == BENCH_OPT_STRING ? "S"
                                                        : "";
        print_opt(o->name, arg, o->help);
    }
    char timeout_help[128];
    if (default_timeout_s > 0)
        snprintf(timeout_help, sizeof timeout_help,
                 "watchdog: fail (exit 3) if no result after S seconds (default %g)",
                 default_timeout_s);
    else
        snprintf(timeout_help, sizeof timeout_help,
                 "watchdog: fail (exit 3) if no result after S seconds (default: see above)");
    print_opt("timeout", "S", timeout_help);
    print_opt("verbose", "", "progress on stderr");
    print_opt("help", "", "this text");
    printf("\nPrints one JSON line on stdout; diagnostics go to stderr. Exit status: 0 ok,\n"
           "1 run or correctness check failed, 2 bad usage, 3 watchdog fired.\n");
}

int bench_parse(int argc, char **argv, const char *usage, const bench_opt_t *opts,
                bench_common_t *common)
{
    return bench_parse_timeout(argc, argv, usage, opts, common, DEFAULT_TIMEOUT_S);
}

int bench_parse_timeout(int argc, char **argv, const char *usage, const bench_opt_t *opts,
                        bench_common_t *common, double default_timeout_s)
{
    const char *cmd = argv[0];
    common->timeout_s = default_timeout_s > 0 ? default_timeout_s : 0;
    common->verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_usage(usage, opts, default_timeout_s);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            bench_err(cmd, "unexpected argument '%s' (try --help)", arg);
            return 2;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const char *value = eq != NULL ? eq + 1 : NULL;

        if (nlen == 7 && strncmp(name, "verbose", 7) == 0 && value == NULL) {
            common->verbose = true;
            continue;
        }
        const bench_opt_t *found = NULL;
        for (const bench_opt_t *o = opts; o != NULL && o->name != NULL; o++) {
            if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0) {
                found = o;
                break;
            }
        }
        bool is_timeout = found == NULL && nlen == 7 && strncmp(name, "timeout", 7) == 0;
        if (found == NULL && !is_timeout) {
            bench_err(cmd, "unknown option '%s' (try --help)", arg);
            return 2;
        }
        if (found != NULL && found->kind == BENCH_OPT_FLAG) {
            if (value != NULL) {
                bench_err(cmd, "option --%s takes no value", found->name);
                return 2;
            }
            *(bool *)found->target = true;
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                bench_err(cmd, "option '%s' needs a value", arg);
                return 2;
            }
            value = argv[++i];
        }
        int rc = 0;
        if (is_timeout) {
            rc = parse_double(value, &common->timeout_s);
            if (rc == 0 && !(common->timeout_s > 0))
                rc = -1;
        } else if (found->kind == BENCH_OPT_U64) {
            rc = parse_u64(value, (uint64_t *)found->target);
        } else if (found->kind == BENCH_OPT_DOUBLE) {
            rc = parse_double(value, (double *)found->target);
        } else {
            *(const char **)found->target = value;
        }
        if (rc != 0) {
            bench_err(cmd, "bad value '%s' for --%.*s", value, (int)nlen, name);
            return 2;
        }
    }
    if (common->timeout_s > 0)
        bench_watchdog_start(cmd, common->timeout_s);
    return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_raw(bench_json_t *j, const char *s, size_t n)
{
    if (j->overflow)
        return;
    /* Keep room for the closing brace and the terminator. */
    if (j->len + n + 2 > sizeof j->buf) {
        j->overflow = true;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void json_string(bench_json_t *j, const char *s)
{
    char tmp[512];
    size_t n = 0;
    tmp[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && n + 8 < sizeof tmp; p++) {
        if (*p == '"' || *p == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "\\u%04x", *p);
        } else {
            tmp[n++] = (char)*p;
        }
    }
    tmp[n++] = '"';
    json_raw(j, tmp, n);
}

static void json_key(bench_json_t *j, const char *key)
{
    size_t mark = j->len;
    if (j->len > 1)
        json_raw(j, ",", 1);
    json_string(j, key);
    json_raw(j, ":", 1);
    if (j->overflow)
        j->len = mark;
}

static void json_number(bench_json_t *j, const char *key, const char *text)
{
    size_t mark = j->len;
    json_key(j, key);
    json_raw(j, text, strlen(text));
    if (j->overflow) {
        j->len = mark;
        j->buf[mark] = '\0';
    }
}

void bench_json_begin(bench_json_t *j, const char *workload, const char *metric, double value,
                      const char *unit)
{
    j->len = 0;
    j->overflow = false;
    json_raw(j, "{", 1);
    bench_json_str(j, "system", "netsys");
    bench_json_str(j, "workload", workload);
    bench_json_str(j, "metric", metric);
    bench_json_f64(j, "value", value);
    bench_json_str(j, "unit", unit);
}

void bench_json_begin_event(bench_json_t *j, const char *event)
{
    j->len = 0;
    j->overflow = false;
    json_raw(j, "{", 1);
    bench_json_str(j, "event", event);
    bench_json_str(j, "system", "netsys");
}

void bench_json_u64(bench_json_t *j, const char *key, uint64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    json_number(j, key, text);
}

void bench_json_i64(bench_json_t *j, const char *key, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    json_number(j, key, text);
}

void bench_json_f64(bench_json_t *j, const char *key, double v)
{
    char text[48];
    if (v != v || v - v != 0) /* NaN or infinity: JSON has no spelling for them */
        snprintf(text, sizeof text, "null");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(text, sizeof text, "%.0f", v);
    else if (fabs(v) >= 1000)
        snprintf(text, sizeof text, "%.1f", v);
    else
        snprintf(text, sizeof text, "%.4g", v);
    json_number(j, key, text);
}

void bench_json_str(bench_json_t *j, const char *key, const char *v)
{
    size_t mark = j->len;
    json_key(j, key);
    json_string(j, v != NULL ? v : "");
    if (j->overflow) {
        j->len = mark;
        j->buf[mark] = '\0';
    }
}

void bench_json_bool(bench_json_t *j, const char *key, bool v)
{
    json_number(j, key, v ? "true" : "false");
}

void bench_json_print(bench_json_t *j)
{
    if (j->overflow)
        fprintf(stderr, "netsys-bench: result line too long, some fields were dropped\n");
    fwrite(j->buf, 1, j->len, stdout);
    fputs("}\n", stdout);
    fflush(stdout);
}

/* ---- dispatch ------------------------------------------------------------ */

static void print_commands(FILE *f)
{
    fprintf(f, "usage: netsys-bench <workload> [options]   (netsys-bench <workload> --help)\n\n"
               "Workloads:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_commands(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_commands(stdout);
        return 0;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(argv[1], commands[i]->name) == 0) {
            return commands[i]->run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "netsys-bench: unknown workload '%s'\n", argv[1]);
    print_commands(stderr);
    return 2;
}

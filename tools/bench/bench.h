/* tools/bench/bench.h — what every netsys-bench subcommand shares: the
 * command table entry, option parsing, the one-line JSON result, the
 * watchdog, the monotonic clock and /proc memory figures.
 *
 * A subcommand is one .c file that defines a bench_cmd_t and is listed in the
 * table in main.c. It prints exactly one JSON result line on stdout (through
 * bench_json_*), everything else on stderr, and returns 0 on success or 1 when
 * a run or a correctness check failed. A server subcommand (echo-server) also
 * prints status lines there ({"event":...}, bench_json_begin_event), so that
 * scripts can wait for it to listen; so does a long run (soak: one
 * {"event":"sample",...} line every few seconds) to show its progress.
 *
 * Not for: anything the runtime itself needs; the benchmarks only use the
 * public API (plus runtime/mpsc.h for the bare-queue baseline).
 */
#ifndef NSYS_TOOLS_BENCH_H
#define NSYS_TOOLS_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- subcommands -------------------------------------------------------- */

typedef struct bench_cmd {
    const char *name;
    const char *summary;               /* one line for the command list */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} bench_cmd_t;

/* ---- options ------------------------------------------------------------ */

typedef enum bench_opt_kind {
    BENCH_OPT_U64,    /* non-negative integer; accepts 1000000, 1e6, 1M, 10k */
    BENCH_OPT_DOUBLE, /* a floating-point number */
    BENCH_OPT_STRING, /* kept as a pointer into argv */
    BENCH_OPT_FLAG    /* bool set to true when present; takes no value */
} bench_opt_kind_t;

typedef struct bench_opt {
    const char *name; /* without the leading "--" */
    bench_opt_kind_t kind;
    void *target; /* uint64_t*, double*, const char ** or bool* by kind */
    const char *help;
} bench_opt_t;

/* Options every subcommand accepts, parsed with its own. */
typedef struct bench_common {
    double timeout_s; /* watchdog; default 120 */
    bool verbose;     /* progress on stderr */
} bench_common_t;

/* Parses argv[1..] against `opts` (terminated by an entry with name NULL)
 * and the common options. Prints usage to stdout and returns 1 on --help (the
 * subcommand then exits 0), an error to stderr and returns 2 on bad input, 0
 * otherwise. `usage` is the subcommand's synopsis and description. Starts the
 * watchdog on success. */
int bench_parse(int argc, char **argv, const char *usage, const bench_opt_t *opts,
                bench_common_t *common);

/* As bench_parse, with the watchdog's default `default_timeout_s` instead of
 * 120 s. 0 there means: no watchdog unless --timeout is given
 * (common->timeout_s is then 0), for subcommands whose bound depends on their
 * own options (a server that runs until a signal); they call
 * bench_watchdog_start themselves when they need one. */
int bench_parse_timeout(int argc, char **argv, const char *usage, const bench_opt_t *opts,
                        bench_common_t *common, double default_timeout_s);

/* ---- watchdog ----------------------------------------------------------- */

/* Starts a thread that, unless the process is over before `seconds`, prints
 * "<what>: watchdog: no result after S s" to stderr and exits with status 3.
 * Called by bench_parse; a second call replaces nothing. */
void bench_watchdog_start(const char *what, double seconds);

/* Optional: a counter the workload advances as it goes (relaxed stores, a
 * few per thousand messages) and its final value. The watchdog then says how
 * far the run got and how long ago it last moved, which tells a stall from a
 * slow run. `counter` must live until the process exits. */
void bench_watchdog_progress(const _Atomic uint64_t *counter, uint64_t total);

/* ---- clock and memory --------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* A "Key:" line of /proc/self/status in kB (e.g. "VmHWM", "VmRSS"), or 0 if
 * it cannot be read. */
uint64_t bench_status_kb(const char *key);

/* Resident set size now (/proc/self/statm: resident pages x page size), in
 * bytes; 0 if it cannot be read. */
uint64_t bench_rss_bytes(void);

/* ---- descriptors --------------------------------------------------------- */

/* Raises the soft RLIMIT_NOFILE to the hard limit (if allowed) and stores
 * the soft limit now in effect (UINT64_MAX: unlimited). 0, or -1 if the
 * limit cannot be read. */
int bench_raise_nofile(uint64_t *soft);

/* ---- the one result line ------------------------------------------------- */

/* A JSON object built field by field and printed as one line. Fields appear in
 * the order they were added; the builder never fails visibly (a line that
 * would overflow is truncated at a field boundary and the tail dropped with a
 * warning on stderr). */
typedef struct bench_json {
    char buf[4096];
    size_t len;
    bool overflow;
} bench_json_t;

/* Starts {"system":"netsys","workload":W,"metric":M,"value":V,"unit":U. */
void bench_json_begin(bench_json_t *j, const char *workload, const char *metric, double value,
                      const char *unit);
/* Starts {"event":E,"system":"netsys" — a status line of a long-running
 * subcommand (a server saying it listens), not a result. */
void bench_json_begin_event(bench_json_t *j, const char *event);
void bench_json_u64(bench_json_t *j, const char *key, uint64_t v);
void bench_json_i64(bench_json_t *j, const char *key, int64_t v);
void bench_json_f64(bench_json_t *j, const char *key, double v);
void bench_json_str(bench_json_t *j, const char *key, const char *v);
void bench_json_bool(bench_json_t *j, const char *key, bool v);
/* Closes the object, writes it and a newline to stdout and flushes. */
void bench_json_print(bench_json_t *j);

/* ---- small helpers ------------------------------------------------------- */

/* Prints "netsys-bench <cmd>: <message>" to stderr. */
void bench_err(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Like bench_err, only when verbose is on. */
void bench_info(const bench_common_t *common, const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* For fan-in workloads: producer p of P sends the indices
 * [bench_range_start(p), bench_range_start(p + 1)) out of m. The products
 * stay in 64 bits because callers bound m and P (BENCH_FANIN_MAX_*). */
#define BENCH_FANIN_MAX_M (UINT64_C(1) << 40)
#define BENCH_FANIN_MAX_PRODUCERS 1024u

static inline uint64_t bench_range_start(uint64_t p, uint64_t producers, uint64_t m)
{
    return m * p / producers;
}

/* The producer whose range holds index i (i < m). */
static inline uint64_t bench_range_owner(uint64_t i, uint64_t producers, uint64_t m)
{
    uint64_t p = i * producers / m;
    while (p + 1 < producers && bench_range_start(p + 1, producers, m) <= i)
        p++;
    while (p > 0 && bench_range_start(p, producers, m) > i)
        p--;
    return p;
}

/* The same, for a consumer's hot loop: messages come in runs from one
 * producer, so the last owner (*hint) is tried first. starts[p] is
 * bench_range_start(p), starts[producers] == m. */
static inline uint64_t bench_range_owner_hint(uint64_t i, const uint64_t *starts,
                                              uint64_t producers, uint64_t m, uint64_t *hint)
{
    uint64_t p = *hint;
    if (i < starts[p] || i >= starts[p + 1]) {
        p = bench_range_owner(i, producers, m);
        *hint = p;
    }
    return p;
}

#endif

/* tools/netsys/run_report.c — what `netsys run` shows: the live status line
 * on a terminal (redrawn in place with "\r", cleared at exit, kept intact by
 * a log sink that clears it before each log line) and the summary at exit,
 * as text or as one JSON line.
 *
 * Every field comes from RUN_COUNTERS (run.h), so a new counter shows up in
 * the status line and both summaries without an edit here.
 *
 * Not for: counting (run_observer.c) or deciding when to stop (cmd_run.c).
 */
#include "run.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const char *const counter_json[] = {
#define RUN_COUNTER_JSON(id, json, label, status) json,
    RUN_COUNTERS(RUN_COUNTER_JSON)
#undef RUN_COUNTER_JSON
};
static const char *const counter_label[] = {
#define RUN_COUNTER_LABEL(id, json, label, status) label,
    RUN_COUNTERS(RUN_COUNTER_LABEL)
#undef RUN_COUNTER_LABEL
};
static const char *const counter_status[] = {
#define RUN_COUNTER_STATUS(id, json, label, status) status,
    RUN_COUNTERS(RUN_COUNTER_STATUS)
#undef RUN_COUNTER_STATUS
};

static const char *const traffic_json[] = {
#define RUN_TRAFFIC_JSON(id, json, label) json,
    CLI_TRAFFIC(RUN_TRAFFIC_JSON)
#undef RUN_TRAFFIC_JSON
};
static const char *const traffic_label[] = {
#define RUN_TRAFFIC_LABEL(id, json, label) label,
    CLI_TRAFFIC(RUN_TRAFFIC_LABEL)
#undef RUN_TRAFFIC_LABEL
};

void run_snapshot_take(run_shared_t *sh, run_snapshot_t *out)
{
    for (size_t i = 0; i < RUN_NCOUNTERS; i++)
        out->counters[i] = atomic_load_explicit(&sh->counters[i], memory_order_relaxed);
    for (size_t i = 0; i < CLI_NTRAFFIC; i++)
        out->traffic[i] = atomic_load_explicit(&cli_traffic.n[i], memory_order_relaxed);
    out->link_state = atomic_load(&cli_traffic.state); /* before the delay: see cli.h */
    out->backoff_ms = atomic_load(&cli_traffic.backoff_ms);
    out->uptime_ms = (uv_hrtime() - sh->start_ns) / 1000000u;
}

/* Children running now: every start not yet matched by an exit. */
static uint64_t children_up(const run_snapshot_t *snap)
{
    uint64_t started = snap->counters[RUN_STARTED], exited = snap->counters[RUN_EXITS];
    return started > exited ? started - exited : 0;
}

/* ---- status line ------------------------------------------------------------ */

/* The line as last drawn, so the log sink can redraw it; under status_mu. */
static struct {
    uv_mutex_t mu;
    bool active;
    char name[64];
    char line[256];
} status;

static void status_erase_locked(void)
{
    fputs("\r\033[K", stdout);
}

static void status_put_locked(void)
{
    status_erase_locked();
    fputs(status.line, stdout);
    fflush(stdout);
}

/* Writes a log record the way the default sink does, with the status line
 * out of its way. Called under the logger's own lock, from any thread. */
static void status_log_sink(void *userdata, const nsys_log_record_t *rec)
{
    (void)userdata;
    time_t secs = (time_t)(rec->time_ns / 1000000000u);
    struct tm tm;
    char who[48], level[8];
    const char *name = nsys_log_level_name(rec->level);
    size_t i = 0;

    gmtime_r(&secs, &tm);
    if (rec->scheduler < 0)
        snprintf(who, sizeof who, "-");
    else if (rec->actor == 0)
        snprintf(who, sizeof who, "s%d", rec->scheduler);
    else
        snprintf(who, sizeof who, "s%d a%" PRIu32 ".%" PRIu32, rec->scheduler,
                 NSYS_REF_SLOT(rec->actor), NSYS_REF_GEN(rec->actor));
    for (; name[i] != '\0' && i < sizeof level - 1; i++)
        level[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    level[i] = '\0';

    uv_mutex_lock(&status.mu);
    if (status.active) {
        status_erase_locked();
        fflush(stdout);
    }
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ %-5s [%s] %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            (unsigned)(rec->time_ns / 1000000u % 1000u), level, who, rec->message);
    if (status.active)
        status_put_locked();
    uv_mutex_unlock(&status.mu);
}

void run_status_begin(const char *name)
{
    uv_mutex_init(&status.mu);
    snprintf(status.name, sizeof status.name, "%s", name);
    status.line[0] = '\0';
    status.active = true;
    nsys_log_set_sink(status_log_sink, NULL);
}

static size_t terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void run_status_draw(const run_snapshot_t *snap)
{
    char line[sizeof status.line];
    size_t n = 0;
    uint64_t secs = snap->uptime_ms / 1000u;

#define STATUS_APPEND(...)                                                                         \
    do {                                                                                           \
        if (n < sizeof line)                                                                       \
            n += (size_t)snprintf(line + n, sizeof line - n, __VA_ARGS__);                         \
    } while (0)
    STATUS_APPEND("%s", status.name);
    if (snap->traffic[CLI_TRAFFIC_PINGERS] > 0) {
        const uint64_t *t = snap->traffic;
        if (snap->link_state == NSYS_CLIENT_BACKOFF)
            STATUS_APPEND(" | retry in %" PRIu64 "ms", snap->backoff_ms);
        else
            STATUS_APPEND(" | link %s", nsys_client_state_name(snap->link_state));
        STATUS_APPEND(", %" PRIu64 " reconnects | sent %" PRIu64 " echoed %" PRIu64
                      " failed %" PRIu64 " lost %" PRIu64,
                      t[CLI_TRAFFIC_RECONNECTS], t[CLI_TRAFFIC_SENT], t[CLI_TRAFFIC_ECHOED],
                      t[CLI_TRAFFIC_FAILED], t[CLI_TRAFFIC_LOST]);
    }
    STATUS_APPEND(" | up %" PRIu64, children_up(snap));
    for (size_t i = 0; i < RUN_NCOUNTERS; i++)
        if (counter_status[i] != NULL)
            STATUS_APPEND(" | %s %" PRIu64, counter_status[i], snap->counters[i]);
    STATUS_APPEND(" | uptime %" PRIu64 ":%02u:%02u", secs / 3600u, (unsigned)(secs / 60u % 60u),
                  (unsigned)(secs % 60u));
#undef STATUS_APPEND
    /* A line that wraps could no longer be redrawn with "\r". */
    size_t cols = terminal_columns();
    if (cols > 1 && strlen(line) > cols - 1)
        line[cols - 1] = '\0';

    uv_mutex_lock(&status.mu);
    memcpy(status.line, line, sizeof line);
    status_put_locked();
    uv_mutex_unlock(&status.mu);
}

void run_status_end(void)
{
    if (!status.active)
        return;
    nsys_log_set_sink(NULL, NULL);
    uv_mutex_lock(&status.mu);
    status_erase_locked();
    fflush(stdout);
    status.active = false;
    uv_mutex_unlock(&status.mu);
    uv_mutex_destroy(&status.mu);
}

/* ---- summary ------------------------------------------------------------------ */

static const char *signal_name(int signum)
{
    switch (signum) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    default:
        return "a signal";
    }
}

static void print_json(const run_outcome_t *out, const run_snapshot_t *snap)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    if (o != NULL) {
        cJSON_AddStringToObject(o, "name", out->name);
        cJSON_AddNumberToObject(o, "uptime_s", (double)snap->uptime_ms / 1000.0);
        for (size_t i = 0; i < RUN_NCOUNTERS; i++)
            if (counter_json[i] != NULL)
                cJSON_AddNumberToObject(o, counter_json[i], (double)snap->counters[i]);
        for (size_t i = 0; i < CLI_NTRAFFIC; i++)
            cJSON_AddNumberToObject(o, traffic_json[i], (double)snap->traffic[i]);
        cJSON_AddBoolToObject(o, "gave_up", out->stop == RUN_STOP_ROOT_EXIT);
        cJSON_AddNumberToObject(o, "exit_status", out->exit_status);
        text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    if (text == NULL) {
        cli_error("out of memory while writing the summary");
        return;
    }
    puts(text);
    cJSON_free(text);
}

static void print_text(const run_outcome_t *out, const run_snapshot_t *snap)
{
    uint64_t ms = snap->uptime_ms;

    printf("%s: ", out->name);
    switch (out->stop) {
    case RUN_STOP_SIGNAL:
        printf("stopped by %s", signal_name(out->signum));
        break;
    case RUN_STOP_DURATION:
        printf("stopped at the end of --duration");
        break;
    case RUN_STOP_ROOT_EXIT:
        printf("the root supervisor gave up (%s)", nsys_strerror(out->reason));
        break;
    case RUN_STOP_START_FAILED:
        printf("failed to start (%s)", nsys_strerror(out->reason));
        break;
    case RUN_STOP_ERROR:
        printf("stopped on an error (%s)", nsys_strerror(out->reason));
        break;
    }
    printf(" after %" PRIu64 ".%03u s\n", ms / 1000u, (unsigned)(ms % 1000u));
    for (size_t i = 0; i < RUN_NCOUNTERS; i++)
        printf("  %-18s %" PRIu64 "\n", counter_label[i], snap->counters[i]);
    if (snap->traffic[CLI_TRAFFIC_PINGERS] > 0) {
        for (size_t i = 0; i < CLI_NTRAFFIC; i++)
            printf("  %-18s %" PRIu64 "\n", traffic_label[i], snap->traffic[i]);
    }
    printf("  %-18s %s\n", "gave up", out->stop == RUN_STOP_ROOT_EXIT ? "yes" : "no");
    printf("  %-18s %d\n", "exit status", out->exit_status);
}

void run_summary_print(const run_outcome_t *out, const run_snapshot_t *snap, bool json)
{
    if (json)
        print_json(out, snap);
    else
        print_text(out, snap);
    fflush(stdout);
}

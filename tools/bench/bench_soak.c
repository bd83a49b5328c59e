/* tools/bench/bench_soak.c — `netsys-bench soak`: the soak benchmark of
 * issue 5 (resilient client). Minutes of connection churn through the
 * fault-injecting proxy, and the question whether memory stays flat.
 *
 * One process, one runtime:
 *
 *   N resilient clients --> proxy (faults) --> echo listener (length codec)
 *
 * The clients (nsys_tcp_client_start, heartbeat on, short backoff) send
 * sequence-numbered messages at a steady rate, paced by one ticker actor,
 * and check every echo: right length, right client, a number that was sent,
 * the pattern of that number, and on one connection strictly increasing
 * numbers. The proxy follows a repeating schedule (churn_steps below):
 * periodic resets every 0.5 - 3 s with latency and jitter, a blackhole the
 * heartbeat must detect, and a period of refused connections.
 *
 * The main thread samples the RSS (and malloc's in-use bytes, descriptors,
 * live actors) every --sample seconds and prints an {"event":"sample",...}
 * line every --report seconds. After --duration it computes the RSS growth:
 * the median of the last --window samples minus the median of the first
 * --window samples after --warmup. Then it drains: the ticker stops, the
 * faults are lifted, every client's outbox must empty (so each client's
 * sent == written + failed can be checked exactly against its counters and
 * against what this program saw), the clients are stopped, and the live
 * actors and open descriptors must be back to what they were before the
 * first client started. The result line (workload soak_churn, metric
 * rss_growth_bytes) says all of it; "ok" covers the correctness checks,
 * "target_met" the < 1 MiB target (a figure, not a pass/fail of the run).
 *
 * Not for: CI (a 10-minute run; tools/bench/run_soak.sh drives it), nor
 * throughput: the rate is deliberately modest.
 */
#define _GNU_SOURCE
#include "bench_rt.h"

#include <netsys/client.h>
#include <netsys/log.h>
#include <netsys/net.h>
#include <netsys/proxy.h>

#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG_TICK (NSYS_MSG_USER + 1u)

#define SOAK_MAGIC 0x534f414bu /* "SOAK" */
#define HEADER_BYTES 16u       /* magic (4), client index (4), sequence number (8) */
#define TICK_MS 10u
#define BURST_PER_TICK 64u /* a late ticker catches up by at most this per client and tick */
#define TARGET_BYTES (1024.0 * 1024.0)
#define MAX_CLIENTS 4096u
#define MAX_SIZE (64u * 1024u)
#define MAX_DURATION_S 86400.0
#define MIN_SAMPLE_S 0.1
#define STOP_WAIT_S 10.0
#define QUIET_CHECKS 3u /* equal readings in a row before actors/fds count as settled */
#define POLL_MS 100u

static const char cmd_name[] = "soak";
static const char workload[] = "soak_churn";
static const char metric[] = "rss_growth_bytes";

/* One cycle of the churn schedule, CYCLE_MS long and repeated. Every
 * connection that lived through the blackhole is reset before traffic flows
 * again (the "flush" step: still blackholed, new connections refused, every
 * open one reset 1 ms later): a blackhole drops bytes in the middle of a
 * stream, and a length-framed stream that lost bytes is garbage, which is
 * not what this benchmark checks. */
#define CYCLE_MS 60000u
static const nsys_proxy_step_t churn_steps[] = {
    /* 0 - 15 s: slow churn, a little latency */
    {.at_ms = 0, .faults = {.latency_ms = 2, .jitter_ms = 2, .reset_every_ms = 3000}},
    /* 15 - 30 s: fast churn, more latency and jitter */
    {.at_ms = 15000, .faults = {.latency_ms = 10, .jitter_ms = 10, .reset_every_ms = 500}},
    /* 30 - 36 s: blackhole: only the heartbeat notices */
    {.at_ms = 30000, .faults = {.blackhole = true}},
    /* 36 - 36.5 s: flush what lived through it */
    {.at_ms = 36000, .faults = {.reset_every_ms = 1, .blackhole = true, .refuse = true}},
    /* 36.5 - 45 s: medium churn */
    {.at_ms = 36500, .faults = {.latency_ms = 5, .jitter_ms = 5, .reset_every_ms = 1500}},
    /* 45 - 60 s: refused for 4 s (open connections reset within 1.5 s), then medium churn */
    {.at_ms = 45000,
     .faults = {.latency_ms = 5, .jitter_ms = 5, .reset_every_ms = 1500, .refuse_for_ms = 4000}},
};
#define CHURN_STEPS (sizeof churn_steps / sizeof churn_steps[0])

typedef struct soak_opts {
    double duration_s, warmup_s, sample_s, report_s, drain_s;
    uint64_t clients, size, window;
    double rate; /* messages per second and client */
    uint64_t heartbeat_ms, backoff_ms, backoff_max_ms;
    const char *faults; /* "churn" or "none" */
    const char *log_level;
    const char *trace; /* NULL, or a file for every sample */
    bool trim;         /* malloc_trim(0) before each sample */
    bench_rt_opts_t rt;
} soak_opts_t;

struct soak;

/* One client as this program sees it. `given` is written by the ticker
 * only; the rest of the counters by the client's callbacks (its scheduler
 * thread); the main thread reads them all. */
typedef struct peer {
    struct soak *soak;
    nsys_ref_t ref;
    uint32_t index;
    _Atomic uint64_t given;       /* messages handed to the client: the highest number */
    _Atomic uint64_t received;    /* echoes */
    _Atomic uint64_t redelivered; /* echoes of a number already echoed (a resend) */
    _Atomic uint64_t gaps;        /* numbers skipped on one connection */
    _Atomic uint64_t bad;         /* echoes that failed a check */
    _Atomic uint64_t connected, disconnected, send_failed;
    /* the client's thread only */
    uint64_t conn_last; /* last number echoed on the current connection; 0: none yet */
    uint64_t max_echoed;
} peer_t;

typedef struct sample {
    double t_s;
    uint64_t rss, heap;
    uint64_t fds, actors;
} sample_t;

typedef struct totals {
    uint64_t sent, written, failed, received, connects, reconnects, failures;
    uint64_t outbox_messages, up;
    int stats_error; /* the first nsys_client_stats error, 0: none */
} totals_t;

typedef struct soak {
    bench_run_t run;
    soak_opts_t o;
    peer_t *peers;
    uint64_t npeers;
    nsys_ref_t listener, proxy, ticker;
    _Atomic uint64_t t0_ns; /* 0 until the clients run: the ticker waits for it */
    atomic_bool stop_sending;
    atomic_bool sending_stopped;
    sample_t *samples;
    size_t nsamples, cap;
} soak_t;

/* ---- process figures --------------------------------------------------- */

/* Bytes malloc has handed out and not had back (every arena, mmap'd chunks
 * included). Next to the RSS it tells a leak (both grow) from fragmentation
 * or arenas keeping freed pages (only the RSS grows). */
static uint64_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* Open descriptors, the directory's own excepted. */
static uint64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

static uint64_t actors_alive(nsys_runtime_t *rt)
{
    nsys_metrics_t m;
    memset(&m, 0, sizeof m);
    return nsys_metrics_get(rt, &m) == 0 ? m.actors_alive : 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the messages ------------------------------------------------------- */

static uint8_t pattern_byte(uint32_t index, uint64_t seq, size_t k)
{
    return (uint8_t)(seq * 131u + (uint64_t)index * 29u + (uint64_t)k * 7u);
}

static void message_fill(uint8_t *m, size_t len, uint32_t index, uint64_t seq)
{
    uint32_t magic = SOAK_MAGIC;
    memcpy(m, &magic, 4);
    memcpy(m + 4, &index, 4);
    memcpy(m + 8, &seq, 8);
    for (size_t k = HEADER_BYTES; k < len; k++)
        m[k] = pattern_byte(index, seq, k);
}

/* ---- the client callbacks (the client's scheduler thread) --------------- */

static void echo_bad(peer_t *p, const char *fmt, unsigned long long a, unsigned long long b)
{
    atomic_fetch_add_explicit(&p->bad, 1, memory_order_relaxed);
    char what[160];
    snprintf(what, sizeof what, fmt, a, b);
    bench_run_fail(&p->soak->run, "client %u: bad echo: %s", p->index, what);
}

static void on_echo(nsys_runtime_t *rt, nsys_ref_t client, const uint8_t *data, size_t len,
                    void *ud)
{
    (void)rt;
    (void)client;
    peer_t *p = ud;
    size_t want = (size_t)p->soak->o.size;
    if (len != want) {
        echo_bad(p, "%llu bytes, expected %llu", (unsigned long long)len, (unsigned long long)want);
        return;
    }
    uint32_t magic, index;
    uint64_t seq;
    memcpy(&magic, data, 4);
    memcpy(&index, data + 4, 4);
    memcpy(&seq, data + 8, 8);
    if (magic != SOAK_MAGIC || index != p->index) {
        echo_bad(p, "header of client %llu (magic %#llx)", index, magic);
        return;
    }
    uint64_t given = atomic_load_explicit(&p->given, memory_order_acquire);
    if (seq == 0 || seq > given) {
        echo_bad(p, "number %llu was never sent (highest %llu)", seq, given);
        return;
    }
    for (size_t k = HEADER_BYTES; k < len; k++) {
        if (data[k] != pattern_byte(index, seq, k)) {
            echo_bad(p, "message %llu differs at byte %llu", seq, k);
            return;
        }
    }
    if (seq <= p->conn_last) {
        echo_bad(p, "message %llu after %llu on one connection", seq, p->conn_last);
        return;
    }
    if (p->conn_last != 0 && seq > p->conn_last + 1)
        atomic_fetch_add_explicit(&p->gaps, seq - p->conn_last - 1, memory_order_relaxed);
    p->conn_last = seq;
    if (seq <= p->max_echoed)
        atomic_fetch_add_explicit(&p->redelivered, 1, memory_order_relaxed);
    else
        p->max_echoed = seq;
    atomic_fetch_add_explicit(&p->received, 1, memory_order_relaxed);
}

static void on_client_event(nsys_runtime_t *rt, const nsys_client_event_t *ev, void *ud)
{
    (void)rt;
    peer_t *p = ud;
    switch (ev->kind) {
    case NSYS_CLIENT_EV_CONNECTED:
        p->conn_last = 0; /* numbering on a new connection starts afresh */
        atomic_fetch_add_explicit(&p->connected, 1, memory_order_relaxed);
        break;
    case NSYS_CLIENT_EV_DISCONNECTED:
        atomic_fetch_add_explicit(&p->disconnected, 1, memory_order_relaxed);
        break;
    case NSYS_CLIENT_EV_SEND_FAILED:
        atomic_fetch_add_explicit(&p->send_failed, 1, memory_order_relaxed);
        break;
    case NSYS_CLIENT_EV_GAVE_UP:
        bench_run_fail(&p->soak->run, "client %u gave up: %s (%s)", p->index,
                       nsys_strerror(ev->code), ev->message);
        break;
    case NSYS_CLIENT_EV_RETRYING:
        break;
    }
}

/* ---- the ticker: paces the sends ---------------------------------------- */

typedef struct ticker {
    soak_t *s;
    nsys_timer_t timer;
    bool stopped;
    uint8_t msg[MAX_SIZE];
} ticker_t;

static int ticker_init(nsys_ctx_t *ctx, void *state, void *args)
{
    ticker_t *t = state;
    t->s = args;
    int rc = nsys_send_interval(ctx, NSYS_REF_NONE, TICK_MS, MSG_TICK, NULL, 0, &t->timer);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&t->s->run.ready, 1);
    return 0;
}

/* Client i is due floor(rate * elapsed + i / N) messages: the same rate for
 * every client, their sends spread over the period. */
static void ticker_tick(nsys_ctx_t *ctx, ticker_t *t)
{
    soak_t *s = t->s;
    if (t->stopped)
        return;
    if (atomic_load(&s->stop_sending)) {
        nsys_timer_cancel(ctx, t->timer);
        t->stopped = true;
        atomic_store(&s->sending_stopped, true);
        return;
    }
    uint64_t t0 = atomic_load_explicit(&s->t0_ns, memory_order_acquire);
    if (t0 == 0 || atomic_load(&s->run.failed))
        return;
    double elapsed = (double)(bench_now_ns() - t0) / 1e9;
    size_t len = (size_t)s->o.size;
    for (uint64_t i = 0; i < s->npeers; i++) {
        peer_t *p = &s->peers[i];
        uint64_t due = (uint64_t)(elapsed * s->o.rate + (double)i / (double)s->npeers);
        uint64_t given = atomic_load_explicit(&p->given, memory_order_relaxed);
        for (unsigned k = 0; given < due && k < BURST_PER_TICK; k++) {
            uint64_t seq = ++given;
            message_fill(t->msg, len, p->index, seq);
            /* Published first: the echo may come back before the send returns. */
            atomic_store_explicit(&p->given, seq, memory_order_release);
            int rc = nsys_net_send(nsys_ctx_runtime(ctx), p->ref, t->msg, len);
            if (rc != 0) {
                bench_run_fail(&s->run, "nsys_net_send to client %u (message %llu): %s", p->index,
                               (unsigned long long)seq, nsys_strerror(rc));
                return;
            }
        }
    }
}

static int ticker_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    if (msg->type == MSG_TICK)
        ticker_tick(ctx, state);
    return 0;
}

static const nsys_behaviour_t ticker_behaviour = {
    .name = "bench.soak.ticker",
    .state_size = sizeof(ticker_t),
    .init = ticker_init,
    .handle = ticker_handle,
};

/* ---- reading the counters ------------------------------------------------ */

static void client_totals(soak_t *s, totals_t *t, nsys_client_stats_t *per /* may be NULL */)
{
    memset(t, 0, sizeof *t);
    for (uint64_t i = 0; i < s->npeers; i++) {
        nsys_client_stats_t st;
        memset(&st, 0, sizeof st);
        int rc = nsys_client_stats(s->run.rt, s->peers[i].ref, &st);
        if (rc != 0) {
            if (t->stats_error == 0)
                t->stats_error = rc;
            continue;
        }
        if (per != NULL)
            per[i] = st;
        t->sent += st.sent;
        t->written += st.written;
        t->failed += st.failed;
        t->received += st.received;
        t->connects += st.connects;
        t->reconnects += st.reconnects;
        t->failures += st.failures;
        t->outbox_messages += st.outbox_messages;
        t->up += st.state == NSYS_CLIENT_UP;
    }
}

typedef struct seen {
    uint64_t given, received, redelivered, gaps, bad, connected, disconnected, send_failed;
} seen_t;

static void peer_totals(const soak_t *s, seen_t *v)
{
    memset(v, 0, sizeof *v);
    for (uint64_t i = 0; i < s->npeers; i++) {
        peer_t *p = &s->peers[i];
        v->given += atomic_load_explicit(&p->given, memory_order_relaxed);
        v->received += atomic_load_explicit(&p->received, memory_order_relaxed);
        v->redelivered += atomic_load_explicit(&p->redelivered, memory_order_relaxed);
        v->gaps += atomic_load_explicit(&p->gaps, memory_order_relaxed);
        v->bad += atomic_load_explicit(&p->bad, memory_order_relaxed);
        v->connected += atomic_load_explicit(&p->connected, memory_order_relaxed);
        v->disconnected += atomic_load_explicit(&p->disconnected, memory_order_relaxed);
        v->send_failed += atomic_load_explicit(&p->send_failed, memory_order_relaxed);
    }
}

static void json_proxy(bench_json_t *j, const nsys_proxy_stats_t *px)
{
    bench_json_u64(j, "proxy_accepted", px->accepted);
    bench_json_u64(j, "proxy_active", px->active);
    bench_json_u64(j, "proxy_refused", px->refused);
    bench_json_u64(j, "proxy_resets", px->resets);
    bench_json_u64(j, "proxy_upstream_failures", px->upstream_failures);
    bench_json_u64(j, "proxy_bytes_up", px->bytes_up);
    bench_json_u64(j, "proxy_bytes_down", px->bytes_down);
    bench_json_u64(j, "proxy_bytes_dropped", px->bytes_dropped);
    bench_json_u64(j, "proxy_schedule_steps", px->schedule_steps);
}

/* ---- sampling ------------------------------------------------------------- */

static void take_sample(soak_t *s, double t_s)
{
    if (s->nsamples >= s->cap)
        return;
    sample_t *x = &s->samples[s->nsamples++];
    x->t_s = t_s;
    if (s->o.trim)
        malloc_trim(0);
    x->rss = bench_rss_bytes();
    x->heap = heap_in_use();
    x->fds = open_fds();
    x->actors = actors_alive(s->run.rt);
}

static void print_sample_line(soak_t *s, double t_s)
{
    totals_t t;
    seen_t v;
    nsys_proxy_stats_t px;
    memset(&px, 0, sizeof px);
    client_totals(s, &t, NULL);
    peer_totals(s, &v);
    int prc = nsys_proxy_stats(s->run.rt, s->proxy, &px);
    const sample_t *x = s->nsamples > 0 ? &s->samples[s->nsamples - 1] : NULL;
    bench_json_t j;
    bench_json_begin_event(&j, "sample");
    bench_json_f64(&j, "elapsed_s", t_s);
    bench_json_str(&j, "phase", t_s < s->o.warmup_s ? "warmup" : "measure");
    if (x != NULL) {
        bench_json_u64(&j, "rss", x->rss);
        bench_json_u64(&j, "heap", x->heap);
        bench_json_u64(&j, "fds", x->fds);
        bench_json_u64(&j, "actors", x->actors);
    }
    bench_json_u64(&j, "clients_up", t.up);
    bench_json_u64(&j, "connects", t.connects);
    bench_json_u64(&j, "reconnects", t.reconnects);
    bench_json_u64(&j, "sent", t.sent);
    bench_json_u64(&j, "written", t.written);
    bench_json_u64(&j, "failed", t.failed);
    bench_json_u64(&j, "received", t.received);
    bench_json_u64(&j, "outbox", t.outbox_messages);
    bench_json_u64(&j, "echoed", v.received);
    bench_json_u64(&j, "redelivered", v.redelivered);
    bench_json_u64(&j, "bad", v.bad);
    if (t.stats_error != 0)
        bench_json_str(&j, "stats_error", nsys_strerror(t.stats_error));
    if (prc == 0) {
        bench_json_u64(&j, "proxy_active", px.active);
        bench_json_u64(&j, "proxy_resets", px.resets);
        bench_json_u64(&j, "proxy_refused", px.refused);
        bench_json_bool(&j, "proxy_refusing", px.refusing);
        bench_json_bool(&j, "proxy_blackhole", px.faults.blackhole);
    }
    bench_json_print(&j);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median of `field` over samples [from, from + n). */
static double median_of(const soak_t *s, size_t from, size_t n, bool heap)
{
    uint64_t v[64];
    if (n > 64)
        n = 64;
    if (n == 0)
        return NAN;
    for (size_t i = 0; i < n; i++)
        v[i] = heap ? s->samples[from + i].heap : s->samples[from + i].rss;
    qsort(v, n, sizeof v[0], cmp_u64);
    return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

/* Least-squares slope of the RSS (or heap) over samples [from, end), per minute. */
static double slope_per_min(const soak_t *s, size_t from, bool heap)
{
    size_t n = s->nsamples - from;
    if (n < 2)
        return NAN;
    double st = 0, sv = 0;
    for (size_t i = from; i < s->nsamples; i++) {
        st += s->samples[i].t_s;
        sv += (double)(heap ? s->samples[i].heap : s->samples[i].rss);
    }
    double mt = st / (double)n, mv = sv / (double)n, num = 0, den = 0;
    for (size_t i = from; i < s->nsamples; i++) {
        double dt = s->samples[i].t_s - mt;
        num += dt * ((double)(heap ? s->samples[i].heap : s->samples[i].rss) - mv);
        den += dt * dt;
    }
    return den > 0 ? num / den * 60.0 : NAN;
}

/* ---- the phases --------------------------------------------------------------- */

/* Waits until live actors and open descriptors read the same QUIET_CHECKS
 * times in a row (a call's helper actor may still be leaving), at most
 * `max_s`; with `want` set, until they equal want_actors / want_fds. */
static bool settle_counts(soak_t *s, bool want, uint64_t want_actors, uint64_t want_fds,
                          double max_s, uint64_t *actors, uint64_t *fds)
{
    uint64_t t0 = bench_now_ns();
    unsigned same = 0;
    uint64_t la = UINT64_MAX, lf = UINT64_MAX;
    for (;;) {
        uint64_t a = actors_alive(s->run.rt), f = open_fds();
        bool match = !want || (a == want_actors && f == want_fds);
        same = match && a == la && f == lf ? same + 1 : (match ? 1 : 0);
        la = a;
        lf = f;
        *actors = a;
        *fds = f;
        if (same >= QUIET_CHECKS)
            return true;
        if ((double)(bench_now_ns() - t0) / 1e9 >= max_s)
            return false;
        sleep_ms(50);
    }
}

/* The measured run: samples until the end, or until a failure or a signal.
 * Returns 0, or 1 if it was cut short. */
static int soak_loop(soak_t *s, const bench_common_t *common)
{
    uint64_t t0 = atomic_load(&s->t0_ns);
    uint64_t sample_ns = (uint64_t)(s->o.sample_s * 1e9);
    uint64_t report_ns = (uint64_t)(s->o.report_s * 1e9);
    uint64_t end = t0 + (uint64_t)(s->o.duration_s * 1e9);
    uint64_t next_sample = t0 + sample_ns, next_report = t0 + report_ns;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= end && next_sample > end)
            return 0;
        uint64_t until = next_sample < end ? next_sample : end;
        uint64_t wait_ms = until > now ? (until - now + 999999u) / 1000000u : 0;
        nsys_wake_t why = 0;
        int code = 0;
        if (wait_ms > 0) {
            int rc = nsys_runtime_wait(s->run.rt, NSYS_WAIT_SIGNALS, wait_ms, &why, &code);
            if (rc != 0) {
                bench_run_fail(&s->run, "nsys_runtime_wait: %s", nsys_strerror(rc));
                return 1;
            }
            if (why == NSYS_WAKE_SIGNAL) {
                bench_run_fail(&s->run, "interrupted by signal %d", code);
                return 1;
            }
        }
        if (atomic_load(&s->run.failed))
            return 1;
        now = bench_now_ns();
        if (now >= next_sample) {
            double t_s = (double)(now - t0) / 1e9;
            take_sample(s, t_s);
            while (next_sample <= now)
                next_sample += sample_ns;
            if (now >= next_report || next_sample > end) {
                print_sample_line(s, t_s);
                while (next_report <= now)
                    next_report += report_ns;
            }
            atomic_store_explicit(&s->run.progress, (uint64_t)t_s, memory_order_relaxed);
            bench_info(common, cmd_name, "%.0f s: rss %llu", t_s,
                       (unsigned long long)s->samples[s->nsamples - 1].rss);
        }
    }
}

/* Stops the sends and lifts the faults, then waits (at most --drain-s) for
 * every outbox to empty and the echoes to stop coming. Returns true when
 * the outboxes emptied. */
static bool drain(soak_t *s, const char **why)
{
    *why = "";
    atomic_store(&s->stop_sending, true);
    uint64_t t0 = bench_now_ns();
    while (!atomic_load(&s->sending_stopped)) {
        if ((double)(bench_now_ns() - t0) / 1e9 > STOP_WAIT_S) {
            *why = "the ticker did not stop";
            return false;
        }
        sleep_ms(TICK_MS);
    }
    nsys_proxy_faults_t none = NSYS_PROXY_FAULTS_NONE;
    int rc = nsys_proxy_set_faults(s->run.rt, s->proxy, &none);
    if (rc != 0) {
        bench_err(cmd_name, "nsys_proxy_set_faults: %s", nsys_strerror(rc));
        *why = "the faults could not be lifted";
        return false;
    }
    totals_t t;
    for (;;) {
        client_totals(s, &t, NULL);
        if (t.stats_error == 0 && t.outbox_messages == 0)
            break;
        if ((double)(bench_now_ns() - t0) / 1e9 > s->o.drain_s) {
            *why = "the outboxes did not empty within --drain-s";
            return false;
        }
        sleep_ms(POLL_MS);
    }
    /* Written does not mean echoed yet: wait until the echoes stop. */
    seen_t v;
    peer_totals(s, &v);
    uint64_t last = v.received;
    unsigned still = 0;
    while (still < 5 && (double)(bench_now_ns() - t0) / 1e9 <= s->o.drain_s) {
        sleep_ms(POLL_MS);
        peer_totals(s, &v);
        still = v.received == last ? still + 1 : 0;
        last = v.received;
    }
    return true;
}

/* sent == written + failed for every client, and its counters agree with
 * what this program gave it and saw come back. Fills `detail` with the
 * first mismatch. */
static bool check_identity(soak_t *s, const nsys_client_stats_t *per, char *detail, size_t len,
                           uint64_t *mismatches)
{
    *mismatches = 0;
    detail[0] = '\0';
    for (uint64_t i = 0; i < s->npeers; i++) {
        const nsys_client_stats_t *st = &per[i];
        peer_t *p = &s->peers[i];
        uint64_t given = atomic_load(&p->given), received = atomic_load(&p->received);
        uint64_t failed_seen = atomic_load(&p->send_failed);
        bool ok = st->sent == st->written + st->failed && st->sent == given &&
                  st->failed == failed_seen && st->received == received && st->outbox_messages == 0;
        if (!ok && (*mismatches)++ == 0)
            snprintf(detail, len,
                     "client %u: sent %llu written %llu failed %llu (given %llu, failures seen "
                     "%llu), received %llu (seen %llu), outbox %zu",
                     p->index, (unsigned long long)st->sent, (unsigned long long)st->written,
                     (unsigned long long)st->failed, (unsigned long long)given,
                     (unsigned long long)failed_seen, (unsigned long long)st->received,
                     (unsigned long long)received, st->outbox_messages);
    }
    return *mismatches == 0;
}

/* Stops the clients and waits until they, their proxy pairs and their echo
 * sessions are gone. */
static bool stop_clients(soak_t *s)
{
    for (uint64_t i = 0; i < s->npeers; i++)
        if (s->peers[i].ref != NSYS_REF_NONE)
            nsys_client_stop(s->run.rt, s->peers[i].ref);
    uint64_t t0 = bench_now_ns();
    for (;;) {
        uint64_t alive = 0;
        for (uint64_t i = 0; i < s->npeers; i++)
            alive += s->peers[i].ref != NSYS_REF_NONE && nsys_is_alive(s->run.rt, s->peers[i].ref);
        nsys_proxy_stats_t px;
        nsys_listener_info_t li;
        bool quiet = alive == 0 && nsys_proxy_stats(s->run.rt, s->proxy, &px) == 0 &&
                     px.active == 0 && nsys_listener_info(s->run.rt, s->listener, &li) == 0 &&
                     li.sessions == 0;
        if (quiet)
            return true;
        if ((double)(bench_now_ns() - t0) / 1e9 > STOP_WAIT_S)
            return false;
        sleep_ms(POLL_MS);
    }
}

/* Before the baseline, one client per scheduler connects through the proxy
 * and is stopped again: libuv opens a descriptor per loop on its first
 * stream (its reserve for EMFILE), once, and that must not count as a
 * leak at the end. */
static int prime_loops(soak_t *s, uint16_t proxy_port)
{
    nsys_ref_t refs[64];
    size_t n = (size_t)s->o.rt.schedulers < 64 ? (size_t)s->o.rt.schedulers : 64;
    size_t started = 0;
    int failed = 0;
    for (; started < n; started++) {
        nsys_client_opts_t co = NSYS_CLIENT_OPTS_DEFAULTS;
        co.name = "soak-primer";
        co.host = "127.0.0.1";
        co.port = proxy_port;
        co.backoff.initial_ms = s->o.backoff_ms;
        co.backoff.max_ms = s->o.backoff_max_ms;
        int rc = nsys_tcp_client_start(s->run.rt, &co, &refs[started]);
        if (rc != 0) {
            bench_run_fail(&s->run, "nsys_tcp_client_start (primer): %s", nsys_strerror(rc));
            failed = 1;
            break;
        }
    }
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < started && !failed; i++) {
        nsys_client_stats_t st;
        while (nsys_client_stats(s->run.rt, refs[i], &st) == 0 && st.connects == 0) {
            if ((double)(bench_now_ns() - t0) / 1e9 > STOP_WAIT_S) {
                bench_run_fail(&s->run, "a primer client did not connect within 10 s");
                failed = 1;
                break;
            }
            sleep_ms(10);
        }
    }
    for (size_t i = 0; i < started; i++)
        nsys_client_stop(s->run.rt, refs[i]);
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < started; i++)
            alive += nsys_is_alive(s->run.rt, refs[i]);
        nsys_proxy_stats_t px;
        nsys_listener_info_t li;
        if (alive == 0 && nsys_proxy_stats(s->run.rt, s->proxy, &px) == 0 && px.active == 0 &&
            nsys_listener_info(s->run.rt, s->listener, &li) == 0 && li.sessions == 0)
            return failed;
        if ((double)(bench_now_ns() - t0) / 1e9 > 2 * STOP_WAIT_S) {
            bench_run_fail(&s->run, "the primer clients did not go away within 20 s");
            return 1;
        }
        sleep_ms(10);
    }
}

/* ---- the result line ------------------------------------------------------------ */

typedef struct result {
    bool finished; /* the loop ran to --duration */
    bool drained;
    const char *drain_why;
    bool identity_ok;
    char identity_detail[256];
    uint64_t identity_mismatches;
    totals_t t;
    seen_t v;
    bool stopped;
    uint64_t actors_start, fds_start, actors_end, fds_end;
    bool counts_match;
    uint64_t rss_start, heap_start;
    uint64_t rss_after_stop, heap_after_stop;
    nsys_proxy_stats_t px;
    bool have_px;
} result_t;

/* Why a run is not ok: the first failure recorded, else the first check
 * that did not hold. */
static const char *failure_text(soak_t *s, const result_t *r)
{
    if (bench_run_error(&s->run)[0] != '\0')
        return bench_run_error(&s->run);
    if (!r->finished)
        return "the run did not reach --duration";
    if (!r->drained)
        return r->drain_why;
    if (!r->identity_ok)
        return r->identity_detail;
    if (!r->stopped)
        return "the clients, their proxy pairs or their echo sessions were still there 10 s "
               "after the clients were stopped";
    if (!r->counts_match)
        return "live actors or open descriptors at the end differ from the start";
    return "bad echoes";
}

static void print_result(soak_t *s, const result_t *r, bool ok)
{
    const soak_opts_t *o = &s->o;
    size_t first = 0; /* the first sample at or after the warm-up */
    while (first < s->nsamples && s->samples[first].t_s < o->warmup_s)
        first++;
    size_t post = s->nsamples - first;
    size_t w = (size_t)o->window;
    if (w > post / 2)
        w = post / 2 > 0 ? post / 2 : post;
    double after = median_of(s, first, w, false), end = median_of(s, s->nsamples - w, w, false);
    double heap_after = median_of(s, first, w, true);
    double heap_end = median_of(s, s->nsamples - w, w, true);
    double growth = end - after;
    uint64_t rss_max = 0;
    for (size_t i = first; i < s->nsamples; i++)
        if (s->samples[i].rss > rss_max)
            rss_max = s->samples[i].rss;

    bench_json_t j;
    bench_json_begin(&j, workload, metric, ok ? growth : NAN, "bytes");
    bench_json_bool(&j, "ok", ok);
    if (!ok)
        bench_json_str(&j, "error", failure_text(s, r));
    bench_json_f64(&j, "rss_growth_bytes", growth);
    bench_json_bool(&j, "target_met", growth == growth && growth < TARGET_BYTES);
    bench_json_u64(&j, "target_bytes", (uint64_t)TARGET_BYTES);
    bench_json_f64(&j, "rss_after_warmup", after);
    bench_json_f64(&j, "rss_end", end);
    bench_json_u64(&j, "rss_max", rss_max);
    bench_json_u64(&j, "rss_start", r->rss_start);
    bench_json_f64(&j, "rss_slope_bytes_per_min", slope_per_min(s, first, false));
    bench_json_f64(&j, "heap_growth_bytes", heap_end - heap_after);
    bench_json_f64(&j, "heap_after_warmup", heap_after);
    bench_json_f64(&j, "heap_end", heap_end);
    bench_json_u64(&j, "heap_start", r->heap_start);
    bench_json_f64(&j, "heap_slope_bytes_per_min", slope_per_min(s, first, true));
    bench_json_u64(&j, "peak_rss_kb", bench_status_kb("VmHWM"));
    bench_json_u64(&j, "rss_after_stop", r->rss_after_stop);
    bench_json_u64(&j, "heap_after_stop", r->heap_after_stop);
    bench_json_bool(&j, "trim", o->trim);
    bench_json_u64(&j, "samples", s->nsamples);
    bench_json_u64(&j, "window", w);
    bench_json_f64(&j, "duration_s", o->duration_s);
    bench_json_f64(&j, "warmup_s", o->warmup_s);
    bench_json_f64(&j, "sample_s", o->sample_s);
    bench_json_bool(&j, "finished", r->finished);
    bench_json_u64(&j, "clients", s->npeers);
    bench_json_f64(&j, "rate_per_client", o->rate);
    bench_json_u64(&j, "size", o->size);
    bench_json_str(&j, "faults", o->faults);
    bench_json_u64(&j, "heartbeat_ms", o->heartbeat_ms);
    bench_json_u64(&j, "connects", r->t.connects);
    bench_json_u64(&j, "reconnects", r->t.reconnects);
    bench_json_u64(&j, "link_failures", r->t.failures);
    bench_json_u64(&j, "sent", r->t.sent);
    bench_json_u64(&j, "written", r->t.written);
    bench_json_u64(&j, "failed", r->t.failed);
    bench_json_u64(&j, "echoed", r->v.received);
    bench_json_u64(&j, "redelivered", r->v.redelivered);
    bench_json_u64(&j, "gaps", r->v.gaps);
    bench_json_u64(&j, "bad_echoes", r->v.bad);
    bench_json_bool(&j, "drained", r->drained);
    bench_json_bool(&j, "identity_ok", r->identity_ok);
    bench_json_u64(&j, "identity_mismatches", r->identity_mismatches);
    bench_json_u64(&j, "actors_start", r->actors_start);
    bench_json_u64(&j, "actors_end", r->actors_end);
    bench_json_u64(&j, "fds_start", r->fds_start);
    bench_json_u64(&j, "fds_end", r->fds_end);
    bench_json_bool(&j, "actors_fds_match", r->counts_match);
    if (r->have_px)
        json_proxy(&j, &r->px);
    bench_json_u64(&j, "schedulers", o->rt.schedulers);
    if (s->run.rt != NULL)
        bench_run_json_counters(&s->run, &j);
    bench_json_print(&j);
}

/* One line per sample: seconds, RSS, heap in use, descriptors, live actors. */
static int write_trace(const soak_t *s, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        bench_err(cmd_name, "cannot write %s", path);
        return 1;
    }
    fprintf(f, "# t_s rss heap fds actors\n");
    for (size_t i = 0; i < s->nsamples; i++) {
        const sample_t *x = &s->samples[i];
        fprintf(f, "%.3f %llu %llu %llu %llu\n", x->t_s, (unsigned long long)x->rss,
                (unsigned long long)x->heap, (unsigned long long)x->fds,
                (unsigned long long)x->actors);
    }
    if (fclose(f) != 0) {
        bench_err(cmd_name, "cannot write %s", path);
        return 1;
    }
    return 0;
}

/* ---- setting up ------------------------------------------------------------------ */

static int start_servers(soak_t *s)
{
    nsys_listener_opts_t lo = NSYS_LISTENER_OPTS_DEFAULTS;
    lo.name = "soak-echo";
    lo.host = "127.0.0.1";
    lo.handler = &nsys_handler_echo;
    nsys_listener_info_t li;
    memset(&li, 0, sizeof li);
    int rc = nsys_listener_start(s->run.rt, &lo, &s->listener, &li);
    if (rc != 0) {
        bench_run_fail(&s->run, "nsys_listener_start: %s: %s", nsys_strerror(rc),
                       nsys_net_last_error());
        return 1;
    }
    nsys_proxy_opts_t po = NSYS_PROXY_OPTS_DEFAULTS;
    po.name = "soak-proxy";
    po.upstream_host = "127.0.0.1";
    po.upstream_port = li.port;
    po.connect_timeout_ms = 5000;
    if (strcmp(s->o.faults, "churn") == 0) {
        po.schedule = churn_steps;
        po.schedule_len = CHURN_STEPS;
        po.repeat_ms = CYCLE_MS;
    }
    nsys_proxy_stats_t px;
    rc = nsys_proxy_start(s->run.rt, &po, &s->proxy, &px);
    if (rc != 0) {
        bench_run_fail(&s->run, "nsys_proxy_start: %s: %s", nsys_strerror(rc),
                       nsys_net_last_error());
        return 1;
    }
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.args = s;
    rc = nsys_spawn(s->run.rt, &ticker_behaviour, &so, &s->ticker);
    if (rc != 0) {
        bench_run_fail(&s->run, "spawning the ticker: %s", nsys_strerror(rc));
        return 1;
    }
    if (bench_run_await_ready(&s->run, 1) != 0)
        return 1;
    /* Both actors answer once their init ran. */
    rc = nsys_proxy_stats(s->run.rt, s->proxy, &px);
    if (rc == 0)
        rc = nsys_listener_info(s->run.rt, s->listener, &li);
    if (rc != 0) {
        bench_run_fail(&s->run, "the proxy or the listener does not answer: %s", nsys_strerror(rc));
        return 1;
    }
    bench_json_t j;
    bench_json_begin_event(&j, "started");
    bench_json_str(&j, "echo", li.address);
    bench_json_str(&j, "proxy", px.address);
    bench_json_u64(&j, "clients", s->o.clients);
    bench_json_f64(&j, "duration_s", s->o.duration_s);
    bench_json_f64(&j, "warmup_s", s->o.warmup_s);
    bench_json_str(&j, "faults", s->o.faults);
    bench_json_i64(&j, "pid", (int64_t)getpid());
    bench_json_print(&j);
    return 0;
}

static int start_clients(soak_t *s, uint16_t proxy_port)
{
    for (uint64_t i = 0; i < s->npeers; i++) {
        peer_t *p = &s->peers[i];
        nsys_client_opts_t co = NSYS_CLIENT_OPTS_DEFAULTS;
        co.name = "soak-client";
        co.host = "127.0.0.1";
        co.port = proxy_port;
        co.connect_timeout_ms = 5000;
        co.backoff.initial_ms = s->o.backoff_ms;
        co.backoff.max_ms = s->o.backoff_max_ms;
        co.backoff.reset_after_ms = 500;
        co.heartbeat_ms = s->o.heartbeat_ms;
        co.on_message = on_echo;
        co.on_event = on_client_event;
        co.user_data = p;
        int rc = nsys_tcp_client_start(s->run.rt, &co, &p->ref);
        if (rc != 0) {
            p->ref = NSYS_REF_NONE;
            bench_run_fail(&s->run, "nsys_tcp_client_start (client %u): %s: %s", p->index,
                           nsys_strerror(rc), nsys_net_last_error());
            return 1;
        }
    }
    return 0;
}

static const char usage[] =
    "usage: netsys-bench soak [--duration S] [--warmup S] [--clients N] [--rate X]\n"
    "                         [--size B] [--sample S] [--report S] [--window N]\n"
    "                         [--faults churn|none] [--heartbeat-ms MS]\n"
    "                         [--backoff-ms MS] [--backoff-max-ms MS] [--drain-s S]\n"
    "                         [--log-level L] [--trace FILE] [--trim]\n"
    "\n"
    "Soak (issue 5): N resilient clients send numbered messages at X per second\n"
    "each through the fault-injecting proxy to an echo listener (length codec),\n"
    "all in this process, and check every echo. The proxy repeats a 60 s cycle:\n"
    "resets every 3 s / 0.5 s / 1.5 s with 2-10 ms latency and jitter, a 6 s\n"
    "blackhole (the heartbeat detects it), 4 s of refused connections.\n"
    "\n"
    "Samples RSS, heap, descriptors and live actors every --sample seconds and\n"
    "prints {\"event\":\"sample\",...} every --report seconds. The result line\n"
    "(workload soak_churn, metric rss_growth_bytes) has the RSS growth: median of\n"
    "the last --window samples minus the median of the first --window samples\n"
    "after --warmup (target < 1 MiB). Then the sends stop, the faults are lifted,\n"
    "the outboxes must empty (sent == written + failed per client, checked), the\n"
    "clients stop, and live actors and descriptors must be what they were\n"
    "before the first client started. --duration includes --warmup.\n"
    "\n"
    "Diagnosis: --trace FILE writes every sample (t, RSS, heap in use, fds,\n"
    "actors); --trim returns free heap pages to the kernel before each sample, so\n"
    "the RSS then tracks live memory rather than what the allocator keeps.\n"
    "\n"
    "Watchdog default: duration + drain-s + 120 s.\n";

static int check_opts(const soak_opts_t *o)
{
    bool bad = !(o->duration_s > 0) || o->duration_s > MAX_DURATION_S || !(o->warmup_s >= 0) ||
               o->warmup_s >= o->duration_s || !(o->sample_s >= MIN_SAMPLE_S) ||
               o->sample_s > o->duration_s || !(o->report_s >= o->sample_s) || o->clients < 1 ||
               o->clients > MAX_CLIENTS || !(o->rate > 0) || o->rate > 100000 ||
               o->size < HEADER_BYTES || o->size > MAX_SIZE || o->window < 1 || o->window > 64 ||
               o->heartbeat_ms < 10 || o->heartbeat_ms > 600000 || o->backoff_ms < 1 ||
               o->backoff_max_ms < o->backoff_ms || o->backoff_max_ms > 600000 ||
               !(o->drain_s > 0) || o->drain_s > 3600;
    if (bad) {
        bench_err(cmd_name,
                  "need 0 <= --warmup < --duration <= 86400, %.1f <= --sample <= --duration, "
                  "--report >= --sample, 1 <= --clients <= %u, 0 < --rate <= 100000, "
                  "%u <= --size <= %u, 1 <= --window <= 64, 10 <= --heartbeat-ms <= 600000, "
                  "1 <= --backoff-ms <= --backoff-max-ms <= 600000, 0 < --drain-s <= 3600",
                  MIN_SAMPLE_S, MAX_CLIENTS, HEADER_BYTES, MAX_SIZE);
        return 2;
    }
    if (strcmp(o->faults, "churn") != 0 && strcmp(o->faults, "none") != 0) {
        bench_err(cmd_name, "--faults is churn or none, not '%s'", o->faults);
        return 2;
    }
    nsys_log_level_t level;
    if (nsys_log_level_parse(o->log_level, &level) != 0) {
        bench_err(cmd_name, "--log-level: error, warn, info, debug, trace or off, not '%s'",
                  o->log_level);
        return 2;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    static soak_t s; /* the watchdog reads s.run.progress until exit */
    soak_opts_t *o = &s.o;
    *o = (soak_opts_t){
        .duration_s = 600,
        .warmup_s = 60,
        .sample_s = 1,
        .report_s = 10,
        .drain_s = 30,
        .clients = 50,
        .size = 64,
        .window = 5,
        .rate = 20,
        .heartbeat_ms = 1000,
        .backoff_ms = 50,
        .backoff_max_ms = 1000,
        .faults = "churn",
        .log_level = "warn",
        .rt = BENCH_RT_OPTS_DEFAULTS,
    };
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"duration", BENCH_OPT_DOUBLE, &o->duration_s, "seconds in all, warm-up included (600)"},
        {"warmup", BENCH_OPT_DOUBLE, &o->warmup_s, "seconds before the RSS baseline (60)"},
        {"clients", BENCH_OPT_U64, &o->clients, "resilient clients (50)"},
        {"rate", BENCH_OPT_DOUBLE, &o->rate, "messages per second and client (20)"},
        {"size", BENCH_OPT_U64, &o->size, "bytes per message, >= 16 (64)"},
        {"sample", BENCH_OPT_DOUBLE, &o->sample_s, "seconds between RSS samples (1)"},
        {"report", BENCH_OPT_DOUBLE, &o->report_s, "seconds between sample lines (10)"},
        {"window", BENCH_OPT_U64, &o->window, "samples in each median (5)"},
        {"faults", BENCH_OPT_STRING, &o->faults, "churn (the schedule) or none (churn)"},
        {"heartbeat-ms", BENCH_OPT_U64, &o->heartbeat_ms, "client heartbeat and timeout (1000)"},
        {"backoff-ms", BENCH_OPT_U64, &o->backoff_ms, "first reconnect delay (50)"},
        {"backoff-max-ms", BENCH_OPT_U64, &o->backoff_max_ms, "longest reconnect delay (1000)"},
        {"drain-s", BENCH_OPT_DOUBLE, &o->drain_s, "bound on the drain at the end (30)"},
        {"log-level", BENCH_OPT_STRING, &o->log_level, "netsys log level (warn)"},
        {"trace", BENCH_OPT_STRING, &o->trace, "write every sample to this file at the end"},
        {"trim", BENCH_OPT_FLAG, &o->trim,
         "diagnosis: malloc_trim(0) before each sample (free pages back to the kernel)"},
        BENCH_RT_OPT_ENTRIES(o->rt),
        {NULL, BENCH_OPT_U64, NULL, NULL},
    };
    int prc = bench_parse_timeout(argc, argv, usage, opts, &common, 0);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if (bench_rt_opts_check(cmd_name, &o->rt) != 0 || check_opts(o) != 0)
        return 2;
    if (common.timeout_s == 0)
        bench_watchdog_start(cmd_name, o->duration_s + o->drain_s + 120.0);

    signal(SIGPIPE, SIG_IGN);
    uint64_t nofile = 0;
    if (bench_raise_nofile(&nofile) == 0 && nofile < o->clients * 4 + 64)
        bench_err(cmd_name, "warning: RLIMIT_NOFILE is %llu, low for %llu clients (4 each)",
                  (unsigned long long)nofile, (unsigned long long)o->clients);

    /* Everything this program keeps is allocated and touched before the
     * first sample, so it is not counted as growth. */
    s.npeers = o->clients;
    s.cap = (size_t)(o->duration_s / o->sample_s) + 8;
    s.peers = calloc((size_t)s.npeers, sizeof *s.peers);
    s.samples = calloc(s.cap, sizeof *s.samples);
    nsys_client_stats_t *per = calloc((size_t)s.npeers, sizeof *per);
    if (s.peers == NULL || s.samples == NULL || per == NULL) {
        bench_err(cmd_name, "out of memory");
        free(s.peers);
        free(s.samples);
        free(per);
        return 1;
    }
    memset(s.samples, 0, s.cap * sizeof *s.samples);
    for (uint64_t i = 0; i < s.npeers; i++) {
        s.peers[i].soak = &s;
        s.peers[i].index = (uint32_t)i;
        s.peers[i].ref = NSYS_REF_NONE;
    }

    result_t r;
    memset(&r, 0, sizeof r);
    r.drain_why = "";
    int result = 1;
    bool printed = false;
    if (bench_run_start(&s.run, cmd_name, &o->rt, 0) != 0)
        goto finish;
    nsys_log_level_t level = NSYS_LOG_WARN;
    nsys_log_level_parse(o->log_level, &level);
    if (getenv("NSYS_LOG") == NULL)
        nsys_log_set_level(level);
    bench_watchdog_progress(&s.run.progress, (uint64_t)o->duration_s);
    if (start_servers(&s) != 0)
        goto finish;

    nsys_proxy_stats_t px;
    if (nsys_proxy_stats(s.run.rt, s.proxy, &px) != 0) {
        bench_run_fail(&s.run, "nsys_proxy_stats failed");
        goto finish;
    }
    if (prime_loops(&s, px.port) != 0)
        goto finish;
    /* The baseline: servers and ticker up, no client. A first wait for
     * signals installs the runtime's signal watching, so its descriptor is
     * counted here too. */
    nsys_wake_t why;
    int code;
    nsys_runtime_wait(s.run.rt, NSYS_WAIT_SIGNALS, 200, &why, &code);
    settle_counts(&s, false, 0, 0, 2.0, &r.actors_start, &r.fds_start);
    r.rss_start = bench_rss_bytes();
    r.heap_start = heap_in_use();
    if (start_clients(&s, px.port) != 0)
        goto finish;
    atomic_store_explicit(&s.t0_ns, bench_now_ns(), memory_order_release);

    r.finished = soak_loop(&s, &common) == 0;
    if (r.finished) {
        r.drained = drain(&s, &r.drain_why);
        client_totals(&s, &r.t, per);
        peer_totals(&s, &r.v);
        if (r.drained && r.t.stats_error == 0)
            r.identity_ok = check_identity(&s, per, r.identity_detail, sizeof r.identity_detail,
                                           &r.identity_mismatches);
        else
            snprintf(r.identity_detail, sizeof r.identity_detail, "not checked: %s",
                     r.t.stats_error != 0 ? nsys_strerror(r.t.stats_error) : r.drain_why);
        r.have_px = nsys_proxy_stats(s.run.rt, s.proxy, &r.px) == 0;
        r.stopped = stop_clients(&s);
        r.counts_match = r.stopped && settle_counts(&s, true, r.actors_start, r.fds_start,
                                                    STOP_WAIT_S, &r.actors_end, &r.fds_end);
        r.rss_after_stop = bench_rss_bytes();
        r.heap_after_stop = heap_in_use();
    } else {
        client_totals(&s, &r.t, NULL);
        peer_totals(&s, &r.v);
    }
    bool ok = r.finished && !atomic_load(&s.run.failed) && r.drained && r.identity_ok &&
              r.stopped && r.counts_match && r.v.bad == 0;
    print_result(&s, &r, ok);
    printed = true;
    result = ok ? 0 : 1;
    if (o->trace != NULL && write_trace(&s, o->trace) != 0)
        result = 1;

finish:
    if (!printed)
        print_result(&s, &r, false); /* setting up failed: the line says why */
    if (bench_run_finish(&s.run) != 0)
        result = 1;
    free(per);
    free(s.samples);
    free(s.peers);
    return result;
}

const bench_cmd_t bench_cmd_soak = {
    .name = "soak",
    .summary = "issue 5: minutes of client churn through the proxy; RSS growth after warm-up",
    .run = run,
};

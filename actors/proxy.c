/* actors/proxy.c — the fault-injecting TCP proxy (<netsys/proxy.h>): a proxy
 * actor that owns a listener and the shared fault settings, and a session
 * handler that forwards one client connection to the upstream through the
 * faults.
 *
 * Shared state. The proxy, its listener and every session share one
 * reference-counted core: the fixed options, the counters (atomics), the
 * faults in force and the list of open sessions (both under a mutex). Only
 * the proxy actor changes the faults; it bumps an atomic version and tells
 * every listed session, so a session reloads its copy when the version moved
 * (one atomic load per chunk) and idle sessions re-arm their reset timer.
 *
 * A session. The downstream side is the session's own connection (flushed by
 * the session's turn hook); the upstream side is a connection it dials and
 * owns, whose callbacks run as the session actor (nsys_io_enter/leave) and
 * which it flushes itself. Each direction is a pipe: a queue of chunks (read
 * buffers by reference, never copied) with the time each may leave. A pump
 * moves due chunks to the other side within the bandwidth budget, and one
 * libuv timer per session wakes it for the next due chunk, the next tokens,
 * the reset time, or to poll the downstream's write queue while that is
 * full (the session's connection reports no drain event to its handler).
 *
 * Back-pressure. A pipe's bytes plus its target's write queue are bounded by
 * max_buffered: past it the source stops reading (nsys_conn_pause_read) until
 * they fall to a quarter. The connections' own watermarks are set far above
 * that, so only this rule applies and the two directions never stall each
 * other.
 *
 * Not for: sockets (transport/), accepting (listener.c), parsing options
 * from documents (config/proxy_kind.c) or the command line (tools/netsys). */
#include <netsys/log.h>
#include <netsys/net.h>
#include <netsys/proxy.h>
#include <netsys/transport.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/internal.h"

#define MSG_STEP 462u             /* private, to the proxy: a schedule step is due */
#define MSG_FAULTS_CHANGED 463u   /* private, to a session: reload the faults */
#define MSG_SET_FAULTS_QUIET 464u /* private, to the proxy: set faults, no reply */

#define PROXY_NAME_DEFAULT "proxy"
#define LISTEN_HOST_DEFAULT "127.0.0.1"
#define RAW_MAX_PAYLOAD (16u * 1024u * 1024u)
#define BURST_DIVISOR 50u /* a token bucket holds 1/50 s (20 ms) of the rate... */
#define BURST_MIN 64u     /* ...and at least this many bytes */
#define POLL_MIN_MS 1u    /* polling a full downstream write queue: from 1 ms... */
#define POLL_MAX_MS 20u   /* ...doubling up to 20 ms */
#define FAIL_LOG_EVERY_US 1000000u

#define US_PER_MS UINT64_C(1000)
#define MICRO UINT64_C(1000000)

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000u;
}

/* ---- the shared core -------------------------------------------------------------- */

struct pxs;

typedef struct core {
    atomic_size_t refs;
    char *name;
    char *upstream_host;
    uint16_t upstream_port;
    uint64_t connect_timeout_ms;
    size_t max_buffered;

    pthread_mutex_t mu; /* the faults and the session list */
    nsys_proxy_faults_t faults;
    uint64_t applied_us;      /* when they took effect */
    uint64_t refuse_until_us; /* 0: accepting; UINT64_MAX: until changed */
    _Atomic uint64_t version; /* bumped (under mu) at every change */
    struct pxs *sessions;

    _Atomic uint64_t accepted, active, refused, up_connects, up_failures, resets;
    _Atomic uint64_t bytes_up, bytes_down, bytes_dropped, pauses;
    _Atomic uint64_t fail_logged_us;
} core_t;

static void core_retain(void *arg)
{
    core_t *c = arg;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void core_release(void *arg)
{
    core_t *c = arg;
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->name);
    free(c->upstream_host);
    free(c);
}

/* Under c->mu. */
static void core_apply_locked(core_t *c, const nsys_proxy_faults_t *f, uint64_t now)
{
    c->faults = *f;
    c->applied_us = now;
    if (f->refuse_for_ms > 0)
        c->refuse_until_us = now + f->refuse_for_ms * US_PER_MS;
    else
        c->refuse_until_us = f->refuse ? UINT64_MAX : 0;
    atomic_fetch_add_explicit(&c->version, 1, memory_order_release);
}

static core_t *core_new(const nsys_proxy_opts_t *o, const nsys_proxy_faults_t *initial)
{
    core_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->name = strdup(o->name != NULL ? o->name : PROXY_NAME_DEFAULT);
    c->upstream_host = strdup(o->upstream_host);
    if (c->name == NULL || c->upstream_host == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->name);
        free(c->upstream_host);
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->upstream_port = o->upstream_port;
    c->connect_timeout_ms = o->connect_timeout_ms;
    c->max_buffered = o->max_buffered ? o->max_buffered : NSYS_PROXY_MAX_BUFFERED_DEFAULT;
    core_apply_locked(c, initial, now_us()); /* not shared yet */
    return c;
}

/* The transport options of both sides: raw bytes, and watermarks far above
 * max_buffered so that only the proxy's own back-pressure applies. */
static nsys_transport_opts_t raw_transport(size_t max_buffered)
{
    nsys_transport_opts_t t = NSYS_TRANSPORT_OPTS_DEFAULTS;
    t.codec = NSYS_CODEC_RAW;
    t.max_payload = RAW_MAX_PAYLOAD;
    t.write_high = t.read_high = max_buffered * 4 + 4 * NSYS_TRANSPORT_READ_CHUNK;
    return t;
}

/* ---- checking options ---------------------------------------------------------------- */

int nsys_proxy_faults_check(const nsys_proxy_faults_t *f)
{
    if (f == NULL)
        return NSYS_EINVAL;
    if (f->latency_ms > NSYS_PROXY_DELAY_MAX_MS || f->jitter_ms > NSYS_PROXY_DELAY_MAX_MS) {
        nsys__net_set_error("proxy: latency and jitter must be at most %u ms",
                            NSYS_PROXY_DELAY_MAX_MS);
        return NSYS_EINVAL;
    }
    if (f->bandwidth > NSYS_PROXY_BANDWIDTH_MAX) {
        nsys__net_set_error("proxy: bandwidth must be at most %llu bytes/s",
                            (unsigned long long)NSYS_PROXY_BANDWIDTH_MAX);
        return NSYS_EINVAL;
    }
    if (f->reset_every_ms > NSYS_PROXY_PERIOD_MAX_MS ||
        f->refuse_for_ms > NSYS_PROXY_PERIOD_MAX_MS) {
        nsys__net_set_error("proxy: reset_every and refuse_for must be at most %llu ms",
                            (unsigned long long)NSYS_PROXY_PERIOD_MAX_MS);
        return NSYS_EINVAL;
    }
    return 0;
}

static int opts_check(const nsys_proxy_opts_t *o)
{
    if (o->upstream_host == NULL || o->upstream_host[0] == '\0' || strlen(o->upstream_host) > 255 ||
        o->upstream_port == 0) {
        nsys__net_set_error("proxy: an upstream host (1..255 characters) and port (1..65535) "
                            "are required");
        return NSYS_EINVAL;
    }
    if (o->max_buffered > NSYS_PROXY_MAX_BUFFERED_MAX) {
        nsys__net_set_error("proxy: max_buffered must be at most 1 GiB");
        return NSYS_EINVAL;
    }
    int rc = nsys_proxy_faults_check(&o->faults);
    if (rc != 0)
        return rc;
    if (o->schedule_len > NSYS_PROXY_SCHEDULE_MAX || (o->schedule_len > 0 && o->schedule == NULL)) {
        nsys__net_set_error("proxy: a schedule has 1..%u steps", NSYS_PROXY_SCHEDULE_MAX);
        return NSYS_EINVAL;
    }
    for (size_t i = 0; i < o->schedule_len; i++) {
        const nsys_proxy_step_t *st = &o->schedule[i];
        if (st->at_ms > NSYS_PROXY_PERIOD_MAX_MS || (i > 0 && st->at_ms < st[-1].at_ms)) {
            nsys__net_set_error("proxy: schedule step %zu: at_ms must not be below the step "
                                "before it nor above %llu",
                                i, (unsigned long long)NSYS_PROXY_PERIOD_MAX_MS);
            return NSYS_EINVAL;
        }
        if ((rc = nsys_proxy_faults_check(&st->faults)) != 0)
            return rc;
    }
    if (o->repeat_ms > 0 && o->schedule_len > 0 &&
        (o->repeat_ms <= o->schedule[o->schedule_len - 1].at_ms ||
         o->repeat_ms > NSYS_PROXY_PERIOD_MAX_MS)) {
        nsys__net_set_error("proxy: repeat_ms must be above every step's at_ms (and at most "
                            "%llu)",
                            (unsigned long long)NSYS_PROXY_PERIOD_MAX_MS);
        return NSYS_EINVAL;
    }
    return 0;
}

/* ---- a session: one client and its upstream ----------------------------------------- */

enum { UP = 0, DOWN = 1 }; /* UP: client -> upstream; DOWN: upstream -> client */

typedef struct chunk {
    struct chunk *next;
    nsys_buf_t *buf;
    uint64_t due_us;
} chunk_t;

typedef struct pipe {
    chunk_t *head, *tail;
    size_t bytes;         /* in the chunks */
    uint64_t last_due_us; /* keeps the order: no chunk leaves before the one ahead */
    uint64_t tokens;      /* bandwidth budget, in millionths of a byte */
    uint64_t refill_us;   /* 0: the bucket starts full */
    uint64_t wake_us;     /* when the pump can move the head; 0: nothing to wait for */
    bool src_paused;      /* we paused reading the source */
    bool blocked;         /* the target's write queue is full */
} pipe_t;

typedef struct faults_copy {
    nsys_proxy_faults_t f;
    uint64_t applied_us;
    uint64_t refuse_until_us;
    uint64_t version;
} faults_copy_t;

typedef struct pxs {
    struct pxs *prev, *next; /* the core's list, under its mutex */
    nsys_ref_t ref;
    nsys_session_t *s;
    nsys_ctx_t *ctx;
    core_t *core;
    faults_copy_t fc;
    nsys_dial_t *dial;
    nsys_conn_t *up;
    uv_timer_t *timer; /* freed by its close callback */
    uint64_t timer_due_us;
    pipe_t pipe[2];
    uint64_t start_us;
    uint64_t reset_at_us; /* 0: no reset_every */
    uint64_t poll_at_us;  /* the next look at a full downstream; 0: none */
    uint64_t forwarded;   /* both directions, for reset_after_bytes */
    uint64_t rng;
    uint32_t poll_ms;
    uint8_t listed;
    uint8_t up_ended; /* the upstream connection is over */
    uint8_t done;     /* reset or failed: nothing more is forwarded */
    uint8_t closing;  /* the client's side is being closed gracefully */
    uint8_t servicing;
} pxs_t;

static void faults_reload(pxs_t *p)
{
    core_t *c = p->core;
    pthread_mutex_lock(&c->mu);
    p->fc.f = c->faults;
    p->fc.applied_us = c->applied_us;
    p->fc.refuse_until_us = c->refuse_until_us;
    p->fc.version = atomic_load_explicit(&c->version, memory_order_relaxed);
    pthread_mutex_unlock(&c->mu);
    const nsys_proxy_faults_t *f = &p->fc.f;
    if (f->reset_every_ms > 0) {
        uint64_t from = p->start_us > p->fc.applied_us ? p->start_us : p->fc.applied_us;
        p->reset_at_us = from + f->reset_every_ms * US_PER_MS;
    } else {
        p->reset_at_us = 0;
    }
}

static void faults_refresh(pxs_t *p)
{
    if (atomic_load_explicit(&p->core->version, memory_order_acquire) != p->fc.version)
        faults_reload(p);
}

static uint64_t rng_next(pxs_t *p)
{
    uint64_t x = p->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static uint64_t chunk_delay_us(pxs_t *p)
{
    const nsys_proxy_faults_t *f = &p->fc.f;
    int64_t d = (int64_t)f->latency_ms * 1000;
    if (f->jitter_ms > 0) {
        int64_t j = (int64_t)f->jitter_ms * 1000;
        d += (int64_t)(rng_next(p) % (uint64_t)(2 * j + 1)) - j;
    }
    return d > 0 ? (uint64_t)d : 0;
}

static void pipe_drop(pxs_t *p, pipe_t *q, bool count)
{
    while (q->head != NULL) {
        chunk_t *ch = q->head;
        q->head = ch->next;
        if (count)
            atomic_fetch_add_explicit(&p->core->bytes_dropped, nsys_buf_len(ch->buf),
                                      memory_order_relaxed);
        nsys_buf_unref(ch->buf);
        free(ch);
    }
    q->tail = NULL;
    q->bytes = 0;
}

/* Queues a chunk (taking the reference) with the time it may leave. */
static int pipe_push(pxs_t *p, int dir, nsys_buf_t *b, uint64_t now)
{
    pipe_t *q = &p->pipe[dir];
    chunk_t *ch = malloc(sizeof *ch);
    if (ch == NULL) {
        nsys_buf_unref(b);
        return NSYS_ENOMEM;
    }
    uint64_t due = now + chunk_delay_us(p);
    if (due < q->last_due_us)
        due = q->last_due_us;
    q->last_due_us = due;
    ch->next = NULL;
    ch->buf = b;
    ch->due_us = due;
    if (q->tail != NULL)
        q->tail->next = ch;
    else
        q->head = ch;
    q->tail = ch;
    q->bytes += nsys_buf_len(b);
    return 0;
}

static uint64_t burst_bytes(uint64_t bandwidth)
{
    uint64_t b = bandwidth / BURST_DIVISOR;
    return b > BURST_MIN ? b : BURST_MIN;
}

static void bucket_refill(pipe_t *q, uint64_t bandwidth, uint64_t now)
{
    uint64_t cap = burst_bytes(bandwidth) * MICRO;
    if (q->refill_us == 0 || now - q->refill_us >= MICRO) {
        q->tokens = cap;
    } else {
        uint64_t add = (now - q->refill_us) * bandwidth; /* < 2^20 * 2^40 */
        q->tokens = cap - q->tokens <= add ? cap : q->tokens + add;
    }
    if (q->tokens > cap)
        q->tokens = cap;
    q->refill_us = now;
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Ends the pair with RST on both sides: the reset fault, or a failure. */
static void pair_abort(pxs_t *p, int code, const char *why)
{
    p->done = 1;
    if (p->dial != NULL) {
        nsys_dial_cancel(p->dial);
        p->dial = NULL;
    }
    if (p->up != NULL && !p->up_ended)
        nsys_conn_abort(p->up, code, why);
    pipe_drop(p, &p->pipe[UP], false);
    pipe_drop(p, &p->pipe[DOWN], false);
    if (p->timer != NULL && p->timer_due_us != 0) {
        uv_timer_stop(p->timer);
        p->timer_due_us = 0;
    }
    nsys_session_abort(p->s, code);
}

static void inject_reset(pxs_t *p, const char *why)
{
    atomic_fetch_add_explicit(&p->core->resets, 1, memory_order_relaxed);
    pair_abort(p, UV_ECONNRESET, why);
}

static void set_source_paused(pxs_t *p, int dir, bool pause)
{
    pipe_t *q = &p->pipe[dir];
    if (q->src_paused == pause)
        return;
    q->src_paused = pause;
    if (pause)
        atomic_fetch_add_explicit(&p->core->pauses, 1, memory_order_relaxed);
    if (dir == UP)
        nsys_conn_pause_read(nsys_session_conn(p->s), pause);
    else if (p->up != NULL && !p->up_ended)
        nsys_conn_pause_read(p->up, pause);
}

/* Moves what is due from one pipe to its side, within the budget, and
 * pauses or resumes the pipe's source. */
static void pump(pxs_t *p, int dir, uint64_t now)
{
    pipe_t *q = &p->pipe[dir];
    const nsys_proxy_faults_t *f = &p->fc.f;
    core_t *c = p->core;
    q->wake_us = 0;
    q->blocked = false;
    if (f->blackhole)
        pipe_drop(p, q, true);
    nsys_conn_t *target = dir == UP ? p->up : nsys_session_conn(p->s);
    bool ready = dir == DOWN || (p->up != NULL && !p->up_ended);
    bool sent = false;
    while (ready && !p->done && q->head != NULL) {
        chunk_t *ch = q->head;
        if (ch->due_us > now) {
            q->wake_us = ch->due_us;
            break;
        }
        if (nsys_conn_write_queued(target) >= c->max_buffered) {
            q->blocked = true;
            break;
        }
        size_t len = nsys_buf_len(ch->buf), n = len;
        if (f->bandwidth > 0) {
            bucket_refill(q, f->bandwidth, now);
            uint64_t avail = q->tokens / MICRO;
            if (avail == 0) {
                uint64_t need = len < burst_bytes(f->bandwidth) ? len : burst_bytes(f->bandwidth);
                uint64_t missing = need * MICRO - q->tokens;
                q->wake_us = now + (missing + f->bandwidth - 1) / f->bandwidth;
                break;
            }
            if (avail < n)
                n = (size_t)avail;
        }
        if (f->reset_after_bytes > 0) {
            uint64_t left = f->reset_after_bytes - p->forwarded; /* > 0: service checked */
            if (left < n)
                n = (size_t)left;
        }
        nsys_buf_t *part;
        if (n == len) {
            part = ch->buf;
            q->head = ch->next;
            if (q->head == NULL)
                q->tail = NULL;
            free(ch);
        } else {
            nsys_buf_t *rest;
            if (nsys_buf_slice(ch->buf, 0, n, &part) != 0) {
                pair_abort(p, NSYS_ENOMEM, "out of memory");
                return;
            }
            if (nsys_buf_slice(ch->buf, n, len - n, &rest) != 0) {
                nsys_buf_unref(part);
                pair_abort(p, NSYS_ENOMEM, "out of memory");
                return;
            }
            nsys_buf_unref(ch->buf);
            ch->buf = rest;
        }
        q->bytes -= n;
        if (f->bandwidth > 0)
            q->tokens -= (uint64_t)n * MICRO;
        int rc = dir == UP ? nsys_conn_send_buf(target, part) : nsys_session_send_buf(p->s, part);
        if (rc != 0) { /* that side is closing: nothing more can go there */
            nsys_buf_unref(part);
            pipe_drop(p, q, false);
            break;
        }
        sent = true;
        p->forwarded += n;
        atomic_fetch_add_explicit(dir == UP ? &c->bytes_up : &c->bytes_down, n,
                                  memory_order_relaxed);
        if (f->reset_after_bytes > 0 && p->forwarded >= f->reset_after_bytes) {
            inject_reset(p, "reset after the configured bytes (reset_after_bytes)");
            return;
        }
    }
    if (sent && dir == UP)
        nsys_conn_flush(target);
    if (p->done)
        return;
    size_t pending = q->bytes + (target != NULL ? nsys_conn_write_queued(target) : 0);
    if (!q->src_paused && pending > c->max_buffered)
        set_source_paused(p, dir, true);
    else if (q->src_paused && pending <= c->max_buffered / 4)
        set_source_paused(p, dir, false);
}

static void timer_cb(uv_timer_t *t);

/* Arms the session's timer for the earliest thing it waits for. */
static void arm(pxs_t *p, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    for (int d = UP; d <= DOWN; d++)
        if (p->pipe[d].wake_us != 0 && p->pipe[d].wake_us < due)
            due = p->pipe[d].wake_us;
    if (p->reset_at_us != 0 && p->reset_at_us < due)
        due = p->reset_at_us;
    /* Nothing tells us when the client's side drained: look again soon
     * (later each time it has not, so a client that stopped reading costs
     * little). A poll once set stays put, so busy traffic the other way
     * cannot keep pushing it back. */
    if (p->pipe[DOWN].blocked || p->pipe[DOWN].src_paused) {
        if (p->poll_at_us <= now) {
            p->poll_at_us = now + p->poll_ms * US_PER_MS;
            p->poll_ms = p->poll_ms * 2 < POLL_MAX_MS ? p->poll_ms * 2 : POLL_MAX_MS;
        }
        if (p->poll_at_us < due)
            due = p->poll_at_us;
    } else {
        p->poll_at_us = 0;
        p->poll_ms = POLL_MIN_MS;
    }
    if (due == UINT64_MAX) {
        if (p->timer_due_us != 0)
            uv_timer_stop(p->timer);
        p->timer_due_us = 0;
        return;
    }
    if (due == p->timer_due_us)
        return;
    uint64_t delay_ms = due > now ? (due - now + US_PER_MS - 1) / US_PER_MS : 0;
    uv_update_time(nsys_ctx_loop(p->ctx)); /* timers count from the loop's cached time */
    uv_timer_start(p->timer, timer_cb, delay_ms, 0);
    p->timer_due_us = due;
}

/* Everything a session does after an event: faults, resets, both pumps, the
 * graceful end after the upstream closed, and the next wake-up. */
static void service(pxs_t *p)
{
    if (p->servicing || p->done)
        return;
    p->servicing = 1;
    faults_refresh(p);
    uint64_t now = now_us();
    const nsys_proxy_faults_t *f = &p->fc.f;
    if (p->reset_at_us != 0 && now >= p->reset_at_us) {
        inject_reset(p, "reset by the proxy (reset_every)");
    } else if (f->reset_after_bytes > 0 && p->forwarded >= f->reset_after_bytes) {
        inject_reset(p, "reset after the configured bytes (reset_after_bytes)");
    } else {
        pump(p, UP, now);
        if (!p->done)
            pump(p, DOWN, now);
        if (!p->done && p->up_ended && !p->closing && p->pipe[DOWN].head == NULL) {
            p->closing = 1; /* everything the upstream sent is on its way */
            nsys_session_close(p->s);
        }
        if (!p->done)
            arm(p, now);
    }
    p->servicing = 0;
}

static void timer_cb(uv_timer_t *t)
{
    pxs_t *p = t->data;
    p->timer_due_us = 0;
    if (!nsys_io_enter(p->ctx))
        return;
    service(p);
    nsys_io_leave(p->ctx);
}

/* ---- the upstream connection's events (run as the session actor) ---- */

static bool up_enter(void *ud)
{
    return nsys_io_enter(((pxs_t *)ud)->ctx);
}

static void up_leave(void *ud)
{
    pxs_t *p = ud;
    service(p); /* a write finished or data came: move what can move */
    nsys_io_leave(p->ctx);
}

static int up_message(void *ud, nsys_conn_t *c, nsys_buf_t *msg)
{
    (void)c;
    pxs_t *p = ud;
    if (p->done || p->closing) {
        nsys_buf_unref(msg);
        return 0;
    }
    faults_refresh(p);
    if (p->fc.f.blackhole) {
        atomic_fetch_add_explicit(&p->core->bytes_dropped, nsys_buf_len(msg), memory_order_relaxed);
        nsys_buf_unref(msg);
        return 0;
    }
    return pipe_push(p, DOWN, msg, now_us()); /* on_message owns msg: moved */
}

static void up_close(void *ud, nsys_conn_t *c, nsys_conn_end_t end, int code, const char *text)
{
    (void)c;
    pxs_t *p = ud;
    p->up_ended = 1; /* the connection itself is freed with the session */
    pipe_drop(p, &p->pipe[UP], false);
    if (p->done)
        return;
    if (end == NSYS_CONN_END_ERROR) {
        NSYS_LOG(NSYS_LOG_DEBUG, "proxy %s: upstream %s ended (%s): resetting %s", p->core->name,
                 text, nsys_strerror(code), nsys_session_peer(p->s));
        pair_abort(p, code, "its upstream failed");
    }
    /* A clean end: service (in up_leave) delivers what is held, then closes. */
}

static const nsys_conn_events_t up_events = {
    .enter = up_enter,
    .leave = up_leave,
    .on_message = up_message,
    .on_close = up_close,
};

static void log_upstream_failure(core_t *c, const char *text)
{
    uint64_t now = now_us();
    uint64_t last = atomic_load_explicit(&c->fail_logged_us, memory_order_relaxed);
    if (last != 0 && now - last < FAIL_LOG_EVERY_US)
        return;
    if (!atomic_compare_exchange_strong(&c->fail_logged_us, &last, now))
        return;
    NSYS_LOG(NSYS_LOG_WARN,
             "proxy %s: cannot reach the upstream: %s (clients are reset; %llu "
             "failures so far)",
             c->name, text,
             (unsigned long long)atomic_load_explicit(&c->up_failures, memory_order_relaxed));
}

static void dial_done(void *ud, int status, int fd, const char *text)
{
    pxs_t *p = ud;
    p->dial = NULL; /* over: must not be cancelled */
    if (!nsys_io_enter(p->ctx)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    core_t *c = p->core;
    int rc = status;
    if (rc == 0) {
        nsys_transport_opts_t t = raw_transport(c->max_buffered);
        rc = nsys_conn_open_fd(nsys_ctx_loop(p->ctx), fd, &t, &up_events, p, &p->up);
        if (rc != 0)
            close(fd);
    }
    if (rc != 0) {
        atomic_fetch_add_explicit(&c->up_failures, 1, memory_order_relaxed);
        log_upstream_failure(c, text);
        pair_abort(p, rc, "its upstream cannot be reached");
    } else {
        atomic_fetch_add_explicit(&c->up_connects, 1, memory_order_relaxed);
        service(p);
    }
    nsys_io_leave(p->ctx);
}

/* ---- the session handler ---- */

static void list_add(pxs_t *p)
{
    core_t *c = p->core;
    pthread_mutex_lock(&c->mu);
    p->prev = NULL;
    p->next = c->sessions;
    if (c->sessions != NULL)
        c->sessions->prev = p;
    c->sessions = p;
    p->listed = 1;
    pthread_mutex_unlock(&c->mu);
}

static void list_remove(pxs_t *p)
{
    if (!p->listed)
        return;
    core_t *c = p->core;
    pthread_mutex_lock(&c->mu);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        c->sessions = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->listed = 0;
    pthread_mutex_unlock(&c->mu);
}

static int px_open(nsys_session_t *s, void *state, void *arg)
{
    pxs_t *p = state;
    core_t *c = arg;
    p->s = s;
    p->ctx = nsys_session_ctx(s);
    p->ref = nsys_session_ref(s);
    p->core = c;
    uint64_t now = now_us();
    p->start_us = now;
    atomic_fetch_add_explicit(&c->accepted, 1, memory_order_relaxed);
    faults_reload(p);
    if (p->fc.refuse_until_us != 0 && now < p->fc.refuse_until_us) {
        atomic_fetch_add_explicit(&c->refused, 1, memory_order_relaxed);
        return UV_ECONNREFUSED; /* the session resets the connection */
    }
    p->rng = (now ^ (uint64_t)(uintptr_t)p) * UINT64_C(0x9E3779B97F4A7C15) | 1u;
    p->poll_ms = POLL_MIN_MS;
    uv_loop_t *loop = nsys_ctx_loop(p->ctx);
    p->timer = malloc(sizeof *p->timer);
    if (p->timer == NULL)
        return NSYS_ENOMEM;
    uv_timer_init(loop, p->timer);
    p->timer->data = p;
    int rc = nsys_dial(loop, c->upstream_host, c->upstream_port, c->connect_timeout_ms, dial_done,
                       p, &p->dial);
    if (rc != 0) {
        p->dial = NULL;
        uv_close((uv_handle_t *)p->timer, timer_closed);
        p->timer = NULL;
        atomic_fetch_add_explicit(&c->up_failures, 1, memory_order_relaxed);
        return rc; /* no on_close follows a failed on_open */
    }
    list_add(p);
    faults_refresh(p); /* a change between the load and the listing sent us no message */
    atomic_fetch_add_explicit(&c->active, 1, memory_order_relaxed);
    arm(p, now);
    return 0;
}

static int px_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    (void)s;
    pxs_t *p = state;
    if (p->done || p->up_ended)
        return 0; /* nowhere to go any more */
    faults_refresh(p);
    if (p->fc.f.blackhole) {
        atomic_fetch_add_explicit(&p->core->bytes_dropped, nsys_buf_len(msg), memory_order_relaxed);
        return 0;
    }
    /* Lent for the call; a message's length never changes (the connection
     * hands out slices), so a reference is enough to keep it. */
    int rc = pipe_push(p, UP, nsys_buf_ref(msg), now_us());
    if (rc == 0)
        service(p);
    return rc;
}

static int px_info(nsys_session_t *s, void *state, nsys_msg_t *msg)
{
    (void)s;
    if (msg->type == MSG_FAULTS_CHANGED)
        service(state);
    return 0;
}

/* The client's side is over (or the session is stopped): the upstream gets
 * what was held for it (up to reset_after_bytes) at once, then a FIN — or a
 * RST if the client reset, or if the upstream socket could not take all of
 * it now (the session is going, so it cannot wait: a reset says the stream
 * is cut short where a FIN would say it is complete). */
static void px_close(nsys_session_t *s, void *state, int reason, const char *text)
{
    (void)s;
    (void)text;
    pxs_t *p = state;
    core_t *c = p->core;
    list_remove(p);
    atomic_fetch_sub_explicit(&c->active, 1, memory_order_relaxed);
    if (p->dial != NULL) {
        nsys_dial_cancel(p->dial);
        p->dial = NULL;
    }
    if (p->timer != NULL) {
        uv_close((uv_handle_t *)p->timer, timer_closed);
        p->timer = NULL;
    }
    pipe_drop(p, &p->pipe[DOWN], false);
    pipe_t *q = &p->pipe[UP];
    if (p->up != NULL && !p->up_ended && !p->done && reason == UV_ECONNRESET) {
        nsys_conn_abort(p->up, reason, "its client reset the connection");
    } else if (p->up != NULL && !p->up_ended && !p->done && !p->fc.f.blackhole) {
        uint64_t limit = p->fc.f.reset_after_bytes;
        uint64_t queued = 0;
        bool cut = false;
        while (q->head != NULL) {
            chunk_t *ch = q->head;
            q->head = ch->next;
            size_t n = nsys_buf_len(ch->buf);
            if (limit > 0 && p->forwarded + n > limit) { /* past the count: nothing more */
                cut = true;
                nsys_buf_unref(ch->buf);
            } else if (nsys_conn_send_buf(p->up, ch->buf) == 0) {
                p->forwarded += n;
                queued += n;
            } else {
                cut = true;
                nsys_buf_unref(ch->buf);
            }
            free(ch);
        }
        q->tail = NULL;
        q->bytes = 0;
        nsys_conn_flush(p->up);
        size_t pending = nsys_conn_write_queued(p->up);
        atomic_fetch_add_explicit(&c->bytes_up, queued - (pending < queued ? pending : queued),
                                  memory_order_relaxed);
        if (pending > 0 || cut)
            nsys_conn_abort(p->up, NSYS_ECANCELED, "its client closed before this was written");
    }
    pipe_drop(p, q, false);
    nsys_conn_free(p->up);
    p->up = NULL;
}

static const nsys_session_handler_t proxy_handler = {
    .name = "proxy",
    .state_size = sizeof(pxs_t),
    .on_open = px_open,
    .on_message = px_message,
    .on_info = px_info,
    .on_close = px_close,
};

/* ---- the proxy actor ---------------------------------------------------------------- */

typedef struct proxy {
    nsys_ctx_t *ctx;
    nsys_runtime_t *rt;
    core_t *core;
    nsys_ref_t listener;
    char address[NSYS_NET_PEER_MAX];
    uint16_t port;
    nsys_proxy_step_t *steps;
    size_t nsteps;
    uint64_t repeat_ms;
    uint64_t start_us;
    size_t next_step;
    uint64_t cycle;
    uint64_t token;       /* of the pending step message */
    uint64_t step_due_us; /* when it is due */
    nsys_timer_t step_timer;
    bool schedule_on;
    uint64_t steps_applied;
} proxy_t;

/* What both ways of starting hand to the actor's init. */
typedef struct start_args {
    core_t *core;        /* one reference */
    nsys_ref_t listener; /* NONE: init starts it */
    char address[NSYS_NET_PEER_MAX];
    uint16_t port;
    nsys_proxy_step_t *steps;
    size_t nsteps;
    uint64_t repeat_ms;
    size_t first_step; /* steps before it (at 0 ms) are in the core's faults already */
    char *listen_host;
    uint16_t listen_port;
    uint32_t max_connections;
} start_args_t;

static void start_args_free(void *arg)
{
    start_args_t *a = arg;
    if (a == NULL)
        return;
    if (a->core != NULL)
        core_release(a->core);
    free(a->steps);
    free(a->listen_host);
    free(a);
}

/* Checks and copies the options; the faults in force at start are those of
 * the last step at 0 ms, if any. */
static int start_args_new(const nsys_proxy_opts_t *o, start_args_t **out)
{
    int rc = opts_check(o);
    if (rc != 0)
        return rc;
    start_args_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NSYS_ENOMEM;
    nsys_proxy_faults_t initial = o->faults;
    size_t first = 0;
    while (first < o->schedule_len && o->schedule[first].at_ms == 0)
        initial = o->schedule[first++].faults;
    a->first_step = first;
    a->nsteps = o->schedule_len;
    a->repeat_ms = o->schedule_len > 0 ? o->repeat_ms : 0;
    a->listen_port = o->listen_port;
    a->max_connections = o->max_connections;
    a->listen_host = strdup(o->listen_host != NULL ? o->listen_host : LISTEN_HOST_DEFAULT);
    if (o->schedule_len > 0 && (a->steps = malloc(o->schedule_len * sizeof *a->steps)) != NULL)
        memcpy(a->steps, o->schedule, o->schedule_len * sizeof *a->steps);
    a->core = core_new(o, &initial);
    if (a->listen_host == NULL || (o->schedule_len > 0 && a->steps == NULL) || a->core == NULL) {
        start_args_free(a);
        nsys__net_set_error("proxy: out of memory");
        return NSYS_ENOMEM;
    }
    *out = a;
    return 0;
}

/* Binds the listener (on the calling thread) that feeds the sessions. */
static int start_listener(nsys_runtime_t *rt, start_args_t *a)
{
    core_t *c = a->core;
    nsys_listener_opts_t lo;
    memset(&lo, 0, sizeof lo);
    lo.name = c->name;
    lo.host = a->listen_host;
    lo.port = a->listen_port;
    lo.max_sessions = a->max_connections;
    lo.transport = raw_transport(c->max_buffered);
    lo.handler = &proxy_handler;
    lo.handler_arg = c;
    lo.handler_arg_retain = core_retain;
    lo.handler_arg_release = core_release;
    nsys_listener_info_t info;
    int rc = nsys_listener_start(rt, &lo, &a->listener, &info);
    if (rc != 0)
        return rc;
    snprintf(a->address, sizeof a->address, "%s", info.address);
    a->port = info.port;
    return 0;
}

static void schedule_wait(proxy_t *px);

static void schedule_next(proxy_t *px)
{
    if (px->next_step >= px->nsteps) {
        if (px->repeat_ms == 0 || px->nsteps == 0) {
            px->schedule_on = false;
            return;
        }
        px->next_step = 0;
        px->cycle++;
    }
    px->step_due_us =
        px->start_us + (px->cycle * px->repeat_ms + px->steps[px->next_step].at_ms) * US_PER_MS;
    px->token++;
    schedule_wait(px);
}

/* (Re)arms the step timer for px->step_due_us. A timer counts from the
 * loop's cached time, which may lag, so it can fire a little early: the
 * step handler then waits again for what is left. */
static void schedule_wait(proxy_t *px)
{
    uint64_t now = now_us();
    uint64_t due = px->step_due_us;
    uint64_t delay = due > now ? (due - now + US_PER_MS - 1) / US_PER_MS : 0;
    int rc = nsys_send_after(px->ctx, NSYS_REF_NONE, delay, MSG_STEP, &px->token, sizeof px->token,
                             &px->step_timer);
    px->schedule_on = rc == 0;
    if (rc != 0)
        NSYS_LOG(NSYS_LOG_ERROR, "proxy %s: cannot time its schedule: %s", px->core->name,
                 nsys_strerror(rc));
}

static void schedule_stop(proxy_t *px)
{
    if (!px->schedule_on)
        return;
    nsys_timer_cancel(px->ctx, px->step_timer);
    px->schedule_on = false;
    px->token++;
}

/* Publishes new faults and tells every open session. */
static void publish(proxy_t *px, const nsys_proxy_faults_t *f)
{
    core_t *c = px->core;
    pthread_mutex_lock(&c->mu);
    core_apply_locked(c, f, now_us());
    for (pxs_t *s = c->sessions; s != NULL; s = s->next)
        nsys_send(px->rt, s->ref, MSG_FAULTS_CHANGED, NULL, 0);
    pthread_mutex_unlock(&c->mu);
}

static int proxy_adopt(nsys_ctx_t *ctx, proxy_t *px, start_args_t *a)
{
    px->ctx = ctx;
    px->rt = nsys_ctx_runtime(ctx);
    if (a->listener == NSYS_REF_NONE) {
        int rc = start_listener(px->rt, a);
        if (rc != 0) {
            NSYS_LOG(NSYS_LOG_ERROR, "proxy %s: %s", a->core->name, nsys_net_last_error());
            return rc;
        }
    }
    /* Linked both ways: a listener that fails takes the proxy along, and the
     * proxy's exit (whatever its reason) stops the listener. */
    int rc = nsys_link(ctx, a->listener);
    if (rc != 0) {
        nsys_listener_stop(px->rt, a->listener);
        return rc;
    }
    px->core = a->core;
    a->core = NULL;
    px->listener = a->listener;
    snprintf(px->address, sizeof px->address, "%s", a->address);
    px->port = a->port;
    px->steps = a->steps;
    a->steps = NULL;
    px->nsteps = a->nsteps;
    px->repeat_ms = a->repeat_ms;
    px->next_step = a->first_step;
    px->steps_applied = a->first_step;
    px->start_us = now_us();
    if (px->nsteps > 0)
        schedule_next(px);
    NSYS_LOG(NSYS_LOG_INFO, "proxy %s: %s -> %s:%u", px->core->name, px->address,
             px->core->upstream_host, (unsigned)px->core->upstream_port);
    return 0;
}

static int proxy_init(nsys_ctx_t *ctx, void *state, void *args)
{
    if (args == NULL)
        return NSYS_EINVAL;
    start_args_t *a = NULL;
    int rc = start_args_new(args, &a);
    if (rc != 0) {
        NSYS_LOG(NSYS_LOG_ERROR, "%s", nsys_net_last_error());
        return rc;
    }
    rc = proxy_adopt(ctx, state, a);
    start_args_free(a);
    return rc;
}

static int proxy_started_init(nsys_ctx_t *ctx, void *state, void *args)
{
    return proxy_adopt(ctx, state, args); /* args_free releases what was not taken */
}

static void stats_fill(const proxy_t *px, nsys_proxy_stats_t *st)
{
    core_t *c = px->core;
    memset(st, 0, sizeof *st);
    snprintf(st->address, sizeof st->address, "%s", px->address);
    st->port = px->port;
    st->accepted = atomic_load_explicit(&c->accepted, memory_order_relaxed);
    st->active = atomic_load_explicit(&c->active, memory_order_relaxed);
    st->refused = atomic_load_explicit(&c->refused, memory_order_relaxed);
    st->upstream_connects = atomic_load_explicit(&c->up_connects, memory_order_relaxed);
    st->upstream_failures = atomic_load_explicit(&c->up_failures, memory_order_relaxed);
    st->resets = atomic_load_explicit(&c->resets, memory_order_relaxed);
    st->bytes_up = atomic_load_explicit(&c->bytes_up, memory_order_relaxed);
    st->bytes_down = atomic_load_explicit(&c->bytes_down, memory_order_relaxed);
    st->bytes_dropped = atomic_load_explicit(&c->bytes_dropped, memory_order_relaxed);
    st->pauses = atomic_load_explicit(&c->pauses, memory_order_relaxed);
    st->schedule_steps = px->steps_applied;
    pthread_mutex_lock(&c->mu);
    st->faults = c->faults;
    st->refusing = c->refuse_until_us != 0 && now_us() < c->refuse_until_us;
    pthread_mutex_unlock(&c->mu);
}

static int proxy_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    proxy_t *px = state;
    switch (msg->type) {
    case MSG_STEP: {
        uint64_t token;
        if (msg->size != sizeof token)
            return 0;
        memcpy(&token, msg->data, sizeof token);
        if (!px->schedule_on || token != px->token || px->next_step >= px->nsteps)
            return 0;
        if (now_us() < px->step_due_us) {
            schedule_wait(px);
            return 0;
        }
        publish(px, &px->steps[px->next_step].faults);
        px->steps_applied++;
        px->next_step++;
        schedule_next(px);
        return 0;
    }
    case NSYS_MSG_PROXY_SET_FAULTS:
    case MSG_SET_FAULTS_QUIET: {
        nsys_proxy_faults_t f;
        int rc = NSYS_EINVAL;
        if (msg->size == sizeof f) {
            memcpy(&f, msg->data, sizeof f);
            rc = nsys_proxy_faults_check(&f);
        }
        if (rc == 0) {
            schedule_stop(px);
            publish(px, &f);
        }
        if (msg->type == NSYS_MSG_PROXY_SET_FAULTS && msg->from != NSYS_REF_NONE)
            nsys_send(px->rt, msg->from, NSYS_MSG_PROXY_SET_FAULTS, &rc, sizeof rc);
        return 0;
    }
    case NSYS_MSG_PROXY_STATS: {
        nsys_proxy_stats_t st;
        stats_fill(px, &st);
        if (msg->from != NSYS_REF_NONE)
            nsys_send(px->rt, msg->from, NSYS_MSG_PROXY_STATS, &st, sizeof st);
        return 0;
    }
    default:
        return 0;
    }
}

static void proxy_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    proxy_t *px = state;
    /* The link stops the listener. (An explicit stop as well would race the
     * link's signal, and the listener's own exit signal back would be a dead
     * letter.) */
    NSYS_LOG(NSYS_LOG_INFO, "proxy %s: stopped (%s)", px->core->name, nsys_strerror(reason));
    core_release(px->core);
    free(px->steps);
}

const nsys_behaviour_t nsys_proxy_behaviour = {
    .name = "proxy",
    .state_size = sizeof(proxy_t),
    .init = proxy_init,
    .handle = proxy_handle,
    .terminate = proxy_terminate,
};

static const nsys_behaviour_t proxy_started_behaviour = {
    .name = "proxy",
    .state_size = sizeof(proxy_t),
    .init = proxy_started_init,
    .handle = proxy_handle,
    .terminate = proxy_terminate,
};

/* ---- the API --------------------------------------------------------------------------- */

int nsys_proxy_start(nsys_runtime_t *rt, const nsys_proxy_opts_t *opts, nsys_ref_t *ref,
                     nsys_proxy_stats_t *stats)
{
    nsys__net_set_error("%s", "");
    if (rt == NULL || opts == NULL) {
        nsys__net_set_error("nsys_proxy_start: runtime and options are required");
        return NSYS_EINVAL;
    }
    start_args_t *a = NULL;
    int rc = start_args_new(opts, &a);
    if (rc != 0)
        return rc;
    rc = start_listener(rt, a);
    if (rc != 0) {
        start_args_free(a);
        return rc;
    }
    nsys_ref_t listener = a->listener;
    char address[NSYS_NET_PEER_MAX];
    snprintf(address, sizeof address, "%s", a->address);
    uint16_t port = a->port;
    nsys_proxy_faults_t initial;
    pthread_mutex_lock(&a->core->mu);
    initial = a->core->faults;
    pthread_mutex_unlock(&a->core->mu);
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.args = a;
    so.args_free = start_args_free;
    nsys_ref_t r;
    rc = nsys_spawn(rt, &proxy_started_behaviour, &so, &r);
    if (rc != 0) {
        nsys__net_set_error("proxy: cannot start its actor: %s", nsys_strerror(rc));
        start_args_free(a);
        nsys_listener_stop(rt, listener);
        return rc;
    }
    if (ref != NULL)
        *ref = r;
    if (stats != NULL) {
        memset(stats, 0, sizeof *stats);
        snprintf(stats->address, sizeof stats->address, "%s", address);
        stats->port = port;
        stats->faults = initial;
    }
    return 0;
}

int nsys_proxy_stop(nsys_runtime_t *rt, nsys_ref_t proxy)
{
    return nsys_exit_signal(rt, proxy, NSYS_REASON_SHUTDOWN);
}

int nsys_proxy_set_faults(nsys_runtime_t *rt, nsys_ref_t proxy, const nsys_proxy_faults_t *faults)
{
    int rc = nsys_proxy_faults_check(faults);
    if (rc != 0)
        return rc;
    int applied = 0;
    rc = nsys_call_reply(rt, proxy, NSYS_MSG_PROXY_SET_FAULTS, faults, sizeof *faults, &applied,
                         sizeof applied);
    if (rc == NSYS_EBUSY) /* a scheduler thread must not wait */
        return nsys_send(rt, proxy, MSG_SET_FAULTS_QUIET, faults, sizeof *faults);
    return rc != 0 ? rc : applied;
}

int nsys_proxy_stats(nsys_runtime_t *rt, nsys_ref_t proxy, nsys_proxy_stats_t *out)
{
    if (out == NULL)
        return NSYS_EINVAL;
    return nsys_call_reply(rt, proxy, NSYS_MSG_PROXY_STATS, NULL, 0, out, sizeof *out);
}

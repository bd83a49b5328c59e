/* transport/conn.c — a connection: one uv_tcp_t under a stack of layers.
 *
 * Writing. Sends are queued as (buffer reference, iovec) entries: payloads
 * by reference, small copies (frame headers, short messages) packed into a
 * shared arena buffer so neighbouring copies become one iovec.
 * nsys_conn_flush() writes the queue (up to 1024 iovecs) with one
 * uv_try_write (a writev) and hands what the socket did not take to one
 * uv_write; sends made while
 * that write is in flight wait and go out together when it completes.
 *
 * Reading. Reads land in a reference-counted buffer; frames are slices of it,
 * so a message reaches its actor without a copy. After a read the buffer
 * either stays with the slices' holders (the next read appends to it while
 * it has room) or, when nobody holds a slice, goes back to a per-thread
 * spare (or is freed if the spare is taken), so an idle connection holds no
 * read memory.
 *
 * Back-pressure, both sides. Past write_high queued bytes the connection
 * stops reading until the queue drains to write_low (a peer that does not
 * read cannot make us buffer replies without bound); a send that would pass
 * write_limit (pushes the peer does not read) ends the connection. Read buffers are tracked
 * (nsys_buf_track): past read_high bytes still held by receivers, wherever
 * they are (a mailbox, a handler that kept them), reading pauses; the thread
 * that releases enough of them sends NSYS_MSG_NET_RESUME to the owner.
 *
 * Ending. Whatever ends a connection (EOF, error, close, abort, idle
 * timeout), the handles are closed and on_close is delivered from their
 * close callback, once, unless the owner detached first; the memory goes
 * when both the handles are closed and the owner called nsys_conn_free().
 *
 * Size. A server holds one of these per idle session, so the struct keeps
 * only what runs after opening, embeds its codec, and stores the peer's
 * text at its exact length. */
#include <netsys/framing.h>
#include <netsys/transport.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport/internal.h"

#define ARENA_SIZE 960u  /* small copies share one buffer (fits malloc's fast bins) */
#define COPY_MAX 256u    /* larger copies get a buffer of their own */
#define WRITE_BATCH 1024 /* iovecs per write (IOV_MAX on Linux) */
#define READ_MIN_ROOM 2048u /* below this, a read buffer is retired */
#define END_TEXT_SIZE 192u
#define PEER_TEXT_MAX 64u /* "[ffff:...:255.255.255.255]:65535" and NUL */

enum { PAUSE_WRITE = 1u, PAUSE_READ = 2u, PAUSE_GONE = 4u, PAUSE_USER = 8u };
enum { ST_OPEN = 0, ST_CLOSING, ST_ENDED };

/* Receiver-side accounting, shared with the buffers it tracks (which may be
 * released on any thread after the connection is gone); freed by the last
 * of them and the connection. `refs` is 32 bits so that the struct is 40
 * bytes (malloc's 48-byte class, not 64): each reference is a live buffer
 * with an allocation of its own, so 2^32 of them cannot exist. */
typedef struct flow {
    atomic_uint refs;
    atomic_int paused;
    atomic_size_t held;
    size_t low;
    nsys_runtime_t *rt;
    _Atomic nsys_ref_t owner;
} flow_t;

/* The idle timeout, only for connections that have one; freed by destroy,
 * after its handle's close callback. */
typedef struct idle {
    uv_timer_t timer;
    uint64_t timeout_ms;
    uint64_t last_active; /* uv_now of the last byte read or written */
} idle_t;

/* Only the options used after opening are kept (read_low lives in the
 * flow, max_payload in the codec, idle_timeout_ms with the timer; the rest
 * is applied by nsys_conn_open_fd). */
struct nsys_conn {
    uv_tcp_t tcp;
    idle_t *idle;                            /* only with idle_timeout_ms */
    size_t write_high, write_low, read_high, write_limit; /* resolved options */
    const nsys_conn_events_t *ev;            /* the owner's table (static) */
    void *ud;
    nsys_layer_t *bottom; /* the lowest layer (the codec when there are no filters) */
    flow_t *flow;

    /* write queue: entries [head, tail); the first `writing` are in flight */
    nsys_buf_t **wbufs;
    uv_buf_t *wiov;
    uint32_t head, tail, cap, writing;
    size_t wq_bytes;
    uint64_t queued_total; /* every byte ever queued */
    nsys_buf_t *arena;

    nsys_buf_t *rbuf; /* current read buffer (tracked), or NULL */
    char *end_text;   /* only once the connection ended */
    int end_code;
    uint8_t pause; /* PAUSE_* bits */
    uint8_t state;
    uint8_t reading;
    uint8_t shutdown_wanted; /* flush, then FIN, then end with end_kind */
    uint8_t shutting;        /* uv_shutdown in flight */
    uint8_t detached;        /* the owner gets no more events */
    uint8_t freed;           /* the owner let go: destroy once the handles are closed */
    uint8_t nhandles;        /* handles not yet closed */
    uint8_t delivering;      /* inside on_close: nsys_conn_free must not free yet */
    uint8_t end_kind;
    /* the top layer (the codec); see top() */
    _Alignas(16) unsigned char codec[NSYS__CODEC_STORAGE];
    char peer[]; /* "1.2.3.4:80", "[::1]:80" or "fd 7" */
};

static nsys_layer_t *top(nsys_conn_t *c) { return (nsys_layer_t *)c->codec; }

/* An idle connection is one without a byte read or written since this. */
static void touch(nsys_conn_t *c)
{
    if (c->idle != NULL)
        c->idle->last_active = uv_now(c->tcp.loop);
}

/* ---- errors --------------------------------------------------------------------- */

static _Thread_local char last_error[256];

const char *nsys_net_last_error(void) { return last_error; }

void nsys__net_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

void nsys__net_format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[64];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof ip);
        snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof ip);
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(out, outlen, "?");
    }
}

/* ---- options ---------------------------------------------------------------------- */

void nsys_transport_opts_resolve(const nsys_transport_opts_t *in, nsys_transport_opts_t *out)
{
    nsys_transport_opts_t o = NSYS_TRANSPORT_OPTS_DEFAULTS;
    if (in != NULL)
        o = *in;
    if (o.max_payload == 0)
        o.max_payload = NSYS_FRAMING_DEFAULT_MAX_PAYLOAD;
    if (o.max_payload > NSYS_FRAMING_WIRE_MAX_PAYLOAD)
        o.max_payload = NSYS_FRAMING_WIRE_MAX_PAYLOAD;
    if (o.write_high == 0)
        o.write_high = NSYS_TRANSPORT_WRITE_HIGH_DEFAULT;
    if (o.write_low == 0 || o.write_low >= o.write_high)
        o.write_low = o.write_high / 4;
    if (o.read_high == 0)
        o.read_high = NSYS_TRANSPORT_READ_HIGH_DEFAULT;
    if (o.read_low == 0 || o.read_low >= o.read_high)
        o.read_low = o.read_high / 4;
    if (o.write_limit == 0)
        o.write_limit = NSYS_TRANSPORT_WRITE_LIMIT_DEFAULT;
    /* Room to pause reading before the cap, and for the largest frame the
     * limits allow on top of a queue at write_high (saturating). */
    uint64_t need = (uint64_t)o.write_high + (o.write_high > o.max_payload + 4u
                                                   ? o.write_high
                                                   : o.max_payload + 4u);
    if (need > SIZE_MAX)
        need = SIZE_MAX;
    if (o.write_limit < need)
        o.write_limit = (size_t)need;
    *out = o;
}

/* ---- receiver-side flow ---------------------------------------------------------- */

static void flow_unref(flow_t *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

/* Sequentially consistent on purpose: this side writes `held` then reads
 * `paused`, check_read_budget writes `paused` then reads `held`; with weaker
 * orderings both may read the old value and the resume is lost. */
static void flow_release(flow_t *f, size_t bytes)
{
    size_t now = atomic_fetch_sub(&f->held, bytes) - bytes;
    if (now > f->low || !atomic_load(&f->paused))
        return;
    nsys_ref_t owner = atomic_load(&f->owner);
    if (owner == NSYS_REF_NONE || f->rt == NULL)
        return; /* nobody to tell: the flag stays for the connection to see */
    int expected = 1;
    if (!atomic_compare_exchange_strong(&f->paused, &expected, 0))
        return;
    if (nsys_send(f->rt, owner, NSYS_MSG_NET_RESUME, NULL, 0) != 0)
        atomic_store(&f->paused, 1); /* undelivered: leave it to the next release */
}

static void flow_on_free(void *arg, size_t cap)
{
    flow_t *f = arg;
    flow_release(f, cap);
    flow_unref(f);
}

/* Starts counting root buffer `b` against the flow, unless something
 * already counts it. The caller holds a reference, so the hook cannot run
 * before the counts are in place. */
static void flow_track(flow_t *f, nsys_buf_t *b)
{
    if (nsys_buf_track(b, flow_on_free, f) != 0)
        return;
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->held, nsys_buf_cap(b), memory_order_acq_rel);
}

/* ---- per-thread spare read buffer ------------------------------------------------ */

static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_destroy(void *p) { nsys_buf_unref(p); }
static void spare_init(void) { pthread_key_create(&spare_key, spare_destroy); }

static nsys_buf_t *rbuf_get(nsys_conn_t *c)
{
    pthread_once(&spare_once, spare_init);
    nsys_buf_t *b = pthread_getspecific(spare_key);
    if (b != NULL) {
        pthread_setspecific(spare_key, NULL);
        nsys_buf_set_len(b, 0);
    } else if (nsys_buf_new(NSYS_TRANSPORT_READ_CHUNK, &b) != 0) {
        return NULL;
    }
    flow_track(c->flow, b);
    return b;
}

/* Done with the current read buffer: back to the spare if nobody else holds
 * it, else let its holders keep it. */
static void rbuf_drop(nsys_conn_t *c)
{
    nsys_buf_t *b = c->rbuf;
    if (b == NULL)
        return;
    c->rbuf = NULL;
    if (nsys_buf_refcount(b) == 1 && pthread_getspecific(spare_key) == NULL) {
        nsys_buf_track(b, NULL, NULL);
        flow_on_free(c->flow, nsys_buf_cap(b)); /* what freeing it would have said */
        pthread_setspecific(spare_key, b);
        return;
    }
    nsys_buf_unref(b);
}

/* ---- reading and its pauses --------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void update_reading(nsys_conn_t *c)
{
    bool want = c->state == ST_OPEN && c->pause == 0;
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
        if (rc == 0)
            c->reading = 1;
        else /* a connection that cannot read is no connection */
            nsys_conn_fail(c, rc, "cannot read: %s", uv_strerror(rc));
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void set_pause(nsys_conn_t *c, unsigned bit, bool on)
{
    unsigned before = c->pause;
    c->pause = (uint8_t)(on ? (before | bit) : (before & ~bit));
    if (c->pause != before) {
        update_reading(c);
        if (bit == PAUSE_READ && c->ev->on_flow != NULL)
            c->ev->on_flow(c->ud, c, on);
    }
}

/* After a read: pause if receivers hold too much. The paused flag is set
 * before the re-check so a release racing with us cannot be missed. */
static void check_read_budget(nsys_conn_t *c)
{
    flow_t *f = c->flow;
    if ((c->pause & PAUSE_READ) || atomic_load(&f->held) <= c->read_high)
        return;
    atomic_store(&f->paused, 1); /* seq_cst: see flow_release */
    if (atomic_load(&f->held) <= f->low) {
        int expected = 1;
        if (atomic_compare_exchange_strong(&f->paused, &expected, 0))
            return; /* released meanwhile, and nobody will send a resume */
    }
    set_pause(c, PAUSE_READ, true);
}

void nsys_conn_resume_check(nsys_conn_t *c)
{
    if (c != NULL && (c->pause & PAUSE_READ) &&
        !atomic_load_explicit(&c->flow->paused, memory_order_acquire))
        set_pause(c, PAUSE_READ, false);
}

/* ---- ending ---------------------------------------------------------------------------- */

static void destroy(nsys_conn_t *c)
{
    for (uint32_t i = c->head; i < c->tail; i++)
        nsys_buf_unref(c->wbufs[i]);
    free(c->wbufs);
    free(c->wiov);
    nsys_buf_unref(c->arena);
    rbuf_drop(c);
    nsys__codec_free(top(c));
    for (nsys_layer_t *l = c->bottom; l != NULL && l != top(c);) {
        nsys_layer_t *up = l->above;
        if (l->vt->destroy != NULL)
            l->vt->destroy(l);
        l = up;
    }
    atomic_store_explicit(&c->flow->owner, NSYS_REF_NONE, memory_order_release);
    flow_unref(c->flow);
    free(c->idle);
    free(c->end_text);
    free(c);
}

/* The owner's bracket around events from a libuv callback. The owner may
 * call nsys_conn_free() inside (which clears c->ud), so leave gets the ud
 * that enter saw. */
static bool enter(nsys_conn_t *c, void **ud)
{
    *ud = c->ud;
    return c->ev->enter == NULL || c->ev->enter(*ud);
}
static void leave(nsys_conn_t *c, void *ud)
{
    if (c->ev->leave != NULL)
        c->ev->leave(ud);
}

static void handle_closed(uv_handle_t *h)
{
    nsys_conn_t *c = h->data;
    if (--c->nhandles > 0)
        return;
    void *ud;
    if (!c->detached && c->ev->on_close != NULL && enter(c, &ud)) {
        c->delivering = 1;
        c->ev->on_close(ud, c, (nsys_conn_end_t)c->end_kind, c->end_code,
                        c->end_text != NULL ? c->end_text : c->peer);
        c->delivering = 0;
        leave(c, ud);
    }
    if (c->freed)
        destroy(c);
}

static void end(nsys_conn_t *c, nsys_conn_end_t kind, int code, const char *text)
{
    if (c->state == ST_ENDED)
        return;
    c->state = ST_ENDED;
    c->end_kind = (uint8_t)kind;
    c->end_code = code;
    c->end_text = malloc(END_TEXT_SIZE);
    if (c->end_text != NULL)
        snprintf(c->end_text, END_TEXT_SIZE, "%.63s: %.126s", c->peer, text); /* fits */
    update_reading(c);
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    if (c->idle != NULL)
        uv_close((uv_handle_t *)&c->idle->timer, handle_closed);
}

void nsys_conn_fail(nsys_conn_t *c, int code, const char *fmt, ...)
{
    if (c == NULL || c->state == ST_ENDED)
        return;
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    end(c, NSYS_CONN_END_ERROR, code != 0 ? code : NSYS_EFAILED, text);
}

void nsys_conn_abort(nsys_conn_t *c, int code, const char *why)
{
    if (c == NULL || c->state == ST_ENDED)
        return;
    /* An abort resets the connection instead of finishing it politely. */
    int fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    end(c, NSYS_CONN_END_ERROR, code != 0 ? code : NSYS_ECANCELED, why != NULL ? why : "aborted");
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    nsys_conn_t *c = req->data;
    free(req);
    c->shutting = 0;
    if (c->state == ST_ENDED)
        return;
    (void)status; /* ENOTCONN and friends: the peer is gone already, same end */
    void *ud;
    bool in = enter(c, &ud);
    end(c, (nsys_conn_end_t)c->end_kind, 0,
        c->end_kind == NSYS_CONN_END_PEER ? "closed by the peer" : "closed");
    if (in)
        leave(c, ud);
}

/* Sends FIN once the queue is empty (after a graceful close or the peer's). */
static void maybe_shutdown(nsys_conn_t *c)
{
    if (!c->shutdown_wanted || c->shutting || c->state == ST_ENDED || c->head != c->tail)
        return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req != NULL) {
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) == 0) {
            c->shutting = 1;
            return;
        }
        free(req);
    }
    end(c, (nsys_conn_end_t)c->end_kind, 0,
        c->end_kind == NSYS_CONN_END_PEER ? "closed by the peer" : "closed");
}

static void begin_close(nsys_conn_t *c, nsys_conn_end_t kind)
{
    if (c->state != ST_OPEN)
        return;
    c->state = ST_CLOSING;
    c->end_kind = (uint8_t)kind;
    update_reading(c);
    if (kind == NSYS_CONN_END_PEER) {
        c->shutdown_wanted = 1;
        nsys_conn_flush(c);
        maybe_shutdown(c);
        return;
    }
    nsys_layer_t *codec = top(c);
    if (codec->vt->close != NULL)
        codec->vt->close(codec);
    else
        nsys_layer_close_down(codec);
}

void nsys_conn_close(nsys_conn_t *c)
{
    if (c != NULL)
        begin_close(c, NSYS_CONN_END_LOCAL);
}

void nsys__conn_detach(nsys_conn_t *c)
{
    if (c == NULL)
        return;
    c->detached = 1;
    c->ud = NULL;
    if (c->state != ST_ENDED)
        end(c, NSYS_CONN_END_LOCAL, 0, "closed by its owner");
}

void nsys_conn_free(nsys_conn_t *c)
{
    if (c == NULL)
        return;
    nsys__conn_detach(c);
    c->freed = 1;
    if (c->nhandles == 0 && !c->delivering)
        destroy(c); /* from inside on_close, handle_closed frees it after */
}

/* ---- idle timeout -------------------------------------------------------------------- */

static void idle_cb(uv_timer_t *t)
{
    nsys_conn_t *c = t->data;
    idle_t *idle = c->idle;
    uint64_t now = uv_now(t->loop);
    if (c->pause & (PAUSE_READ | PAUSE_USER))
        idle->last_active = now; /* we stopped reading, not the peer: not idle */
    uint64_t quiet = now - idle->last_active;
    if (quiet < idle->timeout_ms) {
        uv_timer_start(t, idle_cb, idle->timeout_ms - quiet, 0);
        return;
    }
    void *ud;
    bool in = enter(c, &ud);
    nsys_conn_fail(c, NSYS_ETIMEDOUT, "idle for %llu ms (idle_timeout)",
                   (unsigned long long)quiet);
    if (in)
        leave(c, ud);
}

/* ---- write queue ------------------------------------------------------------------------ */

static int wq_reserve(nsys_conn_t *c)
{
    if (c->tail < c->cap)
        return 0;
    if (c->head > 0 && c->writing == 0) {
        uint32_t n = c->tail - c->head;
        memmove(c->wbufs, c->wbufs + c->head, n * sizeof *c->wbufs);
        memmove(c->wiov, c->wiov + c->head, n * sizeof *c->wiov);
        c->head = 0;
        c->tail = n;
        if (c->tail < c->cap)
            return 0;
    }
    uint32_t cap = c->cap ? c->cap * 2 : 16;
    nsys_buf_t **b = realloc(c->wbufs, cap * sizeof *b);
    if (b == NULL)
        return NSYS_ENOMEM;
    c->wbufs = b;
    uv_buf_t *v = realloc(c->wiov, cap * sizeof *v);
    if (v == NULL)
        return NSYS_ENOMEM;
    c->wiov = v;
    c->cap = cap;
    return 0;
}

/* Queues bytes on the socket: by reference (buf) or copied. */
static int wq_push(nsys_conn_t *c, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    if (len > c->write_limit - c->wq_bytes) { /* wq_bytes never passes write_limit */
        nsys_conn_fail(c, NSYS_ENOBUFS,
                       "write queue over its limit (%zu + %zu > %zu bytes): the peer is not "
                       "reading",
                       c->wq_bytes, len, c->write_limit);
        nsys__net_set_error("write queue over its limit (%zu + %zu > %zu bytes): the peer is "
                            "not reading",
                            c->wq_bytes, len, c->write_limit);
        return NSYS_ENOBUFS;
    }
    if (wq_reserve(c) != 0) /* first: nothing is counted for bytes not queued */
        return NSYS_ENOMEM;
    if (buf == NULL && len <= COPY_MAX) {
        size_t used = nsys_buf_len(c->arena);
        if (c->arena == NULL || nsys_buf_cap(c->arena) - used < len) {
            nsys_buf_t *a;
            if (nsys_buf_new(ARENA_SIZE, &a) != 0)
                return NSYS_ENOMEM;
            nsys_buf_unref(c->arena);
            c->arena = a;
            used = 0;
        }
        uint8_t *at = nsys_buf_data(c->arena) + used;
        memcpy(at, data, len);
        nsys_buf_set_len(c->arena, used + len);
        c->wq_bytes += len;
        c->queued_total += len;
        /* Adjacent copies (a header and a short payload) share an iovec. */
        if (c->tail > c->head + c->writing && c->wbufs[c->tail - 1] == c->arena &&
            (uint8_t *)c->wiov[c->tail - 1].base + c->wiov[c->tail - 1].len == at) {
            c->wiov[c->tail - 1].len += len;
            return 0;
        }
        c->wbufs[c->tail] = nsys_buf_ref(c->arena);
        c->wiov[c->tail] = uv_buf_init((char *)at, (unsigned)len);
        c->tail++;
    } else {
        nsys_buf_t *own = NULL;
        if (buf == NULL) {
            if (nsys_buf_from(data, len, &own) != 0)
                return NSYS_ENOMEM;
            data = nsys_buf_data(own);
        }
        c->wbufs[c->tail] = own != NULL ? own : nsys_buf_ref(buf);
        c->wiov[c->tail] = uv_buf_init((char *)data, (unsigned)len);
        c->tail++;
        c->wq_bytes += len;
        c->queued_total += len;
    }
    if (c->wq_bytes > c->write_high && !(c->pause & PAUSE_WRITE))
        set_pause(c, PAUSE_WRITE, true);
    return 0;
}

/* Drops `n` written bytes from the front of the queue. */
static void wq_consume(nsys_conn_t *c, size_t n)
{
    c->wq_bytes -= n;
    while (n > 0 && c->head < c->tail) {
        uv_buf_t *v = &c->wiov[c->head];
        if (n < v->len) {
            v->base += n;
            v->len -= (unsigned)n;
            return;
        }
        n -= v->len;
        nsys_buf_unref(c->wbufs[c->head]);
        c->head++;
    }
}

static void after_write(nsys_conn_t *c)
{
    if (c->head == c->tail) {
        c->head = c->tail = 0;
        nsys_buf_unref(c->arena); /* an idle connection keeps no arena */
        c->arena = NULL;
    }
    if ((c->pause & PAUSE_WRITE) && c->wq_bytes <= c->write_low) {
        set_pause(c, PAUSE_WRITE, false);
        if (c->ev->on_drain != NULL)
            c->ev->on_drain(c->ud, c);
    }
    maybe_shutdown(c);
}

static void write_cb(uv_write_t *req, int status)
{
    nsys_conn_t *c = req->data;
    uint32_t n = c->writing;
    /* On an error libuv has already freed its copy of the buffers, but
     * write_index (a libuv-private field, stable across 1.x) still counts
     * the buffers the kernel took whole before the failure. */
    uint32_t whole = status < 0 && req->write_index < n ? req->write_index : 0;
    c->writing = 0;
    free(req);
    if (status < 0) {
        /* What the kernel took counts as sent (nsys_conn_bytes_sent), also
         * when the write was cancelled by the close, so a client does not
         * send it again on its next connection. A buffer taken in part
         * counts as not sent at all (libuv no longer says how much of it
         * went): small messages packed into it may go twice. */
        size_t bytes = 0;
        for (uint32_t i = 0; i < whole; i++)
            bytes += c->wiov[c->head + i].len;
        wq_consume(c, bytes);
    }
    if (status == UV_ECANCELED || c->state == ST_ENDED)
        return; /* closing: destroy releases the queue */
    void *ud;
    if (!enter(c, &ud))
        return; /* the owner is going and frees us; no events for it */
    if (status < 0) {
        nsys_conn_fail(c, status, "write failed: %s", uv_strerror(status));
    } else {
        size_t bytes = 0;
        for (uint32_t i = 0; i < n; i++)
            bytes += c->wiov[c->head + i].len;
        wq_consume(c, bytes);
        touch(c);
        after_write(c);
        nsys_conn_flush(c);
    }
    leave(c, ud);
}

void nsys_conn_flush(nsys_conn_t *c)
{
    if (c == NULL || c->writing != 0 || c->head == c->tail || c->state == ST_ENDED)
        return;
    uint32_t n = c->tail - c->head;
    if (n > WRITE_BATCH)
        n = WRITE_BATCH;
    int r = uv_try_write((uv_stream_t *)&c->tcp, &c->wiov[c->head], n);
    if (r > 0) {
        wq_consume(c, (size_t)r);
        touch(c);
    } else if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) {
        nsys_conn_fail(c, r, "write failed: %s", uv_strerror(r));
        return;
    }
    if (c->head < c->tail) {
        n = c->tail - c->head;
        if (n > WRITE_BATCH)
            n = WRITE_BATCH;
        /* Only a write the socket could not take at once needs a request. */
        uv_write_t *req = malloc(sizeof *req);
        if (req == NULL) {
            nsys_conn_fail(c, NSYS_ENOMEM, "out of memory for a write");
            return;
        }
        req->data = c;
        r = uv_write(req, (uv_stream_t *)&c->tcp, &c->wiov[c->head], n, write_cb);
        if (r != 0) {
            free(req);
            nsys_conn_fail(c, r, "write failed: %s", uv_strerror(r));
            return;
        }
        c->writing = n;
        return;
    }
    after_write(c);
}

/* ---- layers ------------------------------------------------------------------------------ */

static int deliver(nsys_conn_t *c, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    if (c->state != ST_OPEN)
        return NSYS_ECANCELED; /* closing: what is left unread is dropped */
    nsys_buf_t *m = NULL;
    /* The read buffer itself is never handed out: the next read appends to
     * it, which would change a kept message's length under its holder. */
    if (buf != NULL && buf != c->rbuf && data == nsys_buf_data(buf) && len == nsys_buf_len(buf))
        m = nsys_buf_ref(buf);
    else if (buf != NULL && nsys_buf_within(buf, data, len))
        nsys_buf_slice(buf, (size_t)(data - nsys_buf_data(buf)), len, &m);
    else
        nsys_buf_from(data, len, &m);
    if (m == NULL) {
        nsys_conn_fail(c, NSYS_ENOMEM, "out of memory for a message of %zu bytes", len);
        return NSYS_ENOMEM;
    }
    /* A buffer a layer made (a reassembled frame, decrypted bytes) is counted
     * like the read buffers it came from. */
    if (nsys_buf_is_root(m))
        flow_track(c->flow, m);
    if (c->ev->on_message == NULL) {
        nsys_buf_unref(m);
        return 0;
    }
    int rc = c->ev->on_message(c->ud, c, m);
    if (rc != 0) {
        nsys_conn_abort(c, rc, "closed by its handler");
        return rc;
    }
    return c->state == ST_OPEN ? 0 : NSYS_ECANCELED;
}

int nsys_layer_up(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    if (l->above != NULL)
        return l->above->vt->recv(l->above, buf, data, len);
    return deliver(l->conn, buf, data, len);
}

int nsys_layer_down(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    if (l->below != NULL)
        return l->below->vt->send(l->below, buf, data, len);
    return wq_push(l->conn, buf, data, len);
}

void nsys_layer_close_down(nsys_layer_t *l)
{
    if (l->below != NULL) {
        if (l->below->vt->close != NULL)
            l->below->vt->close(l->below);
        else
            nsys_layer_close_down(l->below);
        return;
    }
    nsys_conn_t *c = l->conn;
    c->shutdown_wanted = 1;
    nsys_conn_flush(c);
    maybe_shutdown(c);
}

int nsys_conn_push_filter(nsys_conn_t *c, nsys_layer_t *l)
{
    if (c == NULL || l == NULL || l->vt == NULL || l->vt->recv == NULL || l->vt->send == NULL)
        return NSYS_EINVAL;
    l->conn = c;
    l->below = NULL;
    l->above = c->bottom;
    c->bottom->below = l;
    c->bottom = l;
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    nsys_conn_t *c = h->data;
    if (c->rbuf != NULL && nsys_buf_cap(c->rbuf) - nsys_buf_len(c->rbuf) < READ_MIN_ROOM)
        rbuf_drop(c);
    if (c->rbuf == NULL)
        c->rbuf = rbuf_get(c);
    if (c->rbuf == NULL) {
        *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    size_t used = nsys_buf_len(c->rbuf);
    *out = uv_buf_init((char *)nsys_buf_data(c->rbuf) + used,
                       (unsigned)(nsys_buf_cap(c->rbuf) - used));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    nsys_conn_t *c = s->data;
    if (nread == 0 || c->state == ST_ENDED)
        return;
    void *ud;
    if (!enter(c, &ud)) { /* the owner is going; it frees us */
        set_pause(c, PAUSE_GONE, true);
        return;
    }
    if (nread > 0) {
        touch(c);
        size_t used = nsys_buf_len(c->rbuf);
        nsys_buf_set_len(c->rbuf, used + (size_t)nread);
        c->bottom->vt->recv(c->bottom, c->rbuf, nsys_buf_data(c->rbuf) + used, (size_t)nread);
        if (c->rbuf != NULL && nsys_buf_refcount(c->rbuf) == 1)
            rbuf_drop(c); /* nobody holds a slice: the spare takes it */
        if (c->state == ST_OPEN)
            check_read_budget(c);
    } else if (nread == UV_EOF) {
        begin_close(c, NSYS_CONN_END_PEER);
    } else if (nread == UV_ENOBUFS) {
        nsys_conn_fail(c, NSYS_ENOMEM, "out of memory for a read buffer");
    } else {
        nsys_conn_fail(c, (int)nread, "read failed: %s", uv_strerror((int)nread));
    }
    nsys_conn_flush(c);
    leave(c, ud);
}

/* ---- opening --------------------------------------------------------------------------------- */

int nsys_conn_open_fd(uv_loop_t *loop, int fd, const nsys_transport_opts_t *opts,
                      const nsys_conn_events_t *ev, void *ud, nsys_conn_t **out)
{
    if (loop == NULL || fd < 0 || ev == NULL || out == NULL)
        return NSYS_EINVAL;
    char peer[PEER_TEXT_MAX];
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0)
        nsys__net_format_addr((struct sockaddr *)&ss, peer, sizeof peer);
    else
        snprintf(peer, sizeof peer, "fd %d", fd);
    size_t peer_size = strlen(peer) + 1;
    nsys_transport_opts_t o;
    nsys_transport_opts_resolve(opts, &o);

    nsys_conn_t *c = calloc(1, sizeof *c + peer_size);
    flow_t *f = calloc(1, sizeof *f);
    if (c == NULL || f == NULL) {
        free(c);
        free(f);
        return NSYS_ENOMEM;
    }
    memcpy(c->peer, peer, peer_size);
    c->write_high = o.write_high;
    c->write_low = o.write_low;
    c->write_limit = o.write_limit;
    c->read_high = o.read_high;
    atomic_init(&f->refs, 1);
    f->low = o.read_low;
    c->flow = f;
    c->ev = ev;
    c->ud = ud;
    c->bottom = top(c);
    int rc = nsys__codec_init(c, top(c), &o);
    if (rc == 0 && o.idle_timeout_ms > 0 && (c->idle = calloc(1, sizeof *c->idle)) == NULL)
        rc = NSYS_ENOMEM;
    if (rc == 0)
        rc = uv_tcp_init(loop, &c->tcp);
    if (rc != 0) {
        nsys__codec_free(top(c));
        free(c->idle);
        free(c);
        free(f);
        return rc;
    }
    c->tcp.data = c;
    c->nhandles = 1;
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) { /* the handle never took the fd: the caller keeps it */
        c->detached = 1;
        c->freed = 1;
        c->state = ST_ENDED;
        uv_close((uv_handle_t *)&c->tcp, handle_closed);
        return rc;
    }
    /* Best effort: these only fail on sockets that are not TCP. */
    if (!o.nagle)
        uv_tcp_nodelay(&c->tcp, 1);
    if (o.keepalive_s > 0)
        uv_tcp_keepalive(&c->tcp, 1, o.keepalive_s);
    uv_update_time(loop); /* the loop may have been busy: start timing from now */
    if (c->idle != NULL) {
        c->idle->timeout_ms = o.idle_timeout_ms;
        c->idle->last_active = uv_now(loop);
        uv_timer_init(loop, &c->idle->timer);
        c->idle->timer.data = c;
        c->nhandles++;
        uv_timer_start(&c->idle->timer, idle_cb, o.idle_timeout_ms, 0);
        uv_unref((uv_handle_t *)&c->idle->timer);
    }
    update_reading(c);
    *out = c;
    return 0;
}

const char *nsys__conn_end_text(const nsys_conn_t *c)
{
    return c != NULL && c->end_text != NULL ? c->end_text : NULL;
}

void nsys_conn_set_owner(nsys_conn_t *c, nsys_runtime_t *rt, nsys_ref_t owner)
{
    if (c == NULL)
        return;
    c->flow->rt = rt;
    atomic_store_explicit(&c->flow->owner, owner, memory_order_release);
}

/* ---- sending and queries ------------------------------------------------------------------------ */

/* Both sends: refused once the connection is closing. */
static int send_open(nsys_conn_t *c)
{
    if (c->state == ST_OPEN)
        return 0;
    nsys__net_set_error("%s: the connection is closing", c->peer);
    return NSYS_ECANCELED;
}

int nsys_conn_send(nsys_conn_t *c, const void *data, size_t len)
{
    if (c == NULL || (data == NULL && len > 0))
        return NSYS_EINVAL;
    int rc = send_open(c);
    return rc != 0 ? rc : top(c)->vt->send(top(c), NULL, data, len);
}

int nsys_conn_send_buf(nsys_conn_t *c, nsys_buf_t *msg)
{
    if (c == NULL || msg == NULL)
        return NSYS_EINVAL;
    int rc = send_open(c);
    if (rc == 0)
        rc = top(c)->vt->send(top(c), msg, nsys_buf_data(msg), nsys_buf_len(msg));
    if (rc == 0)
        nsys_buf_unref(msg); /* the queue took its own references */
    return rc;
}

void nsys_conn_pause_read(nsys_conn_t *c, bool pause)
{
    if (c != NULL)
        set_pause(c, PAUSE_USER, pause);
}

size_t nsys_conn_write_queued(const nsys_conn_t *c) { return c != NULL ? c->wq_bytes : 0; }

uint64_t nsys_conn_bytes_queued_total(const nsys_conn_t *c) { return c != NULL ? c->queued_total : 0; }

uint64_t nsys_conn_bytes_sent(const nsys_conn_t *c)
{
    return c != NULL ? c->queued_total - c->wq_bytes : 0;
}

size_t nsys_conn_read_held(const nsys_conn_t *c)
{
    return c != NULL ? atomic_load_explicit(&c->flow->held, memory_order_acquire) : 0;
}

bool nsys_conn_read_paused(const nsys_conn_t *c) { return c != NULL && c->pause != 0; }

const char *nsys_conn_peer(const nsys_conn_t *c) { return c != NULL ? c->peer : ""; }

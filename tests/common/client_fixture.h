/* tests/common/client_fixture.h — both ends of a resilient-client test
 * (netsys/client.h): an echo listener that can be stopped and started again
 * on the same port, client options for fast tests, sequence-numbered
 * messages, a recorder for the client's callbacks that checks the order of
 * the echoes as they arrive and keeps every event with its time, and a
 * port where connects time out. (Counting open sockets: t_open_sockets in
 * common/net.h.)
 *
 * Echo order. A test message carries its sequence number in its first 8
 * bytes: 0, 1, 2, ... in the order one thread sent them to one client, so
 * seq = the client's msg_id - 1. An echo must carry a higher number than the
 * echo before it; an equal or lower one (a duplicate, a reordering) counts
 * in `backwards` and is never right. A skip over numbers sets `out_of_order`
 * and is right only where the client documents it: each skipped number was
 * reported failed (SEND_FAILED), or the link went down between the two
 * echoes (a message the kernel took on a connection that then died is
 * written, yet never echoed). Skips neither explains count in
 * `unexplained`. Failed numbers are known only below `seq_cap` (given at
 * init).
 *
 * The callbacks run on the client's scheduler thread, one at a time; the
 * test thread reads the atomics, or the rest through the functions here
 * (under `mu`). Never cr_assert in them.
 *
 * Not for: clients driven by other tests' own payloads (the order checks
 * need the 8-byte numbers), or many clients at once (one recorder holds
 * every event of its client: see test_client_faults.c for a slim one).
 */
#ifndef NSYS_TESTS_COMMON_CLIENT_FIXTURE_H
#define NSYS_TESTS_COMMON_CLIENT_FIXTURE_H

#include "common/net.h"
#include "common/wait.h"

#include <netsys/client.h>
#include <netsys/netsys.h>

/* ---- the recorder ---------------------------------------------------------------- */

/* One event as the client's on_event saw it (SEND_FAILED excepted: those
 * are only counted and marked, see failed()). */
typedef struct t_client_event {
    nsys_client_event_kind_t kind;
    int code;
    uint32_t attempt;
    uint64_t delay_ms;
    uint64_t t_ns; /* monotonic, when the callback ran */
    char message[NSYS_NET_MESSAGE_MAX];
} t_client_event_t;

typedef struct t_client_seen {
    atomic_int connected, disconnected, retrying, gave_up, send_failed;
    atomic_int last_code, gave_up_code;
    atomic_uint_fast64_t received, bytes;
    atomic_int out_of_order; /* any echo that was not the one right after the last */
    atomic_int backwards;    /* echoes not above the last one: duplicates, reorderings */
    atomic_int unexplained;  /* skips with neither a reported failure nor an outage */
    atomic_uint_fast64_t lost_in_outages; /* numbers skipped across an outage */
    atomic_uint_fast64_t last_seq_plus1;  /* one past the highest echo (0: none yet) */

    pthread_mutex_t mu; /* guards what follows */
    uint64_t next_seq;  /* the number expected next */
    int epoch;          /* `disconnected` when the last echo arrived */
    char last_text[NSYS_NET_MESSAGE_MAX];
    t_client_event_t *events;
    size_t nevents, capevents;
    uint8_t *failed; /* bit per number below seq_cap: reported failed */
    uint64_t seq_cap;
    bool oom;
} t_client_seen_t;

/* seq_cap: how many message numbers the test may use (0: no failure
 * bookkeeping; every skip without an outage is then unexplained). False if
 * the bitmap could not be allocated. */
static inline bool t_client_seen_init(t_client_seen_t *s, uint64_t seq_cap)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    if (seq_cap > 0) {
        s->failed = calloc((size_t)(seq_cap + 7u) / 8u, 1);
        if (s->failed == NULL)
            return false;
        s->seq_cap = seq_cap;
    }
    return true;
}

/* Only once the client is gone (its runtime freed, or it exited). */
static inline void t_client_seen_destroy(t_client_seen_t *s)
{
    free(s->events);
    free(s->failed);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

static inline bool t_client_seen_failed_locked(const t_client_seen_t *s, uint64_t seq)
{
    return seq < s->seq_cap && (s->failed[seq / 8u] & (1u << (seq % 8u))) != 0;
}

/* on_message of nsys_client_opts_t (user_data: the recorder). */
static inline void t_client_on_message(nsys_runtime_t *rt, nsys_ref_t client, const uint8_t *data,
                                       size_t len, void *ud)
{
    (void)rt;
    (void)client;
    t_client_seen_t *s = ud;
    if (len >= 8) {
        uint64_t seq;
        memcpy(&seq, data, sizeof(seq));
        int epoch = atomic_load(&s->disconnected);
        pthread_mutex_lock(&s->mu);
        if (seq != s->next_seq)
            atomic_store(&s->out_of_order, 1);
        if (seq < s->next_seq) {
            atomic_fetch_add(&s->backwards, 1);
        } else {
            uint64_t lost = 0;
            for (uint64_t k = s->next_seq; k < seq; k++)
                lost += !t_client_seen_failed_locked(s, k);
            if (lost > 0 && epoch == s->epoch)
                atomic_fetch_add(&s->unexplained, 1);
            else if (lost > 0)
                atomic_fetch_add(&s->lost_in_outages, lost);
            s->next_seq = seq + 1;
            atomic_store(&s->last_seq_plus1, seq + 1);
        }
        s->epoch = epoch;
        pthread_mutex_unlock(&s->mu);
    }
    atomic_fetch_add(&s->received, 1);
    atomic_fetch_add(&s->bytes, len);
}

/* on_event of nsys_client_opts_t (user_data: the recorder). */
static inline void t_client_on_event(nsys_runtime_t *rt, const nsys_client_event_t *ev, void *ud)
{
    (void)rt;
    t_client_seen_t *s = ud;
    uint64_t now = t_now_ns();
    atomic_store(&s->last_code, ev->code);
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_text, sizeof(s->last_text), "%s", ev->message);
    if (ev->kind == NSYS_CLIENT_EV_SEND_FAILED) {
        uint64_t seq = ev->msg_id - 1u;
        if (ev->msg_id > 0 && seq < s->seq_cap)
            s->failed[seq / 8u] |= (uint8_t)(1u << (seq % 8u));
    } else {
        if (s->nevents == s->capevents) {
            size_t cap = s->capevents ? s->capevents * 2 : 64;
            t_client_event_t *v = realloc(s->events, cap * sizeof(*v));
            if (v != NULL) {
                s->events = v;
                s->capevents = cap;
            }
        }
        if (s->nevents < s->capevents) {
            t_client_event_t *e = &s->events[s->nevents++];
            e->kind = ev->kind;
            e->code = ev->code;
            e->attempt = ev->attempt;
            e->delay_ms = ev->delay_ms;
            e->t_ns = now;
            snprintf(e->message, sizeof(e->message), "%s", ev->message);
        } else {
            s->oom = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    switch (ev->kind) {
    case NSYS_CLIENT_EV_CONNECTED:
        atomic_fetch_add(&s->connected, 1);
        break;
    case NSYS_CLIENT_EV_DISCONNECTED:
        atomic_fetch_add(&s->disconnected, 1);
        break;
    case NSYS_CLIENT_EV_RETRYING:
        atomic_fetch_add(&s->retrying, 1);
        break;
    case NSYS_CLIENT_EV_GAVE_UP:
        atomic_store(&s->gave_up_code, ev->code);
        atomic_fetch_add(&s->gave_up, 1);
        break;
    case NSYS_CLIENT_EV_SEND_FAILED:
        atomic_fetch_add(&s->send_failed, 1);
        break;
    }
}

/* The text of the last event. */
static inline void t_client_seen_last_text(t_client_seen_t *s, char *out, size_t len)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, len, "%s", s->last_text);
    pthread_mutex_unlock(&s->mu);
}

/* Copies the k-th (0-based) event of `kind` into *out; false if there is none. */
static inline bool t_client_seen_event(t_client_seen_t *s, nsys_client_event_kind_t kind, size_t k,
                                       t_client_event_t *out)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nevents && !found; i++) {
        if (s->events[i].kind == kind && k-- == 0) {
            *out = s->events[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!found)
        memset(out, 0, sizeof(*out));
    return found;
}

/* How many SEND_FAILED numbers were marked (below seq_cap). */
static inline uint64_t t_client_seen_failed_count(t_client_seen_t *s)
{
    uint64_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (uint64_t k = 0; k < s->seq_cap; k++)
        n += t_client_seen_failed_locked(s, k);
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- messages ------------------------------------------------------------------------ */

#define T_CLIENT_MSG_LEN 16u

/* Sends message number `seq` (16 bytes: the number, then a filler). */
static inline int t_client_send_seq(nsys_runtime_t *rt, nsys_ref_t client, uint64_t seq)
{
    uint8_t msg[T_CLIENT_MSG_LEN];
    memcpy(msg, &seq, sizeof(seq));
    memset(msg + 8, 0xAB, sizeof(msg) - 8);
    return nsys_net_send(rt, client, msg, sizeof(msg));
}

/* ---- the server ---------------------------------------------------------------------- */

/* Starts netsys's echo listener (length codec) on 127.0.0.1:port (0: a free
 * port); *bound (may be NULL) gets the port. 0 or the start's error
 * (nsys_net_last_error() says more). */
static inline int t_echo_listener_start(nsys_runtime_t *rt, uint16_t port, nsys_ref_t *ref,
                                        uint16_t *bound)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.name = "test.echo";
    o.port = port;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, &o, ref, &info);
    if (rc == 0 && bound != NULL)
        *bound = info.port;
    return rc;
}

/* Stops a listener (its sessions go with it) and waits until it is gone;
 * true if it went within timeout_ms. */
static inline bool t_listener_stop_wait(nsys_runtime_t *rt, nsys_ref_t listener,
                                        uint64_t timeout_ms)
{
    if (nsys_listener_stop(rt, listener) != 0)
        return false;
    T_WAIT(!nsys_is_alive(rt, listener), timeout_ms);
    return !nsys_is_alive(rt, listener);
}

/* ---- a port where connects time out ------------------------------------------------- */

/* A listener on 127.0.0.1 that never accepts, its backlog (listen(fd, 0):
 * one connection) taken by a first connection: the kernel drops every
 * further SYN, so a connect to `port` can only time out. */
typedef struct t_syn_sink {
    int lfd, filler;
    uint16_t port;
} t_syn_sink_t;

static inline void t_syn_sink_close(t_syn_sink_t *s)
{
    if (s->filler >= 0)
        close(s->filler);
    if (s->lfd >= 0)
        close(s->lfd);
    s->lfd = s->filler = -1;
}

/* 0, or -errno; -EAGAIN if a probe connect did not time out (the kernel
 * did not drop its SYN after all). The probe costs 200 ms. */
static inline int t_syn_sink_open(t_syn_sink_t *s)
{
    s->lfd = s->filler = -1;
    s->port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 0) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    s->lfd = fd;
    s->port = t_local_port(fd);
    s->filler = t_tcp_connect("127.0.0.1", s->port, T_WAIT_MS);
    if (s->filler < 0) {
        int err = s->filler;
        t_syn_sink_close(s);
        return err;
    }
    int probe = t_tcp_connect("127.0.0.1", s->port, 200);
    if (probe != -ETIMEDOUT) {
        if (probe >= 0)
            close(probe);
        t_syn_sink_close(s);
        return -EAGAIN;
    }
    return 0;
}

/* ---- the client ---------------------------------------------------------------------- */

/* A client of 127.0.0.1:port that reports to `seen`, with a short backoff
 * (5 ms, at most 20 ms) so that outages pass quickly. */
static inline nsys_client_opts_t t_client_opts(uint16_t port, t_client_seen_t *seen)
{
    nsys_client_opts_t o = NSYS_CLIENT_OPTS_DEFAULTS;
    o.name = "test-client";
    o.host = "127.0.0.1";
    o.port = port;
    o.backoff.initial_ms = 5;
    o.backoff.max_ms = 20;
    o.on_message = t_client_on_message;
    o.on_event = t_client_on_event;
    o.user_data = seen;
    return o;
}

#endif

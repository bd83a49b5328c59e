/* netsys/proxy.h — a fault-injecting TCP proxy: forwards byte streams between
 * clients and one upstream address and makes the link between them as bad as
 * asked — slow, narrow, reset, silent or refusing — to test clients (netsys's
 * own resilient client, or anyone's) against flaky networks.
 *
 * A proxy is one actor that owns a listener. Every accepted connection is a
 * session that dials the upstream and then copies bytes both ways without
 * framing them (and without copying them: what is read from one side is
 * written to the other by reference). The faults act on those byte streams:
 *
 *   latency     every chunk read is held latency_ms (+- a random jitter_ms)
 *               before it is written on; order per direction is kept, a
 *               chunk never overtakes an earlier one
 *   bandwidth   each direction of each connection is limited to this many
 *               bytes per second (a token bucket holding 20 ms worth)
 *   reset       a connection is reset (RST, both sides) reset_every_ms after
 *               it started, and/or once reset_after_bytes were forwarded
 *               (both directions counted together; no byte past that count
 *               is forwarded)
 *   blackhole   nothing is forwarded either way, but both sockets stay open:
 *               what arrives is READ AND DROPPED (so the sender's writes
 *               succeed and it sees only silence), and what the proxy was
 *               still holding is dropped too
 *   refuse      new connections are closed at once (with RST) — until
 *               changed, or for refuse_for_ms after the faults were applied
 *
 * Faults can be changed at run time (nsys_proxy_set_faults) or follow a
 * schedule of steps given at start. Changes reach open connections too: a
 * new latency applies to chunks read from then on, a blackhole or a new
 * bandwidth at once, reset_every counts from the later of the connection's
 * start and the change.
 *
 * Endings travel across: when the upstream cannot be reached (refused,
 * unresolvable, timed out) the client's connection is reset; when the
 * upstream closes, what the proxy holds for the client is delivered (with
 * its delays) and then the client's connection is closed; when the upstream
 * resets, the client's connection is reset. When the client closes, what the
 * proxy holds for the upstream is written at once (the delays no longer
 * apply, reset_after_bytes does) and the upstream connection is closed —
 * with a FIN when the upstream socket took all of it, else with a reset, so
 * a stream cut short never looks complete; a client's reset resets it.
 * Half-closed connections are not kept: either side's FIN ends the pair.
 *
 * Memory is bounded: each direction of a connection holds about
 * max_buffered bytes at most (delayed chunks plus what waits to be written,
 * give or take one read); past that the proxy stops reading from the
 * sending side until it drains to a quarter of it, so a slow side slows its
 * peer down as it would over a real link (stats.pauses counts these). With
 * a latency this also bounds the throughput (max_buffered per latency), as
 * a TCP window does.
 *
 * Everything stays on 127.0.0.1 unless told otherwise: listen_host defaults
 * to it.
 */
#ifndef NETSYS_PROXY_H
#define NETSYS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Requests a proxy understands (nsys_proxy_set_faults and nsys_proxy_stats
 * send them; an actor may send them itself):
 *   NSYS_MSG_PROXY_SET_FAULTS  payload nsys_proxy_faults_t; reply: an int, 0 or NSYS_EINVAL
 *   NSYS_MSG_PROXY_STATS       no payload; reply: nsys_proxy_stats_t */
#define NSYS_MSG_PROXY_SET_FAULTS 460u
#define NSYS_MSG_PROXY_STATS 461u

/* Bounds (nsys_proxy_start and nsys_proxy_set_faults refuse values past
 * them): latency and jitter at most 1 h; reset_every, refuse_for and a
 * step's at_ms at most 30 days; bandwidth at most 1 TiB/s; max_buffered at
 * most 1 GiB (default 1 MiB per direction); at most 1024 schedule steps. */
#define NSYS_PROXY_DELAY_MAX_MS 3600000u
#define NSYS_PROXY_PERIOD_MAX_MS UINT64_C(2592000000)
#define NSYS_PROXY_BANDWIDTH_MAX (UINT64_C(1) << 40)
#define NSYS_PROXY_MAX_BUFFERED_DEFAULT (1024u * 1024u)
#define NSYS_PROXY_MAX_BUFFERED_MAX (1024u * 1024u * 1024u)
#define NSYS_PROXY_SCHEDULE_MAX 1024u

/* What is wrong with the link. All zero: a perfect link (the default). */
typedef struct nsys_proxy_faults {
    uint32_t latency_ms;        /* added to every chunk, each direction */
    uint32_t jitter_ms;         /* +- uniformly random around latency_ms (never below 0) */
    uint64_t bandwidth;         /* bytes per second per direction and connection; 0: unlimited */
    uint64_t reset_every_ms;    /* reset a connection this long after it started; 0: never */
    uint64_t reset_after_bytes; /* reset once this many bytes were forwarded; 0: never */
    bool blackhole;             /* forward nothing, keep the sockets open (data read and dropped) */
    bool refuse;                /* close new connections at once, until changed */
    uint64_t refuse_for_ms;     /* > 0: refuse for this long after these faults took effect,
                                   then accept again (refuse need not be set) */
} nsys_proxy_faults_t;
/* No fault at all. */
#define NSYS_PROXY_FAULTS_NONE {0, 0, 0, 0, 0, false, false, 0}

/* One step of a schedule: from at_ms after the proxy started, `faults` are
 * the faults (they replace the previous step's, or the start faults). */
typedef struct nsys_proxy_step {
    uint64_t at_ms;
    nsys_proxy_faults_t faults;
} nsys_proxy_step_t;

typedef struct nsys_proxy_opts {
    const char *name;            /* in logs; NULL: "proxy" */
    const char *listen_host;     /* NULL: "127.0.0.1" */
    uint16_t listen_port;        /* 0: a free port (reported by start and stats) */
    const char *upstream_host;   /* required: a name or an address */
    uint16_t upstream_port;      /* required */
    uint64_t connect_timeout_ms; /* upstream dial, all addresses; 0: 30000 */
    uint32_t max_connections;    /* 0: unlimited; over it new connections are closed at once */
    size_t max_buffered;         /* bytes held per direction and connection; 0: 1 MiB */
    nsys_proxy_faults_t faults;  /* in force from the start (until a step or a change) */
    /* Optional schedule, copied: steps in non-decreasing at_ms order. With
     * repeat_ms > 0 (larger than every at_ms) it starts over every
     * repeat_ms, the cycle's first step replacing the last. A call to
     * nsys_proxy_set_faults ends the schedule: the caller takes over. */
    const nsys_proxy_step_t *schedule;
    size_t schedule_len;
    uint64_t repeat_ms;
} nsys_proxy_opts_t;
/* Every field at its default (upstream_host and upstream_port must still be
 * set). */
#define NSYS_PROXY_OPTS_DEFAULTS                                                                   \
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NSYS_PROXY_FAULTS_NONE, NULL, 0, 0}

typedef struct nsys_proxy_stats {
    char address[NSYS_NET_PEER_MAX]; /* where it listens, "127.0.0.1:40211" */
    uint16_t port;
    uint64_t accepted;          /* connections taken in (refused ones included) */
    uint64_t active;            /* connections open now */
    uint64_t refused;           /* closed at once by the refuse fault */
    uint64_t upstream_connects; /* upstream connections made */
    uint64_t upstream_failures; /* upstream dials that failed (their client was reset) */
    uint64_t resets;            /* connections reset by reset_every / reset_after */
    uint64_t bytes_up;          /* client -> upstream, handed to the upstream socket */
    uint64_t bytes_down;        /* upstream -> client */
    uint64_t bytes_dropped;     /* dropped by the blackhole, both directions */
    uint64_t pauses;            /* times one side stopped being read because the proxy held
                                   max_buffered bytes for the other (back-pressure) */
    uint64_t schedule_steps;    /* schedule steps applied so far */
    bool refusing;              /* the refuse fault holds now */
    nsys_proxy_faults_t faults; /* in force now */
} nsys_proxy_stats_t;

/* The proxy behaviour, for supervisors and config documents (kind "proxy"):
 * init takes a const nsys_proxy_opts_t * (copied, strings and schedule
 * included), binds its listener and fails with the bind error
 * (EADDRINUSE, ...) or NSYS_EINVAL for bad options. */
extern const nsys_behaviour_t nsys_proxy_behaviour;

/* Binds on the calling thread (so the error and the port are known when it
 * returns; any thread, actors included) and spawns the proxy. *ref (may be
 * NULL) gets the proxy, *stats (may be NULL) its address and port. On
 * failure nothing runs and nsys_net_last_error() says what went wrong:
 * NSYS_EINVAL for bad options (no upstream, faults out of bounds, a
 * schedule out of order), the bind error otherwise. */
int nsys_proxy_start(nsys_runtime_t *rt, const nsys_proxy_opts_t *opts, nsys_ref_t *ref,
                     nsys_proxy_stats_t *stats);

/* Stops the proxy: the actor exits with NSYS_REASON_SHUTDOWN and its
 * listener and every connection (both sides) close with it. Asynchronous:
 * monitor the proxy, or poll nsys_is_alive, to know when it is gone. */
int nsys_proxy_stop(nsys_runtime_t *rt, nsys_ref_t proxy);

/* Replaces the faults and ends the schedule. From a thread outside the
 * runtime it waits until the proxy applied them (so connections and data
 * that come after the call see them); from an actor or a scheduler thread
 * it only sends the faults (a private message, no reply) and they apply
 * when the proxy handles it; NSYS_EINVAL in the proxy then goes unreported,
 * so check them first (nsys_proxy_faults_check). NSYS_EINVAL for values past the bounds above,
 * NSYS_ENOACTOR when the proxy is gone. */
int nsys_proxy_set_faults(nsys_runtime_t *rt, nsys_ref_t proxy, const nsys_proxy_faults_t *faults);

/* A snapshot of the counters, from a thread outside the runtime (nsys_call;
 * NSYS_EBUSY on a scheduler thread: send NSYS_MSG_PROXY_STATS instead). */
int nsys_proxy_stats(nsys_runtime_t *rt, nsys_ref_t proxy, nsys_proxy_stats_t *out);

/* 0 when `f` is within the bounds above, else NSYS_EINVAL. */
int nsys_proxy_faults_check(const nsys_proxy_faults_t *f);

#ifdef __cplusplus
}
#endif
#endif

/* netsys/transport.h — connections as stacks of layers over one libuv
 * stream, and the options every TCP endpoint shares.
 *
 * A connection (nsys_conn_t) owns one uv_tcp_t and a stack of layers:
 *
 *     owner (session/client actor)          messages up, messages down
 *       codec   (length | raw)               top layer: bytes <-> messages
 *       filters (TLS, ... later)             bytes <-> bytes
 *       tcp     (the socket, built in)       reads, coalesced writev
 *
 * Every layer has the same small interface (nsys_layer_vt_t): bytes up from
 * below, bytes down from above, a graceful close, a destroy. A layer hands
 * what it produced to its neighbour with nsys_layer_up()/nsys_layer_down()
 * and reports a fatal problem with nsys_conn_fail(). New layers (TLS,
 * WebSocket) are pushed between the socket and the codec, or replace the
 * codec, without touching the actors above.
 *
 * Threads. A connection lives on one libuv loop (its owner's scheduler) and
 * every function here is called on that loop's thread. Nothing here is
 * thread-safe; actors reach a connection through its owner's mailbox.
 *
 * Lifetime. The owner creates the connection, gets events through
 * nsys_conn_events_t, and ends it with nsys_conn_free(), which closes the
 * socket and releases the memory once libuv is done with the handle; no
 * event is delivered after nsys_conn_free() returns.
 */
#ifndef NETSYS_TRANSPORT_H
#define NETSYS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "error.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

typedef enum nsys_codec {
    NSYS_CODEC_LENGTH = 0, /* u32 big-endian length + payload (netsys/framing.h) */
    NSYS_CODEC_RAW = 1     /* no framing: each read is one message, sends go out as is */
} nsys_codec_t;

/* Defaults (0 in a field means its default). */
#define NSYS_TRANSPORT_WRITE_HIGH_DEFAULT (1024u * 1024u)    /* 1 MiB queued to the peer */
#define NSYS_TRANSPORT_READ_HIGH_DEFAULT (4u * 1024u * 1024u) /* 4 MiB held by the receiver */
#define NSYS_TRANSPORT_WRITE_LIMIT_DEFAULT (64u * 1024u * 1024u) /* 64 MiB: then the peer goes */
#define NSYS_TRANSPORT_READ_CHUNK 65536u                       /* size of a read buffer */

typedef struct nsys_transport_opts {
    nsys_codec_t codec;
    /* Largest message, both directions (length codec: the header's limit,
     * checked before allocating; raw: sends only). 0: 1 MiB. */
    size_t max_payload;
    /* Back-pressure on the peer's side: when more than write_high bytes wait
     * to be written the connection stops reading from the peer until the
     * queue drains to write_low. 0: 1 MiB and write_high / 4. */
    size_t write_high;
    size_t write_low;
    /* Back-pressure on the receiver's side: bytes read from the peer that the
     * receiving actors still hold (in their mailboxes or kept) are counted;
     * past read_high reading pauses until they drop to read_low. 0: 4 MiB and
     * read_high / 4. */
    size_t read_high;
    size_t read_low;
    /* Close the connection after this long without a byte read or written.
     * 0: never. */
    uint64_t idle_timeout_ms;
    /* TCP_NODELAY is set by default (latency over packet count); true leaves
     * Nagle's algorithm on. */
    bool nagle;
    /* TCP keepalive probes after this many idle seconds; 0: off. */
    unsigned keepalive_s;
    /* Hard cap on the bytes waiting to be written. write_high stops reading
     * from the peer, which bounds what replies to it can queue; sends that
     * do not answer reads (pushes from other actors) are not slowed by it.
     * A send that would take the queue past write_limit ends the connection
     * instead, with NSYS_ENOBUFS and "write queue over its limit (QUEUED +
     * LEN > LIMIT bytes): the peer is not reading", as Redis drops a client
     * past its output-buffer hard limit. 0: 64 MiB. Any value is raised to
     * at least write_high + max(write_high, max_payload + 4), so reading can
     * pause before the cap and any frame max_payload allows fits on top of
     * a queue at write_high. */
    size_t write_limit;
} nsys_transport_opts_t;
#define NSYS_TRANSPORT_OPTS_DEFAULTS {NSYS_CODEC_LENGTH, 0, 0, 0, 0, 0, 0, false, 0, 0}

/* The effective values after the 0-means-default rules. */
void nsys_transport_opts_resolve(const nsys_transport_opts_t *in, nsys_transport_opts_t *out);

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

typedef struct nsys_conn nsys_conn_t;

/* Why a connection ended, as on_close reports it. */
typedef enum nsys_conn_end {
    NSYS_CONN_END_PEER = 0,  /* the peer closed (EOF) */
    NSYS_CONN_END_LOCAL = 1, /* nsys_conn_close() finished */
    NSYS_CONN_END_ERROR = 2  /* a socket or protocol error, see code and text */
} nsys_conn_end_t;

typedef struct nsys_conn_events {
    /* Bracket every batch of events delivered from a libuv callback (the
     * session maps them to nsys_io_enter/nsys_io_leave). enter returning
     * false drops the batch: the owner is going away. Both may be NULL. */
    bool (*enter)(void *ud);
    void (*leave)(void *ud);
    /* One whole message from the peer. `msg` carries one reference that the
     * callback now owns. Returning non-zero aborts the connection with that
     * code (on_close follows). */
    int (*on_message)(void *ud, nsys_conn_t *c, nsys_buf_t *msg);
    /* The connection is over: no more messages; the owner calls
     * nsys_conn_free() (now or later). `text` names the peer and what
     * happened ("127.0.0.1:5312: payload exceeds maximum (2000000 > 1048576)"). */
    void (*on_close)(void *ud, nsys_conn_t *c, nsys_conn_end_t end, int code, const char *text);
    /* The write queue drained below write_low after having passed
     * write_high (may be NULL). */
    void (*on_drain)(void *ud, nsys_conn_t *c);
    /* Reading paused (true) or resumed (false) for receiver-side
     * back-pressure; informational, the owner need not act (may be NULL).
     * Unlike the events above, on_drain and on_flow may be called from
     * inside the owner's own nsys_conn_* calls. */
    void (*on_flow)(void *ud, nsys_conn_t *c, bool paused);
} nsys_conn_events_t;

/* Wraps an accepted or connected socket `fd` (non-blocking or not; it is
 * made non-blocking) on `loop`, applies the options (TCP_NODELAY,
 * keepalive), pushes the codec and starts reading. On success the
 * connection owns fd; on error the caller still does. `ev` is kept by
 * pointer (not copied): it must outlive the connection — a static table. */
int nsys_conn_open_fd(uv_loop_t *loop, int fd, const nsys_transport_opts_t *opts,
                      const nsys_conn_events_t *ev, void *ud, nsys_conn_t **out);

/* Queues one message (the codec frames it). Sends made during one callback
 * or actor turn go out together in one writev when nsys_conn_flush() runs
 * (the session and client actors call it at the end of every turn and I/O
 * callback); a send on an idle connection is not delayed past that.
 * Returns NSYS_EMSGSIZE (nsys_net_last_error() has the text
 * "payload exceeds maximum (N > LIMIT)") when the message is over
 * max_payload, NSYS_ECANCELED once the connection is closing or closed,
 * NSYS_ENOMEM when the message cannot be queued (with the length codec the
 * connection then ends: half a frame may be queued), NSYS_ENOBUFS when it
 * would take the write queue past write_limit (the connection then ends,
 * with that text). */
int nsys_conn_send(nsys_conn_t *c, const void *data, size_t len);
/* The same without copying: moves one reference of `msg` on success. */
int nsys_conn_send_buf(nsys_conn_t *c, nsys_buf_t *msg);
/* Writes what was queued. Cheap when nothing is. */
void nsys_conn_flush(nsys_conn_t *c);

/* Graceful close: stop reading, write what is queued, send FIN, then
 * on_close(NSYS_CONN_END_LOCAL). */
void nsys_conn_close(nsys_conn_t *c);
/* Immediate close, with a reset (RST): on_close(NSYS_CONN_END_ERROR, code) is
 * delivered from the loop, not from inside this call. */
void nsys_conn_abort(nsys_conn_t *c, int code, const char *why);
/* Detaches the owner and closes the handle; frees the memory when libuv is
 * done. No event after this. NULL is ignored. */
void nsys_conn_free(nsys_conn_t *c);

/* Pauses (true) or resumes (false) reading for the owner's own reasons —
 * a proxy that forwards to a full connection, say. Independent of the two
 * watermarks: reading runs only when no reason holds it. */
void nsys_conn_pause_read(nsys_conn_t *c, bool pause);

/* Bytes queued or being written. */
size_t nsys_conn_write_queued(const nsys_conn_t *c);
/* Bytes handed to the socket since the connection opened (monotonic): what
 * the kernel accepted, not what the peer received. With the cumulative
 * count of queued bytes below, an owner can tell which of its messages have
 * left (the resilient client counts a message written then). */
uint64_t nsys_conn_bytes_sent(const nsys_conn_t *c);
uint64_t nsys_conn_bytes_queued_total(const nsys_conn_t *c);
/* Bytes read from the peer that receivers still hold. */
size_t nsys_conn_read_held(const nsys_conn_t *c);
/* True while reading is paused for any reason (a watermark, the owner's
 * nsys_conn_pause_read, an owner going away). */
bool nsys_conn_read_paused(const nsys_conn_t *c);
/* "127.0.0.1:5312" or "[::1]:5312". */
const char *nsys_conn_peer(const nsys_conn_t *c);
/* Receiver-side flow control crosses threads: the actors that hold the
 * connection's messages release them on their own schedulers. When reading
 * paused for that reason and enough was released, the connection sends
 * NSYS_MSG_NET_RESUME (no payload) to `owner`, whose handler then calls
 * nsys_conn_resume_check(). The session and client actors do both. A
 * connection without an owner never resumes once receivers held read_high
 * bytes: give it one, or a read_high it cannot reach. */
#define NSYS_MSG_NET_RESUME 419u
void nsys_conn_set_owner(nsys_conn_t *c, nsys_runtime_t *rt, nsys_ref_t owner);
void nsys_conn_resume_check(nsys_conn_t *c);

/* ------------------------------------------------------------------------ */
/* Dialing                                                                   */

typedef struct nsys_dial nsys_dial_t;

/* The outcome of a dial. status 0: `fd` is a connected, non-blocking TCP
 * socket the callback now owns (hand it to nsys_conn_open_fd) and `text` is
 * the peer's address. Otherwise fd is -1 and `text` says what failed, naming
 * the host; the status tells the kinds apart:
 *   UV_EAI_NONAME, UV_EAI_AGAIN, ...  the name did not resolve
 *   UV_ECONNREFUSED                   nothing listens there
 *   UV_EHOSTUNREACH, UV_ENETUNREACH   no route
 *   UV_ETIMEDOUT                      the connect timeout passed
 * With several addresses the last attempt's error is reported. The dial is
 * over when the callback runs (do not cancel it then). */
typedef void (*nsys_dial_cb)(void *ud, int status, int fd, const char *text);

/* The default connect timeout, per dial (all addresses together): 30 s. */
#define NSYS_DIAL_TIMEOUT_DEFAULT_MS 30000u

/* Resolves `host` (uv_getaddrinfo) and tries every address in order until
 * one connects, all within timeout_ms (0: the default). Runs on `loop`;
 * cb is called exactly once, from the loop, unless the dial is cancelled
 * first. */
int nsys_dial(uv_loop_t *loop, const char *host, uint16_t port, uint64_t timeout_ms,
              nsys_dial_cb cb, void *ud, nsys_dial_t **out);
/* Stops a dial in progress: the callback will not run, the socket is
 * closed, the memory released. */
void nsys_dial_cancel(nsys_dial_t *d);

/* ------------------------------------------------------------------------ */
/* Layers                                                                    */

typedef struct nsys_layer nsys_layer_t;

typedef struct nsys_layer_vt {
    const char *name;
    /* Bytes from below (the peer's side). `buf` holds them (a lent
     * reference: nsys_buf_ref() to keep them, or slice them), or is NULL
     * when they are only valid during the call. */
    int (*recv)(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len);
    /* One message (top layer) or a run of bytes (filters) from above, given
     * as the same kind of lent buffer. */
    int (*send)(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len);
    /* The owner asked for a graceful close: send any goodbye (TLS
     * close_notify, WebSocket close) and pass it on with
     * nsys_layer_close_down(). May be NULL (passes straight on). */
    void (*close)(nsys_layer_t *l);
    /* Frees the layer (the connection is gone). May be NULL. */
    void (*destroy)(nsys_layer_t *l);
} nsys_layer_vt_t;

struct nsys_layer {
    const nsys_layer_vt_t *vt;
    nsys_layer_t *above; /* NULL: the top (messages go to the owner) */
    nsys_layer_t *below; /* NULL: the socket */
    nsys_conn_t *conn;
};

/* Pushes `l` (allocated by the caller, vt set) right above the socket, below
 * every layer already there; the connection frees it with vt->destroy. */
int nsys_conn_push_filter(nsys_conn_t *c, nsys_layer_t *l);

/* Hands bytes (or, from the top layer, a whole message) to the layer above;
 * from the top layer this delivers the message to the owner. */
int nsys_layer_up(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len);
/* Hands bytes to the layer below; from the lowest layer they are queued on
 * the socket (referenced when `buf` is given, copied when it is NULL). */
int nsys_layer_down(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len);
/* Continues a graceful close downwards; from the lowest layer it flushes and
 * sends FIN. */
void nsys_layer_close_down(nsys_layer_t *l);
/* Ends the connection with an error: `code` (NSYS_E... or UV_E...) and a message;
 * the peer's address is prefixed to it. */
void nsys_conn_fail(nsys_conn_t *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

/* The detailed text of the last failed netsys network call on this thread
 * ("payload exceeds maximum (2000000 > 1048576)", "127.0.0.1:80: permission
 * denied: ports below 1024 need root or CAP_NET_BIND_SERVICE", ...), or "" if
 * none. Valid until the next network call on the thread. */
const char *nsys_net_last_error(void);

#ifdef __cplusplus
}
#endif
#endif

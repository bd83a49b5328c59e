/* netsys/net.h — the network actors: listener, session, and a callback
 * facade for TCP servers.
 *
 * A listener actor binds a TCP address, accepts connections and spawns one
 * session actor per connection, spread over the schedulers. It monitors
 * every session; its session table is its own state, and an entry leaves
 * exactly when that session's DOWN arrives, so none is forgotten, and when
 * the listener goes (stopped, failed or killed) every session is shut down
 * with it (a session may finish its terminate a moment after the
 * listener's). Accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM, any error
 * that is not about one connection) never kill it: it
 * pauses accepting with a backoff, logs once per episode (naming
 * `ulimit -n` as the fix for descriptor exhaustion) and resumes.
 *
 * A session actor owns its connection (netsys/transport.h). It either runs a
 * handler (nsys_session_handler_t: on_open, on_message, on_close) inside the
 * actor, or forwards NSYS_MSG_NET_* events to an owner actor. Any actor or
 * thread can send through a session's ref; a send to a session that is gone
 * returns NSYS_ENOACTOR. When the peer goes, the session exits and frees
 * everything it owned.
 *
 * Exit reasons of a session: 0 when the peer closed or the session closed
 * gracefully; NSYS_ETIMEDOUT after an idle timeout; the error otherwise
 * (UV_ECONNRESET, NSYS_EMSGSIZE, ...).
 *
 * A session whose reading is paused by back-pressure learns that the peer
 * left only when it reads again. When its peer does not read, an
 * idle_timeout bounds how long it waits (a write that makes no progress is
 * not activity). When its own receivers hold read_high bytes it is not
 * idle, whatever the peer does: it resumes when they let go.
 */
#ifndef NETSYS_NET_H
#define NETSYS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "runtime.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

/* Events a session sends to its owner (forwarding mode); msg->from is the
 * session. */
#define NSYS_MSG_NET_OPEN 400u    /* nsys_net_event_t: a connection was accepted */
#define NSYS_MSG_NET_MESSAGE 401u /* one message: msg->data/size, a buffer (nsys_msg_take_buf) */
#define NSYS_MSG_NET_CLOSED 402u  /* nsys_net_event_t: code = the session's exit reason */
#define NSYS_MSG_NET_ERROR 403u   /* nsys_net_event_t: code and message (naming the peer) */

/* Requests a session understands (nsys_net_send & co. send them). */
#define NSYS_MSG_NET_SEND 410u  /* payload: one message to send */
#define NSYS_MSG_NET_CLOSE 411u /* graceful close: flush, FIN, exit normally */
#define NSYS_MSG_NET_ABORT 412u /* immediate close, exit with NSYS_ECANCELED */

/* Listener requests (reply with nsys_call from outside, or to msg->from). */
#define NSYS_MSG_NET_LISTENER_INFO 420u /* reply: nsys_listener_info_t */

#define NSYS_NET_PEER_MAX 64    /* "[ffff:...]:65535" and NUL */
#define NSYS_NET_MESSAGE_MAX 192

typedef struct nsys_net_event {
    nsys_ref_t session;  /* NSYS_REF_NONE for listener-level events */
    nsys_ref_t listener;
    int code;            /* NSYS_E... or UV_E...; 0 for OPEN and a clean CLOSED */
    char peer[NSYS_NET_PEER_MAX];
    char message[NSYS_NET_MESSAGE_MAX]; /* human text naming the peer (or the address) */
} nsys_net_event_t;

/* ------------------------------------------------------------------------ */
/* Sessions                                                                  */

typedef struct nsys_session nsys_session_t;

/* A behaviour for sessions, run inside the session actor. Callbacks of one
 * session never run concurrently; different sessions run on different
 * schedulers at the same time, so shared data needs its own locking.
 *
 * on_open: the connection is up; `arg` is the listener's handler_arg.
 *   Non-zero refuses it: the connection is aborted and the session exits
 *   with that reason (on_close is not called).
 * on_message: one whole message. `msg` is lent for the call: nsys_buf_ref()
 *   to keep it (it may be sent on to another actor without a copy).
 *   Non-zero aborts the connection with that reason.
 * on_info: any other message sent to the session actor (may be NULL: such
 *   messages are dropped), and NSYS_MSG_NET_RESUME after the session has
 *   resumed its own reading (for handlers that own connections of their
 *   own). Non-zero aborts as above.
 * on_close: last call, with the session's exit reason (0: clean) and the
 *   text of what happened. The connection is already closed.
 *
 * The state block of state_size bytes is zeroed before on_open and freed
 * after on_close. */
typedef struct nsys_session_handler {
    const char *name;
    size_t state_size;
    int (*on_open)(nsys_session_t *s, void *state, void *arg);
    int (*on_message)(nsys_session_t *s, void *state, nsys_buf_t *msg);
    int (*on_info)(nsys_session_t *s, void *state, nsys_msg_t *msg);
    void (*on_close)(nsys_session_t *s, void *state, int reason, const char *text);
} nsys_session_handler_t;

/* Inside handler callbacks. Sends are queued and written together at the
 * end of the callback's turn (one writev). NSYS_EMSGSIZE when over
 * max_payload (nsys_net_last_error() has "payload exceeds maximum (N > M)"),
 * NSYS_ENOBUFS when the write queue would pass write_limit (the connection
 * then ends: the peer is not reading), NSYS_ECANCELED once the session is
 * closing; from on_close (the connection is gone by then) nothing can be
 * sent. */
int nsys_session_send(nsys_session_t *s, const void *data, size_t len);
int nsys_session_send_buf(nsys_session_t *s, nsys_buf_t *msg); /* moves one ref on success */
void nsys_session_close(nsys_session_t *s);           /* graceful */
void nsys_session_abort(nsys_session_t *s, int reason);
nsys_ref_t nsys_session_ref(const nsys_session_t *s);
nsys_ref_t nsys_session_listener(const nsys_session_t *s);
nsys_ctx_t *nsys_session_ctx(nsys_session_t *s);
const char *nsys_session_peer(const nsys_session_t *s);
nsys_conn_t *nsys_session_conn(nsys_session_t *s);

/* From any actor or thread, by ref. From inside the target session's own
 * callbacks these act at once (and report NSYS_EMSGSIZE directly);
 * otherwise they send a request, and an oversized payload is refused by the
 * session with an NSYS_MSG_NET_ERROR event / on_error (the connection stays
 * up: the message was never queued). NSYS_ENOACTOR when the session is
 * gone. */
int nsys_net_send(nsys_runtime_t *rt, nsys_ref_t session, const void *data, size_t len);
int nsys_net_send_buf(nsys_runtime_t *rt, nsys_ref_t session, nsys_buf_t *msg);
int nsys_net_close(nsys_runtime_t *rt, nsys_ref_t session);
int nsys_net_abort(nsys_runtime_t *rt, nsys_ref_t session);

/* Built-in handlers (also the config names "echo", "discard", "log"). */
extern const nsys_session_handler_t nsys_handler_echo;    /* sends every message back */
extern const nsys_session_handler_t nsys_handler_discard; /* drops every message */
extern const nsys_session_handler_t nsys_handler_log;     /* logs opens, sizes, closes at info */

/* A process-wide registry of handlers by name, for configuration documents.
 * The built-ins are always there. NSYS_EEXIST if the name is taken. */
int nsys_net_register_handler(const char *name, const nsys_session_handler_t *h);
const nsys_session_handler_t *nsys_net_find_handler(const char *name);
/* Every name, built-ins first then in registration order; *names is freed
 * with nsys_free (not the strings, which live as long as the registry). */
int nsys_net_handler_names(const char ***names, size_t *n);

/* ------------------------------------------------------------------------ */
/* Listener                                                                  */

#define NSYS_LISTENER_BACKLOG_DEFAULT 511

typedef struct nsys_listener_opts {
    const char *name;       /* in logs; NULL: "listener" */
    const char *host;       /* IPv4/IPv6 literal or name; NULL: "127.0.0.1"
                               ("0.0.0.0" or "::" listen on every interface) */
    uint16_t port;          /* 0: a free port, reported by start/info */
    int backlog;            /* 0: 511 */
    bool no_reuseaddr;      /* SO_REUSEADDR is on by default */
    bool reuseport;         /* SO_REUSEPORT: several listeners share the port */
    uint32_t max_sessions;  /* 0: unlimited; over it new connections are closed at once */
    nsys_transport_opts_t transport;
    const nsys_session_handler_t *handler; /* sessions run this, or... */
    void *handler_arg;                     /* given to on_open */
    /* Optional: reference counting of handler_arg. The listener retains it
     * once for itself and once per session it spawns; each is released when
     * its holder is gone (the last session may outlive the listener by a
     * little). Without them handler_arg must outlive every session. */
    void (*handler_arg_retain)(void *arg);
    void (*handler_arg_release)(void *arg);
    nsys_ref_t owner;                      /* ...forward NSYS_MSG_NET_* here */
    nsys_ref_t observer;    /* optional: listener-level NSYS_MSG_NET_ERROR events
                               (accept paused, session refused over max_sessions) */
    uint64_t accept_backoff_max_ms; /* accept pause after EMFILE grows up to this; 0: 1000 */
} nsys_listener_opts_t;
/* Every field at its default (a handler or an owner must still be set). */
#define NSYS_LISTENER_OPTS_DEFAULTS                                                                \
    {NULL, NULL, 0, 0, false, false, 0, NSYS_TRANSPORT_OPTS_DEFAULTS, NULL, NULL, NULL, NULL,      \
     NSYS_REF_NONE, NSYS_REF_NONE, 0}

typedef struct nsys_listener_info {
    char address[NSYS_NET_PEER_MAX]; /* bound address, "127.0.0.1:40211" */
    uint16_t port;
    uint32_t sessions;       /* the session table's size now */
    uint64_t accepted;       /* sessions started */
    uint64_t refused;        /* closed at once over max_sessions */
    uint64_t accept_errors;  /* failed accepts (EMFILE, ENFILE, ...) and sessions that could
                                not be started (no memory, actor table full) */
    uint64_t accept_pauses;  /* episodes: from the first error to the next accept */
    bool accepting;          /* false while paused */
} nsys_listener_info_t;

/* The listener behaviour. Its init takes a const nsys_listener_opts_t *
 * (copied, strings included), binds and listens; a bind error fails init
 * with the error (EADDRINUSE, EACCES, ...) after logging the address and the
 * likely fix. Supervisors and config use this. */
extern const nsys_behaviour_t nsys_listener_behaviour;

/* Binds on the calling thread (so the error and the port are known before
 * it returns), then spawns the listener actor that serves the socket.
 * Callable from any thread, actors included (a host name is resolved with
 * a blocking getaddrinfo: give actors an address literal or "localhost",
 * which /etc/hosts answers). On failure nothing was
 * spawned and nsys_net_last_error() says what and how to fix it:
 *   "127.0.0.1:8080: address already in use: another process (or another
 *    listener) holds it; stop it, pick another port, or set reuseport on
 *    every listener that shares it"
 * `info` (may be NULL) gets the bound address and port. */
int nsys_listener_start(nsys_runtime_t *rt, const nsys_listener_opts_t *opts, nsys_ref_t *out,
                        nsys_listener_info_t *info);

/* Snapshot of a listener's counters, from a thread outside the runtime. */
int nsys_listener_info(nsys_runtime_t *rt, nsys_ref_t listener, nsys_listener_info_t *info);

/* Stops a listener: it stops accepting, shuts every session down and exits
 * with NSYS_REASON_SHUTDOWN. Asynchronous; monitor it to know when. Works
 * from anywhere, the listener's own sessions included. */
int nsys_listener_stop(nsys_runtime_t *rt, nsys_ref_t listener);

/* ------------------------------------------------------------------------ */
/* Callback facade                                                           */

/* For programs that want a server without writing behaviours. Callbacks run
 * on the session's scheduler thread: those of one session never overlap,
 * those of different sessions may run at the same time. Inside them,
 * nsys_net_send(rt, session, ...) writes directly. */
typedef struct nsys_tcp_server_opts {
    nsys_listener_opts_t listen; /* handler, handler_arg and its retain/release, and
                                    owner are the facade's own: set values are ignored */
    void (*on_connect)(nsys_runtime_t *rt, nsys_ref_t session, const char *peer, void *ud);
    void (*on_message)(nsys_runtime_t *rt, nsys_ref_t session, const uint8_t *data, size_t len,
                       void *ud);
    void (*on_disconnect)(nsys_runtime_t *rt, nsys_ref_t session, int reason, void *ud);
    void (*on_error)(nsys_runtime_t *rt, nsys_ref_t session, int code, const char *message,
                     void *ud);
    void *user_data; /* must outlive the server */
} nsys_tcp_server_opts_t;
#define NSYS_TCP_SERVER_OPTS_DEFAULTS {NSYS_LISTENER_OPTS_DEFAULTS, NULL, NULL, NULL, NULL, NULL}

/* Starts a listener whose sessions call these callbacks; *ref is the
 * listener (stop it with nsys_listener_stop, query it with
 * nsys_listener_info). The callback table is copied. */
int nsys_tcp_server_start(nsys_runtime_t *rt, const nsys_tcp_server_opts_t *opts, nsys_ref_t *ref,
                          nsys_listener_info_t *info);

#ifdef __cplusplus
}
#endif
#endif

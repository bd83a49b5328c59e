/* netsys/client.h — the resilient client: a connection actor that keeps one
 * TCP connection to host:port alive across failures.
 *
 * One actor, one ref, one mailbox and one outbox live through every
 * reconnect; only the socket is renewed. A link failure never kills the
 * actor: it backs off (gRPC connection-backoff defaults: 1 s, x1.6, +-20 %,
 * at most 120 s) and dials again, so a flaky link never counts against a
 * supervisor's restart intensity. The actor exits only when asked to, when
 * `max_attempts` consecutive attempts failed, or on an error listed in
 * `stop_on` — then with the last error, and its supervisor decides.
 *
 * States: idle -> connecting -> up -> backoff -> connecting ...
 *
 * Messages sent while the link is down wait in a bounded outbox and go out in
 * order once it is up again. Every message sent to the client ends either
 * written (handed to the kernel on a live connection) or reported failed
 * with an NSYS_CLIENT_EV_SEND_FAILED event: sent = written + failed, nothing
 * vanishes. A message that was queued on a connection that then died before
 * the kernel took all of it is sent again on the next connection.
 *
 * (Sends still in the mailbox when the actor exits are dropped with it, as
 * any message to a dead actor is: they were never counted as sent.)
 *
 * max_attempts counts consecutive failed connection attempts. A link that
 * goes down before it has stayed up for the backoff's reset_after_ms (10 s
 * by default) counts as a failed attempt too, so a server that accepts and
 * drops (or resets) every connection at once is given up on like one that
 * refuses; a link that stayed up longer starts the count over.
 *
 * Redialling after a lost link: the first dial waits a uniformly random
 * delay in [0, d] ("full jitter"), d being the backoff's current delay:
 * `initial` (1 s by default) after the first link or one that stayed up for
 * reset_after_ms (10 s); after a link that went down sooner, d goes on from
 * where the earlier retries left it, so a server that accepts and drops at
 * once is still backed off from. The clients of one server that restarts
 * all lose it in the same instant; this way they come back spread evenly
 * over the whole period instead of in a burst. Failed dials after that wait
 * the usual symmetric band, d * (1 +- jitter). With jitter off
 * (NSYS_BACKOFF_NO_JITTER) every delay is d. Each client's random source is
 * seeded on its own (see backoff.h): clients started together do not draw
 * alike.
 *
 * Heartbeat (length codec only; nsys_tcp_client_start refuses it with
 * NSYS_EINVAL otherwise, as it refuses invalid backoff options):
 * after heartbeat_ms without a message from the server the client sends a
 * zero-length frame; with no message back within heartbeat_timeout_ms the
 * link is declared dead and the client reconnects. The server must answer an
 * empty frame (netsys's echo handler does); with the heartbeat on, empty
 * frames from the server are taken as pongs, not delivered.
 *
 * Sending: nsys_net_send(rt, client, data, len) (or nsys_net_send_buf), the
 * same calls as for a server session; nsys_net_close stops the client after
 * flushing, nsys_net_abort at once (exit reason NSYS_ECANCELED). Messages from the server reach the
 * owner as NSYS_MSG_NET_MESSAGE (a buffer; msg->from is the client), or the
 * on_message callback.
 */
#ifndef NETSYS_CLIENT_H
#define NETSYS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff.h"
#include "net.h"
#include "runtime.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NSYS_MSG_CLIENT_EVENT 440u     /* nsys_client_event_t, to the owner and subscribers */
#define NSYS_MSG_CLIENT_SUBSCRIBE 441u /* no payload: msg->from gets the events too */
#define NSYS_MSG_CLIENT_STATS 442u     /* request; reply nsys_client_stats_t */

typedef enum nsys_client_state {
    NSYS_CLIENT_IDLE = 0,
    NSYS_CLIENT_CONNECTING = 1,
    NSYS_CLIENT_UP = 2,
    NSYS_CLIENT_BACKOFF = 3
} nsys_client_state_t;

typedef enum nsys_client_event_kind {
    NSYS_CLIENT_EV_CONNECTED = 1,    /* peer: the address; attempt: attempts it took (>= 1) */
    NSYS_CLIENT_EV_DISCONNECTED = 2, /* code/message: why the link went */
    NSYS_CLIENT_EV_RETRYING = 3,     /* code/message: what failed; attempt: consecutive failed
                                        attempts (0 after a link that had stayed up); next
                                        in delay_ms */
    NSYS_CLIENT_EV_GAVE_UP = 4,      /* the actor exits with code */
    NSYS_CLIENT_EV_SEND_FAILED = 5   /* message number msg_id failed: code/message */
} nsys_client_event_kind_t;

typedef struct nsys_client_event {
    nsys_ref_t client;
    nsys_client_event_kind_t kind;
    int code;
    uint32_t attempt;
    uint64_t delay_ms;
    uint64_t msg_id; /* SEND_FAILED: 1-based number of the message in send order */
    char peer[NSYS_NET_PEER_MAX];
    char message[NSYS_NET_MESSAGE_MAX];
} nsys_client_event_t;

typedef struct nsys_client_stats {
    nsys_client_state_t state;
    uint64_t sent;       /* messages given to the client */
    uint64_t written;    /* handed to the kernel on a live connection */
    uint64_t failed;     /* reported with SEND_FAILED */
    uint64_t received;   /* messages from the server */
    uint64_t connects;   /* connections established */
    uint64_t reconnects; /* connections established after the first */
    uint64_t failures;   /* failed attempts and lost links */
    uint32_t attempt;    /* consecutive failed attempts so far (while up: those before this
                            link, which count on until it has stayed up for reset_after) */
    uint64_t backoff_ms; /* the current (last) delay */
    size_t outbox_messages, outbox_bytes;
} nsys_client_stats_t;

typedef enum nsys_outbox_policy {
    NSYS_OUTBOX_REJECT = 0,     /* a message that does not fit fails (reported) */
    NSYS_OUTBOX_DROP_OLDEST = 1 /* the oldest message not yet handed to a connection fails to
                                   make room (reported). While the link is up messages are
                                   handed over as long as the connection's write queue is
                                   below write_high, so only a slow link leaves any to drop */
} nsys_outbox_policy_t;

#define NSYS_CLIENT_OUTBOX_MESSAGES_DEFAULT 1024u
#define NSYS_CLIENT_OUTBOX_BYTES_DEFAULT (4u * 1024u * 1024u)

typedef struct nsys_client_opts {
    const char *name;            /* in logs; NULL: "client" */
    const char *host;            /* name or address; required */
    uint16_t port;               /* required */
    uint64_t connect_timeout_ms; /* per attempt, all addresses; 0: 30000 */
    nsys_transport_opts_t transport;
    nsys_backoff_opts_t backoff; /* zero fields: the gRPC defaults */
    uint32_t max_attempts;       /* consecutive failed attempts before giving up; 0: forever */
    const int *stop_on;          /* errors that end the client at once (e.g. UV_EAI_NONAME) */
    size_t nstop_on;
    size_t outbox_max_messages;  /* 0: 1024 */
    size_t outbox_max_bytes;     /* 0: 4 MiB */
    nsys_outbox_policy_t overflow;
    uint64_t heartbeat_ms;       /* 0: off; see "Heartbeat" above */
    uint64_t heartbeat_timeout_ms; /* 0: heartbeat_ms */
    nsys_ref_t owner;            /* events and NSYS_MSG_NET_MESSAGE; may be NONE with callbacks */

    /* Callbacks (optional; run on the client's scheduler thread, never
     * concurrently). With on_message set, messages go there instead of
     * to the owner; with on_event set, events go there as well. */
    void (*on_message)(nsys_runtime_t *rt, nsys_ref_t client, const uint8_t *data, size_t len,
                       void *ud);
    void (*on_event)(nsys_runtime_t *rt, const nsys_client_event_t *ev, void *ud);
    void *user_data;
} nsys_client_opts_t;
/* Every field at its default (host and port must still be set). */
#define NSYS_CLIENT_OPTS_DEFAULTS                                                                  \
    {NULL, NULL, 0, 0, NSYS_TRANSPORT_OPTS_DEFAULTS, NSYS_BACKOFF_OPTS_DEFAULTS, 0, NULL, 0, 0, 0, \
     NSYS_OUTBOX_REJECT, 0, 0, NSYS_REF_NONE, NULL, NULL, NULL}

/* The client behaviour: init takes a const nsys_client_opts_t * (copied,
 * strings and the stop_on list included) and starts connecting. */
extern const nsys_behaviour_t nsys_client_behaviour;

/* Spawns a client (from any thread). It starts connecting at once.
 * NSYS_EINVAL (nothing started; nsys_net_last_error() says why) without a
 * host or port, with invalid backoff options, or with a heartbeat on a codec
 * other than length. */
int nsys_tcp_client_start(nsys_runtime_t *rt, const nsys_client_opts_t *opts, nsys_ref_t *ref);

/* Stops it: the connection closes, waiting messages fail (reported), the
 * actor exits with NSYS_REASON_SHUTDOWN. Asynchronous. */
int nsys_client_stop(nsys_runtime_t *rt, nsys_ref_t client);

/* Counters, from a thread outside the runtime. */
int nsys_client_stats(nsys_runtime_t *rt, nsys_ref_t client, nsys_client_stats_t *out);

const char *nsys_client_state_name(nsys_client_state_t s);

#ifdef __cplusplus
}
#endif
#endif

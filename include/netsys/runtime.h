/* netsys/runtime.h — the actor runtime: schedulers, actors, messages,
 * monitors and links, timers, names, metrics.
 *
 * Threads. A runtime owns N scheduler threads; each runs one libuv loop and a
 * queue of ready actors. An actor is pinned to one scheduler for its whole
 * life, so it may own libuv handles on nsys_ctx_loop(). Its callbacks never run
 * concurrently with each other.
 *
 * Refs. Actors are named by nsys_ref_t values (slot + generation), never by
 * pointers. A ref stays safe to use forever: once its actor is gone every call
 * with it fails with NSYS_ENOACTOR and touches no freed memory.
 *
 * Messages. nsys_send() and friends may be called from any thread. Messages
 * from one sender to one receiver arrive in the order they were sent. On
 * success the payload is moved to the receiver; on any error the caller keeps
 * what it passed (as in nng). Messages an actor sends during a callback to
 * actors on other schedulers are handed over together when the callback
 * returns (one atomic operation per receiver instead of one per message);
 * nothing inside netsys can tell the difference, but a side channel could
 * (a callback that sends and then signals another thread directly).
 *
 * Implicit self. Calls made from inside an actor callback (init, handle,
 * terminate) know the running actor: nsys_send() stamps it as the sender and
 * nsys_spawn() records it as the parent. Calls that act on the actor itself
 * take its nsys_ctx_t explicitly.
 */
#ifndef NETSYS_RUNTIME_H
#define NETSYS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Types                                                                     */

typedef struct nsys_runtime nsys_runtime_t;
typedef struct nsys_actor nsys_ctx_t; /* the running actor, as its callbacks see it */

/* A handle to an actor: generation in the high 32 bits, table slot in the low
 * 32. NSYS_REF_NONE (0) never names an actor. */
typedef uint64_t nsys_ref_t;
#define NSYS_REF_NONE ((nsys_ref_t)0)
#define NSYS_REF_SLOT(r) ((uint32_t)((r)&0xffffffffu))
#define NSYS_REF_GEN(r) ((uint32_t)((r) >> 32))

/* Message types. Below NSYS_MSG_USER they are reserved: 0..255 for the
 * runtime's own signals (never delivered to handle, refused by nsys_send), the
 * rest for netsys modules (DOWN, EXIT, network and supervisor events). */
#define NSYS_MSG_SYSTEM_MAX 256u
#define NSYS_MSG_DOWN 256u /* payload: nsys_down_t */
#define NSYS_MSG_EXIT 257u /* payload: nsys_exit_t, only to actors that trap exits */
#define NSYS_MSG_STARTED 258u /* payload: nsys_started_t, to a parent that asked (spawn opts ack) */
#define NSYS_MSG_USER 0x10000u

typedef struct nsys_msg {
    uint32_t type;
    uint32_t reserved_;
    nsys_ref_t from; /* sender, NSYS_REF_NONE when sent from outside the runtime */
    void *data;      /* payload bytes; valid until handle returns */
    size_t size;
} nsys_msg_t;

typedef struct nsys_down {
    nsys_ref_t ref;   /* the actor that went down */
    uint64_t monitor; /* the id nsys_monitor() returned */
    int reason;       /* its exit reason; NSYS_REASON_NOPROC if it never existed */
} nsys_down_t;

typedef struct nsys_exit {
    nsys_ref_t from; /* the linked (or signalling) actor */
    int reason;
} nsys_exit_t;

typedef struct nsys_started {
    nsys_ref_t ref; /* the child that finished starting */
} nsys_started_t;

/* An actor's type. Callbacks run on the actor's scheduler thread.
 *
 * init: called first, with the spawn args. Returning non-zero fails the actor
 *   with that reason; terminate is then not called, so init cleans up after
 *   itself. May be NULL.
 * handle: one message. Returning non-zero fails the actor with that reason
 *   (use a negative NSYS_E* code; a positive value becomes NSYS_EFAILED).
 *   The message and its payload belong to the runtime unless taken with
 *   nsys_msg_take_buf()/nsys_msg_take_ptr(). Required.
 * terminate: last call, with the exit reason, if init succeeded. Must release
 *   what the actor owns (close its libuv handles). May be NULL.
 *
 * The state block of `state_size` bytes is zeroed before init and freed after
 * terminate. The behaviour struct must outlive its actors. */
typedef struct nsys_behaviour {
    const char *name;
    size_t state_size;
    int (*init)(nsys_ctx_t *ctx, void *state, void *args);
    int (*handle)(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg);
    void (*terminate)(nsys_ctx_t *ctx, void *state, int reason);
} nsys_behaviour_t;

/* ------------------------------------------------------------------------ */
/* Runtime                                                                   */

typedef struct nsys_runtime_opts {
    unsigned schedulers;           /* 0: number of CPUs */
    unsigned batch;                /* messages per actor per turn, 0: 64 */
    int spin_us;                   /* spin before parking, 0: 20 us, <0: never spin */
    uint64_t shutdown_timeout_ms;  /* orderly-stop grace before force, 0: 5000 */
    uint32_t max_actors;           /* actor table capacity, 0: 1 << 24 */
} nsys_runtime_opts_t;
#define NSYS_RUNTIME_OPTS_DEFAULTS {0, 0, 0, 0, 0}

/* Creates a runtime and starts its scheduler threads. opts may be NULL.
 * SIGPIPE is set to be ignored unless the program installed a handler, so a
 * write to a closed connection is an EPIPE error, not the end of the process. */
int nsys_runtime_new(const nsys_runtime_opts_t *opts, nsys_runtime_t **out);

/* Stops the runtime: top-level actors (spawned from outside any actor) get an
 * exit signal NSYS_REASON_SHUTDOWN, newest first, each awaited up to the
 * shutdown timeout; then every remaining actor is terminated, every libuv
 * handle closed, and the threads joined. Queued messages are freed. After it
 * returns every call that acts on actors (send, spawn, kill, register, wait,
 * ...) fails with NSYS_ESTOPPED; metrics stay readable until
 * nsys_runtime_free. Must not be called from a scheduler thread (it returns
 * NSYS_EBUSY there; use nsys_runtime_request_stop). */
int nsys_runtime_stop(nsys_runtime_t *rt);

/* Stops (if needed) and frees everything the runtime owns. NULL is ignored. */
void nsys_runtime_free(nsys_runtime_t *rt);

/* Wakes nsys_runtime_wait with NSYS_WAKE_REQUEST. Any thread, any time. */
int nsys_runtime_request_stop(nsys_runtime_t *rt, int code);

#define NSYS_WAIT_SIGNALS 0x1u   /* return on SIGINT or SIGTERM */
#define NSYS_WAIT_NO_ACTORS 0x2u /* return when no actor is alive */

typedef enum nsys_wake {
    NSYS_WAKE_REQUEST = 1, /* nsys_runtime_request_stop */
    NSYS_WAKE_SIGNAL = 2,  /* SIGINT or SIGTERM */
    NSYS_WAKE_TIMEOUT = 3,
    NSYS_WAKE_NO_ACTORS = 4
} nsys_wake_t;

/* Blocks the calling (non-scheduler) thread until one of the conditions in
 * `flags`, a stop request, or `timeout_ms` (0: none) elapses. `why` (may be
 * NULL) tells which; `code` (may be NULL) gets the request's code or the
 * signal number. Does not stop the runtime: call nsys_runtime_stop after.
 * Once a wait has asked for NSYS_WAIT_SIGNALS, SIGINT and SIGTERM stay
 * caught until nsys_runtime_free: one that arrives between two waits is
 * reported by the next wait that asks for signals, never lost and never the
 * default action. One thread waits at a time (NSYS_EBUSY otherwise). */
int nsys_runtime_wait(nsys_runtime_t *rt, unsigned flags, uint64_t timeout_ms, nsys_wake_t *why,
                      int *code);

unsigned nsys_runtime_schedulers(const nsys_runtime_t *rt);

/* ------------------------------------------------------------------------ */
/* Actors                                                                    */

/* Where a new actor runs. The default keeps actors that talk to each other
 * together, as Erlang and Pony do: a spawn from inside an actor lands on the
 * caller's scheduler (messages between them never cross cores), a spawn from
 * outside the runtime is spread round-robin. Structural spawners that want
 * parallelism — supervisors, listeners — ask for NSYS_PLACE_ANY. */
typedef enum nsys_placement {
    NSYS_PLACE_DEFAULT = 0, /* the caller's scheduler from an actor, else round-robin */
    NSYS_PLACE_ANY = 1,     /* round-robin over schedulers */
    NSYS_PLACE_SAME = 2,    /* the caller's scheduler (round-robin from outside) */
    NSYS_PLACE_INDEX = 3    /* scheduler `sched_index` */
} nsys_placement_t;

typedef struct nsys_spawn_opts {
    nsys_placement_t placement;
    unsigned sched_index;
    void *args;                     /* handed to init */
    void (*args_free)(void *args);  /* if set, called once init has run, or if it never will */
    bool link;                      /* link the caller and the child (needs a calling actor) */
    bool monitor;                   /* the caller monitors the child (needs a calling actor) */
    uint64_t *monitor_id;           /* out: the monitor's id when monitor is set */
    bool ack;                       /* the caller gets NSYS_MSG_STARTED once the child started */
} nsys_spawn_opts_t;
#define NSYS_SPAWN_OPTS_DEFAULTS {NSYS_PLACE_DEFAULT, 0, NULL, NULL, false, false, NULL, false}

/* Creates an actor; init runs asynchronously on its scheduler. On success
 * *out (may be NULL) receives its ref and ownership of args passed to the
 * runtime (args_free will run). On error nothing was created and the caller
 * keeps args. */
int nsys_spawn(nsys_runtime_t *rt, const nsys_behaviour_t *behaviour, const nsys_spawn_opts_t *opts,
               nsys_ref_t *out);

nsys_ref_t nsys_self(const nsys_ctx_t *ctx);
nsys_ref_t nsys_parent(const nsys_ctx_t *ctx); /* NSYS_REF_NONE if spawned from outside */
nsys_runtime_t *nsys_ctx_runtime(const nsys_ctx_t *ctx);
uv_loop_t *nsys_ctx_loop(const nsys_ctx_t *ctx);
unsigned nsys_ctx_scheduler(const nsys_ctx_t *ctx);
void *nsys_ctx_state(const nsys_ctx_t *ctx);
const nsys_behaviour_t *nsys_ctx_behaviour(const nsys_ctx_t *ctx);

/* The actor whose callback is running on this thread, or NULL. */
nsys_ctx_t *nsys_current(void);

/* Start acknowledgement (spawn opts `ack`): by default the parent gets
 * NSYS_MSG_STARTED as soon as init returns 0. An actor that needs more time
 * (a supervisor starting its own children, a client finishing a handshake)
 * calls nsys_defer_ack during init and nsys_ack once it is ready. If it exits
 * first, the parent sees only the exit (through its link or monitor). */
void nsys_defer_ack(nsys_ctx_t *ctx);
int nsys_ack(nsys_ctx_t *ctx);

/* libuv callbacks of handles an actor owns (on nsys_ctx_loop) run on its
 * scheduler thread between turns, not as the actor. Bracketing such a
 * callback with nsys_io_enter/nsys_io_leave makes it run as the actor, with
 * a turn's guarantees: sends are stamped with the actor and batched,
 * nsys_spawn records it as parent, and nsys_exit takes effect (the actor's
 * next turn, which follows at once, carries it out). nsys_io_enter returns
 * false, and the callback must not act for the actor, when the actor is
 * exiting or not yet initialised, or when called off its scheduler thread;
 * nsys_io_leave is then not called. Nested brackets are allowed. */
bool nsys_io_enter(nsys_ctx_t *ctx);
void nsys_io_leave(nsys_ctx_t *ctx);

/* A function the runtime calls at the end of every turn of the actor (after
 * its batch of messages) and at every nsys_io_leave, unless it is exiting.
 * Network actors use it to write what a turn queued in one system call.
 * NULL removes it. */
void nsys_set_turn_hook(nsys_ctx_t *ctx, void (*hook)(nsys_ctx_t *ctx, void *state));

/* Marks the actor to exit with `reason` once the current callback returns
 * (C cannot unwind it). The first reason given wins. */
void nsys_exit(nsys_ctx_t *ctx, int reason);

/* Sends an exit signal to `to`, as if from the calling actor (Erlang's
 * exit/2): a trapping actor receives NSYS_MSG_EXIT; otherwise a non-normal
 * reason makes it exit with that reason and a normal one is ignored. */
int nsys_exit_signal(nsys_runtime_t *rt, nsys_ref_t to, int reason);

/* Makes `to` exit with NSYS_REASON_KILLED before it handles another message;
 * it cannot be trapped. Its terminate still runs, so it frees what it owns. */
int nsys_kill(nsys_runtime_t *rt, nsys_ref_t to);

/* True while the actor exists (a racy snapshot, for diagnostics and tests). */
bool nsys_is_alive(nsys_runtime_t *rt, nsys_ref_t ref);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

/* Copies `size` bytes at `data` (data may be NULL when size is 0). Small
 * payloads travel inside pooled message nodes; no malloc in steady state. */
int nsys_send(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *data, size_t size);

/* Moves one reference of `buf` to the receiver, which sees its bytes as
 * msg->data/size without a copy. */
int nsys_send_buf(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, nsys_buf_t *buf);

/* Moves `ptr` to the receiver (msg->data == ptr, msg->size == size); the
 * runtime calls free_fn(ptr) when the message is dropped or handled, unless
 * the receiver took it. free_fn may be NULL. */
int nsys_send_ptr(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, void *ptr, size_t size,
                  void (*free_fn)(void *));

/* Inside handle: takes ownership of the message's buffer (nsys_send_buf) or
 * pointer (nsys_send_ptr); NULL for other messages. The runtime then releases
 * nothing. */
nsys_buf_t *nsys_msg_take_buf(nsys_msg_t *msg);
void *nsys_msg_take_ptr(nsys_msg_t *msg);

/* Request/reply from a thread outside the runtime: sends `type` with a copy
 * of data/size to `to` from a temporary actor and waits up to timeout_ms
 * (0: 5000) for the first message sent back to that sender (msg->from). The
 * reply's payload is copied to *reply (free with nsys_free; may be NULL when
 * empty) and its type to *reply_type (may be NULL). NSYS_ETIMEDOUT if no
 * reply came, NSYS_ENOACTOR if `to` exited first, NSYS_EBUSY on a scheduler
 * thread (it would block the scheduler). */
int nsys_call(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *data, size_t size,
              uint64_t timeout_ms, uint32_t *reply_type, void **reply, size_t *reply_size);

/* nsys_call for the common query shape: a request of `type` (with a copy of
 * req/req_size, which may be NULL/0) answered with exactly `size` bytes of
 * the same type, copied to `out`. NSYS_EINVAL if the reply has another type
 * or size. */
int nsys_call_reply(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *req,
                    size_t req_size, void *out, size_t size);

/* The same with a moved pointer as the request (as nsys_send_ptr). `ptr` is
 * always consumed: delivered, or released with free_fn (required) on any
 * failure. */
int nsys_call_ptr(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, void *ptr, size_t size,
                  void (*free_fn)(void *), uint64_t timeout_ms, uint32_t *reply_type, void **reply,
                  size_t *reply_size);

/* ------------------------------------------------------------------------ */
/* Monitors, links, exits                                                    */
/* These act on the calling actor: call them from its callbacks (or libuv
 * callbacks on its loop); from another thread they fail with NSYS_EINVAL. */

/* Monitors `target`: the caller gets exactly one NSYS_MSG_DOWN when it exits,
 * at once (reason NSYS_REASON_NOPROC) if it is already gone. */
int nsys_monitor(nsys_ctx_t *ctx, nsys_ref_t target, uint64_t *monitor_id);

/* Removes a monitor; no DOWN for it is delivered afterwards, even if one was
 * already queued. NSYS_ENOENT if the id is not an active monitor. */
int nsys_demonitor(nsys_ctx_t *ctx, uint64_t monitor_id);

/* Links the caller and `target`: when either exits, the other gets an exit
 * signal with the reason. A trapping actor receives it as NSYS_MSG_EXIT (for
 * normal exits too, which is how a supervisor learns of them); a
 * non-trapping one exits with the same reason unless it is normal.
 * NSYS_ENOACTOR if target is already gone. */
int nsys_link(nsys_ctx_t *ctx, nsys_ref_t target);
int nsys_unlink(nsys_ctx_t *ctx, nsys_ref_t target);

/* With trap on, exit signals arrive as NSYS_MSG_EXIT messages instead of
 * killing the actor (except nsys_kill). Returns the previous setting. */
bool nsys_trap_exit(nsys_ctx_t *ctx, bool trap);

/* ------------------------------------------------------------------------ */
/* Timers (on the actor's own loop)                                          */

typedef uint64_t nsys_timer_t;

/* After `delay_ms`, sends a message of `type` with a copy of data/size to
 * `to` (NSYS_REF_NONE: the actor itself), as if sent by the actor. */
int nsys_send_after(nsys_ctx_t *ctx, nsys_ref_t to, uint64_t delay_ms, uint32_t type,
                    const void *data, size_t size, nsys_timer_t *timer);

/* Every `interval_ms` (> 0), first after one interval. */
int nsys_send_interval(nsys_ctx_t *ctx, nsys_ref_t to, uint64_t interval_ms, uint32_t type,
                       const void *data, size_t size, nsys_timer_t *timer);

/* Cancels a timer: returns 0 and guarantees it never fires again (a firing
 * already queued to the actor itself is dropped), or NSYS_ENOENT if it already
 * fired for the last time or is unknown. When an actor exits its timers are
 * cancelled. */
int nsys_timer_cancel(nsys_ctx_t *ctx, nsys_timer_t timer);

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/* Registers `name` (1..255 bytes) for a live actor: NSYS_ENAMETAKEN if the
 * name is in use, NSYS_EHASNAME if the actor has a name, NSYS_ENOACTOR if it
 * is gone. The name is released when the actor exits. */
int nsys_register(nsys_runtime_t *rt, const char *name, nsys_ref_t ref);
int nsys_unregister(nsys_runtime_t *rt, const char *name);
int nsys_whereis(nsys_runtime_t *rt, const char *name, nsys_ref_t *out);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */

typedef struct nsys_sched_metrics {
    uint64_t messages_handled;
    uint64_t ready_depth; /* actors ready to run at the latest sample */
    uint64_t parks;       /* times the scheduler went to sleep */
    uint64_t wakeups;     /* cross-thread wake-ups received */
    uint64_t actors;      /* live actors pinned here */
} nsys_sched_metrics_t;

typedef struct nsys_metrics {
    uint64_t messages_sent;
    uint64_t messages_handled;
    uint64_t dead_letters;
    uint64_t actors_alive;
    uint64_t actors_spawned;
    uint64_t actors_exited;
    uint64_t actors_failed; /* exits with an abnormal reason */
    unsigned schedulers;
} nsys_metrics_t;

/* Counters are read without stopping the world: each is exact, their sum a
 * snapshot. */
int nsys_metrics_get(nsys_runtime_t *rt, nsys_metrics_t *out);
int nsys_sched_metrics_get(nsys_runtime_t *rt, unsigned sched, nsys_sched_metrics_t *out);

/* A JSON object with the totals and a "schedulers" array. *json is
 * NUL-terminated and freed with nsys_free(). */
int nsys_metrics_json(nsys_runtime_t *rt, char **json);

void nsys_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif

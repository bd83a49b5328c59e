/* runtime/internal.h — the runtime's private structures, shared by the files
 * of runtime/ only. Layers above use the public headers.
 *
 * Ownership in one paragraph: the runtime owns the actor table, the
 * schedulers and the registry. A scheduler thread owns its loop, its local
 * ready list, its message-node pool and the actors pinned to it (their state,
 * monitors, links and timers are touched only on that thread). Other threads
 * reach an actor only through its table slot, and only to push into its
 * mailbox or raise its kill flag. Memory reclamation is epoch-based: a dead
 * actor is retired by its scheduler and freed there once every scheduler has
 * passed a quiescent point since, and no outside thread still pins it.
 */
#ifndef NSYS_RUNTIME_INTERNAL_H
#define NSYS_RUNTIME_INTERNAL_H

#include <netsys/log.h>
#include <netsys/runtime.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "mpsc.h"

/* ---- runtime-internal message types (< NSYS_MSG_SYSTEM_MAX) ------------- */
enum {
    NSYS__MSG_MONITOR = 2,   /* nsys__sysmsg_t: ref = watcher, id */
    NSYS__MSG_DEMONITOR = 3, /* nsys__sysmsg_t: id */
    NSYS__MSG_LINK = 4,      /* nsys__sysmsg_t: ref = linker */
    NSYS__MSG_UNLINK = 5,    /* nsys__sysmsg_t: ref = unlinker */
    NSYS__MSG_SIGNAL = 6,    /* nsys__sysmsg_t: ref = from, reason, linked */
    NSYS__MSG_KILL = 7,      /* no payload; the kill flag is the signal */
    NSYS__MSG_WAKE = 8       /* no payload: an exit asked for outside a turn (nsys_io_leave) */
};

typedef struct nsys__sysmsg {
    nsys_ref_t ref;
    uint64_t id;
    int reason;
    int linked;
} nsys__sysmsg_t;

/* ---- message nodes ------------------------------------------------------ */
enum { NSYS__NODE_STUB = 0, NSYS__NODE_INLINE, NSYS__NODE_HEAP, NSYS__NODE_BUF, NSYS__NODE_PTR };
#define NSYS__NODE_F_TIMER 0x1u /* aux is the id of a timer of the receiver */
#define NSYS__NODE_F_TAKEN 0x2u /* the receiver took the payload */
#define NSYS__INLINE_MAX 40

typedef struct nsys__node_hdr {
    nsys__mpsc_node_t link; /* first: a node is its mpsc link */
    uint8_t kind;
    uint8_t flags;
} nsys__node_hdr_t;

typedef struct nsys__node {
    nsys__node_hdr_t hdr;
    nsys_msg_t msg;
    union {
        nsys_buf_t *buf;
        void (*free_fn)(void *);
    } own;
    uint64_t aux;
    _Alignas(8) uint8_t inline_bytes[NSYS__INLINE_MAX];
} nsys__node_t;

/* ---- actors --------------------------------------------------------------- */
typedef struct nsys__watcher {
    nsys_ref_t ref;
    uint64_t id;
} nsys__watcher_t;

typedef struct nsys__timer nsys__timer_t;

/* Everything most actors never use, allocated on first use. */
typedef struct nsys__ext {
    nsys_ref_t *links;
    uint32_t nlinks, caplinks;
    nsys__watcher_t *watchers; /* who monitors me */
    uint32_t nwatchers, capwatchers;
    nsys__watcher_t *monitors; /* whom I monitor: ref = target, id */
    uint32_t nmonitors, capmonitors;
    nsys__timer_t *timers; /* doubly linked */
    uint64_t next_timer_id;
} nsys__ext_t;

struct nsys__sched;

struct nsys_actor {
    nsys__mailbox_t mb;
    nsys__node_hdr_t stub;
    nsys__mpsc_node_t rq; /* ready-queue link */
    struct nsys_actor *prev, *next; /* live: the scheduler's list; retired: its limbo list */
    const nsys_behaviour_t *beh;
    struct nsys__sched *sched;
    nsys_ref_t self;
    nsys_ref_t parent;
    void *args; /* until init has run */
    void (*args_free)(void *);
    union {
        nsys__ext_t *ext;    /* while alive */
        uint64_t retired_at; /* once retired: the global epoch at retirement */
    };
    nsys_ref_t ack_to; /* parent waiting for NSYS_MSG_STARTED, or none */
    void (*turn_hook)(nsys_ctx_t *ctx, void *state); /* after each turn and I/O callback */
    int exit_reason;
    uint8_t started;     /* init was called */
    uint8_t initialized; /* init returned 0: terminate will run */
    uint8_t listed;      /* on the scheduler's list */
    uint8_t exiting;     /* exit requested; acted on after the callback */
    uint8_t exited;      /* exit processed; memory waits for the last unpin */
    uint8_t trap;
    uint8_t ack_deferred;
    uint8_t io_depth;  /* nested nsys_io_enter on the running actor */
    uint8_t wake_sent; /* NSYS__MSG_WAKE sent for an exit asked for outside a turn */
    _Atomic uint8_t kill_req;
    _Atomic uint8_t named;
    _Alignas(16) unsigned char state[];
};
typedef struct nsys_actor nsys__actor_t;

/* ---- actor table ---------------------------------------------------------- */
/* Slot word: generation (32) | alive (1) | pins (31). A sender pins a live slot
 * with one CAS, so the actor cannot be freed under it. */
#define NSYS__ALIVE ((uint64_t)1 << 31)
#define NSYS__PINS_MASK (NSYS__ALIVE - 1)
#define NSYS__EPOCH_IDLE UINT64_MAX
#define NSYS__CHUNK_BITS 12
#define NSYS__CHUNK_SLOTS (1u << NSYS__CHUNK_BITS)

typedef struct nsys__slot {
    _Atomic uint64_t word;
    _Atomic(nsys__actor_t *) actor; /* while free: index of the next free slot */
} nsys__slot_t;

typedef struct nsys__table {
    _Atomic(nsys__slot_t *) *chunks;
    uint32_t nchunks_max;
    uv_mutex_t mu; /* guards the free list and chunk allocation */
    uint32_t free_head; /* 0: empty (slot 0 is never used) */
    uint32_t high;      /* slots ever handed out, +1 */
    uint32_t capacity;
} nsys__table_t;

/* ---- message-node pools ----------------------------------------------------- */
typedef struct nsys__pool {
    nsys__node_t *free;
    uint32_t count;
} nsys__pool_t;

typedef struct nsys__pool_global {
    uv_mutex_t mu;
    nsys__node_t *chunks; /* chunks of nodes linked by msg.data */
    uint32_t nchunks;
} nsys__pool_global_t;

/* ---- schedulers ------------------------------------------------------------- */
enum { NSYS__PHASE_RUN = 0, NSYS__PHASE_FORCE = 1 };

typedef struct nsys__counter {
    _Atomic uint64_t v; /* single writer: its own scheduler thread */
} nsys__counter_t;

/* Messages an actor sends during its turn to actors on other schedulers are
 * chained per receiver and pushed with one exchange when the turn ends (or
 * when a chain gets long), so a burst costs the receiver's contended mailbox
 * line once instead of once per message. Order per receiver is kept. */
#define NSYS__STAGE_TARGETS 8
#define NSYS__STAGE_MAX_CHAIN 64

typedef struct nsys__stage {
    struct nsys_actor *to;
    nsys__mpsc_node_t *first, *last;
    unsigned count;
} nsys__stage_t;

typedef struct nsys__sched {
    nsys__runq_t runq; /* other threads push ready actors here */
    _Atomic int sleeping;
    _Atomic int phase;
    char pad_[64];
    struct nsys_runtime *rt;
    unsigned index;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t reclaim_timer; /* wakes a parked scheduler whose limbo is not empty */
    nsys__mpsc_node_t *local_head, *local_tail; /* ready list, own thread only */
    uint64_t local_count;
    nsys__actor_t *actors; /* live actors, newest first */
    nsys__pool_t pool;
    _Atomic uint64_t epoch; /* announced epoch, NSYS__EPOCH_IDLE while parked */
    bool in_epoch;          /* announced since the last park */
    unsigned cycles_since_announce;
    nsys__actor_t *limbo;   /* retired actors waiting to be freed */
    unsigned cycles_since_poll;
    uint64_t last_poll_ns;
    bool parked; /* inside the blocking uv_run: a local wake-up must stop it */
    nsys__stage_t stage[NSYS__STAGE_TARGETS];
    unsigned nstage;
    nsys__counter_t sent, handled, ready_depth, parks, wakeups, nactors;
} nsys__sched_t;

/* ---- runtime -------------------------------------------------------------- */
enum { NSYS__RT_RUNNING = 0, NSYS__RT_STOPPING = 1, NSYS__RT_FORCE = 2, NSYS__RT_STOPPED = 3 };

typedef struct nsys__registry nsys__registry_t;

struct nsys_runtime {
    _Atomic int state;
    _Atomic uint64_t ext_inflight; /* calls in progress from non-scheduler threads */
    unsigned nsched;
    unsigned batch;
    int64_t spin_ns;
    uint64_t shutdown_timeout_ms;
    nsys__sched_t *scheds;
    nsys__table_t table;
    nsys__pool_global_t pool;
    nsys__registry_t *registry;
    _Atomic uint64_t epoch; /* global reclamation epoch */
    _Atomic unsigned rr;
    _Atomic uint64_t monitor_seq;

    _Atomic uint64_t ext_sent, dead_letters, spawned, exited, failed;
    _Atomic uint64_t dead_log_ns, dead_suppressed;

    /* top-level actors, in spawn order, for the orderly stop */
    uv_mutex_t top_mu;
    nsys_ref_t *top;
    size_t ntop, captop;

    /* wait / stop coordination */
    uv_mutex_t wait_mu;
    uv_cond_t wait_cond;
    uv_async_t *waiter;  /* the async of the thread in nsys_runtime_wait */
    int waiting;         /* a thread is in nsys_runtime_wait (one at a time) */
    /* Waits run a loop of their own, kept across waits with the signal
     * watchers on it; touched only by the waiting thread. */
    uv_loop_t wait_loop;
    int wait_loop_ready, signals_on, pending_signal;
    uv_signal_t sigint, sigterm;
    struct waitctx *cur_wait;
    int stop_requested;
    int stop_code;
    _Atomic int exit_watch; /* someone waits for exits on wait_cond */
    uv_barrier_t force_barrier;   /* schedulers + the stopping thread */
    uv_barrier_t drained_barrier; /* schedulers, once nothing can send any more */
    int stopped;
};

/* ---- shared internal functions ------------------------------------------- */
extern _Thread_local nsys__sched_t *nsys__tls_sched;
extern _Thread_local nsys__actor_t *nsys__tls_actor;

int nsys__table_init(nsys__table_t *t, uint32_t capacity);
void nsys__table_free(nsys__table_t *t);
int nsys__table_alloc(nsys__table_t *t, uint32_t *slot, uint32_t *gen);
void nsys__table_release(nsys__table_t *t, uint32_t slot);
nsys__slot_t *nsys__table_slot(nsys__table_t *t, uint32_t slot);
nsys__actor_t *nsys__pin(nsys_runtime_t *rt, nsys_ref_t ref);
void nsys__unpin(nsys_runtime_t *rt, nsys__actor_t *a);
nsys__actor_t *nsys__acquire(nsys_runtime_t *rt, nsys_ref_t ref, bool internal);
void nsys__release(nsys_runtime_t *rt, nsys__actor_t *a, bool internal);
void nsys__epoch_announce(nsys__sched_t *s);
void nsys__retire(nsys__sched_t *s, nsys__actor_t *a);
void nsys__reclaim(nsys__sched_t *s, bool all);

nsys__node_t *nsys__node_alloc(nsys_runtime_t *rt);
/* The same with the pool already known (NULL: outside the runtime). */
nsys__node_t *nsys__node_alloc_in(nsys_runtime_t *rt, nsys__pool_t *p);
void nsys__node_free(nsys_runtime_t *rt, nsys__node_t *n);
void nsys__node_release_payload(nsys__node_t *n);
void nsys__pool_global_free(nsys__pool_global_t *g);
void nsys__pool_local_free(nsys_runtime_t *rt, nsys__pool_t *p);
int nsys__node_fill_copy(nsys__node_t *n, const void *data, size_t size);

int nsys__send_node(nsys_runtime_t *rt, nsys_ref_t to, nsys__node_t *n);
/* The same for a caller that knows whether it runs on one of rt's schedulers
 * (s) or outside it (NULL). */
int nsys__send_node_from(nsys_runtime_t *rt, nsys__sched_t *s, nsys_ref_t to, nsys__node_t *n);
int nsys__send_sys(nsys_runtime_t *rt, nsys_ref_t from, nsys_ref_t to, uint32_t type,
                   const nsys__sysmsg_t *sm);
void nsys__schedule(nsys__actor_t *a);
void nsys__stage_flush(nsys__sched_t *s);
void nsys__finalize(nsys_runtime_t *rt, nsys__actor_t *a, bool quiet);
void nsys__run_turn(nsys__sched_t *s, nsys__actor_t *a);
void nsys__exit_actor(nsys__actor_t *a);
void nsys__actor_force_exit(nsys__actor_t *a, int reason);
nsys_ref_t nsys__current_ref(nsys_runtime_t *rt);
bool nsys__on_runtime_thread(nsys_runtime_t *rt);
int nsys__gate_enter(nsys_runtime_t *rt, bool *internal);
void nsys__gate_leave(nsys_runtime_t *rt, bool internal);
void nsys__dead_letter(nsys_runtime_t *rt, uint32_t type, nsys_ref_t to);
void nsys__notify_exit(nsys_runtime_t *rt);
nsys__ext_t *nsys__ext(nsys__actor_t *a);

static inline void nsys__counter_add(nsys__counter_t *c, uint64_t n)
{
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline uint64_t nsys__counter_get(nsys__counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

void nsys__log_setup(void);

/* timers (timer.c) */
void nsys__timers_cancel_all(nsys__actor_t *a);
bool nsys__timer_claim(nsys__actor_t *a, uint64_t id);

/* registry (registry.c) */
int nsys__registry_new(nsys__registry_t **out);
void nsys__registry_free(nsys__registry_t *r);
void nsys__registry_remove_ref(nsys_runtime_t *rt, nsys_ref_t ref);

/* scheduler (sched.c) */
int nsys__sched_start(nsys_runtime_t *rt, nsys__sched_t *s, unsigned index);
void nsys__sched_wake(nsys__sched_t *s);

#endif

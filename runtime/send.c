/* runtime/send.c — delivering messages: pin, push, schedule; dead letters.
 *
 * A send is: pin the receiver's slot (one CAS), push the node into its
 * mailbox (one exchange), and either unpin or — when the push found the
 * mailbox marked empty — hand the pin to the receiver's scheduler as the
 * ready-queue's reference. Not for: what happens when the message is handled
 * (actor.c).
 */
#include "internal.h"

#include <inttypes.h>
#include <string.h>

_Thread_local nsys__sched_t *nsys__tls_sched;
_Thread_local nsys__actor_t *nsys__tls_actor;

bool nsys__on_runtime_thread(nsys_runtime_t *rt)
{
    return nsys__tls_sched != NULL && nsys__tls_sched->rt == rt;
}

nsys_ref_t nsys__current_ref(nsys_runtime_t *rt)
{
    nsys__actor_t *a = nsys__tls_actor;
    return (a != NULL && a->sched->rt == rt) ? a->self : NSYS_REF_NONE;
}

/* Calls from threads outside the runtime announce themselves, so that the
 * forced stop can wait until none is inside before tearing down. */
int nsys__gate_enter(nsys_runtime_t *rt, bool *internal)
{
    *internal = nsys__on_runtime_thread(rt);
    if (*internal)
        return atomic_load_explicit(&rt->state, memory_order_relaxed) >= NSYS__RT_STOPPED
                   ? NSYS_ESTOPPED
                   : 0;
    atomic_fetch_add_explicit(&rt->ext_inflight, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&rt->state, memory_order_seq_cst) >= NSYS__RT_FORCE) {
        atomic_fetch_sub_explicit(&rt->ext_inflight, 1, memory_order_release);
        return NSYS_ESTOPPED;
    }
    return 0;
}

void nsys__gate_leave(nsys_runtime_t *rt, bool internal)
{
    if (!internal)
        atomic_fetch_sub_explicit(&rt->ext_inflight, 1, memory_order_release);
}

static void local_push(nsys__sched_t *s, nsys__actor_t *a)
{
    atomic_store_explicit(&a->rq.next, NULL, memory_order_relaxed);
    if (s->local_tail != NULL)
        atomic_store_explicit(&s->local_tail->next, &a->rq, memory_order_relaxed);
    else
        s->local_head = &a->rq;
    s->local_tail = &a->rq;
    s->local_count++;
}

void nsys__sched_wake(nsys__sched_t *s)
{
    if (atomic_load_explicit(&s->sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(&s->sleeping, 0, memory_order_seq_cst))
        uv_async_send(&s->async);
}

/* Makes a ready actor runnable on its scheduler. Only the sender whose push
 * found the mailbox marked empty calls this, so an actor is queued at most
 * once; a queued actor is alive (it can only exit in a turn), so the queue
 * needs no reference of its own. */
void nsys__schedule(nsys__actor_t *a)
{
    nsys__sched_t *s = a->sched;
    if (nsys__tls_sched == s) {
        local_push(s, a);
        /* Made ready by a callback of the parked loop itself (a timer that
         * came due as uv_run started): without this the poll that follows
         * would block with a ready actor and nobody to wake it. */
        if (s->parked)
            uv_stop(&s->loop);
        return;
    }
    nsys__runq_push(&s->runq, &a->rq);
    nsys__sched_wake(s);
}

void nsys__dead_letter(nsys_runtime_t *rt, uint32_t type, nsys_ref_t to)
{
    atomic_fetch_add_explicit(&rt->dead_letters, 1, memory_order_relaxed);
    if (!NSYS_LOG_ENABLED(NSYS_LOG_INFO) ||
        atomic_load_explicit(&rt->state, memory_order_relaxed) >= NSYS__RT_FORCE)
        return;
    /* At most one line a second; the others are counted in it. */
    uint64_t now = uv_hrtime();
    uint64_t last = atomic_load_explicit(&rt->dead_log_ns, memory_order_relaxed);
    if (last != 0 && now - last < 1000000000u) {
        atomic_fetch_add_explicit(&rt->dead_suppressed, 1, memory_order_relaxed);
        return;
    }
    if (!atomic_compare_exchange_strong_explicit(&rt->dead_log_ns, &last, now,
                                                 memory_order_relaxed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&rt->dead_suppressed, 1, memory_order_relaxed);
        return;
    }
    uint64_t more = atomic_exchange_explicit(&rt->dead_suppressed, 0, memory_order_relaxed);
    nsys_log_emit(NSYS_LOG_INFO, __FILE__, __LINE__,
                  "dead letter: message type %" PRIu32 " to a%" PRIu32 ".%" PRIu32
                  " (no such actor); %" PRIu64 " more since the last report",
                  type, NSYS_REF_SLOT(to), NSYS_REF_GEN(to), more);
}

/* Pushes a filled node. On error the node is untouched: the caller frees it
 * and decides about the payload. */
int nsys__send_node(nsys_runtime_t *rt, nsys_ref_t to, nsys__node_t *n)
{
    nsys__sched_t *s = nsys__tls_sched;
    return nsys__send_node_from(rt, (s != NULL && s->rt == rt) ? s : NULL, to, n);
}

static void stage_push(nsys__stage_t *st)
{
    if (nsys__mailbox_push_chain(&st->to->mb, st->first, st->last))
        nsys__schedule(st->to);
}

void nsys__stage_flush(nsys__sched_t *s)
{
    for (unsigned i = 0; i < s->nstage; i++)
        stage_push(&s->stage[i]);
    s->nstage = 0;
}

static void stage_flush_to(nsys__sched_t *s, nsys__actor_t *a)
{
    for (unsigned i = 0; i < s->nstage; i++) {
        if (s->stage[i].to == a) {
            stage_push(&s->stage[i]);
            s->stage[i] = s->stage[--s->nstage];
            return;
        }
    }
}

/* Chains n for `a` (on another scheduler) until the turn ends. */
static void stage(nsys__sched_t *s, nsys__actor_t *a, nsys__node_t *n)
{
    nsys__mpsc_node_t *link = &n->hdr.link;
    atomic_store_explicit(&link->next, NULL, memory_order_relaxed);
    for (unsigned i = 0; i < s->nstage; i++) {
        nsys__stage_t *st = &s->stage[i];
        if (st->to != a)
            continue;
        atomic_store_explicit(&st->last->next, link, memory_order_relaxed);
        st->last = link;
        if (++st->count >= NSYS__STAGE_MAX_CHAIN) {
            stage_push(st);
            s->stage[i] = s->stage[--s->nstage];
        }
        return;
    }
    if (s->nstage == NSYS__STAGE_TARGETS)
        nsys__stage_flush(s);
    s->stage[s->nstage++] = (nsys__stage_t){.to = a, .first = link, .last = link, .count = 1};
}

int nsys__send_node_from(nsys_runtime_t *rt, nsys__sched_t *s, nsys_ref_t to, nsys__node_t *n)
{
    bool internal = s != NULL;
    nsys__actor_t *a = nsys__acquire(rt, to, internal);
    if (a == NULL) {
        nsys__dead_letter(rt, n->msg.type, to);
        return NSYS_ENOACTOR;
    }
    /* Inside a turn, a message to another scheduler waits for the turn's end
     * (the epoch keeps `a` from being reclaimed until then). The runtime's
     * own signals (monitor, link, exit) never wait: they must be in place
     * before the caller's next step. */
    bool staged = false;
    if (internal && nsys__tls_actor != NULL && a->sched != s) {
        staged = n->msg.type >= NSYS_MSG_SYSTEM_MAX;
        if (staged)
            stage(s, a, n);
        else
            stage_flush_to(s, a); /* what we sent it before goes first */
    }
    if (!staged && nsys__mailbox_push(&a->mb, &n->hdr.link))
        nsys__schedule(a);
    nsys__release(rt, a, internal);
    if (internal)
        nsys__counter_add(&s->sent, 1);
    else
        atomic_fetch_add_explicit(&rt->ext_sent, 1, memory_order_relaxed);
    return 0;
}

int nsys__send_sys(nsys_runtime_t *rt, nsys_ref_t from, nsys_ref_t to, uint32_t type,
                   const nsys__sysmsg_t *sm)
{
    nsys__node_t *n = nsys__node_alloc(rt);
    if (n == NULL)
        return NSYS_ENOMEM;
    n->msg.type = type;
    n->msg.from = from;
    if (sm != NULL)
        nsys__node_fill_copy(n, sm, sizeof *sm);
    int rc = nsys__send_node(rt, to, n);
    if (rc != 0)
        nsys__node_free(rt, n);
    return rc;
}

/* The public sends: the caller's scheduler is looked up once, and threads
 * outside the runtime pass the stop gate. */
typedef struct sender {
    nsys__sched_t *s; /* NULL outside the runtime */
    nsys_ref_t from;
} sender_t;

static int begin_send(nsys_runtime_t *rt, uint32_t type, sender_t *who)
{
    if (rt == NULL || type < NSYS_MSG_SYSTEM_MAX)
        return NSYS_EINVAL;
    nsys__sched_t *s = nsys__tls_sched;
    if (s != NULL && s->rt == rt) {
        nsys__actor_t *cur = nsys__tls_actor;
        who->s = s;
        who->from = cur != NULL ? cur->self : NSYS_REF_NONE;
        return 0;
    }
    who->s = NULL;
    who->from = NSYS_REF_NONE;
    bool internal;
    return nsys__gate_enter(rt, &internal);
}

static void end_send(nsys_runtime_t *rt, const sender_t *who)
{
    nsys__gate_leave(rt, who->s != NULL);
}

static int finish_send(nsys_runtime_t *rt, nsys_ref_t to, nsys__node_t *n, const sender_t *who)
{
    n->msg.from = who->from;
    int rc = nsys__send_node_from(rt, who->s, to, n);
    end_send(rt, who);
    return rc;
}

int nsys_send(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, const void *data, size_t size)
{
    if (data == NULL && size > 0)
        return NSYS_EINVAL;
    sender_t who;
    int rc = begin_send(rt, type, &who);
    if (rc != 0)
        return rc;
    nsys__node_t *n = nsys__node_alloc_in(rt, who.s != NULL ? &who.s->pool : NULL);
    if (n == NULL || nsys__node_fill_copy(n, data, size) != 0) {
        nsys__node_free(rt, n);
        end_send(rt, &who);
        return NSYS_ENOMEM;
    }
    n->msg.type = type;
    rc = finish_send(rt, to, n, &who);
    if (rc != 0) {
        nsys__node_release_payload(n); /* our own copy */
        nsys__node_free(rt, n);
    }
    return rc;
}

int nsys_send_buf(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, nsys_buf_t *buf)
{
    if (buf == NULL)
        return NSYS_EINVAL;
    sender_t who;
    int rc = begin_send(rt, type, &who);
    if (rc != 0)
        return rc;
    nsys__node_t *n = nsys__node_alloc_in(rt, who.s != NULL ? &who.s->pool : NULL);
    if (n == NULL) {
        end_send(rt, &who);
        return NSYS_ENOMEM;
    }
    n->hdr.kind = NSYS__NODE_BUF;
    n->own.buf = buf;
    n->msg.type = type;
    n->msg.data = nsys_buf_data(buf);
    n->msg.size = nsys_buf_len(buf);
    rc = finish_send(rt, to, n, &who);
    if (rc != 0)
        nsys__node_free(rt, n); /* the caller keeps buf */
    return rc;
}

int nsys_send_ptr(nsys_runtime_t *rt, nsys_ref_t to, uint32_t type, void *ptr, size_t size,
                  void (*free_fn)(void *))
{
    sender_t who;
    int rc = begin_send(rt, type, &who);
    if (rc != 0)
        return rc;
    nsys__node_t *n = nsys__node_alloc_in(rt, who.s != NULL ? &who.s->pool : NULL);
    if (n == NULL) {
        end_send(rt, &who);
        return NSYS_ENOMEM;
    }
    n->hdr.kind = NSYS__NODE_PTR;
    n->own.free_fn = free_fn;
    n->msg.type = type;
    n->msg.data = ptr;
    n->msg.size = size;
    rc = finish_send(rt, to, n, &who);
    if (rc != 0)
        nsys__node_free(rt, n); /* the caller keeps ptr */
    return rc;
}

/* runtime/mpsc.h — the two lock-free multi-producer single-consumer queues
 * the runtime is built on. Private to the runtime (and its benchmarks).
 *
 * nsys__mailbox_t: an actor's mailbox (Vyukov's non-intrusive queue, with
 *   Pony's empty mark). A push is one atomic exchange plus a release store.
 *   The consumer marks the queue empty when it parks the actor; the one push
 *   that finds the mark learns that the actor was idle and must schedule it,
 *   so exactly one sender schedules and no wake-up is lost. The node a pop
 *   returns becomes the queue's stub; the previous stub is handed back to the
 *   caller to free.
 *
 * nsys__runq_t: a scheduler's queue of ready actors (Vyukov's intrusive queue
 *   with an embedded stub): nodes live inside the actors, nothing allocates.
 *
 * Not for: anything with more than one consumer.
 */
#ifndef NSYS_RUNTIME_MPSC_H
#define NSYS_RUNTIME_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nsys__mpsc_node {
    _Atomic(struct nsys__mpsc_node *) next;
} nsys__mpsc_node_t;

/* ---- mailbox ------------------------------------------------------------ */

typedef struct nsys__mailbox {
    _Atomic(uintptr_t) head; /* producers; low bit = "marked empty" */
    nsys__mpsc_node_t *tail; /* consumer; the current stub */
} nsys__mailbox_t;

static inline void nsys__mailbox_init(nsys__mailbox_t *mb, nsys__mpsc_node_t *stub)
{
    atomic_store_explicit(&stub->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&mb->head, (uintptr_t)stub, memory_order_relaxed);
    mb->tail = stub;
}

/* Any thread. Returns true when the queue had been marked empty: the caller
 * is the one sender that must schedule the consumer. */
static inline bool nsys__mailbox_push(nsys__mailbox_t *mb, nsys__mpsc_node_t *node)
{
    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    uintptr_t prev = atomic_exchange_explicit(&mb->head, (uintptr_t)node, memory_order_acq_rel);
    nsys__mpsc_node_t *p = (nsys__mpsc_node_t *)(prev & ~(uintptr_t)1);
    atomic_store_explicit(&p->next, node, memory_order_release);
    return (prev & 1) != 0;
}

/* Any thread. Pushes a chain first..last, already linked through `next`
 * (plain stores by the caller are fine: the release below publishes them), in
 * one exchange. Same return as nsys__mailbox_push. */
static inline bool nsys__mailbox_push_chain(nsys__mailbox_t *mb, nsys__mpsc_node_t *first,
                                            nsys__mpsc_node_t *last)
{
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    uintptr_t prev = atomic_exchange_explicit(&mb->head, (uintptr_t)last, memory_order_acq_rel);
    nsys__mpsc_node_t *p = (nsys__mpsc_node_t *)(prev & ~(uintptr_t)1);
    atomic_store_explicit(&p->next, first, memory_order_release);
    return (prev & 1) != 0;
}

/* Consumer only. Returns the next node or NULL (empty, or a push not yet
 * linked). On success *old_stub receives the node that stops being the stub;
 * the caller owns it from then on. */
static inline nsys__mpsc_node_t *nsys__mailbox_pop(nsys__mailbox_t *mb, nsys__mpsc_node_t **old_stub)
{
    nsys__mpsc_node_t *tail = mb->tail;
    nsys__mpsc_node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next == NULL)
        return NULL;
    mb->tail = next;
    *old_stub = tail;
    return next;
}

/* Consumer only. Marks the queue empty if nothing was pushed since the last
 * pop; on failure the caller must keep running the consumer. */
static inline bool nsys__mailbox_mark_empty(nsys__mailbox_t *mb)
{
    uintptr_t expected = (uintptr_t)mb->tail;
    return atomic_compare_exchange_strong_explicit(&mb->head, &expected, expected | 1,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

/* Consumer only. Clears the empty mark so that later pushes schedule nobody;
 * false if a push already took the mark (that pusher schedules). */
static inline bool nsys__mailbox_unmark(nsys__mailbox_t *mb)
{
    uintptr_t expected = (uintptr_t)mb->tail | 1;
    return atomic_compare_exchange_strong_explicit(&mb->head, &expected, (uintptr_t)mb->tail,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

/* ---- run queue ---------------------------------------------------------- */

typedef struct nsys__runq {
    _Atomic(nsys__mpsc_node_t *) head; /* producers */
    char pad_[64 - sizeof(void *)];
    nsys__mpsc_node_t *tail; /* consumer */
    nsys__mpsc_node_t stub;
} nsys__runq_t;

static inline void nsys__runq_init(nsys__runq_t *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

static inline void nsys__runq_push(nsys__runq_t *q, nsys__mpsc_node_t *node)
{
    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    nsys__mpsc_node_t *prev = atomic_exchange_explicit(&q->head, node, memory_order_seq_cst);
    atomic_store_explicit(&prev->next, node, memory_order_release);
}

/* Consumer only; NULL when empty or when a push is half done. */
static inline nsys__mpsc_node_t *nsys__runq_pop(nsys__runq_t *q)
{
    nsys__mpsc_node_t *tail = q->tail;
    nsys__mpsc_node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL;
    nsys__runq_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

/* Consumer only: false means certainly empty (no push started). seq_cst so
 * that it pairs with a producer's wake-up check (Dekker). */
static inline bool nsys__runq_maybe_nonempty(nsys__runq_t *q)
{
    return atomic_load_explicit(&q->head, memory_order_seq_cst) != &q->stub || q->tail != &q->stub;
}

#endif

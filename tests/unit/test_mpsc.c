/* tests/unit/test_mpsc.c — the runtime's private lock-free queues
 * (runtime/mpsc.h): mailbox push/pop/mark/unmark protocol, run queue order
 * and re-queueing, and exact accounting with several producer threads. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/wait.h"
#include "runtime/mpsc.h"

typedef struct item {
    nsys__mpsc_node_t node; /* first, so a node pointer is an item pointer */
    uint32_t producer;
    uint64_t seq;
} item_t;

static item_t *as_item(nsys__mpsc_node_t *n)
{
    return (item_t *)(void *)n;
}

/* A consumer's wait step: yield (never sleep: producers are busy and a
 * sleeping consumer only slows the test), false once the deadline passed. */
static bool spin_until(uint64_t deadline_ns)
{
    sched_yield();
    return t_now_ns() < deadline_ns;
}

/* ---- mailbox, single thread -------------------------------------------- */

Test(mailbox, starts_empty_and_unmarked)
{
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    nsys__mailbox_init(&mb, &stub);
    nsys__mpsc_node_t *old = NULL;
    cr_assert_null(nsys__mailbox_pop(&mb, &old));
    item_t a = {.producer = 0, .seq = 1};
    cr_assert_not(nsys__mailbox_push(&mb, &a.node), "an unmarked mailbox asked to be scheduled");
}

Test(mailbox, pops_in_push_order_and_hands_back_the_previous_stub)
{
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    nsys__mailbox_init(&mb, &stub);
    item_t it[5];
    for (int i = 0; i < 5; i++) {
        it[i].seq = (uint64_t)i;
        nsys__mailbox_push(&mb, &it[i].node);
    }
    nsys__mpsc_node_t *prev_stub = &stub;
    for (int i = 0; i < 5; i++) {
        nsys__mpsc_node_t *old = NULL;
        nsys__mpsc_node_t *n = nsys__mailbox_pop(&mb, &old);
        cr_assert_eq(n, &it[i].node, "pop %d returned the wrong node", i);
        cr_assert_eq(as_item(n)->seq, (uint64_t)i);
        cr_assert_eq(old, prev_stub, "pop %d handed back the wrong stub", i);
        prev_stub = n;
    }
    nsys__mpsc_node_t *old = NULL;
    cr_assert_null(nsys__mailbox_pop(&mb, &old));
}

Test(mailbox, push_after_mark_empty_returns_true_exactly_once)
{
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    nsys__mailbox_init(&mb, &stub);
    cr_assert(nsys__mailbox_mark_empty(&mb), "an empty mailbox could not be marked");
    item_t a, b, c;
    cr_assert(nsys__mailbox_push(&mb, &a.node), "the first push after the mark must schedule");
    cr_assert_not(nsys__mailbox_push(&mb, &b.node), "a second push scheduled too");
    cr_assert_not(nsys__mailbox_push(&mb, &c.node));
    nsys__mpsc_node_t *old;
    cr_assert_eq(nsys__mailbox_pop(&mb, &old), &a.node);
    cr_assert_eq(nsys__mailbox_pop(&mb, &old), &b.node);
    cr_assert_eq(nsys__mailbox_pop(&mb, &old), &c.node);
    cr_assert_null(nsys__mailbox_pop(&mb, &old));
    /* and again, after draining */
    cr_assert(nsys__mailbox_mark_empty(&mb));
    item_t d;
    cr_assert(nsys__mailbox_push(&mb, &d.node));
}

Test(mailbox, mark_empty_fails_while_messages_are_pending)
{
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    nsys__mailbox_init(&mb, &stub);
    item_t a, b;
    nsys__mailbox_push(&mb, &a.node);
    cr_assert_not(nsys__mailbox_mark_empty(&mb), "marked empty with a message pending");
    nsys__mpsc_node_t *old;
    cr_assert_eq(nsys__mailbox_pop(&mb, &old), &a.node);
    cr_assert(nsys__mailbox_mark_empty(&mb));
    cr_assert(nsys__mailbox_push(&mb, &b.node));
    /* the mark was consumed by that push: marking needs another drain */
    cr_assert_not(nsys__mailbox_mark_empty(&mb));
}

Test(mailbox, unmark_undoes_the_mark_unless_a_push_took_it)
{
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    nsys__mailbox_init(&mb, &stub);
    cr_assert(nsys__mailbox_mark_empty(&mb));
    cr_assert(nsys__mailbox_unmark(&mb));
    item_t a, b;
    cr_assert_not(nsys__mailbox_push(&mb, &a.node), "push after unmark still scheduled");
    nsys__mpsc_node_t *old;
    cr_assert_eq(nsys__mailbox_pop(&mb, &old), &a.node);
    cr_assert(nsys__mailbox_mark_empty(&mb));
    cr_assert(nsys__mailbox_push(&mb, &b.node));
    cr_assert_not(nsys__mailbox_unmark(&mb), "unmark succeeded although a push took the mark");
    cr_assert_eq(nsys__mailbox_pop(&mb, &old), &b.node);
}

Test(mailbox, unmark_without_a_mark_fails)
{
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    nsys__mailbox_init(&mb, &stub);
    cr_assert_not(nsys__mailbox_unmark(&mb));
}

/* ---- mailbox, several producers ----------------------------------------- */

#define PRODUCERS 4
#if T_SANITIZED
#define PER_PRODUCER 50000u
#else
#define PER_PRODUCER 300000u
#endif

typedef struct mb_shared {
    nsys__mailbox_t mb;
    nsys__mpsc_node_t stub;
    item_t *items[PRODUCERS];
    atomic_long schedules; /* pushes that returned true */
    atomic_int go;
} mb_shared_t;

typedef struct mb_producer {
    mb_shared_t *s;
    uint32_t id;
} mb_producer_t;

static void *mb_producer_main(void *arg)
{
    mb_producer_t *p = arg;
    while (!atomic_load(&p->s->go))
        sched_yield();
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        item_t *it = &p->s->items[p->id][i];
        it->producer = p->id;
        it->seq = i;
        if (nsys__mailbox_push(&p->s->mb, &it->node))
            atomic_fetch_add(&p->s->schedules, 1);
    }
    return NULL;
}

Test(mailbox, several_producers_lose_nothing_and_exactly_one_push_per_mark_schedules, .timeout = 120)
{
    mb_shared_t *s = calloc(1, sizeof(*s));
    nsys__mailbox_init(&s->mb, &s->stub);
    for (int p = 0; p < PRODUCERS; p++)
        s->items[p] = calloc(PER_PRODUCER, sizeof(item_t));
    pthread_t th[PRODUCERS];
    mb_producer_t prod[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        prod[p] = (mb_producer_t){s, (uint32_t)p};
        cr_assert_eq(pthread_create(&th[p], NULL, mb_producer_main, &prod[p]), 0);
    }
    atomic_store(&s->go, 1);

    /* The consumer: pop; when empty, try to park (mark). While parked it may
     * not pop until a producer's push reported the mark (the "schedule"). */
    uint64_t next[PRODUCERS] = {0};
    uint64_t total = 0, out_of_order = 0, marks = 0;
    const uint64_t want = (uint64_t)PRODUCERS * PER_PRODUCER;
    uint64_t deadline = t_now_ns() + 100000ull * 1000000u;
    while (total < want) {
        nsys__mpsc_node_t *old = NULL;
        nsys__mpsc_node_t *n = nsys__mailbox_pop(&s->mb, &old);
        if (n != NULL) {
            item_t *it = as_item(n);
            if (it->seq != next[it->producer])
                out_of_order++;
            next[it->producer] = it->seq + 1;
            total++;
            continue;
        }
        if (nsys__mailbox_mark_empty(&s->mb)) {
            marks++;
            /* parked: wait for the one push that saw the mark */
            while (atomic_load(&s->schedules) < (long)marks && spin_until(deadline)) {
            }
            cr_assert_eq(atomic_load(&s->schedules), (long)marks, "a push after the mark did not schedule");
        } else if (!spin_until(deadline)) {
            break;
        }
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(th[p], NULL);
    cr_assert_eq(total, want, "popped %llu of %llu", (unsigned long long)total, (unsigned long long)want);
    cr_assert_eq(out_of_order, 0, "per-producer order broken %llu times", (unsigned long long)out_of_order);
    for (int p = 0; p < PRODUCERS; p++)
        cr_assert_eq(next[p], PER_PRODUCER);
    nsys__mpsc_node_t *old = NULL;
    cr_assert_null(nsys__mailbox_pop(&s->mb, &old));
    cr_assert_eq(atomic_load(&s->schedules), (long)marks, "schedules (%ld) != marks (%llu)",
                 atomic_load(&s->schedules), (unsigned long long)marks);
    for (int p = 0; p < PRODUCERS; p++)
        free(s->items[p]);
    free(s);
}

/* ---- run queue ------------------------------------------------------------ */

Test(runq, pops_in_push_order_including_the_last_node)
{
    nsys__runq_t q;
    nsys__runq_init(&q);
    cr_assert_not(nsys__runq_maybe_nonempty(&q));
    cr_assert_null(nsys__runq_pop(&q));
    item_t it[4];
    for (int i = 0; i < 4; i++) {
        it[i].seq = (uint64_t)i;
        nsys__runq_push(&q, &it[i].node);
    }
    cr_assert(nsys__runq_maybe_nonempty(&q));
    for (int i = 0; i < 4; i++) {
        nsys__mpsc_node_t *n = nsys__runq_pop(&q);
        cr_assert_eq(n, &it[i].node, "pop %d", i);
    }
    cr_assert_null(nsys__runq_pop(&q));
    cr_assert_not(nsys__runq_maybe_nonempty(&q), "an emptied run queue looks non-empty");
}

Test(runq, a_single_node_goes_in_and_out_repeatedly)
{
    nsys__runq_t q;
    nsys__runq_init(&q);
    item_t a;
    for (int round = 0; round < 1000; round++) {
        nsys__runq_push(&q, &a.node);
        cr_assert_eq(nsys__runq_pop(&q), &a.node, "round %d", round);
        cr_assert_null(nsys__runq_pop(&q));
    }
}

Test(runq, popped_nodes_can_be_pushed_again_behind_the_others)
{
    nsys__runq_t q;
    nsys__runq_init(&q);
    item_t a, b, c;
    nsys__runq_push(&q, &a.node);
    nsys__runq_push(&q, &b.node);
    cr_assert_eq(nsys__runq_pop(&q), &a.node);
    nsys__runq_push(&q, &a.node); /* a ran its batch and is ready again */
    nsys__runq_push(&q, &c.node);
    cr_assert_eq(nsys__runq_pop(&q), &b.node);
    cr_assert_eq(nsys__runq_pop(&q), &a.node);
    cr_assert_eq(nsys__runq_pop(&q), &c.node);
    cr_assert_null(nsys__runq_pop(&q));
}

typedef struct rq_shared {
    nsys__runq_t q;
    item_t *items[PRODUCERS];
    atomic_int go;
} rq_shared_t;

typedef struct rq_producer {
    rq_shared_t *s;
    uint32_t id;
} rq_producer_t;

static void *rq_producer_main(void *arg)
{
    rq_producer_t *p = arg;
    while (!atomic_load(&p->s->go))
        sched_yield();
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        item_t *it = &p->s->items[p->id][i];
        it->producer = p->id;
        it->seq = i;
        nsys__runq_push(&p->s->q, &it->node);
    }
    return NULL;
}

Test(runq, several_producers_lose_nothing_and_keep_their_order, .timeout = 120)
{
    rq_shared_t *s = calloc(1, sizeof(*s));
    nsys__runq_init(&s->q);
    for (int p = 0; p < PRODUCERS; p++)
        s->items[p] = calloc(PER_PRODUCER, sizeof(item_t));
    pthread_t th[PRODUCERS];
    rq_producer_t prod[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        prod[p] = (rq_producer_t){s, (uint32_t)p};
        cr_assert_eq(pthread_create(&th[p], NULL, rq_producer_main, &prod[p]), 0);
    }
    atomic_store(&s->go, 1);
    uint64_t next[PRODUCERS] = {0};
    uint64_t total = 0, out_of_order = 0;
    const uint64_t want = (uint64_t)PRODUCERS * PER_PRODUCER;
    uint64_t deadline = t_now_ns() + 100000ull * 1000000u;
    while (total < want) {
        nsys__mpsc_node_t *n = nsys__runq_pop(&s->q);
        if (n == NULL) {
            if (!spin_until(deadline))
                break;
            continue;
        }
        cr_assert_neq(n, &s->q.stub, "the run queue handed out its stub");
        item_t *it = as_item(n);
        if (it->seq != next[it->producer])
            out_of_order++;
        next[it->producer] = it->seq + 1;
        total++;
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(th[p], NULL);
    cr_assert_eq(total, want, "popped %llu of %llu", (unsigned long long)total, (unsigned long long)want);
    cr_assert_eq(out_of_order, 0);
    cr_assert_null(nsys__runq_pop(&s->q));
    cr_assert_not(nsys__runq_maybe_nonempty(&s->q));
    for (int p = 0; p < PRODUCERS; p++)
        free(s->items[p]);
    free(s);
}

typedef struct requeue_shared {
    nsys__runq_t q;
    item_t actors[64];
    atomic_int queued[64]; /* 1 while an actor is in the queue */
    atomic_long pushes;
    atomic_long double_queued;
    atomic_int stop;
} requeue_shared_t;

static void *requeue_producer(void *arg)
{
    requeue_shared_t *s = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    while (!atomic_load(&s->stop)) {
        int i = (int)(rand_r(&seed) % 64);
        int expected = 0;
        /* like a mailbox push that found the actor idle: only one schedules */
        if (atomic_compare_exchange_strong(&s->queued[i], &expected, 1)) {
            nsys__runq_push(&s->q, &s->actors[i].node);
            atomic_fetch_add(&s->pushes, 1);
        } else {
            sched_yield();
        }
    }
    return NULL;
}

Test(runq, actors_requeued_by_many_threads_come_out_once_per_push, .timeout = 120)
{
    requeue_shared_t *s = calloc(1, sizeof(*s));
    nsys__runq_init(&s->q);
    for (int i = 0; i < 64; i++)
        s->actors[i].seq = (uint64_t)i;
    pthread_t th[3];
    for (int t = 0; t < 3; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, requeue_producer, s), 0);
    long pops = 0, bad = 0;
    const long want = T_SANITIZED ? 50000 : 300000;
    uint64_t deadline = t_now_ns() + 100000ull * 1000000u;
    while (pops < want) {
        nsys__mpsc_node_t *n = nsys__runq_pop(&s->q);
        if (n == NULL) {
            if (!spin_until(deadline))
                break;
            continue;
        }
        int i = (int)as_item(n)->seq;
        if (atomic_exchange(&s->queued[i], 0) != 1)
            bad++;
        pops++;
    }
    atomic_store(&s->stop, 1);
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    /* drain what is left */
    nsys__mpsc_node_t *n;
    t_poll_t drain = t_poll_begin(10000);
    while (pops < atomic_load(&s->pushes) && t_poll_continue(&drain)) {
        while ((n = nsys__runq_pop(&s->q)) != NULL) {
            if (atomic_exchange(&s->queued[(int)as_item(n)->seq], 0) != 1)
                bad++;
            pops++;
        }
    }
    cr_assert_eq(bad, 0, "%ld nodes popped that were not queued", bad);
    cr_assert_eq(pops, atomic_load(&s->pushes), "%ld pops for %ld pushes", pops, atomic_load(&s->pushes));
    free(s);
}

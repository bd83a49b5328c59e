/* tests/unit/test_messaging.c — nsys_send / send_buf / send_ptr and taking
 * payloads: per-sender FIFO, nothing lost or duplicated under load, zero-copy
 * buffers, pointer ownership (free_fn exactly once, never on error), reserved
 * types, payload sizes, fairness between actors. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/probe.h"
#include "common/wait.h"

#define T_MSG_SEQ (NSYS_MSG_USER + 10u)
#define T_MSG_GO (NSYS_MSG_USER + 11u)

/* ---- a receiver that checks sequences ------------------------------------ */

typedef struct seq_msg {
    uint32_t producer;
    uint32_t pad;
    uint64_t seq;
} seq_msg_t;

/* Written only by the receiver's callbacks (never concurrent); the test reads
 * it after `received` reaches the total. */
typedef struct tally {
    unsigned producers;
    uint64_t per_producer;
    uint64_t window;
    uint64_t *last;      /* last seq + 1 per producer, 0 = none yet */
    uint64_t *count;     /* per producer */
    uint8_t **seen;      /* bitmap per producer */
    uint64_t duplicates;
    uint64_t out_of_order;
    uint64_t malformed;
    uint64_t concurrent;
    atomic_int in_handle;
    atomic_uint_fast64_t received;
    atomic_uint_fast64_t sent; /* producers' total, for the flow-control window */
} tally_t;

static tally_t *tally_new(unsigned producers, uint64_t per, uint64_t window)
{
    tally_t *t = calloc(1, sizeof(*t));
    t->producers = producers;
    t->per_producer = per;
    t->window = window;
    t->last = calloc(producers, sizeof(uint64_t));
    t->count = calloc(producers, sizeof(uint64_t));
    t->seen = calloc(producers, sizeof(uint8_t *));
    for (unsigned i = 0; i < producers; i++)
        t->seen[i] = calloc((size_t)(per / 8 + 1), 1);
    return t;
}

static void tally_free(tally_t *t)
{
    for (unsigned i = 0; i < t->producers; i++)
        free(t->seen[i]);
    free(t->seen);
    free(t->last);
    free(t->count);
    free(t);
}

static int tally_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    *(tally_t **)state = args;
    return 0;
}

static int tally_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    tally_t *t = *(tally_t **)state;
    if (atomic_fetch_add(&t->in_handle, 1) != 0)
        t->concurrent++;
    if (msg->type != T_MSG_SEQ || msg->size != sizeof(seq_msg_t)) {
        t->malformed++;
    } else {
        seq_msg_t m;
        memcpy(&m, msg->data, sizeof(m));
        if (m.producer >= t->producers || m.seq >= t->per_producer) {
            t->malformed++;
        } else {
            uint8_t *bits = t->seen[m.producer];
            if (bits[m.seq / 8] & (1u << (m.seq % 8)))
                t->duplicates++;
            bits[m.seq / 8] |= (uint8_t)(1u << (m.seq % 8));
            if (m.seq + 1 <= t->last[m.producer])
                t->out_of_order++;
            t->last[m.producer] = m.seq + 1;
            t->count[m.producer]++;
        }
    }
    atomic_fetch_sub(&t->in_handle, 1);
    atomic_fetch_add(&t->received, 1);
    return 0;
}

static const nsys_behaviour_t tally_b = {
    .name = "test.tally",
    .state_size = sizeof(tally_t *),
    .init = tally_init,
    .handle = tally_handle,
};

static void tally_check(tally_t *t)
{
    cr_assert_eq(t->malformed, 0);
    cr_assert_eq(t->duplicates, 0, "%llu duplicated messages", (unsigned long long)t->duplicates);
    cr_assert_eq(t->out_of_order, 0, "%llu messages broke per-sender order", (unsigned long long)t->out_of_order);
    cr_assert_eq(t->concurrent, 0, "handle ran concurrently with itself");
    for (unsigned p = 0; p < t->producers; p++) {
        cr_assert_eq(t->count[p], t->per_producer, "producer %u: %llu of %llu arrived", p,
                     (unsigned long long)t->count[p], (unsigned long long)t->per_producer);
        for (uint64_t s = 0; s < t->per_producer; s++)
            if (!(t->seen[p][s / 8] & (1u << (s % 8))))
                cr_assert_fail("producer %u message %llu lost", p, (unsigned long long)s);
    }
}

/* Keeps at most `window` messages in flight so memory stays bounded. */
static bool window_open(tally_t *t)
{
    return atomic_load(&t->sent) - atomic_load(&t->received) < t->window;
}

/* ---- producers as threads ------------------------------------------------- */

typedef struct thread_producer {
    nsys_runtime_t *rt;
    nsys_ref_t to;
    tally_t *t;
    uint32_t id;
    uint64_t errors;
} thread_producer_t;

static void *thread_producer_main(void *arg)
{
    thread_producer_t *p = arg;
    for (uint64_t s = 0; s < p->t->per_producer; s++) {
        while (!window_open(p->t))
            sched_yield();
        seq_msg_t m = {p->id, 0, s};
        atomic_fetch_add(&p->t->sent, 1);
        if (nsys_send(p->rt, p->to, T_MSG_SEQ, &m, sizeof(m)) != 0) {
            p->errors++;
            atomic_fetch_sub(&p->t->sent, 1);
        }
    }
    return NULL;
}

static void run_thread_producers(unsigned scheds, unsigned nprod, uint64_t per)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(scheds, &rt), 0);
    tally_t *t = tally_new(nprod, per, 1u << 15);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = t;
    nsys_ref_t recv;
    cr_assert_eq(nsys_spawn(rt, &tally_b, &o, &recv), 0);
    thread_producer_t *p = calloc(nprod, sizeof(*p));
    pthread_t *th = calloc(nprod, sizeof(*th));
    for (unsigned i = 0; i < nprod; i++) {
        p[i] = (thread_producer_t){rt, recv, t, i, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, thread_producer_main, &p[i]), 0);
    }
    for (unsigned i = 0; i < nprod; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(p[i].errors, 0, "producer %u had send errors", i);
    }
    uint64_t total = (uint64_t)nprod * per;
    T_WAIT(atomic_load(&t->received) >= total, 120000);
    cr_assert_eq(atomic_load(&t->received), total, "received %llu of %llu",
                 (unsigned long long)atomic_load(&t->received), (unsigned long long)total);
    tally_check(t);
    T_RUNTIME_FREE(rt);
    tally_free(t);
    free(p);
    free(th);
}

Test(messaging, preserves_per_sender_fifo_order_from_outside_threads, .timeout = 300)
{
    run_thread_producers(2, 4, 100000);
}

Test(messaging, preserves_fifo_order_on_a_single_scheduler, .timeout = 300)
{
    run_thread_producers(1, 3, 50000);
}

/* ---- producers as actors -------------------------------------------------- */

#define CHUNK 256

typedef struct actor_producer {
    tally_t *t;
    nsys_ref_t to;
    uint32_t id;
    uint64_t next;
    uint64_t errors;
    atomic_int done;
} actor_producer_t;

static int producer_init(nsys_ctx_t *ctx, void *state, void *args)
{
    *(actor_producer_t **)state = args;
    return nsys_send(nsys_ctx_runtime(ctx), nsys_self(ctx), T_MSG_GO, NULL, 0);
}

static int producer_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    actor_producer_t *p = *(actor_producer_t **)state;
    if (msg->type != T_MSG_GO)
        return 0;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    for (int i = 0; i < CHUNK && p->next < p->t->per_producer && window_open(p->t); i++) {
        seq_msg_t m = {p->id, 0, p->next};
        atomic_fetch_add(&p->t->sent, 1);
        if (nsys_send(rt, p->to, T_MSG_SEQ, &m, sizeof(m)) != 0) {
            p->errors++;
            atomic_fetch_sub(&p->t->sent, 1);
        }
        p->next++;
    }
    if (p->next < p->t->per_producer)
        return nsys_send(rt, nsys_self(ctx), T_MSG_GO, NULL, 0);
    atomic_store(&p->done, 1);
    nsys_exit(ctx, NSYS_REASON_NORMAL);
    return 0;
}

static const nsys_behaviour_t producer_b = {
    .name = "test.producer",
    .state_size = sizeof(actor_producer_t *),
    .init = producer_init,
    .handle = producer_handle,
};

static void run_actor_producers(unsigned scheds, unsigned nprod, uint64_t per)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(scheds, &rt), 0);
    tally_t *t = tally_new(nprod, per, 1u << 16);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = t;
    nsys_ref_t recv;
    cr_assert_eq(nsys_spawn(rt, &tally_b, &o, &recv), 0);
    actor_producer_t *p = calloc(nprod, sizeof(*p));
    for (unsigned i = 0; i < nprod; i++) {
        p[i].t = t;
        p[i].to = recv;
        p[i].id = i;
        nsys_spawn_opts_t po = NSYS_SPAWN_OPTS_DEFAULTS;
        po.args = &p[i];
        cr_assert_eq(nsys_spawn(rt, &producer_b, &po, NULL), 0);
    }
    uint64_t total = (uint64_t)nprod * per;
    T_WAIT(atomic_load(&t->received) >= total, 280000);
    cr_assert_eq(atomic_load(&t->received), total, "received %llu of %llu",
                 (unsigned long long)atomic_load(&t->received), (unsigned long long)total);
    for (unsigned i = 0; i < nprod; i++) {
        T_ASSERT_EVENTUALLY(atomic_load(&p[i].done) == 1);
        cr_assert_eq(p[i].errors, 0, "producer %u had send errors", i);
    }
    tally_check(t);
    nsys_metrics_t m;
    cr_assert_eq(nsys_metrics_get(rt, &m), 0);
    cr_assert_geq(m.messages_sent, total);
    cr_assert_geq(m.messages_handled, total);
    T_RUNTIME_FREE(rt);
    tally_free(t);
    free(p);
}

Test(messaging, four_producer_actors_send_a_million_each_with_none_lost_or_duplicated, .timeout = 300)
{
    run_actor_producers(2, 4, 1000000);
}

Test(messaging, producers_and_receiver_on_four_schedulers_lose_nothing, .timeout = 300)
{
    run_actor_producers(4, 6, 50000);
}

/* ---- sender, payload copies ---------------------------------------------- */

Test(messaging, send_from_outside_has_no_sender_and_copies_the_payload)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    char buf[16] = "original";
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, buf, 9), 0);
    memcpy(buf, "CHANGED!", 9); /* the sender may reuse its memory at once */
    cr_assert(t_recs_wait_count(&p.inbox, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&p.inbox, 0, &r);
    cr_assert_eq(r.type, T_MSG_A);
    cr_assert_eq(r.from, NSYS_REF_NONE);
    cr_assert_eq(r.size, 9);
    cr_assert_str_eq((const char *)r.bytes, "original");
    cr_assert_neq(r.data, (const void *)buf);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

typedef struct send_arg {
    nsys_ref_t to;
    int rc;
} send_arg_t;

static int fn_send_hello(nsys_ctx_t *ctx, void *arg)
{
    send_arg_t *a = arg;
    a->rc = nsys_send(nsys_ctx_runtime(ctx), a->to == NSYS_REF_NONE ? nsys_self(ctx) : a->to, T_MSG_B, "hi", 3);
    return a->rc;
}

Test(messaging, send_from_an_actor_stamps_it_as_the_sender)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t a, b;
    t_probe_init(&a);
    t_probe_init(&b);
    nsys_ref_t ra, rb;
    cr_assert_eq(t_probe_spawn(rt, &a, NULL, &ra), 0);
    cr_assert_eq(t_probe_spawn(rt, &b, NULL, &rb), 0);
    send_arg_t s = {rb, -1};
    cr_assert_eq(t_call(rt, ra, fn_send_hello, &s, NULL), 0);
    cr_assert_eq(s.rc, 0);
    send_arg_t self = {NSYS_REF_NONE, -1};
    cr_assert_eq(t_call(rt, ra, fn_send_hello, &self, NULL), 0);
    cr_assert_eq(self.rc, 0);
    cr_assert(t_recs_wait_count(&b.inbox, 1, T_WAIT_MS));
    cr_assert(t_recs_wait_count(&a.inbox, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&b.inbox, 0, &r);
    cr_assert_eq(r.from, ra);
    cr_assert_str_eq((const char *)r.bytes, "hi");
    t_recs_get(&a.inbox, 0, &r);
    cr_assert_eq(r.from, ra, "a message to self is from self");
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&a);
    t_probe_destroy(&b);
}

Test(messaging, zero_size_payloads_are_delivered_with_size_zero)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 0), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_B, "ignored", 0), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 2, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&p.inbox, 0, &r);
    cr_assert_eq(r.type, T_MSG_A);
    cr_assert_eq(r.size, 0);
    t_recs_get(&p.inbox, 1, &r);
    cr_assert_eq(r.type, T_MSG_B);
    cr_assert_eq(r.size, 0);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

typedef struct big_seen {
    atomic_int got;
    size_t size;
    uint64_t sum;
    const void *data;
} big_seen_t;

static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int big_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)ctx;
    big_seen_t *s = p->user;
    s->size = msg->size;
    s->data = msg->data;
    s->sum = msg->data ? checksum(msg->data, msg->size) : 0;
    atomic_store(&s->got, 1);
    return 0;
}

Test(messaging, a_one_mebibyte_payload_is_copied_intact)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    big_seen_t seen = {0};
    p.user = &seen;
    p.hook = big_hook;
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    size_t n = 1u << 20;
    uint8_t *src = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 131u + (i >> 9));
    uint64_t want = checksum(src, n);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, src, n), 0);
    memset(src, 0, n);
    T_ASSERT_EVENTUALLY(atomic_load(&seen.got) == 1);
    cr_assert_eq(seen.size, n);
    cr_assert_eq(seen.sum, want, "payload corrupted in transit");
    cr_assert_neq(seen.data, (const void *)src);
    free(src);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(messaging, payloads_of_every_small_size_arrive_intact)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    uint8_t src[T_REC_INLINE];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(0xA0 + i);
    for (size_t n = 0; n <= sizeof(src); n++)
        cr_assert_eq(nsys_send(rt, ref, T_MSG_A, n ? src : NULL, n), 0);
    cr_assert(t_recs_wait_count(&p.inbox, sizeof(src) + 1, T_WAIT_MS));
    for (size_t n = 0; n <= sizeof(src); n++) {
        t_rec_t r;
        t_recs_get(&p.inbox, n, &r);
        cr_assert_eq(r.size, n);
        cr_assert_eq(memcmp(r.bytes, src, n), 0, "payload of %zu bytes differs", n);
    }
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* ---- argument checks ------------------------------------------------------- */

static atomic_int g_freed;
static void count_free(void *ptr)
{
    (void)ptr;
    atomic_fetch_add(&g_freed, 1);
}

static void free_and_count(void *ptr)
{
    free(ptr);
    atomic_fetch_add(&g_freed, 1);
}

Test(messaging, reserved_types_are_refused_by_every_send)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    const uint32_t reserved[] = {0, 1, 7, 100, 200, NSYS_MSG_SYSTEM_MAX - 1};
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("abc", 3, &b), 0);
    int dummy;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        cr_assert_eq(nsys_send(rt, ref, reserved[i], "x", 1), NSYS_EINVAL, "type %u", reserved[i]);
        cr_assert_eq(nsys_send_buf(rt, ref, reserved[i], b), NSYS_EINVAL, "type %u", reserved[i]);
        cr_assert_eq(nsys_buf_refcount(b), 1, "a refused send_buf took the reference");
        cr_assert_eq(nsys_send_ptr(rt, ref, reserved[i], &dummy, sizeof(dummy), count_free), NSYS_EINVAL);
    }
    cr_assert_eq(nsys_send(rt, ref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 1, T_WAIT_MS));
    cr_assert_eq(t_recs_count(&p.inbox), 1, "a reserved message got through");
    T_RUNTIME_FREE(rt);
    nsys_buf_unref(b);
    cr_assert_eq(atomic_load(&g_freed), 0, "free_fn ran for refused sends");
    t_probe_destroy(&p);
}

Test(messaging, bad_payload_arguments_are_refused)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 4), NSYS_EINVAL);
    cr_assert_eq(nsys_send_buf(rt, ref, T_MSG_A, NULL), NSYS_EINVAL);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* ---- send_buf --------------------------------------------------------------- */

typedef struct take_seen {
    _Atomic(nsys_buf_t *) taken_buf;
    _Atomic(void *) taken_ptr;
    atomic_int second_take_nonnull;
    atomic_int wrong_kind_nonnull;
    atomic_int got;
} take_seen_t;

/* T_MSG_B: take the buffer; T_MSG_C: take the pointer; T_MSG_A: try both on a
 * plain message. */
static int take_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)ctx;
    take_seen_t *s = p->user;
    if (msg->type == T_MSG_B) {
        if (nsys_msg_take_ptr(msg) != NULL)
            atomic_fetch_add(&s->wrong_kind_nonnull, 1);
        atomic_store(&s->taken_buf, nsys_msg_take_buf(msg));
        if (nsys_msg_take_buf(msg) != NULL)
            atomic_fetch_add(&s->second_take_nonnull, 1);
    } else if (msg->type == T_MSG_C) {
        if (nsys_msg_take_buf(msg) != NULL)
            atomic_fetch_add(&s->wrong_kind_nonnull, 1);
        atomic_store(&s->taken_ptr, nsys_msg_take_ptr(msg));
        if (nsys_msg_take_ptr(msg) != NULL)
            atomic_fetch_add(&s->second_take_nonnull, 1);
    } else if (msg->type == T_MSG_A) {
        if (nsys_msg_take_buf(msg) != NULL || nsys_msg_take_ptr(msg) != NULL)
            atomic_fetch_add(&s->wrong_kind_nonnull, 1);
    }
    atomic_fetch_add(&s->got, 1);
    return 0;
}

Test(messaging, send_buf_delivers_the_same_bytes_without_a_copy_and_releases_them)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_new(4096, &b), 0);
    memset(nsys_buf_data(b), 'z', 4096);
    memcpy(nsys_buf_data(b), "zero-copy", 9);
    cr_assert_eq(nsys_buf_set_len(b, 4096), 0);
    nsys_buf_ref(b); /* keep one to watch the count */
    const void *data = nsys_buf_data(b);
    cr_assert_eq(nsys_send_buf(rt, ref, T_MSG_A, b), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&p.inbox, 0, &r);
    cr_assert_eq(r.data, data, "the receiver got a copy");
    cr_assert_eq(r.size, 4096);
    cr_assert_eq(memcmp(r.bytes, "zero-copy", 9), 0);
    T_ASSERT_EVENTUALLY(nsys_buf_refcount(b) == 1, "the runtime kept the moved reference (count %zu)",
                        nsys_buf_refcount(b));
    nsys_buf_unref(b);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(messaging, send_buf_of_a_slice_points_into_the_parent)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_from("header:body-bytes", 17, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 7, 10, &s), 0);
    const void *want = nsys_buf_data(b) + 7;
    nsys_buf_unref(b); /* the slice alone keeps the storage */
    cr_assert_eq(nsys_send_buf(rt, ref, T_MSG_A, s), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&p.inbox, 0, &r);
    cr_assert_eq(r.data, want);
    cr_assert_eq(r.size, 10);
    cr_assert_eq(memcmp(r.bytes, "body-bytes", 10), 0);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(messaging, take_buf_gives_the_receiver_the_reference)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    take_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    p.user = &seen;
    p.hook = take_hook;
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("keep me", 7, &b), 0);
    nsys_buf_ref(b);
    cr_assert_eq(nsys_send_buf(rt, ref, T_MSG_B, b), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, "plain", 5), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(atomic_load(&seen.taken_buf), b, "take_buf did not return the sent buffer");
    cr_assert_eq(atomic_load(&seen.second_take_nonnull), 0, "the buffer was taken twice");
    cr_assert_eq(atomic_load(&seen.wrong_kind_nonnull), 0, "take of the wrong kind returned something");
    /* the sentinel was handled after it: the runtime released nothing */
    cr_assert_eq(nsys_buf_refcount(b), 2);
    nsys_buf_unref(b); /* the taken reference */
    nsys_buf_unref(b);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

Test(messaging, send_buf_error_leaves_the_reference_with_the_caller)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("mine", 4, &b), 0);
    nsys_ref_t stale = ((nsys_ref_t)77 << 32) | 3u;
    cr_assert_eq(nsys_send_buf(rt, stale, T_MSG_A, b), NSYS_ENOACTOR);
    cr_assert_eq(nsys_buf_refcount(b), 1);
    cr_assert_eq(memcmp(nsys_buf_data(b), "mine", 4), 0);
    nsys_buf_unref(b);
    T_RUNTIME_FREE(rt);
}

/* ---- send_ptr ---------------------------------------------------------------- */

Test(messaging, send_ptr_moves_the_pointer_and_frees_it_once_after_handling)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    char *ptr = malloc(100);
    strcpy(ptr, "moved");
    cr_assert_eq(nsys_send_ptr(rt, ref, T_MSG_A, ptr, 100, free_and_count), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&p.inbox, 0, &r);
    cr_assert_eq(r.data, (const void *)ptr);
    cr_assert_eq(r.size, 100);
    cr_assert_str_eq((const char *)r.bytes, "moved");
    T_ASSERT_EVENTUALLY(atomic_load(&g_freed) == 1, "free_fn not called after handling");
    cr_assert_eq(nsys_send(rt, ref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_freed), 1, "free_fn called more than once");
    t_probe_destroy(&p);
}

Test(messaging, send_ptr_taken_by_the_receiver_is_not_freed_by_the_runtime)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    take_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    p.user = &seen;
    p.hook = take_hook;
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    void *ptr = malloc(32);
    cr_assert_eq(nsys_send_ptr(rt, ref, T_MSG_C, ptr, 32, free_and_count), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_SENTINEL, NULL, 0), 0);
    cr_assert(t_recs_wait_type(&p.inbox, T_MSG_SENTINEL, 1, T_WAIT_MS));
    cr_assert_eq(atomic_load(&seen.taken_ptr), ptr);
    cr_assert_eq(atomic_load(&seen.second_take_nonnull), 0);
    cr_assert_eq(atomic_load(&seen.wrong_kind_nonnull), 0);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_freed), 0, "the runtime freed a taken pointer");
    free(ptr);
    t_probe_destroy(&p);
}

Test(messaging, send_ptr_error_leaves_the_pointer_with_the_caller)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    void *ptr = malloc(8);
    nsys_ref_t stale = ((nsys_ref_t)9 << 32) | 5u;
    cr_assert_eq(nsys_send_ptr(rt, stale, T_MSG_A, ptr, 8, free_and_count), NSYS_ENOACTOR);
    cr_assert_eq(nsys_send_ptr(rt, NSYS_REF_NONE, T_MSG_A, ptr, 8, free_and_count) < 0, 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_freed), 0, "free_fn ran although the send failed");
    free(ptr);
}

Test(messaging, send_ptr_with_null_free_fn_is_allowed)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(1, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    static int on_stack_forever = 5;
    cr_assert_eq(nsys_send_ptr(rt, ref, T_MSG_A, &on_stack_forever, sizeof(int), NULL), 0);
    cr_assert(t_recs_wait_count(&p.inbox, 1, T_WAIT_MS));
    t_rec_t r;
    t_recs_get(&p.inbox, 0, &r);
    cr_assert_eq(r.data, (const void *)&on_stack_forever);
    cr_assert_eq(t_rec_int(&r), 5);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* The receiver blocks on the gate in its first message, then exits; every
 * message queued behind it is dropped and its free_fn must run once. */
typedef struct gated {
    t_gate_t gate;
    atomic_int handled;
    atomic_int gate_ok;
} gated_t;

static int gated_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    *(gated_t **)state = args;
    return 0;
}

static int gated_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    gated_t *g = *(gated_t **)state;
    (void)msg;
    if (atomic_fetch_add(&g->handled, 1) == 0) {
        atomic_store(&g->gate_ok, t_gate_wait(&g->gate, T_WAIT_MS));
        nsys_exit(ctx, NSYS_EFAILED);
    }
    return 0;
}

static const nsys_behaviour_t gated_b = {
    .name = "test.gated",
    .state_size = sizeof(gated_t *),
    .init = gated_init,
    .handle = gated_handle,
};

Test(messaging, send_ptr_messages_dropped_at_exit_are_freed_exactly_once)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    gated_t g;
    memset(&g, 0, sizeof(g));
    t_gate_init(&g.gate);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &g;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &gated_b, &o, &ref), 0);
    cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 0), 0);
    cr_assert(t_gate_wait_arrived(&g.gate, 1, T_WAIT_MS));
    enum { N = 50 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_send_ptr(rt, ref, T_MSG_B, malloc(64), 64, free_and_count), 0);
    t_gate_open(&g.gate);
    T_ASSERT_EVENTUALLY(atomic_load(&g_freed) == N, "%d of %d dropped pointers freed", atomic_load(&g_freed), N);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, ref));
    cr_assert_eq(atomic_load(&g.handled), 1, "messages were handled after nsys_exit");
    cr_assert_eq(atomic_load(&g.gate_ok), 1);
    T_RUNTIME_FREE(rt);
    cr_assert_eq(atomic_load(&g_freed), N, "a dropped pointer was freed twice");
    t_gate_destroy(&g.gate);
}

/* ---- ordering across kinds of send ------------------------------------------ */

Test(messaging, order_holds_across_send_send_buf_and_send_ptr)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    cr_assert_eq(t_probe_spawn(rt, &p, NULL, &ref), 0);
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        int rc;
        if (i % 3 == 0) {
            rc = nsys_send(rt, ref, T_MSG_A, &i, sizeof(i));
        } else if (i % 3 == 1) {
            nsys_buf_t *b = NULL;
            cr_assert_eq(nsys_buf_from(&i, sizeof(i), &b), 0);
            rc = nsys_send_buf(rt, ref, T_MSG_A, b);
        } else {
            int *v = malloc(sizeof(int));
            *v = i;
            rc = nsys_send_ptr(rt, ref, T_MSG_A, v, sizeof(int), free_and_count);
        }
        cr_assert_eq(rc, 0);
    }
    cr_assert(t_recs_wait_count(&p.inbox, N, T_WAIT_MS));
    for (int i = 0; i < N; i++) {
        t_rec_t r;
        t_recs_get(&p.inbox, (size_t)i, &r);
        cr_assert_eq(t_rec_int(&r), i, "message %d arrived in position %d", t_rec_int(&r), i);
    }
    T_ASSERT_EVENTUALLY(atomic_load(&g_freed) == N / 3);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

/* ---- delivery details ---------------------------------------------------------- */

typedef struct slow_init {
    atomic_int init_done;
    atomic_int handled_before_init;
    atomic_int handled;
} slow_init_t;

static int slow_init_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    slow_init_t *s = args;
    *(slow_init_t **)state = s;
    t_busy_us(20000);
    atomic_store(&s->init_done, 1);
    return 0;
}

static int slow_init_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)msg;
    slow_init_t *s = *(slow_init_t **)state;
    if (!atomic_load(&s->init_done))
        atomic_fetch_add(&s->handled_before_init, 1);
    atomic_fetch_add(&s->handled, 1);
    return 0;
}

static const nsys_behaviour_t slow_init_b = {
    .name = "test.slow_init",
    .state_size = sizeof(slow_init_t *),
    .init = slow_init_init,
    .handle = slow_init_handle,
};

Test(messaging, messages_sent_before_init_finishes_wait_for_it)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    slow_init_t s = {0};
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &s;
    nsys_ref_t ref;
    cr_assert_eq(nsys_spawn(rt, &slow_init_b, &o, &ref), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(nsys_send(rt, ref, T_MSG_A, NULL, 0), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&s.handled) == 10);
    cr_assert_eq(atomic_load(&s.handled_before_init), 0, "handle ran before init finished");
    T_RUNTIME_FREE(rt);
}

typedef struct fair {
    gated_t *gate_actor;
    atomic_int a_count;
    atomic_int a_count_when_b_ran;
    atomic_int b_ran;
} fair_t;

static fair_t g_fair;

static int fair_a_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    atomic_fetch_add(&g_fair.a_count, 1);
    return 0;
}

static int fair_b_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    atomic_store(&g_fair.a_count_when_b_ran, atomic_load(&g_fair.a_count));
    atomic_store(&g_fair.b_ran, 1);
    return 0;
}

static int gate_only_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)msg;
    gated_t *g = *(gated_t **)state;
    atomic_store(&g->gate_ok, t_gate_wait(&g->gate, T_WAIT_MS));
    return 0;
}

Test(messaging, a_flooded_actor_yields_to_others_after_one_batch)
{
    static const nsys_behaviour_t a_b = {.name = "test.fair_a", .handle = fair_a_handle};
    static const nsys_behaviour_t b_b = {.name = "test.fair_b", .handle = fair_b_handle};
    static const nsys_behaviour_t gate_b = {
        .name = "test.gate", .state_size = sizeof(gated_t *), .init = gated_init, .handle = gate_only_handle};
    nsys_runtime_opts_t ro = NSYS_RUNTIME_OPTS_DEFAULTS;
    ro.schedulers = 1;
    ro.batch = 8;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&ro, &rt), 0);
    gated_t g;
    memset(&g, 0, sizeof(g));
    t_gate_init(&g.gate);
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.args = &g;
    nsys_ref_t gate_ref, a, b;
    cr_assert_eq(nsys_spawn(rt, &gate_b, &o, &gate_ref), 0);
    cr_assert_eq(nsys_spawn(rt, &a_b, NULL, &a), 0);
    cr_assert_eq(nsys_spawn(rt, &b_b, NULL, &b), 0);
    /* let both inits run, then block the only scheduler */
    cr_assert_eq(nsys_send(rt, gate_ref, T_MSG_A, NULL, 0), 0);
    cr_assert(t_gate_wait_arrived(&g.gate, 1, T_WAIT_MS));
    for (int i = 0; i < 200; i++)
        cr_assert_eq(nsys_send(rt, a, T_MSG_A, NULL, 0), 0);
    cr_assert_eq(nsys_send(rt, b, T_MSG_B, NULL, 0), 0);
    t_gate_open(&g.gate);
    T_ASSERT_EVENTUALLY(atomic_load(&g_fair.a_count) == 200 && atomic_load(&g_fair.b_ran) == 1);
    int seen = atomic_load(&g_fair.a_count_when_b_ran);
    cr_assert_leq(seen, 8, "A handled %d messages before B got its turn (batch 8)", seen);
    T_RUNTIME_FREE(rt);
    t_gate_destroy(&g.gate);
}

Test(messaging, every_send_wakes_a_parked_scheduler)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    t_probe_t p;
    t_probe_init(&p);
    nsys_ref_t ref;
    nsys_spawn_opts_t o = NSYS_SPAWN_OPTS_DEFAULTS;
    o.placement = NSYS_PLACE_INDEX;
    o.sched_index = 1;
    cr_assert_eq(t_probe_spawn(rt, &p, &o, &ref), 0);
    for (int i = 0; i < 100; i++) {
        nsys_sched_metrics_t sm;
        cr_assert_eq(nsys_sched_metrics_get(rt, 1, &sm), 0);
        uint64_t parks = sm.parks;
        /* give the scheduler the chance to park (not required to) */
        T_WAIT(nsys_sched_metrics_get(rt, 1, &sm) == 0 && sm.parks > parks, 20);
        cr_assert_eq(t_send_int(rt, ref, T_MSG_A, i), 0);
        cr_assert(t_recs_wait_count(&p.inbox, (size_t)i + 1, T_WAIT_MS), "message %d was never handled", i);
    }
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&p);
}

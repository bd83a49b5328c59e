/* tools/bench/bench_limit.c — baselines over the bare mailbox queue of
 * runtime/mpsc.h between plain threads: no runtime, no scheduling, no
 * allocation in the timed section.
 *
 * w2-limit: w2's fan-in. P producer threads push preallocated nodes (one per
 *   message, carrying a 64-bit index) with nsys__mailbox_push; the main thread
 *   pops them with nsys__mailbox_pop, checks per-producer order and the sum,
 *   and yields the CPU after a short spin when the queue is empty (the machine
 *   may have fewer cores than threads). w2's msgs/s divided by this one is the
 *   share of the queue's speed the runtime keeps.
 * w1-limit: w1's ping-pong between two threads, each spinning on its own
 *   mailbox; the node a pop frees carries the answer back, so two nodes and two
 *   stubs circulate. The floor a cross-core round trip costs on this machine.
 *
 * Not for: measuring the runtime; see bench_runtime.c.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpsc.h"

typedef struct limit_node {
    nsys__mpsc_node_t link; /* first: a popped nsys__mpsc_node_t* is a limit_node_t* */
    uint64_t index;
} limit_node_t;

typedef struct limit_shared {
    nsys__mailbox_t mailbox;
    char pad_[64];
    limit_node_t *nodes; /* [m], node i carries index i */
    uint64_t m;
    uint64_t producers;
    atomic_bool go;
    atomic_uint ready;
} limit_shared_t;

typedef struct limit_producer {
    limit_shared_t *s;
    uint64_t index;
    pthread_t thread;
} limit_producer_t;

/* Cache-line aligned, zeroed memory (aligned_alloc wants a whole number of
 * lines). */
static void *alloc_lines(size_t size)
{
    size_t rounded = (size + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded);
    if (p != NULL)
        memset(p, 0, rounded);
    return p;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *limit_producer_main(void *arg)
{
    limit_producer_t *pr = arg;
    limit_shared_t *s = pr->s;
    uint64_t begin = bench_range_start(pr->index, s->producers, s->m);
    uint64_t end = bench_range_start(pr->index + 1, s->producers, s->m);
    atomic_fetch_add(&s->ready, 1);
    while (!atomic_load_explicit(&s->go, memory_order_acquire))
        sched_yield();
    for (uint64_t i = begin; i < end; i++) {
        limit_node_t *node = &s->nodes[i];
        node->index = i;
        nsys__mailbox_push(&s->mailbox, &node->link);
    }
    return NULL;
}

static const char limit_usage[] =
    "usage: netsys-bench w2-limit [--m M] [--producers P]\n"
    "\n"
    "Baseline for w2: the same fan-in over the bare mailbox queue (runtime/mpsc.h,\n"
    "nsys__mailbox_push/pop) between P producer threads and one consumer thread,\n"
    "no runtime. All M nodes are preallocated and touched before the timed\n"
    "section. Timed from releasing the producers to the M-th pop; the consumer\n"
    "checks per-producer order and the sum of the indices. Metric: msgs_per_s.";

static int run_w2_limit(int argc, char **argv)
{
    uint64_t m = 10000000;
    uint64_t producers = 4;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"m", BENCH_OPT_U64, &m, "messages in total (default 10000000)"},
        {"producers", BENCH_OPT_U64, &producers, "producer threads (default 4)"},
        {NULL, BENCH_OPT_FLAG, NULL, NULL},
    };
    int prc = bench_parse(argc, argv, limit_usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : prc;
    if (producers == 0 || producers > BENCH_FANIN_MAX_PRODUCERS || m < producers ||
        m > BENCH_FANIN_MAX_M) {
        bench_err("w2-limit", "need 1 <= producers <= %u and producers <= m <= 2^40",
                  BENCH_FANIN_MAX_PRODUCERS);
        return 2;
    }

    limit_shared_t *s = alloc_lines(sizeof *s);
    limit_producer_t *prods = calloc(producers, sizeof *prods);
    uint64_t *next = calloc(producers, sizeof *next);
    uint64_t *starts = calloc(producers + 1, sizeof *starts);
    limit_node_t stub;
    if (s == NULL || prods == NULL || next == NULL || starts == NULL) {
        bench_err("w2-limit", "out of memory");
        return 1;
    }
    s->m = m;
    s->producers = producers;
    atomic_init(&s->go, false);
    atomic_init(&s->ready, 0);
    s->nodes = malloc(m * sizeof *s->nodes);
    if (s->nodes == NULL) {
        bench_err("w2-limit", "cannot preallocate %llu nodes", (unsigned long long)m);
        return 1;
    }
    memset(s->nodes, 0, m * sizeof *s->nodes); /* fault the pages in now, not while timed */
    nsys__mailbox_init(&s->mailbox, &stub.link);
    for (uint64_t p = 0; p < producers; p++) {
        next[p] = bench_range_start(p, producers, m);
        starts[p] = next[p];
    }
    starts[producers] = m;
    uint64_t owner_hint = 0;

    for (uint64_t p = 0; p < producers; p++) {
        prods[p].s = s;
        prods[p].index = p;
        if (pthread_create(&prods[p].thread, NULL, limit_producer_main, &prods[p]) != 0) {
            bench_err("w2-limit", "cannot start producer thread %llu", (unsigned long long)p);
            return 1;
        }
    }
    while (atomic_load(&s->ready) < producers)
        sched_yield();
    bench_info(&common, "w2-limit", "%llu messages from %llu producer threads",
               (unsigned long long)m, (unsigned long long)producers);

    uint64_t t0 = bench_now_ns();
    atomic_store_explicit(&s->go, true, memory_order_release);
    uint64_t received = 0;
    uint64_t sum = 0;
    uint64_t empty_polls = 0;
    unsigned idle = 0;
    const char *error = NULL;
    char errbuf[160];
    while (received < m) {
        nsys__mpsc_node_t *old_stub;
        nsys__mpsc_node_t *got = nsys__mailbox_pop(&s->mailbox, &old_stub);
        if (got == NULL) {
            empty_polls++;
            if (++idle >= 64) {
                idle = 0;
                sched_yield();
            } else {
                cpu_relax();
            }
            continue;
        }
        idle = 0;
        uint64_t idx = ((limit_node_t *)got)->index;
        uint64_t p = idx < m ? bench_range_owner_hint(idx, starts, producers, m, &owner_hint) : 0;
        if (idx >= m || idx != next[p]) {
            snprintf(errbuf, sizeof errbuf,
                     "index %llu, expected %llu from producer %llu (lost, duplicated or reordered)",
                     (unsigned long long)idx, (unsigned long long)next[p], (unsigned long long)p);
            error = errbuf;
            break;
        }
        next[p] = idx + 1;
        sum += idx;
        received++;
    }
    uint64_t t1 = bench_now_ns();
    uint64_t expected = m % 2 == 0 ? (m / 2) * (m - 1) : m * ((m - 1) / 2);
    if (error == NULL && sum != expected) {
        snprintf(errbuf, sizeof errbuf, "sum %llu, expected %llu", (unsigned long long)sum,
                 (unsigned long long)expected);
        error = errbuf;
    }
    /* On an error the producers may still be pushing: do not wait for them. */
    for (uint64_t p = 0; error == NULL && p < producers; p++)
        pthread_join(prods[p].thread, NULL);

    bench_json_t j;
    if (error != NULL) {
        bench_err("w2-limit", "%s", error);
        bench_json_begin(&j, "w2-limit", "msgs_per_s", NAN, "1/s");
        bench_json_bool(&j, "ok", false);
        bench_json_str(&j, "error", error);
        bench_json_print(&j);
        return 1;
    }
    double secs = (double)(t1 - t0) / 1e9;
    bench_json_begin(&j, "w2-limit", "msgs_per_s", (double)m / secs, "1/s");
    bench_json_bool(&j, "ok", true);
    bench_json_f64(&j, "ns_per_msg", secs * 1e9 / (double)m);
    bench_json_u64(&j, "m", m);
    bench_json_u64(&j, "producers", producers);
    bench_json_str(&j, "queue", "nsys__mailbox (runtime/mpsc.h)");
    bench_json_str(&j, "threads", "P producers + 1 consumer, unpinned");
    bench_json_u64(&j, "node_bytes", sizeof(limit_node_t));
    bench_json_u64(&j, "payload_bytes", 8);
    bench_json_u64(&j, "empty_polls", empty_polls);
    bench_json_u64(&j, "peak_rss_kb", bench_status_kb("VmHWM"));
    bench_json_f64(&j, "elapsed_s", secs);
    bench_json_print(&j);
    free(s->nodes);
    free(s);
    free(prods);
    free(next);
    free(starts);
    return 0;
}

const bench_cmd_t bench_cmd_w2_limit = {
    "w2-limit", "baseline for w2: bare mailbox queue between threads", run_w2_limit};

/* ======================================================================== */
/* w1-limit: ping-pong over two bare mailboxes                               */

typedef struct pingpong_side {
    nsys__mailbox_t inbox;
    char pad_[64 - sizeof(nsys__mailbox_t)];
} pingpong_side_t;

typedef struct pingpong {
    pingpong_side_t a, b; /* a: the pinger's inbox, b: the ponger's */
    uint64_t n;
    atomic_bool ponger_ready;
    atomic_bool failed;
} pingpong_t;

/* Spins (then yields now and then) until a node arrives in `mb`. */
static limit_node_t *pingpong_wait(nsys__mailbox_t *mb, limit_node_t **freed, uint64_t *empty_polls)
{
    unsigned idle = 0;
    for (;;) {
        nsys__mpsc_node_t *old_stub;
        nsys__mpsc_node_t *got = nsys__mailbox_pop(mb, &old_stub);
        if (got != NULL) {
            *freed = (limit_node_t *)old_stub;
            return (limit_node_t *)got;
        }
        (*empty_polls)++;
        if (++idle >= 4096) {
            idle = 0;
            sched_yield();
        } else {
            cpu_relax();
        }
    }
}

static void *pingpong_ponger_main(void *arg)
{
    pingpong_t *pp = arg;
    uint64_t empty_polls = 0;
    atomic_store(&pp->ponger_ready, true);
    for (uint64_t i = 0; i < pp->n; i++) {
        limit_node_t *freed;
        limit_node_t *got = pingpong_wait(&pp->b.inbox, &freed, &empty_polls);
        freed->index = got->index;
        nsys__mailbox_push(&pp->a.inbox, &freed->link);
    }
    return NULL;
}

static const char pingpong_usage[] =
    "usage: netsys-bench w1-limit [--n N]\n"
    "\n"
    "Baseline for w1: the same ping-pong between two plain threads, each spinning\n"
    "on its own bare mailbox (runtime/mpsc.h), no runtime, no allocation. Timed\n"
    "from the first push to the N-th answer; the pinger checks every answer.\n"
    "Metric: roundtrips_per_s (also ns_per_roundtrip).";

static int run_w1_limit(int argc, char **argv)
{
    uint64_t n = 1000000;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"n", BENCH_OPT_U64, &n, "round trips (default 1000000)"},
        {NULL, BENCH_OPT_FLAG, NULL, NULL},
    };
    int prc = bench_parse(argc, argv, pingpong_usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : prc;
    if (n == 0) {
        bench_err("w1-limit", "--n must be at least 1");
        return 2;
    }
    pingpong_t *pp = alloc_lines(sizeof *pp);
    limit_node_t *nodes = alloc_lines(3 * 64); /* stub a, stub b, one message; a line each */
    if (pp == NULL || nodes == NULL) {
        bench_err("w1-limit", "out of memory");
        return 1;
    }
    limit_node_t *stub_a = (limit_node_t *)((char *)nodes + 0);
    limit_node_t *stub_b = (limit_node_t *)((char *)nodes + 64);
    limit_node_t *msg = (limit_node_t *)((char *)nodes + 128);
    nsys__mailbox_init(&pp->a.inbox, &stub_a->link);
    nsys__mailbox_init(&pp->b.inbox, &stub_b->link);
    pp->n = n;
    atomic_init(&pp->ponger_ready, false);
    pthread_t ponger;
    if (pthread_create(&ponger, NULL, pingpong_ponger_main, pp) != 0) {
        bench_err("w1-limit", "cannot start the ponger thread");
        return 1;
    }
    while (!atomic_load(&pp->ponger_ready))
        sched_yield();

    uint64_t empty_polls = 0;
    const char *error = NULL;
    char errbuf[128];
    uint64_t t0 = bench_now_ns();
    msg->index = 0;
    nsys__mailbox_push(&pp->b.inbox, &msg->link);
    for (uint64_t i = 0; i < n; i++) {
        limit_node_t *freed;
        limit_node_t *got = pingpong_wait(&pp->a.inbox, &freed, &empty_polls);
        if (got->index != i) {
            snprintf(errbuf, sizeof errbuf, "answer %llu, expected %llu",
                     (unsigned long long)got->index, (unsigned long long)i);
            error = errbuf;
            break;
        }
        if (i + 1 < n) {
            freed->index = i + 1;
            nsys__mailbox_push(&pp->b.inbox, &freed->link);
        }
    }
    uint64_t t1 = bench_now_ns();

    bench_json_t j;
    if (error != NULL) {
        bench_err("w1-limit", "%s", error);
        bench_json_begin(&j, "w1-limit", "roundtrips_per_s", NAN, "1/s");
        bench_json_bool(&j, "ok", false);
        bench_json_str(&j, "error", error);
        bench_json_print(&j);
        return 1;
    }
    pthread_join(ponger, NULL);
    double secs = (double)(t1 - t0) / 1e9;
    bench_json_begin(&j, "w1-limit", "roundtrips_per_s", (double)n / secs, "1/s");
    bench_json_bool(&j, "ok", true);
    bench_json_f64(&j, "ns_per_roundtrip", secs * 1e9 / (double)n);
    bench_json_u64(&j, "n", n);
    bench_json_str(&j, "queue", "nsys__mailbox (runtime/mpsc.h)");
    bench_json_str(&j, "threads", "2, unpinned, spinning");
    bench_json_u64(&j, "empty_polls", empty_polls);
    bench_json_f64(&j, "elapsed_s", secs);
    bench_json_print(&j);
    free(nodes);
    free(pp);
    return 0;
}

const bench_cmd_t bench_cmd_w1_limit = {
    "w1-limit", "baseline for w1: ping-pong over bare mailboxes, 2 threads", run_w1_limit};

/* tools/bench/bench_runtime.c — the runtime workloads of netsys-bench:
 *
 *   w1  ping-pong: two actors exchange an integer N times (round-trip latency
 *       and the cost of a cross-scheduler wake-up).
 *   w2  fan-in: P producer actors send M 64-bit indices to one consumer
 *       (mailbox throughput under contention).
 *   w3  spawn: one parent spawns N idle actors, stops them all and collects
 *       N replies (spawn/exit cost and memory per idle actor).
 *
 * Every workload checks what it received (values, order per sender, sums,
 * exactly-once replies) and fails the run on any mismatch. The timed sections
 * start and end inside actors, on CLOCK_MONOTONIC; runtime start-up, spawning
 * of the fixed actors (w1, w2) and shutdown are outside them.
 *
 * Not for: the bare-queue baseline (bench_limit.c) or network workloads.
 */
#define _GNU_SOURCE
#include "bench_rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_GO (NSYS_MSG_USER + 1)
#define MSG_PING (NSYS_MSG_USER + 2)
#define MSG_PONG (NSYS_MSG_USER + 3)
#define MSG_DATA (NSYS_MSG_USER + 4)
#define MSG_CONTINUE (NSYS_MSG_USER + 5)
#define MSG_ACK (NSYS_MSG_USER + 6)
#define MSG_STOP (NSYS_MSG_USER + 7)
#define MSG_DONE (NSYS_MSG_USER + 8)

static bool msg_u64(const nsys_msg_t *msg, uint64_t *out)
{
    if (msg->size != sizeof *out || msg->data == NULL)
        return false;
    memcpy(out, msg->data, sizeof *out);
    return true;
}

/* Every 1024 steps: cheap enough for the hot paths, fine-grained enough for
 * the watchdog's stall detection. */
static inline void note_progress(bench_run_t *run, uint64_t done)
{
    if ((done & 1023) == 0)
        atomic_store_explicit(&run->progress, done, memory_order_relaxed);
}

static void report_abnormal_exit(bench_run_t *run, const char *who, int reason)
{
    if (!nsys_reason_is_clean(reason))
        bench_run_fail(run, "%s exited abnormally: %s (%s)", who, nsys_errname(reason),
                       nsys_strerror(reason));
}

/* Result line for a run that failed: the metric with no value. */
static void print_failure(const char *workload, const char *metric, const char *unit,
                          const char *error)
{
    bench_json_t j;
    bench_json_begin(&j, workload, metric, NAN, unit);
    bench_json_bool(&j, "ok", false);
    bench_json_str(&j, "error", error);
    bench_json_print(&j);
}

static int spawn_actor(bench_run_t *run, const nsys_behaviour_t *beh, nsys_placement_t placement,
                       unsigned sched_index, void *args, nsys_ref_t *out)
{
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.placement = placement;
    so.sched_index = sched_index;
    so.args = args;
    int rc = nsys_spawn(run->rt, beh, &so, out);
    if (rc != 0)
        bench_run_fail(run, "nsys_spawn(%s): %s", beh->name, nsys_strerror(rc));
    return rc;
}

/* ======================================================================== */
/* w1: ping-pong                                                             */

typedef struct w1_shared {
    bench_run_t run;
    uint64_t n;
    nsys_ref_t pinger;
    nsys_ref_t ponger;
    bool pinger_spawns_ponger; /* placement "default": A spawns B from inside */
    atomic_uint sched_pinger;
    atomic_uint sched_ponger;
} w1_shared_t;

static const nsys_behaviour_t w1_ponger_behaviour;

typedef struct w1_pinger {
    w1_shared_t *w;
    uint64_t answers;
} w1_pinger_t;

typedef struct w1_ponger {
    w1_shared_t *w;
} w1_ponger_t;

static int w1_pinger_init(nsys_ctx_t *ctx, void *state, void *args)
{
    w1_pinger_t *st = state;
    st->w = args;
    atomic_store(&st->w->sched_pinger, nsys_ctx_scheduler(ctx));
    if (st->w->pinger_spawns_ponger) {
        /* The runtime's default placement for a spawn from an actor. */
        nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
        so.args = st->w;
        int rc = nsys_spawn(nsys_ctx_runtime(ctx), &w1_ponger_behaviour, &so, &st->w->ponger);
        if (rc != 0) {
            bench_run_fail(&st->w->run, "pinger: nsys_spawn(ponger): %s", nsys_strerror(rc));
            return rc;
        }
    }
    atomic_fetch_add(&st->w->run.ready, 1);
    return 0;
}

static int w1_pinger_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    w1_pinger_t *st = state;
    w1_shared_t *w = st->w;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    uint64_t next;
    if (msg->type == MSG_GO) {
        next = 0;
        atomic_store(&w->run.t0_ns, bench_now_ns());
    } else if (msg->type == MSG_PONG) {
        uint64_t v = 0;
        if (!msg_u64(msg, &v) || v != st->answers) {
            bench_run_fail(&w->run, "pinger: answer %llu is wrong (size %zu, expected %llu)",
                           (unsigned long long)v, msg->size, (unsigned long long)st->answers);
            return 0;
        }
        if (msg->from != w->ponger) {
            bench_run_fail(&w->run, "pinger: answer from %#llx, not from the ponger",
                           (unsigned long long)msg->from);
            return 0;
        }
        st->answers++;
        note_progress(&w->run, st->answers);
        if (st->answers == w->n) {
            atomic_store(&w->run.t1_ns, bench_now_ns());
            bench_run_done(&w->run);
            return 0;
        }
        next = st->answers;
    } else {
        bench_run_fail(&w->run, "pinger: unexpected message type %u", msg->type);
        return 0;
    }
    int rc = nsys_send(rt, w->ponger, MSG_PING, &next, sizeof next);
    if (rc != 0)
        bench_run_fail(&w->run, "pinger: nsys_send: %s", nsys_strerror(rc));
    return 0;
}

static void w1_pinger_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    w1_pinger_t *st = state;
    report_abnormal_exit(&st->w->run, "pinger", reason);
}

static int w1_ponger_init(nsys_ctx_t *ctx, void *state, void *args)
{
    w1_ponger_t *st = state;
    st->w = args;
    atomic_store(&st->w->sched_ponger, nsys_ctx_scheduler(ctx));
    atomic_fetch_add(&st->w->run.ready, 1);
    return 0;
}

static int w1_ponger_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    w1_ponger_t *st = state;
    if (msg->type != MSG_PING) {
        bench_run_fail(&st->w->run, "ponger: unexpected message type %u", msg->type);
        return 0;
    }
    int rc = nsys_send(nsys_ctx_runtime(ctx), msg->from, MSG_PONG, msg->data, msg->size);
    if (rc != 0)
        bench_run_fail(&st->w->run, "ponger: nsys_send: %s", nsys_strerror(rc));
    return 0;
}

static void w1_ponger_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    w1_ponger_t *st = state;
    report_abnormal_exit(&st->w->run, "ponger", reason);
}

static const nsys_behaviour_t w1_pinger_behaviour = {
    "bench.w1.pinger", sizeof(w1_pinger_t), w1_pinger_init, w1_pinger_handle, w1_pinger_terminate};
static const nsys_behaviour_t w1_ponger_behaviour = {
    "bench.w1.ponger", sizeof(w1_ponger_t), w1_ponger_init, w1_ponger_handle, w1_ponger_terminate};

static const char w1_usage[] =
    "usage: netsys-bench w1 [--n N] [--placement default|any|same] [runtime options]\n"
    "\n"
    "Ping-pong. Actors A and B; A sends B an integer i, B answers with i, A checks\n"
    "it and sends i+1, N round trips. Timed from A's first send to the N-th\n"
    "answer. Placement 'default' (the default) is the runtime's: A is spawned from\n"
    "outside, B by A with NSYS_SPAWN_OPTS_DEFAULTS, which keeps it on A's\n"
    "scheduler. 'any' spawns both with NSYS_PLACE_ANY (round-robin: with two or\n"
    "more schedulers they land on different ones, every hop crosses cores);\n"
    "'same' pins both to scheduler 0. Metric: roundtrips_per_s (also\n"
    "ns_per_roundtrip).";

static int run_w1(int argc, char **argv)
{
    uint64_t n = 1000000;
    const char *placement = "default";
    bench_rt_opts_t rto = BENCH_RT_OPTS_DEFAULTS;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"n", BENCH_OPT_U64, &n, "round trips (default 1000000)"},
        {"placement", BENCH_OPT_STRING, &placement, "default (default), any or same"},
        BENCH_RT_OPT_ENTRIES(rto),
        {NULL, BENCH_OPT_FLAG, NULL, NULL},
    };
    int prc = bench_parse(argc, argv, w1_usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : prc;
    if (bench_rt_opts_check("w1", &rto) != 0)
        return 2;
    bool same = false, inside = false;
    if (strcmp(placement, "default") == 0) {
        inside = true;
    } else if (strcmp(placement, "same") == 0) {
        same = true;
    } else if (strcmp(placement, "any") != 0) {
        bench_err("w1", "--placement must be default, any or same");
        return 2;
    }
    if (n == 0) {
        bench_err("w1", "--n must be at least 1");
        return 2;
    }

    w1_shared_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 1;
    w->n = n;
    w->pinger_spawns_ponger = inside;
    nsys_placement_t pl = same ? NSYS_PLACE_INDEX : inside ? NSYS_PLACE_DEFAULT : NSYS_PLACE_ANY;
    bench_watchdog_progress(&w->run.progress, n);
    int ok = bench_run_start(&w->run, "w1", &rto, 0) == 0 &&
             (inside || spawn_actor(&w->run, &w1_ponger_behaviour, pl, 0, w, &w->ponger) == 0) &&
             spawn_actor(&w->run, &w1_pinger_behaviour, pl, 0, w, &w->pinger) == 0 &&
             bench_run_await_ready(&w->run, 2) == 0;
    if (ok) {
        bench_info(&common, "w1", "pinger on scheduler %u, ponger on %u; %llu round trips",
                   atomic_load(&w->sched_pinger), atomic_load(&w->sched_ponger),
                   (unsigned long long)n);
        int rc = nsys_send(w->run.rt, w->pinger, MSG_GO, NULL, 0);
        if (rc != 0)
            bench_run_fail(&w->run, "nsys_send(go): %s", nsys_strerror(rc));
        else
            ok = bench_run_wait(&w->run, common.timeout_s) == 0;
    }

    bench_json_t j;
    if (ok && !atomic_load(&w->run.failed)) {
        double secs = (double)(atomic_load(&w->run.t1_ns) - atomic_load(&w->run.t0_ns)) / 1e9;
        bench_json_begin(&j, "w1", "roundtrips_per_s", (double)n / secs, "1/s");
        bench_json_bool(&j, "ok", true);
        bench_json_f64(&j, "ns_per_roundtrip", secs * 1e9 / (double)n);
        bench_json_u64(&j, "n", n);
        bench_json_u64(&j, "schedulers", nsys_runtime_schedulers(w->run.rt));
        bench_json_str(&j, "placement", placement);
        bench_json_u64(&j, "sched_a", atomic_load(&w->sched_pinger));
        bench_json_u64(&j, "sched_b", atomic_load(&w->sched_ponger));
        bench_json_u64(&j, "rt_batch", rto.batch);
        bench_json_f64(&j, "spin_us", rto.spin_us);
        bench_json_f64(&j, "elapsed_s", secs);
        bench_run_json_counters(&w->run, &j);
    }
    int failed = atomic_load(&w->run.failed) || !ok;
    if (bench_run_finish(&w->run) != 0)
        failed = 1;
    if (failed)
        print_failure("w1", "roundtrips_per_s", "1/s", bench_run_error(&w->run));
    else
        bench_json_print(&j);
    bench_watchdog_progress(NULL, 0);
    free(w);
    return failed ? 1 : 0;
}

const bench_cmd_t bench_cmd_w1 = {"w1", "ping-pong between two actors (round trips/s)", run_w1};

/* ======================================================================== */
/* w2: fan-in                                                                */

typedef struct w2_shared {
    bench_run_t run;
    uint64_t m;
    uint64_t producers;
    uint64_t batch;  /* messages a producer sends per turn before yielding */
    uint64_t window; /* 0: no credit; else unacknowledged messages allowed per producer */
    nsys_ref_t consumer;
    nsys_ref_t *producer_refs; /* [producers], written before go */
    uint64_t *consumer_next;   /* [producers], the consumer's next expected index */
    uint64_t *consumer_recv;   /* [producers], received per producer (credit) */
    uint64_t *range_starts;    /* [producers + 1], where each producer's indices start */
    struct w2_producer_arg *producer_args; /* [producers] */
    atomic_uint consumer_sched;
    atomic_uint *producer_sched; /* [producers] */
} w2_shared_t;

typedef struct w2_producer_arg {
    w2_shared_t *w;
    uint64_t index;
} w2_producer_arg_t;

typedef struct w2_consumer {
    w2_shared_t *w;
    uint64_t received;
    uint64_t sum;
    uint64_t owner_hint;
} w2_consumer_t;

typedef struct w2_producer {
    w2_shared_t *w;
    uint64_t index;
    uint64_t begin, next, end; /* indices to send: [begin, end) */
    uint64_t acked;            /* messages the consumer acknowledged (credit) */
    bool continue_pending;
    bool started;
} w2_producer_t;

static int w2_consumer_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    w2_consumer_t *st = state;
    st->w = args;
    atomic_store(&st->w->consumer_sched, nsys_ctx_scheduler(ctx));
    atomic_fetch_add(&st->w->run.ready, 1);
    return 0;
}

static int w2_consumer_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    w2_consumer_t *st = state;
    w2_shared_t *w = st->w;
    uint64_t idx = 0;
    if (msg->type != MSG_DATA || !msg_u64(msg, &idx) || idx >= w->m) {
        bench_run_fail(&w->run, "consumer: bad message (type %u, size %zu)", msg->type, msg->size);
        return 0;
    }
    uint64_t p = bench_range_owner_hint(idx, w->range_starts, w->producers, w->m, &st->owner_hint);
    if (idx != w->consumer_next[p] || msg->from != w->producer_refs[p]) {
        bench_run_fail(&w->run,
                       "consumer: index %llu from %#llx, expected %llu from producer %llu "
                       "(lost, duplicated or reordered message)",
                       (unsigned long long)idx, (unsigned long long)msg->from,
                       (unsigned long long)w->consumer_next[p], (unsigned long long)p);
        return 0;
    }
    w->consumer_next[p] = idx + 1;
    st->sum += idx;
    st->received++;
    note_progress(&w->run, st->received);
    if (w->window != 0) {
        uint64_t r = ++w->consumer_recv[p];
        if (r % (w->window / 2) == 0) {
            int rc = nsys_send(nsys_ctx_runtime(ctx), msg->from, MSG_ACK, &r, sizeof r);
            if (rc != 0)
                bench_run_fail(&w->run, "consumer: nsys_send(ack): %s", nsys_strerror(rc));
        }
    }
    if (st->received == w->m) {
        atomic_store(&w->run.t1_ns, bench_now_ns());
        /* Sum of 0..m-1, computed without overflow for the m we accept. */
        uint64_t expected = w->m % 2 == 0 ? (w->m / 2) * (w->m - 1) : w->m * ((w->m - 1) / 2);
        if (st->sum != expected)
            bench_run_fail(&w->run, "consumer: sum %llu, expected %llu",
                           (unsigned long long)st->sum, (unsigned long long)expected);
        else
            bench_run_done(&w->run);
    }
    return 0;
}

static void w2_consumer_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    w2_consumer_t *st = state;
    report_abnormal_exit(&st->w->run, "consumer", reason);
}

static int w2_producer_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    w2_producer_t *st = state;
    const w2_producer_arg_t *arg = args;
    w2_shared_t *w = arg->w;
    st->w = w;
    st->index = arg->index;
    st->begin = bench_range_start(st->index, w->producers, w->m);
    st->end = bench_range_start(st->index + 1, w->producers, w->m);
    st->next = st->begin;
    atomic_store(&w->producer_sched[st->index], nsys_ctx_scheduler(ctx));
    atomic_fetch_add(&w->run.ready, 1);
    return 0;
}

/* Sends up to one batch, then either yields with a CONTINUE to itself or, when
 * the credit window is full, waits for the consumer's ACK. */
static void w2_producer_pump(nsys_ctx_t *ctx, w2_producer_t *st)
{
    w2_shared_t *w = st->w;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    nsys_ref_t consumer = w->consumer;
    uint64_t limit = st->next + w->batch;
    if (limit > st->end)
        limit = st->end;
    bool blocked = false;
    if (w->window != 0) {
        uint64_t credit_end = st->begin + st->acked + w->window;
        if (limit >= credit_end) {
            limit = credit_end;
            blocked = true;
        }
    }
    while (st->next < limit) {
        int rc = nsys_send(rt, consumer, MSG_DATA, &st->next, sizeof st->next);
        if (rc != 0) {
            bench_run_fail(&w->run, "producer %llu: nsys_send: %s", (unsigned long long)st->index,
                           nsys_strerror(rc));
            return;
        }
        st->next++;
    }
    if (st->next < st->end && !blocked && !st->continue_pending) {
        int rc = nsys_send(rt, nsys_self(ctx), MSG_CONTINUE, NULL, 0);
        if (rc != 0) {
            bench_run_fail(&w->run, "producer %llu: nsys_send(continue): %s",
                           (unsigned long long)st->index, nsys_strerror(rc));
            return;
        }
        st->continue_pending = true;
    }
}

static int w2_producer_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    w2_producer_t *st = state;
    switch (msg->type) {
    case MSG_GO:
        if (st->started)
            break;
        st->started = true;
        w2_producer_pump(ctx, st);
        return 0;
    case MSG_CONTINUE:
        st->continue_pending = false;
        w2_producer_pump(ctx, st);
        return 0;
    case MSG_ACK: {
        uint64_t acked = 0;
        if (!msg_u64(msg, &acked) || acked < st->acked || acked > st->next - st->begin)
            break;
        st->acked = acked;
        if (!st->continue_pending)
            w2_producer_pump(ctx, st);
        return 0;
    }
    default:
        break;
    }
    bench_run_fail(&st->w->run, "producer %llu: unexpected message type %u",
                   (unsigned long long)st->index, msg->type);
    return 0;
}

static void w2_producer_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    w2_producer_t *st = state;
    if (st->w != NULL)
        report_abnormal_exit(&st->w->run, "producer", reason);
}

static const nsys_behaviour_t w2_consumer_behaviour = {"bench.w2.consumer", sizeof(w2_consumer_t),
                                                       w2_consumer_init, w2_consumer_handle,
                                                       w2_consumer_terminate};

static const nsys_behaviour_t w2_producer_behaviour = {"bench.w2.producer", sizeof(w2_producer_t),
                                                       w2_producer_init, w2_producer_handle,
                                                       w2_producer_terminate};

/* Without credit, producers on another scheduler outrun the consumer and its
 * mailbox grows to most of M: with M = 10M that was ~1 GB of queued messages
 * (and slower, since the queue no longer fits in cache). 4096 per producer
 * keeps at most 16 K messages in flight at P = 4. */
#define W2_DEFAULT_WINDOW 4096

static const char w2_usage[] =
    "usage: netsys-bench w2 [--m M] [--producers P] [--batch B] [--window W] [runtime options]\n"
    "\n"
    "Fan-in. P producer actors each send M/P messages (a 64-bit index) to one\n"
    "consumer as fast as they can. A producer sends B messages per turn, then a\n"
    "CONTINUE message to itself, so other actors on its scheduler get their turn;\n"
    "it also stops while W of its messages are unacknowledged (credit: the\n"
    "consumer sends it an ACK every W/2 messages), so the consumer's mailbox\n"
    "stays bounded. --window 0 turns credit off (unbounded mailbox). Timed from\n"
    "the 'go' message that releases the producers to the consumer's M-th\n"
    "receive. The consumer checks per-producer order (so no loss or duplicate)\n"
    "and the sum of the indices. Metric: msgs_per_s (also peak_rss_kb, the\n"
    "process's VmHWM).";

static int run_w2(int argc, char **argv)
{
    uint64_t m = 10000000;
    uint64_t producers = 4;
    uint64_t batch = 64;
    uint64_t window = W2_DEFAULT_WINDOW;
    bench_rt_opts_t rto = BENCH_RT_OPTS_DEFAULTS;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"m", BENCH_OPT_U64, &m, "messages in total (default 10000000)"},
        {"producers", BENCH_OPT_U64, &producers, "producer actors (default 4)"},
        {"batch", BENCH_OPT_U64, &batch, "messages a producer sends per turn (default 64)"},
        {"window", BENCH_OPT_U64, &window,
         "credit: max unacknowledged messages per producer, even (default 4096; 0: none)"},
        BENCH_RT_OPT_ENTRIES(rto),
        {NULL, BENCH_OPT_FLAG, NULL, NULL},
    };
    int prc = bench_parse(argc, argv, w2_usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : prc;
    if (bench_rt_opts_check("w2", &rto) != 0)
        return 2;
    if (producers == 0 || producers > BENCH_FANIN_MAX_PRODUCERS || m < producers ||
        m > BENCH_FANIN_MAX_M || batch == 0 || window == 1 || window % 2 != 0) {
        bench_err("w2",
                  "need 1 <= producers <= %u, producers <= m <= 2^40, batch >= 1, "
                  "window 0 or even >= 2",
                  BENCH_FANIN_MAX_PRODUCERS);
        return 2;
    }

    w2_shared_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 1;
    w->m = m;
    w->producers = producers;
    w->batch = batch;
    w->window = window;
    w->producer_refs = calloc(producers, sizeof *w->producer_refs);
    w->consumer_next = calloc(producers, sizeof *w->consumer_next);
    w->consumer_recv = calloc(producers, sizeof *w->consumer_recv);
    w->range_starts = calloc(producers + 1, sizeof *w->range_starts);
    w->producer_sched = calloc(producers, sizeof *w->producer_sched);
    w->producer_args = calloc(producers, sizeof *w->producer_args);
    if (w->producer_refs == NULL || w->consumer_next == NULL || w->consumer_recv == NULL ||
        w->range_starts == NULL || w->producer_sched == NULL || w->producer_args == NULL) {
        bench_err("w2", "out of memory");
        return 1;
    }
    w->range_starts[producers] = m;
    for (uint64_t p = 0; p < producers; p++) {
        w->consumer_next[p] = bench_range_start(p, producers, m);
        w->range_starts[p] = w->consumer_next[p];
        w->producer_args[p].w = w;
        w->producer_args[p].index = p;
    }

    bool ok = bench_run_start(&w->run, "w2", &rto, 0) == 0;
    bench_watchdog_progress(&w->run.progress, m);
    if (ok) {
        ok = spawn_actor(&w->run, &w2_consumer_behaviour, NSYS_PLACE_ANY, 0, w, &w->consumer) == 0;
        for (uint64_t p = 0; ok && p < producers; p++)
            ok = spawn_actor(&w->run, &w2_producer_behaviour, NSYS_PLACE_ANY, 0,
                             &w->producer_args[p], &w->producer_refs[p]) == 0;
        ok = ok && bench_run_await_ready(&w->run, (unsigned)producers + 1) == 0;
    }
    uint64_t rss_before_kb = bench_status_kb("VmRSS");
    if (ok) {
        bench_info(&common, "w2", "%llu messages from %llu producers, batch %llu, window %llu",
                   (unsigned long long)m, (unsigned long long)producers, (unsigned long long)batch,
                   (unsigned long long)window);
        atomic_store(&w->run.t0_ns, bench_now_ns());
        for (uint64_t p = 0; ok && p < producers; p++) {
            int rc = nsys_send(w->run.rt, w->producer_refs[p], MSG_GO, NULL, 0);
            if (rc != 0) {
                bench_run_fail(&w->run, "nsys_send(go): %s", nsys_strerror(rc));
                ok = false;
            }
        }
        ok = ok && bench_run_wait(&w->run, common.timeout_s) == 0;
    }

    bench_json_t j;
    if (ok && !atomic_load(&w->run.failed)) {
        uint64_t hwm_kb = bench_status_kb("VmHWM");
        double secs = (double)(atomic_load(&w->run.t1_ns) - atomic_load(&w->run.t0_ns)) / 1e9;
        bench_json_begin(&j, "w2", "msgs_per_s", (double)m / secs, "1/s");
        bench_json_bool(&j, "ok", true);
        bench_json_u64(&j, "peak_rss_kb", hwm_kb);
        bench_json_u64(&j, "rss_before_kb", rss_before_kb);
        bench_json_f64(&j, "ns_per_msg", secs * 1e9 / (double)m);
        bench_json_u64(&j, "m", m);
        bench_json_u64(&j, "producers", producers);
        bench_json_u64(&j, "schedulers", nsys_runtime_schedulers(w->run.rt));
        bench_json_str(&j, "placement", "any");
        bench_json_u64(&j, "consumer_sched", atomic_load(&w->consumer_sched));
        char scheds[256];
        size_t used = 0;
        for (uint64_t p = 0; p < producers && used + 12 < sizeof scheds; p++)
            used += (size_t)snprintf(scheds + used, sizeof scheds - used, "%s%u", p ? "," : "",
                                     atomic_load(&w->producer_sched[p]));
        scheds[used] = '\0';
        bench_json_str(&j, "producer_scheds", scheds);
        bench_json_str(&j, "producer_flow",
                       window != 0 ? "batch_then_self_continue+credit_window"
                                   : "batch_then_self_continue");
        bench_json_u64(&j, "producer_batch", batch);
        bench_json_u64(&j, "window", window);
        bench_json_u64(&j, "payload_bytes", 8);
        bench_json_u64(&j, "rt_batch", rto.batch);
        bench_json_f64(&j, "spin_us", rto.spin_us);
        bench_json_f64(&j, "elapsed_s", secs);
        bench_run_json_counters(&w->run, &j);
    }
    int failed = atomic_load(&w->run.failed) || !ok;
    if (bench_run_finish(&w->run) != 0)
        failed = 1;
    if (failed)
        print_failure("w2", "msgs_per_s", "1/s", bench_run_error(&w->run));
    else
        bench_json_print(&j);
    free(w->producer_refs);
    free(w->consumer_next);
    free(w->consumer_recv);
    free(w->range_starts);
    free(w->producer_sched);
    free(w->producer_args);
    bench_watchdog_progress(NULL, 0);
    free(w);
    return failed ? 1 : 0;
}

const bench_cmd_t bench_cmd_w2 = {"w2", "fan-in: P producer actors to one consumer (msgs/s)",
                                  run_w2};

/* ======================================================================== */
/* w3: spawn                                                                 */

typedef struct w3_shared {
    bench_run_t run;
    uint64_t n;
    uint64_t batch;     /* spawns (then stops) per parent turn */
    nsys_ref_t *refs;   /* [n], the children */
    uint8_t *done_bits; /* [n/8+1], which children answered */
    uint64_t rss_before_kb;
} w3_shared_t;

typedef struct w3_parent {
    w3_shared_t *w;
    uint64_t spawned;
    uint64_t stopped;
    uint64_t done;
} w3_parent_t;

static int w3_child_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)state;
    if (msg->type != MSG_STOP)
        return NSYS_EINVAL;
    int rc = nsys_send(nsys_ctx_runtime(ctx), msg->from, MSG_DONE, msg->data, msg->size);
    nsys_exit(ctx, rc == 0 ? NSYS_REASON_NORMAL : rc);
    return 0;
}

/* Children carry no state and no init: the smallest actor a user can write. */
static const nsys_behaviour_t w3_child_behaviour = {"bench.w3.child", 0, NULL, w3_child_handle,
                                                    NULL};

static int w3_parent_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    w3_parent_t *st = state;
    st->w = args;
    atomic_fetch_add(&st->w->run.ready, 1);
    return 0;
}

static void w3_parent_spawn_some(nsys_ctx_t *ctx, w3_parent_t *st)
{
    w3_shared_t *w = st->w;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    uint64_t limit = st->spawned + w->batch < w->n ? st->spawned + w->batch : w->n;
    for (; st->spawned < limit; st->spawned++) {
        note_progress(&w->run, st->spawned);
        int rc = nsys_spawn(rt, &w3_child_behaviour, &so, &w->refs[st->spawned]);
        if (rc != 0) {
            bench_run_fail(&w->run, "parent: nsys_spawn #%llu: %s", (unsigned long long)st->spawned,
                           nsys_strerror(rc));
            return;
        }
    }
    int rc = nsys_send(rt, nsys_self(ctx), MSG_CONTINUE, NULL, 0);
    if (rc != 0)
        bench_run_fail(&w->run, "parent: nsys_send(continue): %s", nsys_strerror(rc));
}

static void w3_parent_stop_some(nsys_ctx_t *ctx, w3_parent_t *st)
{
    w3_shared_t *w = st->w;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    uint64_t limit = st->stopped + w->batch < w->n ? st->stopped + w->batch : w->n;
    for (; st->stopped < limit; st->stopped++) {
        uint64_t i = st->stopped;
        int rc = nsys_send(rt, w->refs[i], MSG_STOP, &i, sizeof i);
        if (rc != 0) {
            bench_run_fail(&w->run, "parent: nsys_send(stop) to child #%llu: %s",
                           (unsigned long long)i, nsys_strerror(rc));
            return;
        }
    }
    if (st->stopped < w->n) {
        int rc = nsys_send(rt, nsys_self(ctx), MSG_CONTINUE, NULL, 0);
        if (rc != 0)
            bench_run_fail(&w->run, "parent: nsys_send(continue): %s", nsys_strerror(rc));
    }
}

static int w3_parent_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    w3_parent_t *st = state;
    w3_shared_t *w = st->w;
    switch (msg->type) {
    case MSG_GO:
        w->rss_before_kb = bench_status_kb("VmRSS");
        atomic_store(&w->run.t0_ns, bench_now_ns());
        w3_parent_spawn_some(ctx, st);
        return 0;
    case MSG_CONTINUE:
        /* Spawning goes first; stops start once every child exists. */
        if (st->spawned < w->n)
            w3_parent_spawn_some(ctx, st);
        else
            w3_parent_stop_some(ctx, st);
        return 0;
    case MSG_DONE: {
        uint64_t i = 0;
        if (!msg_u64(msg, &i) || i >= w->n || msg->from != w->refs[i] ||
            (w->done_bits[i / 8] & (1u << (i % 8))) != 0) {
            bench_run_fail(&w->run, "parent: unexpected or duplicate done (from %#llx, size %zu)",
                           (unsigned long long)msg->from, msg->size);
            return 0;
        }
        w->done_bits[i / 8] |= (uint8_t)(1u << (i % 8));
        note_progress(&w->run, w->n + st->done + 1);
        if (++st->done == w->n) {
            atomic_store(&w->run.t1_ns, bench_now_ns());
            bench_run_done(&w->run);
        }
        return 0;
    }
    default:
        bench_run_fail(&w->run, "parent: unexpected message type %u", msg->type);
        return 0;
    }
}

static void w3_parent_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    w3_parent_t *st = state;
    report_abnormal_exit(&st->w->run, "parent", reason);
}

static const nsys_behaviour_t w3_parent_behaviour = {
    "bench.w3.parent", sizeof(w3_parent_t), w3_parent_init, w3_parent_handle, w3_parent_terminate};

static const char w3_usage[] =
    "usage: netsys-bench w3 [--n N] [--batch B] [runtime options]\n"
    "\n"
    "Spawn. A parent actor spawns N children (NSYS_PLACE_ANY, so spread over the\n"
    "schedulers), B per turn; children have no state and no init and stay alive\n"
    "until told. Once all N exist the parent sends each a stop (B per turn); each\n"
    "answers done and exits. Timed from the first spawn to the N-th done; the\n"
    "parent checks that every child answered exactly once. Metric: actors_per_s\n"
    "(also bytes_per_actor = (VmHWM at the end - VmRSS before the first spawn) / N).";

static int run_w3(int argc, char **argv)
{
    uint64_t n = 1000000;
    uint64_t batch = 1024;
    bench_rt_opts_t rto = BENCH_RT_OPTS_DEFAULTS;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"n", BENCH_OPT_U64, &n, "actors (default 1000000)"},
        {"batch", BENCH_OPT_U64, &batch, "spawns or stops per parent turn (default 1024)"},
        BENCH_RT_OPT_ENTRIES(rto),
        {NULL, BENCH_OPT_FLAG, NULL, NULL},
    };
    int prc = bench_parse(argc, argv, w3_usage, opts, &common);
    if (prc != 0)
        return prc == 1 ? 0 : prc;
    if (bench_rt_opts_check("w3", &rto) != 0)
        return 2;
    if (n == 0 || n > (UINT64_C(1) << 31) || batch == 0) {
        bench_err("w3", "need 1 <= n <= 2^31 and batch >= 1");
        return 2;
    }

    w3_shared_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 1;
    w->n = n;
    w->batch = batch;
    /* Bookkeeping is allocated and touched before the "before" RSS sample, so
     * bytes_per_actor counts only what the runtime spends. */
    w->refs = malloc(n * sizeof *w->refs);
    w->done_bits = malloc(n / 8 + 1);
    if (w->refs == NULL || w->done_bits == NULL) {
        bench_err("w3", "out of memory");
        return 1;
    }
    memset(w->refs, 0, n * sizeof *w->refs);
    memset(w->done_bits, 0, n / 8 + 1);

    uint32_t max_actors = n + 16 > (UINT64_C(1) << 24) ? (uint32_t)(n + 16) : 0;
    bool ok = bench_run_start(&w->run, "w3", &rto, max_actors) == 0;
    /* Progress counts spawns, then dones. */
    bench_watchdog_progress(&w->run.progress, 2 * n);
    nsys_ref_t parent = NSYS_REF_NONE;
    ok = ok && spawn_actor(&w->run, &w3_parent_behaviour, NSYS_PLACE_ANY, 0, w, &parent) == 0 &&
         bench_run_await_ready(&w->run, 1) == 0;
    if (ok) {
        bench_info(&common, "w3", "spawning %llu actors, %llu per turn", (unsigned long long)n,
                   (unsigned long long)batch);
        int rc = nsys_send(w->run.rt, parent, MSG_GO, NULL, 0);
        if (rc != 0) {
            bench_run_fail(&w->run, "nsys_send(go): %s", nsys_strerror(rc));
            ok = false;
        }
        ok = ok && bench_run_wait(&w->run, common.timeout_s) == 0;
    }

    bench_json_t j;
    if (ok && !atomic_load(&w->run.failed)) {
        uint64_t hwm_kb = bench_status_kb("VmHWM");
        double secs = (double)(atomic_load(&w->run.t1_ns) - atomic_load(&w->run.t0_ns)) / 1e9;
        double grown = hwm_kb > w->rss_before_kb ? (double)(hwm_kb - w->rss_before_kb) : 0.0;
        bench_json_begin(&j, "w3", "actors_per_s", (double)n / secs, "1/s");
        bench_json_bool(&j, "ok", true);
        bench_json_f64(&j, "bytes_per_actor", grown * 1024.0 / (double)n);
        bench_json_f64(&j, "ns_per_actor", secs * 1e9 / (double)n);
        bench_json_u64(&j, "n", n);
        bench_json_u64(&j, "schedulers", nsys_runtime_schedulers(w->run.rt));
        bench_json_str(&j, "placement", "any");
        bench_json_u64(&j, "spawn_batch", batch);
        bench_json_u64(&j, "child_state_bytes", 0);
        bench_json_u64(&j, "rss_before_kb", w->rss_before_kb);
        bench_json_u64(&j, "peak_rss_kb", hwm_kb);
        bench_json_u64(&j, "rt_batch", rto.batch);
        bench_json_f64(&j, "spin_us", rto.spin_us);
        bench_json_f64(&j, "elapsed_s", secs);
        bench_run_json_counters(&w->run, &j);
    }
    int failed = atomic_load(&w->run.failed) || !ok;
    if (bench_run_finish(&w->run) != 0)
        failed = 1;
    if (failed)
        print_failure("w3", "actors_per_s", "1/s", bench_run_error(&w->run));
    else
        bench_json_print(&j);
    free(w->refs);
    free(w->done_bits);
    bench_watchdog_progress(NULL, 0);
    free(w);
    return failed ? 1 : 0;
}

const bench_cmd_t bench_cmd_w3 = {"w3", "spawn N idle actors, stop them, collect N replies",
                                  run_w3};

/* runtime/backoff.c — the exponential backoff with symmetric jitter used for
 * supervisor restarts and client reconnects (see netsys/backoff.h). Plain
 * data and arithmetic; the clock and random source are injectable. The only
 * shared state is the counter that keeps the seeds of backoffs made at the
 * same moment apart. */
#include <netsys/backoff.h>
#include <netsys/error.h>

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

static uint64_t default_clock(void *ud)
{
    (void)ud;
    return uv_hrtime() / 1000000u;
}

/* xorshift64*: fast, good enough to spread retries; not for secrets. */
static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* splitmix64's output function: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A thousand clients spawned in the same instant must not retry in step:
 * the clock may read the same for all of them, and their addresses differ
 * only in a few bits. A process-wide counter makes every seed distinct, and
 * mixing spreads that difference over the whole state. */
static uint64_t new_seed(const nsys_backoff_t *b)
{
    static atomic_uint_fast64_t counter;
    uint64_t n = (uint64_t)atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    uint64_t s =
        mix64(uv_hrtime() ^ mix64((uint64_t)(uintptr_t)b) ^ (n + 1u) * 0x9e3779b97f4a7c15ULL);
    return s != 0 ? s : 0x9e3779b97f4a7c15ULL; /* xorshift's state must not be 0 */
}

nsys_backoff_opts_t nsys_backoff_grpc_defaults(void)
{
    nsys_backoff_opts_t o = {
        .initial_ms = NSYS_BACKOFF_GRPC_INITIAL_MS,
        .max_ms = NSYS_BACKOFF_GRPC_MAX_MS,
        .multiplier = NSYS_BACKOFF_GRPC_MULTIPLIER,
        .jitter = NSYS_BACKOFF_GRPC_JITTER,
        .reset_after_ms = NSYS_BACKOFF_GRPC_RESET_MS,
    };
    return o;
}

int nsys_backoff_init(nsys_backoff_t *b, const nsys_backoff_opts_t *opts,
                      const nsys_backoff_opts_t *defaults)
{
    if (b == NULL)
        return NSYS_EINVAL;
    nsys_backoff_opts_t d = defaults != NULL ? *defaults : nsys_backoff_grpc_defaults();
    nsys_backoff_opts_t o = opts != NULL ? *opts : (nsys_backoff_opts_t)NSYS_BACKOFF_OPTS_DEFAULTS;
    if (o.initial_ms == 0)
        o.initial_ms = d.initial_ms;
    if (o.max_ms == 0)
        o.max_ms = d.max_ms;
    if (o.multiplier == 0.0)
        o.multiplier = d.multiplier;
    if (o.jitter == 0.0)
        o.jitter = d.jitter;
    if (o.jitter == NSYS_BACKOFF_NO_JITTER)
        o.jitter = 0.0;
    if (o.reset_after_ms == 0)
        o.reset_after_ms = d.reset_after_ms;
    if (!(o.multiplier >= 1.0 && o.multiplier <= 1000.0) || !(o.jitter >= 0.0 && o.jitter <= 1.0) ||
        o.initial_ms > o.max_ms || o.max_ms == 0)
        return NSYS_EINVAL;
    b->opts = o;
    b->clock = default_clock;
    b->random = NULL;
    b->userdata = NULL;
    b->rng_state = new_seed(b);
    nsys_backoff_reset(b);
    return 0;
}

void nsys_backoff_set_sources(nsys_backoff_t *b, nsys_backoff_clock_fn clock,
                              nsys_backoff_random_fn random, void *userdata)
{
    b->clock = clock != NULL ? clock : default_clock;
    b->random = random;
    b->userdata = userdata;
}

void nsys_backoff_reset(nsys_backoff_t *b)
{
    b->attempt = 0;
    b->current_ms = (double)b->opts.initial_ms;
    b->stable_since_ms = 0;
    b->stable = 0;
}

void nsys_backoff_success(nsys_backoff_t *b)
{
    b->stable_since_ms = b->clock(b->userdata);
    b->stable = 1;
}

void nsys_backoff_failure(nsys_backoff_t *b)
{
    if (b->stable && b->clock(b->userdata) - b->stable_since_ms >= b->opts.reset_after_ms)
        nsys_backoff_reset(b);
    b->stable = 0;
}

/* Starts over if the stable period was long enough, hands out the
 * un-jittered delay of this attempt and moves the sequence on. */
static double advance(nsys_backoff_t *b)
{
    nsys_backoff_failure(b);
    double base = b->current_ms;
    double next = base * b->opts.multiplier;
    b->current_ms = next >= (double)b->opts.max_ms ? (double)b->opts.max_ms : next;
    b->attempt++;
    return base;
}

/* Uniform in [0, 1). */
static double uniform(nsys_backoff_t *b)
{
    uint64_t r = b->random != NULL ? b->random(b->userdata) : xorshift(&b->rng_state);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t nsys_backoff_next(nsys_backoff_t *b)
{
    double base = advance(b);
    if (b->opts.jitter == 0.0)
        return (uint64_t)floor(base);
    double u = uniform(b);
    double lo = ceil(base * (1.0 - b->opts.jitter)), hi = floor(base * (1.0 + b->opts.jitter));
    double j = floor(base * (1.0 + b->opts.jitter * (2.0 * u - 1.0)));
    if (j < lo)
        j = lo;
    if (j > hi)
        j = hi;
    return j <= 0.0 ? 0 : (uint64_t)j;
}

uint64_t nsys_backoff_next_full_jitter(nsys_backoff_t *b)
{
    double top = floor(advance(b));
    if (b->opts.jitter == 0.0)
        return (uint64_t)top;
    /* Every whole millisecond in [0, top] equally likely, top included. */
    double j = floor(uniform(b) * (top + 1.0));
    return j > top ? (uint64_t)top : (uint64_t)j;
}

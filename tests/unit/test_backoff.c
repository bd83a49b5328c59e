/* tests/unit/test_backoff.c — the backoff policy (netsys/backoff.h): the
 * jittered delay stays within its bounds, the un-jittered sequence is
 * initial * multiplier^n capped at max, the random source and the clock are
 * injectable and give exact results, a stable period resets the sequence,
 * full jitter covers [0, delay], backoffs made together draw unrelated
 * delays, the gRPC defaults, and option validation. Pure arithmetic: no
 * runtime. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <netsys/backoff.h>
#include <netsys/error.h>

/* ---- injectable sources ------------------------------------------------------ */

typedef struct fake {
    uint64_t now_ms; /* what the clock says */
    uint64_t random; /* what the random source returns */
    unsigned clock_calls, random_calls;
} fake_t;

static uint64_t fake_clock(void *ud)
{
    fake_t *f = ud;
    f->clock_calls++;
    return f->now_ms;
}

static uint64_t fake_random(void *ud)
{
    fake_t *f = ud;
    f->random_calls++;
    return f->random;
}

static nsys_backoff_opts_t opts_of(uint64_t initial, uint64_t max, double multiplier, double jitter,
                                   uint64_t reset_after)
{
    nsys_backoff_opts_t o = NSYS_BACKOFF_OPTS_DEFAULTS;
    o.initial_ms = initial;
    o.max_ms = max;
    o.multiplier = multiplier;
    o.jitter = jitter;
    o.reset_after_ms = reset_after;
    return o;
}

/* A backoff with fake sources; no defaults needed since every field is set. */
static void init_fake(nsys_backoff_t *b, fake_t *f, nsys_backoff_opts_t o)
{
    nsys_backoff_opts_t d = nsys_backoff_grpc_defaults();
    cr_assert_eq(nsys_backoff_init(b, &o, &d), 0, "valid options were rejected");
    nsys_backoff_set_sources(b, fake_clock, fake_random, f);
}

/* ---- jitter bounds ------------------------------------------------------------- */

Test(backoff, delays_stay_within_the_jitter_bounds_over_ten_thousand_draws)
{
    nsys_backoff_t b;
    nsys_backoff_opts_t o = opts_of(100, 5000, 1.6, 0.2, 10000);
    nsys_backoff_opts_t d = nsys_backoff_grpc_defaults();
    cr_assert_eq(nsys_backoff_init(&b, &o, &d), 0);
    uint64_t lowest_at_cap = UINT64_MAX, highest_at_cap = 0;
    for (int i = 0; i < 10000; i++) {
        if (i % 25 == 0)
            nsys_backoff_reset(&b); /* cover the growing part, not only the cap */
        double base = (double)b.current_ms;
        uint64_t got = nsys_backoff_next(&b);
        double lo = base * 0.8, hi = base * 1.2;
        cr_assert((double)got >= floor(lo) && (double)got <= ceil(hi),
                  "draw %d: %llu outside [%g, %g] around %g", i, (unsigned long long)got, lo, hi,
                  base);
        cr_assert_leq(got, (uint64_t)(5000 * 1.2), "draw %d: %llu exceeds max * (1 + jitter)", i,
                      (unsigned long long)got);
        if (base >= 5000.0) {
            lowest_at_cap = got < lowest_at_cap ? got : lowest_at_cap;
            highest_at_cap = got > highest_at_cap ? got : highest_at_cap;
        }
    }
    /* The built-in random source really spreads the delays over the band. */
    cr_assert_leq(lowest_at_cap, 4200, "lowest capped delay %llu: no spread downwards",
                  (unsigned long long)lowest_at_cap);
    cr_assert_geq(highest_at_cap, 5800, "highest capped delay %llu: no spread upwards",
                  (unsigned long long)highest_at_cap);
}

Test(backoff, no_delay_ever_exceeds_max_times_one_plus_jitter)
{
    fake_t f = {.now_ms = 1, .random = UINT64_MAX};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(700, 3000, 3.0, 0.5, 10000));
    for (int i = 0; i < 50; i++) {
        uint64_t got = nsys_backoff_next(&b);
        cr_assert_leq(got, 4500, "draw %d: %llu > 3000 * 1.5", i, (unsigned long long)got);
    }
    cr_assert_eq(nsys_backoff_next(&b), 4500, "the top of the band at the cap is max * 1.5");
}

/* ---- the un-jittered sequence ------------------------------------------------------- */

Test(backoff, without_jitter_the_sequence_is_initial_times_multiplier_capped_at_max)
{
    fake_t f = {.now_ms = 1};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 1000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint64_t got = nsys_backoff_next(&b);
        cr_assert_eq(got, want[i], "delay %zu: want %llu, got %llu", i, (unsigned long long)want[i],
                     (unsigned long long)got);
    }
    cr_assert_eq(f.random_calls, 0, "without jitter the random source is not consulted");
}

/* delay(n) = min(initial * multiplier^n, max), to the millisecond, also when
 * the products are not whole numbers: rounding must not compound. */
static void check_geometric(uint64_t initial, double multiplier, uint64_t max, int n)
{
    fake_t f = {.now_ms = 1};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(initial, max, multiplier, NSYS_BACKOFF_NO_JITTER, 1000000));
    for (int i = 0; i < n; i++) {
        double exact = fmin((double)initial * pow(multiplier, i), (double)max);
        uint64_t got = nsys_backoff_next(&b);
        cr_assert(fabs((double)got - exact) <= 1.0,
                  "initial %llu x%g: delay %d should be %.2f ms (initial * multiplier^%d), got "
                  "%llu",
                  (unsigned long long)initial, multiplier, i, exact, i, (unsigned long long)got);
    }
}

Test(backoff, fractional_products_keep_the_sequence_geometric)
{
    check_geometric(1, 1.5, 1000, 20); /* 1, 1.5, 2.25, 3.4, 5.1, ... */
    check_geometric(10, 1.1, 100000, 40);
    check_geometric(1000, 1.6, 120000, 12); /* gRPC */
}

/* ---- injectable random source ---------------------------------------------------------- */

Test(backoff, random_zero_gives_the_bottom_of_the_band_and_random_max_the_top)
{
    fake_t f = {.now_ms = 1, .random = 0};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(1000, 120000, 1.6, 0.2, 10000));
    cr_assert_eq(nsys_backoff_next(&b), 800, "u = 0: 1000 * (1 - 0.2)");
    cr_assert_eq(f.random_calls, 1, "one random draw per delay");
    f.random = UINT64_MAX;
    cr_assert_eq(nsys_backoff_next(&b), 1920, "u -> 1: 1600 * (1 + 0.2)");
    f.random = UINT64_C(1) << 63;
    cr_assert_eq(nsys_backoff_next(&b), 2560, "u = 1/2: the un-jittered 2560");
    f.random = 0;
    cr_assert_eq(nsys_backoff_next(&b), 3277,
                 "u = 0: 4096 * 0.8 = 3276.8, the first whole ms in the band");
}

Test(backoff, the_built_in_random_source_comes_back_after_set_sources_with_null)
{
    fake_t f = {.now_ms = 1, .random = 0};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(10000, 10000, 1.0, 0.5, 10000));
    cr_assert_eq(nsys_backoff_next(&b), 5000);
    nsys_backoff_set_sources(&b, fake_clock, NULL, &f);
    bool spread = false;
    for (int i = 0; i < 100; i++) {
        uint64_t got = nsys_backoff_next(&b);
        cr_assert(got >= 5000 && got <= 15000, "draw %d: %llu", i, (unsigned long long)got);
        spread |= got != 5000;
    }
    cr_assert(spread, "with the built-in source not every draw is the bottom of the band");
    cr_assert_eq(f.random_calls, 1, "the fake source was not used after it was replaced");
}

/* ---- full jitter ------------------------------------------------------------------------- */

Test(backoff, full_jitter_draws_from_zero_to_the_delay_and_advances_the_sequence)
{
    fake_t f = {.now_ms = 1, .random = 0};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(1000, 120000, 1.6, 0.2, 10000));
    cr_assert_eq(nsys_backoff_next_full_jitter(&b), 0, "u = 0: no wait at all");
    cr_assert_eq(f.random_calls, 1, "one random draw per delay");
    f.random = UINT64_MAX;
    cr_assert_eq(nsys_backoff_next_full_jitter(&b), 1600, "u -> 1: the whole delay (1600)");
    f.random = UINT64_C(1) << 63;
    cr_assert_eq(nsys_backoff_next_full_jitter(&b), 1280, "u = 1/2: half of 2560");
    cr_assert_eq(b.attempt, 3);
    f.random = 0;
    cr_assert_eq(nsys_backoff_next(&b), 3277, "the symmetric band goes on from 4096");
}

Test(backoff, full_jitter_without_jitter_is_the_plain_delay)
{
    fake_t f = {.now_ms = 1, .random = 0};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 1000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    cr_assert_eq(nsys_backoff_next_full_jitter(&b), 100);
    cr_assert_eq(nsys_backoff_next_full_jitter(&b), 200);
    cr_assert_eq(f.random_calls, 0);
}

Test(backoff, full_jitter_with_the_built_in_source_covers_the_whole_range)
{
    nsys_backoff_t b;
    nsys_backoff_opts_t o = opts_of(1000, 1000, 1.0, 0.2, 10000);
    cr_assert_eq(nsys_backoff_init(&b, &o, NULL), 0);
    unsigned tenths[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t got = nsys_backoff_next_full_jitter(&b);
        cr_assert_leq(got, 1000, "draw %d: %llu", i, (unsigned long long)got);
        tenths[got < 1000 ? got / 100 : 9]++;
    }
    for (int t = 0; t < 10; t++) /* 1000 expected in each; 4.7 sigma is 150 */
        cr_assert(tenths[t] > 850 && tenths[t] < 1150, "[%d00, %d00) ms holds %u of 10000", t,
                  t + 1, tenths[t]);
}

/* ---- seeding ------------------------------------------------------------------------------ */

/* What a thousand clients started at once do: set up their backoffs in
 * the same instant, side by side in memory, and draw their first delay. */
Test(backoff, backoffs_set_up_together_draw_unrelated_delays)
{
    enum { N = 1000 };
    static nsys_backoff_t b[N];
    uint64_t d[N];
    nsys_backoff_opts_t o = opts_of(1000, 120000, 1.6, 0.2, 10000);
    for (int i = 0; i < N; i++)
        cr_assert_eq(nsys_backoff_init(&b[i], &o, NULL), 0);
    for (int i = 0; i < N; i++)
        d[i] = nsys_backoff_next_full_jitter(&b[i]);
    unsigned tenths[10] = {0}, close_neighbours = 0;
    for (int i = 0; i < N; i++) {
        tenths[d[i] < 1000 ? d[i] / 100 : 9]++;
        if (i > 0 && (d[i] > d[i - 1] ? d[i] - d[i - 1] : d[i - 1] - d[i]) < 20)
            close_neighbours++;
    }
    for (int t = 0; t < 10; t++) /* 100 expected in each */
        cr_assert_lt(tenths[t], 200, "[%d00, %d00) ms holds %u of %d first delays", t, t + 1,
                     tenths[t], N);
    /* Independent draws: a neighbour within 20 ms about 4 % of the time. */
    cr_assert_lt(close_neighbours, 120, "%u of %d neighbours drew within 20 ms of each other",
                 close_neighbours, N - 1);
}

/* ---- injectable clock: the stable period -------------------------------------------------- */

/* Three delays (100, 200, 400) so the next un-jittered one is 800. */
static void advance_three(nsys_backoff_t *b)
{
    cr_assert_eq(nsys_backoff_next(b), 100);
    cr_assert_eq(nsys_backoff_next(b), 200);
    cr_assert_eq(nsys_backoff_next(b), 400);
}

Test(backoff, stable_for_reset_after_starts_the_sequence_over)
{
    fake_t f = {.now_ms = 5000};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    advance_three(&b);
    nsys_backoff_success(&b);
    f.now_ms += 10000; /* exactly reset_after */
    cr_assert_eq(nsys_backoff_next(&b), 100,
                 "stable for reset_after_ms (10000 ms) since success: back to initial");
    cr_assert_eq(nsys_backoff_next(&b), 200);
}

Test(backoff, stable_for_longer_than_reset_after_starts_the_sequence_over)
{
    fake_t f = {.now_ms = 7};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    advance_three(&b);
    nsys_backoff_success(&b);
    f.now_ms += 25000;
    cr_assert_eq(nsys_backoff_next(&b), 100, "stable for 25 s > 10 s: back to initial");
}

Test(backoff, stable_for_less_than_reset_after_does_not_reset)
{
    fake_t f = {.now_ms = 5000};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    advance_three(&b);
    nsys_backoff_success(&b);
    f.now_ms += 9990;
    cr_assert_eq(nsys_backoff_next(&b), 800, "stable for 9990 ms < 10000 ms: the sequence goes on");
}

Test(backoff, a_failure_in_the_same_millisecond_as_the_success_does_not_reset)
{
    /* A child that starts and crashes at once must keep backing off. */
    for (uint64_t t = 4000; t < 4002; t++) { /* an even and an odd clock reading */
        fake_t f = {.now_ms = t};
        nsys_backoff_t b;
        init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
        advance_three(&b);
        nsys_backoff_success(&b);
        cr_assert_eq(nsys_backoff_next(&b), 800,
                     "clock %llu: stable for 0 ms, yet the sequence started over",
                     (unsigned long long)t);
    }
}

Test(backoff, a_failure_ends_the_stable_period)
{
    fake_t f = {.now_ms = 3};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    advance_three(&b);
    nsys_backoff_success(&b);
    f.now_ms += 5000;
    nsys_backoff_failure(&b);
    f.now_ms += 6000; /* 11 s since success, but it failed after 5 s */
    cr_assert_eq(nsys_backoff_next(&b), 800, "the stable period ended at the failure");
}

Test(backoff, a_failure_after_a_long_stable_period_resets_for_the_next_delay)
{
    fake_t f = {.now_ms = 3};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    advance_three(&b);
    nsys_backoff_success(&b);
    f.now_ms += 12001;
    nsys_backoff_failure(&b);
    cr_assert_eq(nsys_backoff_next(&b), 100, "it was stable for 12 s before it failed");
}

Test(backoff, reset_starts_over_at_once)
{
    fake_t f = {.now_ms = 3};
    nsys_backoff_t b;
    init_fake(&b, &f, opts_of(100, 60000, 2.0, NSYS_BACKOFF_NO_JITTER, 10000));
    advance_three(&b);
    nsys_backoff_reset(&b);
    cr_assert_eq(b.attempt, 0);
    cr_assert_eq(nsys_backoff_next(&b), 100);
    cr_assert_eq(b.attempt, 1, "attempt counts the delays handed out since the reset");
}

/* ---- defaults ------------------------------------------------------------------------------ */

Test(backoff, grpc_defaults_are_1s_times_1_6_with_20_percent_jitter_capped_at_120s)
{
    nsys_backoff_opts_t g = nsys_backoff_grpc_defaults();
    cr_assert_eq(g.initial_ms, 1000);
    cr_assert_float_eq(g.multiplier, 1.6, 1e-12);
    cr_assert_float_eq(g.jitter, 0.2, 1e-12);
    cr_assert_eq(g.max_ms, 120000);
    cr_assert_eq(g.reset_after_ms, NSYS_BACKOFF_GRPC_RESET_MS);

    /* NULL options and NULL defaults: the gRPC policy. */
    nsys_backoff_t b;
    cr_assert_eq(nsys_backoff_init(&b, NULL, NULL), 0);
    cr_assert_eq(b.opts.initial_ms, 1000);
    cr_assert_eq(b.opts.max_ms, 120000);
    cr_assert_float_eq(b.opts.multiplier, 1.6, 1e-12);
    cr_assert_float_eq(b.opts.jitter, 0.2, 1e-12);
    fake_t f = {.now_ms = 1, .random = 0};
    nsys_backoff_set_sources(&b, fake_clock, fake_random, &f);
    cr_assert_eq(nsys_backoff_next(&b), 800);
    f.random = UINT64_MAX;
    cr_assert_eq(nsys_backoff_next(&b), 1920);
    for (int i = 0; i < 30; i++)
        cr_assert_leq(nsys_backoff_next(&b), 144000);
    cr_assert_eq((uint64_t)b.current_ms, 120000, "the un-jittered delay is capped at two minutes");
}

Test(backoff, zero_fields_take_the_callers_defaults_and_nonzero_fields_are_kept)
{
    nsys_backoff_opts_t d = opts_of(10, 2000, 2.0, 0.2, 10000);
    nsys_backoff_opts_t o = NSYS_BACKOFF_OPTS_DEFAULTS;
    o.max_ms = 500;
    o.jitter = NSYS_BACKOFF_NO_JITTER;
    nsys_backoff_t b;
    cr_assert_eq(nsys_backoff_init(&b, &o, &d), 0);
    cr_assert_eq(b.opts.initial_ms, 10, "initial from the defaults");
    cr_assert_eq(b.opts.max_ms, 500, "max as given");
    cr_assert_float_eq(b.opts.multiplier, 2.0, 1e-12);
    cr_assert_float_eq(b.opts.jitter, 0.0, 1e-12, "NSYS_BACKOFF_NO_JITTER means none");
    cr_assert_eq(b.opts.reset_after_ms, 10000);
    cr_assert_eq(b.attempt, 0);
    cr_assert_eq((uint64_t)b.current_ms, 10, "the first delay is the initial one");
}

/* ---- validation ---------------------------------------------------------------------------- */

Test(backoff, invalid_options_are_rejected_with_einval)
{
    nsys_backoff_opts_t d = nsys_backoff_grpc_defaults();
    nsys_backoff_t b;
    nsys_backoff_opts_t bad[] = {
        opts_of(100, 1000, 0.5, 0.2, 1000),  /* multiplier < 1 */
        opts_of(100, 1000, 2.0, 1.5, 1000),  /* jitter > 1 */
        opts_of(100, 1000, 2.0, -0.5, 1000), /* negative jitter (not the NO_JITTER marker) */
        opts_of(2000, 1000, 2.0, 0.2, 1000), /* initial > max */
        opts_of(100, 1000, NAN, 0.2, 1000),  /* not a number */
        opts_of(100, 1000, 2.0, NAN, 1000),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(nsys_backoff_init(&b, &bad[i], &d), NSYS_EINVAL, "options #%zu accepted", i);
    nsys_backoff_opts_t ok = opts_of(100, 100, 1.0, 1.0, 1000); /* the edges are valid */
    cr_assert_eq(nsys_backoff_init(&b, &ok, &d), 0);
    cr_assert_eq(nsys_backoff_init(NULL, &ok, &d), NSYS_EINVAL);
}

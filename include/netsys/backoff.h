/* netsys/backoff.h — the one backoff policy netsys uses for supervisor
 * restarts and client reconnects.
 *
 * delay(n) = min(initial * multiplier^n, max), then spread by a symmetric
 * jitter: uniformly in [delay * (1 - jitter), delay * (1 + jitter)], as in
 * gRPC's connection backoff. So no delay ever exceeds max * (1 + jitter).
 * After the guarded thing has been stable for `reset_after_ms` the sequence
 * starts again from `initial`. nsys_backoff_next_full_jitter draws from
 * [0, delay(n)] instead, for a retry that many peers would otherwise make
 * together.
 *
 * The clock and the random source are injectable so tests are exact. The
 * built-in random source is seeded per backoff from the clock, the
 * backoff's address and a process-wide counter, mixed, so backoffs set up
 * in the same instant (a thousand clients started at once) draw unrelated
 * delays. A backoff is plain data owned by its user: no threads, no
 * allocation.
 */
#ifndef NETSYS_BACKOFF_H
#define NETSYS_BACKOFF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nsys_backoff_opts {
    uint64_t initial_ms;    /* first delay; 0: default */
    uint64_t max_ms;        /* cap before jitter; 0: default */
    double multiplier;      /* >= 1; 0: default */
    double jitter;          /* 0..1; 0: default; NSYS_BACKOFF_NO_JITTER for none */
    uint64_t reset_after_ms; /* stable time that resets the sequence; 0: default */
} nsys_backoff_opts_t;
#define NSYS_BACKOFF_OPTS_DEFAULTS {0, 0, 0.0, 0.0, 0}
#define NSYS_BACKOFF_NO_JITTER (-1.0)

/* gRPC connection-backoff defaults (client reconnects). */
#define NSYS_BACKOFF_GRPC_INITIAL_MS 1000u
#define NSYS_BACKOFF_GRPC_MAX_MS 120000u
#define NSYS_BACKOFF_GRPC_MULTIPLIER 1.6
#define NSYS_BACKOFF_GRPC_JITTER 0.2
#define NSYS_BACKOFF_GRPC_RESET_MS 10000u

typedef uint64_t (*nsys_backoff_clock_fn)(void *userdata);  /* monotonic ms */
typedef uint64_t (*nsys_backoff_random_fn)(void *userdata); /* uniform 64 bits */

typedef struct nsys_backoff {
    nsys_backoff_opts_t opts; /* with defaults applied */
    uint32_t attempt;         /* delays handed out since the last reset */
    double current_ms;        /* un-jittered delay of the next attempt (exact, not rounded) */
    uint64_t stable_since_ms; /* clock at nsys_backoff_success, valid while `stable` */
    int stable;               /* established and not failed since */
    nsys_backoff_clock_fn clock;
    nsys_backoff_random_fn random;
    void *userdata;
    uint64_t rng_state;
} nsys_backoff_t;

/* Validates opts (NULL: all defaults) and fills `defaults` where a field is
 * zero; the defaults passed are those of the caller's domain (use
 * nsys_backoff_grpc_defaults for reconnects). NSYS_EINVAL on nonsense such
 * as multiplier < 1, jitter > 1 or initial > max. */
int nsys_backoff_init(nsys_backoff_t *b, const nsys_backoff_opts_t *opts,
                      const nsys_backoff_opts_t *defaults);

nsys_backoff_opts_t nsys_backoff_grpc_defaults(void);

/* Replaces the clock and/or random source (NULL keeps the built-in one: a
 * monotonic clock and a per-backoff xorshift, seeded as said above). */
void nsys_backoff_set_sources(nsys_backoff_t *b, nsys_backoff_clock_fn clock,
                              nsys_backoff_random_fn random, void *userdata);

/* The next delay in ms; advances the sequence. If the guarded thing had been
 * stable for reset_after_ms since nsys_backoff_success, starts over first. */
uint64_t nsys_backoff_next(nsys_backoff_t *b);

/* The next delay drawn uniformly from the whole of [0, delay(n)] (whole
 * milliseconds, both ends included: "full jitter") instead of the symmetric
 * band; advances the sequence as nsys_backoff_next does. For the retry that
 * every peer of one failed thing makes at the same moment (the clients of a
 * server that went away): spread over the whole period they come back
 * evenly, not in a burst. Without jitter (NSYS_BACKOFF_NO_JITTER) it is
 * delay(n). */
uint64_t nsys_backoff_next_full_jitter(nsys_backoff_t *b);

/* Marks the guarded thing as established now (a connect completed, a child
 * started); the sequence resets once it stays so for reset_after_ms. */
void nsys_backoff_success(nsys_backoff_t *b);

/* Marks a failure of the established thing: the stable period is over. */
void nsys_backoff_failure(nsys_backoff_t *b);

/* Starts the sequence over at once. */
void nsys_backoff_reset(nsys_backoff_t *b);

#ifdef __cplusplus
}
#endif
#endif

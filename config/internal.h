/* config/internal.h — private to config/: the diagnostics list, the path
 * builder, the registry snapshot and the small text helpers the loader and
 * the validator share. Not for: anything outside config/ (the public API is
 * include/netsys/config.h). */
#ifndef NSYS_CONFIG_INTERNAL_H
#define NSYS_CONFIG_INTERNAL_H

#include <netsys/config.h>
#include <netsys/transport.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A document with more errors than this is hopeless; the rest are summed up
 * in one last entry instead of growing the list without bound. */
#define NSYS__CONFIG_MAX_ERRORS 1000

/* ---- diagnostics ---------------------------------------------------------- */

/* How an entry prints: at a JSON path, at a line and column (syntax), or as
 * a plain message about the source itself (I/O). */
typedef enum nsys__diag_kind {
    NSYS__DIAG_PATH = 0,
    NSYS__DIAG_SYNTAX = 1,
    NSYS__DIAG_IO = 2
} nsys__diag_kind_t;

typedef struct nsys__diag_entry {
    char *path;    /* owned */
    char *message; /* owned */
    int line, column;
    nsys__diag_kind_t kind;
} nsys__diag_entry_t;

struct nsys_config_diag {
    nsys__diag_entry_t *entries; /* owned, `count` used of `cap` */
    size_t count, cap;
    size_t dropped; /* errors past NSYS__CONFIG_MAX_ERRORS */
    bool oom;       /* an entry could not be stored */
    char *source;   /* owned; what nsys_config_diag_print names by default */
};

/* A new, empty list; `source` (may be NULL) is copied. */
nsys_config_diag_t *nsys__diag_new(const char *source);
/* Adds an entry of any kind; line/column 0 when unknown. */
void nsys__diag_add(nsys_config_diag_t *d, nsys__diag_kind_t kind, const char *path, int line,
                    int column, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* Appends the "N more errors" summary if errors were dropped. */
void nsys__diag_finish(nsys_config_diag_t *d);

/* ---- growable text -------------------------------------------------------- */

/* A NUL-terminated string that grows on demand; `oom` sticks once an
 * allocation failed (the text then stays as it was). Freed with free(buf). */
typedef struct nsys__text {
    char *buf;
    size_t len, cap;
    bool oom;
} nsys__text_t;

void nsys__text_init(nsys__text_t *t);
void nsys__text_free(nsys__text_t *t);
void nsys__text_append(nsys__text_t *t, const char *s, size_t n);
void nsys__text_puts(nsys__text_t *t, const char *s);
void nsys__text_vprintf(nsys__text_t *t, const char *fmt, va_list ap);
void nsys__text_printf(nsys__text_t *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends `s` (n bytes) as a JSON string literal, quotes included; at most
 * `max` bytes of it (cut at a UTF-8 boundary, then "..." inside the quotes). */
void nsys__text_quote(nsys__text_t *t, const char *s, size_t n, size_t max);
/* Appends a path segment for object key `key`: ".key" when it is a plain
 * identifier, ['key'] (escaped, shortened) otherwise. */
void nsys__text_key(nsys__text_t *t, const char *key);
/* Appends a number as the shortest "%.Ng" form that reads back exactly. */
void nsys__text_number(nsys__text_t *t, double v);
/* Appends a duration in ms in its largest exact unit: "2s", "90s", "1500ms". */
void nsys__text_ms(nsys__text_t *t, uint64_t ms);
/* Appends a size in bytes in its largest exact unit: "4KiB", "1MiB", "1000B". */
void nsys__text_size(nsys__text_t *t, uint64_t bytes);
/* Appends ", got ...": the value itself when `as_value` (the type was right but
 * the value was not: a string quoted and shortened, a number as written),
 * otherwise what kind of JSON value was found ("a string", "an array", "null"). */
void nsys__text_got(nsys__text_t *t, const cJSON *item, bool as_value);
/* Appends `"a", "b", "c"`. */
void nsys__text_quoted_list(nsys__text_t *t, const char *const *names, size_t n);
/* Appends the message for an unknown key: `unknown key; did you mean "x"?`
 * when one of `allowed` is a near miss, else `unknown key; expected one of
 * ...` listing them all. */
void nsys__text_unknown_key(nsys__text_t *t, const char *key, const char *const *allowed,
                            size_t nallowed);

/* ---- names ---------------------------------------------------------------- */

/* True for 1..63 bytes of [A-Za-z0-9_.-] (ids, the root name, kind names). */
bool nsys__config_valid_name(const char *s);

/* The candidate the user most likely meant by `word`: a case-insensitive
 * match, else the nearest by edit distance if it is at most 2 (and smaller
 * than the candidate's own length, so "x" never suggests "id"); NULL if none. */
const char *nsys__config_suggest(const char *word, const char *const *cands, size_t n);

/* ---- registry ------------------------------------------------------------- */

/* netsys's own kinds (net_kinds.c: "listener"), which the registry adds
 * before anything else the first time any registry function runs, so they
 * come first in every listing. Called once (pthread_once). */
const nsys_config_kind_t *nsys__config_builtin_kinds(size_t *n);
/* The "proxy" kind (proxy_kind.c), then the "client" kind (client_kind.c),
 * added right after those. */
const nsys_config_kind_t *nsys__config_proxy_kinds(size_t *n);
const nsys_config_kind_t *nsys__config_client_kinds(size_t *n);

/* A copy of every registered kind, in registration order, taken under the
 * registry lock so one document is validated against one consistent view.
 * *kinds is freed with free(); the strings stay the registrants'. */
int nsys__config_kinds_snapshot(nsys_config_kind_t **kinds, size_t *n);

/* ---- validation ----------------------------------------------------------- */

/* Validates a parsed document and builds the config from it (taking the
 * document on success). Returns 0, NSYS_ECONFIG (errors in d) or NSYS_ENOMEM. */
int nsys__config_build(cJSON *doc, nsys_config_diag_t *d, nsys_config_t **out);

/* The network kinds' host names: a string of 1..NSYS__CONFIG_HOST_MAX
 * characters at `key` of `obj` (a DNS name is at most 253). Returns 0 and
 * sets *out, or an error as the nsys_config_arg_* helpers do. */
#define NSYS__CONFIG_HOST_MAX 255
int nsys__config_arg_host(const cJSON *obj, const char *path, const char *key, const char **out,
                          nsys_config_diag_t *d);

/* The backoff keys of a supervisor's "backoff" and a client's "reconnect",
 * read into `b` (fields of absent keys are left alone): initial, max,
 * reset_after (1ms..1h), multiplier (1..100), jitter (0..1; 0 means none).
 * initial must not exceed max, the given defaults standing in for an absent
 * one. Keys other than these and the `nextra` (<= 8) `extra_keys`, which the
 * caller reads, are reported as unknown. */
void nsys__config_read_backoff(const cJSON *obj, const char *path, nsys_config_diag_t *d,
                               const char *const *extra_keys, size_t nextra,
                               uint64_t default_initial_ms, uint64_t default_max_ms,
                               nsys_backoff_opts_t *b);

/* The "transport" object of the network kinds (net_kinds.c), into `o`
 * (which holds the defaults). docs/CONFIG.md lists its keys. */
void nsys__config_read_transport(const cJSON *t, const char *path, nsys_config_diag_t *d,
                                 nsys_transport_opts_t *o);

/* The end of a network kind's init: logs every error `d` collected as
 * "KIND: PATH: MESSAGE", frees `d`, and returns 0, NSYS_ECONFIG (errors) or
 * NSYS_ENOMEM (the diag ran out of memory). */
int nsys__config_kind_args_done(const char *kind, nsys_config_diag_t *d);

#endif

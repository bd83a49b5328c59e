/* netsys/config.h — a whole service as one JSON document: runtime options
 * and a supervision tree, validated strictly before anything starts.
 *
 * Loading collects every error of a document, each naming its JSON path and
 * what was expected:
 *
 *   $.supervisor.children[2].restart: expected one of "permanent",
 *     "transient", "temporary", got "always"
 *
 * Syntax errors give a line and column. Documents over 16 MiB or nested more
 * than 64 levels are refused. A document with any error yields no config, so
 * an invalid document can never partially start a tree.
 *
 * Behaviours are named in the document and looked up in a process-wide
 * registry that programs extend with nsys_config_register(); netsys's own
 * kinds register themselves. An entry may validate its `args` object so that
 * its errors carry paths like every other.
 *
 * Durations are strings with a unit: "250ms", "5s", "2m", "1h" (integer
 * amounts). Sizes are strings with a unit: "512B", "64KiB", "1MiB", "1GiB".
 */
#ifndef NETSYS_CONFIG_H
#define NETSYS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "client.h"
#include "log.h"
#include "runtime.h"
#include "supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NSYS_CONFIG_MAX_BYTES (16u * 1024u * 1024u)
#define NSYS_CONFIG_MAX_DEPTH 64

/* ---- diagnostics ----------------------------------------------------------- */

typedef struct nsys_config_diag nsys_config_diag_t;

/* An empty list, for a kind that checks args in its init (args of children
 * started at run time were never validated); NULL when out of memory. */
nsys_config_diag_t *nsys_config_diag_new(void);

/* Adds an error at `path` (e.g. "$.supervisor.children[0].args.port"). */
void nsys_config_error(nsys_config_diag_t *d, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

size_t nsys_config_diag_count(const nsys_config_diag_t *d);
const char *nsys_config_diag_path(const nsys_config_diag_t *d, size_t i);    /* "$..." */
const char *nsys_config_diag_message(const nsys_config_diag_t *d, size_t i); /* no path */
int nsys_config_diag_line(const nsys_config_diag_t *d, size_t i);   /* 0 if unknown */
int nsys_config_diag_column(const nsys_config_diag_t *d, size_t i); /* 0 if unknown */
/* Prints every error as "SOURCE: PATH: MESSAGE" (or "SOURCE:LINE:COL: MESSAGE"). */
void nsys_config_diag_print(const nsys_config_diag_t *d, const char *source, FILE *out);
void nsys_config_diag_free(nsys_config_diag_t *d);

/* ---- value helpers for args validators ------------------------------------- */

/* The documented forms: a duration is "<integer><unit>" with unit us, ms, s,
 * m or h; a size is "<integer><unit>" with unit B, KiB, MiB or GiB. Return 0
 * or NSYS_EINVAL (bad form) / NSYS_ERANGE (overflow). A duration given in us
 * is rounded up to whole ms by nsys_config_parse_duration. */
int nsys_config_parse_duration(const char *text, uint64_t *ms);
int nsys_config_parse_duration_us(const char *text, uint64_t *us);
int nsys_config_parse_size(const char *text, uint64_t *bytes);

/* ---- args validators ---------------------------------------------------------
 *
 * A kind's validator checks its args with these, so its errors read exactly
 * like the loader's, at `path` followed by ".key" (or "['key']"):
 *
 *   $.supervisor.children[2].args.port: expected an integer 0..65535, got 70000
 *   $.supervisor.children[2].args.prot: unknown key; did you mean "port"?
 *
 * `obj` is the object that holds the key and `path` that object's own path;
 * an `obj` that is NULL or not an object has no keys. The getters return 0
 * with *out set when the value is right, NSYS_ENOENT when the key is absent
 * (nothing is reported), NSYS_EINVAL when the value is wrong (reported; *out
 * is left alone). `d` may be NULL: nothing is reported then, which is how an
 * init reads args its validator already checked. Ranges are inclusive. */

/* 0 when `value` is an object, NSYS_ENOENT when it is NULL, NSYS_EINVAL
 * (reported at `path`: "expected an object, got an array") otherwise. */
int nsys_config_check_object(const cJSON *value, const char *path, nsys_config_diag_t *d);
/* Reports every key of `obj` that is not one of the `n` `keys`:
 * `unknown key; did you mean "port"?` when one is a near miss (case, or at
 * most 2 edits), else `unknown key; expected one of "host", "port", ...`.
 * A repeated key is reported once (the loader reports the repetition). */
void nsys_config_check_keys(const cJSON *obj, const char *path, const char *const *keys, size_t n,
                            nsys_config_diag_t *d);
/* 0 when `key` is present; otherwise reports `missing required key "key"`
 * at `path` and returns NSYS_ENOENT. */
int nsys_config_require(const cJSON *obj, const char *path, const char *key, nsys_config_diag_t *d);

/* A JSON number without a fraction in min..max:
 * `expected an integer 1..65535, got 70000` / `..., got a string`. */
int nsys_config_arg_int(const cJSON *obj, const char *path, const char *key, int64_t min,
                        int64_t max, int64_t *out, nsys_config_diag_t *d);
/* A JSON number in min..max (fractions allowed): `expected a number 1..100, got 0.5`. */
int nsys_config_arg_number(const cJSON *obj, const char *path, const char *key, double min,
                           double max, double *out, nsys_config_diag_t *d);
/* true or false: `expected true or false, got a string`. */
int nsys_config_arg_bool(const cJSON *obj, const char *path, const char *key, bool *out,
                         nsys_config_diag_t *d);
/* Any string, lent from the document: `expected a string, got a number`. */
int nsys_config_arg_string(const cJSON *obj, const char *path, const char *key, const char **out,
                           nsys_config_diag_t *d);
/* One of the `n` `names`; *index is its position among them:
 * `expected one of "length", "raw", got "lenght"`. */
int nsys_config_arg_enum(const cJSON *obj, const char *path, const char *key,
                         const char *const *names, size_t n, int *index, nsys_config_diag_t *d);
/* A duration in min_ms..max_ms (us rounded up to ms):
 * `expected a duration such as "500ms" or "5s", got 5000` /
 * `expected a duration 1ms..1h, got "2h"`. */
int nsys_config_arg_duration(const cJSON *obj, const char *path, const char *key, uint64_t min_ms,
                             uint64_t max_ms, uint64_t *ms, nsys_config_diag_t *d);
/* A size in min..max bytes:
 * `expected a size such as "64KiB" or "1MiB", got "64KB"` /
 * `expected a size 1B..1GiB, got "2GiB"`. */
int nsys_config_arg_size(const cJSON *obj, const char *path, const char *key, uint64_t min,
                         uint64_t max, uint64_t *bytes, nsys_config_diag_t *d);
/* A nested object (lent from the document): `expected an object, got an array`. */
int nsys_config_arg_object(const cJSON *obj, const char *path, const char *key, const cJSON **out,
                           nsys_config_diag_t *d);

/* Adds "expected " + the formatted text + ", got " + `value` at `path`, for
 * checks the getters do not cover: a string or number value is quoted as
 * written (shortened), other values are named ("an array", "null"). */
void nsys_config_expected(nsys_config_diag_t *d, const char *path, const cJSON *value,
                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* `path` + ".key" (or "['key']" for a key that is not an identifier), and
 * `path` + "[i]": the paths of nested values. Freed with nsys_free; NULL when
 * out of memory. */
char *nsys_config_path_key(const char *path, const char *key);
char *nsys_config_path_index(const char *path, size_t i);

/* ---- behaviour registry --------------------------------------------------- */

/* Validates a child's `args` (NULL when absent). Adds errors with paths under
 * `path` (which names the args object itself). */
typedef void (*nsys_args_validate_fn)(const cJSON *args, const char *path, nsys_config_diag_t *d);

typedef struct nsys_config_kind {
    const char *name;                  /* as written in "behaviour" */
    const nsys_behaviour_t *behaviour;
    nsys_args_validate_fn validate;    /* may be NULL: any object accepted */
    const char *summary;               /* one line for `netsys check --kinds` and errors */
} nsys_config_kind_t;

/* Registers a behaviour kind (the struct is copied; its strings and behaviour
 * must outlive the process's use of configs). NSYS_EEXIST if the name is
 * taken. Thread-safe. */
int nsys_config_register(const nsys_config_kind_t *kind);
int nsys_config_unregister(const char *name);
const nsys_config_kind_t *nsys_config_find_kind(const char *name);
/* Names in registration order; *names is freed with nsys_free (not the strings). */
int nsys_config_kind_names(const char ***names, size_t *n);

/* ---- the client kind's args ----------------------------------------------- */

#define NSYS_CONFIG_STOP_ON_MAX 8

/* A "client" child's args (docs/CONFIG.md, "client") as client options. */
typedef struct nsys_config_client {
    nsys_client_opts_t opts;              /* strings point into the args */
    int stop_on[NSYS_CONFIG_STOP_ON_MAX]; /* opts.stop_on points here */
    const char *register_name;            /* "register", NULL if absent */
    const char *owner_name;               /* "owner", NULL if absent */
} nsys_config_client_t;

/* Reads the args of a "client" child at `path` into `out`, reporting every
 * problem to `d` (not NULL). For kinds that embed a client, so that their
 * documents say it the same way. Returns 0, or NSYS_ECONFIG when it
 * reported anything (then `out` is incomplete). The owner and register names
 * are left for the caller to act on. Keep `out` where it is: opts.stop_on
 * points into it. */
int nsys_config_client_args(const cJSON *args, const char *path, nsys_config_client_t *out,
                            nsys_config_diag_t *d);

/* ---- documents -------------------------------------------------------------- */

typedef struct nsys_config nsys_config_t;

/* Parses and validates. On success *out is the config and *diag NULL; on
 * failure (NSYS_ECONFIG, or an I/O error for files) *out is NULL and *diag
 * (if diag is not NULL) holds every error. `source` names the document in
 * messages. */
int nsys_config_load_file(const char *path, nsys_config_t **out, nsys_config_diag_t **diag);
int nsys_config_load_string(const char *json, size_t len, const char *source, nsys_config_t **out,
                            nsys_config_diag_t **diag);
void nsys_config_free(nsys_config_t *cfg);

/* Runtime options from "runtime" (zero fields where absent). */
const nsys_runtime_opts_t *nsys_config_runtime_opts(const nsys_config_t *cfg);
/* "runtime.log_level", NSYS_LOG_INFO when absent. */
nsys_log_level_t nsys_config_log_level(const nsys_config_t *cfg);
/* The root supervisor's spec; valid until nsys_config_free. Observers are
 * NSYS_REF_NONE: set spec->observer on a copy if needed. */
const nsys_sup_spec_t *nsys_config_root(const nsys_config_t *cfg);
/* The root supervisor's name ("name" at the top level, default "root"). */
const char *nsys_config_name(const nsys_config_t *cfg);

#ifdef __cplusplus
}
#endif
#endif

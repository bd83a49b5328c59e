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

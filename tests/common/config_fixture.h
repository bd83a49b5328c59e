/* tests/common/config_fixture.h — loading JSON configuration documents in
 * tests (netsys/config.h): documents written with single quotes, a loader
 * for documents that must be valid, and checks that an invalid one reports
 * exactly the errors expected (path and whole message, in order).
 *
 * JSON in the tests' tables is written with single quotes, which dq() turns
 * into double quotes before parsing, so documents stay readable. W() wraps
 * one child in a root supervisor; ARGS is the path of that child's args.
 *
 * The names are the short ones the config suites' tables were written with
 * (load_ok, EXPECT_ERRORS, ...). The functions assert with Criterion, so
 * only the test thread may call them; the ThreadSanitizer build gets the
 * same macros from tests/tsan_shim.
 *
 * Not for: documents loaded from files, or checks on a substring of a
 * message (test_config.c has its own for its table of malformed documents).
 */
#ifndef NSYS_TESTS_COMMON_CONFIG_FIXTURE_H
#define NSYS_TESTS_COMMON_CONFIG_FIXTURE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <netsys/netsys.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A document whose root supervisor has one child `child` (JSON). */
#define W(child) "{'supervisor': {'children': [" child "]}}"
/* The path of that child's args. */
#define ARGS "$.supervisor.children[0].args"

/* A copy of `s` with every ' turned into "; the caller frees it. */
static inline char *dq(const char *s)
{
    char *c = strdup(s);
    cr_assert_not_null(c);
    for (char *p = c; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return c;
}

/* The errors of `d` as nsys_config_diag_print writes them for "doc"; the
 * caller frees the text. */
static inline char *diag_text(const nsys_config_diag_t *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    nsys_config_diag_print(d, "doc", f);
    fclose(f);
    return buf;
}

/* Loads a document that must be valid (its errors are logged if it is
 * not); the caller frees it with nsys_config_free. */
static inline nsys_config_t *load_ok(const char *json_sq)
{
    char *json = dq(json_sq);
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    int rc = nsys_config_load_string(json, strlen(json), "doc", &cfg, &d);
    if (rc != 0) {
        char *t = diag_text(d);
        cr_log_error("%s", t != NULL ? t : "");
        free(t);
        nsys_config_diag_free(d);
    }
    free(json);
    cr_assert_eq(rc, 0, "load failed: %s", nsys_strerror(rc));
    cr_assert_null(d);
    cr_assert_not_null(cfg);
    return cfg;
}

/* One expected error: its exact path and exact message. */
typedef struct want {
    const char *path;
    const char *msg;
} want_t;

/* Checks that `d` holds exactly the errors given, in this order. */
static inline void expect_diag(const nsys_config_diag_t *d, const want_t *want, size_t n)
{
    char *t = diag_text(d);
    cr_expect_eq(nsys_config_diag_count(d), n, "want %zu errors, got:\n%s", n, t);
    for (size_t i = 0; i < n && i < nsys_config_diag_count(d); i++) {
        cr_expect_str_eq(nsys_config_diag_path(d, i), want[i].path, "error %zu of:\n%s", i, t);
        cr_expect_str_eq(nsys_config_diag_message(d, i), want[i].msg, "error %zu of:\n%s", i, t);
    }
    free(t);
}

/* Loads an invalid document and checks its errors. */
static inline void expect_errors(const char *json_sq, const want_t *want, size_t n)
{
    char *json = dq(json_sq);
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    int rc = nsys_config_load_string(json, strlen(json), "doc", &cfg, &d);
    free(json);
    cr_assert_eq(rc, NSYS_ECONFIG, "expected NSYS_ECONFIG, got %s", nsys_strerror(rc));
    cr_assert_null(cfg);
    expect_diag(d, want, n);
    nsys_config_diag_free(d);
}

/* EXPECT_ERRORS(json_sq, {path, msg}, ...): expect_errors with the list
 * written in place. */
#define EXPECT_ERRORS(json, ...)                                                                   \
    do {                                                                                           \
        const want_t w_[] = {__VA_ARGS__};                                                         \
        expect_errors(json, w_, sizeof w_ / sizeof w_[0]);                                         \
    } while (0)

#endif

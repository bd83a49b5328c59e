/* tests/tsan_shim/criterion/criterion.h — the part of Criterion's API that
 * netsys tests use, for ThreadSanitizer builds only.
 *
 * Criterion cannot start under TSAN (its BoxFort arena maps memory inside the
 * ranges TSAN reserves; Criterion issue #274), so with NETSYS_SANITIZE=thread
 * tests/CMakeLists.txt puts tests/tsan_shim first on the include path and
 * links tests/tsan_shim/runner.c instead of libcriterion. The test files do
 * not change: they include <criterion/criterion.h> and get this file.
 *
 * What it gives, with Criterion's meaning:
 *   Test(suite, name, .init, .fini, .timeout, .disabled, .exit_code,
 *        .signal, .description)    a test, run in its own child process;
 *   TestSuite(suite, same options) options for every test of the suite;
 *   ParameterizedTest and cr_make_param_array (criterion/parameterized.h);
 *   cr_assert*()  on failure, records it and ends the test (fini still runs);
 *   cr_expect*()  on failure, records it and the test goes on;
 *   cr_assert_fail / cr_expect_fail, cr_skip_test.
 * Every check takes an optional printf-style message after its operands.
 * Assertion failures are meant for the test's own thread, as in Criterion; a
 * cr_assert* that fails on another thread is still recorded, and then ends
 * the whole test process at once.
 *
 * Not for: theories, redirections, the "new" assert API
 * (criterion/new/assert.h). Add them here when a test needs them.
 */
#ifndef NSYS_TSAN_SHIM_CRITERION_H
#define NSYS_TSAN_SHIM_CRITERION_H

/* The standard headers Criterion's own criterion.h brings in, so that a test
 * that compiles against Criterion compiles here. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "logging.h" /* Criterion's criterion.h brings in cr_log too */

/* ---- test and suite options --------------------------------------------- */

struct criterion_test_extra_data {
    int sentinel_; /* lets Test(s, n) with no options still initialise something */
    void (*init)(void);
    void (*fini)(void);
    int signal;    /* the test passes only if it dies of this signal */
    int exit_code; /* the test passes only if the process exits with this */
    bool disabled;
    const char *description;
    double timeout; /* seconds; 0: the suite's, else the runner's default */
    void *data;
};

/* What a ParameterizedTestParameters function returns (criterion/
 * parameterized.h): `length` elements of `size` bytes at `params`. The
 * runner calls it before forking, so plain malloc'd memory reaches the
 * children; `cleanup` (may be NULL) runs once all tests are done. */
struct criterion_test_params {
    size_t size;
    void *params;
    size_t length;
    void (*cleanup)(struct criterion_test_params *);
};

struct crs_test {
    const char *suite;
    const char *name;
    const char *file;
    unsigned line;
    void (*fn)(void);                             /* a Test, or NULL */
    void (*param_fn)(void *param);                /* a ParameterizedTest, or NULL */
    struct criterion_test_params (*params)(void); /* its parameters */
    struct criterion_test_extra_data opts;
    struct crs_test *next; /* registration list, owned by the runner */
};

struct crs_suite {
    const char *name;
    struct criterion_test_extra_data opts;
    struct crs_suite *next;
};

void crs_register_test(struct crs_test *t);
void crs_register_suite(struct crs_suite *s);

#define CRS_CAT_(A, B) CRS_CAT2_(A, B)
#define CRS_CAT2_(A, B) A##B

#define Test(...) CRS_TEST_(__VA_ARGS__, .sentinel_ = 0)
#define CRS_TEST_(Suite, Name, ...)                                                                \
    static void crs_fn_##Suite##__##Name(void);                                                    \
    static struct crs_test crs_test_##Suite##__##Name = {                                          \
        .suite = #Suite,                                                                           \
        .name = #Name,                                                                             \
        .file = __FILE__,                                                                          \
        .line = __LINE__,                                                                          \
        .fn = crs_fn_##Suite##__##Name,                                                            \
        .opts = {__VA_ARGS__},                                                                     \
    };                                                                                             \
    __attribute__((constructor)) static void crs_register_##Suite##__##Name(void)                  \
    {                                                                                              \
        crs_register_test(&crs_test_##Suite##__##Name);                                            \
    }                                                                                              \
    static void crs_fn_##Suite##__##Name(void)

/* Ends with a definition so that the caller's ';' closes it (an extra ';'
 * after a function body is not ISO C). */
#define TestSuite(...) CRS_SUITE_(__VA_ARGS__, .sentinel_ = 0)
#define CRS_SUITE_(Suite, ...)                                                                     \
    static struct crs_suite crs_suite_##Suite;                                                     \
    __attribute__((constructor)) static void crs_register_suite_##Suite(void)                      \
    {                                                                                              \
        crs_register_suite(&crs_suite_##Suite);                                                    \
    }                                                                                              \
    static struct crs_suite crs_suite_##Suite = {.name = #Suite, .opts = {__VA_ARGS__}}

/* Criterion's allocator for data shared with the tests; the runner forks
 * after the parameters are made, so the C library's will do. */
void *cr_malloc(size_t size);
void *cr_calloc(size_t nmemb, size_t size);
void *cr_realloc(void *ptr, size_t size);
void cr_free(void *ptr);

/* ---- reporting (runner.c) ------------------------------------------------ */

/* Records a failure at file:line. The message is the caller's format when it
 * is not empty, else `dflt` with $1, $2, $3 replaced by the first arguments
 * of the check as written (`args` is their text, before macro expansion, so
 * atomic_load(&x) reads as such); `actual`/`expected` (may be NULL) are shown
 * after it. The format always starts with one 'x' that is not printed: it
 * lets "x" glue onto an absent message without an empty format string. */
__attribute__((format(printf, 7, 8))) void
crs_expect_failed(const char *file, unsigned line, const char *dflt, const char *args,
                  const char *actual, const char *expected, const char *fmt, ...);
/* The same, then ends the test: back to the runner on the test's thread
 * (fini still runs), the process exits on any other thread. */
__attribute__((noreturn, format(printf, 7, 8))) void
crs_assert_failed(const char *file, unsigned line, const char *dflt, const char *args,
                  const char *actual, const char *expected, const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2))) void crs_skip(const char *fmt, ...);

/* ---- argument lists -------------------------------------------------------
 * CRS_HEAD_(a, ...) is a; CRS_TAIL_(a, ...) is what follows a (maybe
 * nothing). Works up to 32 arguments without GNU ", ##__VA_ARGS__". */

#define CRS_PICK_(_01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16,  \
                  _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32,  \
                  N, ...)                                                                          \
    N
#define CRS_MANY_(...)                                                                             \
    CRS_PICK_(__VA_ARGS__, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, \
              M, M, M, M, M, M, M, 1, _)
#define CRS_HEAD_(...) CRS_CAT_(CRS_HEAD_, CRS_MANY_(__VA_ARGS__))(__VA_ARGS__)
#define CRS_HEAD_1(H) H
#define CRS_HEAD_M(H, ...) H
#define CRS_TAIL_(...) CRS_CAT_(CRS_TAIL_, CRS_MANY_(__VA_ARGS__))(__VA_ARGS__)
#define CRS_TAIL_1(H)
#define CRS_TAIL_M(H, ...) __VA_ARGS__
#define CRS_1ST_(...) CRS_HEAD_(__VA_ARGS__)
#define CRS_2ND_(...) CRS_HEAD_(CRS_TAIL_(__VA_ARGS__))
#define CRS_3RD_(...) CRS_HEAD_(CRS_TAIL_(CRS_TAIL_(__VA_ARGS__)))
#define CRS_AFTER1_(...) CRS_TAIL_(__VA_ARGS__)
#define CRS_AFTER2_(...) CRS_TAIL_(CRS_TAIL_(__VA_ARGS__))
#define CRS_AFTER3_(...) CRS_TAIL_(CRS_TAIL_(CRS_TAIL_(__VA_ARGS__)))

/* Kind is assert or expect; Text is the check's arguments as written. */
#define CRS_FAILED_(Kind, Dflt, Text, Actual, Expected, ...)                                       \
    crs_##Kind##_failed(__FILE__, __LINE__, Dflt, Text, Actual, Expected, "x" __VA_ARGS__)

/* ---- checks -------------------------------------------------------------- */

#define CRS_BOOL_(Kind, Neg, Dflt, Text, ...)                                                      \
    CRS_BOOL2_(Kind, Neg, Dflt, Text, CRS_1ST_(__VA_ARGS__), CRS_AFTER1_(__VA_ARGS__))
#define CRS_BOOL2_(Kind, Neg, Dflt, Text, Cond, ...)                                               \
    do {                                                                                           \
        if (!(Neg(Cond)))                                                                          \
            CRS_FAILED_(Kind, Dflt, Text, NULL, NULL, __VA_ARGS__);                                \
    } while (0)

#define CRS_OP_(Kind, Op, Text, ...)                                                               \
    CRS_OP2_(Kind, Op, Text, CRS_1ST_(__VA_ARGS__), CRS_2ND_(__VA_ARGS__), CRS_AFTER2_(__VA_ARGS__))
#define CRS_OP2_(Kind, Op, Text, A, B, ...)                                                        \
    do {                                                                                           \
        if (!((A)Op(B)))                                                                           \
            CRS_FAILED_(Kind, "The expression ($1) " #Op " ($2) is false.", Text, NULL, NULL,      \
                        __VA_ARGS__);                                                              \
    } while (0)

#define CRS_NULL_(Kind, Op, Dflt, Text, ...)                                                       \
    CRS_NULL2_(Kind, Op, Dflt, Text, CRS_1ST_(__VA_ARGS__), CRS_AFTER1_(__VA_ARGS__))
#define CRS_NULL2_(Kind, Op, Dflt, Text, V, ...)                                                   \
    do {                                                                                           \
        if (!((V)Op NULL))                                                                         \
            CRS_FAILED_(Kind, Dflt, Text, NULL, NULL, __VA_ARGS__);                                \
    } while (0)

/* Strings: NULL on either side fails; the values are shown. */
#define CRS_STROP_(Kind, Op, Text, ...)                                                            \
    CRS_STROP2_(Kind, Op, Text, CRS_1ST_(__VA_ARGS__), CRS_2ND_(__VA_ARGS__),                      \
                CRS_AFTER2_(__VA_ARGS__))
#define CRS_STROP2_(Kind, Op, Text, A, B, ...)                                                     \
    do {                                                                                           \
        const char *crs_a_ = (A);                                                                  \
        const char *crs_b_ = (B);                                                                  \
        if (crs_a_ == NULL || crs_b_ == NULL || !(strcmp(crs_a_, crs_b_) Op 0))                    \
            CRS_FAILED_(Kind, "The expression (as strings) ($1) " #Op " ($2) is false.", Text,     \
                        crs_a_ == NULL ? "(null)" : crs_a_, crs_b_ == NULL ? "(null)" : crs_b_,    \
                        __VA_ARGS__);                                                              \
    } while (0)

#define CRS_STREMPTY_(Kind, Op, Dflt, Text, ...)                                                   \
    CRS_STREMPTY2_(Kind, Op, Dflt, Text, CRS_1ST_(__VA_ARGS__), CRS_AFTER1_(__VA_ARGS__))
#define CRS_STREMPTY2_(Kind, Op, Dflt, Text, V, ...)                                               \
    do {                                                                                           \
        const char *crs_v_ = (V);                                                                  \
        if (crs_v_ == NULL || !(crs_v_[0] Op '\0'))                                                \
            CRS_FAILED_(Kind, Dflt, Text, crs_v_ == NULL ? "(null)" : crs_v_, NULL, __VA_ARGS__);  \
    } while (0)

/* Arrays: cr_assert_arr_eq(a, b, size_in_bytes[, fmt, ...]). */
#define CRS_ARROP_(Kind, Op, Text, ...)                                                            \
    CRS_ARROP2_(Kind, Op, Text, CRS_1ST_(__VA_ARGS__), CRS_2ND_(__VA_ARGS__),                      \
                CRS_3RD_(__VA_ARGS__), CRS_AFTER3_(__VA_ARGS__))
#define CRS_ARROP2_(Kind, Op, Text, A, B, Size, ...)                                               \
    do {                                                                                           \
        if (!(memcmp((A), (B), (Size)) Op 0))                                                      \
            CRS_FAILED_(Kind, "The expression ($1)[0 .. $3] " #Op " ($2)[0 .. $3] is false.",      \
                        Text, NULL, NULL, __VA_ARGS__);                                            \
    } while (0)

/* Floats: cr_assert_float_eq(a, b, epsilon[, fmt, ...]). */
#define CRS_FLOAT_(Kind, Neg, Dflt, Text, ...)                                                     \
    CRS_FLOAT2_(Kind, Neg, Dflt, Text, CRS_1ST_(__VA_ARGS__), CRS_2ND_(__VA_ARGS__),               \
                CRS_3RD_(__VA_ARGS__), CRS_AFTER3_(__VA_ARGS__))
#define CRS_FLOAT2_(Kind, Neg, Dflt, Text, A, B, Eps, ...)                                         \
    do {                                                                                           \
        if (!(Neg((B) - (A) <= (Eps) && (A) - (B) <= (Eps))))                                      \
            CRS_FAILED_(Kind, Dflt, Text, NULL, NULL, __VA_ARGS__);                                \
    } while (0)

#define CRS_FAIL_(Kind, ...)                                                                       \
    CRS_FAILED_(Kind, "The conditions for this assertion were not met.", "", NULL, NULL,           \
                __VA_ARGS__)

#define CRS_TRUE_ "The expression $1 is false."
#define CRS_FALSE_ "The expression !($1) is false."
#define cr_assert(...) CRS_BOOL_(assert, , CRS_TRUE_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect(...) CRS_BOOL_(expect, , CRS_TRUE_, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_not(...) CRS_BOOL_(assert, !, CRS_FALSE_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_not(...) CRS_BOOL_(expect, !, CRS_FALSE_, #__VA_ARGS__, __VA_ARGS__)

#define cr_assert_eq(...) CRS_OP_(assert, ==, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_eq(...) CRS_OP_(expect, ==, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_neq(...) CRS_OP_(assert, !=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_neq(...) CRS_OP_(expect, !=, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_lt(...) CRS_OP_(assert, <, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_lt(...) CRS_OP_(expect, <, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_leq(...) CRS_OP_(assert, <=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_leq(...) CRS_OP_(expect, <=, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_gt(...) CRS_OP_(assert, >, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_gt(...) CRS_OP_(expect, >, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_geq(...) CRS_OP_(assert, >=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_geq(...) CRS_OP_(expect, >=, #__VA_ARGS__, __VA_ARGS__)

#define CRS_ISNULL_ "$1 is not null."
#define CRS_NOTNULL_ "$1 is null."
#define cr_assert_null(...) CRS_NULL_(assert, ==, CRS_ISNULL_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_null(...) CRS_NULL_(expect, ==, CRS_ISNULL_, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_not_null(...) CRS_NULL_(assert, !=, CRS_NOTNULL_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_not_null(...) CRS_NULL_(expect, !=, CRS_NOTNULL_, #__VA_ARGS__, __VA_ARGS__)

#define cr_assert_str_eq(...) CRS_STROP_(assert, ==, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_eq(...) CRS_STROP_(expect, ==, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_str_neq(...) CRS_STROP_(assert, !=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_neq(...) CRS_STROP_(expect, !=, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_str_lt(...) CRS_STROP_(assert, <, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_lt(...) CRS_STROP_(expect, <, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_str_leq(...) CRS_STROP_(assert, <=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_leq(...) CRS_STROP_(expect, <=, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_str_gt(...) CRS_STROP_(assert, >, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_gt(...) CRS_STROP_(expect, >, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_str_geq(...) CRS_STROP_(assert, >=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_geq(...) CRS_STROP_(expect, >=, #__VA_ARGS__, __VA_ARGS__)

#define CRS_EMPTY_ "$1 is not empty."
#define CRS_NOTEMPTY_ "$1 is empty."
#define cr_assert_str_empty(...) CRS_STREMPTY_(assert, ==, CRS_EMPTY_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_empty(...) CRS_STREMPTY_(expect, ==, CRS_EMPTY_, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_str_not_empty(...)                                                               \
    CRS_STREMPTY_(assert, !=, CRS_NOTEMPTY_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_str_not_empty(...)                                                               \
    CRS_STREMPTY_(expect, !=, CRS_NOTEMPTY_, #__VA_ARGS__, __VA_ARGS__)

#define cr_assert_arr_eq(...) CRS_ARROP_(assert, ==, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_arr_eq(...) CRS_ARROP_(expect, ==, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_arr_neq(...) CRS_ARROP_(assert, !=, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_arr_neq(...) CRS_ARROP_(expect, !=, #__VA_ARGS__, __VA_ARGS__)

#define CRS_FEQ_ "The expression ($1) == ($2) within $3 is false."
#define CRS_FNEQ_ "The expression ($1) != ($2) beyond $3 is false."
#define cr_assert_float_eq(...) CRS_FLOAT_(assert, , CRS_FEQ_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_float_eq(...) CRS_FLOAT_(expect, , CRS_FEQ_, #__VA_ARGS__, __VA_ARGS__)
#define cr_assert_float_neq(...) CRS_FLOAT_(assert, !, CRS_FNEQ_, #__VA_ARGS__, __VA_ARGS__)
#define cr_expect_float_neq(...) CRS_FLOAT_(expect, !, CRS_FNEQ_, #__VA_ARGS__, __VA_ARGS__)

#define cr_assert_fail(...) CRS_FAIL_(assert, __VA_ARGS__)
#define cr_expect_fail(...) CRS_FAIL_(expect, __VA_ARGS__)

#define cr_skip_test(...) crs_skip("x" __VA_ARGS__)

#endif

/* tests/unit/test_error.c — error codes, exit reasons, nsys_strerror and
 * nsys_errname (include/netsys/error.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <netsys/netsys.h>

#include "common/wait.h"

static const int own_codes[] = {NSYS_ENOACTOR, NSYS_ESTOPPED, NSYS_ESHUTDOWN, NSYS_EKILLED,
                                NSYS_ENAMETAKEN, NSYS_EHASNAME, NSYS_ENOTACTOR, NSYS_ECONFIG,
                                NSYS_EFAILED,  NSYS_ETOOMANY, NSYS_EGAVEUP};
static const char *const own_names[] = {"NSYS_ENOACTOR",   "NSYS_ESTOPPED",  "NSYS_ESHUTDOWN", "NSYS_EKILLED",
                                        "NSYS_ENAMETAKEN", "NSYS_EHASNAME",  "NSYS_ENOTACTOR", "NSYS_ECONFIG",
                                        "NSYS_EFAILED",    "NSYS_ETOOMANY",  "NSYS_EGAVEUP"};
#define N_OWN (sizeof(own_codes) / sizeof(own_codes[0]))

Test(error, passes_system_codes_through_as_negative_errno)
{
    cr_assert_eq(NSYS_EINVAL, -EINVAL);
    cr_assert_eq(NSYS_ENOMEM, -ENOMEM);
    cr_assert_eq(NSYS_ENOENT, -ENOENT);
    cr_assert_eq(NSYS_EEXIST, -EEXIST);
    cr_assert_eq(NSYS_EBUSY, -EBUSY);
    cr_assert_eq(NSYS_EAGAIN, -EAGAIN);
    cr_assert_eq(NSYS_ECANCELED, -ECANCELED);
    cr_assert_eq(NSYS_ETIMEDOUT, -ETIMEDOUT);
    cr_assert_eq(NSYS_EMSGSIZE, -EMSGSIZE);
    cr_assert_eq(NSYS_ENOSPC, -ENOSPC);
    cr_assert_eq(NSYS_ERANGE, -ERANGE);
    T_ASSERT_NO_LEAKS();
}

Test(error, keeps_its_own_codes_distinct_and_below_minus_30000)
{
    for (size_t i = 0; i < N_OWN; i++) {
        cr_assert_lt(own_codes[i], -30000, "%s = %d", own_names[i], own_codes[i]);
        for (size_t j = i + 1; j < N_OWN; j++)
            cr_assert_neq(own_codes[i], own_codes[j], "%s == %s", own_names[i], own_names[j]);
    }
    cr_assert_eq(NSYS_REASON_NORMAL, 0);
    cr_assert_eq(NSYS_REASON_SHUTDOWN, NSYS_ESHUTDOWN);
    cr_assert_eq(NSYS_REASON_KILLED, NSYS_EKILLED);
    cr_assert_eq(NSYS_REASON_NOPROC, NSYS_ENOACTOR);
    T_ASSERT_NO_LEAKS();
}

Test(error, strerror_never_returns_null_or_empty_for_any_int)
{
    const int edges[] = {INT_MIN, INT_MIN + 1, -2147480000, -1000000, -40000, -30010, -30000, -4095,
                         -4096, -3000, -1, 0, 1, 255, 30001, INT_MAX - 1, INT_MAX};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        const char *s = nsys_strerror(edges[i]);
        cr_assert_not_null(s, "nsys_strerror(%d) is NULL", edges[i]);
        cr_assert_gt(strlen(s), 0, "nsys_strerror(%d) is empty", edges[i]);
    }
    for (int code = -40000; code <= 4000; code++) {
        const char *s = nsys_strerror(code);
        if (s == NULL || s[0] == '\0')
            cr_assert_fail("nsys_strerror(%d) is NULL or empty", code);
    }
    T_ASSERT_NO_LEAKS();
}

Test(error, errname_never_returns_null_for_any_int)
{
    const int edges[] = {INT_MIN, INT_MIN + 1, -40000, -30010, -30000, -4095, -1, 0, 1, INT_MAX};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        const char *s = nsys_errname(edges[i]);
        cr_assert_not_null(s, "nsys_errname(%d) is NULL", edges[i]);
        cr_assert_gt(strlen(s), 0);
    }
    for (int code = -40000; code <= 4000; code++) {
        const char *s = nsys_errname(code);
        if (s == NULL || s[0] == '\0')
            cr_assert_fail("nsys_errname(%d) is NULL or empty", code);
    }
    T_ASSERT_NO_LEAKS();
}

Test(error, errname_names_netsys_codes_symbolically)
{
    for (size_t i = 0; i < N_OWN; i++)
        cr_assert_str_eq(nsys_errname(own_codes[i]), own_names[i]);
    T_ASSERT_NO_LEAKS();
}

Test(error, errname_names_system_and_libuv_codes_like_libuv)
{
    cr_assert_str_eq(nsys_errname(NSYS_EINVAL), "EINVAL");
    cr_assert_str_eq(nsys_errname(UV_ECONNREFUSED), "ECONNREFUSED");
    cr_assert_str_eq(nsys_errname(NSYS_ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(nsys_errname(UV_EOF), uv_err_name(UV_EOF));
    T_ASSERT_NO_LEAKS();
}

Test(error, errname_calls_zero_normal_and_unknown_codes_unknown)
{
    cr_assert_str_eq(nsys_errname(NSYS_REASON_NORMAL), "normal");
    cr_assert_str_eq(nsys_errname(-29999), "UNKNOWN");
    cr_assert_str_eq(nsys_errname(-30099), "UNKNOWN");
    cr_assert_str_eq(nsys_errname(-31999), "UNKNOWN");
    cr_assert_str_eq(nsys_errname(INT_MIN), "UNKNOWN");
    cr_assert_str_eq(nsys_errname(INT_MAX), "UNKNOWN");
    T_ASSERT_NO_LEAKS();
}

Test(error, strerror_describes_each_netsys_code_differently)
{
    const char *unknown = nsys_strerror(-29999);
    for (size_t i = 0; i < N_OWN; i++) {
        const char *a = nsys_strerror(own_codes[i]);
        cr_assert_str_neq(a, unknown, "%s is described like an unknown code", own_names[i]);
        for (size_t j = i + 1; j < N_OWN; j++)
            cr_assert_str_neq(a, nsys_strerror(own_codes[j]), "%s and %s share a description",
                              own_names[i], own_names[j]);
    }
    T_ASSERT_NO_LEAKS();
}

Test(error, strerror_describes_system_codes_and_normal_exit)
{
    const char *unknown = nsys_strerror(-29999);
    cr_assert_str_neq(nsys_strerror(NSYS_EINVAL), unknown);
    cr_assert_str_neq(nsys_strerror(UV_ECONNREFUSED), unknown);
    cr_assert_str_neq(nsys_strerror(UV_EAI_NONAME), unknown);
    cr_assert_str_neq(nsys_strerror(NSYS_REASON_NORMAL), unknown);
    cr_assert_str_neq(nsys_strerror(NSYS_EINVAL), nsys_strerror(NSYS_ENOMEM));
    T_ASSERT_NO_LEAKS();
}

Test(error, reason_is_clean_accepts_only_normal_and_shutdown)
{
    cr_assert(nsys_reason_is_clean(NSYS_REASON_NORMAL));
    cr_assert(nsys_reason_is_clean(NSYS_REASON_SHUTDOWN));
    cr_assert_not(nsys_reason_is_clean(NSYS_REASON_KILLED));
    cr_assert_not(nsys_reason_is_clean(NSYS_REASON_NOPROC));
    cr_assert_not(nsys_reason_is_clean(NSYS_EFAILED));
    cr_assert_not(nsys_reason_is_clean(NSYS_EINVAL));
    cr_assert_not(nsys_reason_is_clean(NSYS_EGAVEUP));
    cr_assert_not(nsys_reason_is_clean(1));
    T_ASSERT_NO_LEAKS();
}

static void *strerror_worker(void *arg)
{
    intptr_t bad = 0;
    int base = (int)(intptr_t)arg;
    for (int round = 0; round < 20; round++) {
        for (int code = base - 5000; code <= base + 5000; code += 7) {
            const char *s = nsys_strerror(code);
            const char *n = nsys_errname(code);
            if (s == NULL || n == NULL || s[0] == '\0' || n[0] == '\0')
                bad++;
        }
    }
    return (void *)bad;
}

Test(error, strerror_and_errname_are_safe_from_many_threads_at_once)
{
    pthread_t th[4];
    const int bases[4] = {-30005, -2000, 0, -4000};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, strerror_worker, (void *)(intptr_t)bases[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        pthread_join(th[i], &bad);
        cr_assert_eq((intptr_t)bad, 0, "thread %d saw NULL/empty strings", i);
    }
    T_ASSERT_NO_LEAKS();
}

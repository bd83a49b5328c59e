/* tests/tsan_shim/criterion/parameterized.h — Criterion's parameterized
 * tests for the ThreadSanitizer test runner (see criterion.h here):
 *
 *   ParameterizedTestParameters(suite, name)
 *   {
 *       static int values[] = {1, 2, 3};
 *       return cr_make_param_array(int, values, 3);   (optional 4th: cleanup)
 *   }
 *   ParameterizedTest(int *value, suite, name, .timeout = 10) { ... }
 *
 * Each element runs as its own test, in its own child process, and is
 * reported as "suite::name[i]". The parameter function runs in the runner
 * before any fork.
 *
 * Not for: C++ parameter lists.
 */
#ifndef NSYS_TSAN_SHIM_CRITERION_PARAMETERIZED_H
#define NSYS_TSAN_SHIM_CRITERION_PARAMETERIZED_H

#include "criterion.h"

#define ParameterizedTestParameters(Suite, Name)                                                   \
    static struct criterion_test_params crs_params_##Suite##__##Name(void)

/* The element goes to the test as a pointer; the trampoline's void * turns
 * into the test's pointer type without a cast. */
#define ParameterizedTest(...) CRS_PTEST_(__VA_ARGS__, .sentinel_ = 0)
#define CRS_PTEST_(Param, Suite, Name, ...)                                                        \
    static struct criterion_test_params crs_params_##Suite##__##Name(void);                        \
    static void crs_pfn_##Suite##__##Name(Param);                                                  \
    static void crs_ptramp_##Suite##__##Name(void *param)                                          \
    {                                                                                              \
        crs_pfn_##Suite##__##Name(param);                                                          \
    }                                                                                              \
    static struct crs_test crs_test_##Suite##__##Name = {                                          \
        .suite = #Suite,                                                                           \
        .name = #Name,                                                                             \
        .file = __FILE__,                                                                          \
        .line = __LINE__,                                                                          \
        .param_fn = crs_ptramp_##Suite##__##Name,                                                  \
        .params = crs_params_##Suite##__##Name,                                                    \
        .opts = {__VA_ARGS__},                                                                     \
    };                                                                                             \
    __attribute__((constructor)) static void crs_register_##Suite##__##Name(void)                  \
    {                                                                                              \
        crs_register_test(&crs_test_##Suite##__##Name);                                            \
    }                                                                                              \
    static void crs_pfn_##Suite##__##Name(Param)

/* cr_make_param_array(Type, Array, Len[, Cleanup]) */
#define cr_make_param_array(Type, Array, ...)                                                      \
    ((struct criterion_test_params){                                                               \
        .size = sizeof(Type), .params = (void *)(Array), .length = __VA_ARGS__})

#endif

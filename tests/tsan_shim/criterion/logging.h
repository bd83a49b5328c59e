/* tests/tsan_shim/criterion/logging.h — cr_log and its three shorthands, as
 * in Criterion, for the ThreadSanitizer test runner (see criterion.h here).
 * Lines go to stderr at once, from any thread, prefixed like Criterion's:
 * "[----] " info, "[WARN] " warning, "[ERR ] " error.
 *
 * Not for: Criterion's logging levels or output providers.
 */
#ifndef NSYS_TSAN_SHIM_CRITERION_LOGGING_H
#define NSYS_TSAN_SHIM_CRITERION_LOGGING_H

enum criterion_severity {
    CR_LOG_INFO,
    CR_LOG_WARNING,
    CR_LOG_ERROR,
};

__attribute__((format(printf, 2, 3))) void cr_log(enum criterion_severity severity, const char *msg,
                                                  ...);

#define cr_log_info(...) cr_log(CR_LOG_INFO, __VA_ARGS__)
#define cr_log_warn(...) cr_log(CR_LOG_WARNING, __VA_ARGS__)
#define cr_log_error(...) cr_log(CR_LOG_ERROR, __VA_ARGS__)

#endif

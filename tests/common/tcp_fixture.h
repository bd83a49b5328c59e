/* tests/common/tcp_fixture.h — the fixture the TCP integration suites
 * share: a runtime, the log of network events (common/net.h) and an owner
 * probe, made by the suite's .init and freed by its .fini or, with a leak
 * check, by finish() at the end of a test; spawning the owner, starting a
 * listener and connecting to it; and a listener's and the runtime's
 * counters as the test thread reads them.
 *
 * It defines the including file's `rt`, `net_log` and `owner`, so include
 * it once per test file, whose suite's .init calls t_tcp_setup. The names
 * are the short ones the suites were written with (finish, sessions_of,
 * ...). The functions assert with Criterion, so only the test thread may
 * call them; the ThreadSanitizer build gets the same macros from
 * tests/tsan_shim.
 *
 * Not for: the client side of a test (common/net.h), or suites whose
 * runtime needs more than two schedulers.
 */
#ifndef NSYS_TESTS_COMMON_TCP_FIXTURE_H
#define NSYS_TESTS_COMMON_TCP_FIXTURE_H

#include "common/net.h"
#include "common/probe.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <netsys/netsys.h>

/* The test's runtime: NULL once finish() or the teardown freed it. */
static nsys_runtime_t *rt;
/* Events an owner probe or the callback facade saw (net_log.rt is rt). */
static t_net_log_t net_log;
/* A probe a test may spawn: a listener's owner or observer, or a monitor of
 * one. Set up, not spawned. */
static t_probe_t owner;

/* Makes `rt`, with two schedulers, and gives it to the log. */
static inline void t_tcp_new_runtime(void)
{
    cr_assert_eq(t_runtime(2, &rt), 0);
    net_log.rt = rt;
}

/* For a suite's .init: log at `level` and above, an empty event log and
 * owner probe, and the runtime unless the tests make their own (a test
 * that forks must do that first). */
static inline void t_tcp_setup(nsys_log_level_t level, bool with_runtime)
{
    nsys_log_set_level(level);
    t_net_log_init(&net_log);
    t_probe_init(&owner);
    if (with_runtime)
        t_tcp_new_runtime();
}

/* A suite's .fini: frees whatever a failed test left (the runtime first,
 * since its actors use the probe and the log). */
static inline void t_tcp_teardown(void)
{
    nsys_runtime_free(rt);
    rt = NULL;
    t_probe_destroy(&owner);
    t_net_log_destroy(&net_log);
}

/* Frees the runtime and fails the test if anything leaked. */
static inline void finish(void)
{
    T_RUNTIME_FREE(rt);
    rt = NULL;
}

/* Spawns `owner` with the hook that logs network events into net_log (and
 * sends every MESSAGE back to its session if `echo`); returns once it runs. */
static inline void t_tcp_spawn_owner(bool echo)
{
    net_log.echo = echo;
    owner.user = &net_log;
    owner.hook = t_net_owner_hook;
    cr_assert_eq(t_probe_spawn(rt, &owner, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&owner.inited) == 1, "the owner probe never started");
}

/* Starts a listener with `o`, failing the test if it cannot; *port gets
 * the port it bound. */
static inline nsys_ref_t t_tcp_listen(const nsys_listener_opts_t *o, uint16_t *port)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, o, &ref, &info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    *port = info.port;
    return ref;
}

/* A blocking connection to 127.0.0.1:port (common/net.h), failing the test
 * if it cannot connect. */
static inline int t_tcp_connect_local(uint16_t port)
{
    int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
    cr_assert_geq(fd, 0, "connect to 127.0.0.1:%u: %s", port, strerror(-fd));
    return fd;
}

/* The listener's info; sessions is UINT32_MAX if it could not be read. */
static inline nsys_listener_info_t info_of(nsys_ref_t listener)
{
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    if (nsys_listener_info(rt, listener, &info) != 0)
        info.sessions = UINT32_MAX;
    return info;
}

/* The listener's open sessions, or UINT32_MAX if it could not be read. */
static inline uint32_t sessions_of(nsys_ref_t listener)
{
    return info_of(listener).sessions;
}

/* The runtime's live actors (nsys_metrics_t.actors_alive). */
static inline uint64_t actors_alive(void)
{
    nsys_metrics_t m;
    memset(&m, 0, sizeof(m));
    nsys_metrics_get(rt, &m);
    return m.actors_alive;
}

#endif

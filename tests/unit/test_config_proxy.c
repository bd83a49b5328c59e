/* tests/unit/test_config_proxy.c — the built-in "proxy" behaviour kind
 * (config/proxy_kind.c): it is registered right after "listener", every key
 * of its args (the faults and the schedule included) is validated with the
 * exact path and message, a valid document builds a child that runs
 * nsys_proxy_behaviour's state, and bad args given at run time fail the
 * child's init with NSYS_ECONFIG. (Forwarding through a proxy started from a
 * document is tested in tests/integration/test_proxy.c.)
 *
 * JSON in the tables is written with single quotes, which the tests turn
 * into double quotes before parsing. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netsys/netsys.h>
#include <netsys/proxy.h>

#include "common/config_fixture.h"
#include "common/wait.h"

static void setup(void)
{
    nsys_log_set_level(NSYS_LOG_OFF);
}

/* One timeout for every test of this file (see common/wait.h). */
TestSuite(config_proxy, .init = setup, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------- */

/* A proxy child with `args` (the inside of the args object). */
#define P(args) W("{'id': 'flaky', 'behaviour': 'proxy', 'args': {" args "}}")

/* ---- tests ------------------------------------------------------------------------- */

Test(config_proxy, is_registered_right_after_the_listener)
{
    const char **names = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_assert_geq(n, 2);
    cr_expect_str_eq(names[0], "listener");
    cr_expect_str_eq(names[1], "proxy");
    nsys_free(names);
    const nsys_config_kind_t *k = nsys_config_find_kind("proxy");
    cr_assert_not_null(k);
    cr_expect_not_null(k->validate);
    cr_expect_eq(k->behaviour->state_size, nsys_proxy_behaviour.state_size);
    cr_expect_eq(k->behaviour->handle, nsys_proxy_behaviour.handle);
}

Test(config_proxy, accepts_every_key)
{
    nsys_config_t *cfg = load_ok(
        P("'host': '127.0.0.1', 'port': 0, 'upstream_host': 'localhost', 'upstream_port': 7000, "
          "'connect_timeout': '2s', 'max_connections': 100, 'max_buffered': '256KiB', "
          "'faults': {'latency': '50ms', 'jitter': '10ms', 'bandwidth': '1MiB', "
          "'reset_every': '30s', 'reset_after': '10MiB', 'blackhole': false, 'refuse': false, "
          "'refuse_for': '0ms'}, "
          "'schedule': [{'at': '0s'}, {'at': '10s', 'faults': {'blackhole': true}}, "
          "{'at': '15s', 'faults': {}}], 'repeat': '1m'"));
    const nsys_sup_spec_t *root = nsys_config_root(cfg);
    cr_assert_eq(root->nchildren, 1);
    cr_expect_eq(root->children[0].behaviour, nsys_config_find_kind("proxy")->behaviour);
    nsys_config_free(cfg);
    nsys_config_free(load_ok(P("'port': 7001, 'upstream_port': 7000")));
}

Test(config_proxy, reports_unknown_and_missing_keys)
{
    EXPECT_ERRORS(P("'port': 7001, 'upstream_prot': 7000"),
                  {ARGS ".upstream_prot", "unknown key; did you mean \"upstream_port\"?"},
                  {ARGS, "missing required key \"upstream_port\""});
    EXPECT_ERRORS(W("{'id': 'flaky', 'behaviour': 'proxy'}"),
                  {ARGS, "missing required key \"port\""},
                  {ARGS, "missing required key \"upstream_port\""});
    EXPECT_ERRORS(P("'port': 7001, 'upstream_port': 7000, 'faults': {'latancy': '5ms'}"),
                  {ARGS ".faults.latancy", "unknown key; did you mean \"latency\"?"});
}

Test(config_proxy, reports_wrong_values_with_their_paths)
{
    EXPECT_ERRORS(P("'host': '', 'port': 70000, 'upstream_port': 0, 'connect_timeout': 5, "
                    "'max_buffered': '2GiB', 'faults': []"),
                  {ARGS ".host", "expected a host name or address of 1..255 characters, got \"\""},
                  {ARGS ".port", "expected an integer 0..65535, got 70000"},
                  {ARGS ".upstream_port", "expected an integer 1..65535, got 0"},
                  {ARGS ".connect_timeout", "expected a duration such as \"500ms\" or \"5s\", "
                                            "got a number"},
                  {ARGS ".max_buffered", "expected a size 1KiB..1GiB, got \"2GiB\""},
                  {ARGS ".faults", "expected an object, got an array"});
    EXPECT_ERRORS(P("'port': 7001, 'upstream_port': 7000, 'faults': {'latency': '2h', "
                    "'jitter': 'lots', 'bandwidth': '1MB', 'reset_every': '1000h', "
                    "'reset_after': 100, 'blackhole': 'yes', 'refuse': 1, 'refuse_for': '-1s'}"),
                  {ARGS ".faults.latency", "expected a duration 0ms..1h, got \"2h\""},
                  {ARGS ".faults.jitter", "expected a duration such as \"500ms\" or \"5s\", "
                                          "got \"lots\""},
                  {ARGS ".faults.bandwidth", "expected a size such as \"64KiB\" or \"1MiB\", "
                                             "got \"1MB\""},
                  {ARGS ".faults.reset_every", "expected a duration 0ms..720h, got \"1000h\""},
                  {ARGS ".faults.reset_after", "expected a size such as \"64KiB\" or \"1MiB\", "
                                               "got a number"},
                  {ARGS ".faults.blackhole", "expected true or false, got a string"},
                  {ARGS ".faults.refuse", "expected true or false, got a number"},
                  {ARGS ".faults.refuse_for", "expected a duration such as \"500ms\" or \"5s\", "
                                              "got \"-1s\""});
}

Test(config_proxy, reports_schedule_problems_with_their_paths)
{
    EXPECT_ERRORS(P("'port': 7001, 'upstream_port': 7000, 'schedule': {}"),
                  {ARGS ".schedule", "expected an array of steps, got an object"});
    EXPECT_ERRORS(P("'port': 7001, 'upstream_port': 7000, 'schedule': []"),
                  {ARGS ".schedule", "expected 1..1024 steps, got 0"});
    EXPECT_ERRORS(
        P("'port': 7001, 'upstream_port': 7000, 'schedule': [{'at': '2s'}, "
          "{'at': '1s', 'faults': {'blackhole': 1}}, {'faults': {}}, 7, "
          "{'at': '3s', 'when': 1}]"),
        {ARGS ".schedule[1].at", "expected a duration not below the step before (2s), got \"1s\""},
        {ARGS ".schedule[1].faults.blackhole", "expected true or false, got a number"},
        {ARGS ".schedule[2]", "missing required key \"at\""},
        {ARGS ".schedule[3]", "expected an object, got a number"},
        {ARGS ".schedule[4].when", "unknown key; expected one of \"at\", \"faults\""});
    EXPECT_ERRORS(P("'port': 7001, 'upstream_port': 7000, 'repeat': '10s'"),
                  {ARGS ".repeat", "repeats nothing: add a \"schedule\""});
    EXPECT_ERRORS(P("'port': 7001, 'upstream_port': 7000, 'schedule': [{'at': '10s'}], "
                    "'repeat': '10s'"),
                  {ARGS ".repeat", "expected a duration above the last step's \"at\" (10s), "
                                   "got \"10s\""});
}

/* Args handed over at run time are checked by the kind's init too. */
Test(config_proxy, init_refuses_bad_args_with_econfig)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(NULL, &rt), 0);
    const nsys_config_kind_t *k = nsys_config_find_kind("proxy");
    cr_assert_not_null(k);
    char *json = dq("{'port': 0, 'upstream_port': 'seven'}");
    cJSON *args = cJSON_Parse(json);
    free(json);
    nsys_child_spec_t child = {.id = "flaky", .behaviour = k->behaviour, .args = args};
    nsys_sup_spec_t spec = {.name = "root", .children = &child, .nchildren = 1};
    nsys_ref_t root;
    char err[256] = "";
    int rc = nsys_supervisor_start(rt, &spec, &root, err, sizeof err);
    cr_expect_eq(rc, NSYS_ECONFIG, "%s (%s)", nsys_strerror(rc), err);
    cJSON_Delete(args);
    nsys_runtime_free(rt);
    T_ASSERT_NO_LEAKS();
}

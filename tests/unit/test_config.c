/* tests/unit/test_config.c — JSON configuration (include/netsys/config.h):
 * every error class of the document format with its exact path and message,
 * several errors collected from one document, the limits (size, nesting),
 * the spec tree built from valid documents, duration/size parsing, the kind
 * registry, loading from files, and the example trees in examples/.
 *
 * JSON in the tables is written with single quotes, which the tests turn
 * into double quotes before parsing, so documents stay readable. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netsys/netsys.h>

#include "common/config_fixture.h"

/* ---- behaviour kinds the documents name ------------------------------------ */

static int noop_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

static const nsys_behaviour_t echo_behaviour = {"echo", 0, NULL, noop_handle, NULL};
static const nsys_behaviour_t demo_behaviour = {"demo_worker", 0, NULL, noop_handle, NULL};
static const nsys_behaviour_t flaky_behaviour = {"flaky_worker", 0, NULL, noop_handle, NULL};
static const nsys_behaviour_t tcp_behaviour = {"tcp_echo", 0, NULL, noop_handle, NULL};

/* tcp_echo's args: {"port": 1..65535 (required), "idle": duration}. */
static void tcp_echo_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    const cJSON *port = args != NULL ? cJSON_GetObjectItemCaseSensitive(args, "port") : NULL;
    if (port == NULL) {
        nsys_config_error(d, path, "missing required key \"port\"");
    } else if (!cJSON_IsNumber(port)) {
        nsys_config_error(d, path, "missing required key \"port\"");
    } else if (port->valuedouble < 1 || port->valuedouble > 65535 ||
               port->valuedouble != (double)(int)port->valuedouble) {
        char p[512];
        snprintf(p, sizeof p, "%s.port", path);
        nsys_config_error(d, p, "expected an integer 1..65535, got %g", port->valuedouble);
    }
    const cJSON *idle = args != NULL ? cJSON_GetObjectItemCaseSensitive(args, "idle") : NULL;
    uint64_t ms;
    if (idle != NULL &&
        (!cJSON_IsString(idle) || nsys_config_parse_duration(idle->valuestring, &ms) != 0)) {
        char p[512];
        snprintf(p, sizeof p, "%s.idle", path);
        nsys_config_error(d, p, "expected a duration such as \"30s\"");
    }
}

/* The args the CLI's demo kinds take (tools/netsys/demo_kinds.c): one
 * optional duration each, nothing else, so examples/ cannot drift from it. */
static void one_duration_arg(const cJSON *args, const char *path, nsys_config_diag_t *d,
                             const char *key)
{
    for (const cJSON *it = args != NULL ? args->child : NULL; it != NULL; it = it->next) {
        char p[512];
        snprintf(p, sizeof p, "%s.%s", path, it->string);
        uint64_t ms;
        if (strcmp(it->string, key) != 0)
            nsys_config_error(d, p, "unknown key; expected one of \"%s\"", key);
        else if (!cJSON_IsString(it) || nsys_config_parse_duration(it->valuestring, &ms) != 0)
            nsys_config_error(d, p, "expected a duration such as \"500ms\" or \"5s\"");
    }
}

static void demo_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    one_duration_arg(args, path, d, "interval");
}

static void flaky_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    one_duration_arg(args, path, d, "fail_every");
}

static void register_kinds(void)
{
    static const nsys_config_kind_t kinds[] = {
        {"echo", &echo_behaviour, NULL, "echoes every message"},
        {"demo_worker", &demo_behaviour, demo_validate, "ticks"},
        {"flaky_worker", &flaky_behaviour, flaky_validate, "fails now and then"},
        {"tcp_echo", &tcp_behaviour, tcp_echo_validate, "a TCP echo listener"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cr_assert_eq(nsys_config_register(&kinds[i]), 0);
}

TestSuite(config, .init = register_kinds);

/* ---- helpers --------------------------------------------------------------- */

/* Loads a document that must be invalid; returns its diagnostics. */
static nsys_config_diag_t *load_bad_raw(const char *json, size_t len)
{
    nsys_config_t *cfg = (nsys_config_t *)&cfg; /* must be reset to NULL */
    nsys_config_diag_t *d = NULL;
    int rc = nsys_config_load_string(json, len, "doc", &cfg, &d);
    cr_assert_eq(rc, NSYS_ECONFIG, "expected NSYS_ECONFIG, got %d", rc);
    cr_assert_null(cfg);
    cr_assert_not_null(d);
    cr_assert_gt(nsys_config_diag_count(d), 0);
    return d;
}

static nsys_config_diag_t *load_bad(const char *json_sq)
{
    char *json = dq(json_sq);
    nsys_config_diag_t *d = load_bad_raw(json, strlen(json));
    free(json);
    return d;
}

static bool has_error(const nsys_config_diag_t *d, const char *path, const char *msg)
{
    for (size_t i = 0; i < nsys_config_diag_count(d); i++)
        if (strcmp(nsys_config_diag_path(d, i), path) == 0 &&
            strstr(nsys_config_diag_message(d, i), msg) != NULL)
            return true;
    return false;
}

static void expect_error(const nsys_config_diag_t *d, const char *path, const char *msg)
{
    if (!has_error(d, path, msg)) {
        char *t = diag_text(d);
        cr_expect_fail("no error at %s containing \"%s\"; got:\n%s", path, msg, t);
        free(t);
    }
}

/* ---- malformed documents: one table, one test per row ----------------------- */

typedef struct expect {
    const char *path; /* exact */
    const char *msg;  /* a substring of the message */
} expect_t;

typedef struct bad_case {
    const char *name;
    const char *json; /* single quotes stand for double quotes */
    int count;        /* exact number of errors */
    expect_t e[4];
    int line, column; /* of the first error, when > 0 */
} bad_case_t;

/* Rows leave line/column (and unused expectations) out: zero. The table keeps
 * one row per case, which clang-format would spread over many lines. */
/* clang-format off */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const bad_case_t bad_cases[] = {
    /* syntax */
    {"bad literal", "{\n  'supervisor': {\n    'children': [tru]\n  }\n}", 1,
     {{"$", "invalid JSON at line 3, column 18: expected a value, got 'tru'"}}, 3, 18},
    {"missing comma", "{'name': 'a' 'supervisor': {}}", 1,
     {{"$", "invalid JSON at line 1, column 14: expected ',' or '}', got '\"'"}}, 1, 14},
    {"trailing comma", "{'supervisor': {'children': [],}}", 1,
     {{"$", "invalid JSON at line 1, column 32: expected a string key, got '}'"}}, 1, 32},
    {"trailing garbage", "{'supervisor': {'children': []}}\n  x", 1,
     {{"$", "invalid JSON at line 2, column 3: unexpected text after the document"}}, 2, 3},
    {"two documents", "{} {}", 1,
     {{"$", "invalid JSON at line 1, column 4: unexpected text after the document"}}, 1, 4},
    {"truncated", "{'supervisor': {'children': []}", 1,
     {{"$", "invalid JSON at line 1, column 32: expected ',' or '}', got the end of the "
            "document"}},
     1, 32},
    {"unterminated string", "{'supervisor': {'children': [{'id': 'db}]}}", 1,
     {{"$", "invalid JSON at line 1, column 37: unterminated string"}}, 1, 37},
    {"mismatched bracket", "{'supervisor': {'children': [1}}}", 1,
     {{"$", "line 1, column 31: expected ',' or ']', got '}'"}}, 1, 31},
    {"leading zero", "{'runtime': {'batch': 064}, 'supervisor': {'children': []}}", 1,
     {{"$", "line 1, column 23: invalid number: leading zero"}}, 1, 23},
    {"number without digits", "{'runtime': {'batch': -}, 'supervisor': {'children': []}}", 1,
     {{"$", "line 1, column 23: invalid number"}}, 1, 23},
    {"invalid escape", "{'name': 'a\\qb', 'supervisor': {'children': []}}", 1,
     {{"$", "line 1, column 12: invalid escape in a string: '\\' followed by 'qb'"}}, 1, 12},
    {"lone surrogate", "{'name': '\\udc00', 'supervisor': {'children': []}}", 1,
     {{"$", "line 1, column 11: unpaired surrogate \\uDC00 in a string"}}, 1, 11},
    {"invalid UTF-8", "{'name': 'a\xff', 'supervisor': {'children': []}}", 1,
     {{"$", "line 1, column 12: invalid UTF-8 in a string"}}, 1, 12},
    {"control character outside strings", "{\"supervisor\": {\"children\": [\x01]}}", 1,
     {{"$", "line 1, column 30: expected a value, got control character U+0001"}}, 1, 30},
    {"control character in string", "{'name': 'a\tb', 'supervisor': {'children': []}}", 1,
     {{"$", "line 1, column 12: control character U+0009 in a string"}}, 1, 12},
    {"empty document", "", 1, {{"$", "document is empty"}}, 0, 0},
    {"blank document", "  \n\t ", 1, {{"$", "document is empty"}}, 0, 0},
    {"columns count characters", "{'\xc3\xa9\xc3\xa9': tru}", 1,
     {{"$", "invalid JSON at line 1, column 8"}}, 1, 8},

    /* the root */
    {"root is an array", "[]", 1, {{"$", "expected an object, got an array"}}},
    {"root is a string", "'x'", 1, {{"$", "expected an object, got a string"}}},
    {"supervisor missing", "{}", 1, {{"$", "missing required key \"supervisor\""}}},
    {"supervisor not an object", "{'supervisor': []}", 1,
     {{"$.supervisor", "expected an object, got an array"}}},
    {"top-level typo", "{'supervisr': {'children': []}}", 2,
     {{"$.supervisr", "unknown key; did you mean \"supervisor\"?"},
      {"$", "missing required key \"supervisor\""}}},
    {"top-level unknown key", "{'services': [], 'supervisor': {'children': []}}", 1,
     {{"$.services", "unknown key; expected one of \"name\", \"runtime\", \"supervisor\""}}},
    {"name with a space", "{'name': 'my app', 'supervisor': {'children': []}}", 1,
     {{"$.name", "expected a name of 1..63 characters from A-Z a-z 0-9 _ . -, got \"my app\""}}},
    {"name too long",
     "{'name': '0123456789012345678901234567890123456789012345678901234567890123', "
     "'supervisor': {'children': []}}",
     1, {{"$.name", "expected a name of 1..63 characters"}}},
    {"duplicate top-level key", "{'supervisor': {'children': []}, 'supervisor': {}}", 1,
     {{"$", "duplicate key \"supervisor\""}}},

    /* runtime */
    {"schedulers is a string", "{'runtime': {'schedulers': '2'}, 'supervisor': {'children': []}}",
     1, {{"$.runtime.schedulers", "expected an integer 0..1024, got a string"}}},
    {"schedulers out of range",
     "{'runtime': {'schedulers': 70000}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.schedulers", "expected an integer 0..1024, got 70000"}}},
    {"batch not an integer", "{'runtime': {'batch': 2.5}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.batch", "expected an integer 1..1048576, got 2.5"}}},
    {"batch zero", "{'runtime': {'batch': 0}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.batch", "expected an integer 1..1048576, got 0"}}},
    {"batch is true", "{'runtime': {'batch': true}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.batch", "expected an integer 1..1048576, got true"}}},
    {"spin with a space", "{'runtime': {'spin': '20 us'}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.spin", "expected a duration such as \"500ms\" or \"5s\", got \"20 us\""}}},
    {"spin too long", "{'runtime': {'spin': '2s'}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.spin", "expected a duration 0us..1s, got \"2s\""}}},
    {"shutdown_timeout over an hour",
     "{'runtime': {'shutdown_timeout': '2h'}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.shutdown_timeout", "expected a duration 1ms..1h, got \"2h\""}}},
    {"max_actors too small", "{'runtime': {'max_actors': 8}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.max_actors", "expected an integer 16..268435456, got 8"}}},
    {"log_level unknown", "{'runtime': {'log_level': 'verbose'}, 'supervisor': {'children': []}}",
     1,
     {{"$.runtime.log_level", "expected one of \"off\", \"error\", \"warn\", \"info\", "
                              "\"debug\", \"trace\", got \"verbose\""}}},
    {"runtime duplicate key",
     "{'runtime': {'batch': 64, 'batch': 32}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime", "duplicate key \"batch\""}}},
    {"runtime not an object", "{'runtime': 5, 'supervisor': {'children': []}}", 1,
     {{"$.runtime", "expected an object, got a number"}}},
    {"runtime key typo", "{'runtime': {'schedulrs': 2}, 'supervisor': {'children': []}}", 1,
     {{"$.runtime.schedulrs", "unknown key; did you mean \"schedulers\"?"}}},

    /* supervisor */
    {"children missing", "{'supervisor': {}}", 1,
     {{"$.supervisor", "missing required key \"children\""}}},
    {"children not an array", "{'supervisor': {'children': {}}}", 1,
     {{"$.supervisor.children", "expected an array, got an object"}}},
    {"strategy unknown", "{'supervisor': {'strategy': 'one_for_none', 'children': []}}", 1,
     {{"$.supervisor.strategy",
       "expected one of \"one_for_one\", \"one_for_all\", \"rest_for_one\", "
       "\"simple_one_for_one\", got \"one_for_none\""}}},
    {"strategy not a string", "{'supervisor': {'strategy': null, 'children': []}}", 1,
     {{"$.supervisor.strategy", "got null"}}},
    {"intensity negative", "{'supervisor': {'intensity': -1, 'children': []}}", 1,
     {{"$.supervisor.intensity", "expected an integer 0..1000000, got -1"}}},
    {"period in words", "{'supervisor': {'period': '5 seconds', 'children': []}}", 1,
     {{"$.supervisor.period",
       "expected a duration such as \"500ms\" or \"5s\", got \"5 seconds\""}}},
    {"period as a number", "{'supervisor': {'period': 5, 'children': []}}", 1,
     {{"$.supervisor.period", "expected a duration such as \"500ms\" or \"5s\", got a number"}}},
    {"period as a float", "{'supervisor': {'period': '1.5s', 'children': []}}", 1,
     {{"$.supervisor.period", "got \"1.5s\""}}},
    {"period zero", "{'supervisor': {'period': '0ms', 'children': []}}", 1,
     {{"$.supervisor.period", "expected a duration 1ms..1h, got \"0ms\""}}},
    {"period overflows", "{'supervisor': {'period': '99999999999999999999h', 'children': []}}",
     1, {{"$.supervisor.period", "expected a duration 1ms..1h, got \"99999999999999999999h\""}}},
    {"backoff numbers out of range",
     "{'supervisor': {'backoff': {'multiplier': 0.5, 'jitter': 2}, 'children': []}}", 2,
     {{"$.supervisor.backoff.multiplier", "expected a number 1..100, got 0.5"},
      {"$.supervisor.backoff.jitter", "expected a number 0..1, got 2"}}},
    {"backoff initial over max",
     "{'supervisor': {'backoff': {'initial': '5s', 'max': '1s'}, 'children': []}}", 1,
     {{"$.supervisor.backoff.initial",
       "expected a duration no longer than \"max\" (1s), got \"5s\""}}},
    {"backoff initial over default max",
     "{'supervisor': {'backoff': {'initial': '3s'}, 'children': []}}", 1,
     {{"$.supervisor.backoff.initial",
       "expected a duration no longer than the default max (2s), got \"3s\""}}},
    {"backoff max under default initial",
     "{'supervisor': {'backoff': {'max': '5ms'}, 'children': []}}", 1,
     {{"$.supervisor.backoff.max",
       "expected a duration no shorter than the default initial (10ms), got \"5ms\""}}},
    {"backoff unknown key", "{'supervisor': {'backoff': {'factor': 2}, 'children': []}}", 1,
     {{"$.supervisor.backoff.factor", "unknown key; expected one of \"initial\", \"max\", "
                                      "\"multiplier\", \"jitter\", \"reset_after\""}}},
    {"simple_one_for_one without template",
     "{'supervisor': {'strategy': 'simple_one_for_one'}}", 1,
     {{"$.supervisor", "missing required key \"template\""}}},
    {"simple_one_for_one with children",
     "{'supervisor': {'strategy': 'simple_one_for_one', 'template': {'behaviour': 'echo'}, "
     "'children': [{'id': 'a', 'behaviour': 'echo'}]}}",
     1, {{"$.supervisor.children", "must be empty for strategy \"simple_one_for_one\""}}},
    {"template without simple_one_for_one",
     "{'supervisor': {'children': [], 'template': {'behaviour': 'echo'}}}", 1,
     {{"$.supervisor.template", "only allowed when \"strategy\" is \"simple_one_for_one\""}}},
    {"template errors",
     "{'supervisor': {'strategy': 'simple_one_for_one', 'template': {'id': 'a b', 'restart': "
     "'never'}}}",
     3,
     {{"$.supervisor.template.id", "got \"a b\""},
      {"$.supervisor.template", "missing required key \"behaviour\""},
      {"$.supervisor.template.restart", "got \"never\""}}},

    /* children */
    {"child not an object", W("5"), 1,
     {{"$.supervisor.children[0]", "expected an object, got a number"}}},
    {"child id missing", W("{'behaviour': 'echo'}"), 1,
     {{"$.supervisor.children[0]", "missing required key \"id\""}}},
    {"child id invalid", W("{'id': 'my db', 'behaviour': 'echo'}"), 1,
     {{"$.supervisor.children[0].id",
       "expected an id of 1..63 characters from A-Z a-z 0-9 _ . -, got \"my db\""}}},
    {"child id empty", W("{'id': '', 'behaviour': 'echo'}"), 1,
     {{"$.supervisor.children[0].id", "got \"\""}}},
    {"child id is a number", W("{'id': 7, 'behaviour': 'echo'}"), 1,
     {{"$.supervisor.children[0].id", "got a number"}}},
    {"duplicate ids",
     W("{'id': 'a', 'behaviour': 'echo'}, {'id': 'db', 'behaviour': 'echo'}, "
       "{'id': 'c', 'behaviour': 'echo'}, {'id': 'db', 'behaviour': 'echo'}"),
     1,
     {{"$.supervisor.children[3].id",
       "duplicate id \"db\" (first used at $.supervisor.children[1])"}}},
    {"child key typo", W("{'id': 'a', 'behaviour': 'echo', 'restrat': 'permanent'}"), 1,
     {{"$.supervisor.children[0].restrat", "unknown key; did you mean \"restart\"?"}}},
    {"child key in the wrong case", W("{'ID': 'a', 'behaviour': 'echo'}"), 2,
     {{"$.supervisor.children[0].ID", "unknown key; did you mean \"id\"?"},
      {"$.supervisor.children[0]", "missing required key \"id\""}}},
    {"child key with spaces", W("{'id': 'a', 'behaviour': 'echo', 'foo bar': 1}"), 1,
     {{"$.supervisor.children[0]['foo bar']", "unknown key; expected one of \"id\", \"type\", "
                                              "\"behaviour\", \"args\", \"restart\", "
                                              "\"shutdown\", \"supervisor\""}}},
    {"child type unknown", W("{'id': 'a', 'type': 'process', 'behaviour': 'echo'}"), 1,
     {{"$.supervisor.children[0].type",
       "expected one of \"worker\", \"supervisor\", got \"process\""}}},
    {"worker without behaviour", W("{'id': 'a'}"), 1,
     {{"$.supervisor.children[0]", "missing required key \"behaviour\""}}},
    {"supervisor child with behaviour and args",
     W("{'id': 'a', 'type': 'supervisor', 'behaviour': 'echo', 'args': {}, "
       "'supervisor': {'children': []}}"),
     2,
     {{"$.supervisor.children[0].behaviour", "not allowed for a supervisor child"},
      {"$.supervisor.children[0].args", "not allowed for a supervisor child"}}},
    {"worker with a supervisor spec",
     W("{'id': 'a', 'behaviour': 'echo', 'supervisor': {'children': []}}"), 1,
     {{"$.supervisor.children[0].supervisor", "only allowed when \"type\" is \"supervisor\""}}},
    {"supervisor child without spec", W("{'id': 'a', 'type': 'supervisor'}"), 1,
     {{"$.supervisor.children[0]", "missing required key \"supervisor\""}}},
    {"restart unknown",
     W("{'id': 'a', 'behaviour': 'echo'}, {'id': 'b', 'behaviour': 'echo'}, "
       "{'id': 'c', 'behaviour': 'echo', 'restart': 'always'}"),
     1,
     {{"$.supervisor.children[2].restart",
       "expected one of \"permanent\", \"transient\", \"temporary\", got \"always\""}}},
    {"shutdown unknown word", W("{'id': 'a', 'behaviour': 'echo', 'shutdown': 'forever'}"), 1,
     {{"$.supervisor.children[0].shutdown",
       "expected a duration such as \"5s\", \"brutal\" or \"infinity\", got \"forever\""}}},
    {"shutdown too long", W("{'id': 'a', 'behaviour': 'echo', 'shutdown': '2h'}"), 1,
     {{"$.supervisor.children[0].shutdown",
       "expected a duration 1ms..1h, \"brutal\" or \"infinity\", got \"2h\""}}},
    {"shutdown as a number", W("{'id': 'a', 'behaviour': 'echo', 'shutdown': 5000}"), 1,
     {{"$.supervisor.children[0].shutdown", "got a number"}}},
    {"unknown behaviour with a suggestion", W("{'id': 'a', 'behaviour': 'echoo'}"), 1,
     {{"$.supervisor.children[0].behaviour",
       "unknown behaviour \"echoo\"; did you mean \"echo\"? known: \"listener\", \"proxy\", "
       "\"client\", \"echo\", \"demo_worker\", \"flaky_worker\", \"tcp_echo\""}}},
    {"unknown behaviour in the wrong case", W("{'id': 'a', 'behaviour': 'Demo_Worker'}"), 1,
     {{"$.supervisor.children[0].behaviour", "did you mean \"demo_worker\"?"}}},
    {"unknown behaviour without a suggestion", W("{'id': 'a', 'behaviour': 'xyzzy'}"), 1,
     {{"$.supervisor.children[0].behaviour",
       "unknown behaviour \"xyzzy\"; known: \"listener\", \"proxy\", \"client\", "
       "\"echo\", "
       "\"demo_worker\", \"flaky_worker\", \"tcp_echo\""}}},
    {"behaviour not a string", W("{'id': 'a', 'behaviour': 42}"), 1,
     {{"$.supervisor.children[0].behaviour", "expected a behaviour name, got a number"}}},
    {"args not an object", W("{'id': 'a', 'behaviour': 'echo', 'args': [1]}"), 1,
     {{"$.supervisor.children[0].args", "expected an object, got an array"}}},
    {"args validator: port out of range",
     W("{'id': 'a', 'behaviour': 'tcp_echo', 'args': {'port': 70000}}"), 1,
     {{"$.supervisor.children[0].args.port", "expected an integer 1..65535, got 70000"}}},
    {"args validator: args absent", W("{'id': 'a', 'behaviour': 'tcp_echo'}"), 1,
     {{"$.supervisor.children[0].args", "missing required key \"port\""}}},
    {"duplicate key inside args",
     W("{'id': 'a', 'behaviour': 'echo', 'args': {'opts': {'x': 1, 'x': 2}}}"), 1,
     {{"$.supervisor.children[0].args.opts", "duplicate key \"x\""}}},
    {"error in a nested supervisor",
     W("{'id': 'a', 'type': 'supervisor', 'supervisor': {'children': ["
       "{'id': 'b', 'behaviour': 'echo'}, {'id': 'c', 'behaviour': 'echo', 'restart': 1}]}}"),
     1, {{"$.supervisor.children[0].supervisor.children[1].restart", "got a number"}}},
    {"nested supervisor not an object", W("{'id': 'a', 'type': 'supervisor', 'supervisor': 1}"),
     1, {{"$.supervisor.children[0].supervisor", "expected an object, got a number"}}},

    /* many errors in one document, all collected */
    {"every error collected",
     "{'name': 'bad name', 'runtime': {'schedulers': -1, 'log_level': 'loud'},"
     " 'supervisor': {'strategy': 'one_for_one', 'intensity': 'x', 'period': '5 s',"
     "  'children': ["
     "   {'id': 'a', 'behaviour': 'echoo'},"
     "   {'id': 'a', 'behaviour': 'echo', 'restart': 'always', 'shutdown': 'never'},"
     "   {'behaviour': 'tcp_echo', 'args': {'port': 0}}"
     "  ]}}",
     11,
     {{"$.name", "got \"bad name\""},
      {"$.supervisor.children[1].id", "duplicate id \"a\""},
      {"$.supervisor.children[2]", "missing required key \"id\""},
      {"$.supervisor.children[2].args.port", "got 0"}}},
};
#pragma GCC diagnostic pop
/* clang-format on */

#define NBAD (sizeof bad_cases / sizeof bad_cases[0])

ParameterizedTestParameters(config, rejects_malformed_document)
{
    static int index[NBAD];
    for (size_t i = 0; i < NBAD; i++)
        index[i] = (int)i;
    return cr_make_param_array(int, index, NBAD);
}

ParameterizedTest(int *index, config, rejects_malformed_document)
{
    const bad_case_t *c = &bad_cases[*index];
    cr_log_info("case: %s", c->name);
    nsys_config_diag_t *d = load_bad(c->json);
    char *text = diag_text(d);
    cr_expect_eq(nsys_config_diag_count(d), (size_t)c->count,
                 "case \"%s\": expected %d errors, got %zu:\n%s", c->name, c->count,
                 nsys_config_diag_count(d), text);
    for (size_t i = 0; i < 4 && c->e[i].path != NULL; i++)
        cr_expect(has_error(d, c->e[i].path, c->e[i].msg),
                  "case \"%s\": no error at %s containing \"%s\"; got:\n%s", c->name, c->e[i].path,
                  c->e[i].msg, text);
    if (c->line > 0) {
        cr_expect_eq(nsys_config_diag_line(d, 0), c->line, "case \"%s\"", c->name);
        cr_expect_eq(nsys_config_diag_column(d, 0), c->column, "case \"%s\"", c->name);
    }
    free(text);
    nsys_config_diag_free(d);
}

Test(config, has_at_least_forty_malformed_cases)
{
    cr_assert_geq(NBAD, 40);
}

/* ---- limits ----------------------------------------------------------------- */

/* A valid document whose args hold `arrays` nested arrays: total depth is
 * 5 + arrays (root, supervisor, children, child, args). */
static char *nested_args_document(int arrays)
{
    const char *head = "{\"supervisor\": {\"children\": [{\"id\": \"a\", \"behaviour\": \"echo\", "
                       "\"args\": {\"x\": ";
    const char *tail = "}}]}}";
    size_t n = strlen(head) + 2 * (size_t)arrays + strlen(tail) + 1;
    char *s = malloc(n);
    cr_assert_not_null(s);
    char *p = s;
    p += sprintf(p, "%s", head);
    memset(p, '[', (size_t)arrays);
    p += arrays;
    memset(p, ']', (size_t)arrays);
    p += arrays;
    sprintf(p, "%s", tail);
    return s;
}

Test(config, accepts_nesting_of_exactly_max_depth)
{
    char *json = nested_args_document(NSYS_CONFIG_MAX_DEPTH - 5);
    nsys_config_t *cfg = NULL;
    cr_assert_eq(nsys_config_load_string(json, strlen(json), "doc", &cfg, NULL), 0);
    nsys_config_free(cfg);
    free(json);
}

Test(config, rejects_nesting_over_max_depth_with_position)
{
    char *json = nested_args_document(NSYS_CONFIG_MAX_DEPTH - 4);
    nsys_config_diag_t *d = load_bad_raw(json, strlen(json));
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect_str_eq(nsys_config_diag_path(d, 0), "$");
    /* The 65th opener is the 60th '[' inside args. */
    int col = (int)(strstr(json, "\"x\": [") - json) + 5 + 60;
    cr_expect_eq(nsys_config_diag_line(d, 0), 1);
    cr_expect_eq(nsys_config_diag_column(d, 0), col);
    char want[128];
    snprintf(want, sizeof want, "document nests deeper than 64 levels at line 1, column %d", col);
    cr_expect_str_eq(nsys_config_diag_message(d, 0), want);
    nsys_config_diag_free(d);
    free(json);
}

Test(config, rejects_pathological_nesting_before_parsing)
{
    size_t n = 1000000;
    char *json = malloc(n);
    cr_assert_not_null(json);
    memset(json, '[', n);
    nsys_config_diag_t *d = load_bad_raw(json, n);
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect_eq(nsys_config_diag_column(d, 0), NSYS_CONFIG_MAX_DEPTH + 1);
    cr_expect(strstr(nsys_config_diag_message(d, 0), "deeper than 64 levels") != NULL);
    nsys_config_diag_free(d);
    free(json);
}

Test(config, rejects_document_over_size_limit_before_parsing)
{
    size_t n = (size_t)NSYS_CONFIG_MAX_BYTES + 1;
    char *json = malloc(n);
    cr_assert_not_null(json);
    /* Not even JSON: the limit is checked first. */
    memset(json, 'x', n);
    nsys_config_diag_t *d = load_bad_raw(json, n);
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect_str_eq(nsys_config_diag_path(d, 0), "$");
    cr_expect_str_eq(nsys_config_diag_message(d, 0),
                     "document is 16777217 bytes; the limit is 16 MiB");
    nsys_config_diag_free(d);
    free(json);
}

Test(config, accepts_document_of_exactly_size_limit)
{
    size_t n = NSYS_CONFIG_MAX_BYTES;
    char *json = malloc(n);
    cr_assert_not_null(json);
    const char *doc = "{\"supervisor\": {\"children\": []}}";
    memset(json, ' ', n);
    memcpy(json, doc, strlen(doc));
    nsys_config_t *cfg = NULL;
    cr_assert_eq(nsys_config_load_string(json, n, "doc", &cfg, NULL), 0);
    nsys_config_free(cfg);
    free(json);
}

Test(config, caps_the_number_of_errors)
{
    /* 3000 children without ids: one error each, shown up to the cap. */
    size_t n = 3000;
    const char *head = "{\"supervisor\": {\"children\": [";
    char *json = malloc(strlen(head) + n * 24 + 8);
    cr_assert_not_null(json);
    char *p = json + sprintf(json, "%s", head);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{\"behaviour\": \"echo\"}", i ? "," : "");
    sprintf(p, "]}}");
    nsys_config_diag_t *d = load_bad_raw(json, strlen(json));
    size_t count = nsys_config_diag_count(d);
    cr_expect_eq(count, 1000);
    cr_expect_str_eq(nsys_config_diag_message(d, count - 1),
                     "2001 more errors not shown (stopped after 999)");
    nsys_config_diag_free(d);
    free(json);
}

Test(config, reads_only_the_given_length)
{
    /* No NUL after the document: the parser must not look past len. */
    const char *doc = "{\"supervisor\": {\"children\": []}}";
    size_t n = strlen(doc);
    char *json = malloc(n);
    cr_assert_not_null(json);
    memcpy(json, doc, n);
    nsys_config_t *cfg = NULL;
    cr_assert_eq(nsys_config_load_string(json, n, "doc", &cfg, NULL), 0);
    nsys_config_free(cfg);
    /* Cut short, the same bytes are a truncated document. */
    nsys_config_diag_t *d = load_bad_raw(json, n - 1);
    expect_error(d, "$", "got the end of the document");
    nsys_config_diag_free(d);
    free(json);
}

Test(config, accepts_a_utf8_byte_order_mark)
{
    nsys_config_t *cfg = load_ok("\xEF\xBB\xBF{'supervisor': {'children': []}}");
    nsys_config_free(cfg);
}

/* ---- diagnostics API ---------------------------------------------------------- */

Test(config, prints_path_errors_and_syntax_errors)
{
    nsys_config_diag_t *d = load_bad(W("{'id': 'a', 'behaviour': 'echo', 'restart': 'x'}"));
    char *t = diag_text(d);
    cr_expect_str_eq(t, "doc: $.supervisor.children[0].restart: expected one of \"permanent\", "
                        "\"transient\", \"temporary\", got \"x\"\n");
    free(t);
    nsys_config_diag_free(d);

    d = load_bad("{\n'supervisor': x}");
    t = diag_text(d);
    cr_expect_str_eq(t, "doc:2:15: invalid JSON at line 2, column 15: expected a value, got "
                        "'x'\n");
    free(t);
    nsys_config_diag_free(d);
}

Test(config, print_defaults_to_the_loaded_source)
{
    const char *json = "[]";
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_assert_eq(nsys_config_load_string(json, 2, "tree.json", &cfg, &d), NSYS_ECONFIG);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nsys_config_diag_print(d, NULL, f);
    fclose(f);
    cr_expect_str_eq(buf, "tree.json: $: expected an object, got an array\n");
    free(buf);
    nsys_config_diag_free(d);
}

Test(config, diag_accessors_are_safe_out_of_range)
{
    nsys_config_diag_t *d = load_bad("[]");
    cr_expect_null(nsys_config_diag_path(d, 5));
    cr_expect_null(nsys_config_diag_message(d, 5));
    cr_expect_eq(nsys_config_diag_line(d, 5), 0);
    cr_expect_eq(nsys_config_diag_column(d, 5), 0);
    cr_expect_eq(nsys_config_diag_count(NULL), 0);
    nsys_config_diag_free(d);
    nsys_config_diag_free(NULL);
    nsys_config_free(NULL);
}

Test(config, fails_without_diag_pointer)
{
    nsys_config_t *cfg = NULL;
    cr_expect_eq(nsys_config_load_string("[]", 2, "doc", &cfg, NULL), NSYS_ECONFIG);
    cr_expect_null(cfg);
    cr_expect_eq(nsys_config_load_string("{}", 2, "doc", NULL, NULL), NSYS_EINVAL);
    cr_expect_eq(nsys_config_load_string(NULL, 2, "doc", &cfg, NULL), NSYS_EINVAL);
    cr_expect_eq(nsys_config_load_file(NULL, &cfg, NULL), NSYS_EINVAL);
}

/* ---- valid documents ----------------------------------------------------------- */

Test(config, builds_every_field_of_a_full_document)
{
    nsys_config_t *cfg = load_ok(
        "{'name': 'demo',"
        " 'runtime': {'schedulers': 2, 'batch': 128, 'spin': '50us', 'shutdown_timeout': '3s',"
        "             'max_actors': 4096, 'log_level': 'debug'},"
        " 'supervisor': {'strategy': 'rest_for_one', 'intensity': 10, 'period': '30s',"
        "  'backoff': {'initial': '20ms', 'max': '5s', 'multiplier': 1.5, 'jitter': 0.1,"
        "              'reset_after': '1m'},"
        "  'children': ["
        "   {'id': 'db', 'behaviour': 'tcp_echo', 'args': {'port': 5432},"
        "    'restart': 'transient', 'shutdown': '250ms'},"
        "   {'id': 'cache', 'type': 'worker', 'behaviour': 'echo', 'shutdown': 'brutal',"
        "    'restart': 'temporary'},"
        "   {'id': 'pool', 'type': 'supervisor', 'shutdown': 'infinity',"
        "    'supervisor': {'strategy': 'one_for_all', 'intensity': 0, 'children': ["
        "      {'id': 'w1', 'behaviour': 'demo_worker'}]}}"
        "  ]}}");

    cr_expect_str_eq(nsys_config_name(cfg), "demo");
    cr_expect_eq(nsys_config_log_level(cfg), NSYS_LOG_DEBUG);
    const nsys_runtime_opts_t *o = nsys_config_runtime_opts(cfg);
    cr_expect_eq(o->schedulers, 2);
    cr_expect_eq(o->batch, 128);
    cr_expect_eq(o->spin_us, 50);
    cr_expect_eq(o->shutdown_timeout_ms, 3000);
    cr_expect_eq(o->max_actors, 4096);

    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    cr_assert_not_null(s);
    cr_expect_eq(s->strategy, NSYS_REST_FOR_ONE);
    cr_expect_eq(s->intensity, 10);
    cr_expect_eq(s->period_ms, 30000);
    cr_expect_eq(s->backoff.initial_ms, 20);
    cr_expect_eq(s->backoff.max_ms, 5000);
    cr_expect_float_eq(s->backoff.multiplier, 1.5, 1e-12);
    cr_expect_float_eq(s->backoff.jitter, 0.1, 1e-12);
    cr_expect_eq(s->backoff.reset_after_ms, 60000);
    cr_expect_null(s->child_template);
    cr_expect_eq(s->observer, NSYS_REF_NONE);
    cr_assert_eq(s->nchildren, 3);

    const nsys_child_spec_t *c = &s->children[0];
    cr_expect_str_eq(c->id, "db");
    cr_expect_eq(c->type, NSYS_WORKER);
    cr_expect_eq(c->behaviour, &tcp_behaviour);
    cr_assert_not_null(c->args);
    cr_expect(cJSON_IsObject(c->args));
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(c->args, "port")->valuedouble, 5432);
    cr_expect_eq(c->restart, NSYS_TRANSIENT);
    cr_expect_eq(c->shutdown_ms, 250);
    cr_expect_null(c->supervisor);

    c = &s->children[1];
    cr_expect_str_eq(c->id, "cache");
    cr_expect_eq(c->behaviour, &echo_behaviour);
    cr_expect_null(c->args);
    cr_expect_eq(c->restart, NSYS_TEMPORARY);
    cr_expect_eq(c->shutdown_ms, NSYS_SHUTDOWN_BRUTAL);

    c = &s->children[2];
    cr_expect_str_eq(c->id, "pool");
    cr_expect_eq(c->type, NSYS_SUPERVISOR_CHILD);
    cr_expect_null(c->behaviour);
    cr_expect_null(c->args);
    cr_expect_eq(c->restart, NSYS_PERMANENT);
    cr_expect_eq(c->shutdown_ms, NSYS_SHUTDOWN_INFINITY);
    const nsys_sup_spec_t *n = c->supervisor;
    cr_assert_not_null(n);
    cr_expect_eq(n->strategy, NSYS_ONE_FOR_ALL);
    cr_expect_eq(n->intensity, NSYS_SUP_NO_RESTARTS);
    cr_expect_eq(n->period_ms, 0);
    cr_expect_eq(n->observer, NSYS_REF_NONE);
    cr_assert_eq(n->nchildren, 1);
    cr_expect_str_eq(n->children[0].id, "w1");
    cr_expect_eq(n->children[0].behaviour, &demo_behaviour);
    nsys_config_free(cfg);
}

Test(config, leaves_absent_fields_zero_for_defaults)
{
    nsys_config_t *cfg =
        load_ok("{'supervisor': {'children': [{'id': 'a', 'behaviour': 'echo'}]}}");
    cr_expect_str_eq(nsys_config_name(cfg), "root");
    cr_expect_eq(nsys_config_log_level(cfg), NSYS_LOG_INFO);
    const nsys_runtime_opts_t *o = nsys_config_runtime_opts(cfg);
    cr_expect_eq(o->schedulers, 0);
    cr_expect_eq(o->batch, 0);
    cr_expect_eq(o->spin_us, 0);
    cr_expect_eq(o->shutdown_timeout_ms, 0);
    cr_expect_eq(o->max_actors, 0);
    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    cr_expect_eq(s->strategy, NSYS_ONE_FOR_ONE);
    cr_expect_eq(s->intensity, 0);
    cr_expect_eq(s->period_ms, 0);
    cr_expect_eq(s->backoff.initial_ms, 0);
    cr_expect_eq(s->backoff.max_ms, 0);
    cr_expect_eq(s->backoff.multiplier, 0.0);
    cr_expect_eq(s->backoff.jitter, 0.0);
    cr_expect_eq(s->backoff.reset_after_ms, 0);
    cr_expect_eq(s->children[0].type, NSYS_WORKER);
    cr_expect_eq(s->children[0].restart, NSYS_PERMANENT);
    cr_expect_eq(s->children[0].shutdown_ms, 0);
    cr_expect_null(s->children[0].args);
    nsys_config_free(cfg);
}

Test(config, maps_zero_values_to_their_special_meanings)
{
    nsys_config_t *cfg = load_ok("{'runtime': {'spin': '0us', 'schedulers': 0},"
                                 " 'supervisor': {'intensity': 0, 'backoff': {'jitter': 0},"
                                 " 'children': []}}");
    cr_expect_eq(nsys_config_runtime_opts(cfg)->spin_us, -1);
    cr_expect_eq(nsys_config_runtime_opts(cfg)->schedulers, 0);
    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    cr_expect_eq(s->intensity, NSYS_SUP_NO_RESTARTS);
    cr_expect_eq(s->backoff.jitter, NSYS_BACKOFF_NO_JITTER);
    cr_expect_eq(s->nchildren, 0);
    nsys_config_free(cfg);
}

Test(config, converts_duration_units)
{
    nsys_config_t *cfg =
        load_ok("{'runtime': {'spin': '1ms', 'shutdown_timeout': '1h'},"
                " 'supervisor': {'period': '1500us', 'backoff': {'initial': '1us', 'max': '2m'},"
                " 'children': [{'id': 'a', 'behaviour': 'echo', 'shutdown': '1s'}]}}");
    cr_expect_eq(nsys_config_runtime_opts(cfg)->spin_us, 1000);
    cr_expect_eq(nsys_config_runtime_opts(cfg)->shutdown_timeout_ms, 3600000);
    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    cr_expect_eq(s->period_ms, 2); /* us round up to whole ms */
    cr_expect_eq(s->backoff.initial_ms, 1);
    cr_expect_eq(s->backoff.max_ms, 120000);
    cr_expect_eq(s->children[0].shutdown_ms, 1000);
    nsys_config_free(cfg);
}

Test(config, reads_every_log_level)
{
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 6; i++) {
        char json[128];
        snprintf(json, sizeof json,
                 "{'runtime': {'log_level': '%s'}, 'supervisor': {'children': []}}", names[i]);
        nsys_config_t *cfg = load_ok(json);
        cr_expect_eq(nsys_config_log_level(cfg), (nsys_log_level_t)i);
        nsys_config_free(cfg);
    }
}

Test(config, builds_simple_one_for_one_template)
{
    nsys_config_t *cfg = load_ok("{'supervisor': {'strategy': 'simple_one_for_one',"
                                 " 'template': {'behaviour': 'tcp_echo', 'args': {'port': 7},"
                                 "              'restart': 'temporary'}}}");
    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    cr_expect_eq(s->strategy, NSYS_SIMPLE_ONE_FOR_ONE);
    cr_expect_eq(s->nchildren, 0);
    const nsys_child_spec_t *t = s->child_template;
    cr_assert_not_null(t);
    cr_expect_str_eq(t->id, "child");
    cr_expect_eq(t->type, NSYS_WORKER);
    cr_expect_eq(t->behaviour, &tcp_behaviour);
    cr_expect_eq(t->restart, NSYS_TEMPORARY);
    cr_assert_not_null(t->args);
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(t->args, "port")->valuedouble, 7);
    nsys_config_free(cfg);

    cfg = load_ok("{'supervisor': {'strategy': 'simple_one_for_one', 'children': [],"
                  " 'template': {'id': 'conn', 'behaviour': 'echo'}}}");
    cr_expect_str_eq(nsys_config_root(cfg)->child_template->id, "conn");
    nsys_config_free(cfg);
}

Test(config, keeps_children_in_document_order)
{
    nsys_config_t *cfg = load_ok(W("{'id': 'z', 'behaviour': 'echo'}, {'id': 'a', 'behaviour': "
                                   "'echo'}, {'id': 'm', 'behaviour': 'flaky_worker'}"));
    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    cr_assert_eq(s->nchildren, 3);
    cr_expect_str_eq(s->children[0].id, "z");
    cr_expect_str_eq(s->children[1].id, "a");
    cr_expect_str_eq(s->children[2].id, "m");
    cr_expect_eq(s->children[2].behaviour, &flaky_behaviour);
    nsys_config_free(cfg);
}

Test(config, builds_supervisors_nested_ten_levels_deep)
{
    /* level k (1..10) is a supervisor child "s<k>" next to a worker "w<k>". */
    char json[8192];
    char *p = json;
    p += sprintf(p, "{\"supervisor\": {\"strategy\": \"one_for_all\", \"children\": [");
    for (int k = 1; k <= 10; k++)
        p += sprintf(p,
                     "{\"id\": \"w%d\", \"behaviour\": \"echo\"}, {\"id\": \"s%d\", \"type\": "
                     "\"supervisor\", \"supervisor\": {\"intensity\": %d, \"children\": [",
                     k, k, k);
    p += sprintf(p, "{\"id\": \"leaf\", \"behaviour\": \"demo_worker\"}");
    for (int k = 1; k <= 10; k++)
        p += sprintf(p, "]}}");
    sprintf(p, "]}}");

    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_assert_eq(nsys_config_load_string(json, strlen(json), "doc", &cfg, &d), 0);
    const nsys_sup_spec_t *s = nsys_config_root(cfg);
    for (int k = 1; k <= 10; k++) {
        char id[8];
        cr_assert_eq(s->nchildren, 2, "level %d", k);
        snprintf(id, sizeof id, "w%d", k);
        cr_expect_str_eq(s->children[0].id, id);
        snprintf(id, sizeof id, "s%d", k);
        cr_expect_str_eq(s->children[1].id, id);
        cr_assert_eq(s->children[1].type, NSYS_SUPERVISOR_CHILD);
        s = s->children[1].supervisor;
        cr_assert_not_null(s);
        cr_expect_eq(s->intensity, (uint32_t)k);
        cr_expect_eq(s->observer, NSYS_REF_NONE);
    }
    cr_assert_eq(s->nchildren, 1);
    cr_expect_str_eq(s->children[0].id, "leaf");
    cr_expect_eq(s->children[0].behaviour, &demo_behaviour);
    nsys_config_free(cfg);
}

Test(config, accepts_ids_with_every_allowed_character)
{
    nsys_config_t *cfg =
        load_ok("{'name': 'a.B-9_z', 'supervisor': {'children': ["
                "{'id': '012345678901234567890123456789012345678901234567890123456789012',"
                " 'behaviour': 'echo'}, {'id': 'x.y-z_0', 'behaviour': 'echo'}]}}");
    cr_expect_str_eq(nsys_config_name(cfg), "a.B-9_z");
    cr_expect_eq(strlen(nsys_config_root(cfg)->children[0].id), 63);
    nsys_config_free(cfg);
}

/* ---- value parsers -------------------------------------------------------------- */

Test(config, parses_durations_in_ms)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } ok[] = {{"250ms", 250},
              {"5s", 5000},
              {"2m", 120000},
              {"1h", 3600000},
              {"1500us", 2},
              {"1000us", 1},
              {"1us", 1},
              {"0us", 0},
              {"0s", 0},
              {"007ms", 7},
              {"18446744073709551615ms", UINT64_MAX},
              {"5124095576030h", UINT64_C(5124095576030) * 3600000u}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        cr_expect_eq(nsys_config_parse_duration(ok[i].text, &v), 0, "%s", ok[i].text);
        cr_expect_eq(v, ok[i].ms, "%s", ok[i].text);
    }
    static const char *bad[] = {"",      "5",    "ms",   "5 s",   " 5s",  "5s ",
                                "5S",    "-5s",  "+5s",  "5.5s",  "5sec", "5d",
                                "1e3ms", "5 ms", "5mss", "0x10s", "s5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 12345;
        cr_expect_eq(nsys_config_parse_duration(bad[i], &v), NSYS_EINVAL, "\"%s\"", bad[i]);
        cr_expect_eq(v, 12345, "output untouched for \"%s\"", bad[i]);
    }
    uint64_t v;
    cr_expect_eq(nsys_config_parse_duration(NULL, &v), NSYS_EINVAL);
    cr_expect_eq(nsys_config_parse_duration("5s", NULL), NSYS_EINVAL);
    cr_expect_eq(nsys_config_parse_duration("18446744073709551616ms", &v), NSYS_ERANGE);
    cr_expect_eq(nsys_config_parse_duration("5124095576031h", &v), NSYS_ERANGE);
    cr_expect_eq(nsys_config_parse_duration("99999999999999999999999999us", &v), NSYS_ERANGE);
    /* The form is checked before the amount. */
    cr_expect_eq(nsys_config_parse_duration("99999999999999999999999999xs", &v), NSYS_EINVAL);
}

Test(config, parses_durations_in_us)
{
    uint64_t v = 0;
    cr_expect_eq(nsys_config_parse_duration_us("20us", &v), 0);
    cr_expect_eq(v, 20);
    cr_expect_eq(nsys_config_parse_duration_us("3ms", &v), 0);
    cr_expect_eq(v, 3000);
    cr_expect_eq(nsys_config_parse_duration_us("2s", &v), 0);
    cr_expect_eq(v, 2000000);
    cr_expect_eq(nsys_config_parse_duration_us("1m", &v), 0);
    cr_expect_eq(v, 60000000);
    cr_expect_eq(nsys_config_parse_duration_us("1h", &v), 0);
    cr_expect_eq(v, UINT64_C(3600000000));
    cr_expect_eq(nsys_config_parse_duration_us("18446744073709s", &v), 0);
    cr_expect_eq(v, UINT64_C(18446744073709000000));
    cr_expect_eq(nsys_config_parse_duration_us("18446744073710s", &v), NSYS_ERANGE);
    cr_expect_eq(nsys_config_parse_duration_us("5124095576031h", &v), NSYS_ERANGE);
    cr_expect_eq(nsys_config_parse_duration_us("1.5ms", &v), NSYS_EINVAL);
    cr_expect_eq(nsys_config_parse_duration_us("20", &v), NSYS_EINVAL);
    cr_expect_eq(nsys_config_parse_duration_us("20µs", &v), NSYS_EINVAL);
}

Test(config, parses_sizes)
{
    uint64_t v = 0;
    cr_expect_eq(nsys_config_parse_size("512B", &v), 0);
    cr_expect_eq(v, 512);
    cr_expect_eq(nsys_config_parse_size("64KiB", &v), 0);
    cr_expect_eq(v, 65536);
    cr_expect_eq(nsys_config_parse_size("1MiB", &v), 0);
    cr_expect_eq(v, 1048576);
    cr_expect_eq(nsys_config_parse_size("1GiB", &v), 0);
    cr_expect_eq(v, UINT64_C(1073741824));
    cr_expect_eq(nsys_config_parse_size("0B", &v), 0);
    cr_expect_eq(v, 0);
    cr_expect_eq(nsys_config_parse_size("17179869183GiB", &v), 0);
    cr_expect_eq(v, UINT64_C(17179869183) << 30);
    cr_expect_eq(nsys_config_parse_size("17179869184GiB", &v), NSYS_ERANGE);
    cr_expect_eq(nsys_config_parse_size("18446744073709551616B", &v), NSYS_ERANGE);
    static const char *bad[] = {"1KB", "1kib", "1 MiB", "1.5MiB", "1",  "MiB",
                                "1b",  "1TiB", "-1B",   "1MiB ",  "1M", "1K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(nsys_config_parse_size(bad[i], &v), NSYS_EINVAL, "\"%s\"", bad[i]);
    cr_expect_eq(nsys_config_parse_size(NULL, &v), NSYS_EINVAL);
}

/* ---- args helpers ---------------------------------------------------------------- */

/* A kind whose validator uses every public args helper (registered by the
 * tests that need it: each test runs in its own process). */
static void helpers_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    static const char *const keys[] = {"count", "flag", "name", "mode", "wait", "size", "nested"};
    static const char *const modes[] = {"fast", "safe"};
    static const char *const nested_keys[] = {"x"};
    if (nsys_config_check_object(args, path, d) == NSYS_EINVAL)
        return;
    nsys_config_check_keys(args, path, keys, sizeof keys / sizeof keys[0], d);
    int64_t i;
    bool b;
    const char *s = NULL;
    int e;
    uint64_t u;
    const cJSON *o = NULL;
    if (nsys_config_require(args, path, "count", d) == 0)
        nsys_config_arg_int(args, path, "count", -5, 5, &i, d);
    nsys_config_arg_bool(args, path, "flag", &b, d);
    if (nsys_config_arg_string(args, path, "name", &s, d) == 0 && strcmp(s, "bad") == 0) {
        char *at = nsys_config_path_key(path, "name");
        nsys_config_expected(d, at, cJSON_GetObjectItemCaseSensitive(args, "name"),
                             "a name other than %s", "that");
        nsys_free(at);
    }
    nsys_config_arg_enum(args, path, "mode", modes, 2, &e, d);
    nsys_config_arg_duration(args, path, "wait", 10, 60000, &u, d);
    nsys_config_arg_size(args, path, "size", 1024, 1024 * 1024, &u, d);
    if (nsys_config_arg_object(args, path, "nested", &o, d) == 0) {
        char *at = nsys_config_path_key(path, "nested");
        nsys_config_check_keys(o, at, nested_keys, 1, d);
        nsys_free(at);
    }
}

static const nsys_behaviour_t helpers_behaviour = {"helpers", 0, NULL, noop_handle, NULL};

static void register_helpers_kind(void)
{
    static const nsys_config_kind_t k = {"helpers", &helpers_behaviour, helpers_validate, "test"};
    cr_assert_eq(nsys_config_register(&k), 0);
}

#define H(args) W("{'id': 'h', 'behaviour': 'helpers', 'args': {" args "}}")

Test(config, args_helpers_report_in_the_loaders_words)
{
    register_helpers_kind();
    nsys_config_diag_t *d =
        load_bad(H("'cuont': 1, 'count': 9, 'flag': 'yes', 'name': 3, 'mode': 'slow', "
                   "'wait': '5ms', 'size': '64KB', 'nested': [], 'a b': 1"));
    const want_t want[] = {
        {ARGS ".cuont", "unknown key; did you mean \"count\"?"},
        {ARGS "['a b']", "unknown key; expected one of \"count\", \"flag\", \"name\", \"mode\", "
                         "\"wait\", \"size\", \"nested\""},
        {ARGS ".count", "expected an integer -5..5, got 9"},
        {ARGS ".flag", "expected true or false, got a string"},
        {ARGS ".name", "expected a string, got a number"},
        {ARGS ".mode", "expected one of \"fast\", \"safe\", got \"slow\""},
        {ARGS ".wait", "expected a duration 10ms..1m, got \"5ms\""},
        {ARGS ".size", "expected a size such as \"64KiB\" or \"1MiB\", got \"64KB\""},
        {ARGS ".nested", "expected an object, got an array"},
    };
    expect_diag(d, want, sizeof want / sizeof want[0]);
    nsys_config_diag_free(d);

    d = load_bad(H("'count': 1, 'name': 'bad', 'size': '2MiB', 'wait': 'soon', "
                   "'nested': {'x': 1, 'y': 2}"));
    const want_t want2[] = {
        {ARGS ".name", "expected a name other than that, got \"bad\""},
        {ARGS ".wait", "expected a duration such as \"500ms\" or \"5s\", got \"soon\""},
        {ARGS ".size", "expected a size 1KiB..1MiB, got \"2MiB\""},
        {ARGS ".nested.y", "unknown key; expected one of \"x\""},
    };
    expect_diag(d, want2, sizeof want2 / sizeof want2[0]);
    nsys_config_diag_free(d);
}

Test(config, args_helpers_report_missing_keys_and_repeated_ones_once)
{
    register_helpers_kind();
    nsys_config_diag_t *d = load_bad(W("{'id': 'h', 'behaviour': 'helpers'}"));
    const want_t want[] = {{ARGS, "missing required key \"count\""}};
    expect_diag(d, want, 1);
    nsys_config_diag_free(d);

    /* The loader reports the repetition; the kind the unknown key, once. */
    d = load_bad(H("'count': 1, 'zz': 1, 'zz': 2"));
    const want_t want2[] = {{ARGS, "duplicate key \"zz\""},
                            {ARGS ".zz", "unknown key; expected one of \"count\", \"flag\", "
                                         "\"name\", \"mode\", \"wait\", \"size\", \"nested\""}};
    expect_diag(d, want2, 2);
    nsys_config_diag_free(d);

    nsys_config_t *cfg = load_ok(H("'count': -5, 'flag': false, 'name': 'x', 'mode': 'safe', "
                                   "'wait': '1m', 'size': '1KiB', 'nested': {'x': 0}"));
    nsys_config_free(cfg);
}

Test(config, args_helpers_read_values_without_a_diag)
{
    cJSON *o = cJSON_Parse("{\"i\": 42, \"b\": true, \"s\": \"hi\", \"e\": \"raw\", "
                           "\"d\": \"1500us\", \"z\": \"2KiB\", \"o\": {}, \"bad\": [1]}");
    cr_assert_not_null(o);
    int64_t i = 0;
    bool b = false;
    const char *s = NULL;
    int e = -1;
    uint64_t u = 0;
    const cJSON *sub = NULL;
    static const char *const codecs[] = {"length", "raw"};
    cr_expect_eq(nsys_config_arg_int(o, "$", "i", 0, 100, &i, NULL), 0);
    cr_expect_eq(i, 42);
    cr_expect_eq(nsys_config_arg_int(o, "$", "i", 0, 10, &i, NULL), NSYS_EINVAL);
    cr_expect_eq(i, 42, "left alone on error");
    cr_expect_eq(nsys_config_arg_int(o, "$", "missing", 0, 10, &i, NULL), NSYS_ENOENT);
    cr_expect_eq(nsys_config_arg_int(o, "$", "i", INT64_MIN, INT64_MAX, &i, NULL), 0);
    cr_expect_eq(nsys_config_arg_bool(o, "$", "b", &b, NULL), 0);
    cr_expect(b);
    cr_expect_eq(nsys_config_arg_string(o, "$", "s", &s, NULL), 0);
    cr_expect_str_eq(s, "hi");
    cr_expect_eq(nsys_config_arg_enum(o, "$", "e", codecs, 2, &e, NULL), 0);
    cr_expect_eq(e, 1);
    cr_expect_eq(nsys_config_arg_duration(o, "$", "d", 0, 10, &u, NULL), 0);
    cr_expect_eq(u, 2, "1500us rounds up to 2 ms");
    cr_expect_eq(nsys_config_arg_size(o, "$", "z", 0, UINT64_MAX, &u, NULL), 0);
    cr_expect_eq(u, 2048);
    cr_expect_eq(nsys_config_arg_object(o, "$", "o", &sub, NULL), 0);
    cr_expect_not_null(sub);
    cr_expect_eq(nsys_config_arg_object(o, "$", "bad", &sub, NULL), NSYS_EINVAL);
    cr_expect_eq(nsys_config_arg_string(o, "$", "bad", &s, NULL), NSYS_EINVAL);
    /* Not an object, or no object at all: no keys. */
    cr_expect_eq(nsys_config_arg_int(NULL, "$", "i", 0, 100, &i, NULL), NSYS_ENOENT);
    cr_expect_eq(nsys_config_arg_int(cJSON_GetObjectItem(o, "bad"), "$", "i", 0, 1, &i, NULL),
                 NSYS_ENOENT);
    cr_expect_eq(nsys_config_check_object(NULL, "$", NULL), NSYS_ENOENT);
    cr_expect_eq(nsys_config_check_object(o, "$", NULL), 0);
    cr_expect_eq(nsys_config_check_object(cJSON_GetObjectItem(o, "bad"), "$", NULL), NSYS_EINVAL);
    cr_expect_eq(nsys_config_require(o, "$", "i", NULL), 0);
    cr_expect_eq(nsys_config_require(o, "$", "nope", NULL), NSYS_ENOENT);
    cJSON_Delete(o);
}

Test(config, args_helpers_build_paths_like_the_loader)
{
    char *p = nsys_config_path_key("$.a", "port");
    cr_expect_str_eq(p, "$.a.port");
    nsys_free(p);
    p = nsys_config_path_key("$.a", "two words");
    cr_expect_str_eq(p, "$.a['two words']");
    nsys_free(p);
    p = nsys_config_path_key("$.a", "it's");
    cr_expect_str_eq(p, "$.a['it\\'s']");
    nsys_free(p);
    p = nsys_config_path_index("$.a.list", 3);
    cr_expect_str_eq(p, "$.a.list[3]");
    nsys_free(p);
}

/* ---- registry ------------------------------------------------------------------ */

Test(config, registry_refuses_duplicates_and_nonsense)
{
    nsys_config_kind_t k = {"echo", &echo_behaviour, NULL, "again"};
    cr_expect_eq(nsys_config_register(&k), NSYS_EEXIST);
    cr_expect_eq(nsys_config_register(NULL), NSYS_EINVAL);
    k.name = NULL;
    cr_expect_eq(nsys_config_register(&k), NSYS_EINVAL);
    k.name = "has space";
    cr_expect_eq(nsys_config_register(&k), NSYS_EINVAL);
    k.name = "";
    cr_expect_eq(nsys_config_register(&k), NSYS_EINVAL);
    k.name = "no_behaviour";
    k.behaviour = NULL;
    cr_expect_eq(nsys_config_register(&k), NSYS_EINVAL);
    cr_expect_eq(nsys_config_unregister("never_registered"), NSYS_ENOENT);
    cr_expect_eq(nsys_config_unregister(NULL), NSYS_EINVAL);
}

Test(config, registry_copies_the_kind_and_keeps_order)
{
    nsys_config_kind_t k = {"copied", &echo_behaviour, NULL, "copy me"};
    cr_assert_eq(nsys_config_register(&k), 0);
    k.name = "changed";
    k.summary = "changed";
    const nsys_config_kind_t *found = nsys_config_find_kind("copied");
    cr_assert_not_null(found);
    cr_expect_str_eq(found->name, "copied");
    cr_expect_str_eq(found->summary, "copy me");
    cr_expect_eq(found->behaviour, &echo_behaviour);
    cr_expect_null(nsys_config_find_kind("changed"));
    cr_expect_null(nsys_config_find_kind(NULL));

    const char **names = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_assert_eq(n, 8);
    /* netsys's own kinds come first, then the program's in its order. */
    const char *want[] = {"listener",     "proxy",       "client",   "echo",
                          "demo_worker", "flaky_worker", "tcp_echo", "copied"};
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(names[i], want[i]);
    nsys_free(names);

    cr_expect_eq(nsys_config_unregister("demo_worker"), 0);
    cr_expect_null(nsys_config_find_kind("demo_worker"));
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_assert_eq(n, 7);
    cr_expect_str_eq(names[4], "flaky_worker");
    nsys_free(names);

    /* An unregistered kind is unknown to documents loaded afterwards. */
    nsys_config_diag_t *d = load_bad(W("{'id': 'a', 'behaviour': 'demo_worker'}"));
    expect_error(d, "$.supervisor.children[0].behaviour",
                 "unknown behaviour \"demo_worker\"; known: \"listener\", \"proxy\", "
                 "\"client\", \"echo\", \"flaky_worker\", \"tcp_echo\", \"copied\"");
    nsys_config_diag_free(d);
}

Test(config, unknown_behaviour_when_nothing_is_registered)
{
    const char *all[] = {"listener",    "proxy",        "client",
                         "demo_worker", "flaky_worker", "tcp_echo", "echo"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cr_assert_eq(nsys_config_unregister(all[i]), 0);
    const char **names = (const char **)&names;
    size_t n = 99;
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_expect_eq(n, 0);
    nsys_free(names);
    nsys_config_diag_t *d = load_bad(W("{'id': 'a', 'behaviour': 'echo'}"));
    expect_error(d, "$.supervisor.children[0].behaviour",
                 "unknown behaviour \"echo\"; no behaviours are registered");
    nsys_config_diag_free(d);
}

#define REG_THREADS 4
#define REG_PER_THREAD 100

static void *register_many(void *arg)
{
    int t = (int)(intptr_t)arg;
    static char names[REG_THREADS][REG_PER_THREAD][16];
    static nsys_config_kind_t kinds[REG_THREADS][REG_PER_THREAD];
    for (int i = 0; i < REG_PER_THREAD; i++) {
        snprintf(names[t][i], sizeof names[t][i], "k%d_%d", t, i);
        kinds[t][i] = (nsys_config_kind_t){names[t][i], &echo_behaviour, NULL, NULL};
        if (nsys_config_register(&kinds[t][i]) != 0)
            return (void *)1;
        if (nsys_config_find_kind(names[t][i]) == NULL)
            return (void *)1;
    }
    return NULL;
}

Test(config, registry_is_thread_safe)
{
    pthread_t th[REG_THREADS];
    for (int t = 0; t < REG_THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, register_many, (void *)(intptr_t)t), 0);
    for (int t = 0; t < REG_THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_expect_null(r);
    }
    const char **names = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_expect_eq(n, 7 + REG_THREADS * REG_PER_THREAD); /* with listener, proxy, client */
    nsys_free(names);
}

#define LOAD_THREADS 4

static void *load_many(void *arg)
{
    (void)arg;
    const char *good = "{\"supervisor\": {\"children\": [{\"id\": \"a\", \"behaviour\": "
                       "\"echo\"}]}}";
    const char *bad = "{\"supervisor\": {\"children\": [{\"id\": \"a\", \"behaviour\": "
                      "\"nope\", \"restart\": 1}]}}";
    for (int i = 0; i < 200; i++) {
        nsys_config_t *cfg = NULL;
        nsys_config_diag_t *d = NULL;
        if (nsys_config_load_string(good, strlen(good), "good", &cfg, &d) != 0 || cfg == NULL)
            return (void *)1;
        nsys_config_free(cfg);
        if (nsys_config_load_string(bad, strlen(bad), "bad", &cfg, &d) != NSYS_ECONFIG ||
            nsys_config_diag_count(d) != 2)
            return (void *)1;
        nsys_config_diag_free(d);
    }
    return NULL;
}

Test(config, loads_documents_from_many_threads_at_once)
{
    pthread_t th[LOAD_THREADS];
    for (int t = 0; t < LOAD_THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, load_many, NULL), 0);
    for (int t = 0; t < LOAD_THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_expect_null(r);
    }
}

/* ---- files ----------------------------------------------------------------------- */

static char *temp_file(const char *content, size_t len)
{
    char *path = strdup("/tmp/netsys_test_config_XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(config, loads_a_file)
{
    char *json = dq("{'name': 'from_file', 'supervisor': {'children': ["
                    "{'id': 'a', 'behaviour': 'echo'}]}}");
    char *path = temp_file(json, strlen(json));
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_expect_eq(nsys_config_load_file(path, &cfg, &d), 0);
    cr_expect_null(d);
    cr_assert_not_null(cfg);
    cr_expect_str_eq(nsys_config_name(cfg), "from_file");
    cr_expect_str_eq(nsys_config_root(cfg)->children[0].id, "a");
    nsys_config_free(cfg);
    unlink(path);
    free(path);
    free(json);
}

Test(config, reports_a_missing_file)
{
    const char *path = "/tmp/netsys_test_config_does_not_exist.json";
    unlink(path);
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_expect_eq(nsys_config_load_file(path, &cfg, &d), NSYS_ENOENT);
    cr_expect_null(cfg);
    cr_assert_not_null(d);
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect_str_eq(nsys_config_diag_message(d, 0),
                     "cannot open \"/tmp/netsys_test_config_does_not_exist.json\": no such file "
                     "or directory");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nsys_config_diag_print(d, NULL, f);
    fclose(f);
    cr_expect_str_eq(buf, "/tmp/netsys_test_config_does_not_exist.json: cannot open "
                          "\"/tmp/netsys_test_config_does_not_exist.json\": no such file or "
                          "directory\n");
    free(buf);
    nsys_config_diag_free(d);
}

Test(config, reports_a_directory)
{
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_expect_eq(nsys_config_load_file("/tmp", &cfg, &d), UV_EISDIR);
    cr_expect_null(cfg);
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect(strstr(nsys_config_diag_message(d, 0), "cannot read \"/tmp\"") != NULL);
    nsys_config_diag_free(d);
}

Test(config, names_the_file_in_syntax_errors)
{
    const char *json = "{\n  \"supervisor\": {\n    \"children\": [,]\n  }\n}\n";
    char *path = temp_file(json, strlen(json));
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_expect_eq(nsys_config_load_file(path, &cfg, &d), NSYS_ECONFIG);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nsys_config_diag_print(d, NULL, f);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want,
             "%s:3:18: invalid JSON at line 3, column 18: expected a value, got ','\n", path);
    cr_expect_str_eq(buf, want);
    free(buf);
    nsys_config_diag_free(d);
    unlink(path);
    free(path);
}

Test(config, refuses_a_file_over_the_limit_without_reading_it)
{
    char *path = temp_file("", 0);
    /* Sparse: 16 MiB + 1 of nothing, refused from its size alone. */
    cr_assert_eq(truncate(path, (off_t)NSYS_CONFIG_MAX_BYTES + 1), 0);
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_expect_eq(nsys_config_load_file(path, &cfg, &d), NSYS_ECONFIG);
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect_str_eq(nsys_config_diag_message(d, 0),
                     "document is 16777217 bytes; the limit is 16 MiB");
    nsys_config_diag_free(d);
    unlink(path);
    free(path);
}

Test(config, refuses_a_stream_over_the_limit)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        static char chunk[65536];
        memset(chunk, ' ', sizeof chunk);
        for (size_t sent = 0; sent <= NSYS_CONFIG_MAX_BYTES; sent += sizeof chunk)
            if (write(fds[1], chunk, sizeof chunk) < 0)
                break;
        _exit(0);
    }
    close(fds[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    nsys_config_t *cfg = NULL;
    nsys_config_diag_t *d = NULL;
    cr_expect_eq(nsys_config_load_file(path, &cfg, &d), NSYS_ECONFIG);
    cr_assert_eq(nsys_config_diag_count(d), 1);
    cr_expect_str_eq(nsys_config_diag_message(d, 0),
                     "document is over 16777216 bytes; the limit is 16 MiB");
    nsys_config_diag_free(d);
    close(fds[0]);
    waitpid(pid, NULL, 0);
}

/* The example trees shipped in examples/ load with the kinds they name
 * (registered here as stand-ins for the CLI's demo kinds, args included;
 * the pinger's args are checked by test_cli's `netsys check`). */
Test(config, loads_every_example_tree)
{
    static const nsys_config_kind_t pinger = {"pinger", &echo_behaviour, NULL, "stand-in"};
    cr_assert_eq(nsys_config_register(&pinger), 0);
    char root[4096];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/test_config.c");
    cr_assert_not_null(cut, "cannot find the source tree from %s", __FILE__);
    strcpy(cut, "examples");
    DIR *dir = opendir(root);
    cr_assert_not_null(dir, "cannot open %s", root);
    int loaded = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        nsys_config_t *cfg = NULL;
        nsys_config_diag_t *d = NULL;
        int rc = nsys_config_load_file(path, &cfg, &d);
        if (rc != 0) {
            char *t = diag_text(d);
            cr_expect_fail("%s does not load (%d):\n%s", path, rc, t);
            free(t);
        }
        nsys_config_diag_free(d);
        nsys_config_free(cfg);
        loaded++;
    }
    closedir(dir);
    cr_expect_geq(loaded, 2, "expected example trees in %s", root);
}

/* tests/unit/test_config_client.c — the built-in "client" behaviour kind
 * (config/client_kind.c): it is registered right after "proxy"; every key of
 * its args maps to its nsys_client_opts_t field (defaults when absent),
 * read through documents and through nsys_config_client_args directly;
 * every error carries its exact path and message, all of a document's
 * errors are collected in one pass; and trees started from documents run
 * real clients on 127.0.0.1: one registered under its "register" name
 * connects to an echo listener, its echoes reach the "owner" actor, a lost
 * link is ridden out without the supervisor, the heartbeat pings and
 * declares a silent link dead, stop_on and max_attempts end the client
 * (and count against the supervisor's intensity), and an unknown owner or
 * a taken name fail the start.
 *
 * JSON in the tables is written with single quotes, which the tests turn
 * into double quotes before parsing. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netsys/client.h>
#include <netsys/netsys.h>

#include "common/config_fixture.h"
#include "common/net.h"

static void setup(void)
{
    nsys_log_set_level(NSYS_LOG_OFF); /* failed starts and give-ups log at error/warn */
}

/* One timeout for every test of this file (see common/wait.h). */
TestSuite(config_client, .init = setup, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------- */

/* A client child with `args` (the inside of the args object). */
#define C(args) W("{'id': 'link', 'behaviour': 'client', 'args': {" args "}}")

/* The unknown-key lists of each object. */
#define CLIENT_KEYS                                                                                \
    "\"host\", \"port\", \"connect_timeout\", \"transport\", \"reconnect\", \"outbox\", "          \
    "\"heartbeat\", \"register\", \"owner\""
#define RECONNECT_KEYS                                                                             \
    "\"initial\", \"max\", \"multiplier\", \"jitter\", \"reset_after\", \"max_attempts\", "        \
    "\"stop_on\""
#define STOP_ON_NAMES "\"resolve\", \"refused\", \"unreachable\", \"timeout\", \"reset\""

/* Reads `args_sq` (a whole JSON object) with nsys_config_client_args at
 * "args" and asserts it is valid. The options point into *json: free it
 * with cJSON_Delete after. */
static void read_ok(const char *args_sq, cJSON **json, nsys_config_client_t *out)
{
    char *s = dq(args_sq);
    *json = cJSON_Parse(s);
    free(s);
    cr_assert_not_null(*json, "bad test JSON: %s", args_sq);
    nsys_config_diag_t *d = nsys_config_diag_new();
    cr_assert_not_null(d);
    int rc = nsys_config_client_args(*json, "args", out, d);
    if (rc != 0) {
        char *t = diag_text(d);
        cr_log_error("%s", t != NULL ? t : "");
        free(t);
    }
    cr_expect_eq(nsys_config_diag_count(d), 0);
    nsys_config_diag_free(d);
    cr_assert_eq(rc, 0, "nsys_config_client_args: %s", nsys_strerror(rc));
    cr_expect_eq(out->opts.stop_on, out->stop_on, "stop_on must point into the result");
}

/* ---- registration ----------------------------------------------------------------- */

Test(config_client, is_registered_right_after_the_proxy)
{
    const char **names = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_assert_geq(n, 3);
    cr_expect_str_eq(names[0], "listener");
    cr_expect_str_eq(names[1], "proxy");
    cr_expect_str_eq(names[2], "client");
    nsys_free(names);

    const nsys_config_kind_t *k = nsys_config_find_kind("client");
    cr_assert_not_null(k);
    cr_assert_not_null(k->behaviour);
    cr_expect_not_null(k->validate);
    cr_expect_not_null(k->summary);
    /* The client's own turn and clean-up, with an init that reads args. */
    cr_expect_eq(k->behaviour->state_size, nsys_client_behaviour.state_size);
    cr_expect_eq(k->behaviour->handle, nsys_client_behaviour.handle);
    cr_expect_eq(k->behaviour->terminate, nsys_client_behaviour.terminate);
    cr_expect_neq(k->behaviour->init, nsys_client_behaviour.init);
}

Test(config_client, a_program_kind_cannot_take_its_name)
{
    static const nsys_config_kind_t k = {"client", &nsys_client_behaviour, NULL, "mine"};
    cr_expect_eq(nsys_config_register(&k), NSYS_EEXIST);
}

/* ---- the options every key becomes ------------------------------------------------- */

Test(config_client, absent_keys_leave_the_defaults)
{
    cJSON *json;
    nsys_config_client_t c;
    read_ok("{'port': 7000}", &json, &c);
    const nsys_client_opts_t *o = &c.opts;
    const nsys_transport_opts_t tdef = NSYS_TRANSPORT_OPTS_DEFAULTS;
    cr_expect_str_eq(o->host, "127.0.0.1");
    cr_expect_eq(o->port, 7000);
    cr_expect_eq(o->connect_timeout_ms, 0, "0 means the client's 30 s");
    cr_expect_eq(memcmp(&o->transport, &tdef, sizeof tdef), 0, "transport not at its defaults");
    cr_expect_eq(o->backoff.initial_ms, 0, "0 means the gRPC 1 s");
    cr_expect_eq(o->backoff.max_ms, 0);
    cr_expect_float_eq(o->backoff.multiplier, 0.0, 1e-12);
    cr_expect_float_eq(o->backoff.jitter, 0.0, 1e-12);
    cr_expect_eq(o->backoff.reset_after_ms, 0);
    cr_expect_eq(o->max_attempts, 0, "0 means forever");
    cr_expect_eq(o->nstop_on, 0);
    cr_expect_eq(o->outbox_max_messages, 0, "0 means 1024");
    cr_expect_eq(o->outbox_max_bytes, 0, "0 means 4 MiB");
    cr_expect_eq(o->overflow, NSYS_OUTBOX_REJECT);
    cr_expect_eq(o->heartbeat_ms, 0, "the heartbeat is off");
    cr_expect_eq(o->heartbeat_timeout_ms, 0);
    cr_expect_eq(o->owner, NSYS_REF_NONE);
    cr_expect_null(o->name);
    cr_expect_null(o->on_message);
    cr_expect_null(o->on_event);
    cr_expect_null(o->user_data);
    cr_expect_null(c.register_name);
    cr_expect_null(c.owner_name);
    cJSON_Delete(json);
}

Test(config_client, every_key_maps_to_its_field)
{
    cJSON *json;
    nsys_config_client_t c;
    read_ok("{'host': 'db.internal', 'port': 5432, 'connect_timeout': '2s', "
            "'transport': {'codec': 'length', 'max_payload': '64KiB', 'write_high': '2MiB', "
            "  'write_low': '512KiB', 'read_high': '8MiB', 'read_low': '1MiB', "
            "  'idle_timeout': '30s', 'nodelay': false, 'keepalive': '1500ms'}, "
            "'reconnect': {'initial': '100ms', 'max': '30s', 'multiplier': 2.5, 'jitter': 0.1, "
            "  'reset_after': '1m', 'max_attempts': 12, 'stop_on': ['resolve', 'refused']}, "
            "'outbox': {'max_messages': 500, 'max_bytes': '1MiB', 'overflow': 'drop_oldest'}, "
            "'heartbeat': {'interval': '5s', 'timeout': '2s'}, "
            "'register': 'db-client', 'owner': 'db-owner'}",
            &json, &c);
    const nsys_client_opts_t *o = &c.opts;
    cr_expect_str_eq(o->host, "db.internal");
    cr_expect_eq(o->port, 5432);
    cr_expect_eq(o->connect_timeout_ms, 2000);

    cr_expect_eq(o->transport.codec, NSYS_CODEC_LENGTH);
    cr_expect_eq(o->transport.max_payload, 64 * 1024);
    cr_expect_eq(o->transport.write_high, 2 * 1024 * 1024);
    cr_expect_eq(o->transport.write_low, 512 * 1024);
    cr_expect_eq(o->transport.read_high, 8 * 1024 * 1024);
    cr_expect_eq(o->transport.read_low, 1024 * 1024);
    cr_expect_eq(o->transport.idle_timeout_ms, 30000);
    cr_expect(o->transport.nagle, "nodelay false leaves Nagle on");
    cr_expect_eq(o->transport.keepalive_s, 2, "keepalive rounds up to whole seconds");

    cr_expect_eq(o->backoff.initial_ms, 100);
    cr_expect_eq(o->backoff.max_ms, 30000);
    cr_expect_float_eq(o->backoff.multiplier, 2.5, 1e-12);
    cr_expect_float_eq(o->backoff.jitter, 0.1, 1e-12);
    cr_expect_eq(o->backoff.reset_after_ms, 60000);
    cr_expect_eq(o->max_attempts, 12);
    cr_assert_eq(o->nstop_on, 2);
    cr_expect_eq(o->stop_on[0], UV_EAI_NONAME);
    cr_expect_eq(o->stop_on[1], UV_ECONNREFUSED);

    cr_expect_eq(o->outbox_max_messages, 500);
    cr_expect_eq(o->outbox_max_bytes, 1024 * 1024);
    cr_expect_eq(o->overflow, NSYS_OUTBOX_DROP_OLDEST);
    cr_expect_eq(o->heartbeat_ms, 5000);
    cr_expect_eq(o->heartbeat_timeout_ms, 2000);

    cr_expect_str_eq(c.register_name, "db-client");
    cr_expect_str_eq(c.owner_name, "db-owner");
    cr_expect_str_eq(o->name, "db-client", "the register name names the client in logs");
    cr_expect_eq(o->owner, NSYS_REF_NONE, "the owner is looked up when the child starts");
    cJSON_Delete(json);
}

Test(config_client, smaller_keys_keep_the_other_defaults)
{
    cJSON *json;
    nsys_config_client_t c;
    /* A raw codec without a heartbeat; jitter 0 turns jitter off; a
     * duration in us rounds up; a heartbeat without timeout leaves it 0
     * (the client then uses the interval). */
    read_ok("{'host': '::1', 'port': 1, 'connect_timeout': '1500us', "
            "'transport': {'codec': 'raw'}, 'reconnect': {'jitter': 0, 'stop_on': []}, "
            "'outbox': {'overflow': 'reject'}}",
            &json, &c);
    cr_expect_str_eq(c.opts.host, "::1");
    cr_expect_eq(c.opts.port, 1);
    cr_expect_eq(c.opts.connect_timeout_ms, 2);
    cr_expect_eq(c.opts.transport.codec, NSYS_CODEC_RAW);
    cr_expect_eq(c.opts.transport.max_payload, NSYS_FRAMING_DEFAULT_MAX_PAYLOAD);
    cr_expect(!c.opts.transport.nagle);
    cr_expect_float_eq(c.opts.backoff.jitter, NSYS_BACKOFF_NO_JITTER, 1e-12);
    cr_expect_eq(c.opts.backoff.initial_ms, 0);
    cr_expect_eq(c.opts.nstop_on, 0);
    cr_expect_eq(c.opts.overflow, NSYS_OUTBOX_REJECT);
    cr_expect_eq(c.opts.outbox_max_messages, 0);
    cJSON_Delete(json);

    read_ok("{'port': 7000, 'heartbeat': {'interval': '250ms'}}", &json, &c);
    cr_expect_eq(c.opts.heartbeat_ms, 250);
    cr_expect_eq(c.opts.heartbeat_timeout_ms, 0, "0 means the interval");
    cJSON_Delete(json);
}

/* Each name stands for the dial statuses it says; "unreachable" covers the
 * network and the host. */
Test(config_client, stop_on_names_map_to_their_error_codes)
{
    static const struct {
        const char *args;
        int codes[2];
        size_t n;
    } cases[] = {
        {"{'port': 1, 'reconnect': {'stop_on': ['resolve']}}", {UV_EAI_NONAME, 0}, 1},
        {"{'port': 1, 'reconnect': {'stop_on': ['refused']}}", {UV_ECONNREFUSED, 0}, 1},
        {"{'port': 1, 'reconnect': {'stop_on': ['unreachable']}}",
         {UV_ENETUNREACH, UV_EHOSTUNREACH},
         2},
        {"{'port': 1, 'reconnect': {'stop_on': ['timeout']}}", {UV_ETIMEDOUT, 0}, 1},
        {"{'port': 1, 'reconnect': {'stop_on': ['reset']}}", {UV_ECONNRESET, 0}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *json;
        nsys_config_client_t c;
        read_ok(cases[i].args, &json, &c);
        cr_expect_eq(c.opts.nstop_on, cases[i].n, "%s", cases[i].args);
        for (size_t k = 0; k < cases[i].n && k < c.opts.nstop_on; k++)
            cr_expect_eq(c.opts.stop_on[k], cases[i].codes[k], "%s: code %zu is %s", cases[i].args,
                         k, nsys_errname(c.opts.stop_on[k]));
        cJSON_Delete(json);
    }

    /* All of them, in the order given. */
    cJSON *json;
    nsys_config_client_t c;
    read_ok("{'port': 1, 'reconnect': {'stop_on': "
            "['reset', 'unreachable', 'timeout', 'resolve', 'refused']}}",
            &json, &c);
    const int want[] = {UV_ECONNRESET, UV_ENETUNREACH, UV_EHOSTUNREACH,
                        UV_ETIMEDOUT,  UV_EAI_NONAME,  UV_ECONNREFUSED};
    cr_assert_eq(c.opts.nstop_on, sizeof want / sizeof want[0]);
    cr_assert_leq(c.opts.nstop_on, NSYS_CONFIG_STOP_ON_MAX);
    for (size_t k = 0; k < c.opts.nstop_on; k++)
        cr_expect_eq(c.opts.stop_on[k], want[k], "code %zu", k);
    cJSON_Delete(json);
}

Test(config_client, accepts_the_bounds)
{
    char name255[256];
    memset(name255, 'n', 255);
    name255[255] = '\0';
    char args[1024];
    snprintf(args, sizeof args,
             "{'port': 65535, 'connect_timeout': '1h', 'reconnect': {'initial': '1h', 'max': '1h', "
             "'multiplier': 100, 'jitter': 1, 'reset_after': '1h', 'max_attempts': 4294967295}, "
             "'outbox': {'max_messages': 1000000, 'max_bytes': '1GiB'}, "
             "'heartbeat': {'interval': '1h', 'timeout': '1h'}, 'register': '%s', 'owner': 'o'}",
             name255);
    cJSON *json;
    nsys_config_client_t c;
    read_ok(args, &json, &c);
    cr_expect_eq(c.opts.port, 65535);
    cr_expect_eq(c.opts.connect_timeout_ms, 3600000);
    cr_expect_eq(c.opts.backoff.initial_ms, 3600000);
    cr_expect_float_eq(c.opts.backoff.multiplier, 100.0, 1e-12);
    cr_expect_float_eq(c.opts.backoff.jitter, 1.0, 1e-12);
    cr_expect_eq(c.opts.max_attempts, UINT32_MAX);
    cr_expect_eq(c.opts.outbox_max_messages, 1000000);
    cr_expect_eq(c.opts.outbox_max_bytes, (size_t)1 << 30);
    cr_expect_eq(c.opts.heartbeat_ms, 3600000);
    cr_expect_eq(strlen(c.register_name), 255);
    cr_expect_str_eq(c.owner_name, "o");
    cJSON_Delete(json);

    read_ok("{'port': 1, 'connect_timeout': '1ms', 'reconnect': {'initial': '1ms', 'max': '1ms', "
            "'multiplier': 1, 'reset_after': '1ms', 'max_attempts': 0}, "
            "'outbox': {'max_messages': 1, 'max_bytes': '1B'}, "
            "'heartbeat': {'interval': '1ms', 'timeout': '1ms'}}",
            &json, &c);
    cr_expect_eq(c.opts.connect_timeout_ms, 1);
    cr_expect_eq(c.opts.backoff.max_ms, 1);
    cr_expect_eq(c.opts.max_attempts, 0);
    cr_expect_eq(c.opts.outbox_max_messages, 1);
    cr_expect_eq(c.opts.outbox_max_bytes, 1);
    cr_expect_eq(c.opts.heartbeat_timeout_ms, 1);
    cJSON_Delete(json);

    /* initial equal to a default max, or max equal to the default initial. */
    read_ok("{'port': 1, 'reconnect': {'initial': '2m'}}", &json, &c);
    cr_expect_eq(c.opts.backoff.initial_ms, 120000);
    cJSON_Delete(json);
    read_ok("{'port': 1, 'reconnect': {'max': '1s'}}", &json, &c);
    cr_expect_eq(c.opts.backoff.max_ms, 1000);
    cJSON_Delete(json);
}

/* ---- documents -------------------------------------------------------------------- */

Test(config_client, a_document_builds_a_client_child)
{
    nsys_config_t *cfg = load_ok(C("'port': 7000"));
    const nsys_sup_spec_t *root = nsys_config_root(cfg);
    cr_assert_eq(root->nchildren, 1);
    cr_expect_eq(root->children[0].behaviour, nsys_config_find_kind("client")->behaviour);
    cr_assert_not_null(root->children[0].args);
    nsys_config_free(cfg);

    cfg = load_ok(C("'host': 'localhost', 'port': 7000, 'connect_timeout': '5s', "
                    "'transport': {'codec': 'length', 'max_payload': '64KiB', 'keepalive': '1m'}, "
                    "'reconnect': {'initial': '250ms', 'max': '30s', 'multiplier': 2, "
                    "  'jitter': 0.2, 'reset_after': '10s', 'max_attempts': 10, "
                    "  'stop_on': ['resolve', 'unreachable']}, "
                    "'outbox': {'max_messages': 100, 'max_bytes': '64KiB', "
                    "  'overflow': 'drop_oldest'}, "
                    "'heartbeat': {'interval': '10s', 'timeout': '3s'}, "
                    "'register': 'backend', 'owner': 'app'"));
    nsys_config_free(cfg);

    /* As a simple_one_for_one template. */
    cfg = load_ok("{'supervisor': {'strategy': 'simple_one_for_one', 'template': "
                  "{'behaviour': 'client', 'args': {'port': 7000}}}}");
    nsys_config_free(cfg);
}

/* ---- errors: the top-level keys ---------------------------------------------------- */

Test(config_client, rejects_a_missing_or_wrong_port)
{
    EXPECT_ERRORS(C("'host': 'localhost'"), {ARGS, "missing required key \"port\""});
    EXPECT_ERRORS(W("{'id': 'link', 'behaviour': 'client'}"),
                  {ARGS, "missing required key \"port\""});
    /* A client needs a port to dial: 0 is no port. */
    EXPECT_ERRORS(C("'port': 0"), {ARGS ".port", "expected an integer 1..65535, got 0"});
    EXPECT_ERRORS(C("'port': 70000"), {ARGS ".port", "expected an integer 1..65535, got 70000"});
    EXPECT_ERRORS(C("'port': -1"), {ARGS ".port", "expected an integer 1..65535, got -1"});
    EXPECT_ERRORS(C("'port': 80.5"), {ARGS ".port", "expected an integer 1..65535, got 80.5"});
    EXPECT_ERRORS(C("'port': '7000'"),
                  {ARGS ".port", "expected an integer 1..65535, got a string"});
    EXPECT_ERRORS(C("'port': null"), {ARGS ".port", "expected an integer 1..65535, got null"});
}

Test(config_client, rejects_a_wrong_host_or_connect_timeout)
{
    EXPECT_ERRORS(C("'host': '', 'port': 7000"),
                  {ARGS ".host", "expected a host name or address of 1..255 characters, got \"\""});
    EXPECT_ERRORS(C("'host': 7, 'port': 7000"), {ARGS ".host", "expected a string, got a number"});
    EXPECT_ERRORS(C("'host': ['a'], 'port': 7000"),
                  {ARGS ".host", "expected a string, got an array"});
    EXPECT_ERRORS(
        C("'port': 7000, 'connect_timeout': 5000"),
        {ARGS ".connect_timeout", "expected a duration such as \"500ms\" or \"5s\", got a number"});
    EXPECT_ERRORS(
        C("'port': 7000, 'connect_timeout': '5 s'"),
        {ARGS ".connect_timeout", "expected a duration such as \"500ms\" or \"5s\", got \"5 s\""});
    EXPECT_ERRORS(C("'port': 7000, 'connect_timeout': '0ms'"),
                  {ARGS ".connect_timeout", "expected a duration 1ms..1h, got \"0ms\""});
    EXPECT_ERRORS(C("'port': 7000, 'connect_timeout': '2h'"),
                  {ARGS ".connect_timeout", "expected a duration 1ms..1h, got \"2h\""});
}

Test(config_client, rejects_a_host_over_255_characters)
{
    char host[257];
    memset(host, 'h', 256);
    host[256] = '\0';
    char doc[1024], msg[256];
    snprintf(doc, sizeof doc, C("'host': '%s', 'port': 7000"), host);
    /* Quoted values are shortened to 64 bytes. */
    snprintf(msg, sizeof msg,
             "expected a host name or address of 1..255 characters, got \"%.64s...\"", host);
    EXPECT_ERRORS(doc, {ARGS ".host", msg});
}

Test(config_client, rejects_unknown_keys_with_a_hint)
{
    EXPECT_ERRORS(C("'prot': 7000"), {ARGS ".prot", "unknown key; did you mean \"port\"?"},
                  {ARGS, "missing required key \"port\""});
    EXPECT_ERRORS(C("'port': 7000, 'hearbeat': {}"),
                  {ARGS ".hearbeat", "unknown key; did you mean \"heartbeat\"?"});
    EXPECT_ERRORS(C("'port': 7000, 'Owner': 'x'"),
                  {ARGS ".Owner", "unknown key; did you mean \"owner\"?"});
    EXPECT_ERRORS(C("'port': 7000, 'reconect': {}"),
                  {ARGS ".reconect", "unknown key; did you mean \"reconnect\"?"});
    EXPECT_ERRORS(C("'port': 7000, 'colour': 'red'"),
                  {ARGS ".colour", "unknown key; expected one of " CLIENT_KEYS});
    /* Listener-only keys are not client keys. */
    EXPECT_ERRORS(C("'port': 7000, 'handler': 'echo'"),
                  {ARGS ".handler", "unknown key; expected one of " CLIENT_KEYS});
}

Test(config_client, rejects_nested_objects_of_the_wrong_type)
{
    EXPECT_ERRORS(C("'port': 7000, 'transport': [], 'reconnect': 'fast', 'outbox': 10, "
                    "'heartbeat': true"),
                  {ARGS ".transport", "expected an object, got an array"},
                  {ARGS ".reconnect", "expected an object, got a string"},
                  {ARGS ".outbox", "expected an object, got a number"},
                  {ARGS ".heartbeat", "expected an object, got true"});
}

/* ---- errors: transport (the listener's reader) ------------------------------------- */

Test(config_client, checks_the_transport_as_the_listener_does)
{
    EXPECT_ERRORS(C("'port': 7000, 'transport': {'codec': 'lenght'}"),
                  {ARGS ".transport.codec", "expected one of \"length\", \"raw\", got \"lenght\""});
    EXPECT_ERRORS(C("'port': 7000, 'transport': {'NoDelay': true, 'tls': true}"),
                  {ARGS ".transport.NoDelay", "unknown key; did you mean \"nodelay\"?"},
                  {ARGS ".transport.tls",
                   "unknown key; expected one of \"codec\", \"max_payload\", \"write_high\", "
                   "\"write_low\", \"write_limit\", \"read_high\", \"read_low\", "
                   "\"idle_timeout\", \"nodelay\", \"keepalive\""});
    EXPECT_ERRORS(
        C("'port': 7000, 'transport': {'max_payload': '4GiB', 'write_high': '64KB', "
          "'read_high': '64KiB', 'read_low': '1MiB', 'idle_timeout': '25h', 'nodelay': null, "
          "'keepalive': '500ms'}"),
        {ARGS ".transport.max_payload", "expected a size 1B..4294967295B, got \"4GiB\""},
        {ARGS ".transport.write_high",
         "expected a size such as \"64KiB\" or \"1MiB\", got \"64KB\""},
        {ARGS ".transport.read_low", "expected a size below \"read_high\" (64KiB), got \"1MiB\""},
        {ARGS ".transport.idle_timeout", "expected a duration 1ms..24h, got \"25h\""},
        {ARGS ".transport.nodelay", "expected true or false, got null"},
        {ARGS ".transport.keepalive", "expected a duration 1s..2h, got \"500ms\""});
}

/* ---- errors: reconnect -------------------------------------------------------------- */

Test(config_client, rejects_wrong_reconnect_values)
{
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'initial': 100, 'max': '2h', 'multiplier': 0.5, "
                    "'jitter': 2, 'reset_after': '0ms', 'max_attempts': -1}"),
                  {ARGS ".reconnect.initial",
                   "expected a duration such as \"500ms\" or \"5s\", got a number"},
                  {ARGS ".reconnect.max", "expected a duration 1ms..1h, got \"2h\""},
                  {ARGS ".reconnect.multiplier", "expected a number 1..100, got 0.5"},
                  {ARGS ".reconnect.jitter", "expected a number 0..1, got 2"},
                  {ARGS ".reconnect.reset_after", "expected a duration 1ms..1h, got \"0ms\""},
                  {ARGS ".reconnect.max_attempts", "expected an integer 0..4294967295, got -1"});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'multiplier': '2', 'jitter': '0.2', "
                    "'max_attempts': 1.5}"),
                  {ARGS ".reconnect.multiplier", "expected a number 1..100, got a string"},
                  {ARGS ".reconnect.jitter", "expected a number 0..1, got a string"},
                  {ARGS ".reconnect.max_attempts", "expected an integer 0..4294967295, got 1.5"});
    EXPECT_ERRORS(
        C("'port': 7000, 'reconnect': {'max_attempts': 4294967296}"),
        {ARGS ".reconnect.max_attempts", "expected an integer 0..4294967295, got 4294967296"});
}

Test(config_client, rejects_unknown_reconnect_keys_with_a_hint)
{
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'max_attempt': 3, 'stopon': []}"),
                  {ARGS ".reconnect.max_attempt", "unknown key; did you mean \"max_attempts\"?"},
                  {ARGS ".reconnect.stopon", "unknown key; did you mean \"stop_on\"?"});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'retries': 3}"),
                  {ARGS ".reconnect.retries", "unknown key; expected one of " RECONNECT_KEYS});
}

/* initial <= max, the gRPC defaults (1 s, 2 min) standing in for an absent one. */
Test(config_client, rejects_an_initial_delay_over_max)
{
    EXPECT_ERRORS(
        C("'port': 7000, 'reconnect': {'initial': '5m', 'max': '1m'}"),
        {ARGS ".reconnect.initial", "expected a duration no longer than \"max\" (1m), got \"5m\""});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'initial': '3m'}"),
                  {ARGS ".reconnect.initial",
                   "expected a duration no longer than the default max (2m), got \"3m\""});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'max': '500ms'}"),
                  {ARGS ".reconnect.max",
                   "expected a duration no shorter than the default initial (1s), got \"500ms\""});
    /* A bad bound is reported once, without the order check. */
    EXPECT_ERRORS(
        C("'port': 7000, 'reconnect': {'initial': '5m', 'max': 'soon'}"),
        {ARGS ".reconnect.max", "expected a duration such as \"500ms\" or \"5s\", got \"soon\""});
}

Test(config_client, rejects_bad_stop_on_lists)
{
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'stop_on': 'refused'}"),
                  {ARGS ".reconnect.stop_on", "expected an array of error names, got \"refused\""});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'stop_on': {'refused': true}}"),
                  {ARGS ".reconnect.stop_on", "expected an array of error names, got an object"});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'stop_on': null}"),
                  {ARGS ".reconnect.stop_on", "expected an array of error names, got null"});
    EXPECT_ERRORS(
        C("'port': 7000, 'reconnect': {'stop_on': ['refused', 'refuse', 'Reset']}"),
        {ARGS ".reconnect.stop_on[1]", "expected one of " STOP_ON_NAMES ", got \"refuse\""},
        {ARGS ".reconnect.stop_on[2]", "expected one of " STOP_ON_NAMES ", got \"Reset\""});
    /* A wrong type is named, as for every other enumeration. */
    EXPECT_ERRORS(
        C("'port': 7000, 'reconnect': {'stop_on': [7, null, ['reset']]}"),
        {ARGS ".reconnect.stop_on[0]", "expected one of " STOP_ON_NAMES ", got a number"},
        {ARGS ".reconnect.stop_on[1]", "expected one of " STOP_ON_NAMES ", got null"},
        {ARGS ".reconnect.stop_on[2]", "expected one of " STOP_ON_NAMES ", got an array"});
    EXPECT_ERRORS(C("'port': 7000, 'reconnect': {'stop_on': ['reset', 'timeout', 'reset', "
                    "'reset']}"),
                  {ARGS ".reconnect.stop_on[2]", "\"reset\" is listed twice"},
                  {ARGS ".reconnect.stop_on[3]", "\"reset\" is listed twice"});
}

/* ---- errors: outbox and heartbeat ---------------------------------------------------- */

Test(config_client, rejects_wrong_outbox_values)
{
    EXPECT_ERRORS(C("'port': 7000, 'outbox': {'max_messages': 0, 'max_bytes': '0B', "
                    "'overflow': 'drop_newest'}"),
                  {ARGS ".outbox.max_messages", "expected an integer 1..1000000, got 0"},
                  {ARGS ".outbox.max_bytes", "expected a size 1B..1GiB, got \"0B\""},
                  {ARGS ".outbox.overflow",
                   "expected one of \"reject\", \"drop_oldest\", got \"drop_newest\""});
    EXPECT_ERRORS(
        C("'port': 7000, 'outbox': {'max_messages': 1000001, 'max_bytes': 1024, "
          "'overflow': 1}"),
        {ARGS ".outbox.max_messages", "expected an integer 1..1000000, got 1000001"},
        {ARGS ".outbox.max_bytes", "expected a size such as \"64KiB\" or \"1MiB\", got a number"},
        {ARGS ".outbox.overflow", "expected one of \"reject\", \"drop_oldest\", got a number"});
    EXPECT_ERRORS(C("'port': 7000, 'outbox': {'max_bytes': '2GiB'}"),
                  {ARGS ".outbox.max_bytes", "expected a size 1B..1GiB, got \"2GiB\""});
    EXPECT_ERRORS(C("'port': 7000, 'outbox': {'max_message': 5, 'size': '1MiB'}"),
                  {ARGS ".outbox.max_message", "unknown key; did you mean \"max_messages\"?"},
                  {ARGS ".outbox.size", "unknown key; expected one of \"max_messages\", "
                                        "\"max_bytes\", \"overflow\""});
}

Test(config_client, rejects_wrong_heartbeat_values)
{
    EXPECT_ERRORS(C("'port': 7000, 'heartbeat': {}"),
                  {ARGS ".heartbeat", "missing required key \"interval\""});
    EXPECT_ERRORS(C("'port': 7000, 'heartbeat': {'timeout': '1s'}"),
                  {ARGS ".heartbeat", "missing required key \"interval\""});
    EXPECT_ERRORS(C("'port': 7000, 'heartbeat': {'interval': '0ms', 'timeout': '2h'}"),
                  {ARGS ".heartbeat.interval", "expected a duration 1ms..1h, got \"0ms\""},
                  {ARGS ".heartbeat.timeout", "expected a duration 1ms..1h, got \"2h\""});
    EXPECT_ERRORS(C("'port': 7000, 'heartbeat': {'interval': 5, 'timeout': 'never'}"),
                  {ARGS ".heartbeat.interval",
                   "expected a duration such as \"500ms\" or \"5s\", got a number"},
                  {ARGS ".heartbeat.timeout",
                   "expected a duration such as \"500ms\" or \"5s\", got \"never\""});
    EXPECT_ERRORS(
        C("'port': 7000, 'heartbeat': {'intervall': '1s', 'timout': '1s', 'every': 1}"),
        {ARGS ".heartbeat.intervall", "unknown key; did you mean \"interval\"?"},
        {ARGS ".heartbeat.timout", "unknown key; did you mean \"timeout\"?"},
        {ARGS ".heartbeat.every", "unknown key; expected one of \"interval\", \"timeout\""},
        {ARGS ".heartbeat", "missing required key \"interval\""});
}

/* The ping is an empty frame: a raw stream has none. */
Test(config_client, rejects_a_heartbeat_without_the_length_codec)
{
    EXPECT_ERRORS(C("'port': 7000, 'transport': {'codec': 'raw'}, "
                    "'heartbeat': {'interval': '1s'}"),
                  {ARGS ".heartbeat",
                   "the heartbeat needs the \"length\" codec (an empty frame is the ping)"});
    /* Only a heartbeat that is on counts: a broken one is reported alone. */
    EXPECT_ERRORS(C("'port': 7000, 'transport': {'codec': 'raw'}, "
                    "'heartbeat': {'interval': '0ms'}"),
                  {ARGS ".heartbeat.interval", "expected a duration 1ms..1h, got \"0ms\""});
    /* An explicit length codec is fine, and raw without a heartbeat too. */
    nsys_config_free(load_ok(C("'port': 7000, 'transport': {'codec': 'length'}, "
                               "'heartbeat': {'interval': '1s'}")));
    nsys_config_free(load_ok(C("'port': 7000, 'transport': {'codec': 'raw'}")));
}

/* ---- errors: register and owner ------------------------------------------------------- */

Test(config_client, rejects_empty_or_wrong_actor_names)
{
    EXPECT_ERRORS(C("'port': 7000, 'register': '', 'owner': ''"),
                  {ARGS ".register", "expected an actor name of 1..255 bytes, got \"\""},
                  {ARGS ".owner", "expected an actor name of 1..255 bytes, got \"\""});
    EXPECT_ERRORS(C("'port': 7000, 'register': 5, 'owner': null"),
                  {ARGS ".register", "expected a string, got a number"},
                  {ARGS ".owner", "expected a string, got null"});

    char name[257];
    memset(name, 'n', 256);
    name[256] = '\0';
    char doc[1024], msg[256];
    snprintf(doc, sizeof doc, C("'port': 7000, 'register': '%s'"), name);
    snprintf(msg, sizeof msg, "expected an actor name of 1..255 bytes, got \"%.64s...\"", name);
    EXPECT_ERRORS(doc, {ARGS ".register", msg});
}

/* ---- errors: many at once -------------------------------------------------------------- */

/* Every problem of a document is reported in one pass, in the order of the
 * keys: unknown keys first, then host, port, connect_timeout, transport,
 * reconnect, outbox, heartbeat, register, owner; then the rest of the
 * document (a child's args come before its restart). */
Test(config_client, collects_every_error_in_one_pass)
{
    EXPECT_ERRORS(
        "{'supervisor': {'children': ["
        "{'id': 'link', 'behaviour': 'client', 'args': {'owner': 7, 'register': '', "
        "  'heartbeat': {'interval': '1s'}, 'outbox': {'max_messages': 0, 'overflow': 'drop'}, "
        "  'reconnect': {'initial': '5m', 'max': '1m', 'multiplier': 0.5, 'max_attempts': -1, "
        "    'stop_on': ['refused', 'refused', 'lost']}, "
        "  'transport': {'codec': 'raw', 'nodelay': 1}, 'connect_timeout': 5, 'port': 0, "
        "  'host': '', 'colour': 1}}, "
        "{'id': 'other', 'behaviour': 'client', 'restart': 'always', "
        "  'args': {'port': 7000, 'outbox': {'max_bytes': '2GiB'}}}"
        "]}}",
        {ARGS ".colour", "unknown key; expected one of " CLIENT_KEYS},
        {ARGS ".host", "expected a host name or address of 1..255 characters, got \"\""},
        {ARGS ".port", "expected an integer 1..65535, got 0"},
        {ARGS ".connect_timeout", "expected a duration such as \"500ms\" or \"5s\", got a number"},
        {ARGS ".transport.nodelay", "expected true or false, got a number"},
        {ARGS ".reconnect.multiplier", "expected a number 1..100, got 0.5"},
        {ARGS ".reconnect.initial", "expected a duration no longer than \"max\" (1m), got \"5m\""},
        {ARGS ".reconnect.max_attempts", "expected an integer 0..4294967295, got -1"},
        {ARGS ".reconnect.stop_on[1]", "\"refused\" is listed twice"},
        {ARGS ".reconnect.stop_on[2]", "expected one of " STOP_ON_NAMES ", got \"lost\""},
        {ARGS ".outbox.max_messages", "expected an integer 1..1000000, got 0"},
        {ARGS ".outbox.overflow", "expected one of \"reject\", \"drop_oldest\", got \"drop\""},
        {ARGS ".heartbeat",
         "the heartbeat needs the \"length\" codec (an empty frame is the ping)"},
        {ARGS ".register", "expected an actor name of 1..255 bytes, got \"\""},
        {ARGS ".owner", "expected a string, got a number"},
        {"$.supervisor.children[1].args.outbox.max_bytes",
         "expected a size 1B..1GiB, got \"2GiB\""},
        {"$.supervisor.children[1].restart",
         "expected one of \"permanent\", \"transient\", \"temporary\", got \"always\""});
}

Test(config_client, checks_templates_too)
{
    EXPECT_ERRORS("{'supervisor': {'strategy': 'simple_one_for_one', 'template': "
                  "{'behaviour': 'client', 'args': {'port': 7000, 'reconnect': "
                  "{'stop_on': ['nope']}}}}}",
                  {"$.supervisor.template.args.reconnect.stop_on[0]",
                   "expected one of " STOP_ON_NAMES ", got \"nope\""});
}

/* ---- nsys_config_client_args directly ---------------------------------------------------- */

/* Kinds that embed a client read its args at their own path. */
Test(config_client, the_reader_reports_at_the_given_path)
{
    char *s = dq("{'port': 0, 'reconnect': {'stop_on': ['x']}, 'heartbeat': {}}");
    cJSON *args = cJSON_Parse(s);
    free(s);
    cr_assert_not_null(args);
    nsys_config_diag_t *d = nsys_config_diag_new();
    cr_assert_not_null(d);
    nsys_config_client_t c;
    cr_expect_eq(nsys_config_client_args(args, "$.pinger.client", &c, d), NSYS_ECONFIG);
    const want_t want[] = {
        {"$.pinger.client.port", "expected an integer 1..65535, got 0"},
        {"$.pinger.client.reconnect.stop_on[0]", "expected one of " STOP_ON_NAMES ", got \"x\""},
        {"$.pinger.client.heartbeat", "missing required key \"interval\""},
    };
    expect_diag(d, want, sizeof want / sizeof want[0]);
    nsys_config_diag_free(d);
    cJSON_Delete(args);
}

Test(config_client, the_reader_takes_absent_or_non_object_args)
{
    nsys_config_diag_t *d = nsys_config_diag_new();
    cr_assert_not_null(d);
    nsys_config_client_t c;
    cr_expect_eq(nsys_config_client_args(NULL, "args", &c, d), NSYS_ECONFIG);
    const want_t absent[] = {{"args", "missing required key \"port\""}};
    expect_diag(d, absent, 1);
    nsys_config_diag_free(d);

    d = nsys_config_diag_new();
    cr_assert_not_null(d);
    cJSON *arr = cJSON_Parse("[7000]");
    cr_assert_not_null(arr);
    cr_expect_eq(nsys_config_client_args(arr, "args", &c, d), NSYS_ECONFIG);
    const want_t not_object[] = {{"args", "expected an object, got an array"}};
    expect_diag(d, not_object, 1);
    nsys_config_diag_free(d);
    cJSON_Delete(arr);
}

/* The result says whether this call reported anything, not whether the
 * diag was empty before. */
Test(config_client, the_reader_counts_only_its_own_errors)
{
    nsys_config_diag_t *d = nsys_config_diag_new();
    cr_assert_not_null(d);
    nsys_config_error(d, "$.earlier", "an earlier problem");
    cJSON *args = cJSON_Parse("{\"port\": 7000}");
    cr_assert_not_null(args);
    nsys_config_client_t c;
    cr_expect_eq(nsys_config_client_args(args, "args", &c, d), 0);
    cr_expect_eq(nsys_config_diag_count(d), 1);
    cr_expect_eq(c.opts.port, 7000);
    nsys_config_diag_free(d);
    cJSON_Delete(args);
}

/* ---- running trees ------------------------------------------------------------------------ */

static nsys_runtime_t *new_runtime(void)
{
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(t_runtime(2, &rt), 0);
    return rt;
}

/* An echo listener started by the test on 127.0.0.1 (port 0: a free one). */
static nsys_ref_t start_echo(nsys_runtime_t *rt, uint16_t port, uint16_t *bound)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.port = port;
    nsys_listener_info_t info;
    nsys_ref_t l = NSYS_REF_NONE;
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "listener on %u: %s (%s)", (unsigned)port, nsys_strerror(rc),
                 nsys_net_last_error());
    if (bound != NULL)
        *bound = info.port;
    return l;
}

/* An actor registered as `name` that records what it receives (the owner). */
static nsys_ref_t start_owner(nsys_runtime_t *rt, t_probe_t *p, const char *name)
{
    t_probe_init(p);
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_assert_eq(t_probe_spawn(rt, p, NULL, &ref), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&p->inited) == 1);
    cr_assert_eq(nsys_register(rt, name, ref), 0);
    return ref;
}

/* Starts the tree of the document `fmt_sq` (printf-style, single quotes
 * for double); returns nsys_supervisor_start's result, its message in err. */
__attribute__((format(printf, 5, 0))) static int start_tree_v(nsys_runtime_t *rt, nsys_ref_t *root,
                                                              char *err, size_t errlen,
                                                              const char *fmt_sq, va_list ap)
{
    char doc[1024];
    int n = vsnprintf(doc, sizeof doc, fmt_sq, ap);
    cr_assert(n > 0 && (size_t)n < sizeof doc, "the test document does not fit: %d bytes", n);
    nsys_config_t *cfg = load_ok(doc);
    int rc = nsys_supervisor_start(rt, nsys_config_root(cfg), root, err, errlen);
    nsys_config_free(cfg); /* the supervisor copied the spec */
    return rc;
}

/* Starts the tree of the document `fmt_sq` and asserts it started; returns
 * its root supervisor. */
__attribute__((format(printf, 2, 3))) static nsys_ref_t start_tree_ok(nsys_runtime_t *rt,
                                                                      const char *fmt_sq, ...)
{
    nsys_ref_t root = NSYS_REF_NONE;
    char err[512] = "";
    va_list ap;
    va_start(ap, fmt_sq);
    int rc = start_tree_v(rt, &root, err, sizeof err, fmt_sq, ap);
    va_end(ap);
    cr_assert_eq(rc, 0, "start: %s (%s)", nsys_strerror(rc), err);
    return root;
}

/* Starts the tree of the document `fmt_sq`, which must fail with `want`
 * and an error that names the child 'link'. */
__attribute__((format(printf, 3, 4))) static void expect_start_fails(nsys_runtime_t *rt, int want,
                                                                     const char *fmt_sq, ...)
{
    nsys_ref_t root = NSYS_REF_NONE;
    char err[512] = "";
    va_list ap;
    va_start(ap, fmt_sq);
    int rc = start_tree_v(rt, &root, err, sizeof err, fmt_sq, ap);
    va_end(ap);
    cr_expect_eq(rc, want, "start returned %s (%s)", nsys_strerror(rc), err);
    cr_expect_not_null(strstr(err, "'link'"), "the error names the child: %s", err);
}

/* The actor registered as `name`, which must be there now. */
static nsys_ref_t registered(nsys_runtime_t *rt, const char *name)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_assert_eq(nsys_whereis(rt, name, &ref), 0, "nothing is registered as '%s'", name);
    return ref;
}

/* A socket bound to a free 127.0.0.1 port (kept, so nobody else takes the
 * port): listening when `listening`, else a dial to it is refused. */
static int loopback_socket(bool listening, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (listening)
        cr_assert_eq(listen(fd, 8), 0);
    socklen_t alen = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* What the client of a running-tree test dials. */
typedef enum dial {
    DIAL_ECHO,    /* an echo listener the test started */
    DIAL_REFUSED, /* a port nothing listens on */
    DIAL_SILENT,  /* a listening socket where the test accepts and answers itself */
} dial_t;

/* A running-tree test's world: the runtime, the port its client dials, and
 * the owner probe when the test has one. */
typedef struct tree_test {
    nsys_runtime_t *rt;
    uint16_t port;
    nsys_ref_t listener; /* DIAL_ECHO: the echo listener */
    int sock;            /* DIAL_REFUSED, DIAL_SILENT: the socket on the port; else -1 */
    bool has_owner;
    t_probe_t owner; /* registered under the name given to begin_tree_test */
    nsys_ref_t owner_ref;
} tree_test_t;

/* Starts a runtime and what its client dials, and an owner registered as
 * `owner_name` unless that is NULL; returns the runtime. */
static nsys_runtime_t *begin_tree_test(tree_test_t *t, dial_t dial, const char *owner_name)
{
    t->rt = new_runtime();
    t->port = 0;
    t->listener = NSYS_REF_NONE;
    t->sock = -1;
    if (dial == DIAL_ECHO)
        t->listener = start_echo(t->rt, 0, &t->port);
    else
        t->sock = loopback_socket(dial == DIAL_SILENT, &t->port);
    t->has_owner = owner_name != NULL;
    t->owner_ref = t->has_owner ? start_owner(t->rt, &t->owner, owner_name) : NSYS_REF_NONE;
    return t->rt;
}

/* Stops and frees the runtime (failing on a leak), then the owner probe,
 * which must outlive it, and the socket. */
static void end_tree_test(tree_test_t *t)
{
    cr_assert_eq(nsys_runtime_stop(t->rt), 0);
    T_RUNTIME_FREE(t->rt);
    if (t->has_owner)
        t_probe_destroy(&t->owner);
    if (t->sock >= 0)
        close(t->sock);
}

/* Polls the client's counters until `state` (or the bound); the last
 * counters seen go to *st. */
static bool wait_state(nsys_runtime_t *rt, nsys_ref_t client, nsys_client_state_t state,
                       nsys_client_stats_t *st)
{
    t_poll_t p = t_poll_begin(T_WAIT_MS);
    do {
        if (nsys_client_stats(rt, client, st) == 0 && st->state == state)
            return true;
    } while (t_poll_continue(&p));
    return false;
}

/* The `k`-th client event of `kind` the owner received (its first 64 bytes,
 * which hold client, kind and code); false if none within the bound. */
static bool owner_event(t_probe_t *owner, nsys_client_event_kind_t kind, size_t k,
                        nsys_client_event_t *ev)
{
    t_poll_t p = t_poll_begin(T_WAIT_MS);
    do {
        size_t seen = 0;
        for (size_t i = 0; i < t_recs_count(&owner->inbox); i++) {
            t_rec_t rec;
            if (!t_recs_get(&owner->inbox, i, &rec) || rec.type != NSYS_MSG_CLIENT_EVENT)
                continue;
            memset(ev, 0, sizeof *ev);
            memcpy(ev, rec.bytes, T_REC_INLINE < sizeof *ev ? T_REC_INLINE : sizeof *ev);
            if (ev->kind == kind && seen++ == k)
                return true;
        }
    } while (t_poll_continue(&p));
    return false;
}

static size_t owner_events(t_probe_t *owner, nsys_client_event_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < t_recs_count(&owner->inbox); i++) {
        t_rec_t rec;
        nsys_client_event_t ev;
        if (!t_recs_get(&owner->inbox, i, &rec) || rec.type != NSYS_MSG_CLIENT_EVENT)
            continue;
        memset(&ev, 0, sizeof ev);
        memcpy(&ev, rec.bytes, T_REC_INLINE < sizeof ev ? T_REC_INLINE : sizeof ev);
        n += ev.kind == kind;
    }
    return n;
}

/* Waits for the `k`-th NSYS_MSG_NET_MESSAGE at the owner and checks it is
 * `text`, from `client`. */
static void expect_echo(t_probe_t *owner, size_t k, nsys_ref_t client, const char *text)
{
    cr_assert(t_recs_wait_type(&owner->inbox, NSYS_MSG_NET_MESSAGE, k + 1, T_WAIT_MS),
              "echo %zu never reached the owner", k);
    long i = t_recs_find_type(&owner->inbox, NSYS_MSG_NET_MESSAGE, k);
    t_rec_t rec;
    cr_assert(i >= 0 && t_recs_get(&owner->inbox, (size_t)i, &rec));
    cr_expect_eq(rec.from, client, "the message comes from the client");
    cr_assert_eq(rec.size, strlen(text));
    cr_expect_eq(memcmp(rec.bytes, text, rec.size), 0);
}

static nsys_ref_t child_ref(nsys_runtime_t *rt, nsys_ref_t sup, const char *id, uint32_t *restarts)
{
    nsys_child_info_t *kids = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_supervisor_which_children(rt, sup, &kids, &n), 0);
    nsys_ref_t ref = NSYS_REF_NONE;
    for (size_t i = 0; i < n; i++)
        if (strcmp(kids[i].id, id) == 0 && kids[i].running) {
            ref = kids[i].ref;
            if (restarts != NULL)
                *restarts = kids[i].restarts;
        }
    nsys_free(kids);
    cr_assert_neq(ref, NSYS_REF_NONE, "no running child '%s'", id);
    return ref;
}

/* The whole path: a document names the client and its owner; the client
 * connects, what is sent through it comes back from the echo server to the
 * owner, and the owner hears of the connection. */
Test(config_client, a_client_from_a_document_connects_and_echoes_to_its_owner)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_ECHO, "cc.owner");
    nsys_ref_t root = start_tree_ok(
        rt,
        "{'name': 'svc', 'supervisor': {'children': [{'id': 'link', 'behaviour': 'client', "
        "'args': {'host': '127.0.0.1', 'port': %u, 'connect_timeout': '5s', "
        "'reconnect': {'initial': '10ms', 'max': '50ms'}, "
        "'outbox': {'max_messages': 16, 'max_bytes': '64KiB'}, "
        "'register': 'cc.client', 'owner': 'cc.owner'}}]}}",
        (unsigned)t.port);

    /* Registered by the time the tree has started: it is the child. */
    nsys_ref_t client = registered(rt, "cc.client");
    cr_expect_eq(client, child_ref(rt, root, "link", NULL));
    nsys_client_stats_t st;
    cr_assert(wait_state(rt, client, NSYS_CLIENT_UP, &st), "the client is %s, not up",
              nsys_client_state_name(st.state));
    cr_expect_eq(st.connects, 1);

    nsys_client_event_t ev;
    cr_assert(owner_event(&t.owner, NSYS_CLIENT_EV_CONNECTED, 0, &ev),
              "the owner did not hear of the connection");
    cr_expect_eq(ev.client, client);

    cr_assert_eq(nsys_net_send(rt, client, "hello", 5), 0);
    expect_echo(&t.owner, 0, client, "hello");
    cr_assert_eq(nsys_net_send(rt, client, "again", 5), 0);
    expect_echo(&t.owner, 1, client, "again");
    T_ASSERT_EVENTUALLY(nsys_client_stats(rt, client, &st) == 0 && st.written == 2 &&
                            st.received == 2,
                        "written %" PRIu64 ", received %" PRIu64, st.written, st.received);
    cr_expect_eq(st.sent, 2);
    cr_expect_eq(st.failed, 0);

    end_tree_test(&t);
}

/* A lost link is the client's business: the same actor backs off and
 * reconnects, and its supervisor never restarts it. */
Test(config_client, a_lost_link_never_reaches_the_supervisor)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_ECHO, "cc.owner");
    nsys_ref_t root = start_tree_ok(
        rt,
        "{'supervisor': {'intensity': 0, 'children': [{'id': 'link', 'behaviour': 'client', "
        "'args': {'port': %u, 'reconnect': {'initial': '10ms', 'max': '50ms'}, "
        "'register': 'cc.client', 'owner': 'cc.owner'}}]}}",
        (unsigned)t.port);
    nsys_ref_t client = registered(rt, "cc.client");
    nsys_client_stats_t st;
    cr_assert(wait_state(rt, client, NSYS_CLIENT_UP, &st));

    /* The server goes away: sessions close, dials are refused. */
    cr_assert_eq(nsys_listener_stop(rt, t.listener), 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, t.listener));
    nsys_client_event_t ev;
    cr_assert(owner_event(&t.owner, NSYS_CLIENT_EV_DISCONNECTED, 0, &ev));
    cr_assert(owner_event(&t.owner, NSYS_CLIENT_EV_RETRYING, 0, &ev));

    /* And comes back on the same port. */
    start_echo(rt, t.port, NULL);
    T_ASSERT_EVENTUALLY(
        nsys_client_stats(rt, client, &st) == 0 && st.state == NSYS_CLIENT_UP && st.connects == 2,
        "state %s, connects %" PRIu64, nsys_client_state_name(st.state), st.connects);
    cr_expect_eq(st.reconnects, 1);
    cr_expect_geq(st.failures, 1);

    /* The same actor, never restarted (intensity 0 would have ended the tree). */
    cr_expect_eq(registered(rt, "cc.client"), client);
    uint32_t restarts = 99;
    cr_expect_eq(child_ref(rt, root, "link", &restarts), client);
    cr_expect_eq(restarts, 0);
    cr_expect(nsys_is_alive(rt, root));

    cr_assert_eq(nsys_net_send(rt, client, "back", 4), 0);
    expect_echo(&t.owner, 0, client, "back");

    end_tree_test(&t);
}

/* Accepts one connection on `lfd` within the bound; -1 if none came. */
static int accept_within(int lfd)
{
    if (t_wait_readable(lfd, t_now_ms() + T_WAIT_MS) != 0)
        return -1;
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        t_sock_timeouts(fd, T_WAIT_MS);
    return fd;
}

/* The document's heartbeat pings a server that says nothing with an empty
 * frame, and a server that does not answer is declared dead after the
 * timeout: the client connects again. */
Test(config_client, the_heartbeat_pings_and_gives_up_on_a_silent_server)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_SILENT, NULL);
    start_tree_ok(rt,
                  C("'port': %u, 'reconnect': {'initial': '10ms', 'max': '20ms'}, "
                    "'heartbeat': {'interval': '20ms', 'timeout': '1s'}, 'register': 'cc.hb'"),
                  (unsigned)t.port);
    nsys_ref_t client = registered(rt, "cc.hb");

    int fd = accept_within(t.sock);
    cr_assert_geq(fd, 0, "the client did not connect");
    uint8_t ping[4] = {1, 1, 1, 1};
    cr_assert_eq(t_read_exact(fd, ping, 4, T_WAIT_MS, NULL), 0, "no ping");
    const uint8_t empty[4] = {0, 0, 0, 0};
    cr_expect_eq(memcmp(ping, empty, 4), 0, "the ping is a zero-length frame");

    /* No pong: the client drops the link and dials again. */
    cr_expect(t_closed_by_peer(t_wait_closed(fd, T_WAIT_MS)), "the silent link was not closed");
    close(fd);
    fd = accept_within(t.sock);
    cr_assert_geq(fd, 0, "the client did not reconnect");

    /* Answering keeps the link: a pong for each ping (the echo handler's way). */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(t_read_exact(fd, ping, 4, T_WAIT_MS, NULL), 0, "no ping %d", i);
        cr_expect_eq(memcmp(ping, empty, 4), 0);
        cr_assert_eq(t_write_all(fd, empty, 4), 0);
    }
    nsys_client_stats_t st;
    cr_assert_eq(nsys_client_stats(rt, client, &st), 0);
    cr_expect_eq(st.connects, 2);
    cr_expect_eq(st.received, 0, "pongs are not messages");
    nsys_ref_t same = NSYS_REF_NONE;
    cr_expect(nsys_whereis(rt, "cc.hb", &same) == 0 && same == client);

    end_tree_test(&t);
    close(fd);
}

/* A stop_on error ends the client at once; a temporary child stays down. */
Test(config_client, a_stop_on_error_ends_the_client)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_REFUSED, "cc.owner");
    nsys_ref_t root =
        start_tree_ok(rt,
                      "{'supervisor': {'children': [{'id': 'link', 'behaviour': 'client', "
                      "'restart': 'temporary', 'args': {'port': %u, "
                      "'reconnect': {'initial': '10ms', 'max': '20ms', 'stop_on': ['refused']}, "
                      "'register': 'cc.stop', 'owner': 'cc.owner'}}]}}",
                      (unsigned)t.port);

    nsys_client_event_t ev;
    cr_assert(owner_event(&t.owner, NSYS_CLIENT_EV_GAVE_UP, 0, &ev), "the client did not give up");
    cr_expect_eq(ev.code, UV_ECONNREFUSED, "gave up with %s", nsys_errname(ev.code));
    cr_expect_eq(owner_events(&t.owner, NSYS_CLIENT_EV_RETRYING), 0, "no retry before giving up");
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, ev.client));
    nsys_ref_t gone = NSYS_REF_NONE;
    T_ASSERT_EVENTUALLY(nsys_whereis(rt, "cc.stop", &gone) == NSYS_ENOENT,
                        "the name did not go with the client");
    cr_expect(nsys_is_alive(rt, root), "a temporary child's exit does not end the tree");

    end_tree_test(&t);
}

/* Giving up after max_attempts is an exit the supervisor restarts, and each
 * restart counts against its intensity; every new client takes the
 * "register" name again. */
Test(config_client, giving_up_counts_against_the_intensity)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_REFUSED, "cc.owner");
    nsys_ref_t root =
        start_tree_ok(rt,
                      "{'supervisor': {'intensity': 2, 'period': '1h', "
                      "'backoff': {'initial': '1ms', 'max': '5ms'}, "
                      "'children': [{'id': 'link', 'behaviour': 'client', 'args': {'port': %u, "
                      "'reconnect': {'initial': '1ms', 'max': '5ms', 'max_attempts': 2}, "
                      "'register': 'cc.again', 'owner': 'cc.owner'}}]}}",
                      (unsigned)t.port);

    /* Two restarts are allowed: three clients give up, then the tree does. */
    nsys_client_event_t ev[3];
    for (size_t k = 0; k < 3; k++) {
        cr_assert(owner_event(&t.owner, NSYS_CLIENT_EV_GAVE_UP, k, &ev[k]), "no give-up %zu", k);
        cr_expect_eq(ev[k].code, UV_ECONNREFUSED);
    }
    cr_expect_neq(ev[0].client, ev[1].client, "a restart is a new actor");
    cr_expect_neq(ev[1].client, ev[2].client);
    cr_expect_neq(ev[0].client, ev[2].client);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, root), "the supervisor outlived its intensity");
    cr_expect_eq(owner_events(&t.owner, NSYS_CLIENT_EV_GAVE_UP), 3);
    /* max_attempts 2: one retry before each give-up. */
    cr_expect_eq(owner_events(&t.owner, NSYS_CLIENT_EV_RETRYING), 3);

    end_tree_test(&t);
}

Test(config_client, an_owner_that_is_not_registered_fails_the_start)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_ECHO, NULL);
    expect_start_fails(rt, NSYS_ENOACTOR,
                       C("'port': %u, 'register': 'cc.client', 'owner': 'cc.nobody'"),
                       (unsigned)t.port);
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_expect_eq(nsys_whereis(rt, "cc.client", &ref), NSYS_ENOENT, "the name was left behind");

    end_tree_test(&t);
}

Test(config_client, a_register_name_already_taken_fails_the_start)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_ECHO, "cc.taken");
    expect_start_fails(rt, NSYS_ENAMETAKEN, C("'port': %u, 'register': 'cc.taken'"),
                       (unsigned)t.port);
    nsys_ref_t ref = NSYS_REF_NONE;
    cr_expect_eq(nsys_whereis(rt, "cc.taken", &ref), 0);
    cr_expect_eq(ref, t.owner_ref, "the name still belongs to its holder");

    end_tree_test(&t);
}

/* Args handed over at run time were never validated: the init checks them. */
Test(config_client, bad_args_given_at_run_time_fail_the_init)
{
    tree_test_t t;
    nsys_runtime_t *rt = begin_tree_test(&t, DIAL_ECHO, NULL);
    nsys_ref_t root = start_tree_ok(rt,
                                    "{'supervisor': {'strategy': 'simple_one_for_one', 'template': "
                                    "{'behaviour': 'client', 'args': {'port': %u}}}}",
                                    (unsigned)t.port);

    static const char *const bad[] = {
        "{\"port\": 0}",
        "{\"port\": 7000, \"transport\": {\"codec\": \"raw\"}, \"heartbeat\": {\"interval\": "
        "\"1s\"}}",
        "{\"port\": 7000, \"reconnect\": {\"stop_on\": [\"sometimes\"]}}",
        "{\"port\": 7000, \"register\": \"\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *args = cJSON_Parse(bad[i]);
        cr_assert_not_null(args);
        nsys_ref_t child = NSYS_REF_NONE;
        int rc = nsys_supervisor_start_child(rt, root, args, &child);
        cJSON_Delete(args);
        cr_expect_eq(rc, NSYS_ECONFIG, "%s: start_child returned %s", bad[i], nsys_strerror(rc));
    }

    /* The template's own args still work. */
    nsys_ref_t child = NSYS_REF_NONE;
    int rc = nsys_supervisor_start_child(rt, root, NULL, &child);
    cr_assert_eq(rc, 0, "start_child: %s", nsys_strerror(rc));
    nsys_client_stats_t st;
    cr_expect(wait_state(rt, child, NSYS_CLIENT_UP, &st));

    end_tree_test(&t);
}

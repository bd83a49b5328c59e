/* tests/integration/test_client_supervised.c — the "client" kind under a
 * supervisor, as a document starts it: link failures are ridden out inside
 * the client and never reach the supervisor (no exit, no restart, the same
 * ref through every outage), while a client that gives up after
 * max_attempts, or stops on a stop_on error, exits with that error and is
 * restarted — counted against the intensity like any failure. */
#include <criterion/criterion.h>

#include <netsys/netsys.h>

#include <stdio.h>

#include "common/net.h"
#include "common/probe.h"

#define TO 120
#define CLIENT_NAME "sup.client"

static nsys_runtime_t *rt;
static t_probe_t observer; /* gets the supervisor's events */
static nsys_config_t *cfg;

static void setup(void)
{
    nsys_log_set_level(NSYS_LOG_ERROR);
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    t_probe_init(&observer);
    cr_assert_eq(t_probe_spawn(rt, &observer, NULL, NULL), 0);
    cfg = NULL;
}

static void teardown(void)
{
    nsys_runtime_stop(rt);
    T_RUNTIME_FREE(rt);
    t_probe_destroy(&observer);
    nsys_config_free(cfg);
}

TestSuite(client_supervised, .init = setup, .fini = teardown, .timeout = TO);

static nsys_ref_t echo_listener(uint16_t port, uint16_t *bound)
{
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.port = port;
    nsys_listener_info_t info;
    nsys_ref_t l;
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "listener on %u: %s", (unsigned)port, nsys_net_last_error());
    if (bound != NULL)
        *bound = info.port;
    return l;
}

static void stop_listener(nsys_ref_t l)
{
    cr_assert_eq(nsys_listener_stop(rt, l), 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, l));
}

/* Starts the document's tree with the probe as observer. */
static nsys_ref_t start_tree(const char *doc)
{
    nsys_config_diag_t *d = NULL;
    int rc = nsys_config_load_string(doc, strlen(doc), "test", &cfg, &d);
    if (rc != 0) {
        for (size_t i = 0; i < nsys_config_diag_count(d); i++)
            cr_log_error("%s: %s", nsys_config_diag_path(d, i), nsys_config_diag_message(d, i));
        nsys_config_diag_free(d);
        cr_assert_fail("the document does not load: %d", rc);
    }
    nsys_sup_spec_t spec = *nsys_config_root(cfg);
    spec.observer = t_probe_ref(&observer);
    nsys_ref_t sup;
    char err[256] = "";
    rc = nsys_supervisor_start(rt, &spec, &sup, err, sizeof err);
    cr_assert_eq(rc, 0, "start: %s", err);
    return sup;
}

static nsys_ref_t client_ref(void)
{
    nsys_ref_t c = NSYS_REF_NONE;
    T_WAIT(nsys_whereis(rt, CLIENT_NAME, &c) == 0, T_WAIT_MS);
    cr_assert_neq(c, NSYS_REF_NONE, "no actor registered as " CLIENT_NAME);
    return c;
}

static nsys_client_stats_t stats_of(nsys_ref_t c)
{
    nsys_client_stats_t st;
    T_ASSERT_STATS(nsys_client_stats, rt, c, st);
    return st;
}

static bool client_in(nsys_ref_t c, nsys_client_state_t want)
{
    nsys_client_stats_t st;
    return nsys_client_stats(rt, c, &st) == 0 && st.state == want;
}

/* How many supervisor events of `kind` the observer has seen (reason into
 * *reason for the last one, if not NULL). */
static size_t sup_events(nsys_sup_event_kind_t kind, int *reason)
{
    size_t n = 0, total = t_recs_count(&observer.inbox);
    for (size_t i = 0; i < total; i++) {
        t_rec_t rec;
        if (!t_recs_get(&observer.inbox, i, &rec) || rec.type != NSYS_MSG_SUP_EVENT)
            continue;
        nsys_sup_event_t ev;
        memset(&ev, 0, sizeof ev);
        memcpy(&ev, rec.bytes,
               sizeof rec.bytes < offsetof(nsys_sup_event_t, id) ? sizeof rec.bytes
                                                                 : offsetof(nsys_sup_event_t, id));
        if (ev.kind == kind) {
            n++;
            if (reason != NULL)
                *reason = ev.reason;
        }
    }
    return n;
}

/* The server goes away and comes back 5 times on the same port: the client
 * reconnects each time as the same actor, and the supervisor never hears of
 * it. */
Test(client_supervised, link_failures_never_reach_the_supervisor)
{
    uint16_t port = 0;
    nsys_ref_t l = echo_listener(0, &port);
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"supervisor\": {\"intensity\": 1, \"period\": \"60s\", \"children\": ["
             "{\"id\": \"c\", \"behaviour\": \"client\", \"args\": {\"port\": %u, "
             "\"register\": \"" CLIENT_NAME "\", "
             "\"reconnect\": {\"initial\": \"5ms\", \"max\": \"20ms\", \"max_attempts\": 0}}}]}}",
             (unsigned)port);
    start_tree(doc);
    nsys_ref_t c = client_ref();
    T_ASSERT_EVENTUALLY(client_in(c, NSYS_CLIENT_UP), "the client never connected");

    for (int round = 0; round < 5; round++) {
        stop_listener(l);
        T_ASSERT_EVENTUALLY(!client_in(c, NSYS_CLIENT_UP), "round %d: the loss went unseen",
                            round);
        l = echo_listener(port, NULL);
        T_ASSERT_EVENTUALLY(client_in(c, NSYS_CLIENT_UP), "round %d: no reconnect", round);
    }
    nsys_ref_t again = NSYS_REF_NONE;
    cr_expect_eq(nsys_whereis(rt, CLIENT_NAME, &again), 0);
    cr_expect_eq(again, c, "the client was replaced");
    nsys_client_stats_t st = stats_of(c);
    cr_expect_geq(st.reconnects, 5);
    cr_expect_eq(sup_events(NSYS_SUP_CHILD_EXITED, NULL), 0);
    cr_expect_eq(sup_events(NSYS_SUP_CHILD_RESTARTING, NULL), 0);
    cr_expect_eq(sup_events(NSYS_SUP_CHILD_STARTED, NULL), 1);
}

/* Nothing listens: after 2 failed attempts the client gives up, exits with
 * the refusal and is restarted, each time as a new actor. */
Test(client_supervised, giving_up_after_max_attempts_is_a_restart)
{
    uint16_t port = 0;
    stop_listener(echo_listener(0, &port)); /* a port where nothing listens now */
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"supervisor\": {\"intensity\": 100, \"period\": \"60s\", "
             "\"backoff\": {\"initial\": \"5ms\", \"max\": \"10ms\"}, \"children\": ["
             "{\"id\": \"c\", \"behaviour\": \"client\", \"args\": {\"port\": %u, "
             "\"register\": \"" CLIENT_NAME "\", "
             "\"reconnect\": {\"initial\": \"5ms\", \"max\": \"10ms\", \"max_attempts\": 2}}}]}}",
             (unsigned)port);
    start_tree(doc);
    nsys_ref_t first = client_ref();
    T_ASSERT_EVENTUALLY(sup_events(NSYS_SUP_CHILD_RESTARTING, NULL) >= 2,
                        "the supervisor restarted the client %zu times",
                        sup_events(NSYS_SUP_CHILD_RESTARTING, NULL));
    int reason = 0;
    cr_expect_geq(sup_events(NSYS_SUP_CHILD_EXITED, &reason), 2);
    cr_expect_eq(reason, UV_ECONNREFUSED, "exit reason %s", nsys_strerror(reason));
    nsys_ref_t now = NSYS_REF_NONE;
    T_WAIT(nsys_whereis(rt, CLIENT_NAME, &now) == 0 && now != first, T_WAIT_MS);
    cr_expect_neq(now, first, "no new client actor");
}

/* "stop_on": ["refused"]: the first refusal ends the client at once; with
 * intensity 0 its supervisor gives up on the spot. */
Test(client_supervised, a_stop_on_error_counts_against_the_intensity)
{
    uint16_t port = 0;
    stop_listener(echo_listener(0, &port));
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"supervisor\": {\"intensity\": 0, \"period\": \"60s\", \"children\": ["
             "{\"id\": \"c\", \"behaviour\": \"client\", \"args\": {\"port\": %u, "
             "\"register\": \"" CLIENT_NAME "\", "
             "\"reconnect\": {\"initial\": \"5s\", \"stop_on\": [\"refused\"]}}}]}}",
             (unsigned)port);
    nsys_ref_t sup = start_tree(doc);
    T_ASSERT_EVENTUALLY(sup_events(NSYS_SUP_GAVE_UP, NULL) == 1, "the supervisor did not give up");
    int reason = 0;
    cr_expect_eq(sup_events(NSYS_SUP_CHILD_EXITED, &reason), 1);
    cr_expect_eq(reason, UV_ECONNREFUSED, "exit reason %s", nsys_strerror(reason));
    cr_expect_eq(sup_events(NSYS_SUP_CHILD_RESTARTING, NULL), 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, sup));
}

/* tools/netsys/run_observer.c — the actor `netsys run` puts in the root spec
 * as its observer (observers propagate to nested supervisors): it counts the
 * supervisors' NSYS_MSG_SUP_EVENT messages into run_shared_t, prints one line
 * per event when there is no status line, and monitors the root supervisor so
 * that the main thread wakes up when the root exits on its own.
 *
 * It is spawned before the root, so nsys_runtime_stop (newest first) stops
 * it after the tree.
 *
 * Not for: deciding anything. It reports; cmd_run.c decides.
 */
#include "run.h"

#include <inttypes.h>
#include <string.h>

enum { MSG_RUN_WATCH = NSYS_MSG_USER + 0x100 }; /* payload: the root's nsys_ref_t */

static void count(run_shared_t *sh, run_counter_t c)
{
    atomic_fetch_add_explicit(&sh->counters[c], 1, memory_order_relaxed);
}

/* One line per event: "[SECONDS] SUPERVISOR: what happened", the supervisor
 * as aSLOT.GEN. Written with one call, so that log lines from other threads
 * on the same stream cannot cut it. */
static void print_event(run_shared_t *sh, const nsys_sup_event_t *ev)
{
    uint64_t ms = (uv_hrtime() - sh->start_ns) / 1000000u;
    const char *id = ev->id;
    char line[512];
    int n = snprintf(line, sizeof line, "[%" PRIu64 ".%03us] a%" PRIu32 ".%" PRIu32 ": ",
                     ms / 1000u, (unsigned)(ms % 1000u), NSYS_REF_SLOT(ev->supervisor),
                     NSYS_REF_GEN(ev->supervisor));
    char *rest = line + n;
    size_t room = sizeof line - (size_t)n;
    int reason = ev->reason;

    switch (ev->kind) {
    case NSYS_SUP_CHILD_STARTED:
        snprintf(rest, room, "child '%s' started as a%" PRIu32 ".%" PRIu32 "\n", id,
                 NSYS_REF_SLOT(ev->child), NSYS_REF_GEN(ev->child));
        break;
    case NSYS_SUP_CHILD_EXITED:
        snprintf(rest, room, "child '%s' exited: %s (%s)\n", id, nsys_strerror(reason),
                 nsys_errname(reason));
        break;
    case NSYS_SUP_CHILD_RESTARTING:
        snprintf(rest, room, "child '%s' restarting in %" PRIu64 " ms (restart %" PRIu32 ")\n", id,
                 ev->delay_ms, ev->restarts);
        break;
    case NSYS_SUP_GAVE_UP:
        if (reason == 0)
            reason = NSYS_EGAVEUP;
        snprintf(rest, room, "gave up: %s (%s)\n", nsys_strerror(reason), nsys_errname(reason));
        break;
    case NSYS_SUP_START_FAILED:
        snprintf(rest, room, "child '%s' failed to start: %s (%s)\n", id, nsys_strerror(reason),
                 nsys_errname(reason));
        break;
    default:
        snprintf(rest, room, "event %d for child '%s'\n", (int)ev->kind, id);
        break;
    }
    fputs(line, sh->events);
    fflush(sh->events);
}

static void on_event(run_shared_t *sh, const nsys_msg_t *msg)
{
    nsys_sup_event_t ev;

    if (msg->size < sizeof ev)
        return;
    memcpy(&ev, msg->data, sizeof ev);
    ev.id[sizeof ev.id - 1] = '\0';
    switch (ev.kind) {
    case NSYS_SUP_CHILD_STARTED:
        count(sh, RUN_STARTED);
        break;
    case NSYS_SUP_CHILD_EXITED:
        count(sh, RUN_EXITS);
        if (!nsys_reason_is_clean(ev.reason))
            count(sh, RUN_FAILURES);
        break;
    case NSYS_SUP_CHILD_RESTARTING:
        count(sh, RUN_RESTARTS);
        break;
    case NSYS_SUP_START_FAILED:
        count(sh, RUN_FAILURES);
        break;
    default:
        break;
    }
    if (sh->events != NULL)
        print_event(sh, &ev);
}

static void root_down(run_shared_t *sh, int reason)
{
    atomic_store(&sh->root_reason, reason);
    atomic_store(&sh->root_down, true);
    nsys_runtime_request_stop(sh->rt, RUN_WAKE_ROOT_DOWN);
}

static int observer_init(nsys_ctx_t *ctx, void *state, void *args)
{
    (void)ctx;
    *(run_shared_t **)state = args;
    return 0;
}

static int observer_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    run_shared_t *sh = *(run_shared_t **)state;

    switch (msg->type) {
    case NSYS_MSG_SUP_EVENT:
        on_event(sh, msg);
        return 0;
    case MSG_RUN_WATCH: {
        nsys_ref_t root;
        if (msg->size != sizeof root)
            return 0;
        memcpy(&root, msg->data, sizeof root);
        /* A root that is already gone still gets its DOWN (NOPROC). */
        uint64_t monitor = 0;
        int rc = nsys_monitor(ctx, root, &monitor);
        if (rc != 0)
            root_down(sh, rc);
        return 0;
    }
    case NSYS_MSG_DOWN: {
        nsys_down_t down;
        if (msg->size != sizeof down)
            return 0;
        memcpy(&down, msg->data, sizeof down);
        if (down.ref == atomic_load(&sh->root))
            root_down(sh, down.reason);
        return 0;
    }
    default:
        return 0;
    }
}

static const nsys_behaviour_t observer_behaviour = {
    .name = "netsys.run.observer",
    .state_size = sizeof(run_shared_t *),
    .init = observer_init,
    .handle = observer_handle,
};

int run_observer_spawn(run_shared_t *sh, nsys_ref_t *out)
{
    nsys_spawn_opts_t opts = NSYS_SPAWN_OPTS_DEFAULTS;

    opts.args = sh;
    return nsys_spawn(sh->rt, &observer_behaviour, &opts, out);
}

int run_observer_watch(run_shared_t *sh, nsys_ref_t observer, nsys_ref_t root)
{
    atomic_store(&sh->root, root);
    return nsys_send(sh->rt, observer, MSG_RUN_WATCH, &root, sizeof root);
}

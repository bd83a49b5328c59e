/* actors/handlers.c — the built-in session handlers (echo, discard, log) and
 * the registry that configuration documents name handlers through.
 * Not for: the session actor itself (session.c). */
#include <netsys/log.h>
#include <netsys/net.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- echo: every message goes back as it came, without a copy ---------------- */

static int echo_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    (void)state;
    int rc = nsys_session_send_buf(s, nsys_buf_ref(msg));
    if (rc != 0)
        nsys_buf_unref(msg);
    return rc == NSYS_ECANCELED ? 0 : rc;
}

const nsys_session_handler_t nsys_handler_echo = {.name = "echo", .on_message = echo_message};

/* ---- discard -------------------------------------------------------------------------- */

static int discard_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    (void)s, (void)state, (void)msg;
    return 0;
}

const nsys_session_handler_t nsys_handler_discard = {.name = "discard",
                                                     .on_message = discard_message};

/* ---- log ----------------------------------------------------------------------------- */

typedef struct log_state {
    uint64_t messages, bytes;
} log_state_t;

static int log_open(nsys_session_t *s, void *state, void *arg)
{
    (void)state, (void)arg;
    NSYS_LOG(NSYS_LOG_INFO, "session %s: open", nsys_session_peer(s));
    return 0;
}

static int log_message(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    log_state_t *ls = state;
    ls->messages++;
    ls->bytes += nsys_buf_len(msg);
    NSYS_LOG(NSYS_LOG_INFO, "session %s: message of %zu bytes", nsys_session_peer(s),
             nsys_buf_len(msg));
    return 0;
}

static void log_close(nsys_session_t *s, void *state, int reason, const char *text)
{
    log_state_t *ls = state;
    NSYS_LOG(NSYS_LOG_INFO, "session %s: closed after %llu messages (%llu bytes): %s (%s)",
             nsys_session_peer(s), (unsigned long long)ls->messages,
             (unsigned long long)ls->bytes, text, nsys_errname(reason));
}

const nsys_session_handler_t nsys_handler_log = {.name = "log",
                                                 .state_size = sizeof(log_state_t),
                                                 .on_open = log_open,
                                                 .on_message = log_message,
                                                 .on_close = log_close};

/* ---- registry ---------------------------------------------------------------------------- */

typedef struct entry {
    char *name;
    const nsys_session_handler_t *h;
} entry_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry_t *entries;
static size_t nentries, capentries;

static const nsys_session_handler_t *const builtins[] = {&nsys_handler_echo, &nsys_handler_discard,
                                                         &nsys_handler_log};

static const nsys_session_handler_t *find_locked(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i]->name, name) == 0)
            return builtins[i];
    for (size_t i = 0; i < nentries; i++)
        if (strcmp(entries[i].name, name) == 0)
            return entries[i].h;
    return NULL;
}

int nsys_net_register_handler(const char *name, const nsys_session_handler_t *h)
{
    if (name == NULL || *name == '\0' || h == NULL)
        return NSYS_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&mu);
    if (find_locked(name) != NULL) {
        rc = NSYS_EEXIST;
    } else if (nentries == capentries) {
        size_t cap = capentries ? capentries * 2 : 8;
        entry_t *grown = realloc(entries, cap * sizeof *grown);
        if (grown == NULL)
            rc = NSYS_ENOMEM;
        else
            entries = grown, capentries = cap;
    }
    char *copy = rc == 0 ? strdup(name) : NULL;
    if (rc == 0 && copy == NULL)
        rc = NSYS_ENOMEM;
    if (rc == 0)
        entries[nentries++] = (entry_t){copy, h};
    pthread_mutex_unlock(&mu);
    return rc;
}

const nsys_session_handler_t *nsys_net_find_handler(const char *name)
{
    if (name == NULL)
        return NULL;
    pthread_mutex_lock(&mu);
    const nsys_session_handler_t *h = find_locked(name);
    pthread_mutex_unlock(&mu);
    return h;
}

int nsys_net_handler_names(const char ***names, size_t *n)
{
    if (names == NULL || n == NULL)
        return NSYS_EINVAL;
    size_t nb = sizeof builtins / sizeof builtins[0];
    pthread_mutex_lock(&mu);
    const char **v = malloc((nb + nentries) * sizeof *v);
    if (v != NULL) {
        for (size_t i = 0; i < nb; i++)
            v[i] = builtins[i]->name;
        for (size_t i = 0; i < nentries; i++)
            v[nb + i] = entries[i].name;
        *n = nb + nentries;
    }
    pthread_mutex_unlock(&mu);
    *names = v;
    return v != NULL ? 0 : NSYS_ENOMEM;
}

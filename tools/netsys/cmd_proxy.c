/* tools/netsys/cmd_proxy.c — `netsys proxy`: runs one fault-injecting TCP
 * proxy (<netsys/proxy.h>) from the command line, so anyone can put a slow,
 * narrow, resetting, silent or refusing link in front of a server and point
 * their client at it. Prints where it listens as soon as it does, runs until
 * SIGINT/SIGTERM or --duration, then prints its counters (one JSON line with
 * --json).
 *
 * Not for: documents (a "proxy" child in `netsys run` does the same from a
 * file, see docs/CONFIG.md).
 */
#include "cli.h"

#include <netsys/proxy.h>

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define LISTEN_DEFAULT "127.0.0.1:0"
#define HOST_MAX 255

typedef struct proxy_cli {
    char listen_host[HOST_MAX + 1];
    uint16_t listen_port;
    char upstream_host[HOST_MAX + 1];
    uint16_t upstream_port;
    bool have_upstream;
    uint64_t connect_timeout_ms;
    nsys_proxy_faults_t faults;
    uint64_t duration_ms; /* 0: until a signal */
    bool json;
    bool have_level;
    nsys_log_level_t level;
} proxy_cli_t;

static void print_help(FILE *out)
{
    fputs("Usage: netsys proxy --upstream HOST:PORT [--listen HOST:PORT] [FAULTS] [--duration S]\n"
          "                    [--json] [--log-level LEVEL]\n"
          "\n"
          "Forwards every TCP connection made to --listen to --upstream, byte for byte,\n"
          "and injects the faults asked for. Prints the address it listens on as soon as\n"
          "it does (port 0: a free port), runs until SIGINT or SIGTERM or until --duration\n"
          "has passed, then prints its counters.\n"
          "\n"
          "Options:\n"
          "  -u, --upstream HOST:PORT    where to forward (required)\n"
          "  -L, --listen HOST:PORT      where to listen (default 127.0.0.1:0)\n"
          "      --connect-timeout MS    upstream connect timeout (default 30000)\n"
          "  -d, --duration SECONDS      stop after this long: seconds (\"2\", \"0.5\") or a\n"
          "                              duration with a unit (\"500ms\", \"2m\")\n"
          "  -j, --json                  print a JSON line when listening and one with the\n"
          "                              final counters, nothing else, on standard output\n"
          "  -l, --log-level LEVEL       off, error, warn, info, debug or trace\n"
          "  -h, --help                  show this help and exit\n"
          "\n"
          "Faults (times in ms, or with a unit: \"250ms\", \"2s\"):\n"
          "      --latency MS[+-JITTER]  delay every chunk by MS, +- a random JITTER\n"
          "      --bandwidth BYTES/s     limit each direction of each connection (\"65536\",\n"
          "                              \"512KiB\", \"1MiB/s\")\n"
          "      --reset-every MS        reset each connection this long after it started\n"
          "      --reset-after BYTES     reset a connection once it forwarded this much\n"
          "      --blackhole             forward nothing (data is read and dropped) but keep\n"
          "                              the connections open\n"
          "      --refuse-for MS         close new connections at once for this long\n"
          "\n"
          "Exit status: 0 after a stop by signal or --duration; 1 on bad usage or when the\n"
          "proxy cannot listen.\n",
          out);
}

/* ---- values --------------------------------------------------------------------- */

/* "250" (ms) or a config duration ("250ms", "2s"). */
static int parse_ms(const char *text, uint64_t *ms)
{
    char *end = NULL;
    if (text[0] >= '0' && text[0] <= '9') {
        unsigned long long v = strtoull(text, &end, 10);
        if (*end == '\0') {
            *ms = v;
            return 0;
        }
    }
    return nsys_config_parse_duration(text, ms);
}

/* "65536" (bytes) or a config size ("64KiB"); an optional "/s" after either. */
static int parse_bytes(const char *text, bool per_second, uint64_t *bytes)
{
    char copy[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof copy)
        return NSYS_EINVAL;
    memcpy(copy, text, n + 1);
    if (per_second && n > 2 && strcmp(copy + n - 2, "/s") == 0)
        copy[n - 2] = '\0';
    char *end = NULL;
    if (copy[0] >= '0' && copy[0] <= '9') {
        unsigned long long v = strtoull(copy, &end, 10);
        if (*end == '\0') {
            *bytes = v;
            return 0;
        }
    }
    return nsys_config_parse_size(copy, bytes);
}

/* "MS" or "MS+-JITTER". */
static int parse_latency(const char *text, uint64_t *latency, uint64_t *jitter)
{
    char copy[64];
    if (strlen(text) >= sizeof copy)
        return NSYS_EINVAL;
    snprintf(copy, sizeof copy, "%s", text);
    *jitter = 0;
    char *pm = strstr(copy, "+-");
    if (pm != NULL) {
        *pm = '\0';
        if (parse_ms(pm + 2, jitter) != 0)
            return NSYS_EINVAL;
    }
    return parse_ms(copy, latency);
}

/* "host:port", "[v6]:port" or ":port" (host 127.0.0.1). */
static int parse_address(const char *text, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        return NSYS_EINVAL;
    const char *start = text, *end = colon;
    if (text[0] == '[') {
        if (colon == text || colon[-1] != ']')
            return NSYS_EINVAL;
        start = text + 1;
        end = colon - 1;
    } else if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
        return NSYS_EINVAL; /* an IPv6 address needs its brackets */
    }
    size_t n = (size_t)(end - start);
    if (n >= hostlen)
        return NSYS_EINVAL;
    if (n == 0)
        snprintf(host, hostlen, "127.0.0.1");
    else
        snprintf(host, hostlen, "%.*s", (int)n, start);
    char *stop = NULL;
    unsigned long p = strtoul(colon + 1, &stop, 10);
    if (colon[1] == '\0' || *stop != '\0' || p > 65535)
        return NSYS_EINVAL;
    *port = (uint16_t)p;
    return 0;
}

/* As `run --duration`: "2", "0.25" (seconds) or "500ms"; > 0. */

/* ---- options ----------------------------------------------------------------------- */

static int bad_value(const char *option, const char *expected, const char *got)
{
    cli_error("proxy: %s: expected %s, got '%s'", option, expected, got);
    return cli_usage_error("proxy");
}

static int parse_options(int argc, char **argv, proxy_cli_t *o)
{
    enum {
        OPT_LATENCY = 1000,
        OPT_BANDWIDTH,
        OPT_RESET_EVERY,
        OPT_RESET_AFTER,
        OPT_BLACKHOLE,
        OPT_REFUSE_FOR,
        OPT_CONNECT_TIMEOUT
    };
    static const struct option options[] = {
        {"upstream", required_argument, NULL, 'u'},
        {"listen", required_argument, NULL, 'L'},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"latency", required_argument, NULL, OPT_LATENCY},
        {"bandwidth", required_argument, NULL, OPT_BANDWIDTH},
        {"reset-every", required_argument, NULL, OPT_RESET_EVERY},
        {"reset-after", required_argument, NULL, OPT_RESET_AFTER},
        {"blackhole", no_argument, NULL, OPT_BLACKHOLE},
        {"refuse-for", required_argument, NULL, OPT_REFUSE_FOR},
        {"duration", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v = 0, jitter = 0;
    int c;

    parse_address(LISTEN_DEFAULT, o->listen_host, sizeof o->listen_host, &o->listen_port);
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":u:L:d:jl:h", options, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (parse_address(optarg, o->upstream_host, sizeof o->upstream_host,
                              &o->upstream_port) != 0 ||
                o->upstream_port == 0)
                return bad_value("--upstream", "HOST:PORT with a port 1..65535", optarg);
            o->have_upstream = true;
            break;
        case 'L':
            if (parse_address(optarg, o->listen_host, sizeof o->listen_host, &o->listen_port) != 0)
                return bad_value("--listen", "HOST:PORT (port 0: any free port)", optarg);
            break;
        case OPT_CONNECT_TIMEOUT:
            if (parse_ms(optarg, &v) != 0 || v == 0)
                return bad_value("--connect-timeout", "a time in ms > 0", optarg);
            o->connect_timeout_ms = v;
            break;
        case OPT_LATENCY:
            if (parse_latency(optarg, &v, &jitter) != 0 || v > NSYS_PROXY_DELAY_MAX_MS ||
                jitter > NSYS_PROXY_DELAY_MAX_MS)
                return bad_value("--latency", "MS or MS+-JITTER, each at most 1 h", optarg);
            o->faults.latency_ms = (uint32_t)v;
            o->faults.jitter_ms = (uint32_t)jitter;
            break;
        case OPT_BANDWIDTH:
            if (parse_bytes(optarg, true, &v) != 0 || v == 0 || v > NSYS_PROXY_BANDWIDTH_MAX)
                return bad_value("--bandwidth", "bytes per second > 0 (\"65536\", \"1MiB/s\")",
                                 optarg);
            o->faults.bandwidth = v;
            break;
        case OPT_RESET_EVERY:
            if (parse_ms(optarg, &v) != 0 || v == 0 || v > NSYS_PROXY_PERIOD_MAX_MS)
                return bad_value("--reset-every", "a time in ms > 0", optarg);
            o->faults.reset_every_ms = v;
            break;
        case OPT_RESET_AFTER:
            if (parse_bytes(optarg, false, &v) != 0 || v == 0)
                return bad_value("--reset-after", "a byte count > 0 (\"1000\", \"64KiB\")", optarg);
            o->faults.reset_after_bytes = v;
            break;
        case OPT_BLACKHOLE:
            o->faults.blackhole = true;
            break;
        case OPT_REFUSE_FOR:
            if (parse_ms(optarg, &v) != 0 || v == 0 || v > NSYS_PROXY_PERIOD_MAX_MS)
                return bad_value("--refuse-for", "a time in ms > 0", optarg);
            o->faults.refuse_for_ms = v;
            break;
        case 'd':
            if (cli_parse_duration(optarg, &o->duration_ms) != 0)
                return bad_value("--duration",
                                 "a number of seconds > 0 or a duration such as \"500ms\"", optarg);
            break;
        case 'j':
            o->json = true;
            break;
        case 'l':
            if (nsys_log_level_parse(optarg, &o->level) != 0)
                return bad_value("--log-level", "off, error, warn, info, debug or trace", optarg);
            o->have_level = true;
            break;
        case 'h':
            print_help(stdout);
            return -1;
        default:
            return cli_option_error("proxy", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("proxy: unexpected argument '%s'", argv[optind]);
        return cli_usage_error("proxy");
    }
    if (!o->have_upstream) {
        cli_error("proxy: --upstream HOST:PORT is required");
        return cli_usage_error("proxy");
    }
    return 0;
}

/* ---- output -------------------------------------------------------------------------- */

static const char *stop_name(nsys_wake_t why, int signum)
{
    if (why != NSYS_WAKE_SIGNAL)
        return "duration";
    return signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "signal";
}

static void print_json_line(cJSON *o)
{
    char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    if (text != NULL)
        printf("%s\n", text);
    else
        cli_error("proxy: out of memory printing JSON");
    cJSON_free(text);
    cJSON_Delete(o);
    fflush(stdout);
}

static void print_listening(const proxy_cli_t *o, const nsys_proxy_stats_t *st)
{
    char upstream[HOST_MAX + 16];
    snprintf(upstream, sizeof upstream, strchr(o->upstream_host, ':') ? "[%s]:%u" : "%s:%u",
             o->upstream_host, (unsigned)o->upstream_port);
    if (!o->json) {
        printf("proxy: listening on %s, forwarding to %s\n", st->address, upstream);
        fflush(stdout);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "event", "listening");
        cJSON_AddStringToObject(j, "address", st->address);
        cJSON_AddNumberToObject(j, "port", st->port);
        cJSON_AddStringToObject(j, "upstream", upstream);
    }
    print_json_line(j);
}

static void print_final(const proxy_cli_t *o, const nsys_proxy_stats_t *st, const char *stop,
                        double uptime_s)
{
    if (!o->json) {
        if (strcmp(stop, "duration") == 0)
            printf("proxy: stopped after %.1f s (--duration)\n", uptime_s);
        else
            printf("proxy: stopped by %s after %.1f s\n", stop, uptime_s);
        printf("  connections        %llu (%llu refused, %llu upstream failures, %llu reset)\n"
               "  bytes up           %llu\n"
               "  bytes down         %llu\n"
               "  bytes dropped      %llu\n",
               (unsigned long long)st->accepted, (unsigned long long)st->refused,
               (unsigned long long)st->upstream_failures, (unsigned long long)st->resets,
               (unsigned long long)st->bytes_up, (unsigned long long)st->bytes_down,
               (unsigned long long)st->bytes_dropped);
        fflush(stdout);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "event", "stopped");
        cJSON_AddStringToObject(j, "stop", stop);
        cJSON_AddNumberToObject(j, "uptime_s", uptime_s);
        cJSON_AddStringToObject(j, "address", st->address);
        cJSON_AddNumberToObject(j, "accepted", (double)st->accepted);
        cJSON_AddNumberToObject(j, "active", (double)st->active);
        cJSON_AddNumberToObject(j, "refused", (double)st->refused);
        cJSON_AddNumberToObject(j, "upstream_connects", (double)st->upstream_connects);
        cJSON_AddNumberToObject(j, "upstream_failures", (double)st->upstream_failures);
        cJSON_AddNumberToObject(j, "resets", (double)st->resets);
        cJSON_AddNumberToObject(j, "bytes_up", (double)st->bytes_up);
        cJSON_AddNumberToObject(j, "bytes_down", (double)st->bytes_down);
        cJSON_AddNumberToObject(j, "bytes_dropped", (double)st->bytes_dropped);
        cJSON_AddNumberToObject(j, "pauses", (double)st->pauses);
    }
    print_json_line(j);
}

/* ---- running ------------------------------------------------------------------------- */

static int run_proxy(const proxy_cli_t *o)
{
    nsys_runtime_t *rt = NULL;
    int rc = nsys_runtime_new(NULL, &rt);
    if (rc != 0) {
        cli_error("cannot create the runtime: %s", nsys_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    /* Installs the runtime's SIGINT/SIGTERM watchers for the whole run (a
     * signal before the proxy is up is reported by the wait below). */
    int signum = 0;
    rc = cli_watch_signals(rt, &signum);
    if (rc != 0) {
        cli_error("cannot watch SIGINT/SIGTERM: %s", nsys_strerror(rc));
        nsys_runtime_free(rt);
        return CLI_EXIT_FAIL;
    }
    bool stop = signum != 0;

    nsys_proxy_opts_t po = NSYS_PROXY_OPTS_DEFAULTS;
    po.listen_host = o->listen_host;
    po.listen_port = o->listen_port;
    po.upstream_host = o->upstream_host;
    po.upstream_port = o->upstream_port;
    po.connect_timeout_ms = o->connect_timeout_ms;
    po.faults = o->faults;
    nsys_ref_t proxy = NSYS_REF_NONE;
    nsys_proxy_stats_t st;
    uint64_t start_ns = uv_hrtime();
    rc = nsys_proxy_start(rt, &po, &proxy, &st);
    if (rc != 0) {
        cli_error("proxy: %s",
                  nsys_net_last_error()[0] ? nsys_net_last_error() : nsys_strerror(rc));
        nsys_runtime_free(rt);
        return CLI_EXIT_FAIL;
    }
    print_listening(o, &st);

    uint64_t deadline_ns = o->duration_ms ? start_ns + o->duration_ms * 1000000u : 0;
    nsys_wake_t why = 0;
    while (!stop) {
        uint64_t timeout = 0;
        if (deadline_ns != 0) {
            uint64_t now = uv_hrtime();
            if (now >= deadline_ns)
                break;
            timeout = (deadline_ns - now + 999999u) / 1000000u;
        }
        rc = nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, timeout, &why, &signum);
        if (rc != 0) {
            cli_error("proxy: waiting: %s", nsys_strerror(rc));
            break;
        }
        stop = why == NSYS_WAKE_SIGNAL;
    }
    double uptime_s = (double)((uv_hrtime() - start_ns) / 1000000u) / 1000.0; /* ms precision */
    int status = rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    nsys_proxy_stats_t final = st;
    int src = nsys_proxy_stats(rt, proxy, &final);
    if (src != 0)
        cli_error("proxy: cannot read its counters: %s", nsys_strerror(src));
    nsys_proxy_stop(rt, proxy);
    rc = nsys_runtime_stop(rt);
    if (rc != 0)
        cli_error("stopping the runtime: %s", nsys_strerror(rc));
    nsys_runtime_free(rt);
    print_final(o, &final,
                status != CLI_EXIT_OK ? "error"
                                      : stop_name(stop ? NSYS_WAKE_SIGNAL : NSYS_WAKE_TIMEOUT, signum),
                uptime_s);
    return status;
}

int cli_cmd_proxy(int argc, char **argv)
{
    proxy_cli_t o;
    memset(&o, 0, sizeof o);
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    nsys_log_level_t level = NSYS_LOG_INFO, from_env;
    const char *env = getenv("NSYS_LOG");
    if (env != NULL && nsys_log_level_parse(env, &from_env) == 0)
        level = from_env;
    if (o.have_level)
        level = o.level;
    nsys_log_set_level(level);
    return run_proxy(&o);
}

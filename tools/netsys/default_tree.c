/* tools/netsys/default_tree.c — the document `netsys run` (and `graph`)
 * use when no FILE is given: a flaky link ridden out. A rest_for_one root
 * with an echo listener on 127.0.0.1:17470, a fault-injecting proxy in front
 * of it on 127.0.0.1:17471 (20 ms +- 10 ms of latency; every connection
 * reset 3 s after it started; 12 s into every 20 s, the link cut and new
 * connections refused for 3 s, so the backoff shows),
 * and a pinger whose resilient client sends a numbered message every 50 ms
 * through the proxy and checks every echo. The status line shows the link,
 * its reconnects and the messages sent / echoed / failed / lost (lost stays
 * 0).
 *
 * examples/demo_tree.json holds the same bytes; test_cli checks that they
 * stay equal (`netsys run --print-default` prints this string). Edit both.
 */
#include "cli.h"

/* clang-format off */
const char cli_default_document[] =
    "{\n"
    "  \"name\": \"demo\",\n"
    "  \"runtime\": {\n"
    "    \"log_level\": \"warn\"\n"
    "  },\n"
    "  \"supervisor\": {\n"
    "    \"strategy\": \"rest_for_one\",\n"
    "    \"intensity\": 5,\n"
    "    \"period\": \"10s\",\n"
    "    \"children\": [\n"
    "      {\n"
    "        \"id\": \"echo\",\n"
    "        \"behaviour\": \"listener\",\n"
    "        \"args\": { \"host\": \"127.0.0.1\", \"port\": 17470, \"handler\": \"echo\" }\n"
    "      },\n"
    "      {\n"
    "        \"id\": \"flaky_link\",\n"
    "        \"behaviour\": \"proxy\",\n"
    "        \"args\": {\n"
    "          \"host\": \"127.0.0.1\",\n"
    "          \"port\": 17471,\n"
    "          \"upstream_host\": \"127.0.0.1\",\n"
    "          \"upstream_port\": 17470,\n"
    "          \"schedule\": [\n"
    "            { \"at\": \"0s\", \"faults\": { \"latency\": \"20ms\", \"jitter\": \"10ms\", \"reset_every\": \"3s\" } },\n"
    "            { \"at\": \"12s\", \"faults\": { \"reset_every\": \"1ms\", \"refuse_for\": \"3s\" } },\n"
    "            { \"at\": \"15s\", \"faults\": { \"latency\": \"20ms\", \"jitter\": \"10ms\", \"reset_every\": \"3s\" } }\n"
    "          ],\n"
    "          \"repeat\": \"20s\"\n"
    "        }\n"
    "      },\n"
    "      {\n"
    "        \"id\": \"pinger\",\n"
    "        \"behaviour\": \"pinger\",\n"
    "        \"args\": {\n"
    "          \"interval\": \"50ms\",\n"
    "          \"size\": 64,\n"
    "          \"client\": {\n"
    "            \"host\": \"127.0.0.1\",\n"
    "            \"port\": 17471,\n"
    "            \"connect_timeout\": \"2s\",\n"
    "            \"reconnect\": { \"initial\": \"200ms\", \"max\": \"2s\", \"reset_after\": \"2s\" },\n"
    "            \"heartbeat\": { \"interval\": \"1s\", \"timeout\": \"1s\" }\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    ]\n"
    "  }\n"
    "}\n";
/* clang-format on */

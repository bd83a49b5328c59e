/* tools/netsys/default_tree.c — the document `netsys run` (and `graph`)
 * use when no FILE is given: a root one_for_one supervisor with two
 * demo_workers, a flaky_worker and a nested rest_for_one supervisor.
 *
 * The flaky worker fails every 3 s and each restart waits out a backoff, so
 * it is restarted at most 4 times in any 10 s: the root's intensity (5 per
 * 10 s) is never exceeded and the demo runs until it is stopped.
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
    "    \"strategy\": \"one_for_one\",\n"
    "    \"intensity\": 5,\n"
    "    \"period\": \"10s\",\n"
    "    \"children\": [\n"
    "      {\n"
    "        \"id\": \"ticker\",\n"
    "        \"behaviour\": \"demo_worker\",\n"
    "        \"args\": { \"interval\": \"1s\" }\n"
    "      },\n"
    "      {\n"
    "        \"id\": \"heartbeat\",\n"
    "        \"behaviour\": \"demo_worker\",\n"
    "        \"args\": { \"interval\": \"250ms\" }\n"
    "      },\n"
    "      {\n"
    "        \"id\": \"flaky\",\n"
    "        \"behaviour\": \"flaky_worker\",\n"
    "        \"args\": { \"fail_every\": \"3s\" }\n"
    "      },\n"
    "      {\n"
    "        \"id\": \"pipeline\",\n"
    "        \"type\": \"supervisor\",\n"
    "        \"supervisor\": {\n"
    "          \"strategy\": \"rest_for_one\",\n"
    "          \"children\": [\n"
    "            {\n"
    "              \"id\": \"reader\",\n"
    "              \"behaviour\": \"demo_worker\",\n"
    "              \"args\": { \"interval\": \"500ms\" }\n"
    "            },\n"
    "            {\n"
    "              \"id\": \"writer\",\n"
    "              \"behaviour\": \"demo_worker\",\n"
    "              \"args\": { \"interval\": \"2s\" },\n"
    "              \"restart\": \"transient\"\n"
    "            }\n"
    "          ]\n"
    "        }\n"
    "      }\n"
    "    ]\n"
    "  }\n"
    "}\n";
/* clang-format on */

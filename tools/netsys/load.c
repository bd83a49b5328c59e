/* tools/netsys/load.c — where the program's documents come from: a file,
 * standard input ("-") or the embedded default tree; and how load errors are
 * printed. Also maps a behaviour back to the kind name a document used.
 *
 * Not for: validation itself, which is config/'s (nsys_config_load_*).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

const char *cli_source_name(const char *path)
{
    if (path == NULL)
        return CLI_DEFAULT_SOURCE;
    if (strcmp(path, "-") == 0)
        return "<stdin>";
    return path;
}

/* Reads all of standard input, at most one byte past the config limit so that
 * the loader itself reports an oversized document. */
static int read_stdin(char **out, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap);

    if (buf == NULL)
        return NSYS_ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap > NSYS_CONFIG_MAX_BYTES)
                break;
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                return NSYS_ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                return UV_EIO;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

int cli_load(const char *path, FILE *diag_out, nsys_config_t **cfg)
{
    const char *source = cli_source_name(path);
    nsys_config_diag_t *diag = NULL;
    int rc;

    *cfg = NULL;
    if (path == NULL) {
        rc = nsys_config_load_string(cli_default_document, strlen(cli_default_document), source,
                                     cfg, &diag);
    } else if (strcmp(path, "-") == 0) {
        char *text = NULL;
        size_t len = 0;
        rc = read_stdin(&text, &len);
        if (rc == 0)
            rc = nsys_config_load_string(text, len, source, cfg, &diag);
        free(text);
    } else {
        rc = nsys_config_load_file(path, cfg, &diag);
    }
    if (rc == 0 && *cfg == NULL)
        rc = NSYS_ECONFIG; /* a loader that claims success must hand a config over */
    if (rc != 0) {
        if (diag != NULL && nsys_config_diag_count(diag) > 0)
            nsys_config_diag_print(diag, source, diag_out);
        else
            fprintf(diag_out, "%s: %s\n", source, nsys_strerror(rc));
        if (*cfg != NULL)
            nsys_config_free(*cfg);
        *cfg = NULL;
    }
    if (diag != NULL)
        nsys_config_diag_free(diag);
    return rc;
}

const char *cli_kind_name(const nsys_behaviour_t *behaviour)
{
    const char **names = NULL;
    const char *found = NULL;
    size_t n = 0;

    if (behaviour == NULL)
        return "?";
    if (nsys_config_kind_names(&names, &n) == 0) {
        for (size_t i = 0; i < n && found == NULL; i++) {
            const nsys_config_kind_t *kind = nsys_config_find_kind(names[i]);
            if (kind != NULL && kind->behaviour == behaviour)
                found = kind->name;
        }
        nsys_free(names);
    }
    if (found == NULL)
        found = behaviour->name != NULL ? behaviour->name : "?";
    return found;
}

/* config/load.c — from bytes (or a file) to a parsed document: the size
 * limit before anything is read or parsed, a pre-scan that enforces the
 * nesting limit and the JSON rules cJSON is lenient about (control
 * characters, unbalanced brackets), the cJSON parse, and one syntax error
 * with a line and column when any of it fails. Not for: what the document
 * means (build.c). */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- positions -------------------------------------------------------------- */

/* 1-based line and column of byte `off`; columns count characters (UTF-8
 * sequences), as editors show them. */
static void line_col(const char *s, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0u) != 0x80u) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* ---- pre-scan --------------------------------------------------------------- */

typedef struct scan {
    bool blank;          /* nothing but whitespace */
    bool too_deep;       /* stopped: an opener at `deep_off` exceeds the limit */
    size_t deep_off;
    bool has_error;      /* the first structural error cJSON might miss */
    size_t error_off;
    char error[128];
    bool open_string;    /* the document ends inside the string at string_off */
    size_t string_off;
    int open_brackets;   /* still open at the end */
} scan_t;

static void scan_error(scan_t *sc, const char *s, size_t off, const char *what, char bad,
                       size_t opener)
{
    if (sc->has_error)
        return;
    sc->has_error = true;
    sc->error_off = off;
    if (opener != SIZE_MAX) {
        int l, c;
        line_col(s, opener, &l, &c);
        snprintf(sc->error, sizeof sc->error, "'%c' does not close the '%c' at line %d, column %d",
                 bad, s[opener], l, c);
    } else if (what != NULL) {
        snprintf(sc->error, sizeof sc->error, "%s U+%04X%s",
                 "control character", (unsigned)(unsigned char)bad, what);
    } else {
        snprintf(sc->error, sizeof sc->error, "unexpected '%c'", bad);
    }
}

static void prescan(const char *s, size_t n, scan_t *sc)
{
    size_t openers[NSYS_CONFIG_MAX_DEPTH];
    int depth = 0;
    bool in_string = false, escaped = false;
    *sc = (scan_t){.blank = true};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (in_string) {
            if (c < 0x20)
                scan_error(sc, s, i, " in a string", (char)c, SIZE_MAX);
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            continue;
        case '"':
            in_string = true;
            sc->string_off = i;
            break;
        case '{':
        case '[':
            if (depth == NSYS_CONFIG_MAX_DEPTH) {
                sc->too_deep = true;
                sc->deep_off = i;
                return;
            }
            openers[depth++] = i;
            break;
        case '}':
        case ']':
            if (depth == 0) {
                scan_error(sc, s, i, NULL, (char)c, SIZE_MAX);
            } else {
                size_t o = openers[--depth];
                if ((s[o] == '{') != (c == '}'))
                    scan_error(sc, s, i, NULL, (char)c, o);
            }
            break;
        default:
            if (c < 0x20)
                scan_error(sc, s, i, "", (char)c, SIZE_MAX);
        }
        sc->blank = false;
    }
    sc->open_string = in_string;
    sc->open_brackets = depth;
}

/* ---- syntax errors ---------------------------------------------------------- */

static void syntax_error(nsys_config_diag_t *d, const char *s, size_t off, const char *fmt_detail,
                         const char *detail)
{
    int l, c;
    line_col(s, off, &l, &c);
    nsys__diag_add(d, NSYS__DIAG_SYNTAX, "$", l, c, "invalid JSON at line %d, column %d%s%s", l, c,
                   fmt_detail, detail);
}

static void syntax_error_near(nsys_config_diag_t *d, const char *s, size_t n, size_t off)
{
    size_t end = off;
    while (end < n && end - off < 16 && s[end] != '\n' && s[end] != '\r')
        end++;
    nsys__text_t near;
    nsys__text_init(&near);
    nsys__text_quote(&near, s + off, end - off, 16);
    syntax_error(d, s, off, " near ", near.oom ? "" : near.buf);
    nsys__text_free(&near);
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Parses s[0..n) into *doc, or adds exactly one error to d. */
static int parse_document(const char *s, size_t n, nsys_config_diag_t *d, cJSON **doc)
{
    *doc = NULL;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3; /* a UTF-8 byte order mark, as some editors write */
        n -= 3;
    }
    scan_t sc;
    prescan(s, n, &sc);
    if (sc.too_deep) {
        int l, c;
        line_col(s, sc.deep_off, &l, &c);
        nsys__diag_add(d, NSYS__DIAG_SYNTAX, "$", l, c,
                       "document nests deeper than %d levels at line %d, column %d",
                       NSYS_CONFIG_MAX_DEPTH, l, c);
        return NSYS_ECONFIG;
    }
    if (sc.blank) {
        nsys__diag_add(d, NSYS__DIAG_PATH, "$", 0, 0, "document is empty");
        return NSYS_ECONFIG;
    }

    const char *end = NULL;
    cJSON *parsed = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    size_t pos = end != NULL && end >= s ? (size_t)(end - s) : 0;
    if (parsed != NULL) {
        size_t after = skip_ws(s, n, pos);
        if (sc.has_error && sc.error_off < after) {
            syntax_error(d, s, sc.error_off, ": ", sc.error);
        } else if (after < n) {
            syntax_error(d, s, after, ": ", "unexpected text after the document");
        } else {
            *doc = parsed;
            return 0;
        }
        cJSON_Delete(parsed);
        return NSYS_ECONFIG;
    }

    /* cJSON clamps a failure past the end to the last byte. */
    bool ran_out = n > 0 && pos >= n - 1;
    if (sc.has_error && sc.error_off <= pos)
        syntax_error(d, s, sc.error_off, ": ", sc.error);
    else if (sc.open_string && sc.string_off <= pos)
        syntax_error(d, s, sc.string_off, ": ", "unterminated string");
    else if (ran_out && (sc.open_brackets > 0 || sc.open_string))
        syntax_error(d, s, n, ": ", "unexpected end of document");
    else
        syntax_error_near(d, s, n, pos);
    return NSYS_ECONFIG;
}

/* ---- entry points ----------------------------------------------------------- */

static int finish(int rc, nsys_config_diag_t *d, nsys_config_diag_t **diag)
{
    if (rc == NSYS_ECONFIG && d->count == 0 && d->oom)
        rc = NSYS_ENOMEM;
    if (rc != 0 && diag != NULL) {
        nsys__diag_finish(d);
        *diag = d;
    } else {
        nsys_config_diag_free(d);
    }
    return rc;
}

static void size_error(nsys_config_diag_t *d, const char *qualifier, uint64_t n)
{
    nsys__diag_add(d, NSYS__DIAG_PATH, "$", 0, 0, "document is %s%llu bytes; the limit is %u MiB",
                   qualifier, (unsigned long long)n, NSYS_CONFIG_MAX_BYTES / (1024u * 1024u));
}

static int load_bytes(const char *json, size_t len, nsys_config_diag_t *d, nsys_config_t **out)
{
    if (len > NSYS_CONFIG_MAX_BYTES) {
        size_error(d, "", len);
        return NSYS_ECONFIG;
    }
    cJSON *doc;
    int rc = parse_document(json, len, d, &doc);
    if (rc != 0)
        return rc;
    rc = nsys__config_build(doc, d, out);
    if (rc != 0)
        cJSON_Delete(doc);
    return rc;
}

int nsys_config_load_string(const char *json, size_t len, const char *source, nsys_config_t **out,
                            nsys_config_diag_t **diag)
{
    (void)source; /* messages carry paths; the caller prints the source */
    if (diag != NULL)
        *diag = NULL;
    if (out == NULL || (json == NULL && len > 0))
        return NSYS_EINVAL;
    *out = NULL;
    nsys_config_diag_t *d = nsys__diag_new();
    if (d == NULL)
        return NSYS_ENOMEM;
    return finish(load_bytes(json != NULL ? json : "", len, d, out), d, diag);
}

static void io_error(nsys_config_diag_t *d, const char *what, const char *path, int code)
{
    nsys__text_t q;
    nsys__text_init(&q);
    nsys__text_quote(&q, path, strlen(path), 4096);
    nsys__diag_add(d, NSYS__DIAG_IO, "$", 0, 0, "cannot %s %s: %s", what, q.oom ? "file" : q.buf,
                   nsys_strerror(code));
    nsys__text_free(&q);
}

/* Reads the whole file, refusing more than the limit before reading it (a
 * regular file's size is known) or as soon as the limit is passed (pipes,
 * /dev/stdin). *buf is freed with free(). */
static int read_file(const char *path, nsys_config_diag_t *d, char **buf, size_t *len)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int rc = -errno;
        io_error(d, "open", path, rc);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        io_error(d, "read", path, rc);
        close(fd);
        return rc;
    }
    size_t cap = 64 * 1024;
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > NSYS_CONFIG_MAX_BYTES) {
            size_error(d, "", (uint64_t)st.st_size);
            close(fd);
            return NSYS_ECONFIG;
        }
        cap = (size_t)st.st_size + 1;
    }
    char *data = malloc(cap);
    size_t n = 0;
    int rc = data != NULL ? 0 : NSYS_ENOMEM;
    while (rc == 0) {
        if (n == cap) {
            /* Grow up to one byte past the limit, to see it was passed. */
            size_t grown = cap * 2 > (size_t)NSYS_CONFIG_MAX_BYTES + 1 ? NSYS_CONFIG_MAX_BYTES + 1
                                                                        : cap * 2;
            if (grown <= cap) {
                size_error(d, "over ", NSYS_CONFIG_MAX_BYTES);
                rc = NSYS_ECONFIG;
                break;
            }
            char *g = realloc(data, grown);
            if (g == NULL) {
                rc = NSYS_ENOMEM;
                break;
            }
            data = g;
            cap = grown;
        }
        ssize_t r = read(fd, data + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            io_error(d, "read", path, rc);
        } else if (r == 0) {
            break;
        } else {
            n += (size_t)r;
        }
    }
    close(fd);
    if (rc != 0) {
        free(data);
        return rc;
    }
    *buf = data;
    *len = n;
    return 0;
}

int nsys_config_load_file(const char *path, nsys_config_t **out, nsys_config_diag_t **diag)
{
    if (diag != NULL)
        *diag = NULL;
    if (path == NULL || out == NULL)
        return NSYS_EINVAL;
    *out = NULL;
    nsys_config_diag_t *d = nsys__diag_new();
    if (d == NULL)
        return NSYS_ENOMEM;
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, d, &buf, &len);
    if (rc == 0)
        rc = load_bytes(buf, len, d, out);
    free(buf);
    return finish(rc, d, diag);
}

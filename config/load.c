/* config/load.c — from bytes (or a file) to a parsed document: the size
 * limit before anything is read or parsed, a strict syntax check that also
 * enforces the nesting limit, then the cJSON parse; any failure is one error
 * with a line and column. Not for: what the document means (build.c). */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
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

/* ---- syntax check ----------------------------------------------------------- */

/* A strict RFC 8259 check that runs before cJSON, for three reasons: the
 * nesting limit must hold before a parser recurses; cJSON accepts what JSON
 * does not (control characters in strings, leading zeros, lone surrogates
 * it then mangles); and its error offsets are sometimes one byte late. The
 * checker recurses at most NSYS_CONFIG_MAX_DEPTH deep. */
typedef struct checker {
    const char *s;
    size_t n, i;
    int depth;
    bool failed;
    size_t error_off;
    char error[160];
} checker_t;

static void check_fail(checker_t *k, size_t off, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void check_fail(checker_t *k, size_t off, const char *fmt, ...)
{
    if (k->failed)
        return;
    k->failed = true;
    k->error_off = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->error, sizeof k->error, fmt, ap);
    va_end(ap);
}

/* What is at `off`, for "got ..." in messages. */
static void describe_at(const checker_t *k, size_t off, char *buf, size_t len)
{
    if (off >= k->n) {
        snprintf(buf, len, "the end of the document");
        return;
    }
    unsigned char c = (unsigned char)k->s[off];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        size_t e = off;
        while (e < k->n && e - off < 16 &&
               ((k->s[e] >= 'a' && k->s[e] <= 'z') || (k->s[e] >= 'A' && k->s[e] <= 'Z') ||
                (k->s[e] >= '0' && k->s[e] <= '9') || k->s[e] == '_'))
            e++;
        snprintf(buf, len, "'%.*s'", (int)(e - off), k->s + off);
    } else if (c >= 0x20 && c < 0x7F) {
        snprintf(buf, len, "'%c'", c);
    } else if (c >= 0x80) {
        snprintf(buf, len, "a non-ASCII character");
    } else {
        snprintf(buf, len, "control character U+%04X", c);
    }
}

static void check_expected(checker_t *k, const char *what)
{
    char got[64];
    describe_at(k, k->i, got, sizeof got);
    check_fail(k, k->i, "expected %s, got %s", what, got);
}

static void check_ws(checker_t *k)
{
    while (k->i < k->n &&
           (k->s[k->i] == ' ' || k->s[k->i] == '\t' || k->s[k->i] == '\n' || k->s[k->i] == '\r'))
        k->i++;
}

static bool is_digit(checker_t *k)
{
    return k->i < k->n && k->s[k->i] >= '0' && k->s[k->i] <= '9';
}

static int hex4(const char *p)
{
    int v = 0;
    for (int j = 0; j < 4; j++) {
        char c = p[j];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2;
        cp = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        cp = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t j = 1; j < len; j++) {
        if ((p[j] & 0xC0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (p[j] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static void check_string(checker_t *k)
{
    size_t start = k->i++;
    while (!k->failed) {
        if (k->i >= k->n) {
            check_fail(k, start, "unterminated string");
            return;
        }
        unsigned char c = (unsigned char)k->s[k->i];
        if (c == '"') {
            k->i++;
            return;
        }
        if (c < 0x20) {
            check_fail(k, k->i, "control character U+%04X in a string", c);
        } else if (c == '\\') {
            if (k->i + 1 >= k->n) {
                check_fail(k, start, "unterminated string");
                return;
            }
            char e = k->s[k->i + 1];
            if (e == 'u') {
                int cp = k->i + 6 <= k->n ? hex4(k->s + k->i + 2) : -1;
                if (cp < 0) {
                    check_fail(k, k->i, "invalid \\u escape in a string");
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    check_fail(k, k->i, "unpaired surrogate \\u%04X in a string", (unsigned)cp);
                } else if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo = k->i + 12 <= k->n && k->s[k->i + 6] == '\\' && k->s[k->i + 7] == 'u'
                                 ? hex4(k->s + k->i + 8)
                                 : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        check_fail(k, k->i, "unpaired surrogate \\u%04X in a string", (unsigned)cp);
                    k->i += 6;
                }
                k->i += 6;
            } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
                k->i += 2;
            } else {
                char what[64];
                describe_at(k, k->i + 1, what, sizeof what);
                check_fail(k, k->i, "invalid escape in a string: '\\' followed by %s", what);
            }
        } else {
            size_t len = utf8_len((const unsigned char *)k->s + k->i, k->n - k->i);
            if (len == 0)
                check_fail(k, k->i, "invalid UTF-8 in a string");
            k->i += len;
        }
    }
}

static void check_number(checker_t *k)
{
    size_t start = k->i;
    if (k->s[k->i] == '-')
        k->i++;
    if (!is_digit(k)) {
        check_fail(k, start, "invalid number");
        return;
    }
    if (k->s[k->i] == '0') {
        k->i++;
        if (is_digit(k)) {
            check_fail(k, start, "invalid number: leading zero");
            return;
        }
    } else {
        while (is_digit(k))
            k->i++;
    }
    if (k->i < k->n && k->s[k->i] == '.') {
        k->i++;
        if (!is_digit(k)) {
            check_fail(k, start, "invalid number: no digit after '.'");
            return;
        }
        while (is_digit(k))
            k->i++;
    }
    if (k->i < k->n && (k->s[k->i] == 'e' || k->s[k->i] == 'E')) {
        k->i++;
        if (k->i < k->n && (k->s[k->i] == '+' || k->s[k->i] == '-'))
            k->i++;
        if (!is_digit(k)) {
            check_fail(k, start, "invalid number: no digit in the exponent");
            return;
        }
        while (is_digit(k))
            k->i++;
    }
    /* cJSON reads at most 63 characters of a number. */
    if (k->i - start > 63)
        check_fail(k, start, "number longer than 63 characters");
}

static void check_value(checker_t *k);

static bool check_open(checker_t *k)
{
    if (k->depth == NSYS_CONFIG_MAX_DEPTH) {
        check_fail(k, k->i, "too deep");
        k->depth = -1; /* marks the limit, not a syntax error */
        return false;
    }
    k->depth++;
    k->i++;
    check_ws(k);
    return true;
}

static void check_object(checker_t *k)
{
    if (!check_open(k))
        return;
    if (k->i < k->n && k->s[k->i] == '}') {
        k->i++;
        k->depth--;
        return;
    }
    while (!k->failed) {
        if (k->i >= k->n || k->s[k->i] != '"') {
            check_expected(k, "a string key");
            return;
        }
        check_string(k);
        check_ws(k);
        if (k->failed)
            return;
        if (k->i >= k->n || k->s[k->i] != ':') {
            check_expected(k, "':' after the key");
            return;
        }
        k->i++;
        check_value(k);
        check_ws(k);
        if (k->failed)
            return;
        if (k->i < k->n && k->s[k->i] == ',') {
            k->i++;
            check_ws(k);
        } else if (k->i < k->n && k->s[k->i] == '}') {
            k->i++;
            k->depth--;
            return;
        } else {
            check_expected(k, "',' or '}'");
        }
    }
}

static void check_array(checker_t *k)
{
    if (!check_open(k))
        return;
    if (k->i < k->n && k->s[k->i] == ']') {
        k->i++;
        k->depth--;
        return;
    }
    while (!k->failed) {
        check_value(k);
        check_ws(k);
        if (k->failed)
            return;
        if (k->i < k->n && k->s[k->i] == ',') {
            k->i++;
        } else if (k->i < k->n && k->s[k->i] == ']') {
            k->i++;
            k->depth--;
            return;
        } else {
            check_expected(k, "',' or ']'");
        }
    }
}

static void check_value(checker_t *k)
{
    check_ws(k);
    if (k->i >= k->n) {
        check_expected(k, "a value");
        return;
    }
    char c = k->s[k->i];
    if (c == '{') {
        check_object(k);
    } else if (c == '[') {
        check_array(k);
    } else if (c == '"') {
        check_string(k);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        check_number(k);
    } else {
        static const char *const literals[] = {"true", "false", "null"};
        for (size_t j = 0; j < 3; j++) {
            size_t len = strlen(literals[j]);
            if (k->n - k->i >= len && memcmp(k->s + k->i, literals[j], len) == 0) {
                k->i += len;
                return;
            }
        }
        check_expected(k, "a value");
    }
}

/* ---- parsing ------------------------------------------------------------------ */

static void syntax_error(nsys_config_diag_t *d, const char *s, size_t off, const char *detail)
{
    int l, c;
    line_col(s, off, &l, &c);
    nsys__diag_add(d, NSYS__DIAG_SYNTAX, "$", l, c, "invalid JSON at line %d, column %d: %s", l, c,
                   detail);
}

/* Parses s[0..n) into *doc, or adds exactly one error to d. */
static int parse_document(const char *s, size_t n, nsys_config_diag_t *d, cJSON **doc)
{
    *doc = NULL;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3; /* a UTF-8 byte order mark, as some editors write */
        n -= 3;
    }
    checker_t k = {.s = s, .n = n};
    check_ws(&k);
    if (k.i == n) {
        nsys__diag_add(d, NSYS__DIAG_PATH, "$", 0, 0, "document is empty");
        return NSYS_ECONFIG;
    }
    check_value(&k);
    if (!k.failed) {
        check_ws(&k);
        if (k.i < n)
            check_fail(&k, k.i, "unexpected text after the document");
    }
    if (k.failed && k.depth < 0) {
        int l, c;
        line_col(s, k.error_off, &l, &c);
        nsys__diag_add(d, NSYS__DIAG_SYNTAX, "$", l, c,
                       "document nests deeper than %d levels at line %d, column %d",
                       NSYS_CONFIG_MAX_DEPTH, l, c);
        return NSYS_ECONFIG;
    }
    if (k.failed) {
        syntax_error(d, s, k.error_off, k.error);
        return NSYS_ECONFIG;
    }

    /* cJSON resets a process-wide error position on every parse, so two
     * threads loading documents at once would race on it. */
    static pthread_mutex_t cjson_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&cjson_mu);
    cJSON *parsed = cJSON_ParseWithLengthOpts(s, n, NULL, 0);
    pthread_mutex_unlock(&cjson_mu);
    if (parsed == NULL) {
        /* The check passed, so this is cJSON running out of memory. */
        return NSYS_ENOMEM;
    }
    *doc = parsed;
    return 0;
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
    if (diag != NULL)
        *diag = NULL;
    if (out == NULL || (json == NULL && len > 0))
        return NSYS_EINVAL;
    *out = NULL;
    nsys_config_diag_t *d = nsys__diag_new(source);
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
            size_t grown =
                cap * 2 > (size_t)NSYS_CONFIG_MAX_BYTES + 1 ? NSYS_CONFIG_MAX_BYTES + 1 : cap * 2;
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
    nsys_config_diag_t *d = nsys__diag_new(path);
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

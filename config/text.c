/* config/text.c — the text that error messages are made of: a growable
 * string, JSON paths, quoting of user input (escaped and shortened, so a
 * 16 MiB string never lands in a message), numbers, durations, and "did you
 * mean" suggestions, and the shared pieces of messages ("got ...", unknown
 * keys). Not for: parsing values (values.c). */
#include "config/internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nsys__text_init(nsys__text_t *t)
{
    *t = (nsys__text_t){0};
}

void nsys__text_free(nsys__text_t *t)
{
    free(t->buf);
    *t = (nsys__text_t){0};
}

static bool text_reserve(nsys__text_t *t, size_t extra)
{
    if (t->oom)
        return false;
    if (t->len + extra + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->len + extra + 1)
        cap *= 2;
    char *b = realloc(t->buf, cap);
    if (b == NULL) {
        t->oom = true;
        return false;
    }
    t->buf = b;
    t->cap = cap;
    return true;
}

void nsys__text_append(nsys__text_t *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void nsys__text_puts(nsys__text_t *t, const char *s)
{
    nsys__text_append(t, s, strlen(s));
}

void nsys__text_vprintf(nsys__text_t *t, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n >= 0 && text_reserve(t, (size_t)n)) {
        vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
        t->len += (size_t)n;
    }
}

void nsys__text_printf(nsys__text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nsys__text_vprintf(t, fmt, ap);
    va_end(ap);
}

void nsys__text_quote(nsys__text_t *t, const char *s, size_t n, size_t max)
{
    bool cut = false;
    if (n > max) {
        n = max;
        /* Never end inside a UTF-8 sequence. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
            n--;
        cut = true;
    }
    nsys__text_append(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            nsys__text_puts(t, "\\\"");
            break;
        case '\\':
            nsys__text_puts(t, "\\\\");
            break;
        case '\n':
            nsys__text_puts(t, "\\n");
            break;
        case '\r':
            nsys__text_puts(t, "\\r");
            break;
        case '\t':
            nsys__text_puts(t, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7F)
                nsys__text_printf(t, "\\u%04x", c);
            else
                nsys__text_append(t, (const char *)&s[i], 1);
        }
    }
    if (cut)
        nsys__text_puts(t, "...");
    nsys__text_append(t, "\"", 1);
}

void nsys__text_key(nsys__text_t *t, const char *key)
{
    bool plain = key[0] != '\0' && (isalpha((unsigned char)key[0]) || key[0] == '_');
    for (const char *p = key; plain && *p != '\0'; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    size_t n = strlen(key);
    if (plain && n <= 64) {
        nsys__text_append(t, ".", 1);
        nsys__text_append(t, key, n);
        return;
    }
    /* Bracket notation; the quoted form is JSON-escaped, which is also what
     * a JSONPath reader expects inside ['...'] for these characters. */
    nsys__text_t q;
    nsys__text_init(&q);
    nsys__text_quote(&q, key, n, 64);
    if (q.oom) {
        t->oom = true;
    } else {
        nsys__text_puts(t, "['");
        /* Drop the double quotes, escape single ones. */
        for (size_t i = 1; i + 1 < q.len; i++) {
            if (q.buf[i] == '\'')
                nsys__text_puts(t, "\\'");
            else
                nsys__text_append(t, &q.buf[i], 1);
        }
        nsys__text_puts(t, "']");
    }
    nsys__text_free(&q);
}

void nsys__text_number(nsys__text_t *t, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    nsys__text_puts(t, buf);
}

void nsys__text_ms(nsys__text_t *t, uint64_t ms)
{
    if (ms != 0 && ms % 3600000u == 0)
        nsys__text_printf(t, "%" PRIu64 "h", ms / 3600000u);
    else if (ms != 0 && ms % 60000u == 0)
        nsys__text_printf(t, "%" PRIu64 "m", ms / 60000u);
    else if (ms != 0 && ms % 1000u == 0)
        nsys__text_printf(t, "%" PRIu64 "s", ms / 1000u);
    else
        nsys__text_printf(t, "%" PRIu64 "ms", ms);
}

void nsys__text_size(nsys__text_t *t, uint64_t bytes)
{
    static const struct {
        const char *name;
        uint64_t factor;
    } units[] = {
        {"GiB", UINT64_C(1) << 30}, {"MiB", UINT64_C(1) << 20}, {"KiB", UINT64_C(1) << 10}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (bytes != 0 && bytes % units[i].factor == 0) {
            nsys__text_printf(t, "%" PRIu64 "%s", bytes / units[i].factor, units[i].name);
            return;
        }
    nsys__text_printf(t, "%" PRIu64 "B", bytes);
}

void nsys__text_got(nsys__text_t *t, const cJSON *item, bool as_value)
{
    nsys__text_puts(t, ", got ");
    if (cJSON_IsString(item)) {
        if (as_value)
            nsys__text_quote(t, item->valuestring, strlen(item->valuestring), 64);
        else
            nsys__text_puts(t, "a string");
    } else if (cJSON_IsNumber(item)) {
        if (as_value)
            nsys__text_number(t, item->valuedouble);
        else
            nsys__text_puts(t, "a number");
    } else if (cJSON_IsTrue(item)) {
        nsys__text_puts(t, "true");
    } else if (cJSON_IsFalse(item)) {
        nsys__text_puts(t, "false");
    } else if (cJSON_IsNull(item)) {
        nsys__text_puts(t, "null");
    } else if (cJSON_IsArray(item)) {
        nsys__text_puts(t, "an array");
    } else {
        nsys__text_puts(t, "an object");
    }
}

void nsys__text_quoted_list(nsys__text_t *t, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            nsys__text_puts(t, ", ");
        nsys__text_quote(t, names[i], strlen(names[i]), 64);
    }
}

void nsys__text_unknown_key(nsys__text_t *t, const char *key, const char *const *allowed,
                            size_t nallowed)
{
    const char *hint = nsys__config_suggest(key, allowed, nallowed);
    if (hint != NULL) {
        nsys__text_puts(t, "unknown key; did you mean ");
        nsys__text_quote(t, hint, strlen(hint), 64);
        nsys__text_puts(t, "?");
    } else {
        nsys__text_puts(t, "unknown key; expected one of ");
        nsys__text_quoted_list(t, allowed, nallowed);
    }
}

bool nsys__config_valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-') || c >= 0x80)
            return false;
        if (n >= 63)
            return false;
    }
    return n >= 1;
}

/* Only short words are compared; nobody mistypes a 65-letter key. */
#define SUGGEST_MAX_LEN 64

static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[SUGGEST_MAX_LEN + 1];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static bool equal_ignoring_case(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

const char *nsys__config_suggest(const char *word, const char *const *cands, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (equal_ignoring_case(word, cands[i]))
            return cands[i];
    size_t nw = strlen(word);
    if (nw > SUGGEST_MAX_LEN)
        return NULL;
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t nc = strlen(cands[i]);
        if (nc > SUGGEST_MAX_LEN)
            continue;
        size_t dist = edit_distance(word, nw, cands[i], nc);
        if (dist < best_d && dist < nc) {
            best = cands[i];
            best_d = dist;
        }
    }
    return best;
}

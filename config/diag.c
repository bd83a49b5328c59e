/* config/diag.c — the list of errors a document produced: adding (with a
 * cap, so a hopeless document cannot grow it without bound), reading back and
 * printing. Not for: deciding what is an error (validate.c, load.c). */
#include "config/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nsys_config_diag_t *nsys__diag_new(const char *source)
{
    nsys_config_diag_t *d = calloc(1, sizeof *d);
    if (d != NULL && source != NULL && (d->source = strdup(source)) == NULL) {
        free(d);
        d = NULL;
    }
    return d;
}

nsys_config_diag_t *nsys_config_diag_new(void)
{
    return nsys__diag_new(NULL);
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static void diag_vadd(nsys_config_diag_t *d, nsys__diag_kind_t kind, const char *path, int line,
                      int column, const char *fmt, va_list ap)
{
    if (d == NULL)
        return;
    if (d->count >= NSYS__CONFIG_MAX_ERRORS) {
        d->dropped++;
        return;
    }
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        nsys__diag_entry_t *e = realloc(d->entries, cap * sizeof *e);
        if (e == NULL) {
            d->oom = true;
            return;
        }
        d->entries = e;
        d->cap = cap;
    }
    char *p = strdup(path != NULL ? path : "$");
    char *m = vformat(fmt, ap);
    if (p == NULL || m == NULL) {
        free(p);
        free(m);
        d->oom = true;
        return;
    }
    d->entries[d->count++] =
        (nsys__diag_entry_t){.path = p, .message = m, .line = line, .column = column, .kind = kind};
}

void nsys__diag_add(nsys_config_diag_t *d, nsys__diag_kind_t kind, const char *path, int line,
                    int column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, kind, path, line, column, fmt, ap);
    va_end(ap);
}

void nsys_config_error(nsys_config_diag_t *d, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, NSYS__DIAG_PATH, path, 0, 0, fmt, ap);
    va_end(ap);
}

void nsys__diag_finish(nsys_config_diag_t *d)
{
    if (d == NULL || d->dropped == 0)
        return;
    size_t dropped = d->dropped;
    /* One slot over the cap, for the summary only. */
    d->count--;
    nsys__diag_entry_t last = d->entries[d->count];
    nsys__diag_add(d, NSYS__DIAG_PATH, "$", 0, 0, "%zu more errors not shown (stopped after %d)",
                   dropped + 1, NSYS__CONFIG_MAX_ERRORS - 1);
    free(last.path);
    free(last.message);
    d->dropped = 0;
}

size_t nsys_config_diag_count(const nsys_config_diag_t *d)
{
    return d != NULL ? d->count : 0;
}

static const nsys__diag_entry_t *entry(const nsys_config_diag_t *d, size_t i)
{
    return d != NULL && i < d->count ? &d->entries[i] : NULL;
}

const char *nsys_config_diag_path(const nsys_config_diag_t *d, size_t i)
{
    const nsys__diag_entry_t *e = entry(d, i);
    return e != NULL ? e->path : NULL;
}

const char *nsys_config_diag_message(const nsys_config_diag_t *d, size_t i)
{
    const nsys__diag_entry_t *e = entry(d, i);
    return e != NULL ? e->message : NULL;
}

int nsys_config_diag_line(const nsys_config_diag_t *d, size_t i)
{
    const nsys__diag_entry_t *e = entry(d, i);
    return e != NULL ? e->line : 0;
}

int nsys_config_diag_column(const nsys_config_diag_t *d, size_t i)
{
    const nsys__diag_entry_t *e = entry(d, i);
    return e != NULL ? e->column : 0;
}

void nsys_config_diag_print(const nsys_config_diag_t *d, const char *source, FILE *out)
{
    if (d == NULL)
        return;
    if (out == NULL)
        out = stderr;
    if (source == NULL)
        source = d->source != NULL ? d->source : "<config>";
    for (size_t i = 0; i < d->count; i++) {
        const nsys__diag_entry_t *e = &d->entries[i];
        if (e->kind == NSYS__DIAG_IO)
            fprintf(out, "%s: %s\n", source, e->message);
        else if (e->line > 0)
            fprintf(out, "%s:%d:%d: %s\n", source, e->line, e->column, e->message);
        else
            fprintf(out, "%s: %s: %s\n", source, e->path, e->message);
    }
    if (d->oom)
        fprintf(out, "%s: (some errors were lost: out of memory)\n", source);
}

void nsys_config_diag_free(nsys_config_diag_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->entries[i].path);
        free(d->entries[i].message);
    }
    free(d->entries);
    free(d->source);
    free(d);
}

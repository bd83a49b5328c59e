/* config/values.c — the one textual form of durations ("250ms", "5s") and
 * sizes ("64KiB") used everywhere in documents: "<integer><unit>", no sign,
 * no fraction, no spaces. Not for: range checks (the caller knows the range). */
#include "config/internal.h"

#include <string.h>

typedef struct unit {
    const char *name;
    uint64_t factor;
} unit_t;

/* Splits "<digits><unit>" and multiplies; the unit must match exactly. A
 * factor of 0 marks the "us" unit of parse_duration: divide by 1000, rounding
 * up. */
static int parse_with_units(const char *text, const unit_t *units, size_t nunits, uint64_t *out)
{
    if (text == NULL || out == NULL)
        return NSYS_EINVAL;
    size_t ndigits = 0;
    while (text[ndigits] >= '0' && text[ndigits] <= '9')
        ndigits++;
    if (ndigits == 0)
        return NSYS_EINVAL;
    const char *suffix = text + ndigits;
    const unit_t *u = NULL;
    for (size_t i = 0; i < nunits; i++)
        if (strcmp(suffix, units[i].name) == 0)
            u = &units[i];
    if (u == NULL)
        return NSYS_EINVAL;
    uint64_t n = 0;
    for (size_t i = 0; i < ndigits; i++) {
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (n > (UINT64_MAX - digit) / 10u)
            return NSYS_ERANGE;
        n = n * 10u + digit;
    }
    if (u->factor == 0) {
        *out = n / 1000u + (n % 1000u != 0);
        return 0;
    }
    if (n > UINT64_MAX / u->factor)
        return NSYS_ERANGE;
    *out = n * u->factor;
    return 0;
}

int nsys_config_parse_duration(const char *text, uint64_t *ms)
{
    static const unit_t units[] = {{"us", 0}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    return parse_with_units(text, units, sizeof units / sizeof units[0], ms);
}

int nsys_config_parse_duration_us(const char *text, uint64_t *us)
{
    static const unit_t units[] = {{"us", 1},
                                   {"ms", 1000},
                                   {"s", 1000000},
                                   {"m", UINT64_C(60000000)},
                                   {"h", UINT64_C(3600000000)}};
    return parse_with_units(text, units, sizeof units / sizeof units[0], us);
}

int nsys_config_parse_size(const char *text, uint64_t *bytes)
{
    static const unit_t units[] = {
        {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", UINT64_C(1024) * 1024 * 1024}};
    return parse_with_units(text, units, sizeof units / sizeof units[0], bytes);
}

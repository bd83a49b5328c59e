/* runtime/error.c — nsys_strerror / nsys_errname: static text for every
 * code netsys can return. libuv's own table answers for system codes; we never
 * call uv_strerror on an unknown code because it allocates (and leaks). */
#include <netsys/error.h>

#include <stddef.h>

typedef struct code_text {
    int code;
    const char *name;
    const char *text;
} code_text_t;

static const code_text_t netsys_codes[] = {
    {NSYS_REASON_NORMAL, "normal", "normal exit"},
    {NSYS_ENOACTOR, "NSYS_ENOACTOR", "no such actor (it exited or never existed)"},
    {NSYS_ESTOPPED, "NSYS_ESTOPPED", "the runtime is stopped"},
    {NSYS_ESHUTDOWN, "NSYS_ESHUTDOWN", "shut down"},
    {NSYS_EKILLED, "NSYS_EKILLED", "killed"},
    {NSYS_ENAMETAKEN, "NSYS_ENAMETAKEN", "name already registered to another actor"},
    {NSYS_EHASNAME, "NSYS_EHASNAME", "actor already has a registered name"},
    {NSYS_ENOTACTOR, "NSYS_ENOTACTOR", "operation needs a calling actor"},
    {NSYS_ECONFIG, "NSYS_ECONFIG", "invalid configuration"},
    {NSYS_EFAILED, "NSYS_EFAILED", "actor failed"},
    {NSYS_ETOOMANY, "NSYS_ETOOMANY", "too many actors (the actor table is full; raise max_actors)"},
    {NSYS_EGAVEUP, "NSYS_EGAVEUP", "supervisor gave up (restart intensity exceeded)"},
};

static const code_text_t *find_netsys(int code)
{
    for (size_t i = 0; i < sizeof netsys_codes / sizeof netsys_codes[0]; i++)
        if (netsys_codes[i].code == code)
            return &netsys_codes[i];
    return NULL;
}

const char *nsys_strerror(int code)
{
    const code_text_t *c = find_netsys(code);
    if (c != NULL)
        return c->text;
    switch (code) {
#define NSYS__UV_TEXT(name, text)                                                                  \
    case UV_##name:                                                                                \
        return text;
        UV_ERRNO_MAP(NSYS__UV_TEXT)
#undef NSYS__UV_TEXT
    default:
        return "unknown error";
    }
}

const char *nsys_errname(int code)
{
    const code_text_t *c = find_netsys(code);
    if (c != NULL)
        return c->name;
    switch (code) {
#define NSYS__UV_NAME(name, text)                                                                  \
    case UV_##name:                                                                                \
        return #name;
        UV_ERRNO_MAP(NSYS__UV_NAME)
#undef NSYS__UV_NAME
    default:
        return "UNKNOWN";
    }
}

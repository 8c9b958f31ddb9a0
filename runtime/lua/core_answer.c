/* jobrt.core: the answer to a submit as JSON text, built from what was
 * written (the stored attrs and task specs, which are JSON already, and the
 * columns) without a Lua table in between: the same document as encoding
 * the job get() reads back right after the submit. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/core_internal.h"

/* Output into a buffer sized beforehand (answer_size): no reallocation. */
struct text {
    char *p;
    size_t n;
};

static void put(struct text *t, const char *s, size_t n)
{
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

static void puts_(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* A JSON string: at most 6 bytes out for each byte in, plus the quotes. */
static void put_string(struct text *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    t->p[t->n++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\') {
            t->p[t->n++] = (char)c;
            continue;
        }
        t->p[t->n++] = '\\';
        switch (c) {
        case '"': t->p[t->n++] = '"'; break;
        case '\\': t->p[t->n++] = '\\'; break;
        case '\n': t->p[t->n++] = 'n'; break;
        case '\r': t->p[t->n++] = 'r'; break;
        case '\t': t->p[t->n++] = 't'; break;
        case '\b': t->p[t->n++] = 'b'; break;
        case '\f': t->p[t->n++] = 'f'; break;
        default:
            put(t, "u00", 3);
            t->p[t->n++] = hex[c >> 4];
            t->p[t->n++] = hex[c & 15];
        }
    }
    t->p[t->n++] = '"';
}

static size_t string_size(const char *s)
{
    return 6 * (s ? strlen(s) : 0) + 2;
}

/* ,"key": */
static void put_key(struct text *t, const char *key)
{
    t->p[t->n++] = ',';
    t->p[t->n++] = '"';
    puts_(t, key);
    put(t, "\":", 2);
}

/* An integer's digits, without printf (a few per task). */
static void put_num(struct text *t, int64_t v)
{
    uint64_t u = v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v;
    char tmp[24], *p = tmp + sizeof tmp;

    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        *--p = '-';
    put(t, p, (size_t)(tmp + sizeof tmp - p));
}

static void put_int(struct text *t, const char *key, int64_t v)
{
    put_key(t, key);
    put_num(t, v);
}

/* As the encoder writes a float: the shortest of 14 to 17 digits that
 * reads back the same. */
static void put_float(struct text *t, const char *key, double v)
{
    char num[40];

    for (int digits = 14; digits <= 17; digits++) {
        snprintf(num, sizeof num, "%.*g", digits, v);
        if (strtod(num, NULL) == v)
            break;
    }
    put_key(t, key);
    puts_(t, num);
}

/* The end of the JSON value starting at s (text our encoder wrote). */
static const char *skip_value(const char *s)
{
    int depth = 0;

    do {
        if (*s == '"') {
            for (s++; *s && *s != '"'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (*s)
                s++;
        } else if (*s == '{' || *s == '[') {
            depth++;
            s++;
        } else if (*s == '}' || *s == ']') {
            depth--;
            s++;
        } else if (depth > 0 && (*s == ',' || *s == ':')) {
            s++;
        } else {
            while (*s && *s != ',' && *s != ':' && *s != '}' && *s != ']' && *s != '"')
                s++;
        }
    } while (*s && depth > 0);
    return s;
}

/* The members of the object text obj, without those named in skip (a
 * NULL-ended list), each written after a comma. Returns how many. */
static int put_members(struct text *t, const char *obj, const char *const *skip)
{
    const char *s = obj ? strchr(obj, '{') : NULL;
    int n = 0;

    if (!s)
        return 0;
    for (s++; *s && *s != '}';) {
        const char *start = s, *key = s + 1, *end;
        size_t klen;
        int keep = 1;

        if (*s != '"')
            break;
        end = skip_value(s);
        klen = (size_t)(end - key - 1);
        for (size_t i = 0; keep && skip[i]; i++)
            keep = !(strlen(skip[i]) == klen && memcmp(skip[i], key, klen) == 0);
        if (*end == ':')
            end = skip_value(end + 1);
        if (keep) {
            t->p[t->n++] = ',';
            put(t, start, (size_t)(end - start));
            n++;
        }
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static const char *const job_written[] = {
    "id", "surface", "owner", "state", "priority", "max_parallelism", "created_at",
    "updated_at", "tasks", "waiting", NULL
};

static const char HELD[] = "{\"reason\":\"Held\",\"message\":\"not started yet\"}";

/* An upper bound of the answer's size. */
static size_t answer_size(const struct jr_job_spec *spec, const char *id)
{
    size_t n = 512 + (spec->attrs ? strlen(spec->attrs) : 0) + string_size(id) +
               string_size(spec->surface) + string_size(spec->owner);

    for (size_t i = 0; i < spec->ntasks; i++) {
        const struct jr_task_spec *t = &spec->tasks[i];
        n += 512 + sizeof HELD + (t->spec ? strlen(t->spec) : 0) + string_size(t->alias) +
             string_size(t->group);
        for (size_t k = 0; k < t->ndeps; k++)
            n += string_size(t->deps[k]) + 1;
    }
    return n;
}

static void put_task(struct text *t, const struct jr_task_spec *ts)
{
    const char *skip[12] = { "alias", "deps", "state", "priority", "tolerable", "retries",
                             "attempt", "resources", "waiting", NULL, NULL, NULL };
    size_t k = 9, open = t->n;

    if (ts->group)
        skip[k++] = "group";
    if (ts->timeout_ms)
        skip[k++] = "timeout";
    put_members(t, ts->spec, skip);
    put_key(t, "alias");
    put_string(t, ts->alias);
    if (ts->group) {
        put_key(t, "group");
        put_string(t, ts->group);
    }
    put_key(t, "deps");
    t->p[t->n++] = '[';
    for (k = 0; k < ts->ndeps; k++) {
        if (k)
            t->p[t->n++] = ',';
        put_string(t, ts->deps[k]);
    }
    t->p[t->n++] = ']';
    put_key(t, "state");
    puts_(t, "\"pending\"");
    put_int(t, "priority", ts->priority);
    put_key(t, "tolerable");
    puts_(t, ts->tolerable ? "true" : "false");
    put_int(t, "retries", ts->retries);
    put_int(t, "attempt", 0);
    put_key(t, "resources");
    size_t mark = t->n;
    put_int(t, "cpu", ts->cpu);
    put_int(t, "memory", ts->memory);
    put_int(t, "gpu", ts->gpu);
    put_int(t, "disk", ts->disk);
    t->p[mark] = '{';
    t->p[t->n++] = '}';
    if (ts->timeout_ms)
        put_float(t, "timeout", (double)ts->timeout_ms / 1000);
    put_key(t, "waiting");
    puts_(t, HELD);
    /* the object opens where its first member's comma was written */
    t->p[open] = '{';
    t->p[t->n++] = '}';
}

void jr_lcore_push_submitted_json(lua_State *L, struct core *c, const struct jr_job_spec *spec,
                                  const char *id)
{
    size_t size = answer_size(spec, id);
    /* the core's buffer, kept for the next answer: a userdata of this size
     * per submit was a large allocation for malloc and the collector */
    if (c->answer_cap < size) {
        char *p = realloc(c->answer, size);
        if (!p)
            luaL_error(L, "not enough memory");
        c->answer = p;
        c->answer_cap = size;
    }
    struct text t = { c->answer, 0 };
    char when[40];

    put_members(&t, spec->attrs, job_written);
    put_key(&t, "id");
    put_string(&t, id);
    put_key(&t, "surface");
    put_string(&t, spec->surface ? spec->surface : "");
    put_key(&t, "owner");
    put_string(&t, spec->owner ? spec->owner : "");
    put_key(&t, "state");
    puts_(&t, "\"created\"");
    put_int(&t, "priority", spec->priority);
    put_int(&t, "max_parallelism", spec->max_parallelism);
    jr_store_format_time(spec->created_at, when);
    put_key(&t, "created_at");
    put_string(&t, when);
    put_key(&t, "updated_at");
    put_string(&t, when);
    put_key(&t, "tasks");
    t.p[t.n++] = '[';
    for (size_t i = 0; i < spec->ntasks; i++) {
        if (i)
            t.p[t.n++] = ',';
        put_task(&t, &spec->tasks[i]);
    }
    t.p[t.n++] = ']';
    put_key(&t, "waiting");
    puts_(&t, HELD);
    t.p[0] = '{';
    t.p[t.n++] = '}';
    lua_pushlstring(L, t.p, t.n);
}

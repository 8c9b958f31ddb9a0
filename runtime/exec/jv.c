/* The executor's JSON reader (see jv.h): recursive descent with a depth
 * limit, nodes chained for one free. */
#include <stdlib.h>
#include <string.h>

#include "exec/jv.h"

#define MAX_DEPTH 64

struct rd {
    const char *p, *end;
    struct jr_jv *chain;
    int depth;
};

static struct jr_jv *node(struct rd *r, int type)
{
    struct jr_jv *v = calloc(1, sizeof *v);

    if (v) {
        v->type = type;
        v->all = r->chain;
        r->chain = v;
    }
    return v;
}

static void ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned c)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3f)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | c >> 12); o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f)); return 3;
    }
    o[0] = (char)(0xf0 | c >> 18); o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f)); o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* At the opening quote: a malloc'ed decoded copy, its length in *len. */
static char *string(struct rd *r, size_t *len)
{
    const char *p = ++r->p;
    char *out, *o;

    while (p < r->end && *p != '"')
        p += *p == '\\' ? 2 : 1;
    if (p >= r->end)
        return NULL;
    out = o = malloc((size_t)(p - r->p) + 1);
    if (!out)
        return NULL;
    while (r->p < p) {
        char c = *r->p++;
        unsigned u, lo;
        if ((unsigned char)c < 0x20)
            goto bad;
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        c = *r->p++;
        switch (c) {
        case '"': case '\\': case '/': *o++ = c; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (p - r->p < 4 || hex4(r->p, &u))
                goto bad;
            r->p += 4;
            if (u >= 0xd800 && u < 0xdc00 && p - r->p >= 6 && r->p[0] == '\\' &&
                r->p[1] == 'u' && hex4(r->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                r->p += 6;
            }
            if (u == 0)
                goto bad;     /* no NULs inside C strings */
            o += put_utf8(o, u);
            break;
        default:
            goto bad;
        }
    }
    r->p = p + 1;
    *o = 0;
    *len = (size_t)(o - out);
    return out;
bad:
    free(out);
    return NULL;
}

static struct jr_jv *value(struct rd *r);

static struct jr_jv *container(struct rd *r, int type)
{
    struct jr_jv *v = node(r, type), **tail;
    char close = type == JR_JV_ARR ? ']' : '}';

    if (!v || ++r->depth > MAX_DEPTH)
        return NULL;
    tail = &v->child;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return v;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        struct jr_jv *k;
        ws(r);
        if (type == JR_JV_OBJ) {
            if (r->p >= r->end || *r->p != '"' || !(key = string(r, &klen)))
                return NULL;
            ws(r);
            if (r->p >= r->end || *r->p != ':') {
                free(key);
                return NULL;
            }
            r->p++;
        }
        k = value(r);
        if (!k) {
            free(key);
            return NULL;
        }
        k->key = key;
        *tail = k;
        tail = &k->next;
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            r->depth--;
            return v;
        }
        return NULL;
    }
}

static struct jr_jv *value(struct rd *r)
{
    struct jr_jv *v;
    char *end;

    ws(r);
    if (r->p >= r->end)
        return NULL;
    switch (*r->p) {
    case '{': return container(r, JR_JV_OBJ);
    case '[': return container(r, JR_JV_ARR);
    case '"':
        if (!(v = node(r, JR_JV_STR)))
            return NULL;
        v->str = string(r, &v->len);
        return v->str ? v : NULL;
    case 't': case 'f': case 'n': {
        static const char *const words[] = { "true", "false", "null" };
        int i;
        for (i = 0; i < 3; i++) {
            size_t n = strlen(words[i]);
            if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i], n) == 0) {
                r->p += n;
                if (!(v = node(r, i == 2 ? JR_JV_NULL : JR_JV_BOOL)))
                    return NULL;
                v->boolean = i == 0;
                return v;
            }
        }
        return NULL;
    }
    default:
        if (!(v = node(r, JR_JV_NUM)))
            return NULL;
        {
            char buf[64];
            size_t n = 0;
            while (r->p + n < r->end && n < sizeof buf - 1 &&
                   strchr("+-0123456789.eE", r->p[n]))
                n++;
            memcpy(buf, r->p, n);
            buf[n] = 0;
            v->num = strtod(buf, &end);
            if (n == 0 || end != buf + n)
                return NULL;
            r->p += n;
        }
        return v;
    }
}

void jr_jv_free(struct jr_jv *v)
{
    while (v) {
        struct jr_jv *next = v->all;
        free(v->str);
        free(v->key);
        free(v);
        v = next;
    }
}

struct jr_jv *jr_jv_parse(const char *text, size_t len)
{
    struct rd r = { text, text + len, NULL, 0 };
    struct jr_jv *v = value(&r);

    ws(&r);
    if (!v || r.p != r.end) {
        jr_jv_free(r.chain);
        return NULL;
    }
    /* The root must head the allocation chain for jr_jv_free(root). */
    if (r.chain != v) {
        struct jr_jv *p = r.chain;
        while (p->all != v)
            p = p->all;
        p->all = v->all;
        v->all = r.chain;
    }
    return v;
}

const struct jr_jv *jr_jv_get(const struct jr_jv *obj, const char *key)
{
    const struct jr_jv *k;

    if (!obj || obj->type != JR_JV_OBJ)
        return NULL;
    for (k = obj->child; k; k = k->next)
        if (strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

const char *jr_jv_str(const struct jr_jv *obj, const char *key)
{
    const struct jr_jv *v = jr_jv_get(obj, key);

    return v && v->type == JR_JV_STR ? v->str : NULL;
}

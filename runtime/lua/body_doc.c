/* The native submit's JSON reader (body_doc.h): recursive descent into the
 * caller's node array, with json_decode.c's grammar, whitespace and number
 * rules, refusing what its one pass does not take (see the header). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua/body_doc.h"

#define DEPTH_MAX 32

struct rd {
    const char *s;
    size_t len, pos;
    struct jr_doc_node *nodes;
    int n, cap;
};

static void space(struct rd *r)
{
    while (r->pos < r->len) {
        char c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

static int new_node(struct rd *r, int type)
{
    if (r->n >= r->cap)
        return -1;
    struct jr_doc_node *v = &r->nodes[r->n];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->child = v->next = -1;
    return r->n++;
}

/* The bytes of the string at pos (its opening quote): no escapes, no
 * control or DEL bytes. */
static int string(struct rd *r, const char **s, size_t *len)
{
    size_t start = ++r->pos;

    for (; r->pos < r->len; r->pos++) {
        unsigned char c = (unsigned char)r->s[r->pos];
        if (c == '"') {
            *s = r->s + start;
            *len = r->pos - start;
            r->pos++;
            return 0;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return -1;
    }
    return -1;
}

static int digit(struct rd *r, size_t i)
{
    return i < r->len && r->s[i] >= '0' && r->s[i] <= '9';
}

static int number(struct rd *r, struct jr_doc_node *v)
{
    size_t start = r->pos, i = r->pos;
    int whole = 1, neg = 0;

    if (i < r->len && r->s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < r->len && r->s[i] == '0')
        i++;
    else if (digit(r, i))
        while (digit(r, i))
            i++;
    else
        return -1;
    if (i < r->len && r->s[i] == '.') {
        if (!digit(r, i + 1))
            return -1;
        for (i++; digit(r, i); i++)
            ;
        whole = 0;
    }
    if (i < r->len && (r->s[i] == 'e' || r->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < r->len && (r->s[j] == '-' || r->s[j] == '+'))
            j++;
        if (!digit(r, j))
            return -1;
        while (digit(r, j))
            j++;
        i = j;
        whole = 0;
    }
    r->pos = i;
    if (whole) {
        uint64_t u = 0;
        for (size_t k = start + (size_t)neg; k < i; k++) {
            unsigned d = (unsigned)(r->s[k] - '0');
            if (u > (UINT64_MAX - d) / 10)
                return -1;
            u = u * 10 + d;
        }
        if (u > (uint64_t)INT64_MAX + (uint64_t)neg)
            return -1;
        v->type = JR_DOC_INT;
        v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
        return 0;
    }
    char text[64];
    if (i - start >= sizeof text)
        return -1;
    memcpy(text, r->s + start, i - start);
    text[i - start] = 0;
    double f = strtod(text, NULL);
    /* as the decoder: whole numbers within 2^53 are integers */
    if (f == floor(f) && f > -9007199254740992.0 && f < 9007199254740992.0) {
        v->type = JR_DOC_INT;
        v->i = (int64_t)f;
    } else {
        if (isinf(f) || isnan(f))
            return -1;
        v->type = JR_DOC_FLOAT;
        v->f = f;
    }
    return 0;
}

static int literal(struct rd *r, const char *word)
{
    size_t n = strlen(word);

    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
        return -1;
    r->pos += n;
    return 0;
}

static int value(struct rd *r, int depth);

/* The children of the array or object node at, up to close. */
static int children(struct rd *r, int at, char close, int depth)
{
    int last = -1, is_obj = close == '}';

    r->pos++;
    space(r);
    if (r->pos < r->len && r->s[r->pos] == close) {
        r->pos++;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        space(r);
        if (is_obj) {
            if (r->pos >= r->len || r->s[r->pos] != '"' || string(r, &key, &key_len))
                return -1;
            space(r);
            if (r->pos >= r->len || r->s[r->pos] != ':')
                return -1;
            r->pos++;
        }
        int v = value(r, depth);
        if (v < 0)
            return -1;
        r->nodes[v].key = key;
        r->nodes[v].key_len = key_len;
        if (last < 0)
            r->nodes[at].child = v;
        else
            r->nodes[last].next = v;
        last = v;
        r->nodes[at].n++;
        space(r);
        char c = r->pos < r->len ? r->s[r->pos] : 0;
        r->pos++;
        if (c == close)
            return 0;
        if (c != ',')
            return -1;
    }
}

static int value(struct rd *r, int depth)
{
    space(r);
    if (r->pos >= r->len)
        return -1;
    char c = r->s[r->pos];
    int v;
    if (c == '{' || c == '[') {
        if (depth >= DEPTH_MAX || (v = new_node(r, c == '{' ? JR_DOC_OBJ : JR_DOC_ARR)) < 0)
            return -1;
        return children(r, v, c == '{' ? '}' : ']', depth + 1) ? -1 : v;
    }
    if ((v = new_node(r, JR_DOC_NULL)) < 0)
        return -1;
    struct jr_doc_node *n = &r->nodes[v];
    int rc;
    if (c == '"') {
        n->type = JR_DOC_STR;
        rc = string(r, &n->s, &n->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        rc = number(r, n);
    } else if (c == 't') {
        n->type = JR_DOC_TRUE;
        rc = literal(r, "true");
    } else if (c == 'f') {
        n->type = JR_DOC_FALSE;
        rc = literal(r, "false");
    } else if (c == 'n') {
        rc = literal(r, "null");
    } else {
        rc = -1;
    }
    return rc ? -1 : v;
}

int jr_doc_read(const char *text, size_t len, struct jr_doc_node *nodes, int cap)
{
    struct rd r = { text, len, 0, nodes, 0, cap };

    if (value(&r, 0) != 0)
        return -1;
    space(&r);
    return r.pos == r.len ? r.n : -1;
}

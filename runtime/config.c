/* libyaml's event stream -> a tree of jr_yaml_node, keeping the line of every
 * node so that configuration errors can say FILE:LINE. Plain scalars are
 * resolved per the YAML 1.2 core schema; the tree holds no libyaml state. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define TAG_PREFIX "tag:yaml.org,2002:"
/* How much of a key or tag an error message quotes. */
#define QUOTE_MAX 60

struct parse {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *name;
    char *err;
    size_t errlen;
};

static int parse_node(struct parse *p, yaml_event_t *ev, int depth,
                      struct jr_yaml_node *out);

static int fail(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parse *p, int line, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int line_of_offset(const struct parse *p, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < p->len; i++)
        if (p->text[i] == '\n')
            line++;
    return line;
}

/* Turns libyaml's error state into our one message format. */
static int parser_error(struct parse *p)
{
    const yaml_parser_t *y = &p->parser;
    const char *problem = y->problem ? y->problem : "unknown error";

    switch (y->error) {
    case YAML_MEMORY_ERROR:
        return fail(p, 1, "out of memory");
    case YAML_READER_ERROR:
        if (y->problem_value != -1)
            return fail(p, line_of_offset(p, y->problem_offset),
                        "%s (#%X)", problem, (unsigned)y->problem_value);
        return fail(p, line_of_offset(p, y->problem_offset), "%s", problem);
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR: {
        int line = (int)y->problem_mark.line + 1;
        int context_line = (int)y->context_mark.line + 1;
        size_t at = y->problem_mark.index;
        /* At end of input libyaml counts a line past the last one. */
        if (at >= p->len) {
            int last = line_of_offset(p, p->len ? p->len - 1 : 0);
            line = line < last ? line : last;
            context_line = context_line < last ? context_line : last;
        }
        /* The most common YAML mistake gets named. */
        const char *hint = at < p->len && p->text[at] == '\t'
                               ? " (tabs cannot indent YAML)" : "";
        if (y->context && context_line != line)
            return fail(p, line, "%s (%s at line %d)%s", problem, y->context,
                        context_line, hint);
        if (y->context)
            return fail(p, line, "%s (%s)%s", problem, y->context, hint);
        return fail(p, line, "%s%s", problem, hint);
    }
    default:
        return fail(p, 1, "%s", problem);
    }
}

static int next_event(struct parse *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->parser, ev))
        return parser_error(p);
    return 0;
}

static int event_line(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

static int copy_string(struct parse *p, int line, const char *s, size_t len,
                       struct jr_yaml_node *out)
{
    out->str = malloc(len + 1);
    if (!out->str)
        return fail(p, line, "out of memory");
    memcpy(out->str, s, len);
    out->str[len] = '\0';
    out->len = len;
    out->type = JR_YAML_STRING;
    return 0;
}

/* Moves *child into parent's items; on failure the child stays the caller's. */
static int append(struct parse *p, struct jr_yaml_node *parent,
                  struct jr_yaml_node *child)
{
    if (parent->count == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct jr_yaml_node *items = realloc(parent->items, cap * sizeof(*items));
        if (!items)
            return fail(p, child->line, "out of memory");
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->count++] = *child;
    memset(child, 0, sizeof(*child));
    return 0;
}

static int all_in(const char *s, size_t len, const char *set)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr(set, s[i]))
            return 0;
    return 1;
}

static int is_one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return 1;
    return 0;
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static int is_float_text(const char *s)
{
    size_t digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    while (*s >= '0' && *s <= '9')
        s++, digits++;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++, digits++;
    }
    if (digits == 0)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

enum want { WANT_ANY, WANT_NULL, WANT_BOOL, WANT_INT, WANT_FLOAT };

/* Resolves a plain scalar's text. Returns 1 if it took a non-string type
 * allowed by want, 0 if it did not match, -1 on an integer overflow. */
static int resolve(const char *s, size_t len, enum want want,
                   struct jr_yaml_node *out)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", 0};
    static const char *const trues[] = {"true", "True", "TRUE", 0};
    static const char *const falses[] = {"false", "False", "FALSE", 0};
    static const char *const infs[] = {".inf", ".Inf", ".INF", 0};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", 0};

    if (strlen(s) != len) /* an embedded NUL can only be a string */
        return 0;
    if ((want == WANT_ANY || want == WANT_NULL) && is_one_of(s, nulls)) {
        out->type = JR_YAML_NULL;
        return 1;
    }
    if (want == WANT_ANY || want == WANT_BOOL) {
        if (is_one_of(s, trues) || is_one_of(s, falses)) {
            out->type = JR_YAML_BOOL;
            out->boolean = is_one_of(s, trues);
            return 1;
        }
    }
    if (want == WANT_ANY || want == WANT_INT) {
        const char *body = s + (*s == '-' || *s == '+');
        int base = 0;
        if (all_in(body, strlen(body), "0123456789"))
            base = 10, body = s;
        else if (s[0] == '0' && s[1] == 'o' && all_in(s + 2, len - 2, "01234567"))
            base = 8, body = s + 2;
        else if (s[0] == '0' && s[1] == 'x' &&
                 all_in(s + 2, len - 2, "0123456789abcdefABCDEF"))
            base = 16, body = s + 2;
        if (base) {
            errno = 0;
            /* strtoull for 8 and 16: they carry no sign, and anything
             * above LLONG_MAX is out of range for a Lua integer. */
            if (base == 10) {
                out->integer = strtoll(body, NULL, 10);
            } else {
                unsigned long long u = strtoull(body, NULL, base);
                if (u > (unsigned long long)LLONG_MAX)
                    errno = ERANGE;
                out->integer = (long long)u;
            }
            if (errno == ERANGE)
                return -1;
            out->type = JR_YAML_INT;
            return 1;
        }
    }
    if (want == WANT_ANY || want == WANT_FLOAT) {
        const char *body = s + (*s == '-' || *s == '+');
        if (is_one_of(body, infs)) {
            out->type = JR_YAML_FLOAT;
            out->number = *s == '-' ? -HUGE_VAL : HUGE_VAL;
            return 1;
        }
        if (is_one_of(s, nans)) {
            out->type = JR_YAML_FLOAT;
            out->number = NAN;
            return 1;
        }
        if (is_float_text(s)) {
            out->type = JR_YAML_FLOAT;
            out->number = strtod(s, NULL);
            return 1;
        }
    }
    return 0;
}

/* Which types a scalar may take: plain ones resolve freely, quoted ones are
 * strings, and a core tag (!!int, ...) demands its type. */
static int scalar_want(struct parse *p, const yaml_event_t *ev, int line,
                       enum want *want, const char **type)
{
    static const struct { const char *name; enum want want; } tags[] = {
        {"null", WANT_NULL}, {"bool", WANT_BOOL},
        {"int", WANT_INT},   {"float", WANT_FLOAT},
    };
    const char *tag = (const char *)ev->data.scalar.tag;
    size_t prefix = strlen(TAG_PREFIX);

    *type = NULL;
    *want = WANT_ANY;
    if (!tag)
        return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (strcmp(tag, "!") == 0 ||
        (strncmp(tag, TAG_PREFIX, prefix) == 0 && strcmp(tag + prefix, "str") == 0))
        return 0;
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        if (strncmp(tag, TAG_PREFIX, prefix) == 0 &&
            strcmp(tag + prefix, tags[i].name) == 0) {
            *want = tags[i].want;
            *type = tags[i].name;
            return 1;
        }
    }
    return fail(p, line, "unsupported tag %.*s", QUOTE_MAX, tag);
}

static int parse_scalar(struct parse *p, const yaml_event_t *ev,
                        struct jr_yaml_node *out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *type;
    enum want want;
    int rc = scalar_want(p, ev, out->line, &want, &type);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return copy_string(p, out->line, s, len, out);
    rc = resolve(s, len, want, out);
    if (rc < 0)
        return fail(p, out->line, "integer out of range: %.*s", QUOTE_MAX, s);
    if (rc == 0 && type)
        return fail(p, out->line, "not a valid !!%s: \"%.*s\"", type,
                    QUOTE_MAX, s);
    if (rc == 0)
        return copy_string(p, out->line, s, len, out);
    return 0;
}

/* Refuses what would make the tree a graph, or a node we cannot type. */
static int check_anchor_and_tag(struct parse *p, int line, const char *anchor,
                                const char *tag, const char *expected)
{
    if (anchor)
        return fail(p, line, "anchors (&%.*s) are not supported", QUOTE_MAX,
                    anchor);
    if (tag && strcmp(tag, "!") != 0 &&
        !(strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 &&
          strcmp(tag + strlen(TAG_PREFIX), expected) == 0))
        return fail(p, line, "unsupported tag %.*s", QUOTE_MAX, tag);
    return 0;
}

static int parse_sequence(struct parse *p, int depth, struct jr_yaml_node *out)
{
    struct jr_yaml_node child;
    yaml_event_t ev;
    int rc = 0;

    out->type = JR_YAML_SEQ;
    for (;;) {
        memset(&child, 0, sizeof(child));
        if (next_event(p, &ev) != 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        rc = parse_node(p, &ev, depth + 1, &child);
        if (rc == 0)
            rc = append(p, out, &child);
        yaml_event_delete(&ev);
        jr_yaml_free(&child);
        if (rc != 0)
            return -1;
    }
    yaml_event_delete(&ev);
    return 0;
}

/* A key is kept as its text whatever its type: the tables are keyed by
 * strings, and "8080:" should not turn into a number key. */
static int parse_key(struct parse *p, const struct jr_yaml_node *map,
                     const yaml_event_t *ev, struct jr_yaml_node *key)
{
    key->line = event_line(ev);
    if (ev->type == YAML_ALIAS_EVENT)
        return fail(p, key->line, "aliases (*%.*s) are not supported",
                    QUOTE_MAX, (const char *)ev->data.alias.anchor);
    if (ev->type != YAML_SCALAR_EVENT)
        return fail(p, key->line, "mapping keys must be scalars");
    if (ev->data.scalar.anchor)
        return fail(p, key->line, "anchors (&%.*s) are not supported",
                    QUOTE_MAX, (const char *)ev->data.scalar.anchor);

    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    for (size_t i = 0; i < map->count; i += 2) {
        const struct jr_yaml_node *k = &map->items[i];
        if (k->len == len && memcmp(k->str, s, len) == 0)
            return fail(p, key->line, "duplicate key \"%.*s\" (first at line %d)",
                        (int)(len < QUOTE_MAX ? len : QUOTE_MAX), s, k->line);
    }
    return copy_string(p, key->line, s, len, key);
}

static int parse_mapping(struct parse *p, int depth, struct jr_yaml_node *out)
{
    struct jr_yaml_node key, value;
    yaml_event_t ev;
    int rc = 0;

    out->type = JR_YAML_MAP;
    for (;;) {
        memset(&key, 0, sizeof(key));
        memset(&value, 0, sizeof(value));
        if (next_event(p, &ev) != 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT)
            break;
        rc = parse_key(p, out, &ev, &key);
        yaml_event_delete(&ev);
        if (rc == 0)
            rc = next_event(p, &ev);
        if (rc == 0) {
            rc = parse_node(p, &ev, depth + 1, &value);
            yaml_event_delete(&ev);
        }
        if (rc == 0)
            rc = append(p, out, &key);
        if (rc == 0)
            rc = append(p, out, &value);
        jr_yaml_free(&key);
        jr_yaml_free(&value);
        if (rc != 0)
            return -1;
    }
    yaml_event_delete(&ev);
    return 0;
}

/* Builds *out from ev, which stays the caller's, and the events after it. */
static int parse_node(struct parse *p, yaml_event_t *ev, int depth,
                      struct jr_yaml_node *out)
{
    out->line = event_line(ev);
    if (depth > JR_YAML_MAX_DEPTH)
        return fail(p, out->line, "nesting deeper than %d levels",
                    JR_YAML_MAX_DEPTH);

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail(p, out->line, "aliases (*%.*s) are not supported",
                    QUOTE_MAX, (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return fail(p, out->line, "anchors (&%.*s) are not supported",
                        QUOTE_MAX, (const char *)ev->data.scalar.anchor);
        return parse_scalar(p, ev, out);
    case YAML_SEQUENCE_START_EVENT:
        if (check_anchor_and_tag(p, out->line,
                                 (const char *)ev->data.sequence_start.anchor,
                                 (const char *)ev->data.sequence_start.tag,
                                 "seq") != 0)
            return -1;
        return parse_sequence(p, depth, out);
    case YAML_MAPPING_START_EVENT:
        if (check_anchor_and_tag(p, out->line,
                                 (const char *)ev->data.mapping_start.anchor,
                                 (const char *)ev->data.mapping_start.tag,
                                 "map") != 0)
            return -1;
        return parse_mapping(p, depth, out);
    default:
        return fail(p, out->line, "unexpected YAML event %d", (int)ev->type);
    }
}

/* STREAM-START (DOCUMENT-START node DOCUMENT-END)? STREAM-END */
static int parse_stream(struct parse *p, struct jr_yaml_node *root)
{
    yaml_event_t ev;
    int rc = -1;

    root->line = 1;
    if (next_event(p, &ev) != 0)
        return -1;
    yaml_event_delete(&ev); /* STREAM-START */
    if (next_event(p, &ev) != 0)
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        rc = 0;
        goto done;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(p, &ev) != 0)
        return -1;
    if (parse_node(p, &ev, 0, root) != 0)
        goto done;
    yaml_event_delete(&ev);
    if (next_event(p, &ev) != 0)
        return -1;
    yaml_event_delete(&ev); /* DOCUMENT-END */
    if (next_event(p, &ev) != 0)
        return -1;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        fail(p, event_line(&ev), "only one YAML document is allowed, a "
             "second one starts here");
        goto done;
    }
    rc = 0;
done:
    yaml_event_delete(&ev);
    return rc;
}

int jr_yaml_parse(const char *text, size_t len, const char *name,
                  struct jr_yaml_node *root, char *err, size_t errlen)
{
    struct parse p = {.text = text, .len = len, .name = name,
                      .err = err, .errlen = errlen};
    int rc = -1;

    memset(root, 0, sizeof(*root));
    if (errlen)
        err[0] = '\0';
    if (!yaml_parser_initialize(&p.parser))
        return fail(&p, 1, "out of memory");
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);
    rc = parse_stream(&p, root);
    yaml_parser_delete(&p.parser);
    if (rc != 0)
        jr_yaml_free(root);
    return rc;
}

static int read_file(const char *path, char **out, size_t *out_len,
                     char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: %s", path, strerror(EISDIR));
        goto done;
    }
    if (st.st_size > (off_t)JR_YAML_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %u bytes", path,
                 JR_YAML_MAX_FILE);
        goto done;
    }
    /* st_size is only a hint (a pipe says 0): read until end of file. */
    size_t cap = (size_t)st.st_size + 1;
    for (;;) {
        if (!buf || len == cap) {
            char *bigger = realloc(buf, buf ? cap * 2 : cap);
            if (!bigger) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto done;
            }
            cap = buf ? cap * 2 : cap;
            buf = bigger;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > JR_YAML_MAX_FILE) {
            snprintf(err, errlen, "%s: larger than %u bytes", path,
                     JR_YAML_MAX_FILE);
            goto done;
        }
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int jr_yaml_parse_file(const char *path, struct jr_yaml_node *root,
                       char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(root, 0, sizeof(*root));
    rc = read_file(path, &text, &len, err, errlen);
    if (rc == 0)
        rc = jr_yaml_parse(text, len, path, root, err, errlen);
    free(text);
    return rc;
}

void jr_yaml_free(struct jr_yaml_node *node)
{
    for (size_t i = 0; i < node->count; i++)
        jr_yaml_free(&node->items[i]);
    free(node->items);
    free(node->str);
    memset(node, 0, sizeof(*node));
}

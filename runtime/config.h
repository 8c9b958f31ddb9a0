/* The deployment file's first step: libyaml -> a tree of plain C nodes, each
 * with the line it starts on, scalars resolved per the YAML 1.2 core schema.
 * No Lua here; runtime/lua/yaml.c turns a tree into tables. */
#ifndef JR_CONFIG_H
#define JR_CONFIG_H

#include <stddef.h>

enum jr_yaml_type {
    JR_YAML_NULL,
    JR_YAML_BOOL,
    JR_YAML_INT,
    JR_YAML_FLOAT,
    JR_YAML_STRING,
    JR_YAML_MAP,
    JR_YAML_SEQ,
};

struct jr_yaml_node {
    enum jr_yaml_type type;
    int line;                    /* 1-based line the node starts on */
    int boolean;                 /* JR_YAML_BOOL */
    long long integer;           /* JR_YAML_INT */
    double number;               /* JR_YAML_FLOAT */
    char *str;                   /* JR_YAML_STRING, NUL-terminated ... */
    size_t len;                  /* ... and may hold NULs: use len */
    /* JR_YAML_SEQ: count elements. JR_YAML_MAP: count/2 pairs, key at
     * items[2i] (always a JR_YAML_STRING: the key's text), value at
     * items[2i+1]. Keys are unique. */
    struct jr_yaml_node *items;
    size_t count;
    size_t cap;
};

/* Nesting deeper than this is refused, so every walk of a tree may recurse. */
#define JR_YAML_MAX_DEPTH 200
/* Files larger than this are refused before parsing. */
#define JR_YAML_MAX_FILE (16u << 20)

/* Parses text (len bytes) holding at most one YAML document into *root (an
 * empty stream gives a JR_YAML_NULL root). Returns 0, or -1 with
 * "NAME:LINE: message" written to err (errlen bytes). Anchors, aliases,
 * several documents, non-scalar keys and duplicate keys are errors. The
 * caller owns *root and releases it with jr_yaml_free on either path. */
int jr_yaml_parse(const char *text, size_t len, const char *name,
                  struct jr_yaml_node *root, char *err, size_t errlen);

/* Reads PATH and parses it as jr_yaml_parse does, naming it PATH in errors;
 * an unreadable file gives "PATH: reason". Same ownership rule. */
int jr_yaml_parse_file(const char *path, struct jr_yaml_node *root,
                       char *err, size_t errlen);

/* Frees what the node owns (not the node itself) and leaves it JR_YAML_NULL. */
void jr_yaml_free(struct jr_yaml_node *node);

#endif

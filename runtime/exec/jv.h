/* A small read-only JSON reader for the executor: the task spec as stored
 * and the sandbox helper's outcome line. The whole tree is one allocation
 * list freed by jr_jv_free; strings are decoded, NUL-terminated UTF-8. */
#ifndef JR_EXEC_JV_H
#define JR_EXEC_JV_H

#include <stddef.h>

enum { JR_JV_NULL, JR_JV_BOOL, JR_JV_NUM, JR_JV_STR, JR_JV_ARR, JR_JV_OBJ };

struct jr_jv {
    int type;
    int boolean;
    double num;
    char *str;                 /* JR_JV_STR */
    size_t len;
    char *key;                 /* member name inside an object */
    struct jr_jv *child, *next; /* first element/member, next sibling */
    struct jr_jv *all;         /* allocation chain (for jr_jv_free) */
};

/* Parses text (len bytes). NULL on a syntax error or out of memory. */
struct jr_jv *jr_jv_parse(const char *text, size_t len);
void jr_jv_free(struct jr_jv *v);
/* The member named key of an object, or NULL. */
const struct jr_jv *jr_jv_get(const struct jr_jv *obj, const char *key);
/* The string member key, or NULL when missing or not a string. */
const char *jr_jv_str(const struct jr_jv *obj, const char *key);

#endif

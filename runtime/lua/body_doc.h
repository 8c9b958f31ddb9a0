/* A JSON text read once into a flat array of nodes the caller provides: no
 * allocation, strings left in the text (a text whose strings hold escapes
 * is refused, so every string node is its raw bytes). For the native
 * submit's one pass over its body (core_body.c). Not included outside
 * runtime/lua/. */
#ifndef JR_LUA_BODY_DOC_H
#define JR_LUA_BODY_DOC_H

#include <stddef.h>
#include <stdint.h>

enum { JR_DOC_NULL, JR_DOC_FALSE, JR_DOC_TRUE, JR_DOC_INT, JR_DOC_FLOAT, JR_DOC_STR,
       JR_DOC_ARR, JR_DOC_OBJ };

struct jr_doc_node {
    int type;
    int n;                 /* ARR/OBJ: children */
    int child, next;       /* first child, next sibling: node indexes, -1 = none */
    const char *s;         /* STR: the bytes between the quotes */
    size_t len;
    const char *key;       /* a member's name (raw bytes, as s) */
    size_t key_len;
    int64_t i;             /* INT */
    double f;              /* FLOAT */
};

/* Read text into nodes[0..cap): node 0 is the root. Numbers read as the
 * runtime's decoder reads them (whole ones within 2^53 are INT). Returns
 * the node count, or -1 when the text is not JSON, or holds an escape, a
 * control or DEL byte in a string, an integer beyond 64 bits, nesting
 * deeper than 32, or more than cap nodes: the caller then takes the
 * decoder's path, which says what is wrong if anything is. */
int jr_doc_read(const char *text, size_t len, struct jr_doc_node *nodes, int cap);

#endif

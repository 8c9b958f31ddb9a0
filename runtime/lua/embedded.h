/* The Lua sources compiled into the binary (lua/, api/, policies/), keyed by
 * their path in the repository; generated at build time by tools/embed.c. */
#ifndef JR_LUA_EMBEDDED_H
#define JR_LUA_EMBEDDED_H

#include <stddef.h>

struct jr_embedded_file {
    const char *path;
    const char *source;
    size_t size;
};

/* Terminated by an entry whose path is NULL. */
extern const struct jr_embedded_file jr_embedded_files[];

#endif

/* What an executor reads of a task besides its command, as C fields: the
 * image, the network and the inputs as submitted. Filled once, from the
 * Lua table at submit (runtime/lua/core_conv.c) or from the stored JSON
 * (jr_spec_decode); the executor's check and start read only this. The
 * fill keeps the shape as given (a field of the wrong type is marked
 * JR_SPEC_BAD, a string field of another type is NULL), so that the
 * executor names each bad field itself. */
#ifndef JR_SPEC_H
#define JR_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* How a field was given. */
enum { JR_SPEC_ABSENT, JR_SPEC_OK, JR_SPEC_BAD }; /* absent or null; right type; other */

/* One entry of inputs. Strings are NULL when missing or not strings. */
struct jr_spec_input {
    int is_object;              /* 0: the entry was not an object (nothing else set) */
    const char *source, *target;
    const char *path;           /* source path */
    const char *task, *file;    /* source task-output */
    const char *url;            /* source url */
    const char *data;           /* source inline: "data" (or "content") when a string */
    size_t data_len;
    int max_bytes_kind;         /* JR_SPEC_OK: a number */
    double max_bytes;
};

struct jr_task_setup {
    int image_kind;             /* JR_SPEC_OK: a string */
    const char *image;
    int network_kind;           /* JR_SPEC_OK: a string or an object */
    const char *network_mode;   /* the string, or the object's "mode" when a string */
    int domains_kind;           /* network.domains; JR_SPEC_OK: a list */
    const char *const *domains; /* ndomains entries; NULL where not a string */
    size_t ndomains;
    int entrypoint_kind;        /* JR_SPEC_OK: a list (it replaces the image's
                                 * Entrypoint; NULL entries: not strings) */
    const char *const *entrypoint;
    size_t nentrypoint;
    int inputs_kind;            /* JR_SPEC_OK: a list */
    const struct jr_spec_input *inputs;
    size_t ninputs;
    int has_command;            /* the task gives a command (the scheduler sets
                                 * it for the executor's check) */
    int checking;               /* 1: the check at submit, 0: a start */
    void *owned;                /* jr_spec_decode's allocations, or NULL */
};

/* Fill *out from the stored JSON text of a task (NULL = "{}"). Returns 0,
 * or -1 when the text is not a JSON object (or out of memory); either
 * way, free with jr_spec_free. */
int jr_spec_decode(const char *json, struct jr_task_setup *out);
void jr_spec_free(struct jr_task_setup *s);

#endif

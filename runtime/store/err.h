/* Error reporting shared by the store, the scheduler and the executor: a code
 * the caller can act on (mapped to "NOT_FOUND", "INVALID", ... for Lua and
 * HTTP) and a message for people. Functions return the code, 0 on success. */
#ifndef JR_STORE_ERR_H
#define JR_STORE_ERR_H

enum jr_code {
    JR_OK = 0,
    JR_E_NOT_FOUND,  /* no such job / task */
    JR_E_INVALID,    /* the request itself is wrong (bad spec, cycle, too big) */
    JR_E_CONFLICT,   /* the transition is not allowed from the current state */
    JR_E_LOCKED,     /* update refused while queued or running */
    JR_E_EXISTS,     /* a job with this id already exists */
    JR_E_STORE,      /* the database failed */
    JR_E_SYSTEM,     /* the operating system failed (spawn, mkdir, ...) */
    JR_E_FULL        /* a size limit would be passed (the image store) */
};

struct jr_err {
    int code;
    char msg[256];
};

/* Fill e (may be NULL) and return code. */
int jr_err_set(struct jr_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "NOT_FOUND", "INVALID", ...; "OK" for 0. */
const char *jr_err_name(int code);

#endif

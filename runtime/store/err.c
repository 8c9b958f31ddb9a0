/* Error codes and messages shared by store, scheduler and executor. */
#include <stdarg.h>
#include <stdio.h>

#include "store/err.h"

int jr_err_set(struct jr_err *e, int code, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return code;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *jr_err_name(int code)
{
    switch (code) {
    case JR_OK: return "OK";
    case JR_E_NOT_FOUND: return "NOT_FOUND";
    case JR_E_INVALID: return "INVALID";
    case JR_E_CONFLICT: return "CONFLICT";
    case JR_E_LOCKED: return "LOCKED";
    case JR_E_EXISTS: return "EXISTS";
    case JR_E_STORE: return "STORE";
    case JR_E_FULL: return "FULL";
    default: return "SYSTEM";
    }
}

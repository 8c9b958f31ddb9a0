/* The daemon's context: logging. */
#include "loop.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void jr_log(struct jr_loop *loop, int level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (loop && level < loop->log_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines whole when stderr is shared. */
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000,
            names[level < 0 ? 0 : level > 3 ? 3 : level], line);
}

/* The attempt record's text (see record.h): formatted by the daemon that
 * starts an attempt (the store keeps it with the running row), parsed by
 * the daemon that reattaches to it. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/record.h"

int jr_exec_record_format(const struct jr_exec_record *r, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "jobrt-attempt %d\n"
                     "job %s\n"
                     "task %s\n"
                     "attempt %lld\n"
                     "helper_pid %lld\n"
                     "helper_start %lld\n"
                     "started_ms %lld\n"
                     "log_cap %lld\n"
                     "%s%s%s"
                     "spool %s\n",
                     JR_EXEC_RECORD_FORMAT, r->job, r->task, (long long)r->attempt,
                     (long long)r->helper_pid, (long long)r->helper_start,
                     (long long)r->started_ms, (long long)r->log_cap,
                     r->control[0] ? "control " : "", r->control, r->control[0] ? "\n" : "",
                     r->spool);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* A name in the task's folder or of a control socket: no '/', no spaces,
 * not "." or "..". */
static int set_name(char *dst, size_t size, const char *v)
{
    if (!*v || strchr(v, '/') || strchr(v, ' ') || strcmp(v, ".") == 0 ||
        strcmp(v, "..") == 0 || strlen(v) >= size)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int jr_exec_record_parse(const char *text, struct jr_exec_record *r, struct jr_err *e)
{
    char line[512];
    const char *p = text;
    int have = 0, first = 1;
    int64_t v;

    memset(r, 0, sizeof *r);
    while (*p) {
        size_t n = strcspn(p, "\n");
        char *key = line, *val;
        if (n >= sizeof line)
            return jr_err_set(e, JR_E_INVALID, "the attempt record has a line of %zu bytes",
                              n);
        memcpy(line, p, n);
        line[n] = 0;
        p += n + (p[n] == '\n');
        val = strchr(line, ' ');
        if (val)
            *val++ = 0;
        if (first) {
            first = 0;
            if (strcmp(key, "jobrt-attempt") || !val || parse_int(val, &v) || v < 1)
                return jr_err_set(e, JR_E_INVALID, "not an attempt record");
            r->format = (int)v;
            if (v > JR_EXEC_RECORD_FORMAT)
                return jr_err_set(e, JR_E_INVALID, "the attempt record has format %lld,"
                                  " newer than this jobrt's %d", (long long)v,
                                  JR_EXEC_RECORD_FORMAT);
            continue;
        }
        if (!*key)
            continue;
        if (!val)
            return jr_err_set(e, JR_E_INVALID, "attempt record: \"%s\" has no value", key);
        if (strcmp(key, "job") == 0 || strcmp(key, "task") == 0) {
            char *dst = strcmp(key, "job") == 0 ? r->job : r->task;
            if (strlen(val) >= sizeof r->job)
                return jr_err_set(e, JR_E_INVALID, "attempt record: %s too long", key);
            memcpy(dst, val, strlen(val) + 1);
        } else if (strcmp(key, "control") == 0 || strcmp(key, "spool") == 0) {
            int ctl = strcmp(key, "control") == 0;
            if (set_name(ctl ? r->control : r->spool,
                         ctl ? sizeof r->control : sizeof r->spool, val))
                return jr_err_set(e, JR_E_INVALID, "attempt record: bad %s \"%.60s\"", key,
                                  val);
        } else {
            int64_t *dst = strcmp(key, "attempt") == 0 ? &r->attempt
                         : strcmp(key, "helper_pid") == 0 ? &r->helper_pid
                         : strcmp(key, "helper_start") == 0 ? &r->helper_start
                         : strcmp(key, "started_ms") == 0 ? &r->started_ms
                         : strcmp(key, "log_cap") == 0 ? &r->log_cap : NULL;
            if (!dst)
                continue; /* a key of a later jobrt: ignored */
            if (parse_int(val, dst))
                return jr_err_set(e, JR_E_INVALID, "attempt record: bad %s \"%.60s\"", key,
                                  val);
            have |= dst == &r->attempt ? 1 : dst == &r->helper_pid ? 2
                  : dst == &r->helper_start ? 4 : 0;
        }
    }
    if (first)
        return jr_err_set(e, JR_E_INVALID, "not an attempt record");
    if (have != 7 || r->helper_pid <= 1)
        return jr_err_set(e, JR_E_INVALID, "the attempt record lacks %s",
                          !(have & 1) ? "attempt" : !(have & 2) || r->helper_pid <= 1
                          ? "helper_pid" : "helper_start");
    return JR_OK;
}

/* The helper's outcome record as its one JSON status line, the names of
 * outcomes and layers (shared with the probe and `sandbox.require`), and the
 * setup-error record the other files fill. Pure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/internal.h"

static const char *const layer_names[JR_SB_NLAYERS] = {
    "userns", "mountns", "pidns", "ipcns", "utsns", "cgroupns", "netns",
    "pivot_root", "no_new_privs", "caps", "seccomp", "rlimits", "cgroup",
    "memory_limit", "pids_limit", "cpu_limit", "cgroup_kill",
};

static const char *const outcome_names[] = {
    "exited", "signaled", "oom", "timeout", "pids_limit", "seccomp",
    "setup_error", "canceled", "orphaned",
};

const char *jr_sandbox_layer_name(int layer)
{
    return layer >= 0 && layer < JR_SB_NLAYERS ? layer_names[layer] : NULL;
}

int jr_sandbox_layer_find(const char *name)
{
    for (int i = 0; i < JR_SB_NLAYERS; i++)
        if (strcmp(layer_names[i], name) == 0)
            return i;
    return -1;
}

const char *jr_sandbox_outcome_name(int kind)
{
    if (kind < 0 || kind >= (int)(sizeof(outcome_names) / sizeof(outcome_names[0])))
        return NULL;
    return outcome_names[kind];
}

struct out {
    char *buf;
    size_t len, pos;
    int overflow;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->overflow)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->pos)
        o->overflow = 1;
    else
        o->pos += (size_t)n;
}

static void put_string(struct out *o, const char *s)
{
    put(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(o, "\\%c", *p);
        else if (*p == '\n')
            put(o, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            put(o, "\\u%04x", *p);
        else
            put(o, "%c", *p);
    }
    put(o, "\"");
}

int jr_sandbox_outcome_json(const struct jr_sandbox_outcome *oc, char *buf,
                            size_t len)
{
    struct out o = {buf, len, 0, 0};
    const char *name = jr_sandbox_outcome_name(oc->kind);
    if (!name || len == 0)
        return -1;
    put(&o, "{\"outcome\":\"%s\"", name);
    if (oc->kind == JR_SB_EXITED)
        put(&o, ",\"exit_code\":%d", oc->exit_code);
    if (oc->signal > 0 && oc->kind != JR_SB_EXITED && oc->kind != JR_SB_SETUP_ERROR)
        put(&o, ",\"signal\":%d", oc->signal);
    if (oc->kind == JR_SB_SETUP_ERROR) {
        put(&o, ",\"stage\":");
        put_string(&o, oc->stage[0] ? oc->stage : "unknown");
        put(&o, ",\"errno\":%d", oc->err);
    }
    if (oc->message[0]) {
        put(&o, ",\"message\":");
        put_string(&o, oc->message);
    }
    if (oc->cpu_ms >= 0)
        put(&o, ",\"cpu_ms\":%lld", (long long)oc->cpu_ms);
    if (oc->max_rss_bytes >= 0)
        put(&o, ",\"max_rss_bytes\":%lld", (long long)oc->max_rss_bytes);
    if (oc->wall_ms >= 0)
        put(&o, ",\"wall_ms\":%lld", (long long)oc->wall_ms);
    if (oc->ended_ms > 0)
        put(&o, ",\"ended_ms\":%lld", (long long)oc->ended_ms);
    put(&o, ",\"layers\":[");
    for (int i = 0, first = 1; i < JR_SB_NLAYERS; i++) {
        if (oc->layers & (1u << i)) {
            put(&o, "%s\"%s\"", first ? "" : ",", layer_names[i]);
            first = 0;
        }
    }
    put(&o, "]}\n");
    return o.overflow ? -1 : (int)o.pos;
}

int jr_sb_fail(struct jr_sb_err *e, const char *stage, int err,
               const char *fmt, ...)
{
    va_list ap;
    e->err = err;
    snprintf(e->stage, sizeof(e->stage), "%s", stage);
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
    return -1;
}

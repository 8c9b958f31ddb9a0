/* Pure cgroup path handling: where each controller's hierarchy is mounted
 * (from mountinfo text), which leaf and parent names are acceptable, and how
 * a leaf's path is joined. No I/O, so the unit tests call it directly. */
#include <stdio.h>
#include <string.h>

#include "sandbox/sandbox.h"

static const char *const role_controller[JR_CG_NROLES] = {
    "memory", "pids", "cpu", "cpuacct", NULL,
};

/* 1 if the comma-separated list has the word. */
static int has_word(const char *list, size_t len, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
        if (n == wl && memcmp(p, word, wl) == 0)
            return 1;
        p += n + 1;
    }
    return 0;
}

/* Copies the n-th (0-based) space-separated field of line into out. */
static int field(const char *line, size_t llen, int n, const char **start,
                 size_t *flen)
{
    const char *p = line, *end = line + llen;
    for (int i = 0; p < end; i++) {
        const char *s = memchr(p, ' ', (size_t)(end - p));
        size_t l = s ? (size_t)(s - p) : (size_t)(end - p);
        if (i == n) {
            *start = p;
            *flen = l;
            return 0;
        }
        p += l + 1;
    }
    return -1;
}

static void parse_line(const char *line, size_t llen, struct jr_sandbox_cgmounts *m)
{
    const char *sep = strstr(line, " - ");
    const char *mp, *fs, *super;
    size_t mpl, fsl, superl;
    if (!sep || sep >= line + llen || field(line, (size_t)(sep - line), 4, &mp, &mpl))
        return;
    const char *rest = sep + 3;
    size_t restl = llen - (size_t)(rest - line);
    if (field(rest, restl, 0, &fs, &fsl) || field(rest, restl, 2, &super, &superl))
        return;
    if (mpl == 0 || mpl >= sizeof(m->path[0]) || memchr(mp, '\\', mpl))
        return; /* escaped characters: not a place we create cgroups in */
    if (fsl == 7 && memcmp(fs, "cgroup2", 7) == 0) {
        if (!m->path[JR_CG_V2][0]) {
            memcpy(m->path[JR_CG_V2], mp, mpl);
            m->path[JR_CG_V2][mpl] = '\0';
        }
        return;
    }
    if (fsl != 6 || memcmp(fs, "cgroup", 6) != 0)
        return;
    for (int r = 0; r < JR_CG_NROLES; r++) {
        if (role_controller[r] && !m->path[r][0] &&
            has_word(super, superl, role_controller[r])) {
            memcpy(m->path[r], mp, mpl);
            m->path[r][mpl] = '\0';
        }
    }
}

int jr_sandbox_cg_parse_mountinfo(const char *text, struct jr_sandbox_cgmounts *m)
{
    int found = 0;
    memset(m, 0, sizeof(*m));
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        parse_line(p, l, m);
        p = nl ? nl + 1 : NULL;
    }
    for (int r = 0; r < JR_CG_NROLES; r++)
        found += m->path[r][0] != '\0';
    return found;
}

static int valid_part(const char *s, size_t n)
{
    if (n == 0 || n > 100 || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int jr_sandbox_cg_valid_name(const char *name)
{
    return name && valid_part(name, strlen(name));
}

int jr_sandbox_cg_valid_parent(const char *parent)
{
    if (!parent || !*parent || strlen(parent) > 200)
        return 0;
    for (const char *p = parent;;) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        if (!valid_part(p, n))
            return 0;
        if (!s)
            return 1;
        p = s + 1;
    }
}

int jr_sandbox_cg_path(char *buf, size_t len, const char *mount,
                       const char *parent, const char *name)
{
    int n = name ? snprintf(buf, len, "%s/%s/%s", mount, parent, name)
                 : snprintf(buf, len, "%s/%s", mount, parent);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

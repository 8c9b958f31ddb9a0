/* lua/jobrt/units.lua's readings of cpu, sizes and durations in C (see
 * body_units.h): the same grammar (blanks, decimals, unit letters), the
 * same exact integer scaling and the same float sum for durations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua/body_units.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53 */

static int digits_at(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        ++*i;
    return *i > start;
}

static void blanks(const char *s, size_t n, size_t *i)
{
    while (*i < n && s[*i] == ' ')
        ++*i;
}

/* A decimal at *i: integer digits and fraction digits ("1.5", "2", ".5"). */
static int decimal(const char *s, size_t n, size_t *i, const char **ip, size_t *in,
                   const char **fp, size_t *fn)
{
    size_t a = *i;
    *ip = "0";
    *in = 1;
    *fp = "";
    *fn = 0;
    if (digits_at(s, n, i)) {
        *ip = s + a;
        *in = *i - a;
    } else if (*i >= n || s[*i] != '.') {
        return -1;
    }
    if (*i < n && s[*i] == '.') {
        size_t b = ++*i;
        if (!digits_at(s, n, i))
            return -1;
        *fp = s + b;
        *fn = *i - b;
    }
    return 0;
}

/* units.lua's scaled(): int.frac * mult exactly, or -1. */
static int scaled(const char *ip, size_t in, const char *fp, size_t fn, int64_t mult,
                  int64_t *out)
{
    int64_t i = 0, f = 0, scale = 1;

    for (size_t k = 0; k < in; k++) {
        if (i > (INT64_MAX - (ip[k] - '0')) / 10)
            return -1;
        i = i * 10 + (ip[k] - '0');
    }
    if (i > INT64_MAX / mult)
        return -1;
    while (fn > 0 && fp[fn - 1] == '0')
        fn--;
    if (fn > 15)
        return -1;
    for (size_t k = 0; k < fn; k++) {
        f = f * 10 + (fp[k] - '0');
        scale *= 10;
    }
    if (f > INT64_MAX / mult || f * mult % scale != 0 || i * mult > INT64_MAX - f * mult / scale)
        return -1;
    *out = i * mult + f * mult / scale;
    return 0;
}

/* units.cpu: millicores from cores (a number or "1.5") or "500m". */
int jr_body_cpu(const struct jr_doc_node *x, int64_t *out)
{
    const char *ip, *fp;
    size_t in, fn, i = 0;

    if (x->type == JR_DOC_INT) {
        if (x->i < 0 || (double)x->i > MAX_EXACT / 1000)
            return -1;
        *out = x->i * 1000;
        return 0;
    }
    if (x->type == JR_DOC_FLOAT) {
        double m = x->f * 1000, r = floor(m + 0.5);
        if (x->f < 0 || x->f > MAX_EXACT / 1000 || fabs(m - r) > 1e-6)
            return -1;
        *out = (int64_t)r;
        return 0;
    }
    if (x->type != JR_DOC_STR)
        return -1;
    blanks(x->s, x->len, &i);
    if (decimal(x->s, x->len, &i, &ip, &in, &fp, &fn))
        return -1;
    blanks(x->s, x->len, &i);
    int milli = i < x->len && x->s[i] == 'm';
    i += (size_t)milli;
    blanks(x->s, x->len, &i);
    return i == x->len ? scaled(ip, in, fp, fn, milli ? 1 : 1000, out) : -1;
}

static const struct { const char *name; int64_t mult; } size_units[] = {
    { "", 1 }, { "B", 1 }, { "k", 1000 }, { "K", 1000 }, { "kB", 1000 }, { "KB", 1000 },
    { "M", 1000000 }, { "MB", 1000000 }, { "G", 1000000000 }, { "GB", 1000000000 },
    { "T", 1000000000000 }, { "TB", 1000000000000 },
    { "P", 1000000000000000 }, { "PB", 1000000000000000 },
    { "Ki", 1LL << 10 }, { "KiB", 1LL << 10 }, { "Mi", 1LL << 20 }, { "MiB", 1LL << 20 },
    { "Gi", 1LL << 30 }, { "GiB", 1LL << 30 }, { "Ti", 1LL << 40 }, { "TiB", 1LL << 40 },
    { "Pi", 1LL << 50 }, { "PiB", 1LL << 50 },
};

static size_t letters_at(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && ((s[*i] >= 'a' && s[*i] <= 'z') || (s[*i] >= 'A' && s[*i] <= 'Z')))
        ++*i;
    return *i - start;
}

/* units.bytes: a whole number, or "64MiB", "1.5G". */
int jr_body_bytes(const struct jr_doc_node *x, int64_t *out)
{
    const char *ip, *fp;
    size_t in, fn, i = 0;

    if (x->type == JR_DOC_INT) {
        *out = x->i;
        return x->i < 0 ? -1 : 0;
    }
    if (x->type != JR_DOC_STR)
        return -1;
    blanks(x->s, x->len, &i);
    if (decimal(x->s, x->len, &i, &ip, &in, &fp, &fn))
        return -1;
    blanks(x->s, x->len, &i);
    size_t u = i, un = letters_at(x->s, x->len, &i);
    blanks(x->s, x->len, &i);
    if (i != x->len)
        return -1;
    for (size_t k = 0; k < sizeof size_units / sizeof size_units[0]; k++)
        if (strlen(size_units[k].name) == un && memcmp(size_units[k].name, x->s + u, un) == 0)
            return scaled(ip, in, fp, fn, size_units[k].mult, out);
    return -1;
}

/* units.duration: seconds from a number or "30s", "1h30m", "250ms". */
int jr_body_duration(const struct jr_doc_node *x, double *out)
{
    static const struct { const char *name; double scale; } units[] = {
        { "ms", 0.001 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
    };
    const char *ip, *fp;
    size_t in, fn, i = 0, parts = 0;
    unsigned seen = 0;
    double total = 0;

    if (x->type == JR_DOC_INT || x->type == JR_DOC_FLOAT) {
        double v = x->type == JR_DOC_INT ? (double)x->i : x->f;
        *out = v;
        return v < 0 || v > MAX_EXACT ? -1 : 0;
    }
    if (x->type != JR_DOC_STR)
        return -1;
    blanks(x->s, x->len, &i);
    while (i < x->len) {
        char num[48];
        if (decimal(x->s, x->len, &i, &ip, &in, &fp, &fn) || in + fn + 3 > sizeof num)
            return -1;
        blanks(x->s, x->len, &i);
        size_t u = i, un = letters_at(x->s, x->len, &i);
        blanks(x->s, x->len, &i);
        parts++;
        int k, found = -1;
        for (k = 0; k < 5; k++)
            if (strlen(units[k].name) == un && memcmp(units[k].name, x->s + u, un) == 0)
                found = k;
        if (un == 0 && i == x->len && parts == 1)
            found = 1; /* one bare number: seconds */
        if (found < 0 || (seen & (1u << found)))
            return -1;
        seen |= 1u << found;
        /* tonumber(int .. "." .. frac) * scale, summed in order, as units.lua does */
        memcpy(num, ip, in);
        num[in] = '.';
        memcpy(num + in + 1, fn ? fp : "0", fn ? fn : 1);
        num[in + 1 + (fn ? fn : 1)] = 0;
        total += strtod(num, NULL) * units[found].scale;
    }
    if (parts == 0 || total > MAX_EXACT)
        return -1;
    *out = total;
    return 0;
}

/* Splitting an http(s) URL into what a GET needs: host, port, path with
 * query (see client.h). */
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/client.h"

int jr_http_url_parse(const char *url, struct jr_http_url *u, char *why, size_t whylen)
{
    struct http_parser_url pu;
    size_t n = strlen(url);

    memset(u, 0, sizeof *u);
    u->tls = strncasecmp(url, "https://", 8) == 0;
    if (!u->tls && strncasecmp(url, "http://", 7) != 0) {
        snprintf(why, whylen, "not an http:// or https:// URL");
        return -1;
    }
    http_parser_url_init(&pu);
    if (http_parser_parse_url(url, n, 0, &pu) || !(pu.field_set & (1 << UF_HOST))) {
        snprintf(why, whylen, "malformed URL");
        return -1;
    }
    if (pu.field_set & (1 << UF_USERINFO)) {
        snprintf(why, whylen, "credentials in URLs are not supported");
        return -1;
    }
    if (pu.field_data[UF_HOST].len == 0 || pu.field_data[UF_HOST].len >= sizeof u->host) {
        snprintf(why, whylen, "bad host");
        return -1;
    }
    memcpy(u->host, url + pu.field_data[UF_HOST].off, pu.field_data[UF_HOST].len);
    snprintf(u->port, sizeof u->port, "%u", pu.port ? pu.port : u->tls ? 443 : 80);
    if (pu.field_set & (1 << UF_PATH)) {
        size_t off = pu.field_data[UF_PATH].off, end = off + pu.field_data[UF_PATH].len;
        if (pu.field_set & (1 << UF_QUERY))
            end = pu.field_data[UF_QUERY].off + pu.field_data[UF_QUERY].len;
        if (end - off >= sizeof u->path) {
            snprintf(why, whylen, "URL too long");
            return -1;
        }
        memcpy(u->path, url + off, end - off);
    } else {
        snprintf(u->path, sizeof u->path, "/");
    }
    for (const char *p = u->path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(why, whylen, "control characters or spaces in the URL");
            return -1;
        }
    return 0;
}

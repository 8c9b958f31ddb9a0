/* Unit tests for network mode allow's pure parts: --allow-domain and
 * --proxy-port parsing and the allow-list match the proxy applies. The
 * proxy itself is covered by tests/e2e/sandbox_allow.test.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "unit.h"

#include "sandbox/sandbox.h"

TEST(domain_valid)
{
    CHECK(jr_sandbox_domain_valid("example.com"));
    CHECK(jr_sandbox_domain_valid("localhost"));
    CHECK(jr_sandbox_domain_valid("*.example.com"));
    CHECK(jr_sandbox_domain_valid("a-b.c_d.org"));
    CHECK(jr_sandbox_domain_valid("10.0.0.1"));
    CHECK(jr_sandbox_domain_valid("::1"));
    CHECK(!jr_sandbox_domain_valid(""));
    CHECK(!jr_sandbox_domain_valid("*"));
    CHECK(!jr_sandbox_domain_valid("*."));
    CHECK(!jr_sandbox_domain_valid("a..b"));
    CHECK(!jr_sandbox_domain_valid(".a"));
    CHECK(!jr_sandbox_domain_valid("a."));
    CHECK(!jr_sandbox_domain_valid("-a.com"));
    CHECK(!jr_sandbox_domain_valid("a b"));
    CHECK(!jr_sandbox_domain_valid("a.*.com"));
    CHECK(!jr_sandbox_domain_valid("[::1]"));
    CHECK(!jr_sandbox_domain_valid("host:80"));
}

TEST(domain_allowed)
{
    const char *d[] = {"example.com", "*.Files.ORG", "10.1.2.3", "::1"};
    CHECK(jr_sandbox_domain_allowed(d, 4, "example.com"));
    CHECK(jr_sandbox_domain_allowed(d, 4, "EXAMPLE.com"));
    CHECK(jr_sandbox_domain_allowed(d, 4, "example.com."));
    CHECK(!jr_sandbox_domain_allowed(d, 4, "www.example.com"));
    CHECK(!jr_sandbox_domain_allowed(d, 4, "example.com.evil.net"));
    CHECK(!jr_sandbox_domain_allowed(d, 4, "notexample.com"));
    CHECK(jr_sandbox_domain_allowed(d, 4, "a.files.org"));
    CHECK(jr_sandbox_domain_allowed(d, 4, "x.y.files.org"));
    CHECK(!jr_sandbox_domain_allowed(d, 4, "files.org"));
    CHECK(!jr_sandbox_domain_allowed(d, 4, "evilfiles.org"));
    CHECK(jr_sandbox_domain_allowed(d, 4, "10.1.2.3"));
    CHECK(!jr_sandbox_domain_allowed(d, 4, "10.1.2.4"));
    CHECK(jr_sandbox_domain_allowed(d, 4, "::1"));
    CHECK(!jr_sandbox_domain_allowed(d, 4, ""));
    CHECK(!jr_sandbox_domain_allowed(d, 0, "example.com"));
    const char *w[] = {"*.3"};
    CHECK(!jr_sandbox_domain_allowed(w, 1, "10.1.2.3")); /* IPs match exactly only */
    /* How it matched: an exact entry wins over a wildcard one. */
    const char *m[] = {"*.example.com", "api.example.com"};
    CHECK_INT(jr_sandbox_domain_allowed(m, 2, "api.example.com"), JR_SB_MATCH_EXACT);
    CHECK_INT(jr_sandbox_domain_allowed(m, 2, "www.example.com"), JR_SB_MATCH_WILDCARD);
    CHECK_INT(jr_sandbox_domain_allowed(d, 4, "10.1.2.3"), JR_SB_MATCH_EXACT);
}

static int internal4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    return jr_sandbox_addr_host_internal((struct sockaddr *)&a);
}

static int internal6(const char *ip)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return jr_sandbox_addr_host_internal((struct sockaddr *)&a);
}

TEST(host_internal_addresses)
{
    CHECK(internal4("127.0.0.1"));
    CHECK(internal4("127.1.2.3"));
    CHECK(internal4("0.0.0.0"));
    CHECK(internal4("169.254.169.254")); /* cloud metadata */
    CHECK(internal4("224.0.0.1"));
    CHECK(internal4("255.255.255.255"));
    CHECK(!internal4("93.184.216.34"));
    CHECK(!internal4("10.1.2.3"));       /* private networks are the outside */
    CHECK(!internal4("192.168.1.1"));
    CHECK(!internal4("128.0.0.1"));
    CHECK(internal6("::1"));
    CHECK(internal6("::"));
    CHECK(internal6("fe80::1"));
    CHECK(internal6("ff02::1"));
    CHECK(internal6("::ffff:127.0.0.1"));
    CHECK(internal6("::ffff:169.254.169.254"));
    CHECK(!internal6("::ffff:93.184.216.34"));
    CHECK(!internal6("2606:2800:220:1::1"));
    struct sockaddr un = {AF_UNIX, {0}};
    CHECK(jr_sandbox_addr_host_internal(&un));
}

TEST(parse_allow_options)
{
    static char a0[] = "--network", a1[] = "allow", a2[] = "--allow-domain", a3[] = "a.org",
                a4[] = "--allow-domain=*.b.org", a5[] = "--proxy-port", a6[] = "8080",
                a7[] = "--", a8[] = "true";
    char *args[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8};
    struct jr_sandbox_opts o;
    char err[256] = "";
    CHECK_INT(jr_sandbox_parse(9, args, &o, err, sizeof(err)), 0);
    CHECK_INT(o.network, JR_SB_NET_ALLOW);
    CHECK_INT(o.ndomains, 2);
    CHECK_STR(o.domains[0], "a.org");
    CHECK_STR(o.domains[1], "*.b.org");
    CHECK_INT(o.proxy_port, 8080);

    static char b0[] = "--allow-domain", b1[] = "a b", b2[] = "--", b3[] = "true";
    char *bad[] = {b0, b1, b2, b3};
    CHECK_INT(jr_sandbox_parse(4, bad, &o, err, sizeof(err)), -1);
    CHECK(strstr(err, "allow-domain") != NULL);

    static char c0[] = "--proxy-port", c1[] = "0", c2[] = "--", c3[] = "true";
    char *badp[] = {c0, c1, c2, c3};
    CHECK_INT(jr_sandbox_parse(4, badp, &o, err, sizeof(err)), -1);

    static char d0[] = "--", d1[] = "true";
    char *def[] = {d0, d1};
    CHECK_INT(jr_sandbox_parse(2, def, &o, err, sizeof(err)), 0);
    CHECK_INT(o.proxy_port, JR_SB_PROXY_PORT);
    CHECK_INT(o.ndomains, 0);
}

int main(void)
{
    RUN(domain_valid);
    RUN(domain_allowed);
    RUN(host_internal_addresses);
    RUN(parse_allow_options);
    return UNIT_DONE();
}

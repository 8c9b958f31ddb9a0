/* Unit tests of runtime/config.c (YAML -> node tree with lines, core-schema
 * scalars, every refusal with its line) and of the jobrt.yaml binding. */
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

int luaopen_jobrt_yaml(lua_State *L);

static char err[1024];

static int parse(const char *text, struct jr_yaml_node *root)
{
    return jr_yaml_parse(text, strlen(text), "t.yaml", root, err, sizeof(err));
}

/* The value of key in a mapping, or NULL. */
static const struct jr_yaml_node *get(const struct jr_yaml_node *map,
                                      const char *key)
{
    if (map->type != JR_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i += 2)
        if (strcmp(map->items[i].str, key) == 0)
            return &map->items[i + 1];
    return NULL;
}

/* Parses "v: TEXT" and returns the type of v (or -1 on error). */
static int type_of(const char *text, struct jr_yaml_node *root)
{
    if (parse(text, root) != 0)
        return -1;
    const struct jr_yaml_node *v = get(root, "v");
    return v ? (int)v->type : -2;
}

static void check_error(const char *text, const char *expected)
{
    struct jr_yaml_node root;
    int rc = parse(text, &root);
    CHECK_INT(rc, -1);
    CHECK_STR(err, expected);
    CHECK_INT(root.type, JR_YAML_NULL);
    CHECK(root.items == NULL);
    jr_yaml_free(&root);
}

TEST(structure_and_lines)
{
    struct jr_yaml_node root;
    const char *text =
        "# comment\n"
        "node:\n"
        "  cpu: 2\n"
        "  memory: 4GiB\n"
        "listen:\n"
        "  - 127.0.0.1:8080\n"
        "  - address: 0.0.0.0:8443\n"
        "    tls: {cert: a.crt,\n"
        "          key: a.key}\n";
    CHECK_INT(parse(text, &root), 0);
    CHECK_INT(root.type, JR_YAML_MAP);
    CHECK_INT(root.line, 2);
    CHECK_INT(root.count, 4);
    CHECK_STR(root.items[0].str, "node");
    CHECK_INT(root.items[0].line, 2);
    const struct jr_yaml_node *node = get(&root, "node");
    CHECK_INT(node->line, 3);
    CHECK_INT(get(node, "cpu")->type, JR_YAML_INT);
    CHECK_INT(get(node, "cpu")->integer, 2);
    CHECK_STR(get(node, "memory")->str, "4GiB");
    CHECK_INT(node->items[2].line, 4);
    const struct jr_yaml_node *listen = get(&root, "listen");
    CHECK_INT(listen->type, JR_YAML_SEQ);
    CHECK_INT(listen->count, 2);
    CHECK_INT(listen->items[0].line, 6);
    CHECK_INT(listen->items[1].line, 7);
    const struct jr_yaml_node *tls = get(&listen->items[1], "tls");
    CHECK_INT(tls->line, 8);
    CHECK_INT(tls->items[2].line, 9); /* key "key" */
    CHECK_STR(tls->items[2].str, "key");
    jr_yaml_free(&root);
    CHECK_INT(root.type, JR_YAML_NULL);
}

TEST(core_schema_scalars)
{
    struct jr_yaml_node root;
    static const struct { const char *text; int type; } cases[] = {
        {"v:", JR_YAML_NULL},          {"v: ~", JR_YAML_NULL},
        {"v: null", JR_YAML_NULL},     {"v: NULL", JR_YAML_NULL},
        {"v: nULL", JR_YAML_STRING},   {"v: true", JR_YAML_BOOL},
        {"v: True", JR_YAML_BOOL},     {"v: FALSE", JR_YAML_BOOL},
        {"v: yes", JR_YAML_STRING},    {"v: on", JR_YAML_STRING},
        {"v: 12", JR_YAML_INT},        {"v: -12", JR_YAML_INT},
        {"v: +12", JR_YAML_INT},       {"v: 0x1f", JR_YAML_INT},
        {"v: 0o17", JR_YAML_INT},      {"v: 0o18", JR_YAML_STRING},
        {"v: 0b101", JR_YAML_STRING},  {"v: 1_000", JR_YAML_STRING},
        {"v: 1.5", JR_YAML_FLOAT},     {"v: .5", JR_YAML_FLOAT},
        {"v: 1.", JR_YAML_FLOAT},      {"v: 1e3", JR_YAML_FLOAT},
        {"v: -1.5E-3", JR_YAML_FLOAT}, {"v: .inf", JR_YAML_FLOAT},
        {"v: -.Inf", JR_YAML_FLOAT},   {"v: .NaN", JR_YAML_FLOAT},
        {"v: .", JR_YAML_STRING},      {"v: 1e", JR_YAML_STRING},
        {"v: 4GiB", JR_YAML_STRING},   {"v: \"12\"", JR_YAML_STRING},
        {"v: 'true'", JR_YAML_STRING}, {"v: \"\"", JR_YAML_STRING},
        {"v: !!str 12", JR_YAML_STRING}, {"v: ! 12", JR_YAML_STRING},
        {"v: !!int \"12\"", JR_YAML_INT}, {"v: !!float 1", JR_YAML_FLOAT},
        {"v: |\n  12\n", JR_YAML_STRING}, {"v: 1.2.3", JR_YAML_STRING},
        {"v: 127.0.0.1:8080", JR_YAML_STRING},
        {"v: [1]", JR_YAML_SEQ},       {"v: {}", JR_YAML_MAP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int type = type_of(cases[i].text, &root);
        if (type != cases[i].type)
            UNIT_FAIL("%s: type %d, expected %d (%s)", cases[i].text, type,
                      cases[i].type, err);
        jr_yaml_free(&root);
    }

    CHECK_INT(type_of("v: 0x7fffffffffffffff", &root), JR_YAML_INT);
    CHECK_INT(get(&root, "v")->integer, 0x7fffffffffffffffLL);
    jr_yaml_free(&root);
    CHECK_INT(type_of("v: -9223372036854775808", &root), JR_YAML_INT);
    CHECK(get(&root, "v")->integer < -9223372036854775807LL);
    jr_yaml_free(&root);
    CHECK_INT(type_of("v: 0o17", &root), JR_YAML_INT);
    CHECK_INT(get(&root, "v")->integer, 15);
    jr_yaml_free(&root);
    CHECK_INT(type_of("v: -.inf", &root), JR_YAML_FLOAT);
    CHECK(isinf(get(&root, "v")->number) && get(&root, "v")->number < 0);
    jr_yaml_free(&root);
    CHECK_INT(type_of("v: .nan", &root), JR_YAML_FLOAT);
    CHECK(isnan(get(&root, "v")->number));
    jr_yaml_free(&root);
    CHECK_INT(type_of("v: TRUE", &root), JR_YAML_BOOL);
    CHECK_INT(get(&root, "v")->boolean, 1);
    jr_yaml_free(&root);
    /* A quoted NUL survives: strings carry their length. */
    CHECK_INT(type_of("v: \"a\\0b\"", &root), JR_YAML_STRING);
    CHECK_INT(get(&root, "v")->len, 3);
    jr_yaml_free(&root);
    /* Keys are their text, whatever they would resolve to. */
    CHECK_INT(parse("8080: a\n~: b\n", &root), 0);
    CHECK_STR(root.items[0].str, "8080");
    CHECK_STR(root.items[2].str, "~");
    jr_yaml_free(&root);
}

TEST(empty_documents)
{
    struct jr_yaml_node root;
    CHECK_INT(parse("", &root), 0);
    CHECK_INT(root.type, JR_YAML_NULL);
    jr_yaml_free(&root);
    CHECK_INT(parse("# nothing\n", &root), 0);
    CHECK_INT(root.type, JR_YAML_NULL);
    jr_yaml_free(&root);
    CHECK_INT(parse("---\n...\n", &root), 0);
    CHECK_INT(root.type, JR_YAML_NULL);
    jr_yaml_free(&root);
}

TEST(errors_carry_lines)
{
    check_error("a: 1\nb: 2\na: 3\n",
                "t.yaml:3: duplicate key \"a\" (first at line 1)");
    check_error("a:\n  - [1\nb: 2\n",
                "t.yaml:3: did not find expected ',' or ']' "
                "(while parsing a flow sequence at line 2)");
    check_error("a: 1\n  b: 2\n",
                "t.yaml:2: mapping values are not allowed in this context");
    check_error("a:\n\tb: 1\n",
                "t.yaml:2: found character that cannot start any token "
                "(while scanning for the next token) (tabs cannot indent YAML)");
    check_error("a: 1\n---\nb: 2\n",
                "t.yaml:2: only one YAML document is allowed, a second one "
                "starts here");
    check_error("a: &x 1\nb: *x\n", "t.yaml:1: anchors (&x) are not supported");
    check_error("a: *x\n", "t.yaml:1: aliases (*x) are not supported");
    check_error("a:\n  b: !foo 1\n", "t.yaml:2: unsupported tag !foo");
    check_error("a: !!int 1.5\n", "t.yaml:1: not a valid !!int: \"1.5\"");
    check_error("a: !!map [1]\n", "t.yaml:1: unsupported tag "
                                  "tag:yaml.org,2002:map");
    check_error("a:\n  b: 9223372036854775808\n",
                "t.yaml:2: integer out of range: 9223372036854775808");
    check_error("a: 0x8000000000000000\n",
                "t.yaml:1: integer out of range: 0x8000000000000000");
    check_error("a: 1\n? [x]\n: 2\n", "t.yaml:2: mapping keys must be scalars");
    check_error("a: 1\n\xff\n", "t.yaml:2: invalid leading UTF-8 octet (#FF)");

    char deep[2 * JR_YAML_MAX_DEPTH + 8];
    memset(deep, '[', JR_YAML_MAX_DEPTH + 2);
    deep[JR_YAML_MAX_DEPTH + 2] = '\0';
    check_error(deep, "t.yaml:1: nesting deeper than 200 levels");
}

TEST(files)
{
    struct jr_yaml_node root;
    char path[] = "/tmp/jobrt-test-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "a:\n  b: [1, 2]\n";
    CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
    CHECK_INT(jr_yaml_parse_file(path, &root, err, sizeof(err)), 0);
    CHECK_INT(get(get(&root, "a"), "b")->items[1].integer, 2);
    jr_yaml_free(&root);

    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK_INT(write(fd, "a: [\n", 5), 5);
    close(fd);
    char expected[256];
    CHECK_INT(jr_yaml_parse_file(path, &root, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected),
             "%s:1: did not find expected node content "
             "(while parsing a flow node)", path);
    CHECK_STR(err, expected);
    unlink(path);

    CHECK_INT(jr_yaml_parse_file(path, &root, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "%s: No such file or directory", path);
    CHECK_STR(err, expected);
    CHECK_INT(jr_yaml_parse_file("/", &root, err, sizeof(err)), -1);
    CHECK_STR(err, "/: Is a directory");
}

TEST(err_buffer_is_cut_not_overrun)
{
    struct jr_yaml_node root;
    char small[12];
    memset(small, 'x', sizeof(small));
    CHECK_INT(jr_yaml_parse("a: *b", 5, "long-name.yaml", &root, small,
                            sizeof(small)), -1);
    CHECK_STR(small, "long-name.y");
    jr_yaml_free(&root);
}

/* Runs chunk with the binding loaded as `yaml`; it returns a string that
 * must be "ok". */
static void check_lua(const char *chunk)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "jobrt.yaml", luaopen_jobrt_yaml, 0);
    lua_setglobal(L, "yaml");
    if (luaL_dostring(L, chunk) != LUA_OK)
        UNIT_FAIL("lua error: %s", lua_tostring(L, -1));
    else
        CHECK_STR(lua_tostring(L, -1), "ok");
    lua_close(L);
}

TEST(lua_binding)
{
    check_lua("local doc, lines = yaml.load_string('a:\\n  b: [1, x, ~]\\n', 'n')\n"
              "assert(doc.a.b[1] == 1 and math.type(doc.a.b[1]) == 'integer')\n"
              "assert(doc.a.b[2] == 'x' and doc.a.b[3] == yaml.null)\n"
              "assert(lines[doc].line == 1 and lines[doc].keys.a == 1)\n"
              "assert(lines[doc.a].line == 2 and lines[doc.a].keys.b == 2)\n"
              "assert(lines[doc.a.b].keys[3] == 2)\n"
              "return 'ok'");
    check_lua("local doc, err = yaml.load_string('a: [', 'n.yaml')\n"
              "assert(doc == nil)\n"
              "return err == 'n.yaml:1: did not find expected node content "
              "(while parsing a flow node)' and 'ok' or err");
    check_lua("local doc, lines = yaml.load_string('')\n"
              "assert(doc == yaml.null and next(lines) == nil)\n"
              "local ok, e = pcall(yaml.load_string)\n"
              "assert(not ok and e:find('string expected'))\n"
              "return 'ok'");
}

int main(void)
{
    RUN(structure_and_lines);
    RUN(core_schema_scalars);
    RUN(empty_documents);
    RUN(errors_carry_lines);
    RUN(files);
    RUN(err_buffer_is_cut_not_overrun);
    RUN(lua_binding);
    return UNIT_DONE();
}

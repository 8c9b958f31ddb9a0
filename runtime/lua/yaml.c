/* jobrt.yaml: YAML text -> Lua tables, plus a side table that gives the line
 * of every container and of each of its keys, so that the configuration
 * schema can point at FILE:LINE. The parsing itself is runtime/config.c. */
#include <lauxlib.h>
#include <lua.h>

#include "config.h"

/* Long enough for a path and a message; longer ones are cut. */
#define ERR_MAX 1024

/* Pushes node; records containers in the lines table at stack index lines.
 * May raise (out of memory), so it runs only inside build's protected call;
 * the tree's depth is bounded by JR_YAML_MAX_DEPTH. */
static void push_node(lua_State *L, const struct jr_yaml_node *n, int lines)
{
    int seq = n->type == JR_YAML_SEQ;

    switch (n->type) {
    case JR_YAML_NULL:
        lua_pushlightuserdata(L, NULL); /* the same value as cjson.null */
        return;
    case JR_YAML_BOOL:
        lua_pushboolean(L, n->boolean);
        return;
    case JR_YAML_INT:
        lua_pushinteger(L, (lua_Integer)n->integer);
        return;
    case JR_YAML_FLOAT:
        lua_pushnumber(L, (lua_Number)n->number);
        return;
    case JR_YAML_STRING:
        lua_pushlstring(L, n->str, n->len);
        return;
    case JR_YAML_SEQ:
    case JR_YAML_MAP:
        break;
    }

    size_t entries = seq ? n->count : n->count / 2;
    luaL_checkstack(L, 8, "YAML nesting");
    lua_createtable(L, seq ? (int)entries : 0, seq ? 0 : (int)entries); /* t */
    lua_createtable(L, 0, 2);                                           /* info */
    lua_pushinteger(L, n->line);
    lua_setfield(L, -2, "line");
    lua_createtable(L, seq ? (int)entries : 0, seq ? 0 : (int)entries); /* keys */
    for (size_t i = 0; i < entries; i++) {
        if (seq) {
            push_node(L, &n->items[i], lines);
            lua_rawseti(L, -4, (lua_Integer)i + 1);
            lua_pushinteger(L, n->items[i].line);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        } else {
            const struct jr_yaml_node *key = &n->items[2 * i];
            lua_pushlstring(L, key->str, key->len);
            push_node(L, &n->items[2 * i + 1], lines);
            lua_rawset(L, -5);
            lua_pushlstring(L, key->str, key->len);
            lua_pushinteger(L, key->line);
            lua_rawset(L, -3);
        }
    }
    lua_setfield(L, -2, "keys"); /* t info */
    lua_pushvalue(L, -2);        /* t info t */
    lua_insert(L, -2);           /* t t info */
    lua_rawset(L, lines);        /* t */
}

/* build(root) -> doc, lines: protected, so a memory error cannot skip the
 * caller's jr_yaml_free. */
static int build(lua_State *L)
{
    const struct jr_yaml_node *root = lua_touserdata(L, 1);
    lua_newtable(L); /* lines, at index 2 */
    push_node(L, root, 2);
    lua_insert(L, 2);
    return 2;
}

/* Consumes root: converts it (or reports err) and frees it before any error
 * can be raised. */
static int push_result(lua_State *L, int rc, struct jr_yaml_node *root,
                       const char *err)
{
    if (rc != 0) {
        jr_yaml_free(root);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushcfunction(L, build);
    lua_pushlightuserdata(L, root);
    int status = lua_pcall(L, 1, 2, 0);
    jr_yaml_free(root);
    if (status != LUA_OK)
        return lua_error(L);
    return 2;
}

/* yaml.load_file(path) -> doc, lines | nil, "path:line: message" */
static int load_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct jr_yaml_node root;
    char err[ERR_MAX];
    int rc = jr_yaml_parse_file(path, &root, err, sizeof(err));
    return push_result(L, rc, &root, err);
}

/* yaml.load_string(text [, name]) -> doc, lines | nil, "name:line: message" */
static int load_string(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "<string>");
    struct jr_yaml_node root;
    char err[ERR_MAX];
    int rc = jr_yaml_parse(text, len, name, &root, err, sizeof(err));
    return push_result(L, rc, &root, err);
}

static const luaL_Reg yaml_functions[] = {
    {"load_file", load_file},
    {"load_string", load_string},
    {NULL, NULL},
};

int luaopen_jobrt_yaml(lua_State *L)
{
    luaL_newlib(L, yaml_functions);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}

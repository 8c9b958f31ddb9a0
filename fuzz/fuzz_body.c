/* libFuzzer target for the native submit's one-pass JSON reader
 * (runtime/lua/body_doc.c). Each input is read by jr_doc_read and decoded
 * by the runtime's JSON decoder (jobrt.json). Oracle (a failure aborts):
 * a text the reader takes is JSON the decoder takes too, and both read the
 * same value (types, integers and floats alike, strings byte for byte,
 * arrays and objects, the last of duplicate keys). The reader may refuse
 * any text (the decoder's path then takes it), so a refusal is no finding.
 * Run from the repository root (or set JOBRT_LUA_DIR to its lua/). */
#include "fuzz_lua.h"
#include "lua/body_doc.h"

int luaopen_jobrt_jsonc(lua_State *L);

#define NODES 512

static lua_State *L;
static int check_ref;

static const char CHECK[] =
    "local json = require('jobrt.json')\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then return math.type(a) == math.type(b) and a == b end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  if json.is_array(a) ~= json.is_array(b) then return false end\n"
    "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(text, read, taken)\n"
    "  if not taken then return 0 end\n"
    "  local v, err = json.decode(text)\n"
    "  assert(v ~= nil, 'the reader took what the decoder refuses (' .. tostring(err) .. '): ' .. text)\n"
    "  assert(same(read, v), 'the reader and the decoder read differently: ' .. text)\n"
    "  return 1\n"
    "end\n";

/* Pushes node i as the decoder would: marked arrays and objects, json.null. */
static void push_node(const struct jr_doc_node *nodes, int i, int array_mt, int object_mt,
                      int null_idx)
{
    const struct jr_doc_node *n = &nodes[i];
    lua_Integer k = 1;

    switch (n->type) {
    case JR_DOC_NULL: lua_pushvalue(L, null_idx); return;
    case JR_DOC_FALSE: lua_pushboolean(L, 0); return;
    case JR_DOC_TRUE: lua_pushboolean(L, 1); return;
    case JR_DOC_INT: lua_pushinteger(L, (lua_Integer)n->i); return;
    case JR_DOC_FLOAT: lua_pushnumber(L, n->f); return;
    case JR_DOC_STR: lua_pushlstring(L, n->s, n->len); return;
    default: break;
    }
    lua_createtable(L, 0, 0);
    for (int c = n->child; c >= 0; c = nodes[c].next) {
        if (n->type == JR_DOC_OBJ)
            lua_pushlstring(L, nodes[c].key, nodes[c].key_len);
        luaL_checkstack(L, 4, "deep");
        push_node(nodes, c, array_mt, object_mt, null_idx);
        if (n->type == JR_DOC_OBJ)
            lua_rawset(L, -3);
        else
            lua_rawseti(L, -2, k++);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->type == JR_DOC_ARR ? array_mt : object_mt);
    lua_setmetatable(L, -2);
}

static int array_ref, object_ref, null_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const luaL_Reg modules[] = {
        {"jobrt.jsonc", luaopen_jobrt_jsonc},
        {NULL, NULL},
    };
    L = fuzz_lua_open("fuzz_body", modules, CHECK, &check_ref);
    if (luaL_dostring(L, "local j = require('jobrt.jsonc') return j.array_mt, j.object_mt,"
                         " require('jobrt.json').null") != LUA_OK) {
        fprintf(stderr, "fuzz_body: %s\n", lua_tostring(L, -1));
        abort();
    }
    null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    object_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    array_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jr_doc_node nodes[NODES];
    int n = jr_doc_read((const char *)data, size, nodes, NODES);

    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (n >= 0) {
        if (nodes[0].type == JR_DOC_NULL)
            lua_rawgeti(L, LUA_REGISTRYINDEX, null_ref);
        else {
            lua_rawgeti(L, LUA_REGISTRYINDEX, null_ref);
            push_node(nodes, 0, array_ref, object_ref, lua_gettop(L));
            lua_remove(L, -2);
        }
    } else
        lua_pushnil(L);
    lua_pushboolean(L, n >= 0);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_body: oracle failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_pop(L, 1);
    return 0;
}

/* jobrt.modelc: the core model's strict check (lua/jobrt/model.lua) walked
 * in C, read from the same field tables, as the fast path of model.validate.
 * It only says yes or no: on any problem (or anything it is unsure of) it
 * answers nil and model.lua's own walker runs again to name the problems. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

int luaopen_jobrt_jsonc(lua_State *L);

/* Upvalues of check(). */
#define UV_ARRAY lua_upvalueindex(1)  /* the codec's array mark */
#define UV_OBJECT lua_upvalueindex(2) /* the codec's object mark */
#define UV_FIND lua_upvalueindex(3)   /* string.find, for key_pattern */
#define UV_SHAPES lua_upvalueindex(4) /* fields -> {required names}, weak */
#define UV_TYPES lua_upvalueindex(5)  /* type name -> enum type */
#define UV_KEYS 6                     /* the spec keys, as Lua strings */

/* The keys a spec may have; pushed from upvalues and looked up raw, since
 * a lookup by C string costs several times as much. */
enum key { KEY_TYPE, KEY_FIELDS, KEY_ITEM, KEY_LIMIT, KEY_KEY_LIMIT, KEY_KEY_PATTERN,
           KEY_MIN, KEY_VALUES, KEY_REQUIRED, KEY_FIXED, NKEYS };
static const char *const KEYS[NKEYS] = {
    "type", "fields", "item", "limit", "key_limit", "key_pattern",
    "min", "values", "required", "fixed",
};

/* Plenty for the model's nesting: job, task, inputs, an input, a field. */
#define STACK_PER_LEVEL 8

enum kind { K_OTHER, K_MARKED_ARRAY, K_MARKED_OBJECT, K_PLAIN };

struct walk {
    lua_State *L;
    int limits;  /* index of the limits table */
    int partial; /* an update: fixed fields refused, nothing required */
};

enum type {
    T_UNKNOWN, T_ANY, T_READONLY, T_STRING, T_INTEGER, T_NUMBER, T_BOOLEAN,
    T_ENUM, T_COMMAND, T_LIST, T_MAP, T_OBJECT
};

static const struct {
    const char *name;
    enum type type;
} TYPES[] = {
    {"string", T_STRING}, {"integer", T_INTEGER}, {"number", T_NUMBER},
    {"boolean", T_BOOLEAN}, {"any", T_ANY}, {"readonly", T_READONLY},
    {"enum", T_ENUM}, {"command", T_COMMAND}, {"list", T_LIST},
    {"map", T_MAP}, {"object", T_OBJECT},
};

static int check_value(struct walk *w, int v, int spec);

/* Push spec[key] (raw) and return its type. */
static int get(lua_State *L, int spec, enum key key)
{
    lua_pushvalue(L, lua_upvalueindex(UV_KEYS + key));
    return lua_rawget(L, spec);
}

/* spec.type of the spec table at idx. */
static enum type type_of(lua_State *L, int spec)
{
    enum type t = T_UNKNOWN;
    if (get(L, spec, KEY_TYPE) == LUA_TSTRING && lua_rawget(L, UV_TYPES) == LUA_TNUMBER)
        t = (enum type)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return t;
}

/* 1 if spec[key] is truthy. */
static int flag(lua_State *L, int spec, enum key key)
{
    int on = get(L, spec, key) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

static int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* How the table at idx is marked. A metatable other than the codec's marks
 * (getmetatable's __metatable, __index, __pairs...) is K_OTHER: the Lua
 * walker decides those. */
static enum kind kind_of(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return K_PLAIN;
    enum kind k = lua_rawequal(L, -1, UV_ARRAY)    ? K_MARKED_ARRAY
                  : lua_rawequal(L, -1, UV_OBJECT) ? K_MARKED_OBJECT
                                                   : K_OTHER;
    lua_pop(L, 1);
    return k;
}

/* Entries of the table at idx. */
static lua_Integer count(lua_State *L, int idx)
{
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* model.lua's is_list: a marked array, or a plain table whose entries
 * number exactly its length (#). Sets *len to the length. */
static int is_list(lua_State *L, int v, enum kind k, lua_Integer *len)
{
    if (k == K_MARKED_ARRAY) {
        *len = (lua_Integer)lua_rawlen(L, v);
        return 1;
    }
    if (k != K_PLAIN)
        return 0;
    *len = (lua_Integer)lua_rawlen(L, v);
    return count(L, v) == *len;
}

/* 0 when n is within limits[spec.limit] (or spec has no limit). */
static int over(struct walk *w, int spec, enum key option, lua_Integer n)
{
    lua_State *L = w->L;
    int bad = 0;
    if (get(L, spec, option) != LUA_TNIL) {
        int is_int;
        if (lua_type(L, -1) != LUA_TSTRING) {
            bad = 1;
        } else {
            lua_rawget(L, w->limits);
            lua_Integer max = lua_tointegerx(L, -1, &is_int);
            bad = !is_int || lua_type(L, -1) != LUA_TNUMBER || n > max;
        }
    }
    lua_pop(L, 1);
    return bad;
}

/* The names of fields that are required, sorted as the walker does not
 * care: one table per field table, made once (the only allocation). */
static void push_required(lua_State *L, int fields)
{
    lua_pushvalue(L, fields);
    if (lua_rawget(L, UV_SHAPES) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, fields)) {
        if (lua_type(L, -1) == LUA_TTABLE && flag(L, lua_gettop(L), KEY_REQUIRED)) {
            lua_pushvalue(L, -2);
            lua_rawseti(L, -4, ++n);
        }
        lua_pop(L, 1);
    }
    lua_pushvalue(L, fields);
    lua_pushvalue(L, -2);
    lua_rawset(L, UV_SHAPES);
}

/* model.lua's check_object: every key a known, writable field whose value
 * passes its spec (null only where not required), whole floats of integer
 * fields written back as integers; then every required field present. */
static int check_object(struct walk *w, int v, int fields)
{
    lua_State *L = w->L;
    if (lua_type(L, v) != LUA_TTABLE || lua_type(L, fields) != LUA_TTABLE)
        return 1;
    enum kind k = kind_of(L, v);
    if (k == K_MARKED_ARRAY || k == K_OTHER)
        return 1;
    luaL_checkstack(L, STACK_PER_LEVEL, "model check");
    lua_pushnil(L);
    while (lua_next(L, v)) {
        int key = lua_gettop(L) - 1, x = key + 1;
        if (lua_type(L, key) != LUA_TSTRING) {
            lua_pop(L, 2);
            return 1;
        }
        lua_pushvalue(L, key);
        if (lua_rawget(L, fields) != LUA_TTABLE) {
            lua_pop(L, 3);
            return 1;
        }
        int spec = x + 1;
        enum type t = type_of(L, spec);
        int bad = t == T_READONLY || t == T_UNKNOWN || (w->partial && flag(L, spec, KEY_FIXED));
        if (!bad && is_null(L, x))
            bad = flag(L, spec, KEY_REQUIRED);
        else if (!bad) {
            int was_int = lua_isinteger(L, x);
            bad = check_value(w, x, spec);
            /* check_value left x converted in place: write it back as
             * model.lua does (v[k] = y), a key already present. */
            if (!bad && t == T_INTEGER && !was_int) {
                lua_pushvalue(L, key);
                lua_pushvalue(L, x);
                lua_rawset(L, v);
            }
        }
        lua_pop(L, 2);
        if (bad) {
            lua_pop(L, 1);
            return 1;
        }
    }
    if (w->partial)
        return 0;
    push_required(L, fields);
    int req = lua_gettop(L), missing = 0;
    for (lua_Integer i = 1; !missing && lua_rawgeti(L, req, i) != LUA_TNIL; i++) {
        missing = lua_rawget(L, v) == LUA_TNIL;
        lua_pop(L, 1);
    }
    lua_settop(L, req - 1);
    return missing;
}

/* A number against an integer or number spec; on success the value at v is
 * replaced by the integer model.lua would make of it. */
static int check_numeric(struct walk *w, int v, int spec, enum type t)
{
    lua_State *L = w->L;
    if (lua_type(L, v) != LUA_TNUMBER)
        return 1;
    if (t == T_INTEGER) {
        int is_int;
        lua_Integer n = lua_tointegerx(L, v, &is_int);
        if (!is_int)
            return 1;
        if (!lua_isinteger(L, v)) {
            lua_pushinteger(L, n);
            lua_replace(L, v);
        }
    } else if (lua_tonumber(L, v) != lua_tonumber(L, v)) {
        return 1;
    }
    int bad = 0;
    if (get(L, spec, KEY_MIN) != LUA_TNIL)
        bad = lua_type(L, -1) != LUA_TNUMBER || lua_compare(L, v, -1, LUA_OPLT);
    lua_pop(L, 1);
    return bad;
}

static int check_enum(lua_State *L, int v, int spec)
{
    int top = lua_gettop(L), found = 0;
    if (get(L, spec, KEY_VALUES) == LUA_TTABLE) {
        for (lua_Integer i = 1; !found && lua_rawgeti(L, top + 1, i) != LUA_TNIL; i++) {
            found = lua_type(L, -1) == LUA_TSTRING && lua_rawequal(L, v, -1);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    return !found;
}

/* Items 1.. (ipairs) of the list v against the spec at item, written back
 * where an integer spec converted a whole float. */
static int check_items(struct walk *w, int v, int item)
{
    lua_State *L = w->L;
    luaL_checkstack(L, STACK_PER_LEVEL, "model check");
    enum type t = type_of(L, item);
    for (lua_Integer i = 1; lua_rawgeti(L, v, i) != LUA_TNIL; i++) {
        int x = lua_gettop(L);
        int was_int = lua_isinteger(L, x);
        if (check_value(w, x, item)) {
            lua_pop(L, 1);
            return 1;
        }
        if (t == T_INTEGER && !was_int) {
            lua_pushvalue(L, x);
            lua_rawseti(L, v, i);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* A list (or command) whose length is within its limit; its items checked
 * against spec.item, or as strings for a command. */
static int check_list(struct walk *w, int v, int spec, int command)
{
    lua_State *L = w->L;
    lua_Integer len;
    if (lua_type(L, v) != LUA_TTABLE || !is_list(L, v, kind_of(L, v), &len))
        return 1;
    if (over(w, spec, KEY_LIMIT, len))
        return 1;
    if (command) {
        for (lua_Integer i = 1; lua_rawgeti(L, v, i) != LUA_TNIL; i++) {
            int bad = lua_type(L, -1) != LUA_TSTRING;
            lua_pop(L, 1);
            if (bad)
                return 1;
        }
        lua_pop(L, 1);
        return 0;
    }
    if (get(L, spec, KEY_ITEM) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 1;
    }
    int bad = check_items(w, v, lua_gettop(L));
    lua_pop(L, 1);
    return bad;
}

/* 0 if the string key at idx is found by the Lua pattern at pattern. */
static int unmatched(lua_State *L, int key, int pattern)
{
    lua_pushvalue(L, UV_FIND);
    lua_pushvalue(L, key);
    lua_pushvalue(L, pattern);
    lua_call(L, 2, 1);
    int bad = lua_isnil(L, -1);
    lua_pop(L, 1);
    return bad;
}

/* A string-keyed object within its limit: keys matching key_pattern and
 * within key_limit, values against spec.item (not written back, as in
 * model.lua). */
static int check_map(struct walk *w, int v, int spec)
{
    lua_State *L = w->L;
    if (lua_type(L, v) != LUA_TTABLE)
        return 1;
    enum kind k = kind_of(L, v);
    if (k == K_MARKED_ARRAY || k == K_OTHER)
        return 1;
    luaL_checkstack(L, STACK_PER_LEVEL, "model check");
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            return 1;
        }
        n++;
    }
    if (over(w, spec, KEY_LIMIT, n))
        return 1;
    if (get(L, spec, KEY_ITEM) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 1;
    }
    int item = lua_gettop(L);
    get(L, spec, KEY_KEY_PATTERN);
    int pattern = lua_gettop(L);
    if (!lua_isnil(L, pattern) && lua_type(L, pattern) != LUA_TSTRING) {
        lua_pop(L, 2);
        return 1;
    }
    int bad = 0;
    lua_pushnil(L);
    while (!bad && lua_next(L, v)) {
        int key = lua_gettop(L) - 1;
        size_t klen;
        lua_tolstring(L, key, &klen);
        /* As model.lua: key_limit counts once the pattern holds. */
        bad = !lua_isnil(L, pattern) && unmatched(L, key, pattern);
        if (!bad)
            bad = over(w, spec, KEY_KEY_LIMIT, (lua_Integer)klen);
        /* Values are checked on a copy: model.lua keeps what it gets. */
        if (!bad) {
            lua_pushvalue(L, key + 1);
            bad = check_value(w, lua_gettop(L), item);
            lua_pop(L, 1);
        }
        lua_pop(L, bad ? 2 : 1);
    }
    lua_pop(L, 2);
    return bad;
}

/* 0 when the value at v passes the spec at spec (model.lua's CHECKERS);
 * an integer spec leaves the converted value at v. */
static int check_value(struct walk *w, int v, int spec)
{
    lua_State *L = w->L;
    enum type t = type_of(L, spec);
    switch (t) {
    case T_ANY:
    case T_READONLY:
        return 0;
    case T_STRING: {
        size_t len;
        if (lua_type(L, v) != LUA_TSTRING)
            return 1;
        lua_tolstring(L, v, &len);
        return over(w, spec, KEY_LIMIT, (lua_Integer)len);
    }
    case T_INTEGER:
    case T_NUMBER:
        return check_numeric(w, v, spec, t);
    case T_BOOLEAN:
        return lua_type(L, v) != LUA_TBOOLEAN;
    case T_ENUM:
        return check_enum(L, v, spec);
    case T_COMMAND:
        return lua_type(L, v) == LUA_TSTRING ? 0 : check_list(w, v, spec, 1);
    case T_LIST:
        return check_list(w, v, spec, 0);
    case T_MAP:
        return check_map(w, v, spec);
    case T_OBJECT: {
        get(L, spec, KEY_FIELDS);
        int bad = check_object(w, v, lua_gettop(L));
        lua_pop(L, 1);
        return bad;
    }
    case T_UNKNOWN:
        break;
    }
    return 1;
}

/* check(value, fields, limits, partial) -> true | nil: whether value is an
 * object that passes the field table fields (whole floats of integer fields
 * become integers in place). nil means the Lua walker must look. */
static int l_check(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 4);
    struct walk w = {L, 3, lua_toboolean(L, 4)};
    if (check_object(&w, 1, 2) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_jobrt_modelc(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, luaopen_jobrt_jsonc); /* the codec's marks */
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "array_mt");
    lua_getfield(L, -2, "object_mt");
    lua_remove(L, -3);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_getfield(L, -1, "__index");
    lua_getfield(L, -1, "find");
    lua_replace(L, -4);
    lua_pop(L, 2);
    lua_newtable(L); /* shapes, weak-keyed like model.lua's */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_createtable(L, 0, sizeof TYPES / sizeof TYPES[0]);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        lua_pushinteger(L, TYPES[i].type);
        lua_setfield(L, -2, TYPES[i].name);
    }
    for (int k = 0; k < NKEYS; k++)
        lua_pushstring(L, KEYS[k]);
    lua_pushcclosure(L, l_check, UV_KEYS - 1 + NKEYS);
    lua_setfield(L, -2, "check");
    return 1;
}

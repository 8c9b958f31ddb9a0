/* jobrt.modelc: the core model's strict check (lua/jobrt/model.lua) walked
 * in C, from the same field tables, as the fast path of model.validate.
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
#define UV_CACHE lua_upvalueindex(4)  /* field or spec table -> its digest, weak */
#define UV_TYPES lua_upvalueindex(5)  /* type name -> enum type */

/* Plenty for one level of the walk. */
#define STACK_PER_LEVEL 8

enum kind { K_OTHER, K_MARKED_ARRAY, K_MARKED_OBJECT, K_PLAIN };

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

/* A string held by a model table (which the digest keeps alive). */
struct name {
    const char *s;
    size_t len;
};

/* A spec table, digested once: reading the tables on every check cost
 * more than the walk. Userdata, so the collector owns it; its user values
 * hold the tables its pointers point into. */
struct spec {
    enum type type;
    int required, fixed, has_min;
    lua_Integer min;
    struct name limit, key_limit, key_pattern; /* s NULL: none */
    struct spec *item;                         /* list, map */
    struct shape *fields;                      /* object */
    size_t nvalues;                            /* enum */
    struct name values[];
};
#define SPEC_UV 3 /* the spec table, item or fields digest, values table */

/* A field table, digested: its names and their specs. */
struct shape {
    size_t n, nrequired;
    struct field {
        struct name name;
        struct spec *spec;
    } f[];
};

struct walk {
    lua_State *L;
    int limits;  /* index of the limits table */
    int partial; /* an update: fixed fields refused, nothing required */
    const void *array_mt, *object_mt; /* the codec's marks */
};

static struct shape *shape_of(lua_State *L, int fields);

/* The string at idx as a name, or s NULL when it is not a string. */
static struct name name_at(lua_State *L, int idx)
{
    struct name n = {NULL, 0};
    if (lua_type(L, idx) == LUA_TSTRING)
        n.s = lua_tolstring(L, idx, &n.len);
    return n;
}

static int same_name(const char *s, size_t len, struct name n)
{
    return n.len == len && (n.s == s || memcmp(n.s, s, len) == 0);
}

/* The digest made earlier for the table at idx (absolute), pushed; or NULL
 * with nothing pushed and room on the stack to make it. */
static void *cached_digest(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    if (lua_rawget(L, UV_CACHE) == LUA_TUSERDATA)
        return lua_touserdata(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, 2 * STACK_PER_LEVEL, "model check");
    return NULL;
}

/* Push the digest of the spec table at idx, made on first sight (the only
 * allocation). A field it cannot read makes the type T_UNKNOWN, which no
 * value passes. */
static struct spec *spec_of(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    struct spec *cached = cached_digest(L, idx);
    if (cached)
        return cached;
    size_t nvalues = 0;
    if (lua_getfield(L, idx, "values") == LUA_TTABLE)
        nvalues = lua_rawlen(L, -1);
    int values = lua_gettop(L);
    struct spec *s = lua_newuserdatauv(L, sizeof *s + nvalues * sizeof s->values[0], SPEC_UV);
    memset(s, 0, sizeof *s);
    int ud = lua_gettop(L);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, ud, 1);
    lua_pushvalue(L, values);
    lua_setiuservalue(L, ud, 3);
    lua_pushvalue(L, idx); /* cached first: a digest refers to itself safely */
    lua_pushvalue(L, ud);
    lua_rawset(L, UV_CACHE);

    if (lua_getfield(L, idx, "type") == LUA_TSTRING && lua_rawget(L, UV_TYPES) == LUA_TNUMBER)
        s->type = (enum type)lua_tointeger(L, -1);
    lua_getfield(L, idx, "required");
    lua_getfield(L, idx, "fixed");
    s->required = lua_toboolean(L, -2);
    s->fixed = lua_toboolean(L, -1);
    if (lua_getfield(L, idx, "min") != LUA_TNIL) {
        int is_int;
        s->min = lua_tointegerx(L, -1, &is_int);
        s->has_min = 1;
        if (!is_int || !lua_isinteger(L, -1))
            s->type = T_UNKNOWN;
    }
    static const char *const NAMED[] = {"limit", "key_limit", "key_pattern"};
    struct name *named[] = {&s->limit, &s->key_limit, &s->key_pattern};
    for (int i = 0; i < 3; i++) {
        int t = lua_getfield(L, idx, NAMED[i]);
        *named[i] = name_at(L, -1);
        if (t != LUA_TNIL && t != LUA_TSTRING)
            s->type = T_UNKNOWN;
    }
    for (size_t i = 0; i < nvalues; i++) {
        lua_rawgeti(L, values, (lua_Integer)i + 1);
        s->values[i] = name_at(L, -1);
        if (!s->values[i].s) /* a number among the values: Lua decides */
            s->type = T_UNKNOWN;
        lua_pop(L, 1);
    }
    s->nvalues = nvalues;
    lua_settop(L, ud);

    if (s->type == T_LIST || s->type == T_MAP) {
        if (lua_getfield(L, idx, "item") == LUA_TTABLE) {
            s->item = spec_of(L, -1);
            lua_setiuservalue(L, ud, 2);
        } else {
            s->type = T_UNKNOWN;
        }
    } else if (s->type == T_OBJECT) {
        if (lua_getfield(L, idx, "fields") == LUA_TTABLE) {
            s->fields = shape_of(L, -1);
            lua_setiuservalue(L, ud, 2);
        } else {
            s->type = T_UNKNOWN;
        }
    }
    lua_settop(L, ud);
    lua_remove(L, values);
    return s;
}

/* Push the digest of the field table at idx, made on first sight: its
 * user values are the table and each field's spec digest. */
static struct shape *shape_of(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    struct shape *cached = cached_digest(L, idx);
    if (cached)
        return cached;
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    struct shape *sh = lua_newuserdatauv(L, sizeof *sh + n * sizeof sh->f[0], (int)n + 1);
    memset(sh, 0, sizeof *sh + n * sizeof sh->f[0]);
    int ud = lua_gettop(L);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, ud, 1);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, ud);
    lua_rawset(L, UV_CACHE);
    lua_pushnil(L);
    while (sh->n < n && lua_next(L, idx)) {
        struct field *f = &sh->f[sh->n];
        f->name = name_at(L, -2);
        if (f->name.s && lua_type(L, -1) == LUA_TTABLE) {
            f->spec = spec_of(L, -1);
            sh->nrequired += f->spec->required;
            lua_setiuservalue(L, ud, (int)sh->n + 2);
            sh->n++;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, ud);
    return sh;
}

static int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* How the table at idx is marked. A metatable other than the codec's marks
 * (getmetatable's __metatable, __index, __pairs...) is K_OTHER: the Lua
 * walker decides those. */
static enum kind kind_of(const struct walk *w, int idx)
{
    lua_State *L = w->L;
    if (!lua_getmetatable(L, idx))
        return K_PLAIN;
    const void *mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    return mt == w->array_mt ? K_MARKED_ARRAY : mt == w->object_mt ? K_MARKED_OBJECT : K_OTHER;
}

/* model.lua's is_list: a marked array, or a plain table whose entries
 * number exactly its length (#). Sets *len to the length. */
static int is_list(const struct walk *w, int v, lua_Integer *len)
{
    lua_State *L = w->L;
    enum kind k = kind_of(w, v);
    if (k != K_MARKED_ARRAY && k != K_PLAIN)
        return 0;
    *len = (lua_Integer)lua_rawlen(L, v);
    if (k == K_MARKED_ARRAY)
        return 1;
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        lua_pop(L, 1);
        n++;
    }
    return n == *len;
}

/* 0 when n is within limits[key] (or there is no key). */
static int over(struct walk *w, struct name key, lua_Integer n)
{
    if (!key.s)
        return 0;
    lua_State *L = w->L;
    int is_int;
    lua_getfield(L, w->limits, key.s); /* key.s stays put: Lua's cache hits */
    lua_Integer max = lua_tointegerx(L, -1, &is_int);
    int bad = !is_int || lua_type(L, -1) != LUA_TNUMBER || n > max;
    lua_pop(L, 1);
    return bad;
}

/* A table the object walkers may take (not an array, no foreign
 * metatable), with stack room for one level. */
static int object_like(struct walk *w, int v)
{
    if (lua_type(w->L, v) != LUA_TTABLE)
        return 0;
    enum kind k = kind_of(w, v);
    if (k == K_MARKED_ARRAY || k == K_OTHER)
        return 0;
    luaL_checkstack(w->L, STACK_PER_LEVEL, "model check");
    return 1;
}

static int check_value(struct walk *w, int v, const struct spec *s);

/* model.lua's check_object: every key a known, writable field whose value
 * passes its spec (null only where not required), whole floats of integer
 * fields written back as integers; then every required field present. */
static int check_object(struct walk *w, int v, const struct shape *sh)
{
    lua_State *L = w->L;
    if (!object_like(w, v))
        return 1;
    size_t required = 0;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        int key = lua_gettop(L) - 1, x = key + 1;
        const struct spec *s = NULL;
        if (lua_type(L, key) == LUA_TSTRING) {
            size_t len;
            const char *name = lua_tolstring(L, key, &len);
            for (size_t i = 0; i < sh->n && !s; i++)
                if (same_name(name, len, sh->f[i].name))
                    s = sh->f[i].spec;
        }
        int bad = !s || s->type == T_READONLY || s->type == T_UNKNOWN || (w->partial && s->fixed);
        if (!bad) {
            required += s->required;
            if (is_null(L, x)) {
                bad = s->required;
            } else {
                int was_int = lua_isinteger(L, x);
                bad = check_value(w, x, s);
                /* check_value left x converted: write it back as model.lua
                 * does (v[k] = y), to a key already present. */
                if (!bad && s->type == T_INTEGER && !was_int) {
                    lua_pushvalue(L, key);
                    lua_pushvalue(L, x);
                    lua_rawset(L, v);
                }
            }
        }
        if (bad) {
            lua_pop(L, 2);
            return 1;
        }
        lua_pop(L, 1);
    }
    return !w->partial && required < sh->nrequired;
}

/* A number against an integer or number spec; on success the value at v is
 * replaced by the integer model.lua would make of it. */
static int check_numeric(lua_State *L, int v, const struct spec *s)
{
    if (lua_type(L, v) != LUA_TNUMBER)
        return 1;
    if (s->type == T_INTEGER) {
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
    if (!s->has_min)
        return 0;
    lua_pushinteger(L, s->min);
    int bad = lua_compare(L, v, -1, LUA_OPLT);
    lua_pop(L, 1);
    return bad;
}

static int check_enum(lua_State *L, int v, const struct spec *s)
{
    if (lua_type(L, v) != LUA_TSTRING)
        return 1;
    size_t len;
    const char *str = lua_tolstring(L, v, &len);
    for (size_t i = 0; i < s->nvalues; i++)
        if (same_name(str, len, s->values[i]))
            return 0;
    return 1;
}

/* A list (or command) within its limit, items 1.. (ipairs) against
 * spec.item (strings for a command), whole floats of integer items
 * written back. */
static int check_list(struct walk *w, int v, const struct spec *s)
{
    lua_State *L = w->L;
    lua_Integer len;
    if (lua_type(L, v) != LUA_TTABLE || !is_list(w, v, &len) || over(w, s->limit, len))
        return 1;
    luaL_checkstack(L, STACK_PER_LEVEL, "model check");
    for (lua_Integer i = 1; lua_rawgeti(L, v, i) != LUA_TNIL; i++) {
        int x = lua_gettop(L), bad;
        if (s->type == T_COMMAND) {
            bad = lua_type(L, x) != LUA_TSTRING;
        } else {
            int was_int = lua_isinteger(L, x);
            bad = check_value(w, x, s->item);
            if (!bad && s->item->type == T_INTEGER && !was_int) {
                lua_pushvalue(L, x);
                lua_rawseti(L, v, i);
            }
        }
        lua_pop(L, 1);
        if (bad)
            return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* 1 if string.find(key, pattern) finds nothing. */
static int unmatched(lua_State *L, int key, struct name pattern)
{
    lua_pushvalue(L, UV_FIND);
    lua_pushvalue(L, key);
    lua_pushlstring(L, pattern.s, pattern.len);
    lua_call(L, 2, 1);
    int bad = lua_isnil(L, -1);
    lua_pop(L, 1);
    return bad;
}

/* A string-keyed object within its limit: keys matching key_pattern, and
 * then within key_limit (as model.lua), values against spec.item, not
 * written back (model.lua keeps what it gets). */
static int check_map(struct walk *w, int v, const struct spec *s)
{
    lua_State *L = w->L;
    if (!object_like(w, v))
        return 1;
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
    if (over(w, s->limit, n))
        return 1;
    int bad = 0;
    lua_pushnil(L);
    while (!bad && lua_next(L, v)) {
        int key = lua_gettop(L) - 1;
        size_t klen;
        lua_tolstring(L, key, &klen);
        bad = (s->key_pattern.s && unmatched(L, key, s->key_pattern)) ||
              over(w, s->key_limit, (lua_Integer)klen) || check_value(w, key + 1, s->item);
        lua_pop(L, bad ? 2 : 1);
    }
    return bad;
}

/* 0 when the value at v passes the spec (model.lua's CHECKERS); an integer
 * spec leaves the converted value at v. */
static int check_value(struct walk *w, int v, const struct spec *s)
{
    lua_State *L = w->L;
    switch (s->type) {
    case T_ANY:
    case T_READONLY:
        return 0;
    case T_STRING: {
        size_t len;
        if (lua_type(L, v) != LUA_TSTRING)
            return 1;
        lua_tolstring(L, v, &len);
        return over(w, s->limit, (lua_Integer)len);
    }
    case T_INTEGER:
    case T_NUMBER:
        return check_numeric(L, v, s);
    case T_BOOLEAN:
        return lua_type(L, v) != LUA_TBOOLEAN;
    case T_ENUM:
        return check_enum(L, v, s);
    case T_COMMAND:
        return lua_type(L, v) == LUA_TSTRING ? 0 : check_list(w, v, s);
    case T_LIST:
        return check_list(w, v, s);
    case T_MAP:
        return check_map(w, v, s);
    case T_OBJECT:
        return check_object(w, v, s->fields);
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
    struct walk w = {L, 3, lua_toboolean(L, 4), lua_topointer(L, UV_ARRAY),
                     lua_topointer(L, UV_OBJECT)};
    const struct shape *sh = shape_of(L, 2);
    if (check_object(&w, 1, sh) != 0) {
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
    lua_newtable(L); /* the digests, weak-keyed like model.lua's shapes */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_createtable(L, 0, sizeof TYPES / sizeof TYPES[0]);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        lua_pushinteger(L, TYPES[i].type);
        lua_setfield(L, -2, TYPES[i].name);
    }
    lua_pushcclosure(L, l_check, 5);
    lua_setfield(L, -2, "check");
    return 1;
}

/* jobrt.image: the image store for Lua (the CLI's `jobrt images`, the
 * native API's admin routes, the puller). A store is a "jobrt.image_store"
 * userdata; what may take long (import, install, remove, gc) runs on
 * libuv's thread pool and calls back cb(result) or cb(nil, msg, CODE) from
 * the loop. Blob writers ("jobrt.image_blob") take a pull's downloads. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "image/internal.h"
#include "lua/runtime.h"

#define STORE_MT "jobrt.image_store"
#define BLOB_MT "jobrt.image_blob"
#define HOLD_MT "jobrt.image_hold"

struct lstore {
    struct jr_image_store *s; /* NULL once closed */
    int busy;                 /* thread-pool works using it */
};

static struct lstore *check_store(lua_State *L, int i)
{
    struct lstore *ls = luaL_checkudata(L, i, STORE_MT);

    if (!ls->s)
        luaL_error(L, "the image store is closed");
    return ls;
}

static int fail(lua_State *L, const struct jr_err *e)
{
    lua_pushnil(L);
    lua_pushstring(L, e->msg);
    lua_pushstring(L, jr_err_name(e->code ? e->code : JR_E_SYSTEM));
    return 3;
}

static void push_info(lua_State *L, const struct jr_image_info *i)
{
    lua_createtable(L, 0, 10);
    lua_pushstring(L, i->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, i->manifest);
    lua_setfield(L, -2, "manifest");
    lua_pushstring(L, i->config);
    lua_setfield(L, -2, "config");
    lua_pushinteger(L, i->nlayers);
    lua_setfield(L, -2, "layers");
    lua_pushinteger(L, i->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, i->blob_size);
    lua_setfield(L, -2, "blob_size");
    lua_pushinteger(L, i->created_ms);
    lua_setfield(L, -2, "created_ms");
    lua_pushstring(L, i->source);
    lua_setfield(L, -2, "source");
    lua_pushboolean(L, i->in_use);
    lua_setfield(L, -2, "in_use");
}

/* open(data_dir, {root =, max_image_size =, max_store_size =}) -> store */
static int l_open(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    struct jr_image_opts o = {0, 0, JR_IMAGE_ROOT_AUTO};
    struct jr_err e = {0, ""};
    struct lstore *ls;

    if (lua_istable(L, 2)) {
        const char *root;
        lua_getfield(L, 2, "root");
        root = lua_tostring(L, -1);
        o.root = root && !strcmp(root, "overlay") ? JR_IMAGE_ROOT_OVERLAY
               : root && !strcmp(root, "copy") ? JR_IMAGE_ROOT_COPY : JR_IMAGE_ROOT_AUTO;
        lua_getfield(L, 2, "max_image_size");
        o.max_image = (int64_t)lua_tonumber(L, -1);
        lua_getfield(L, 2, "max_store_size");
        o.max_total = (int64_t)lua_tonumber(L, -1);
        lua_pop(L, 3);
    }
    ls = lua_newuserdatauv(L, sizeof *ls, 0);
    memset(ls, 0, sizeof *ls);
    luaL_setmetatable(L, STORE_MT);
    if (jr_image_store_open(dir, &o, &ls->s, &e))
        return fail(L, &e);
    /* The probe forks: here, on the loop's thread, never from the pool. */
    jr_image_store_strategy(ls->s, NULL, 0);
    return 1;
}

static int store_gc(lua_State *L)
{
    struct lstore *ls = luaL_checkudata(L, 1, STORE_MT);

    /* A work in the pool holds a reference, so __gc never finds it busy;
     * an early __close leaves the store to the last work's end. */
    if (ls->busy)
        return 0;
    jr_image_store_close(ls->s);
    ls->s = NULL;
    return 0;
}

static int l_strategy(lua_State *L)
{
    struct lstore *ls = check_store(L, 1);
    char why[200];
    int k = jr_image_store_strategy(ls->s, why, sizeof why);

    lua_pushstring(L, k == JR_IMAGE_ROOT_OVERLAY ? "overlay" : "copy");
    lua_pushstring(L, why);
    return 2;
}

static int l_list(lua_State *L)
{
    struct lstore *ls = check_store(L, 1);
    struct jr_image_info *list = NULL;
    struct jr_err e = {0, ""};
    size_t n;

    if (jr_image_list(ls->s, &list, &n, &e))
        return fail(L, &e);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_info(L, &list[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(list);
    return 1;
}

static int l_get(lua_State *L)
{
    struct lstore *ls = check_store(L, 1);
    const char *name = luaL_checkstring(L, 2);
    struct jr_image_info info;
    struct jr_err e = {0, ""};

    if (jr_image_get(ls->s, name, &info, &e))
        return fail(L, &e);
    push_info(L, &info);
    return 1;
}

static int l_usage(lua_State *L)
{
    lua_pushinteger(L, jr_image_store_usage(check_store(L, 1)->s));
    return 1;
}

/* ---- thread-pool works ---- */

enum { W_IMPORT, W_INSTALL, W_REMOVE, W_GC };

struct work {
    uv_work_t req;
    lua_State *L;
    int kind, cb_ref, store_ref;
    struct lstore *ls;
    char *a, *b, *c;          /* the operation's strings */
    struct jr_image_info info;
    struct jr_image_gc_stats st;
    struct jr_err e;
    int rc;
};

static void work_run(uv_work_t *req)
{
    struct work *w = req->data;
    struct jr_image_store *s = w->ls->s;

    switch (w->kind) {
    case W_IMPORT: w->rc = jr_image_import(s, w->a, w->b, &w->info, &w->e); break;
    case W_INSTALL: w->rc = jr_image_install(s, w->a, w->b, w->c, &w->info, &w->e); break;
    case W_REMOVE: w->rc = jr_image_remove(s, w->a, &w->e); break;
    default: w->rc = jr_image_gc(s, &w->st, &w->e); break;
    }
}

static void work_done(uv_work_t *req, int status)
{
    struct work *w = req->data;
    lua_State *L = w->L;
    int n;

    if (status != 0 && w->rc == 0)
        w->rc = jr_err_set(&w->e, JR_E_SYSTEM, "the operation was canceled");
    w->ls->busy--;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->cb_ref);
    if (w->rc) {
        n = fail(L, &w->e);
    } else if (w->kind == W_GC) {
        lua_createtable(L, 0, 5);
        lua_pushinteger(L, w->st.blobs);
        lua_setfield(L, -2, "blobs");
        lua_pushinteger(L, w->st.layers);
        lua_setfield(L, -2, "layers");
        lua_pushinteger(L, w->st.roots);
        lua_setfield(L, -2, "roots");
        lua_pushinteger(L, w->st.temps);
        lua_setfield(L, -2, "temps");
        lua_pushinteger(L, w->st.bytes);
        lua_setfield(L, -2, "bytes");
        n = 1;
    } else if (w->kind == W_REMOVE) {
        lua_pushboolean(L, 1);
        n = 1;
    } else {
        push_info(L, &w->info);
        n = 1;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, w->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, w->store_ref);
    free(w->a);
    free(w->b);
    free(w->c);
    free(w);
    jr_pcall(L, n, 0);
}

static char *opt_dup(lua_State *L, int i)
{
    return lua_isnoneornil(L, i) ? NULL : strdup(luaL_checkstring(L, i));
}

/* Queues kind with the strings at 2.. (nstr of them) and the callback
 * after them. */
static int queue(lua_State *L, int kind, int nstr)
{
    struct lstore *ls = check_store(L, 1);
    struct work *w;

    luaL_checktype(L, 2 + nstr, LUA_TFUNCTION);
    if (!(w = calloc(1, sizeof *w)))
        return luaL_error(L, "out of memory");
    w->a = nstr > 0 ? opt_dup(L, 2) : NULL;
    w->b = nstr > 1 ? opt_dup(L, 3) : NULL;
    w->c = nstr > 2 ? opt_dup(L, 4) : NULL;
    w->kind = kind;
    w->ls = ls;
    w->L = jr_lua_of(L)->L;
    w->req.data = w;
    lua_pushvalue(L, 2 + nstr);
    w->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    w->store_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (uv_queue_work(jr_loop_of(L)->uv, &w->req, work_run, work_done) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, w->cb_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, w->store_ref);
        free(w->a);
        free(w->b);
        free(w->c);
        free(w);
        return luaL_error(L, "cannot queue the image store's work");
    }
    ls->busy++;
    return 0;
}

/* store:import(path, name|nil, cb) */
static int l_import(lua_State *L) { return queue(L, W_IMPORT, 2); }
/* store:install(name, manifest_digest, source, cb) */
static int l_install(lua_State *L) { return queue(L, W_INSTALL, 3); }
/* store:remove(name, cb) */
static int l_remove(lua_State *L) { return queue(L, W_REMOVE, 1); }
/* store:gc(cb) */
static int l_gc(lua_State *L) { return queue(L, W_GC, 0); }

/* ---- blobs ---- */

static int l_has_blob(lua_State *L)
{
    lua_pushboolean(L, jr_image_blob_has(check_store(L, 1)->s, luaL_checkstring(L, 2)));
    return 1;
}

/* store:read_blob(digest, max) -> string */
static int l_read_blob(lua_State *L)
{
    struct lstore *ls = check_store(L, 1);
    struct jr_err e = {0, ""};
    char *text;
    size_t len;

    if (jr_image_blob_read(ls->s, luaL_checkstring(L, 2), (size_t)luaL_optinteger(L, 3, 4 << 20),
                           &text, &len, &e))
        return fail(L, &e);
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

struct lblob {
    struct jr_image_blob_w *w; /* NULL once committed or aborted */
};

/* store:blob_writer(digest, max_size) -> writer, offset (bytes kept of an
 * earlier try: ask the server for the rest) */
static int l_blob_writer(lua_State *L)
{
    struct lstore *ls = check_store(L, 1);
    const char *digest = luaL_checkstring(L, 2);
    struct lblob *b = lua_newuserdatauv(L, sizeof *b, 0);
    struct jr_err e = {0, ""};
    int64_t off;

    b->w = NULL;
    luaL_setmetatable(L, BLOB_MT);
    if (jr_image_blob_begin(ls->s, digest, (int64_t)luaL_optinteger(L, 3, 0), &b->w, &off, &e))
        return fail(L, &e);
    lua_pushinteger(L, off);
    return 2;
}

static struct lblob *check_blob(lua_State *L)
{
    struct lblob *b = luaL_checkudata(L, 1, BLOB_MT);

    if (!b->w)
        luaL_error(L, "the blob writer is finished");
    return b;
}

static int l_blob_write(lua_State *L)
{
    struct lblob *b = check_blob(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    struct jr_err e = {0, ""};

    if (jr_image_blob_write(b->w, s, n, &e))
        return fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_blob_commit(lua_State *L)
{
    struct lblob *b = check_blob(L);
    struct jr_err e = {0, ""};
    int rc = jr_image_blob_commit(b->w, &e);

    b->w = NULL;
    if (rc)
        return fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* writer:abort(keep): keep the partial file for a later resume. */
static int l_blob_abort(lua_State *L)
{
    struct lblob *b = luaL_checkudata(L, 1, BLOB_MT);

    jr_image_blob_abort(b->w, lua_toboolean(L, 2));
    b->w = NULL;
    return 0;
}

static int blob_gc(lua_State *L)
{
    struct lblob *b = luaL_checkudata(L, 1, BLOB_MT);

    jr_image_blob_abort(b->w, 1);
    b->w = NULL;
    return 0;
}

/* store:pull_hold() -> hold (release with hold:release() or <close>) */
static int l_pull_hold(lua_State *L)
{
    struct lstore *ls = check_store(L, 1);
    struct jr_err e = {0, ""};
    int *h = lua_newuserdatauv(L, sizeof *h, 0);

    *h = -1;
    luaL_setmetatable(L, HOLD_MT);
    if ((*h = jr_image_pull_hold(ls->s, &e)) < 0)
        return fail(L, &e);
    return 1;
}

static int hold_release(lua_State *L)
{
    int *h = luaL_checkudata(L, 1, HOLD_MT);

    if (*h >= 0)
        close(*h);
    *h = -1;
    return 0;
}

/* ---- names and documents ---- */

static int l_name_valid(lua_State *L)
{
    lua_pushboolean(L, jr_image_name_valid(luaL_checkstring(L, 1)));
    return 1;
}

static int l_name_normal(lua_State *L)
{
    char out[300];

    if (jr_image_name_normal(luaL_checkstring(L, 1), out, sizeof out))
        return luaL_error(L, "image name too long");
    lua_pushstring(L, out);
    return 1;
}

static int l_platform(lua_State *L)
{
    const char *os, *arch, *variant;

    jr_image_platform(&os, &arch, &variant);
    lua_pushstring(L, os);
    lua_pushstring(L, arch);
    if (variant)
        lua_pushstring(L, variant);
    else
        lua_pushnil(L);
    return 3;
}

static void push_desc(lua_State *L, const struct jr_image_desc *d)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, d->digest);
    lua_setfield(L, -2, "digest");
    lua_pushinteger(L, d->size);
    lua_setfield(L, -2, "size");
    if (d->media_type) {
        lua_pushstring(L, d->media_type);
        lua_setfield(L, -2, "media_type");
    }
}

/* parse_manifest(text) -> {is_index, media_type, config, items = {...},
 * pick = the index entry for this machine (1-based) or nil, pick_error} */
static int l_parse_manifest(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    struct jr_image_manifest m;
    char why[300];

    if (jr_image_manifest_parse(text, len, &m, why, sizeof why)) {
        jr_image_manifest_free(&m);
        lua_pushnil(L);
        lua_pushstring(L, why);
        lua_pushstring(L, "INVALID");
        return 3;
    }
    lua_createtable(L, 0, 5);
    lua_pushboolean(L, m.is_index);
    lua_setfield(L, -2, "is_index");
    if (m.media_type) {
        lua_pushstring(L, m.media_type);
        lua_setfield(L, -2, "media_type");
    }
    if (!m.is_index) {
        push_desc(L, &m.config);
        lua_setfield(L, -2, "config");
    }
    lua_createtable(L, m.nitems, 0);
    for (int i = 0; i < m.nitems; i++) {
        push_desc(L, &m.items[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "items");
    if (m.is_index) {
        int pick = jr_image_pick_platform(&m, why, sizeof why);
        if (pick >= 0)
            lua_pushinteger(L, pick + 1);
        else
            lua_pushstring(L, why);
        lua_setfield(L, -2, pick >= 0 ? "pick" : "pick_error");
    }
    jr_image_manifest_free(&m);
    return 1;
}

static const luaL_Reg store_methods[] = {
    {"strategy", l_strategy}, {"list", l_list}, {"get", l_get}, {"usage", l_usage},
    {"import", l_import}, {"install", l_install}, {"remove", l_remove}, {"gc", l_gc},
    {"has_blob", l_has_blob}, {"read_blob", l_read_blob}, {"blob_writer", l_blob_writer},
    {"pull_hold", l_pull_hold}, {NULL, NULL},
};

static const luaL_Reg blob_methods[] = {
    {"write", l_blob_write}, {"commit", l_blob_commit}, {"abort", l_blob_abort}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"open", l_open}, {"name_valid", l_name_valid}, {"name_normal", l_name_normal},
    {"platform", l_platform}, {"parse_manifest", l_parse_manifest}, {NULL, NULL},
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}

int luaopen_jobrt_image(lua_State *L)
{
    new_class(L, STORE_MT, store_methods, store_gc);
    new_class(L, BLOB_MT, blob_methods, blob_gc);
    luaL_newmetatable(L, HOLD_MT);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, hold_release);
    lua_setfield(L, -2, "release");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hold_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, hold_release);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}

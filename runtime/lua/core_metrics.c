/* jobrt.core: the metrics exposition (runtime/metrics_render.c) over the
 * loop's metrics and the open core, and the one count Lua reports itself:
 * submissions the pipeline refused before they reached the core. */
#include <lauxlib.h>

#include "lua/core_internal.h"
#include "metrics.h"

/* metrics([{version =}]) -> the text exposition (format 0.0.4) | nil, err.
 * Without the open core only the counters and the process are there. */
static int l_metrics(lua_State *L)
{
    struct core *c = jr_lcore_check(L);
    struct jr_lua *lua = jr_lua_of(L);
    struct jr_buf b = { NULL, 0, 0 };
    const char *version = NULL;
    int rc;

    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "version");
        version = lua_tostring(L, -1);
    }
    rc = jr_metrics_render(lua->loop->metrics, c->core, (int64_t)lua->mem.used, version, &b);
    if (rc) {
        jr_buf_free(&b);
        return jr_lcore_fail(L, JR_E_STORE, "the metrics could not be read");
    }
    lua_pushlstring(L, b.data ? b.data : "", b.len);
    jr_buf_free(&b);
    return 1;
}

/* rejected(surface, reason): a submission refused before the core stored
 * it; reason "invalid" (the model's check) or "policy". */
static int l_rejected(lua_State *L)
{
    static const char *const reasons[] = { "invalid", "policy", NULL };
    const char *surface = luaL_checkstring(L, 1);
    int r = luaL_checkoption(L, 2, NULL, reasons);

    jr_metrics_count(jr_lua_of(L)->loop->metrics, JR_M_REJECTIONS, surface, reasons[r], 1);
    return 0;
}

const luaL_Reg jr_lcore_metrics_funcs[] = {
    { "metrics", l_metrics },
    { "rejected", l_rejected },
    { NULL, NULL },
};

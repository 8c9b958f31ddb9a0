/* The one way a binding file makes a userdata class: a named metatable
 * with __index, __gc, __close and __tostring (STYLE.md, practice 2). */
#include "lua/runtime.h"

void jr_lua_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction gc, lua_CFunction tostring)
{
    if (!luaL_newmetatable(L, name)) {
        lua_pop(L, 1);
        return;
    }
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__close");
    }
    if (tostring) {
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

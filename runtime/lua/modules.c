/* Start-up reads as this list: every C module the Lua state can require. */
#include <lauxlib.h>

#include "lua/runtime.h"

int luaopen_jobrt_http(lua_State *L);
int luaopen_jobrt_yaml(lua_State *L);
int luaopen_jobrt_jsonc(lua_State *L);
int luaopen_jobrt_crypto(lua_State *L);
int luaopen_jobrt_tls(lua_State *L);
int luaopen_jobrt_image(lua_State *L);
int luaopen_jobrt_core(lua_State *L);
int luaopen_jobrt_modelc(lua_State *L);
int luaopen_lpeg(lua_State *L);
int luaopen_cjson(lua_State *L);

const struct jr_lua_module jr_lua_modules[] = {
    {"jobrt.runtime", luaopen_jobrt_runtime},
    {"jobrt.http", luaopen_jobrt_http},
    {"jobrt.yaml", luaopen_jobrt_yaml},
    {"jobrt.jsonc", luaopen_jobrt_jsonc},
    {"jobrt.crypto", luaopen_jobrt_crypto},
    {"jobrt.tls", luaopen_jobrt_tls},
    {"jobrt.image", luaopen_jobrt_image},
    {"jobrt.core", luaopen_jobrt_core},
    {"jobrt.modelc", luaopen_jobrt_modelc},
    {"lpeg", luaopen_lpeg},
    {"cjson", luaopen_cjson},
    {NULL, NULL},
};

/* libFuzzer target for the C model check (runtime/lua/model_check.c): each
 * input is decoded as JSON and checked by the C walker and by model.lua's
 * Lua walker, with small and default limits, as a job and as an update.
 * Oracle (a failure aborts): they agree, and on success converted alike.
 * Run from the repository root (or set JOBRT_LUA_DIR to its lua/). */
#include "fuzz_lua.h"
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_jobrt_jsonc(lua_State *L);
int luaopen_jobrt_modelc(lua_State *L);

static lua_State *L;
static int check_ref;

static const char CHECK[] =
    "local json = require('jobrt.json')\n"
    "local model = require('jobrt.model')\n"
    "assert(model.check_c, 'jobrt.modelc is missing')\n"
    "local function copy(v)\n"
    "  if type(v) ~= 'table' then return v end\n"
    "  local out = {}\n"
    "  for k, x in pairs(v) do out[k] = copy(x) end\n"
    "  return setmetatable(out, getmetatable(v))\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then return math.type(a) == math.type(b) and (a == b or a ~= a) end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return getmetatable(a) == getmetatable(b)\n"
    "end\n"
    "local LIMITS = { model.limits(nil), model.limits({ title = 4, description = 8, label_key = 2,\n"
    "  label_value = 3, labels = 1, env = 1, env_value = 5, tasks = 1, inline_input = 5, argv = 2 }) }\n"
    "return function(text)\n"
    "  local ok, v = pcall(json.decode, text)\n"
    "  if not ok or v == nil then return end\n"
    "  for _, limits in ipairs(LIMITS) do\n"
    "    for _, partial in ipairs({ false, true }) do\n"
    "      local a, b = copy(v), copy(v)\n"
    "      local c_ok = model.check_c(a, model.MODEL.job, limits, partial) == true\n"
    "      local lua_ok = model.walk(b, { taskless = true, partial = partial }, limits) ~= nil\n"
    "      assert(c_ok == lua_ok, 'C and Lua disagree on ' .. text)\n"
    "      assert(not c_ok or same(a, b), 'C and Lua convert differently: ' .. text)\n"
    "    end\n"
    "  end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const luaL_Reg modules[] = {
        {"jobrt.jsonc", luaopen_jobrt_jsonc},
        {"jobrt.modelc", luaopen_jobrt_modelc},
        {NULL, NULL},
    };
    L = fuzz_lua_open("fuzz_model", modules, CHECK, &check_ref);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_check(L, check_ref, "fuzz_model", data, size);
    return 0;
}

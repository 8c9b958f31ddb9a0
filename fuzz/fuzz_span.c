/* libFuzzer target for lua/jobrt/json_span.lua, run in a Lua 5.4 state with
 * lpeg and lua-cjson. Oracles (checked in Lua, a failure aborts): span()
 * never raises; an accepted span is one JSON value; cjson decodes the whole
 * body, and its "payload" equals the decoding of body:sub(start, stop), so a
 * signature checked over the span covers what the surface will act on.
 * The Lua libraries are not instrumented, so coverage comes from a line
 * hook on json_span.lua feeding libFuzzer's extra counters, plus a counter
 * per outcome. Run from the repository root (or set JOBRT_LUA_DIR).
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I/usr/include/lua5.4 \
 *   fuzz/fuzz_span.c -o build-fuzz/fuzz_span -llua5.4 -l:liblua5.4-lpeg.so.2 \
 *   -l:liblua5.4-cjson.so.0 -lm */
#include "fuzz_lua.h"
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define NCOUNTERS 4096
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t counters[NCOUNTERS];

static lua_State *L;
static int check_ref;

static const char CHECK[] =
    "local js = require('jobrt.json_span')\n"
    "local cjson = require('cjson').new()\n"
    "cjson.decode_invalid_numbers(false)\n"
    "cjson.decode_max_depth(1000)\n"
    "local function same(a, b)\n"
    "  if a == b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local OUTCOME = { MALFORMED = 1, DUPLICATE = 2, MISSING = 3 }\n"
    "return function(body)\n"
    "  local a, b, code = js.span(body, 'payload')\n"
    "  local f = js.span(body, 'payload', { fold_case = true })\n"
    "  if type(a) == 'number' then\n"
    "    assert(type(b) == 'number' and a >= 1 and b >= a and b <= #body, 'bad offsets')\n"
    "    assert(js.valid(body:sub(a, b)), 'the span is not one JSON value')\n"
    "    local ok, doc = pcall(cjson.decode, body)\n"
    "    assert(ok, 'cjson refuses a body span() accepted: ' .. tostring(doc))\n"
    "    local ok2, v = pcall(cjson.decode, body:sub(a, b))\n"
    "    assert(ok2, 'cjson refuses the span: ' .. tostring(v))\n"
    "    assert(same(doc.payload, v), 'the span is not the payload cjson sees')\n"
    "    return 0\n"
    "  end\n"
    "  assert(a == nil and type(b) == 'string' and OUTCOME[code], 'bad failure shape')\n"
    "  if code ~= 'MALFORMED' then\n"
    "    assert(js.valid(body), 'valid() disagrees with span()')\n"
    "  end\n"
    "  if f and code ~= 'DUPLICATE' and code ~= 'MISSING' then error('fold_case accepted a malformed body') end\n"
    "  return OUTCOME[code]\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = fuzz_lua_open("fuzz_span", NULL, CHECK, &check_ref);
    fuzz_lua_cover(L, counters, NCOUNTERS - 8, "json_span");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    counters[NCOUNTERS - 8 + (fuzz_lua_check(L, check_ref, "fuzz_span", data, size) & 7)]++;
    return 0;
}

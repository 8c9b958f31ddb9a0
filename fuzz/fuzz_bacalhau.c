/* libFuzzer target for the Bacalhau documents (api/bacalhau/): each input
 * goes to envelope.open for every signed kind, bare and wrapped as the
 * payload of an envelope with a real RSA key (made at start-up with the
 * openssl command) and a wrong signature; when it is a JSON object, to
 * payload.decode for every kind, and a decoded submit Spec to spec.to_job
 * (several node set-ups) and spec.emit (both API generations). Oracles
 * (checked in Lua, a failure aborts): no Lua error escapes; every failure
 * is nil plus {status = 400|401, message = string, field = string|nil};
 * no envelope opens; an echo decodes again and makes the same job.
 * Coverage of the Lua code comes from a line hook feeding libFuzzer's
 * extra counters. Run from the repository root (or set JOBRT_LUA_DIR). */
#include "fuzz_lua.h"
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_jobrt_jsonc(lua_State *L);
int luaopen_jobrt_crypto(lua_State *L);

#define NCOUNTERS 8192
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t counters[NCOUNTERS];

static lua_State *L;
static int check_ref;

static const char CHECK[] =
    "local dir = package.path:match('^(.*)/%?%.lua$') or 'lua'\n"
    "package.path = package.path .. ';' .. dir .. '/../?.lua'\n"
    "local json = require('jobrt.json')\n"
    "local crypto = require('jobrt.crypto')\n"
    "local envelope = require('api.bacalhau.envelope')\n"
    "local payload = require('api.bacalhau.payload')\n"
    "local spec = require('api.bacalhau.spec')\n"
    "local p = assert(io.popen('openssl genrsa 2048 2>/dev/null | openssl rsa -RSAPublicKey_out'\n"
    "  .. ' -outform DER 2>/dev/null'))\n"
    "local der = p:read('a')\n"
    "p:close()\n"
    "assert(#der > 200, 'openssl made no key')\n"
    "local PUB = crypto.base64_encode(der)\n"
    "local SIG = crypto.base64_encode(string.rep('\\1', 256))\n"
    "local SIGNED = { 'submit', 'cancel', 'approve', 'logs' }\n"
    "local DEFAULTS = { cpu = 500, memory = 1 << 30, timeout = 1800 }\n"
    "local OPTS = {\n"
    "  { images = { ubuntu = '/', host = '/' }, host_paths = { '/srv' }, defaults = DEFAULTS,\n"
    "    node_labels = { region = 'eu', cores = '8' } },\n"
    "  { wasm = { image = 'host', command = { 'wasmtime' } }, defaults = {}, max_tasks = 3 },\n"
    "}\n"
    "local function failed(v, e, what)\n"
    "  what = what or 'envelope.open'\n"
    "  assert(v == nil, what .. ': a failure must return nil first')\n"
    "  assert(type(e) == 'table', what .. ': err must be a table')\n"
    "  assert(e.status == 400 or e.status == 401, what .. ': bad status ' .. tostring(e.status))\n"
    "  assert(type(e.message) == 'string' and #e.message > 0, what .. ': no message')\n"
    "  assert(e.field == nil or type(e.field) == 'string', what .. ': bad field')\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b or (a ~= a and b ~= b) end\n"
    "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function submit(s)\n"
    "  for i, o in ipairs(OPTS) do\n"
    "    local job, pub = spec.to_job(s, o)\n"
    "    if job == nil then failed(job, pub, 'to_job') else\n"
    "      assert(type(pub) == 'string', 'to_job: no publisher')\n"
    "      assert(#job.tasks >= 1, 'to_job: no task')\n"
    "      json.encode(job)\n"
    "    end\n"
    "    -- only a stored job is echoed\n"
    "    for _, v in ipairs(job and { 'V1beta1', 'V1beta2' } or {}) do\n"
    "      local doc = spec.emit(s, v, o.defaults)\n"
    "      local text = json.encode(doc)\n"
    "      local again, err = payload.decode('submit', json.decode('{\"ClientID\":\"'\n"
    "        .. string.rep('a', 64) .. '\",\"APIVersion\":\"' .. v .. '\",\"Spec\":' .. text .. '}'))\n"
    "      assert(again, 'an echo does not decode: ' .. text .. ': ' .. tostring(err and err.message))\n"
    "      local job2, pub2 = spec.to_job(again.Spec, o)\n"
    "      assert((job == nil) == (job2 == nil), 'an echo makes a job where the Spec did not, or not'\n"
    "        .. ' where it did: ' .. text .. ': ' .. tostring((pub2 or pub or {}).message))\n"
    "      assert(job == nil or (same(job, job2) and pub == pub2), 'an echo makes another job: ' .. text)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return function(bytes)\n"
    "  local wrapped = '{\"payload\":' .. bytes .. ',\"signature\":\"' .. SIG\n"
    "    .. '\",\"client_public_key\":\"' .. PUB .. '\"}'\n"
    "  for _, kind in ipairs(SIGNED) do\n"
    "    failed(envelope.open(bytes, kind))\n"
    "    failed(envelope.open(wrapped, kind))\n"
    "  end\n"
    "  local doc = json.decode(bytes)\n"
    "  if type(doc) ~= 'table' or json.is_array(doc) then return 0 end\n"
    "  local n = 1\n"
    "  for i, kind in ipairs(payload.KINDS) do\n"
    "    local v, e = payload.decode(kind, doc)\n"
    "    if v == nil then failed(v, e, kind) else\n"
    "      n = n + i\n"
    "      json.encode(v)\n"
    "      if kind == 'submit' then submit(v.Spec) end\n"
    "    end\n"
    "  end\n"
    "  return n\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const luaL_Reg modules[] = {
        {"jobrt.jsonc", luaopen_jobrt_jsonc},
        {"jobrt.crypto", luaopen_jobrt_crypto},
        {NULL, NULL},
    };
    L = fuzz_lua_open("fuzz_bacalhau", modules, CHECK, &check_ref);
    fuzz_lua_cover(L, counters, NCOUNTERS - 64, "bacalhau/");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    counters[NCOUNTERS - 64 + (fuzz_lua_check(L, check_ref, "fuzz_bacalhau", data, size) & 63)]++;
    return 0;
}

/* libFuzzer target for the Kuscia requests (api/kuscia/): each input goes
 * to decode.request for every request message and to decode.watch; a
 * decoded CreateJobRequest goes to job.to_job (two deployments), and a job
 * made to the core model's check and the views. Oracles (checked in Lua, a
 * failure aborts): no Lua error escapes; every failure is nil plus
 * {code = 11100|11101, message = string} (to_job: 11100 and a message);
 * a decoded message encoded as the gateway answers decodes to the same
 * message; what to_job makes passes the core model's check, every party
 * is one task, the doc echoes into a query answer that is JSON; watch
 * frames are JSON. Coverage of the Lua code comes from a line hook feeding
 * libFuzzer's extra counters. Run from the repository root (or set
 * JOBRT_LUA_DIR). */
#include "fuzz_lua.h"
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_jobrt_jsonc(lua_State *L);
int luaopen_jobrt_modelc(lua_State *L);

#define NCOUNTERS 8192
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t counters[NCOUNTERS];

static lua_State *L;
static int check_ref;

static const char CHECK[] =
    "local dir = package.path:match('^(.*)/%?%.lua$') or 'lua'\n"
    "package.path = package.path .. ';' .. dir .. '/../?.lua;' .. dir .. '/../?/init.lua'\n"
    "local json = require('jobrt.json')\n"
    "local model = require('jobrt.model')\n"
    "local decode = require('api.kuscia.decode')\n"
    "local encode = require('api.kuscia.encode')\n"
    "local jobmap = require('api.kuscia.job')\n"
    "local view = require('api.kuscia.view')\n"
    "local MESSAGES = { 'CreateJobRequest', 'QueryJobRequest', 'DeleteJobRequest', 'JobControlRequest',\n"
    "  'ApproveJobRequest', 'BatchQueryJobStatusRequest' }\n"
    "local LIMITS = model.limits()\n"
    "local OPTS = {\n"
    "  { domains = { alice = true, bob = true }, task_id = function(j, i) return j .. '-' .. i end,\n"
    "    app_images = { ['secretflow-image'] = { image = 'host', command = { 'sh', '-c', '{{.TASK_ID}} x' },\n"
    "      resources = { cpu = 100, memory = 1 << 28 }, env = { A = '1' } } } },\n"
    "  { domains = { a = true }, task_id = function(j, i) return 't' .. i end,\n"
    "    app_images = { x = { image = 'alpine', command = { '{{ .KUSCIA_ROLE }}' } } } },\n"
    "}\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function failed(v, e, what)\n"
    "  assert(v == nil, what .. ': a failure must return nil first')\n"
    "  assert(type(e) == 'table', what .. ': err must be a table')\n"
    "  assert(e.code == 11100 or e.code == 11101, what .. ': bad code ' .. tostring(e.code))\n"
    "  assert(type(e.message) == 'string' and #e.message > 0, what .. ': no message')\n"
    "end\n"
    "local STATES = { 'created', 'queued', 'running', 'succeeded', 'failed', 'canceled', 'suspended',\n"
    "  'awaiting_approval', 'rejected' }\n"
    "local TSTATES = { 'pending', 'ready', 'running', 'succeeded', 'failed', 'canceled', 'skipped' }\n"
    "local function views(job, n)\n"
    "  local tasks = {}\n"
    "  for i, t in ipairs(job.tasks) do\n"
    "    local st = TSTATES[(n + i) % #TSTATES + 1]\n"
    "    tasks[i] = { alias = t.alias, state = st, error = (st == 'failed') and 'exit <1>' or nil,\n"
    "      started_at = (st ~= 'pending') and '2026-01-01T00:00:0' .. (i % 10) .. '.5Z' or nil }\n"
    "  end\n"
    "  local core_job = { id = job.id, surface = 'kuscia', state = STATES[n % #STATES + 1], tasks = tasks,\n"
    "    doc = json.decode(json.encode(job.doc)), created_at = '2026-01-01T00:00:00.1Z' }\n"
    "  local text = encode.proto('QueryJobResponse', { status = { code = 0, message = 'success' },\n"
    "    data = view.query(core_job) })\n"
    "  local back = assert(json.decode(text), 'the query answer is not JSON: ' .. text)\n"
    "  assert(back.data.job_id == job.id and #back.data.tasks == #job.doc.tasks, 'the query answer lost the job')\n"
    "  local frame = encode.go('WatchJobEventResponse', { type = 1, object = view.job_status(core_job) })\n"
    "  assert(json.decode(frame), 'a watch frame is not JSON: ' .. frame)\n"
    "end\n"
    "local function create(q, n)\n"
    "  for k, opts in ipairs(OPTS) do\n"
    "    local job, code, message = jobmap.to_job(q, opts)\n"
    "    if job == nil then\n"
    "      assert(code == 11100, 'to_job: bad code ' .. tostring(code))\n"
    "      assert(type(message) == 'string' and #message > 0, 'to_job: no message')\n"
    "    else\n"
    "      local parties = 0\n"
    "      for _, t in ipairs(q.tasks) do parties = parties + #t.parties end\n"
    "      assert(#job.tasks == parties, 'to_job: not one task per party')\n"
    "      local ok, err = model.validate(job, { limits = LIMITS })\n"
    "      -- Only the deployment's limits may refuse what the surface made.\n"
    "      assert(ok or (err:find('at most', 1, true) or err:find('longer than', 1, true)\n"
    "        or err:find('more than', 1, true)), 'the core refuses what to_job made: ' .. tostring(err))\n"
    "      views(job, n + k)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return function(bytes)\n"
    "  local n = 1\n"
    "  local w, werr = decode.watch(bytes)\n"
    "  if w == nil then assert(type(werr) == 'string', 'watch: no message') else\n"
    "    assert(math.type(w.timeout_seconds) == 'integer', 'watch: timeout') end\n"
    "  for i, name in ipairs(MESSAGES) do\n"
    "    local q, err = decode.request(name, bytes)\n"
    "    if q == nil then failed(q, err, name) else\n"
    "      n = n + i\n"
    "      local text = encode.proto(name, q)\n"
    "      local again, e2 = decode.request(name, text)\n"
    "      assert(again, name .. ': an echo does not decode: ' .. text .. ': ' .. tostring(e2 and e2.message))\n"
    "      assert(same(q, again), name .. ': an echo decodes to another message: ' .. text)\n"
    "      if name == 'CreateJobRequest' then create(q, #bytes) end\n"
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
        {"jobrt.modelc", luaopen_jobrt_modelc},
        {NULL, NULL},
    };
    L = fuzz_lua_open("fuzz_kuscia", modules, CHECK, &check_ref);
    fuzz_lua_cover(L, counters, NCOUNTERS - 64, "kuscia/");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    counters[NCOUNTERS - 64 + (fuzz_lua_check(L, check_ref, "fuzz_kuscia", data, size) & 63)]++;
    return 0;
}

-- Bacalhau's enums as its two legacy API generations number and spell them
-- (v1.0: APIVersion V1alpha1 and V1beta1; v1.1: V1beta2). Inside jobrt a
-- value is its canonical id, the lower-cased name ("docker", "urldownload");
-- on the wire a client may send a name in any case, padded with blanks, or
-- an int in its version's numbering, and a job echo shows the version's own
-- spelling.
local suggest = require("jobrt.suggest")

local M = {}

M.VERSIONS = { V1alpha1 = "v1.0", V1beta1 = "v1.0", V1beta2 = "v1.1" }
M.VERSION_NAMES = { "V1alpha1", "V1beta1", "V1beta2" }

-- Per type: what a message calls it, and per generation the names in
-- their wire spelling, indexed by their int. Network counts from 0.
local TYPES = {
  Engine = {
    what = "engine",
    ["v1.0"] = { "Noop", "Docker", "Wasm", "Language", "PythonWasm" },
    ["v1.1"] = { "noop", "docker", "wasm" },
  },
  Publisher = {
    what = "publisher",
    ["v1.0"] = { "Noop", "Ipfs", "Filecoin", "Estuary", "S3" },
    ["v1.1"] = { "noop", "ipfs", "estuary", "s3" },
    -- Bacalhau v1.2 added a local publisher; jobrt's default publishes
    -- locally, so the name is understood in every version (never as an int:
    -- v1.2 numbers it 4, which is s3 in v1.1).
    extra = { "local" },
  },
  StorageSource = {
    what = "storage source",
    ["v1.0"] = { "IPFS", "RepoClone", "RepoCloneLFS", "URLDownload", "FilecoinUnsealed",
                 "Filecoin", "Estuary", "Inline", "LocalDirectory", "S3" },
    ["v1.1"] = { "ipfs", "repoClone", "repoCloneLFS", "urlDownload", "estuary", "inline",
                 "localDirectory", "s3" },
  },
  Verifier = {
    what = "verifier",
    ["v1.0"] = { "Noop", "Deterministic", "External" },
    ["v1.1"] = { "Noop", "Deterministic", "External" },
  },
  Network = {
    what = "network type",
    base = 0,
    ["v1.0"] = { "None", "Full", "HTTP" },
    ["v1.1"] = { "None", "Full", "HTTP" },
  },
}
M.TYPES = TYPES

-- canonical id -> spelling, per type and generation; and the union of every
-- name a client may send, per type.
for _, t in pairs(TYPES) do
  t.spell, t.known = { ["v1.0"] = {}, ["v1.1"] = {} }, {}
  t.names = {}
  for _, gen in ipairs({ "v1.0", "v1.1" }) do
    for _, name in ipairs(t[gen]) do
      t.spell[gen][name:lower()] = name
      if not t.known[name:lower()] then
        t.known[name:lower()] = true
        t.names[#t.names + 1] = name
      end
    end
  end
  for _, name in ipairs(t.extra or {}) do
    t.known[name] = true
    t.names[#t.names + 1] = name
  end
end

--- enums.generation(api_version) -> "v1.0" | "v1.1" | nil
function M.generation(api_version)
  return M.VERSIONS[api_version]
end

--- enums.api_version(s) -> the canonical spelling of a known APIVersion
-- (matched ignoring case and surrounding blanks) | nil
function M.api_version(s)
  if type(s) ~= "string" then return nil end
  local want = s:match("^%s*(.-)%s*$"):lower()
  for _, name in ipairs(M.VERSION_NAMES) do
    if name:lower() == want then return name end
  end
  return nil
end

--- enums.parse(kind, value, generation) -> canonical id | nil, reason.
-- value: a name (any case, blanks trimmed) or an integer numbered as in
-- generation ("v1.0" or "v1.1"). reason is a clause to follow the field's
-- name, listing what is accepted.
function M.parse(kind, value, generation)
  local t = TYPES[kind]
  local names = t[generation or "v1.1"]
  local function listing()
    return table.concat(names, ", ") .. (t.extra and (", " .. table.concat(t.extra, ", ")) or "")
  end
  if type(value) == "string" then
    local id = value:match("^%s*(.-)%s*$"):lower()
    if t.known[id] then return id end
    local word = value:match("^%s*(.-)%s*$")
    local near = suggest.closest(word, names) or suggest.closest(word, t.names)
    return nil, string.format("%q is not a known %s%s: use one of %s", value, t.what,
      near and string.format(' (did you mean "%s"?)', near) or "", listing())
  elseif math.type(value) == "integer" then
    local name = names[value - (t.base or 1) + 1]
    if name then return name:lower() end
    local lo = t.base or 1
    return nil, string.format("%d is not a number of %s %s in API %s: use %d to %d (%s) or a name",
      value, t.what:find("^[aeiou]") and "an" or "a", t.what, generation or "v1.1", lo, lo + #names - 1, listing())
  end
  return nil, string.format("must be a %s name or number, not %s", t.what,
    math.type(value) == "float" and "a number with a fraction" or ("a " .. type(value)))
end

--- enums.name(kind, id, generation) -> the id spelt as that generation's
-- clients spell it (the other generation's, or the id, when it has none)
function M.name(kind, id, generation)
  local t = TYPES[kind]
  local other = generation == "v1.0" and "v1.1" or "v1.0"
  return t.spell[generation][id] or t.spell[other][id] or id
end

return M

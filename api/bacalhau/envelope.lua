-- Opens Bacalhau's signed requests: {"payload": {...}, "signature": "...",
-- "client_public_key": "..."}. The RSA signature (PKCS#1 v1.5, SHA-256) is
-- checked over the payload's bytes exactly as they stand in the body, the
-- key must be the one the payload's ClientID names, and the payload is
-- decoded into its typed table (api/bacalhau/payload.lua).
local crypto = require("jobrt.crypto")
local json = require("jobrt.json")
local json_span = require("jobrt.json_span")
local payload = require("api.bacalhau.payload")
local suggest = require("jobrt.suggest")

local M = {}

local MEMBERS = { "payload", "signature", "client_public_key" }
local SIGNED = { submit = true, cancel = true, approve = true, logs = true }

local function fail(status, field, fmt, ...)
  return nil, { status = status, field = field, message = string.format(fmt, ...) }
end

-- The member of the decoded payload object that names ClientID, matched
-- as Go matches it (any case).
local function client_id_of(p)
  for k, v in pairs(p) do
    if type(k) == "string" and k:lower() == "clientid" then return v, k end
  end
  return nil, "ClientID"
end

--- envelope.open(body, kind) -> payload, info | nil, err
-- kind: "submit" (JobCreatePayload), "cancel" (JobCancelPayload),
-- "approve" (ModerateJobRequest) or "logs" (LogsPayload). payload is the
-- typed table of api/bacalhau/payload.lua; info = {client_id =, raw = the
-- payload's bytes as sent, public_key = the key's base64 as sent}.
-- err = {status = 400 | 401, field = "signature" | "Spec.Docker.Image" |
-- ..., message =}: 401 only when the key is not the ClientID's.
function M.open(body, kind)
  if not SIGNED[kind] then error("envelope.open: unknown kind " .. tostring(kind), 2) end
  if type(body) ~= "string" then error("envelope.open: body must be a string", 2) end
  local start, stop, code = json_span.span(body, "payload")
  if not start and code ~= "MISSING" then
    return fail(400, nil, "the request body is not a signed request: %s", stop)
  end
  -- json_span has checked the text, so this decoding cannot disagree with it.
  local doc = json.decode(body)
  if type(doc) ~= "table" or json.is_array(doc) then
    return fail(400, nil, "the request body must be a JSON object")
  end
  local names = {}
  for k in pairs(doc) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local known = false
    for _, m in ipairs(MEMBERS) do known = known or k == m end
    if not known then
      local near = suggest.closest(k, MEMBERS)
      return fail(400, k, "%q is not a member of a signed request (payload, signature, "
        .. "client_public_key)%s", k, near and string.format(' (did you mean "%s"?)', near) or "")
    end
  end
  for _, m in ipairs(MEMBERS) do
    if doc[m] == nil or doc[m] == json.null then
      return fail(400, m, "the signed request has no %s", m)
    end
  end
  if type(doc.payload) ~= "table" or json.is_array(doc.payload) then
    return fail(400, "payload", "payload must be a JSON object")
  end
  for _, m in ipairs({ "signature", "client_public_key" }) do
    if type(doc[m]) ~= "string" then return fail(400, m, "%s must be a base64 string", m) end
  end

  local key, kerr = crypto.base64_decode(doc.client_public_key)
  if not key then return fail(400, "client_public_key", "client_public_key is not base64: %s", kerr) end
  local sig, serr = crypto.base64_decode(doc.signature)
  if not sig then return fail(400, "signature", "signature is not base64: %s", serr) end
  local raw = body:sub(start, stop)
  local ok, verr, vcode = crypto.verify({ alg = "rsa-pkcs1-sha256", key = key, sig = sig, data = raw })
  if not ok then
    if vcode == "BAD_KEY" then
      return fail(400, "client_public_key", "client_public_key is not a usable RSA public key "
        .. "(base64 of DER, PKCS#1 RSAPublicKey or SPKI): %s", verr)
    elseif vcode == "MISMATCH" then
      return fail(400, "signature", "the signature does not verify: it was not made with this "
        .. "key over the payload's bytes as sent (a payload must not be re-serialised after signing)")
    end
    return fail(400, "signature", "the signature is malformed: %s", verr)
  end

  local claimed, spelt = client_id_of(doc.payload)
  if claimed == nil or claimed == json.null then
    return fail(400, "ClientID", "ClientID is missing from the payload")
  end
  if type(claimed) ~= "string" or #claimed ~= 64 or claimed:find("[^0-9a-f]") then
    return fail(400, spelt, "%s must be 64 lower-case hex digits (the SHA-256 of the key's modulus)",
      spelt)
  end
  local owner, oerr = crypto.rsa_modulus_sha256(key)
  if not owner then return fail(400, "client_public_key", "client_public_key: %s", oerr) end
  if not crypto.equal(owner, claimed) then
    return fail(401, spelt, "the public key does not match ClientID: the key's client ID is %s",
      owner)
  end

  local typed, perr = payload.decode(kind, doc.payload)
  if not typed then return nil, perr end
  return typed, { client_id = claimed, raw = raw, public_key = doc.client_public_key }
end

return M

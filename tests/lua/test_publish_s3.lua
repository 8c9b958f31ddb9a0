-- publish.s3 without a store: virtual-hosted and path-style URLs presigned
-- as jobrt.sigv4 signs them, keys from the prefix, credentials from the
-- environment variables its options name (and no other), and a secret
-- never shown by the configuration check.
local plugins = require("jobrt.plugins")
local publication = require("jobrt.publication")
local schema = require("jobrt.schema")
local sigv4 = require("jobrt.sigv4")

local function s3(t, options)
  local mod, opts = plugins.new({}):plugin({ s3 = options }, "s3")
  t.ok(mod, opts)
  return mod, opts
end

local JOB = { id = "J1", created_at = "2026-01-01T00:00:00Z" }

return {
  { "virtual-hosted addressing: BUCKET.HOST/KEY, presigned with the secret", function(t)
    local mod, opts = s3(t, { use = "publish.s3", endpoint = "https://s3.example.com", bucket = "res",
      region = "eu-west-1", prefix = "out/{job}/{task}/", addressing = "virtual",
      access_key = "AK", secret_key = "SK", url_ttl = "1d" })
    local pub = publication.new({ name = "s3", mod = mod, options = opts })
    local item = assert(pub:publish(JOB, "t", { { name = "a b.txt", size = 3 } }, {}, { upload = false }))
    local href = item.assets["a b.txt"].href
    local base, qs = href:match("^(https://res%.s3%.example%.com/out/J1/t/a%%20b%.txt)%?(.*)$")
    t.ok(base, href)
    local now = tonumber(os.time()) -- the item's URLs were signed within this second or the one before
    local ok = false
    for _, when in ipairs({ now, now - 1 }) do
      if qs == sigv4.presign({ method = "GET", host = "res.s3.example.com", path = "/out/J1/t/a%20b.txt",
        access_key = "AK", secret_key = "SK", region = "eu-west-1", expires = 86400, now = when }) then ok = true end
    end
    t.ok(ok, "the query is jobrt.sigv4's presign: " .. qs)
    t.match(qs, "X%-Amz%-Expires=86400&")
  end },

  { "path style, credentials from the environment variables named, no others", function(t)
    local mod, opts = s3(t, { use = "publish.s3", endpoint = "http://127.0.0.1:9000/", bucket = "b",
      access_key_env = "HOME", secret_key_env = "PATH" })
    local pub = publication.new({ name = "s3", mod = mod, options = opts })
    local item = assert(pub:publish(JOB, "t", { { name = "x", size = 1 } }, {}, { upload = false }))
    t.match(item.assets.x.href, "^http://127%.0%.0%.1:9000/b/J1/t/x%?X%-Amz%-Algorithm=")
    local ctx = pub:grants({})
    t.eq(ctx.getenv("HOME"), os.getenv("HOME"))
    t.err(function() ctx.getenv("USER") end, "is not named by an _env option")
    local _, missing = s3(t, { use = "publish.s3", endpoint = "http://x", bucket = "b" })
    local bare = publication.new({ name = "s3", mod = mod, options = missing })
    local none, f = bare:publish(JOB, "t", { { name = "x", size = 1 } }, {}, { upload = false })
    t.eq(none, nil)
    t.match(f.message, "no access key")
  end },

  { "a secret is never shown by the check; bad options are named", function(t)
    local mod = s3(t, { use = "publish.s3", endpoint = "http://x", bucket = "b" })
    local _, err = schema.apply(mod.schema, { endpoint = "http://x", bucket = "b", secret_key = 123456789 }, "plugin s3")
    t.match(err, "secret_key: expected a string, got %(a secret, not shown%)")
    t.ok(not err:find("123456789"), err)
    _, err = schema.apply(mod.schema, { endpoint = "ftp://x", bucket = "b" }, "plugin s3")
    t.match(err, 'endpoint: expected the store\'s base URL')
    _, err = schema.apply(mod.schema, { endpoint = "http://x", bucket = "b", part_size = "1MiB" }, "plugin s3")
    t.match(err, "part_size: must be at least")
  end },
}

-- jobrt.images and the images section of the deployment file: references
-- as Docker reads them, what a name resolves to (the store, sandbox.images,
-- an on-demand pull, or an error saying why), the config's checks, and
-- the binding's store on an empty data directory.
local config = require("jobrt.config")
local image = require("jobrt.image")
local images = require("jobrt.images")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

return {
  { "references: registry host, repository and tag or digest, Docker's rules", function(t)
    local function ref(s)
      local r, err = images.parse_ref(s)
      if not r then return err end
      return { r.host, r.repo, r.ref, r.name }
    end
    t.eq(ref("busybox"), { "docker.io", "library/busybox", "latest", "busybox:latest" })
    t.eq(ref("team/app:1.2"), { "docker.io", "team/app", "1.2", "team/app:1.2" })
    t.eq(ref("127.0.0.1:5000/bb:1"), { "127.0.0.1:5000", "bb", "1", "127.0.0.1:5000/bb:1" })
    t.eq(ref("localhost/a/b"), { "localhost", "a/b", "latest", "localhost/a/b:latest" })
    local d = "sha256:" .. string.rep("ab", 32)
    t.eq(ref("registry.example/app@" .. d), { "registry.example", "app", d, "registry.example/app@" .. d })
    t.match(ref("Bad/Name"), "is not an image reference")
    t.match(ref("a/../b"), "is not an image reference")
    t.eq(image.name_normal("x/y"), "x/y:latest")
    t.ok(not image.name_valid("host"), "host is sandbox.images' own")
  end },

  { "resolve: the store, then sandbox.images, then an on-demand pull", function(t)
    local dir = tmpdir()
    local cfg = { data_dir = dir, sandbox = { images = { host = "/", alpine = "/srv/alpine" } },
                  images = { pull = "never", registries = { { host = "reg.example:5000" } } } }
    local store = assert(images.open(cfg))
    t.eq(images.resolve(cfg, store, "alpine"), "sandbox")
    t.eq(images.resolve(cfg, store, "host"), "sandbox")
    local how, why = images.resolve(cfg, store, "reg.example:5000/app:1")
    t.eq(how, nil)
    t.match(why, "neither in the image store")
    cfg.images.pull = "on_demand"
    t.eq(images.resolve(cfg, store, "reg.example:5000/app:1"), "pull")
    how, why = images.resolve(cfg, store, "other.example/app:1")
    t.eq(how, nil)
    t.match(why, "its registry is not in images.registries")
    t.eq(#store:list(), 0)
    local strategy, reason = store:strategy()
    t.ok(strategy == "overlay" or strategy == "copy", strategy)
    t.ok(type(reason) == "string" and #reason > 0, "the strategy says why")
    local info, err, code = store:get("nothing:1")
    t.eq({ info, code }, { nil, "NOT_FOUND" }, err)
    os.execute("rm -rf '" .. dir .. "'")
  end },

  { "the images section: values, registries and their errors", function(t)
    local cfg = assert(config.from_string([[
images:
  pull: on_demand
  registries:
    - {host: "reg.example:5000", username: u, password: p}
    - {host: "127.0.0.1:5000", url: "http://127.0.0.1:5000/"}
  max_image_size: 1GiB
  root: copy
]], "t.yaml", { deep = false }))
    t.eq(cfg.images.pull, "on_demand")
    t.eq(cfg.images.max_image_size, 1024 * 1024 * 1024)
    t.eq(cfg.images.registries[1].url, "https://reg.example:5000")
    t.eq(cfg.images.registries[2].url, "http://127.0.0.1:5000")
    local _, errs = config.from_string([[
images:
  pull: sometimes
  registries:
    - {host: "no spaces allowed"}
    - {url: "http://x"}
    - {host: "a.example", username: u}
    - {host: "b.example", url: "ftp://b.example"}
]], "t.yaml", { deep = false })
    local text = table.concat(config.format_errors(errs), "\n")
    for _, want in ipairs({
      't.yaml:2: images.pull: ',
      't.yaml:4: images.registries[1].host: not a host[:port]: "no spaces allowed"',
      't.yaml:5: images.registries[2]: missing "host"',
      't.yaml:6: images.registries[3]: give both "username" and "password", or neither',
      't.yaml:7: images.registries[4].url: must be http(s)://HOST[:PORT], got "ftp://b.example"',
    }) do
      t.ok(text:find(want, 1, true), "missing: " .. want .. "\nin:\n" .. text)
    end
  end },

  { "parse_manifest: a manifest's parts, an index's pick for this machine", function(t)
    local d = "sha256:" .. string.rep("0", 64)
    local m = assert(image.parse_manifest(string.format(
      '{"schemaVersion":2,"config":{"digest":"%s","size":2},"layers":[{"digest":"%s","size":3}]}', d, d)))
    t.eq({ m.is_index, m.config.digest, #m.items, m.items[1].size }, { false, d, 1, 3 })
    local os_, arch = image.platform()
    local idx = assert(image.parse_manifest(string.format(
      '{"manifests":[{"digest":"%s","size":1,"platform":{"os":"plan9","architecture":"mips"}},'
      .. '{"digest":"%s","size":1,"platform":{"os":"%s","architecture":"%s"}}]}', d, d, os_, arch)))
    t.eq({ idx.is_index, idx.pick }, { true, 2 })
    local bad, why = image.parse_manifest('{"schemaVersion":2,"config":{"digest":"md5:1","size":1},"layers":[]}')
    t.eq(bad, nil)
    t.match(why, "config.digest")
  end },
}

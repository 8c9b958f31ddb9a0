-- jobrt.sigv4 against the examples AWS publishes for S3 (virtual-hosted
-- addressing): a GET signed in its headers, and a presigned URL.
local sigv4 = require("jobrt.sigv4")

local KEY = { access_key = "AKIAIOSFODNN7EXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
              region = "us-east-1" }
local WHEN = 1369353600 -- 2013-05-24T00:00:00Z

local function req(extra)
  local r = { method = "GET", host = "examplebucket.s3.amazonaws.com", path = "/test.txt", now = WHEN }
  for k, v in pairs(KEY) do r[k] = v end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

return {
  { "a GET signed in its headers", function(t)
    local h = sigv4.sign(req({ headers = { Range = "bytes=0-9" } }))
    t.eq(h.authorization, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
      .. "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
      .. "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    t.eq(h["x-amz-date"], "20130524T000000Z")
    t.eq(h["x-amz-content-sha256"], sigv4.EMPTY_SHA256)
    t.eq(h.host, nil, "the client writes Host from the URL")
  end },

  { "a presigned GET", function(t)
    t.eq(sigv4.presign(req({ expires = 86400 })),
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
      .. "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
      .. "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    t.err(function() sigv4.presign(req({ expires = 8 * 86400 })) end, "expires must be")
  end },

  { "encoding of keys and query values", function(t)
    t.eq(sigv4.encode("a b/c+d~e.txt", true), "a%20b/c%2Bd~e.txt")
    t.eq(sigv4.encode("a/b"), "a%2Fb")
    t.eq(sigv4.query({ uploadId = "x y", partNumber = "2", uploads = "" }), "partNumber=2&uploadId=x%20y&uploads=")
  end },
}

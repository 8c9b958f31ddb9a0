-- jobrt.crypto: signatures checked against keys and signatures the openssl
-- command line makes at test time (in a private temp dir, removed at the
-- end), the SHA-256 of an RSA modulus, signed envelopes, strict base64, digests,
-- HMAC and password hashes.
local crypto = require("jobrt.crypto")
local json_span = require("jobrt.json_span")

local scratch = require("scratch").new("crypto")
local sh, out, path, rd, wr = scratch.sh, scratch.out, scratch.path, scratch.rd, scratch.wr
local dir = scratch.dir

local PAYLOAD = '{"ClientID":"abc","JobID":"j-1","Reason":"test"}'

-- Every key and signature the tests use, made once.
local made = false
local function fixtures()
  if made then return end
  made = true
  wr("payload.json", PAYLOAD)
  sh("cd " .. dir .. " && openssl genrsa -traditional -out rsa.pem 2048"
    .. " && openssl rsa -in rsa.pem -RSAPublicKey_out -outform DER -out rsa.pkcs1.der"
    .. " && openssl rsa -in rsa.pem -RSAPublicKey_out -out rsa.pkcs1.pem"
    .. " && openssl rsa -in rsa.pem -pubout -outform DER -out rsa.spki.der"
    .. " && openssl rsa -in rsa.pem -pubout -out rsa.spki.pem"
    .. " && openssl dgst -sha256 -sign rsa.pem -out rsa.sig payload.json"
    .. " && openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32"
    .. "    -sign rsa.pem -out rsa.pss.sig payload.json"
    .. " && openssl genrsa -traditional -out other.pem 2048"
    .. " && openssl rsa -in other.pem -RSAPublicKey_out -outform DER -out other.pkcs1.der"
    .. " && openssl dgst -sha256 -sign other.pem -out other.sig payload.json"
    .. " && openssl genrsa -traditional -out weak.pem 1024"
    .. " && openssl rsa -in weak.pem -pubout -out weak.spki.pem"
    .. " && openssl dgst -sha256 -sign weak.pem -out weak.sig payload.json"
    .. " && openssl ecparam -name prime256v1 -genkey -noout -out ec.pem"
    .. " && openssl ec -in ec.pem -pubout -out ec.pub.pem"
    .. " && openssl ec -in ec.pem -pubout -outform DER -out ec.pub.der"
    .. " && openssl dgst -sha256 -sign ec.pem -out ec.sig payload.json"
    .. " && openssl ecparam -name secp384r1 -genkey -noout -out ec384.pem"
    .. " && openssl ec -in ec384.pem -pubout -out ec384.pub.pem"
    .. " && openssl genpkey -algorithm ed25519 -out ed.pem"
    .. " && openssl pkey -in ed.pem -pubout -out ed.pub.pem"
    .. " && openssl pkey -in ed.pem -pubout -outform DER -out ed.pub.der"
    .. " && openssl pkeyutl -sign -inkey ed.pem -rawin -in payload.json -out ed.sig")
end

local function verify(alg, key, sig, data, fmt)
  return crypto.verify({ alg = alg, key = key, sig = sig, data = data, key_format = fmt })
end

-- The code of a failed verification (and that it failed with a message).
local function code_of(t, ok, msg, code)
  t.eq(ok, nil, "verification should fail")
  t.eq(type(msg), "string")
  return code
end

-- ECDSA DER (SEQUENCE of two INTEGERs) -> raw r||s, 32 bytes each.
local function ecdsa_raw(der)
  local function int_at(i)
    assert(der:byte(i) == 2)
    local len = der:byte(i + 1)
    local v = der:sub(i + 2, i + 1 + len):gsub("^%z+", "")
    return ("\0"):rep(32 - #v) .. v, i + 2 + len
  end
  local r, i = int_at(3)
  local s = int_at(i)
  return r .. s
end

return {
  { "rsa-pkcs1-sha256: openssl signatures verify with PKCS#1 and SPKI keys, DER and PEM", function(t)
    fixtures()
    local sig = rd("rsa.sig")
    t.eq(verify("rsa-pkcs1-sha256", rd("rsa.pkcs1.der"), sig, PAYLOAD, "pkcs1"), true, "pkcs1 der")
    t.eq(verify("rsa-pkcs1-sha256", rd("rsa.pkcs1.pem"), sig, PAYLOAD, "pkcs1"), true, "pkcs1 pem")
    t.eq(verify("rsa-pkcs1-sha256", rd("rsa.spki.der"), sig, PAYLOAD), true, "spki der")
    t.eq(verify("rsa-pkcs1-sha256", rd("rsa.spki.pem"), sig, PAYLOAD, "spki"), true, "spki pem")
    t.eq(verify("rsa-pkcs1-sha256", rd("rsa.pkcs1.der"), sig, PAYLOAD), true, "pkcs1 der, any format")
  end },

  { "rsa-pkcs1-sha256: each wrong input fails with its own code", function(t)
    fixtures()
    local key, sig = rd("rsa.pkcs1.der"), rd("rsa.sig")
    local changed = PAYLOAD:gsub("j%-1", "j-2")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key, sig, changed, "pkcs1")), "MISMATCH", "one byte changed")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key, rd("other.sig"), PAYLOAD, "pkcs1")), "MISMATCH",
      "signed by another key")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", rd("other.pkcs1.der"), sig, PAYLOAD, "pkcs1")), "MISMATCH",
      "another key")
    local ok, msg, code = verify("rsa-pkcs1-sha256", rd("rsa.spki.der"), sig, PAYLOAD, "pkcs1")
    t.eq(code_of(t, ok, msg, code), "BAD_KEY", "SPKI where PKCS#1 is required")
    t.match(msg, "SubjectPublicKeyInfo")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", rd("rsa.spki.pem"), sig, PAYLOAD, "pkcs1")), "BAD_KEY",
      "SPKI PEM where PKCS#1 is required")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key, sig, PAYLOAD, "spki")), "BAD_KEY",
      "PKCS#1 where SPKI is required")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", "not a key", sig, PAYLOAD)), "BAD_KEY", "garbage key")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key:sub(1, -2), sig, PAYLOAD)), "BAD_KEY", "truncated key")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key .. "\0", sig, PAYLOAD)), "BAD_KEY", "trailing byte")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key, sig:sub(2), PAYLOAD)), "BAD_SIGNATURE", "short signature")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", key, "", PAYLOAD)), "BAD_SIGNATURE", "empty signature")
    t.eq(code_of(t, verify("rsa-pkcs1-sha1", key, sig, PAYLOAD)), "BAD_ALG", "unknown alg")
    t.eq(code_of(t, verify("rsa-pss-sha256", key, sig, PAYLOAD)), "MISMATCH", "PKCS#1 v1.5 sig as PSS")
    t.eq(code_of(t, verify("ecdsa-p256-sha256", key, sig, PAYLOAD)), "BAD_KEY", "RSA key for ECDSA")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", rd("weak.spki.pem"), rd("weak.sig"), PAYLOAD)), "BAD_KEY",
      "RSA-1024 is refused")
    local _, m2 = verify("rsa-pkcs1-sha256", rd("rsa.pem"), sig, PAYLOAD)
    t.match(m2, "not a public key", "a private key PEM")
  end },

  { "rsa-pss-sha256 verifies openssl's PSS signature", function(t)
    fixtures()
    t.eq(verify("rsa-pss-sha256", rd("rsa.spki.pem"), rd("rsa.pss.sig"), PAYLOAD), true)
    t.eq(code_of(t, verify("rsa-pss-sha256", rd("rsa.spki.pem"), rd("rsa.pss.sig"), PAYLOAD .. " ")),
      "MISMATCH")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", rd("rsa.spki.pem"), rd("rsa.pss.sig"), PAYLOAD)), "MISMATCH")
  end },

  { "ecdsa-p256-sha256: DER and raw r||s signatures", function(t)
    fixtures()
    local sig = rd("ec.sig")
    t.eq(verify("ecdsa-p256-sha256", rd("ec.pub.pem"), sig, PAYLOAD), true, "DER sig, PEM key")
    t.eq(verify("ecdsa-p256-sha256", rd("ec.pub.der"), sig, PAYLOAD), true, "DER sig, DER key")
    t.eq(verify("ecdsa-p256-sha256", rd("ec.pub.pem"), ecdsa_raw(sig), PAYLOAD), true, "raw r||s")
    t.eq(code_of(t, verify("ecdsa-p256-sha256", rd("ec.pub.pem"), sig, PAYLOAD .. "x")), "MISMATCH")
    t.eq(code_of(t, verify("ecdsa-p256-sha256", rd("ec.pub.pem"), sig:sub(1, -2), PAYLOAD)),
      "BAD_SIGNATURE", "truncated DER")
    t.eq(code_of(t, verify("ecdsa-p256-sha256", rd("ec384.pub.pem"), sig, PAYLOAD)), "BAD_KEY", "P-384 key")
    t.eq(code_of(t, verify("ecdsa-p256-sha256", rd("ec.pub.pem"), sig, PAYLOAD, "pkcs1")), "BAD_KEY",
      "pkcs1 for an EC key")
    t.eq(code_of(t, verify("rsa-pkcs1-sha256", rd("ec.pub.pem"), rd("rsa.sig"), PAYLOAD)), "BAD_KEY",
      "EC key for RSA")
  end },

  { "ed25519: PEM, DER and raw 32-byte keys", function(t)
    fixtures()
    local sig, der = rd("ed.sig"), rd("ed.pub.der")
    t.eq(verify("ed25519", rd("ed.pub.pem"), sig, PAYLOAD), true, "PEM")
    t.eq(verify("ed25519", der, sig, PAYLOAD), true, "DER")
    t.eq(verify("ed25519", der:sub(-32), sig, PAYLOAD), true, "raw key")
    t.eq(code_of(t, verify("ed25519", der, sig, PAYLOAD:upper())), "MISMATCH")
    local bad = string.char(sig:byte(1) ~ 1) .. sig:sub(2)
    t.eq(code_of(t, verify("ed25519", der, bad, PAYLOAD)), "MISMATCH", "flipped bit")
    t.eq(code_of(t, verify("ed25519", der, sig .. "\0", PAYLOAD)), "BAD_SIGNATURE", "65 bytes")
    t.eq(code_of(t, verify("ed25519", rd("ec.pub.pem"), sig, PAYLOAD)), "BAD_KEY", "EC key")
  end },

  { "verify: wrong argument types raise", function(t)
    t.err(function() crypto.verify("x") end, "table expected")
    t.err(function() crypto.verify({ alg = "ed25519", key = 1, sig = "", data = "" }) end, "key")
    t.err(function() crypto.verify({ alg = "ed25519", key = "", sig = "" }) end, "data")
    t.err(function() crypto.verify({ alg = "ed25519", key = "", sig = "", data = "", key_format = "x509" }) end,
      "key_format")
  end },

  { "rsa_modulus_sha256 equals `openssl rsa -modulus | xxd -r -p | sha256sum`", function(t)
    fixtures()
    local want = out("openssl rsa -in " .. path("rsa.pem") .. " -noout -modulus | sed 's/^Modulus=//'"
      .. " | xxd -r -p | sha256sum"):match("^(%x+)")
    t.eq(#want, 64)
    t.eq(crypto.rsa_modulus_sha256(rd("rsa.pkcs1.der"), "pkcs1"), want, "PKCS#1 DER")
    t.eq(crypto.rsa_modulus_sha256(rd("rsa.spki.pem")), want, "SPKI PEM")
    t.ok(crypto.rsa_modulus_sha256(rd("other.pkcs1.der")) ~= want, "another key, another id")
    local id, msg, code = crypto.rsa_modulus_sha256(rd("rsa.spki.der"), "pkcs1")
    t.eq({ id, code }, { nil, "BAD_KEY" }, msg)
    t.eq(select(3, crypto.rsa_modulus_sha256(rd("ec.pub.pem"))), "BAD_KEY", "not RSA")
  end },

  { "a Bacalhau envelope: the signature holds over the raw payload span only", function(t)
    fixtures()
    local pub = out("openssl rsa -in " .. path("rsa.pem") .. " -RSAPublicKey_out -outform DER | base64 -w0")
    local sig = out("base64 -w0 " .. path("rsa.sig"))
    t.eq(pub:sub(1, 12), "MIIBCgKCAQEA", "PKCS#1 prefix")
    local function check(body)
      local env = assert(require("jobrt.json").decode(body))
      local a, b, why = json_span.span(body, "payload")
      if not a then return nil, b, why end
      local key = assert(crypto.base64_decode(env.client_public_key))
      local s = assert(crypto.base64_decode(env.signature))
      return crypto.verify({ alg = "rsa-pkcs1-sha256", key = key, key_format = "pkcs1", sig = s,
        data = body:sub(a, b) })
    end
    local body = '{"payload":' .. PAYLOAD .. ',"signature":"' .. sig .. '","client_public_key":"' .. pub .. '"}'
    t.eq(check(body), true, "as sent")
    local spaced = '{ "payload" : ' .. PAYLOAD .. ' ,\n "signature": "' .. sig .. '", "client_public_key":"'
      .. pub .. '"}'
    t.eq(check(spaced), true, "whitespace outside the payload does not matter")
    local reser = '{"payload":' .. PAYLOAD:gsub(",", ", "):gsub('":', '": ') .. ',"signature":"' .. sig
      .. '","client_public_key":"' .. pub .. '"}'
    t.eq(select(3, check(reser)), "MISMATCH", "payload re-serialised with other whitespace")
    local spki = out("openssl rsa -in " .. path("rsa.pem") .. " -pubout -outform DER | base64 -w0")
    t.eq(spki:sub(1, 12), "MIIBIjANBgkq")
    local with_spki = '{"payload":' .. PAYLOAD .. ',"signature":"' .. sig .. '","client_public_key":"'
      .. spki .. '"}'
    t.eq(select(3, check(with_spki)), "BAD_KEY", "SPKI key where Bacalhau requires PKCS#1")
    t.eq(crypto.rsa_modulus_sha256(crypto.base64_decode(pub), "pkcs1"), crypto.rsa_modulus_sha256(rd("rsa.spki.der")))
  end },

  { "base64: round trips against the base64 command", function(t)
    fixtures()
    for _, n in ipairs({ 0, 1, 2, 3, 4, 5, 31, 32, 33, 100 }) do
      local bytes = crypto.random_bytes(n)
      wr("b64.bin", bytes)
      local want = out("base64 -w0 " .. path("b64.bin"))
      t.eq(crypto.base64_encode(bytes), want, "encode " .. n)
      t.eq(crypto.base64_decode(want), bytes, "decode " .. n)
      local url = crypto.base64url_encode(bytes)
      t.eq(url, (want:gsub("+", "-"):gsub("/", "_"):gsub("=", "")), "url " .. n)
      t.eq(crypto.base64url_decode(url), bytes, "url decode " .. n)
    end
    t.eq(crypto.base64url_decode("YQ=="), "a", "padded base64url is accepted when exact")
    t.eq(crypto.base64_encode("\251\255\191"), "+/+/")
    t.eq(crypto.base64url_encode("\251\255\191"), "-_-_")
  end },

  { "base64: strict decoding names the fault and its offset", function(t)
    local cases = {
      { crypto.base64_decode, "YW Jj", "whitespace at offset 2" },
      { crypto.base64_decode, "YWJj\n", "whitespace at offset 4" },
      { crypto.base64_decode, "YW*j", "invalid character 0x2a at offset 2" },
      { crypto.base64_decode, "YW-j", "base64url character in base64 at offset 2" },
      { crypto.base64url_decode, "YW+j", "base64 character in base64url at offset 2" },
      { crypto.base64_decode, "YWI", "missing padding" },
      { crypto.base64_decode, "YWJjZ", "truncated input .* at offset 4" },
      { crypto.base64_decode, "YQ=", "wrong amount of padding at offset 2" },
      { crypto.base64_decode, "YWJj=", "wrong amount of padding at offset 4" },
      { crypto.base64_decode, "Y=Q=", "misplaced padding '=' at offset 1" },
      { crypto.base64_decode, "====", "misplaced padding '=' at offset 0" },
      { crypto.base64_decode, "YR==", "non%-zero unused bits .* at offset 1" },
      { crypto.base64_decode, "YWJ=", "non%-zero unused bits .* at offset 2" },
      { crypto.base64url_decode, "YWJ", "non%-zero unused bits" },
      { crypto.base64url_decode, "Y", "truncated input" },
    }
    for _, c in ipairs(cases) do
      local v, msg, code = c[1](c[2])
      t.eq(v, nil, c[2])
      t.match(msg, c[3], c[2])
      t.eq(code, "BAD_BASE64", c[2])
    end
    t.eq(crypto.base64_decode(""), "", "empty is valid")
    t.err(function() crypto.base64_decode(nil) end, "string expected")
  end },

  { "sha256, sha512, hmac_sha256 and hex match openssl", function(t)
    fixtures()
    t.eq(crypto.hex(crypto.sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    t.eq(crypto.hex(crypto.sha512("")):sub(1, 32), "cf83e1357eefb8bdf1542850d66d8007")
    local want = out("openssl dgst -sha256 -r " .. path("payload.json")):match("^(%x+)")
    t.eq(crypto.hex(crypto.sha256(PAYLOAD)), want)
    want = out("openssl dgst -sha512 -r " .. path("payload.json")):match("^(%x+)")
    t.eq(crypto.hex(crypto.sha512(PAYLOAD)), want)
    want = out("openssl dgst -sha256 -hmac s3cret -r " .. path("payload.json")):match("^(%x+)")
    t.eq(crypto.hex(crypto.hmac_sha256("s3cret", PAYLOAD)), want)
    -- RFC 4231 test case 2
    t.eq(crypto.hex(crypto.hmac_sha256("Jefe", "what do ya want for nothing?")),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    t.eq(#crypto.hmac_sha256("", ""), 32)
    t.eq(crypto.hex("\0\255\16"), "00ff10")
  end },

  { "equal, random_bytes, random_id", function(t)
    t.eq(crypto.equal("abc", "abc"), true)
    t.eq(crypto.equal("abc", "abd"), false)
    t.eq(crypto.equal("abc", "abcd"), false)
    t.eq(crypto.equal("", ""), true)
    t.eq(#crypto.random_bytes(0), 0)
    t.eq(#crypto.random_bytes(1000), 1000)
    t.ok(crypto.random_bytes(16) ~= crypto.random_bytes(16))
    t.match(crypto.random_id(), "^%x+$")
    t.eq(#crypto.random_id(), 32)
    t.eq(#crypto.random_id(8), 16)
    t.err(function() crypto.random_bytes(-1) end, "out of range")
    t.err(function() crypto.random_id(0) end, "out of range")
  end },

  { "password hashes: scrypt round trip, pbkdf2 from openssl, malformed ones", function(t)
    fixtures()
    local h = assert(crypto.hash_password("correct horse", { N = 1024 }))
    t.match(h, "^scrypt%$1024%$8%$1%$[%w+/]+=*%$[%w+/]+=*$")
    t.eq(crypto.verify_password("correct horse", h), true)
    local ok, msg, code = crypto.verify_password("correct horsf", h)
    t.eq({ ok, code }, { nil, "MISMATCH" }, msg)
    t.ok(crypto.hash_password("correct horse", { N = 1024 }) ~= h, "salted")
    local d = assert(crypto.hash_password("pw"))
    t.match(d, "^scrypt%$32768%$8%$1%$", "defaults")
    t.eq(crypto.verify_password("pw", d), true)
    -- pbkdf2-sha256 made by openssl kdf
    local hex = out("openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt pass:hunter2 "
      .. "-kdfopt salt:NaClNaClNaCl -kdfopt iter:1000 PBKDF2"):gsub("[:%s]", "")
    local bytes = hex:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)
    local stored = "pbkdf2-sha256$1000$" .. crypto.base64_encode("NaClNaClNaCl") .. "$"
      .. crypto.base64_encode(bytes)
    t.eq(crypto.verify_password("hunter2", stored), true, stored)
    t.eq(select(3, crypto.verify_password("hunter3", stored)), "MISMATCH")
    t.eq(crypto.verify_password("hunter2", stored:gsub("=", "")), true, "unpadded base64")
    for _, bad in ipairs({ "", "plain", "scrypt$1000$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
      "scrypt$1024$8$1$c2FsdA==$aGFzaA==", "scrypt$1024$8$1$!!$aGFzaGhhc2hoYXNoaGFzaA==",
      "scrypt$1048576$64$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
      "pbkdf2-sha256$0$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
      "pbkdf2-sha256$99999999999$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
      "pbkdf2-sha256$1000$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==$x" }) do
      local v, m, c = crypto.verify_password("x", bad)
      t.eq({ v, c }, { nil, "BAD_HASH" }, bad .. " -> " .. tostring(m))
    end
    t.eq(select(3, crypto.hash_password("x", { N = 1000 })), "BAD_HASH", "N not a power of 2")
  end },

  { "cleanup", function(t)
    t.ok(scratch.remove())
  end },
}

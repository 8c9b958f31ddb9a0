-- jobrt.server: what the access log may write of a request target.
local server = require("jobrt.server")

return {
  { "redact: secret query parameters lose their values, the rest stays", function(t)
    t.eq(server.redact("/jobs"), "/jobs")
    t.eq(server.redact("/jobs?limit=5"), "/jobs?limit=5")
    t.eq(server.redact("/r/item?expires=99&signature=abc"), "/r/item?expires=99&signature=REDACTED")
    t.eq(server.redact("/x?token=t&access_token=a&API_KEY=k&a=1"),
      "/x?token=REDACTED&access_token=REDACTED&API_KEY=REDACTED&a=1")
    t.eq(server.redact("/x?sig%6Eature=s&to+ken=x"), "/x?sig%6Eature=REDACTED&to+ken=x")
    t.eq(server.redact("/x?signature&&=v"), "/x?signature=REDACTED&&=v")
    t.eq(server.redact("/x?%zz=1&signature=s"), "/x?%zz=1&signature=REDACTED")
  end },
}

-- Small table helpers every layer needs the same way.
local M = {}

--- tables.sorted_keys(t) -> t's keys in order (strings and numbers alike,
-- compared as text), so that what is built from a table comes out the
-- same every time.
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and type(a) ~= "table" and type(a) ~= "boolean" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

return M

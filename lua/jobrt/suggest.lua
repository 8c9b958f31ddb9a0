-- "Did you mean ...?" for every place that names an unknown key or field:
-- the closest known name to a misspelt one, when it is close enough to be
-- a typo rather than a different word.
local M = {}

--- suggest.distance(a, b) -> edits between a and b; a swap of two
-- neighbours counts as one and a difference of case alone as none.
function M.distance(a, b)
  a, b = a:lower(), b:lower()
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

--- suggest.closest(word, names) -> the name of names closest to word, or
-- nil when none is within a typo's reach (1 edit, 2 for names of 6+ bytes).
-- Ties go to the name that sorts first, so the answer is stable.
function M.closest(word, names)
  if type(word) ~= "string" then return nil end
  local best, best_d
  for _, name in ipairs(names) do
    local limit = math.max(1, math.min(2, #name // 3))
    -- The lengths alone rule most names out, and the distance costs
    -- #word * #name: a client may send a long word.
    local d = math.abs(#name - #word) <= limit and M.distance(word, name) or limit + 1
    if d <= limit and (not best_d or d < best_d or (d == best_d and name < best)) then
      best, best_d = name, d
    end
  end
  return best
end

return M

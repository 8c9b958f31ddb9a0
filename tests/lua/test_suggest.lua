-- jobrt.suggest: the edit distance and the "did you mean" it picks.
local suggest = require("jobrt.suggest")

-- closest as defined: every name's distance, no shortcut.
local function closest_by_distance(word, names)
  local best, best_d
  for _, name in ipairs(names) do
    local d = suggest.distance(word, name)
    local limit = math.max(1, math.min(2, #name // 3))
    if d <= limit and (not best_d or d < best_d or (d == best_d and name < best)) then
      best, best_d = name, d
    end
  end
  return best
end

return {
  { "distance: edits, a swap as one, case as none", function(t)
    t.eq(suggest.distance("kitten", "sitting"), 3)
    t.eq(suggest.distance("comand", "command"), 1)
    t.eq(suggest.distance("tiemout", "timeout"), 1)
    t.eq(suggest.distance("Image", "image"), 0)
    t.eq(suggest.distance("", "abc"), 3)
  end },

  { "closest: within a typo's reach, ties to the first name", function(t)
    local names = { "address", "approvers", "approval", "cpu", "memory", "max_tasks" }
    t.eq(suggest.closest("adress", names), "address")
    t.eq(suggest.closest("aprovers", names), "approvers")
    t.eq(suggest.closest("cpus", names), "cpu")
    t.eq(suggest.closest("gpu", names), "cpu")
    t.eq(suggest.closest("network", names), nil)
    t.eq(suggest.closest("ab", { "ac", "ab1" }), "ab1", "a tie goes to the name that sorts first")
    t.eq(suggest.closest(5, names), nil)
    t.eq(suggest.closest(string.rep("x", 100000), names), nil, "a long word is no typo")
  end },

  { "closest: skipping names by length never changes the answer", function(t)
    local letters = "abcde"
    local seed = 7
    local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n end
    local function word()
      local w = {}
      for _ = 1, 1 + rnd(9) do local i = 1 + rnd(#letters) w[#w + 1] = letters:sub(i, i) end
      return table.concat(w)
    end
    local names = {}
    for i = 1, 40 do names[i] = word() end
    for _ = 1, 2000 do
      local w = word()
      local got, want = suggest.closest(w, names), closest_by_distance(w, names)
      if got ~= want then t.eq(got, want, w) return end
    end
  end },
}

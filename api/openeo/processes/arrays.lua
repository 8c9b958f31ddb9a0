-- openEO array processes: element access, callbacks over elements (apply,
-- filter), search, construction, labels, interpolation, sorting. Inputs are
-- never modified: every result is a new array. Labeled arrays keep their
-- labels wherever the process says so (see util.labeled).
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null, out = util.null, util.is_null, util.out
local param, returns = meta.param, meta.returns
local labels_of = util.labels_of

local function label_text(l)
  if type(l) == "number" then return util.number_text(l) end
  return string.format("%q", tostring(l))
end

local function find_label(labels, label)
  for i = 1, #labels do
    if util.equals(labels[i], label) == true then return i end
  end
  return nil
end

-- Sort keys for order/sort: numbers, or dates and date-times as instants.
local function sort_key(v)
  if type(v) == "number" then
    if v ~= v then return math.huge, 1 end -- NaN after +Infinity
    return v, 0
  end
  local t = util.parse_temporal(v)
  if t then return util.epoch_ms(t), 0 end
  return nil
end

-- permutation(data, asc, nodata) -> 1-based positions | nil, err.
local function permutation(data, asc, nodata)
  local items, nulls = {}, {}
  for i = 1, #data do
    local v = data[i]
    if is_null(v) then
      nulls[#nulls + 1] = i
    else
      local k, nan = sort_key(v)
      if k == nil then
        return nil, util.err("ProcessParameterInvalid",
          "The value passed for parameter 'data' is invalid: element " .. (i - 1) .. " is neither a number nor a date.")
      end
      items[#items + 1] = { k = k, nan = nan, i = i }
    end
  end
  -- Ties keep their original order in both directions (a stable sort).
  table.sort(items, function(a, b)
    if a.k ~= b.k or a.nan ~= b.nan then
      local less = a.k < b.k or (a.k == b.k and a.nan < b.nan)
      if asc then return less end
      return not less
    end
    return a.i < b.i
  end)
  local perm = {}
  if nodata == false then
    for _, i in ipairs(nulls) do perm[#perm + 1] = i end
  end
  for _, it in ipairs(items) do perm[#perm + 1] = it.i end
  if nodata == true then
    for _, i in ipairs(nulls) do perm[#perm + 1] = i end
  end
  return perm
end

local SORTABLE = {
  type = "array",
  items = { anyOf = { meta.NUMBER, { type = "null" }, meta.TEMPORAL[1], meta.TEMPORAL[2] } },
}
local ASC = param("asc", "Ascending order (smallest first) by default; `false` sorts in descending order.", meta.BOOLEAN, { default = true })
local NODATA = param("nodata", "What happens to null elements: null (the default) drops them, `true` puts them at the end, `false` at the start.",
  meta.BOOLEAN_OR_NULL, { default = NULL })
local SORT_NOTE = " Numbers are compared by value, dates and date-times as instants (time zones taken into account); " ..
  "NaN sorts after +Infinity. Equal elements keep their original order."

-- The x axis of array_interpolate_linear: numeric or temporal labels when
-- every label is one, otherwise positions.
local function axis(data)
  local labels = labels_of(data)
  local xs = {}
  if labels then
    local numeric, temporal = true, true
    for i = 1, #labels do
      if type(labels[i]) ~= "number" then numeric = false end
      if not util.parse_temporal(labels[i]) then temporal = false end
    end
    if numeric or temporal then
      for i = 1, #labels do
        xs[i] = numeric and labels[i] or util.epoch_ms(util.parse_temporal(labels[i]))
      end
      return xs
    end
  end
  for i = 1, #data do xs[i] = i end
  return xs
end

-- The child process's answer for each element of a.data (given x, its
-- zero-based index, its label or null, and context) -> answers, nil, the
-- array's labels | nil, err.
local function per_element(a, child)
  local data, labels, out = a.data, labels_of(a.data), {}
  for i = 1, #data do
    local v, err = child({ x = data[i], index = i - 1, label = labels and labels[i] or NULL, context = a.context })
    if err then return nil, err end
    out[i] = v
  end
  return out, nil, labels
end

local function with_labels_of(src, values, labels)
  if labels_of(src) then return util.labeled(values, labels) end
  return util.array(values)
end

return {
  {
    id = "array_element", summary = "Get an element from an array",
    description = "Gives the element of `data` at the zero-based `index`, or the one with the given `label` in a " ..
      "labeled array. Exactly one of `index` and `label` must be given. A position or label that does not exist " ..
      "is an error (`ArrayElementNotAvailable`) unless `return_nodata` is true, which gives null instead.",
    categories = { "arrays", "reducer" },
    parameters = {
      param("data", "The array.", meta.ARRAY),
      param("index", "The zero-based position of the element.", meta.INTEGER, { optional = true }),
      param("label", "The label of the element (labeled arrays only).", meta.LABEL, { optional = true }),
      param("return_nodata", "Give null instead of an error when the element does not exist.", meta.BOOLEAN, { default = false }),
    },
    returns = returns("The element.", meta.ANY),
    exceptions = {
      ArrayElementNotAvailable = { message = "The array has no element at that index or with that label." },
      ArrayElementParameterMissing = { message = "array_element needs either `index` or `label`." },
      ArrayElementParameterConflict = { message = "array_element takes `index` or `label`, not both." },
      ArrayNotLabeled = { message = "The array has no labels; use `index` instead of `label`." },
    },
    impl = function(a)
      local data, index, label = a.data, a.index, a.label
      if is_null(index) and is_null(label) then
        return util.fail("ArrayElementParameterMissing", "array_element needs either `index` or `label`.")
      end
      if not is_null(index) and not is_null(label) then
        return util.fail("ArrayElementParameterConflict", "array_element takes `index` or `label`, not both.")
      end
      local pos
      if not is_null(label) then
        local labels = labels_of(data)
        if not labels then
          return util.fail("ArrayNotLabeled", "array_element: the array has no labels; use `index` instead of `label`.")
        end
        pos = find_label(labels, label)
      elseif index >= 0 and index < #data then
        pos = math.tointeger(index) + 1
      end
      if not pos then
        if a.return_nodata then return NULL end
        local what = is_null(label) and ("index " .. util.number_text(index)) or ("label " .. label_text(label))
        return util.fail("ArrayElementNotAvailable", "array_element: the array has no element with " .. what .. ".")
      end
      return data[pos]
    end,
  },
  {
    id = "array_apply", summary = "Apply a process to each array element",
    description = "Calls the child process `process` once per element of `data` and collects the results in a new " ..
      "array of the same length (a map). The child process receives the element as `x`, its zero-based `index`, " ..
      "its `label` (null for arrays without labels) and `context`. Labels are kept.",
    categories = { "arrays" },
    parameters = {
      param("data", "The array.", meta.ARRAY),
      param("process", "The child process computing the new value of each element.",
        meta.callback(meta.element_params(), "The new value of the element.", meta.ANY)),
      meta.CONTEXT,
    },
    returns = returns("The array of results.", meta.ARRAY),
    impl = function(a)
      local res, err, labels = per_element(a, a.process)
      if not res then return nil, err end
      if labels then return util.labeled(res, labels) end
      return util.array(res)
    end,
  },
  {
    id = "array_filter", summary = "Filter an array",
    description = "Keeps the elements of `data` for which the child process `condition` returns true, in their " ..
      "original order. The child process receives the element as `x`, its zero-based `index`, its `label` (null for " ..
      "arrays without labels) and `context`. Labels of the kept elements are kept.",
    categories = { "arrays", "filter" },
    parameters = {
      param("data", "The array.", meta.ARRAY),
      param("condition", "The child process deciding whether an element is kept.",
        meta.callback(meta.element_params(), "true to keep the element.", meta.BOOLEAN)),
      meta.CONTEXT,
    },
    returns = returns("The kept elements.", meta.ARRAY),
    impl = function(a)
      local keep, err, labels = per_element(a, a.condition)
      if not keep then return nil, err end
      local data, res, kept = a.data, {}, {}
      for i = 1, #data do
        if keep[i] == true then
          res[#res + 1] = data[i]
          if labels then kept[#kept + 1] = labels[i] end
        end
      end
      if labels then return util.labeled(res, kept) end
      return util.array(res)
    end,
  },
  {
    id = "array_find", summary = "Position of a value in an array",
    description = "Gives the zero-based position of the first element of `data` equal to `value` (as `eq` compares, " ..
      "strictly typed), or of the last one when `reverse` is true; null if there is none. A null, array or object " ..
      "`value` always gives null.",
    categories = { "arrays", "reducer" },
    parameters = {
      param("data", "The array to search.", meta.ARRAY),
      param("value", "The value to look for.", meta.ANY),
      param("reverse", "Find the last match instead of the first.", meta.BOOLEAN, { default = false }),
    },
    returns = returns("The position, or null.", { { type = "null" }, { type = "integer", minimum = 0 } }),
    impl = function(a)
      local data, value = a.data, a.value
      if is_null(value) or type(value) == "table" then return NULL end
      local from, to, step = 1, #data, 1
      if a.reverse then from, to, step = #data, 1, -1 end
      for i = from, to, step do
        if util.equals(data[i], value) == true then return i - 1 end
      end
      return NULL
    end,
  },
  {
    id = "array_contains", summary = "Does an array contain a value?",
    description = "true if some element of `data` equals `value` (as `eq` compares, strictly typed), false " ..
      "otherwise. A null `value` always gives false, and arrays or objects are never found.",
    categories = { "arrays", "comparison", "reducer" },
    parameters = {
      param("data", "The array to search.", meta.ARRAY),
      param("value", "The value to look for.", meta.SCALAR_OR_NULL),
    },
    returns = returns("Whether the value was found.", meta.BOOLEAN),
    impl = function(a)
      if is_null(a.value) then return false end
      for i = 1, #a.data do
        if util.equals(a.data[i], a.value) == true then return true end
      end
      return false
    end,
  },
  {
    id = "array_append", summary = "Append a value to an array",
    description = "Gives a new array with `value` added at the end. For a labeled array the new element gets " ..
      "`label`, or, if that is null, its zero-based position as a number; a label that already exists is an error " ..
      "(`LabelExists`). Giving a label for an array without labels is an error (`ArrayNotLabeled`).",
    categories = { "arrays" },
    parameters = {
      param("data", "The array.", meta.ARRAY),
      param("value", "The value to append.", meta.ANY),
      param("label", "The label of the new element (labeled arrays only).", meta.LABEL_OR_NULL, { default = NULL }),
    },
    returns = returns("The longer array.", meta.ARRAY),
    exceptions = {
      LabelExists = { message = "The array already has an element with this label." },
      ArrayNotLabeled = { message = "The array has no labels, so no label can be given." },
    },
    impl = function(a)
      local data, labels = a.data, labels_of(a.data)
      local label = a.label
      if not labels and not is_null(label) then
        return util.fail("ArrayNotLabeled", "array_append: the array has no labels, so no label can be given.")
      end
      local res = util.copy_array(data)
      res[#res + 1] = a.value
      if labels then
        if is_null(label) then label = #data end
        if find_label(labels, label) then
          return util.fail("LabelExists", "array_append: the label " .. label_text(label) .. " already exists.")
        end
        local l = labels_of(res)
        l[#l + 1] = label
      end
      return res
    end,
  },
  {
    id = "array_concat", summary = "Concatenate two arrays",
    description = "Gives the elements of `array1` followed by those of `array2`. Labels are kept only if both " ..
      "arrays are labeled, and then a label present in both is an error (`ArrayLabelConflict`).",
    categories = { "arrays" },
    parameters = { param("array1", "The first array.", meta.ARRAY), param("array2", "The second array.", meta.ARRAY) },
    returns = returns("The joined array.", meta.ARRAY),
    exceptions = { ArrayLabelConflict = { message = "Both arrays have an element with the same label." } },
    impl = function(a)
      local x, y = a.array1, a.array2
      local lx, ly = labels_of(x), labels_of(y)
      local res, labels = {}, {}
      for i = 1, #x do res[#res + 1] = x[i] end
      for i = 1, #y do res[#res + 1] = y[i] end
      if lx and ly then
        for i = 1, #lx do labels[i] = lx[i] end
        for i = 1, #ly do
          if find_label(lx, ly[i]) then
            return util.fail("ArrayLabelConflict", "array_concat: the label " .. label_text(ly[i]) .. " is in both arrays.")
          end
          labels[#labels + 1] = ly[i]
        end
        return util.labeled(res, labels)
      end
      return util.array(res)
    end,
  },
  {
    id = "array_create", summary = "Create an array",
    description = "Gives a new array holding the elements of `data` repeated `repeat` times (once by default). " ..
      "Without arguments it gives an empty array.",
    categories = { "arrays" },
    parameters = {
      param("data", "The elements of the new array.", meta.ARRAY, { default = util.array() }),
      param("repeat", "How many times `data` is repeated.", { type = "integer", minimum = 1 }, { default = 1 }),
    },
    returns = returns("The new array.", meta.ARRAY),
    impl = function(a)
      local res, data = {}, a.data
      for _ = 1, a["repeat"] do
        for i = 1, #data do res[#res + 1] = data[i] end
      end
      return util.array(res)
    end,
  },
  {
    id = "array_create_labeled", summary = "Create a labeled array",
    description = "Gives a labeled array whose elements are `data` and whose labels are `labels`, pairwise. " ..
      "Both arrays must have the same length (`ArrayLengthMismatch`).",
    categories = { "arrays" }, experimental = true,
    parameters = {
      param("data", "The elements.", meta.ARRAY),
      param("labels", "The labels, one per element.", { type = "array", items = { anyOf = meta.LABEL } }),
    },
    returns = returns("The labeled array.", meta.ARRAY),
    exceptions = { ArrayLengthMismatch = { message = "`data` and `labels` have different lengths." } },
    impl = function(a)
      if #a.data ~= #a.labels then
        return util.fail("ArrayLengthMismatch", string.format(
          "array_create_labeled: %d elements but %d labels.", #a.data, #a.labels))
      end
      local values, labels = {}, {}
      for i = 1, #a.data do
        if find_label(labels, a.labels[i]) then
          return util.fail("LabelExists", "array_create_labeled: the label " .. label_text(a.labels[i]) .. " is given twice.")
        end
        values[i], labels[i] = a.data[i], a.labels[i]
      end
      return util.labeled(values, labels)
    end,
  },
  {
    id = "array_find_label", summary = "Position of a label in an array",
    description = "Gives the zero-based position of the element labeled `label`, or null if there is none or " ..
      "the array has no labels.",
    categories = { "arrays", "reducer" }, experimental = true,
    parameters = {
      param("data", "The labeled array.", meta.ARRAY),
      param("label", "The label to look for.", meta.LABEL),
    },
    returns = returns("The position, or null.", { { type = "null" }, { type = "integer", minimum = 0 } }),
    impl = function(a)
      local labels = labels_of(a.data)
      local pos = labels and find_label(labels, a.label)
      if not pos then return NULL end
      return pos - 1
    end,
  },
  {
    id = "array_modify", summary = "Replace, insert or remove array elements",
    description = "Gives a copy of `data` in which the `length` elements from the zero-based `index` on are replaced " ..
      "by the elements of `values`: a `length` of 0 inserts, an empty `values` removes; one element is replaced by default. An `index` beyond the end is " ..
      "an error (`ArrayElementNotAvailable`). Labeled arrays are not supported by this implementation.",
    categories = { "arrays" }, experimental = true,
    parameters = {
      param("data", "The array.", meta.ARRAY),
      param("values", "The elements to put in.", meta.ARRAY),
      param("index", "The zero-based position of the first element to replace.", { type = "integer", minimum = 0 }),
      param("length", "How many elements to replace; 0 inserts.", { type = "integer", minimum = 0 }, { default = 1 }),
    },
    returns = returns("The modified array.", meta.ARRAY),
    exceptions = { ArrayElementNotAvailable = { message = "The index is beyond the end of the array." } },
    impl = function(a)
      local data, values = a.data, a.values
      if labels_of(data) then
        return util.fail("ArrayLabelsUnsupported", "array_modify: labeled arrays are not supported.")
      end
      local index = math.tointeger(a.index)
      if index > #data then
        return util.fail("ArrayElementNotAvailable", "array_modify: index " .. index .. " is beyond the end of the array.")
      end
      local res = {}
      for i = 1, index do res[#res + 1] = data[i] end
      for i = 1, #values do res[#res + 1] = values[i] end
      for i = index + a.length + 1, #data do res[#res + 1] = data[i] end
      return util.array(res)
    end,
  },
  {
    id = "array_interpolate_linear", summary = "Fill gaps by linear interpolation",
    description = "Replaces each null or NaN element that has numbers on both sides by the linear interpolation " ..
      "between its nearest numeric neighbours. The positions are the x axis, or the labels when all labels are " ..
      "numbers or all are dates (they must be in ascending order). Leading and trailing gaps stay as they are, and " ..
      "an array with fewer than two numbers is returned unchanged. ±Infinity counts as a number.",
    categories = { "arrays", "math", "math > interpolation" },
    parameters = { param("data", "An array of numbers with gaps (null or NaN).", meta.NUMBERS) },
    returns = returns("The array with interior gaps filled; labels are kept.", meta.NUMBERS),
    impl = function(a)
      local data = a.data
      local res = util.copy_array(data)
      local xs = axis(data)
      local prev
      for i = 1, #data do
        local v = data[i]
        if not is_null(v) and v == v then
          if prev and i > prev + 1 then
            local x0, x1, y0, y1 = xs[prev], xs[i], data[prev] + 0.0, v + 0.0
            for j = prev + 1, i - 1 do
              local t = (xs[j] - x0) / (x1 - x0)
              res[j] = out((1 - t) * y0 + t * y1)
            end
          end
          prev = i
        end
      end
      return res
    end,
  },
  {
    id = "array_labels", summary = "Labels of an array",
    description = "Gives the labels of a labeled array, or the zero-based positions 0, 1, ... of an array without labels.",
    categories = { "arrays" },
    parameters = { param("data", "The array.", meta.ARRAY) },
    returns = returns("The labels or positions.", { type = "array", items = { type = { "number", "string" } } }),
    impl = function(a)
      local labels, res = labels_of(a.data), {}
      for i = 1, #a.data do res[i] = labels and labels[i] or i - 1 end
      return util.array(res)
    end,
  },
  {
    id = "order", summary = "Sorting permutation",
    description = "Gives the zero-based positions of the elements of `data` in sorted order, a permutation that " ..
      "`rearrange` can apply." .. SORT_NOTE,
    categories = { "arrays", "sorting" },
    parameters = { param("data", "Numbers, dates or date-times, possibly with nulls.", SORTABLE), ASC, NODATA },
    returns = returns("The permutation.", { type = "array", items = { type = "integer", minimum = 0 } }),
    impl = function(a)
      local perm, err = permutation(a.data, a.asc, a.nodata)
      if not perm then return nil, err end
      for i = 1, #perm do perm[i] = perm[i] - 1 end
      return util.array(perm)
    end,
  },
  {
    id = "rearrange", summary = "Apply a permutation to an array",
    description = "Gives the elements of `data` at the zero-based positions listed in `order`, in that order; " ..
      "`order` may list fewer positions than `data` has elements. Labels travel with their elements.",
    categories = { "arrays", "sorting" },
    parameters = {
      param("data", "The array.", meta.ARRAY),
      param("order", "Zero-based positions, e.g. the result of `order`.", { type = "array", items = { type = "integer", minimum = 0 } }),
    },
    returns = returns("The rearranged array.", meta.ARRAY),
    impl = function(a)
      local data, labels = a.data, labels_of(a.data)
      local res, ls = {}, {}
      for i = 1, #a.order do
        local p = math.tointeger(a.order[i])
        if p >= #data then
          return util.fail("ProcessParameterInvalid", "The value passed for parameter 'order' in process 'rearrange' is invalid: position "
            .. p .. " is beyond the end of the array.")
        end
        res[i] = data[p + 1]
        if labels then ls[i] = labels[p + 1] end
      end
      return with_labels_of(data, res, ls)
    end,
  },
  {
    id = "sort", summary = "Sort an array",
    description = "Gives the elements of `data` in ascending (or, with `asc` false, descending) order." .. SORT_NOTE,
    categories = { "arrays", "sorting" },
    parameters = { param("data", "Numbers, dates or date-times, possibly with nulls.", SORTABLE), ASC, NODATA },
    returns = returns("The sorted array.", SORTABLE),
    impl = function(a)
      local perm, err = permutation(a.data, a.asc, a.nodata)
      if not perm then return nil, err end
      local data, labels = a.data, labels_of(a.data)
      local res, ls = {}, {}
      for i = 1, #perm do
        res[i] = data[perm[i]]
        if labels then ls[i] = labels[perm[i]] end
      end
      return with_labels_of(data, res, ls)
    end,
  },
}

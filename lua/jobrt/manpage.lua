-- jobrt(1) in roff, made from the same help text `jobrt help` prints
-- (`jobrt help --man`; the Makefile writes build/jobrt.1 with it).
local M = {}

-- Text for roff: backslashes and hyphens escaped, and a line starting
-- with a control character ('.' or "'") guarded.
local function esc(s)
  s = tostring(s or ""):gsub("\\", "\\e"):gsub("%-", "\\-")
  return (s:gsub("^([.'])", "\\&%1"):gsub("\n([.'])", "\n\\&%1"))
end

-- A command's help: paragraphs, and indented lines kept as they are.
local function body(help)
  local out, para, verbatim = {}, {}, {}
  local function flush_para()
    if #para > 0 then
      out[#out + 1] = ".PP"
      out[#out + 1] = esc(table.concat(para, " "))
      para = {}
    end
  end
  local function flush_verbatim()
    if #verbatim > 0 then
      out[#out + 1] = ".PP\n.RS 2\n.nf"
      for _, l in ipairs(verbatim) do out[#out + 1] = esc(l) end
      out[#out + 1] = ".fi\n.RE"
      verbatim = {}
    end
  end
  for line in (help .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^%s*$") then
      flush_para()
      flush_verbatim()
    elseif line:match("^  ") then
      flush_para()
      verbatim[#verbatim + 1] = line:sub(3)
    else
      flush_verbatim()
      para[#para + 1] = line
    end
  end
  flush_para()
  flush_verbatim()
  return table.concat(out, "\n")
end

-- render{version =, commands = {{usage, summary, help, surface}}} -> roff
function M.render(opts)
  local out = {
    string.format('.TH JOBRT 1 "" "jobrt %s" "User Commands"', esc(opts.version)),
    ".SH NAME",
    "jobrt \\- a job runtime: stores batch jobs, schedules their tasks and runs each in a sandbox",
    ".SH SYNOPSIS",
    ".B jobrt",
    ".I command",
    "[\\fIoptions\\fR]",
    ".SH DESCRIPTION",
    ".PP",
    esc("jobrt is one daemon (jobrt serve) that stores jobs durably, schedules their tasks against "
      .. "the machine's cpu, memory and gpu, and runs each task isolated. Its REST API surfaces, "
      .. "approval policies, estimators and publishers are Lua; a deployment is one YAML file. "
      .. "The same binary is the command-line client of a daemon (jobrt login, jobrt jobs)."),
    ".SH COMMANDS",
  }
  for _, c in ipairs(opts.commands) do
    out[#out + 1] = ".SS " .. esc("jobrt " .. c.usage)
    out[#out + 1] = esc((c.summary or "") .. (c.surface and (" (from the " .. c.surface .. " surface)") or ""))
    out[#out + 1] = body(c.help or "")
  end
  local tail = {
    ".SH ENVIRONMENT",
    ".TP", ".B JOBRT_URL", esc("the daemon the client commands talk to (instead of the one jobrt login kept)"),
    ".TP", ".B JOBRT_TOKEN", esc("the bearer token the client commands send"),
    ".TP", ".B JOBRT_CA_FILE", esc("a PEM bundle to verify https peers against (downloads, the client)"),
    ".TP", ".B JOBRT_CERT, JOBRT_KEY", esc("the client certificate and key (PEM) the client presents to a mutual-TLS listener"),
    ".SH FILES",
    ".TP", ".I ~/.config/jobrt/credentials", esc("the URL and token jobrt login keeps (mode 0600)"),
    ".TP", ".I DATA_DIR/auth/admin.txt", esc("the admin credential generated on the first start"),
    ".TP", ".I /jobrt/ui/", esc("the dashboard, served by the daemon"),
    ".TP", ".I /jobrt/v1/openapi.json", esc("the native API's OpenAPI document, served by the daemon"),
    ".SH SEE ALSO",
    esc("The README of the jobrt repository; deploy/jobrt.service for running it under systemd."),
  }
  for _, l in ipairs(tail) do out[#out + 1] = l end
  return table.concat(out, "\n") .. "\n"
end

return M

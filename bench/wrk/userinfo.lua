-- GET /userinfo with the access tokens of BENCH_IN (second column), round robin.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local c = require("common")

function setup(thread) c.setup(thread) end

function init(args)
  c.init()
  tokens = {}
  for _, line in ipairs(c.lines(os.getenv("BENCH_IN"), 1, 1)) do
    table.insert(tokens, string.match(line, "^%S+%s+(%S+)"))
  end
  if #tokens == 0 then table.insert(tokens, "none") end
  i = 0
  wrk.method = "GET"
  wrk.headers["Accept"] = "application/json"
end

delay = c.delay

function request()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] }, nil)
end

function response(status, headers, body)
  c.count(status == 200 and string.find(body or "", '"sub"') ~= nil)
end

done = c.done

-- One fixed request, repeated: BENCH_METHOD, BENCH_AUTH (Authorization), BENCH_BODY (form),
-- BENCH_EXPECT (Lua pattern a 2xx body must contain). Optional pacing (common.lua).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local c = require("common")

function setup(thread) c.setup(thread) end

function init(args)
  c.init()
  wrk.method = os.getenv("BENCH_METHOD") or "GET"
  wrk.headers["Accept"] = "application/json"
  if c.basic() ~= "" then wrk.headers["Authorization"] = c.basic() end
  if wrk.method == "POST" then
    wrk.body = os.getenv("BENCH_BODY") or ""
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  expect = os.getenv("BENCH_EXPECT") or ""
end

delay = c.delay

function response(status, headers, body)
  c.count(status >= 200 and status < 300 and (expect == "" or string.find(body or "", expect) ~= nil))
end

done = c.done

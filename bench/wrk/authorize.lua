-- GET /authorize with a live single sign-on session (consent-free e-service): each answer is a
-- 303 to the e-service with a fresh code. Codes are appended to BENCH_OUT.<thread id> for
-- code.lua. BENCH_PATH is the request path and query, BENCH_COOKIE the session cookie.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local c = require("common")

function setup(thread) c.setup(thread) end

function init(args)
  c.init()
  wrk.method = "GET"
  wrk.path = os.getenv("BENCH_PATH")
  wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
  out = assert(io.open(os.getenv("BENCH_OUT") .. "." .. tid, "a"))
end

delay = c.delay

function response(status, headers, body)
  local location = c.header(headers, "Location")
  local code = location and string.match(location, "[?&]code=([^&]+)")
  if status == 303 and code then
    out:write(code, "\n")
    out:flush()
    c.count(true)
  else
    c.count(false)
  end
end

done = c.done

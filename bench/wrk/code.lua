-- POST /token grant_type=authorization_code: each code (one a line in BENCH_IN) is redeemed
-- once. The refresh and access tokens issued are appended to BENCH_OUT.<thread id>
-- ("refresh access" lines) for refresh.lua and userinfo.lua.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local c = require("common")

function setup(thread) c.setup(thread) end

function init(args)
  c.init()
  local n = tonumber(os.getenv("BENCH_THREADS"))
  codes = c.lines(os.getenv("BENCH_IN"), tid + 1, n)
  i = 0
  tail = "&redirect_uri=" .. os.getenv("BENCH_REDIRECT") .. "&code_verifier=" .. os.getenv("BENCH_VERIFIER")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = c.basic()
  out = assert(io.open(os.getenv("BENCH_OUT") .. "." .. tid, "a"))
end

delay = c.delay

function request()
  i = i + 1
  local code = codes[i]
  if code == nil then
    exhausted = exhausted + 1
    code = "exhausted"
  end
  return wrk.format(nil, nil, nil, "grant_type=authorization_code&code=" .. code .. tail)
end

function response(status, headers, body)
  local refresh = c.field(body, "refresh_token")
  local access = c.field(body, "access_token")
  if status == 200 and refresh and access then
    out:write(refresh, " ", access, "\n")
    out:flush()
    c.count(true)
  else
    c.count(false)
  end
end

done = c.done

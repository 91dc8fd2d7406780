-- POST /token grant_type=refresh_token. Refresh tokens rotate: each thread keeps a pool
-- (its share of the first column of BENCH_IN); a request takes one, its answer gives the next.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local c = require("common")

function setup(thread) c.setup(thread) end

function init(args)
  c.init()
  local n = tonumber(os.getenv("BENCH_THREADS"))
  pool = {}
  for _, line in ipairs(c.lines(os.getenv("BENCH_IN"), tid + 1, n)) do
    table.insert(pool, string.match(line, "^(%S+)"))
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = c.basic()
end

delay = c.delay

function request()
  local token = table.remove(pool)
  if token == nil then
    exhausted = exhausted + 1
    token = "exhausted"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local refresh = c.field(body, "refresh_token")
  if status == 200 and refresh and c.field(body, "access_token") then
    table.insert(pool, 1, refresh)
    c.count(true)
  else
    c.count(false)
  end
end

done = c.done

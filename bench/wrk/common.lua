-- Shared by the bench's wrk scripts: per-thread ids, pacing, response counting.
--
-- Environment:
--   BENCH_DELAY_MS  optional pause before each request of a connection (paced load, for the
--                   latency at a fixed fraction of the peak rate)
--
-- done() prints one BENCH_RESULT line with the totals over all threads:
-- ok (2xx/3xx with the expected content), bad (anything else), exhausted (requests made after
-- the script ran out of single-use inputs: they count as bad too).

local M = {}
local threads = {}
local next_id = 0

function M.setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function M.init()
  ok, bad, exhausted = 0, 0, 0
  local d = tonumber(os.getenv("BENCH_DELAY_MS") or "")
  M.delay_ms = (d and d > 0) and d or nil
end

function M.delay()
  return M.delay_ms
end

function M.count(good)
  if good then ok = ok + 1 else bad = bad + 1 end
end

function M.done(summary, latency, requests)
  local o, b, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + (t:get("ok") or 0)
    b = b + (t:get("bad") or 0)
    x = x + (t:get("exhausted") or 0)
  end
  io.write(string.format(
    "BENCH_RESULT ok=%d bad=%d exhausted=%d requests=%d duration_us=%d socket_errors=%d"
      .. " p50_us=%d p99_us=%d\n",
    o, b, x, summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end

-- Lines of a file, every `every`-th one starting at `first` (1-based), as a list.
function M.lines(path, first, every)
  local out, n = {}, 0
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    n = n + 1
    if line ~= "" and (n - first) % every == 0 then table.insert(out, line) end
  end
  f:close()
  return out
end

function M.basic()
  return os.getenv("BENCH_AUTH") or ""
end

-- A JSON string field of a flat response body (enough for token responses).
function M.field(body, name)
  if not body then return nil end
  return string.match(body, '"' .. name .. '"%s*:%s*"([^"]+)"')
end

-- A response header, whatever the case of its name.
function M.header(headers, name)
  local want = string.lower(name)
  for k, v in pairs(headers) do
    if string.lower(k) == want then return v end
  end
  return nil
end

return M

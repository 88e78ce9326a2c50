-- wrk script: each request sells the next unsold code from the file of "token serial" lines (threads take
-- disjoint slices, starting at OFFSET), as that store's owner. PHASE keeps request ids unique across runs.
local serials = {}
for line in io.lines(os.getenv("SERIALS_FILE")) do serials[#serials + 1] = line end
local offset = tonumber(os.getenv("OFFSET") or "0")
local phase = os.getenv("PHASE") or "0"
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  thread:set("nthreads", tonumber(os.getenv("WRK_THREADS")))
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local i = offset + counter * nthreads + tid + 1
  counter = counter + 1
  local token, serial = serials[((i - 1) % #serials) + 1]:match("(%S+) (%S+)")
  wrk.headers["Authorization"] = "Bearer " .. token
  -- The phone's clock, now: a sell dated more than 10 minutes off is not a live one (it takes the general path).
  local body = string.format('{"request_id":"p%s-w%d-%d","code":"%s","action":"sell","scanned_at":"%s"}',
    phase, tid, counter, serial, os.date("!%Y-%m-%dT%H:%M:%S+00:00"))
  return wrk.format(nil, nil, nil, body)
end

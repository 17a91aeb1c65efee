-- wrk script for the ingest benchmark: POST signed Ready callbacks, one job after another.
--
--   wrk -t2 -c32 -d10s -s bench/callbacks.lua http://127.0.0.1:PORT -- DATAFILE THREADS
--
-- DATAFILE has one line per job: "<path>\t<X-Webhook-Secret>\t<JSON body>". Thread t (of
-- THREADS) sends lines t, t+THREADS, t+2*THREADS, ... so no two threads send the same job;
-- a thread that runs out wraps around (the Python side counts such duplicates). done() prints
-- one JSON line with wrk's own counts and latency percentiles (microseconds).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  step = tonumber(args[2])
  reqs = {}
  for line in io.lines(path) do
    local p, secret, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    if p then
      reqs[#reqs + 1] = wrk.format("POST", p,
        {["Content-Type"] = "application/json", ["X-Webhook-Secret"] = secret}, body)
    end
  end
  index = tid
  sent = 0
end

function request()
  local r = reqs[(index % #reqs) + 1]
  index = index + step
  sent = sent + 1
  return r
end

function done(summary, latency, requests)
  local total_sent = 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + (thread:get("sent") or 0)
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"sent":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, summary.bytes, total_sent,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end

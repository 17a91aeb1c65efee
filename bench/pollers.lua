-- wrk script for the compat benchmark: clients that each poll a job's status every INTERVAL ms.
--
--   wrk -t2 -c200 -d20s -s bench/pollers.lua http://127.0.0.1:PORT -- DATAFILE INTERVAL_MS TOKEN
--
-- DATAFILE has one request path per line (get_result?id=... or /v1/jobs/...). Each connection waits a
-- random time in [INTERVAL/2, 3*INTERVAL/2] before each request, so that on average it asks every INTERVAL
-- ms and the connections keep apart instead of all asking at once (apps that poll are not in step).
-- done() prints one JSON line with wrk's counts, latency percentiles (microseconds) and how many answers
-- said the job was done ("Ready" or "stored").

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  interval = tonumber(args[2])
  local headers = {["x-key"] = args[3]}
  reqs = {}
  for i, path in ipairs(paths) do
    reqs[i] = wrk.format("GET", path, headers)
  end
  math.randomseed(os.time() + #threads)
  index = math.random(#reqs)
  done_answers = 0
end

function delay()
  return math.random(math.floor(interval / 2), math.floor(interval * 3 / 2))
end

function request()
  index = index % #reqs + 1
  return reqs[index]
end

function response(status, headers, body)
  if body:find('"status":"Ready"', 1, true) or body:find('"status":"stored"', 1, true) then
    done_answers = done_answers + 1
  end
end

function done(summary, latency, requests)
  local finished = 0
  for _, thread in ipairs(threads) do
    finished = finished + (thread:get("done_answers") or 0)
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"done_answers":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, finished,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end

-- wrk script for POST /<app>/predict.
-- BENCH_INPUT_MODE=unique: every request carries a different input (no cache hits);
-- BENCH_INPUT_MODE=same: every request carries the same input (cache hits after the first).
-- done() prints one JSON line, prefixed with "BENCH_JSON ", for benchmarks/loadgen.py.

local mode = os.getenv("BENCH_INPUT_MODE") or "unique"
-- A fresh salt per run (set by loadgen.py) keeps inputs unique across runs too, so a later run
-- never hits the prediction cache with an earlier run's inputs.
local salt = os.getenv("BENCH_SALT") or "0"
local threads = {}
local thread_count = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input":[1.5]}'

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  defaults = 0
  non_ok = 0
  answered = 0
end

function request()
  if mode == "same" then
    return wrk.format(nil, nil, nil, wrk.body)
  end
  counter = counter + 1
  -- Doubles must carry a fraction; thread_id keeps inputs distinct across threads.
  local body = string.format('{"input":[%s.5,%d.5,%d.5]}', salt, thread_id, counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    non_ok = non_ok + 1
  elseif string.find(body, '"default":true', 1, true) then
    defaults = defaults + 1
  end
end

function done(summary, latency, requests)
  local total_defaults, total_non_ok, total_answered = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_defaults = total_defaults + thread:get("defaults")
    total_non_ok = total_non_ok + thread:get("non_ok")
    total_answered = total_answered + thread:get("answered")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"answered":%d,"defaults":%d,"non_ok":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, total_answered, total_defaults, total_non_ok,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end

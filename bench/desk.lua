-- One case of the desk benchmark: bench/desk_bench.py runs wrk with this script and
-- describes the case in the environment:
--   BENCH_THREADS       wrk's -t, so that each thread takes its share of BENCH_LIMIT
--   BENCH_LIMIT         answers to stop after, shared among the threads; 0 runs for
--                       wrk's duration (a thread that has its share prints "stopped",
--                       and desk_bench.py ends wrk when every thread has)
--   BENCH_FORMS         forms to POST in turn, one per line (otherwise wrk's GET)
--   BENCH_FIRST_NUMBER  the first student number: each POST gets the next one, so no
--                       add is refused as a duplicate of a student already waiting
-- done() prints one line, "result {json}": wrk's totals and each thread's answers by
-- status, its start and last answer (monotonic seconds), and the last number it used.
local ffi = require("ffi")

ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])

local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(os.getenv("BENCH_THREADS"))
  local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
  share = math.floor(limit / count) + ((index < limit % count) and 1 or 0)
  forms = {}
  for form in string.gmatch(os.getenv("BENCH_FORMS") or "", "[^\n]+") do
    table.insert(forms, form)
  end
  step = count
  number = tonumber(os.getenv("BENCH_FIRST_NUMBER") or "0") + index
  last_number = 0
  sent = 0
  answered = 0
  statuses = {}
  -- Each thread starts, and connects, as soon as it is initialised.
  started = now()
  finished = 0
end

function request()
  if #forms == 0 then
    return wrk.request()
  end
  sent = sent + 1
  last_number = number
  number = number + step
  local form = forms[(sent - 1) % #forms + 1]
  return wrk.format("POST", nil, nil, string.format("%s&student_number=%08d", form, last_number))
end

function response(status)
  answered = answered + 1
  finished = now()
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if answered == share then
    wrk.thread:stop()
    io.write("stopped\n")
    io.flush()
  end
end

local function json(value)
  if type(value) == "table" then
    local parts = {}
    for key, item in pairs(value) do
      table.insert(parts, string.format('"%s":%s', tostring(key), json(item)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return string.format("%.6f", value)
end

function done(summary, latency)
  local result = {
    requests = summary.requests,
    duration_us = summary.duration,
    errors = summary.errors,
    p50_us = latency:percentile(50),
    p99_us = latency:percentile(99),
    threads = {},
  }
  for i, thread in ipairs(threads) do
    result.threads[tostring(i)] = {
      answered = thread:get("answered"),
      statuses = thread:get("statuses"),
      started = thread:get("started"),
      finished = thread:get("finished"),
      last_number = thread:get("last_number"),
    }
  end
  io.write("result " .. json(result) .. "\n")
end

-- POSTs Alertmanager webhook bodies read from a file (one JSON body per line), round-robin,
-- and prints the run's figures as one JSON line for bench/webhook_storm.py.
-- usage: wrk -s webhook_post.lua URL -- BODY_FILE [AUTHORIZATION]

local bodies = {}
local index = 0
local path = "/webhook/alertmanager"

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "Alertmanager/0.25.0"
  if args[2] ~= nil and #args[2] > 0 then
    wrk.headers["Authorization"] = args[2]
  end
  -- threads start at different offsets so they do not send the same body in lockstep
  index = math.random(#bodies)
end

function request()
  index = index % #bodies + 1
  return wrk.format(nil, path, nil, bodies[index])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors_status": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end

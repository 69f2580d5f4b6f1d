-- wrk script for bench/run: POST /v1/requests with a bearer token and a JSON body.
-- Every request is distinct: the resource and command carry the run label, the wrk thread
-- and a per-thread counter. The same script drives nginx, so both servers see the same bytes.
-- Environment: BENCH_TOKEN (bearer token), BENCH_RUN (label that keeps runs apart).

local token = os.getenv("BENCH_TOKEN") or "so_missing"
local run = os.getenv("BENCH_RUN") or "run"
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  counter = 0
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
end

function request()
  counter = counter + 1
  local name = string.format("%s-%d-%d", run, tid, counter)
  local body = string.format(
    '{"action":{"kind":"shell","command":["deploy","svc-%s"],"resource":"svc/%s",' ..
    '"environment":"bench"},"intent":"bench submit %s","context":{"ticket":"BENCH-%d"}}',
    name, name, name, counter)
  return wrk.format("POST", "/v1/requests", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d " ..
    "status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end

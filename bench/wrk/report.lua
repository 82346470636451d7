-- wrk script: optional PUT for the token route (WRK_METHOD=PUT), and a JSON summary line with
-- the percentiles wrk does not print by itself (p99.9) and the error counts.
local method = os.getenv("WRK_METHOD")
if method then wrk.method = method end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end

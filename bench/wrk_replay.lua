-- Replays a list of requests under wrk, for python -m bench.server.
--
-- BENCH_LIST names a file of one item per line: a path (GET) or a JSON body (POST to
-- BENCH_TARGET).  Each of the BENCH_THREADS threads starts at its own share of the list, so
-- the threads do not send the same create twice; every thread cycles through the list.
-- done() prints one line "BENCH {json}" with the counts and latencies (microseconds) the
-- benchmark parses; wrk's own report is printed too.

local method = os.getenv("BENCH_METHOD") or "GET"
local target = os.getenv("BENCH_TARGET") or "/"
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local items = {}
for line in io.lines(os.getenv("BENCH_LIST")) do
  if #line > 0 then items[#items + 1] = line end
end
local headers = { ["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json" }
local token = os.getenv("BENCH_TOKEN") or ""
if #token > 0 then headers["Authorization"] = "Bearer " .. token end
local created = 0
local counter = 1

function setup(thread)
  thread:set("thread_number", created)
  created = created + 1
end

function init(args)
  counter = math.floor((thread_number or 0) * #items / threads) + 1
end

function request()
  local item = items[counter]
  counter = counter % #items + 1
  if method == "GET" then
    return wrk.format("GET", item, headers)
  end
  return wrk.format(method, target, headers, item)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "bad_status": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end

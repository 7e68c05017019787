-- POST distinct notifications, each wrk connection acting as one GREEN API instance that numbers them.
--
-- Order check (bench/ordering_router.py): GREEN API sends an instance's next notification only after the
-- previous one was answered, so each connection is one instance (idInstance 77<connection, 8 digits>) with
-- one request in flight, and its requests carry a rising sequence in the idMessage
-- (BENCH<connection, 5 digits><sequence, 12 digits>, unique per request so dedup never folds two).
--
-- Why one connection per thread: wrk keeps one Lua state per *thread* and calls request() and response()
-- without saying which connection they are for, so per-connection state exists only when each thread has
-- one connection. bench/e2e.py therefore runs wrk with threads = connections; this script's globals are
-- then that connection's, and its one-in-flight holds by construction (a thread-wide chat shared by several
-- connections would have several requests in flight and could be accepted out of order before greenq sees
-- it).
--
-- A non-200 answer is resent as it was (same idMessage, same sequence), as GREEN API resends; if the first
-- copy landed after all, greenq's dedup folds the second. Only a lower sequence counts as a violation.
-- (wrk calls request() once on its first thread to check the script and never sends that one: that
-- connection's sequence starts at 2, a gap, which the check allows.)
--
-- BENCH_BODY holds the sample bodies separated by lines "--8<--", each with the placeholders IDMESSAGE and
-- "IDINSTANCE" (a quoted string where the number goes).
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  connection = tid
  instance = string.format("77%08d", connection)
  sequence = 0
  resend = false
  local f = io.open(os.getenv("BENCH_BODY"), "rb")
  local text = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
  -- Each template is rendered once into this connection's whole request (its instance in, Content-Length
  -- counted with an id of the final length), cut where the idMessage goes: a request is then one
  -- concatenation instead of two scans of the body and a new request head (wrk's CPU is the machine's too).
  local marker = string.rep("\1", #string.format("BENCH%05d%012d", 0, 0))
  requests = {}
  for body in (text .. "\n--8<--\n"):gmatch("(.-)\n%-%-8<%-%-\n") do
    body = body:gsub('"IDINSTANCE"', instance):gsub("IDMESSAGE", marker)
    local whole = wrk.format(nil, nil, nil, body)
    local first, last = whole:find(marker, 1, true)
    assert(first and not whole:find(marker, last + 1, true), "one IDMESSAGE per template")
    table.insert(requests, { whole:sub(1, first - 1), whole:sub(last + 1) })
  end
end

function request()
  if not resend then
    sequence = sequence + 1
    local parts = requests[(sequence % #requests) + 1]
    pending = parts[1] .. string.format("BENCH%05d%012d", connection, sequence) .. parts[2]
  end
  resend = false
  return pending
end

function response(status, headers, body)
  resend = status ~= 200
end

-- POST distinct notifications: the documented samples in turn, each request's idMessage made unique.
-- BENCH_BODY holds the sample bodies separated by lines "--8<--", each with the placeholder IDMESSAGE.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
  local f = io.open(os.getenv("BENCH_BODY"), "rb")
  local text = f:read("*a")
  f:close()
  templates = {}
  for body in (text .. "\n--8<--\n"):gmatch("(.-)\n%-%-8<%-%-\n") do
    table.insert(templates, body)
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local id = string.format("BENCH%02d%010d", thread_id, counter)
  local template = templates[(counter % #templates) + 1]
  return wrk.format(nil, nil, nil, (template:gsub("IDMESSAGE", id)))
end

-- wrk script: POST JSON creates against a PocketBase-style records endpoint.
-- Usage: wrk ... -s create.lua http://127.0.0.1:PORT -- /api/collections/bench_posts/records
-- Every request carries a distinct body (thread id + counter) so no server can cache it.

local threads_started = 0

function setup(thread)
   threads_started = threads_started + 1
   thread:set("tid", threads_started)
end

local path = "/api/collections/bench_posts/records"
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   if args[1] ~= nil then
      path = args[1]
   end
end

function request()
   counter = counter + 1
   local n = (tid or 0) * 100000000 + counter
   local body = string.format(
      '{"title":"bench %d","body":"created by wrk thread %d request %d","views":%d,"published":%s}',
      n, tid or 0, counter, counter % 1000, (counter % 2 == 0) and "true" or "false")
   return wrk.format("POST", path, headers, body)
end

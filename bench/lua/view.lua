-- wrk script: GET one record by id, rotating through a list of existing ids.
-- Usage: wrk ... -s view.lua http://127.0.0.1:PORT -- /api/collections/bench_posts/records IDS_FILE
-- IDS_FILE holds one record id per line. Each thread starts at a different offset.

local threads_started = 0

function setup(thread)
   threads_started = threads_started + 1
   thread:set("tid", threads_started)
end

local prefix = "/api/collections/bench_posts/records"
local paths = {}
local idx = 0

function init(args)
   prefix = args[1] or prefix
   local file = assert(io.open(args[2], "r"), "cannot open ids file")
   for line in file:lines() do
      if #line > 0 then
         paths[#paths + 1] = prefix .. "/" .. line
      end
   end
   file:close()
   assert(#paths > 0, "ids file is empty")
   idx = ((tid or 0) * 97) % #paths
end

function request()
   idx = idx % #paths + 1
   return wrk.format("GET", paths[idx])
end

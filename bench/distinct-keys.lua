-- wrk: every request with a key never sent before (X-Key), for bench/ratelimit-keys.sh.
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/1k", { ["X-Key"] = "k" .. n })
end

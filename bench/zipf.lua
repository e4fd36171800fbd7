-- wrk script for the Zipf scenario: GET /z/<k>, k in 1..N drawn from a Zipf law with s = 1
-- (P(k) ~ 1/k) by inverting its continuous CDF: k = floor(N^u), u uniform in [0, 1).
-- N = ZIPF_KEYS (default 1,000,000). Seeded per thread so runs are comparable.
local N = tonumber(os.getenv("ZIPF_KEYS") or "1000000")
local logN = math.log(N)
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  local k = math.floor(math.exp(math.random() * logN))
  return wrk.format("GET", "/z/" .. k)
end

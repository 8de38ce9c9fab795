-- All state of one limit family, charged atomically on the server's clock.
--
-- KEYS[1]  the 429 hold (absolute µs before which nobody is admitted)
-- KEYS[2]  the concurrency leases (a sorted set: member = lease, score = its expiry in µs)
-- KEYS[3..] one GCRA bucket per dimension (value = theoretical arrival time in µs)
-- ARGV[1]  mode: batch | adjust | hold | tighten | renew
-- ARGV[2 + 4(i-1) ..] per bucket: capacity, period_us, a, b
--          adjust: a = units charged so far, b = units now due;
--          tighten: a = units the server reports in use (-1 = leave alone)
-- then     lease_limit (0 = no concurrency cap), requests, lease_id, lease_ttl_us, extra_us
--          (extra_us: the hold's length in `hold` mode)
--
-- batch:   reserves several requests in one call, in the order given, and stops after the first
--          that has to wait or finds no concurrency slot (so a process has at most one request
--          scheduled ahead). The tail goes on with m, then per request: requests, lease_id and
--          one charge per bucket (the per-bucket a, b are unused). Reply: {now_us, then per
--          request handled: 1, wait_us | 0, retry_us | -1, i}.
--
-- Every value is an integer number of µs or units; a bucket's share of `units` is
-- ceil(units × period / capacity), so a later adjust undoes a charge exactly.
-- Reply per request of a batch: {1, wait_us} admitted after wait_us; {0, retry_us} no
-- concurrency slot yet (nothing written); {-1, i} bucket i can never fit the request.
-- tighten answers {1, units in use before}; the other modes {1, 0}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local n = #KEYS - 2
local at = 2 + 4 * n
local lease_limit = tonumber(ARGV[at])
local requests = tonumber(ARGV[at + 1])
local lease_id = ARGV[at + 2]
local lease_ttl = tonumber(ARGV[at + 3])
local extra = tonumber(ARGV[at + 4])

local function share(units, capacity, period)
  return math.ceil(units * period / capacity)
end

local function tat_of(key)
  local v = tonumber(redis.call('GET', key) or 0)
  if v < now then v = now end
  return v
end

-- A key lives until its bucket is full again: nothing is left behind without a TTL.
local function store(key, tat)
  local ttl_ms = math.ceil((tat - now) / 1000)
  if ttl_ms > 0 then
    redis.call('SET', key, tat, 'PX', ttl_ms)
  else
    redis.call('DEL', key)
  end
end

local function keep_leases_until(expiry)
  local ttl_ms = math.ceil((expiry - now) / 1000) + 1000
  if redis.call('PTTL', KEYS[2]) < ttl_ms then
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
  end
end

local function bucket(i)
  local b = 2 + 4 * (i - 1)
  return tonumber(ARGV[b]), tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
end

if mode == 'batch' then
  local m = tonumber(ARGV[at + 5])
  local p = at + 6
  local hold = tonumber(redis.call('GET', KEYS[1]) or 0)
  local tat = {}
  for i = 1, n do tat[i] = tat_of(KEYS[i + 2]) end
  local out = {now}
  local pruned = false
  for j = 1, m do
    local reqs = tonumber(ARGV[p])
    local id = ARGV[p + 1]
    local wait, inc, too_large = 0, {}, 0
    for i = 1, n do
      local capacity, period = bucket(i)
      local cost = tonumber(ARGV[p + 1 + i])
      if cost > capacity then too_large = i break end
      inc[i] = share(cost, capacity, period)
      local w = tat[i] + inc[i] - period - now
      if w > wait then wait = w end
    end
    p = p + 2 + n
    if too_large > 0 then
      out[#out + 1] = -1
      out[#out + 1] = too_large
    else
      if hold - now > wait then wait = hold - now end
      if lease_limit > 0 and reqs > 0 then
        if not pruned then
          redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
          pruned = true
        end
        if redis.call('ZCARD', KEYS[2]) + reqs > lease_limit then
          local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
          out[#out + 1] = 0
          out[#out + 1] = tonumber(first[2]) - now
          break
        end
        local expiry = now + wait + lease_ttl
        for k = 1, reqs do
          redis.call('ZADD', KEYS[2], expiry, id .. ':' .. k)
        end
        keep_leases_until(expiry)
      end
      for i = 1, n do
        tat[i] = math.max(tat[i], now + wait) + inc[i]
      end
      out[#out + 1] = 1
      out[#out + 1] = wait
      if wait > 0 then break end
    end
  end
  for i = 1, n do store(KEYS[i + 2], tat[i]) end
  return out
elseif mode == 'adjust' then
  for i = 1, n do
    local capacity, period, from, to = bucket(i)
    local delta = share(to, capacity, period) - share(from, capacity, period)
    if delta ~= 0 then
      -- Refunds stop at "bucket full"; extra use goes in as debt.
      store(KEYS[i + 2], math.max(now, tat_of(KEYS[i + 2]) + delta))
    end
  end
  if lease_limit > 0 then
    for k = 1, requests do
      redis.call('ZREM', KEYS[2], lease_id .. ':' .. k)
    end
  end
  return {1, 0}
elseif mode == 'hold' then
  local hold_until = now + extra
  if tonumber(redis.call('GET', KEYS[1]) or 0) < hold_until then
    redis.call('SET', KEYS[1], hold_until, 'PX', math.ceil(extra / 1000))
  end
  return {1, 0}
elseif mode == 'tighten' then
  -- Answers {1, units in use before} on the last bucket tightened (whole units, rounded down).
  local before = 0
  for i = 1, n do
    local capacity, period, used = bucket(i)
    if used >= 0 then
      local tat = tat_of(KEYS[i + 2])
      before = math.floor(math.max(tat - now, 0) * capacity / period)
      local floor = now + share(used, capacity, period)
      if tat < floor then store(KEYS[i + 2], floor) end
    end
  end
  return {1, before}
elseif mode == 'renew' then
  local expiry = now + lease_ttl
  for k = 1, requests do
    redis.call('ZADD', KEYS[2], 'XX', expiry, lease_id .. ':' .. k)
  end
  keep_leases_until(expiry)
  return {1, 0}
end
return redis.error_reply('unknown mode ' .. tostring(mode))

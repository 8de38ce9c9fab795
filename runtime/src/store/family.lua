-- All state of one limit family, charged atomically on the server's clock.
--
-- Needs Redis 5.0 or later: the script reads TIME before it writes, which a server replicates
-- only as the script's effects (the default from 5.0; 3.2 and 4.0 would need
-- redis.replicate_commands()). Everything else it calls exists since 3.0.2 (ZADD XX).
--
-- KEYS[1]  the 429 hold (absolute µs before which nobody is admitted)
-- KEYS[2]  the concurrency leases (a sorted set: member = lease, score = its expiry in µs)
-- KEYS[3]  the reservations scheduled ahead (a hash: id -> "start_us charged_us gap_1 ..":
--          how far each bucket was pushed to the start), so a cancellation gives that back
-- KEYS[4]  the batches voided (text: " id id .. "), written only by `void`
-- KEYS[5]  the store's epoch: when this family's state was first written (µs), made by a batch
--          or renewal that finds it missing. A process that saw another epoch before knows the
--          store lost its state (a restart without persistence, a failover to a lagging
--          replica, eviction, FLUSHALL) and writes back its recent spend and live leases.
-- KEYS[6]  the batches run (a hash: process -> "batch_id reply.."): each process's last batch
--          and its reply, so that the same batch sent again (a retry after a lost reply) is
--          answered as the first time and charges nothing more
-- KEYS[7..] one GCRA bucket per dimension: its theoretical arrival time in µs, "tat", or after
--          a limit change "tat@capacity/period_us", the scale it is written at. A value at
--          another scale than a call's is rescaled on reading, so the units in use stay what
--          they were; a tagged value stays tagged (at the scale of its last writer) until its
--          bucket is full again.
-- then     with the `:w` shape only, one window log per bucket, in the same order: a hash of
--          slice -> units charged in it (a slice is 1/SLICES of the bucket's period, numbered
--          from the Unix epoch), so that a family whose server counts per window (fixed or
--          sliding) never has more than its capacity charged in any period. A slice's units
--          count until its end plus the period: up to one slice later than their charge.
-- then     with a tenant count T (a third part of the mode, ':T'), the T tenant cap buckets the
--          call names (see below), GCRA buckets like the family's: "tat" in µs
-- ARGV[1]  mode: batch | peek | void | adjust | hold | tighten | renew | requota, then ':w'
--          when the buckets have window logs, then ':T' when the call names T tenant buckets
--          (batch, void and adjust): 'batch:w:2', 'adjust::1'
-- ARGV[2 + 4(i-1) ..] per bucket: capacity, period_us, a, b
--          batch, peek and void: a = 1 to admit while the bucket is not full (a server that counts
--          tokens after the response: the charge may take it past full, and no request is too
--          large for it), else 0; b = 0;
--          adjust: a = units charged, b = units now due;
--          tighten: a = units the server reports in use (-1 = leave alone), b = units in use at
--          the request's mark (-1 = none; extra_us is then the request's start, max_wait_us
--          the server's processing time, -1 unknown);
--          requota: a, b = the capacity and period_us the process used until now
-- then     lease_limit (0 = no concurrency cap), requests, id, lease_ttl_us, extra_us,
--          batch_id, max_wait_us (-1 = no bound), m, then per request: requests, lease_id and
--          one charge per bucket (batch, peek and void only), then (batch and void) its
--          tenant's cap buckets: k, and k times (index among the tenant keys, capacity,
--          period_us, charge); in adjust mode, m is k and k times (index, capacity, period_us,
--          units charged, units now due)
--          (extra_us: the hold's length in `hold` mode; in `void` mode 1 to refund charges; in
--          `adjust` mode 1 for spend written back, which fills a bucket at most; in
--          `renew` mode 1 to add leases the store lost; in `batch` mode the epoch the process
--          saw last, 0 for none; max_wait_us in `adjust` mode the reservation's start on the
--          server's clock, -1 unknown: where its charge is in the window logs)
--
-- batch:   reserves several requests in one call, in the order given, and stops after the first
--          that has to wait or finds no concurrency slot (so a process has at most one request
--          scheduled ahead), or that would wait longer than max_wait_us. Reply: {now_us, epoch,
--          then per request handled: 1, wait_us, its marks (one per bucket: units in use just
--          after its charge) | 0, retry_us | 2, wait_us | -1, i | 3, wait_us}. A request
--          whose tenant's cap has no room yet is answered {3, wait_us} (nothing written) and
--          the batch goes on: a tenant at its cap holds nobody else back. A request
--          whose leases exist already was admitted by this batch sent before (a retry after a
--          lost reply): it is answered as then and charged nothing more. A batch voided before
--          it ran is answered {now_us, 0} alone.
-- void:    the same arguments as a batch the client gave up on (no reply in time): it never
--          runs after this, and each of its requests that shows it ran (its leases, its place
--          scheduled ahead) frees its slots and its place ahead, and with extra_us = 1 its
--          charge (requests that did not go out through the fallback either).
-- requota: the process's limits changed: each bucket keeps the units it has in use, now at the
--          new scale and tagged, once (a second process making the same change finds it done).
--
-- Every value is an integer number of µs or units; a bucket's share of `units` is
-- ceil(units × period / capacity), so a later adjust undoes a charge exactly.
-- Reply per request of a batch: {1, wait_us, marks..} admitted after wait_us; {0, retry_us} no
-- concurrency slot yet (nothing written); {2, wait_us} it would wait longer than allowed
-- (nothing written); {-1, i} bucket i can never fit the request.
-- tighten answers {1, units at the mark or before, units charged since}; renew {1, epoch};
-- the other modes {1, 0}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode, shape, tenant_keys = string.match(ARGV[1], '^(%a+):?(%a*):?(%d*)$')
local HOLD, LEASES, AHEAD, VOIDED, EPOCH, RAN = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6]
-- The buckets' keys come after the fixed ones, and their window logs after them.
local B = 6
local windowed = shape == 'w'
-- The tenant cap buckets come last: tenant key j is KEYS[T0 + j].
local T = tonumber(tenant_keys) or 0
local T0 = #KEYS - T
local n = T0 - B
if windowed then n = n / 2 end
local at = 2 + 4 * n
local lease_limit = tonumber(ARGV[at])
local requests = tonumber(ARGV[at + 1])
local id = ARGV[at + 2]
local lease_ttl = tonumber(ARGV[at + 3])
local extra = tonumber(ARGV[at + 4])
local batch_id = ARGV[at + 5]
local max_wait = tonumber(ARGV[at + 6])
-- Longer than a client tries to void a batch after it gave up on it.
local VOIDED_TTL_MS = 120000
-- The epoch outlives the longest window (a day): it expires only once every bucket is full.
local EPOCH_TTL_MS = 2 * 86400000

-- (A script's functions are made anew on every call, each for a fraction of a µs: the few
-- that most modes need are made here, the others only where they are used.)

local function share(units, capacity, period)
  return math.ceil(units * period / capacity)
end

-- Tenant cap buckets: their theoretical arrival times by key index, read once per call
-- (`raw(j)` gives the stored value) and written back at the end with `tenant_store`.
local tenant_tat, tenant_dirty = {}, {}
local function tenant_read(j, raw)
  if tenant_tat[j] == nil then
    tenant_tat[j] = math.max(tonumber(raw(j) or 0) or 0, now)
  end
  return tenant_tat[j]
end
local function tenant_get(j) return redis.call('GET', KEYS[T0 + j]) end
local function tenant_store()
  for j in pairs(tenant_dirty) do
    local ttl_ms = math.ceil((tenant_tat[j] - now) / 1000)
    if ttl_ms <= 0 then
      redis.call('DEL', KEYS[T0 + j])
    else
      redis.call('SET', KEYS[T0 + j], string.format('%d', tenant_tat[j]), 'PX', ttl_ms)
    end
  end
end

-- A window log's slices: SLICES per period (a minute's are half a second long).
local SLICES = 120
local function slice_us(period)
  return math.max(math.floor(period / SLICES), 1)
end

-- Adds `units` (negative: takes off, to no less than 0) to bucket i's window log in the slice
-- holding `at`, unless that slice has left the window; the log lives as long as its newest slice.
local function log_add(i, period, at, units)
  local s = slice_us(period)
  local index = math.floor(at / s)
  local until_us = (index + 1) * s + period
  if units == 0 or until_us <= now then return end
  local key = KEYS[B + n + i]
  local field = string.format('%d', index)
  if redis.call('HINCRBY', key, field, units) <= 0 then redis.call('HDEL', key, field) end
  local ttl_ms = math.ceil((until_us - now) / 1000)
  if redis.call('PTTL', key) < ttl_ms then redis.call('PEXPIRE', key, ttl_ms) end
end

-- The window logs of the buckets whose state is `tat`, `capacity`, `period` (tables by
-- bucket): per bucket its live slices oldest first ({index, units}), their sum, and the units
-- to write to it (a log new to a bucket in use starts with what the bucket has in use,
-- charged now: it may have been sent into the server's current window). With `prune`, slices
-- that have left the window are deleted.
local function read_logs(tat, capacity, period, prune)
  local logs, sums, added = {}, {}, {}
  for i = 1, (windowed and n or 0) do
    local s = slice_us(period[i])
    local raw = redis.call('HGETALL', KEYS[B + n + i])
    local live, stale, sum = {}, {}, 0
    for k = 1, #raw, 2 do
      local index, units = tonumber(raw[k]), tonumber(raw[k + 1])
      if index and units and (index + 1) * s + period[i] > now then
        live[#live + 1] = {index, units}
        sum = sum + units
      else
        stale[#stale + 1] = raw[k]
      end
    end
    if prune and #stale > 0 then redis.call('HDEL', KEYS[B + n + i], unpack(stale)) end
    added[i] = {}
    if #raw == 0 and tat[i] > now then
      local level = math.ceil((tat[i] - now) * capacity[i] / period[i])
      live[1] = {math.floor(now / s), level}
      sum = level
      added[i][live[1][1]] = level
    end
    table.sort(live, function(x, y) return x[1] < y[1] end)
    logs[i], sums[i] = live, sum
  end
  return logs, sums, added
end

-- How long until a log (`live`, `sum`) of a bucket of `capacity` over `period` has room for
-- `units`: until enough of what it holds leaves the window (each slice at its end plus the
-- period).
local function window_wait(live, sum, units, capacity, period)
  local over = sum + units - capacity
  if over <= 0 then return 0 end
  local s = slice_us(period)
  for _, e in ipairs(live) do
    over = over - e[2]
    if over <= 0 then return (e[1] + 1) * s + period - now end
  end
  -- More than the window holds: too large for the bucket first (or after the response,
  -- admitted once the window is empty).
  if #live == 0 then return 0 end
  return (live[#live][1] + 1) * s + period - now
end

-- The store's epoch, made now if `raw` (its value, read by the caller) is missing; kept alive.
local function epoch(raw)
  if not raw then
    redis.call('SET', EPOCH, now, 'PX', EPOCH_TTL_MS)
    return now
  end
  if redis.call('PTTL', EPOCH) < EPOCH_TTL_MS / 2 then
    redis.call('PEXPIRE', EPOCH, EPOCH_TTL_MS)
  end
  -- A foreign value reads as 0: no reset is ever detected, nothing fails.
  return tonumber(raw) or 0
end

local function bucket(i)
  local b = 2 + 4 * (i - 1)
  return tonumber(ARGV[b]), tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
end

-- `us` at scale `from` ("capacity/period_us") as time at bucket i's scale in this call: the
-- same units, rounded up.
local function rescale(us, from, i)
  local c, p = string.match(from, '^(%d+)/(%d+)$')
  local capacity, period = bucket(i)
  return math.ceil(us * tonumber(c) / tonumber(p) * period / capacity)
end

-- Bucket i's theoretical arrival time, at least now, at this call's scale, read from `raw`
-- (its value, or nil); whether the value is tagged with its scale; and the time as stored
-- (it may be before now).
local function stored(i, raw)
  local v = tonumber(raw or 0)
  if v then
    if v < now then return now, false, v end
    return v, false, v
  end
  local tat, scale = string.match(raw, '^(%d+)@(%d+/%d+)$')
  if not tat then
    error({err = 'ERR ' .. KEYS[B + i] .. ' holds ' .. raw .. ', not a time in µs'})
  end
  v = tonumber(tat)
  if v <= now then return now, true, v end
  if scale ~= ARGV[2 + 4 * (i - 1)] .. '/' .. ARGV[3 + 4 * (i - 1)] then
    v = now + rescale(v - now, scale, i)
  end
  return v, true, v
end

-- Writes bucket i's theoretical arrival time `tat` (at this call's scale), tagged with the
-- scale if `tagged`, for `keep_ms` at least. A key lives until its bucket is full again (or
-- `keep_ms`): nothing is left behind without a TTL.
local function store(i, tat, tagged, keep_ms)
  local key = KEYS[B + i]
  local ttl_ms = math.max(math.ceil((tat - now) / 1000), keep_ms or 0)
  if ttl_ms <= 0 then
    redis.call('DEL', key)
  elseif tagged then
    local b = 2 + 4 * (i - 1)
    local value = string.format('%d', tat) .. '@' .. ARGV[b] .. '/' .. ARGV[b + 1]
    redis.call('SET', key, value, 'PX', ttl_ms)
  else
    redis.call('SET', key, tat, 'PX', ttl_ms)
  end
end

-- The reservations scheduled ahead: `remember` and `gaps_of`.
local function ahead()
  local function numbers(text)
    local out = {}
    for v in string.gmatch(text, '[^ ]+') do out[#out + 1] = tonumber(v) end
    return out
  end
  -- Remembers a reservation scheduled to start at `start`, and how far it pushed each
  -- bucket. Only one not started yet can be cancelled: the others are forgotten here.
  local function remember(rid, start, gaps)
    local all = redis.call('HGETALL', AHEAD)
    for k = 1, #all, 2 do
      local s = tonumber(string.match(all[k + 1], '^%-?%d+'))
      if not s or s <= now then redis.call('HDEL', AHEAD, all[k]) end
    end
    -- Integers as text, exactly (tostring keeps 14 digits).
    local entry = {string.format('%d', start), string.format('%d', now)}
    for i = 1, n do entry[#entry + 1] = string.format('%d', gaps[i]) end
    redis.call('HSET', AHEAD, rid, table.concat(entry, ' '))
    local ttl_ms = math.ceil((start - now) / 1000) + 1000
    if redis.call('PTTL', AHEAD) < ttl_ms then redis.call('PEXPIRE', AHEAD, ttl_ms) end
  end
  -- Whether reservation `rid` was scheduled ahead, and how far it pushed each bucket to its
  -- start, to give back with its charge: only before its start, and only if no reservation
  -- scheduled ahead was charged after it (that one's place is behind the push, which then
  -- stays). Forgets it.
  local function gaps_of(rid)
    local entry = redis.call('HGET', AHEAD, rid)
    if not entry then return false, nil end
    redis.call('HDEL', AHEAD, rid)
    local f = numbers(entry)
    if f[1] <= now then return true, nil end
    local all = redis.call('HGETALL', AHEAD)
    for k = 2, #all, 2 do
      local other = numbers(all[k])
      if other[1] > now and other[2] >= f[2] then return true, nil end
    end
    local gaps = {}
    for i = 1, n do gaps[i] = f[2 + i] or 0 end
    return true, gaps
  end
  return remember, gaps_of
end

if mode == 'batch' then
  -- Every string key this mode reads, in one call (MGET answers nil for the sorted set and
  -- the hash): the hold, the batches voided, the buckets.
  local values = redis.call('MGET', unpack(KEYS))
  if values[4] and string.find(values[4], ' ' .. batch_id .. ' ', 1, true) then
    return {now, 0}
  end
  -- Run before (its reply was lost): answered as then.
  local process = string.match(batch_id, '^(.*)%-b%d+$') or batch_id
  local ran = redis.call('HGET', RAN, process)
  if ran and string.sub(ran, 1, #batch_id + 1) == batch_id .. ' ' then
    local reply = {}
    for v in string.gmatch(string.sub(ran, #batch_id + 2), '[^ ]+') do
      reply[#reply + 1] = tonumber(v)
    end
    return reply
  end
  local out = {now, epoch(values[5])}
  -- Sent by a process that saw another epoch: the store lost its state since. Nothing is
  -- charged until that process has written back what it knows (then it sends again).
  if extra > 0 and out[2] > 0 and out[2] ~= extra then return out end
  local m = tonumber(ARGV[at + 7])
  local p = at + 8
  local hold = tonumber(values[1] or 0) or 0
  local tat, tagged, capacity, period, until_full = {}, {}, {}, {}, {}
  for i = 1, n do
    tat[i], tagged[i] = stored(i, values[B + i])
    capacity[i], period[i], until_full[i] = bucket(i)
  end
  -- The window logs: per bucket, the live slices oldest first, their sum, and the units
  -- charged here per slice (written at the end).
  local logs, sums, added = read_logs(tat, capacity, period, true)
  local function log_wait(i, units)
    return window_wait(logs[i], sums[i], units, capacity[i], period[i])
  end
  local function log_charge(i, start, units)
    if units <= 0 then return end
    local index = math.floor(start / slice_us(period[i]))
    local found = false
    for _, e in ipairs(logs[i]) do
      if e[1] == index then e[2] = e[2] + units found = true break end
    end
    if not found then
      logs[i][#logs[i] + 1] = {index, units}
      table.sort(logs[i], function(x, y) return x[1] < y[1] end)
    end
    sums[i] = sums[i] + units
    added[i][index] = (added[i][index] or 0) + units
  end
  local inc, charge = {}, {}
  local pruned = false
  -- The request's marks: each bucket's units in use just after its charge, at its start.
  local function levels(start)
    for i = 1, n do
      out[#out + 1] = math.ceil((math.max(tat[i], start) - start) * capacity[i] / period[i])
    end
  end
  for j = 1, m do
    local reqs = tonumber(ARGV[p])
    local rid = ARGV[p + 1]
    local wait, too_large = 0, 0
    local before = nil
    if lease_limit > 0 and reqs > 0 then
      before = redis.call('ZSCORE', LEASES, rid .. ':1')
    end
    if before then
      -- Admitted when this batch was sent before: its start is its lease's, less the lease.
      wait = math.max(tonumber(before) - lease_ttl - now, 0)
      too_large = -1
    end
    for i = 1, (too_large == 0 and n or 0) do
      local cost = tonumber(ARGV[p + 1 + i])
      charge[i] = cost
      -- Admitted while not full: checked as one unit (when it charges any).
      local admit = cost
      if until_full[i] == 1 then admit = math.min(cost, 1) end
      if admit > capacity[i] then too_large = i break end
      inc[i] = math.ceil(cost * period[i] / capacity[i])
      local w = tat[i] + share(admit, capacity[i], period[i]) - period[i] - now
      if w > wait then wait = w end
      if windowed and admit > 0 then
        w = log_wait(i, admit)
        if w > wait then wait = w end
      end
    end
    -- Its tenant's cap: how long until it has room (nothing is charged yet).
    local k = tonumber(ARGV[p + 2 + n])
    local tenant_at = p + 3 + n
    local function tenant_bucket(q)
      local e = tenant_at + 4 * q
      return tonumber(ARGV[e]), tonumber(ARGV[e + 1]), tonumber(ARGV[e + 2]),
        tonumber(ARGV[e + 3])
    end
    local capped = 0
    for q = 0, (too_large == 0 and k - 1 or -1) do
      local tj, tc, tp, tu = tenant_bucket(q)
      local raw = function(x) return values[T0 + x] end
      local w = tenant_read(tj, raw) + share(tu, tc, tp) - tp - now
      if w > capped then capped = w end
    end
    p = p + 3 + n + 4 * k
    if too_large < 0 then
      out[#out + 1] = 1
      out[#out + 1] = wait
      levels(now + wait)
      if wait > 0 then break end
    elseif too_large > 0 then
      out[#out + 1] = -1
      out[#out + 1] = too_large
    elseif capped > 0 then
      out[#out + 1] = 3
      out[#out + 1] = capped
    else
      if hold - now > wait then wait = hold - now end
      if max_wait >= 0 and wait > max_wait then
        out[#out + 1] = 2
        out[#out + 1] = wait
        break
      end
      if lease_limit > 0 and reqs > 0 then
        if not pruned then
          redis.call('ZREMRANGEBYSCORE', LEASES, '-inf', now)
          pruned = true
        end
        if redis.call('ZCARD', LEASES) + reqs > lease_limit then
          local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
          out[#out + 1] = 0
          out[#out + 1] = tonumber(first[2]) - now
          break
        end
        local expiry = now + wait + lease_ttl
        for k = 1, reqs do
          redis.call('ZADD', LEASES, expiry, rid .. ':' .. k)
        end
        local ttl_ms = math.ceil((expiry - now) / 1000) + 1000
        if redis.call('PTTL', LEASES) < ttl_ms then redis.call('PEXPIRE', LEASES, ttl_ms) end
      end
      -- Charged at its start: a bucket that did not bind is pushed there first.
      local start = now + wait
      if wait > 0 then
        local gaps = {}
        for i = 1, n do gaps[i] = math.max(start - tat[i], 0) end
        local remember = ahead()
        remember(rid, start, gaps)
      end
      for i = 1, n do tat[i] = math.max(tat[i], start) + inc[i] end
      for i = 1, (windowed and n or 0) do
        log_charge(i, start, charge[i])
      end
      for q = 0, k - 1 do
        local tj, tc, tp, tu = tenant_bucket(q)
        tenant_tat[tj] = math.max(tenant_tat[tj], start) + share(tu, tc, tp)
        tenant_dirty[tj] = true
      end
      out[#out + 1] = 1
      out[#out + 1] = wait
      levels(start)
      if wait > 0 then break end
    end
  end
  for i = 1, n do store(i, tat[i], tagged[i]) end
  tenant_store()
  for i = 1, (windowed and n or 0) do
    local s = slice_us(period[i])
    for index, units in pairs(added[i]) do log_add(i, period[i], index * s, units) end
  end
  -- Integers as text, exactly (tostring keeps 14 digits).
  local text = {batch_id}
  for k = 1, #out do text[#text + 1] = string.format('%d', out[k]) end
  redis.call('HSET', RAN, process, table.concat(text, ' '))
  redis.call('PEXPIRE', RAN, VOIDED_TTL_MS)
  return out
elseif mode == 'peek' then
  -- When one request (given as in a batch of it alone, its tenant's cap buckets included)
  -- would be admitted if it were sent now with nobody ahead of it; nothing is written. Reply: {now, 1, wait_us} admitted after
  -- wait_us; {now, 0, retry_us} no concurrency slot before retry_us; {now, -1, i} bucket i can
  -- never fit it.
  local values = redis.call('MGET', unpack(KEYS))
  local hold = tonumber(values[1] or 0) or 0
  local p = at + 8
  local reqs = tonumber(ARGV[p])
  local tat, capacity, period, until_full = {}, {}, {}, {}
  for i = 1, n do
    tat[i] = stored(i, values[B + i])
    capacity[i], period[i], until_full[i] = bucket(i)
  end
  local logs, sums = read_logs(tat, capacity, period, false)
  local wait = math.max(hold - now, 0)
  -- Its tenant's cap, when the call names one (as in a batch).
  local k = tonumber(ARGV[p + 2 + n]) or 0
  for q = 0, k - 1 do
    local e = p + 3 + n + 4 * q
    local tj, tc, tp = tonumber(ARGV[e]), tonumber(ARGV[e + 1]), tonumber(ARGV[e + 2])
    local raw = function(x) return values[T0 + x] end
    local w = tenant_read(tj, raw) + share(tonumber(ARGV[e + 3]), tc, tp) - tp - now
    if w > wait then wait = w end
  end
  for i = 1, n do
    local cost = tonumber(ARGV[p + 1 + i])
    local admit = cost
    if until_full[i] == 1 then admit = math.min(cost, 1) end
    if admit > capacity[i] then return {now, -1, i} end
    wait = math.max(wait, tat[i] + share(admit, capacity[i], period[i]) - period[i] - now)
    if windowed and admit > 0 then
      wait = math.max(wait, window_wait(logs[i], sums[i], admit, capacity[i], period[i]))
    end
  end
  if lease_limit > 0 and reqs > 0 then
    local live = redis.call('ZCOUNT', LEASES, '(' .. now, '+inf')
    if live + reqs > lease_limit then
      local first = redis.call('ZRANGEBYSCORE', LEASES, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT',
        0, 1)
      return {now, 0, math.max(tonumber(first[2]) - now, wait)}
    end
  end
  return {now, 1, wait}
elseif mode == 'adjust' then
  -- A reservation given back whole before its start also gives back its push.
  local gaps = nil
  local cancelled = id ~= ''
  for i = 1, n do
    if ARGV[5 + 4 * (i - 1)] ~= '0' then cancelled = false end
  end
  if cancelled then
    local _, gaps_of = ahead()
    _, gaps = gaps_of(id)
  end
  for i = 1, n do
    local capacity, period, from, to = bucket(i)
    local delta = share(to, capacity, period) - share(from, capacity, period)
    if gaps then delta = delta - gaps[i] end
    if delta ~= 0 then
      -- Refunds stop at "bucket full"; extra use goes in as debt. Under the limits it was
      -- charged with, whatever the bucket's scale is now. Spend written back (extra_us = 1)
      -- fills the bucket at most: a server never counts more than its limit in use.
      local tat, tagged = stored(i, redis.call('GET', KEYS[B + i]))
      local to_tat = math.max(now, tat + delta)
      if extra > 0 and delta > 0 then to_tat = math.min(to_tat, math.max(tat, now + period)) end
      store(i, to_tat, tagged)
    end
    if windowed then
      -- The log moves the charge where it was made (a debit on a slice that has left the
      -- window is no longer counted by the server either); spend written back, or a charge
      -- whose start is unknown, counts from now. A refund of unknown place stays (the log
      -- only ever counts more than was sent).
      if extra > 0 or max_wait < 0 then
        if to > from then log_add(i, period, now, to - from) end
      else
        log_add(i, period, max_wait, to - from)
      end
    end
  end
  -- The tenant's cap buckets: the same move, refunds stopping at full.
  for q = 0, (tonumber(ARGV[at + 7]) or 0) - 1 do
    local e = at + 8 + 5 * q
    local tj, capacity, period = tonumber(ARGV[e]), tonumber(ARGV[e + 1]), tonumber(ARGV[e + 2])
    local delta = share(tonumber(ARGV[e + 4]), capacity, period)
      - share(tonumber(ARGV[e + 3]), capacity, period)
    if delta ~= 0 then
      tenant_tat[tj] = math.max(tenant_read(tj, tenant_get) + delta, now)
      tenant_dirty[tj] = true
    end
  end
  tenant_store()
  if lease_limit > 0 then
    for k = 1, requests do redis.call('ZREM', LEASES, id .. ':' .. k) end
  end
  return {1, 0}
elseif mode == 'void' then
  local voided = redis.call('GET', VOIDED) or ' '
  -- Kept short: a batch is voided within two minutes, or never.
  if #voided > 65536 then voided = ' ' end
  redis.call('SET', VOIDED, voided .. batch_id .. ' ', 'PX', VOIDED_TTL_MS)
  local m = tonumber(ARGV[at + 7])
  local p = at + 8
  local refund = {}
  for i = 1, n do refund[i] = 0 end
  local _, gaps_of = ahead()
  for j = 1, m do
    local reqs, rid = tonumber(ARGV[p]), ARGV[p + 1]
    local ran, gaps = gaps_of(rid)
    if lease_limit > 0 and reqs > 0 and redis.call('ZSCORE', LEASES, rid .. ':1') then
      ran = true
      for k = 1, reqs do redis.call('ZREM', LEASES, rid .. ':' .. k) end
    end
    local k = tonumber(ARGV[p + 2 + n])
    if ran then
      for i = 1, n do
        local capacity, period = bucket(i)
        local charge = 0
        if extra > 0 then charge = share(tonumber(ARGV[p + 1 + i]), capacity, period) end
        refund[i] = refund[i] + charge + (gaps and gaps[i] or 0)
      end
      -- Its tenant's cap gives back its charge too (the push to its start stays).
      for q = 0, (extra > 0 and k - 1 or -1) do
        local e = p + 3 + n + 4 * q
        local tj = tonumber(ARGV[e])
        local units = share(tonumber(ARGV[e + 3]), tonumber(ARGV[e + 1]), tonumber(ARGV[e + 2]))
        tenant_tat[tj] = math.max(tenant_read(tj, tenant_get) - units, now)
        tenant_dirty[tj] = true
      end
    end
    p = p + 3 + n + 4 * k
  end
  tenant_store()
  for i = 1, n do
    if refund[i] > 0 then
      local tat, tagged = stored(i, redis.call('GET', KEYS[B + i]))
      store(i, math.max(now, tat - refund[i]), tagged)
    end
  end
  return {1, 0}
elseif mode == 'hold' then
  -- A zero or negative hold (retry-after: 0, a date past) holds nobody.
  if extra <= 0 then return {1, 0} end
  local hold_until = now + extra
  if tonumber(redis.call('GET', HOLD) or 0) < hold_until then
    redis.call('SET', HOLD, hold_until, 'PX', math.ceil(extra / 1000))
  end
  return {1, 0}
elseif mode == 'tighten' then
  -- The server counted `used` units in use. With a mark (extra_us = the request's start,
  -- b = the bucket's units in use just after its charge, settle included) the count is as of
  -- the request's arrival, read against the mark: the server's count then, refilled since,
  -- and on top of what was charged here since the mark, whatever the count holds beyond the
  -- mark and those charges (which may have reached the server first). Answers {1, units at
  -- the mark, units charged since}. Without a mark the count is read as of now: {1, units in
  -- use before, 0}. (On the last bucket tightened; whole units, rounded down.)
  local reply = {1, 0, 0}
  for i = 1, n do
    local capacity, period, used, at_mark = bucket(i)
    if used >= 0 then
      local tat, tagged, raw = stored(i, redis.call('GET', KEYS[B + i]))
      local floor
      if at_mark >= 0 and extra > 0 then
        -- Units charged since the mark (an upper bound, like the mark: rounded up).
        local since = math.max(raw - (extra + share(at_mark, capacity, period)), 0)
        local since_units = math.ceil(since * capacity / period)
        local beyond = math.max(used - at_mark - since_units, 0)
        -- The count came after the mark and no later than the server's processing time
        -- before now (max_wait_us, when the server says; else now): read at that latest
        -- moment, the level never runs ahead of the server.
        local counted_by = now
        if max_wait >= 0 then counted_by = math.max(now - max_wait, extra) end
        floor = math.max(counted_by + share(used, capacity, period),
          tat + share(beyond, capacity, period))
        reply = {1, at_mark, since_units}
      else
        reply = {1, math.floor((tat - now) * capacity / period), 0}
        floor = now + share(used, capacity, period)
      end
      if tat < floor then store(i, floor, tagged) end
    end
  end
  return reply
elseif mode == 'renew' then
  -- Renewed only while it exists (a lease freed since stays freed), or with extra_us = 1
  -- added again: the store lost it while its request still runs.
  local expiry = now + lease_ttl
  for k = 1, requests do
    if extra > 0 then
      redis.call('ZADD', LEASES, expiry, id .. ':' .. k)
    else
      redis.call('ZADD', LEASES, 'XX', expiry, id .. ':' .. k)
    end
  end
  local ttl_ms = math.ceil(lease_ttl / 1000) + 1000
  if redis.call('PTTL', LEASES) < ttl_ms then redis.call('PEXPIRE', LEASES, ttl_ms) end
  return {1, epoch(redis.call('GET', EPOCH))}
elseif mode == 'requota' then
  for i = 1, n do
    local raw = redis.call('GET', KEYS[B + i])
    local b = 2 + 4 * (i - 1)
    local tat = tonumber(raw or 0)
    if tat then
      -- Untagged: written at the scale this process used until now.
      if tat > now then
        tat = now + rescale(tat - now, ARGV[b + 2] .. '/' .. ARGV[b + 3], i)
      end
    else
      tat = stored(i, raw)
    end
    -- Tagged even while empty, for a window: processes that have not adopted the change yet
    -- tag what they write, and their values are read at their scale.
    store(i, math.max(tat, now), true, math.ceil(tonumber(ARGV[b + 1]) / 1000))
  end
  return {1, 0}
end
return redis.error_reply('unknown mode ' .. tostring(ARGV[1]))

-- A tenant's budget of one limit family, shared by every process: one hash per tenant, with
-- the tokens (`t`) and nano-dollars (`u`) its calls spent or hold.
--
-- KEYS[1]  the tenant's budget
-- ARGV[1]  mode: hold | settle
--
-- hold:    ARGV[2] the token limit, ARGV[3] the nano-dollar limit (-1: none), ARGV[4] the
--          tokens and ARGV[5] the nano-dollars the call holds, ARGV[6] how long (ms) the budget
--          lives from its first hold, ARGV[7] 1 to make that from its latest hold instead.
--          Reply {1, 0, 0}: held. {0, k, left}: refused, nothing written; what is left of the
--          budget named by k (0: tokens, 1: nano-dollars) is less than the hold.
-- settle:  ARGV[2] tokens, ARGV[3] nano-dollars to add (negative: give back), only while the
--          budget exists: a per-day budget whose day ended starts its next day without what
--          its calls in flight held. Reply {1, 0, 0}.
local key, mode = KEYS[1], ARGV[1]
if mode == 'hold' then
  local limit_t, limit_u = tonumber(ARGV[2]), tonumber(ARGV[3])
  local hold_t, hold_u = tonumber(ARGV[4]), tonumber(ARGV[5])
  local spent = redis.call('HMGET', key, 't', 'u')
  local t, u = tonumber(spent[1] or 0) or 0, tonumber(spent[2] or 0) or 0
  if limit_t >= 0 and t + hold_t > limit_t then return {0, 0, math.max(limit_t - t, 0)} end
  if limit_u >= 0 and u + hold_u > limit_u then return {0, 1, math.max(limit_u - u, 0)} end
  local new = redis.call('EXISTS', key) == 0
  redis.call('HINCRBY', key, 't', hold_t)
  redis.call('HINCRBY', key, 'u', hold_u)
  if new or ARGV[7] == '1' then redis.call('PEXPIRE', key, ARGV[6]) end
  return {1, 0, 0}
elseif mode == 'settle' then
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 't', ARGV[2])
    redis.call('HINCRBY', key, 'u', ARGV[3])
  end
  return {1, 0, 0}
end
return redis.error_reply('unknown mode ' .. tostring(mode))

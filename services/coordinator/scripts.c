/* scripts.c - Lua scripts of the coordinator. Times come from Redis's own
 * clock (TIME), so any number of coordinator replicas agree on them. Numbers
 * are formatted with %.0f: Lua's default conversion would print 16-digit
 * tokens in exponent form. */
#include "scripts.h"

#define LUA_NOW                                                                                    \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function num(x) return string.format('%.0f', x) end\n"

/* KEYS: claim, fence, index. ARGV: owner, ttl ms, status, item id, fence
 * ttl s. A new token is max(last + 1, Redis time in microseconds), so it
 * exceeds every earlier token of the item even after the fence key itself
 * has expired. The same owner claiming again keeps its token. */
sh_script coord_script_claim = SH_SCRIPT(
    "coord_claim", LUA_NOW
    "local ttl = tonumber(ARGV[2])\n"
    "local exp = num(now + ttl)\n"
    "local cur = redis.call('HMGET', KEYS[1], 'botId', 'token', 'status', 'timestamp', "
    "'expiresAt')\n"
    "if cur[1] then\n"
    "  if cur[1] ~= ARGV[1] then\n"
    "    return {'conflict', cur[1], cur[2], cur[3], cur[4], cur[5]}\n"
    "  end\n"
    "  redis.call('HSET', KEYS[1], 'expiresAt', exp, 'ttl', ARGV[2])\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "  redis.call('ZADD', KEYS[3], exp, KEYS[1])\n"
    "  return {'renewed', cur[1], cur[2], cur[3], cur[4], exp}\n"
    "end\n"
    "local outcome = 'claimed'\n"
    "if redis.call('ZSCORE', KEYS[3], KEYS[1]) then outcome = 'claimed_after_expiry' end\n"
    "local last = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local tok = num(math.max(last + 1, us))\n"
    "local ts = num(now)\n"
    "redis.call('SET', KEYS[2], tok, 'EX', ARGV[5])\n"
    "redis.call('HSET', KEYS[1], 'item', ARGV[4], 'botId', ARGV[1], 'token', tok, 'status', "
    "ARGV[3], 'timestamp', ts, 'expiresAt', exp, 'ttl', ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "redis.call('ZADD', KEYS[3], exp, KEYS[1])\n"
    "return {outcome, ARGV[1], tok, ARGV[3], ts, exp}\n");

/* Answers lease_lost unless the claim exists with this owner and token. */
#define LUA_HOLDER_CHECK                                                                           \
    "local cur = redis.call('HMGET', KEYS[1], 'botId', 'token', 'status', 'timestamp', "           \
    "'expiresAt', 'ttl')\n"                                                                        \
    "if not cur[1] or cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then\n"                               \
    "  return {'lease_lost', cur[1] or '', cur[2] or '', cur[3] or '', cur[4] or '', "             \
    "cur[5] or ''}\n"                                                                              \
    "end\n"

/* KEYS: claim, index. ARGV: owner, token, ttl ms ("" keeps the claim's). */
sh_script coord_script_renew =
    SH_SCRIPT("coord_renew", LUA_NOW LUA_HOLDER_CHECK
              "local ttl = tonumber(ARGV[3] ~= '' and ARGV[3] or cur[6])\n"
              "local exp = num(now + ttl)\n"
              "redis.call('HSET', KEYS[1], 'expiresAt', exp, 'ttl', num(ttl))\n"
              "redis.call('PEXPIRE', KEYS[1], ttl)\n"
              "redis.call('ZADD', KEYS[2], exp, KEYS[1])\n"
              "return {'renewed', cur[1], cur[2], cur[3], cur[4], exp}\n");

/* KEYS: claim, index. ARGV: owner, token. */
sh_script coord_script_release = SH_SCRIPT("coord_release", LUA_HOLDER_CHECK
                                           "redis.call('DEL', KEYS[1])\n"
                                           "redis.call('ZREM', KEYS[2], KEYS[1])\n"
                                           "return {'released', cur[1], cur[2], cur[3], cur[4], "
                                           "cur[5]}\n");

/* KEYS: claim. ARGV: owner, token, status. */
sh_script coord_script_status =
    SH_SCRIPT("coord_status",
              LUA_HOLDER_CHECK "redis.call('HSET', KEYS[1], 'status', ARGV[3])\n"
                               "return {'status', cur[1], cur[2], ARGV[3], cur[4], cur[5]}\n");

/* KEYS: reservation, rows, index, rows max, logs. ARGV: owner, row count,
 * ttl ms, item id, first row, status, log. Rows come from one counter per log, so blocks
 * never overlap and follow each other without gaps. The counter has a
 * floor: one past the highest row ever handed out (rows max), and when the
 * counter itself is gone, past every live reservation too. So a counter lost
 * to eviction or to writes lost in a crash or fail-over, or a lowered first
 * row, never hands a row out twice. */
sh_script coord_script_reserve = SH_SCRIPT(
    "coord_reserve", LUA_NOW
    "local ttl = tonumber(ARGV[3])\n"
    "local exp = num(now + ttl)\n"
    "local cur = redis.call('HMGET', KEYS[1], 'botId', 'startRow', 'rowCount', 'status', "
    "'timestamp', 'expiresAt')\n"
    "if cur[1] then\n"
    "  if cur[1] ~= ARGV[1] then\n"
    "    return {'conflict', cur[1], cur[2], cur[3], cur[4], cur[5], cur[6]}\n"
    "  end\n"
    "  redis.call('HSET', KEYS[1], 'expiresAt', exp)\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "  redis.call('ZADD', KEYS[3], exp, KEYS[1])\n"
    "  return {'renewed', cur[1], cur[2], cur[3], cur[4], cur[5], exp}\n"
    "end\n"
    "local n = tonumber(ARGV[2])\n"
    "local first = tonumber(ARGV[5])\n"
    "local count = redis.call('GET', KEYS[2])\n"
    "local floor = tonumber(redis.call('HGET', KEYS[4], 'next') or '0')\n"
    "if not count then\n"
    "  for _, k in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do\n"
    "    local v = redis.call('HMGET', k, 'startRow', 'rowCount')\n"
    "    if v[1] and v[2] then floor = math.max(floor, tonumber(v[1]) + tonumber(v[2])) end\n"
    "  end\n"
    "end\n"
    "local s = math.max(tonumber(count or '0') + first, floor)\n"
    "local start = num(s)\n"
    "redis.call('SET', KEYS[2], num(s + n - first))\n"
    "redis.call('HSET', KEYS[4], 'next', num(s + n))\n"
    "redis.call('HSETNX', KEYS[4], 'first', ARGV[5])\n"
    "redis.call('SADD', KEYS[5], ARGV[7])\n"
    "local ts = num(now)\n"
    "redis.call('HSET', KEYS[1], 'item', ARGV[4], 'botId', ARGV[1], 'startRow', start, "
    "'rowCount', ARGV[2], 'endRow', num(s + n - 1), 'status', ARGV[6], 'timestamp', ts, "
    "'expiresAt', exp)\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "redis.call('ZADD', KEYS[3], exp, KEYS[1])\n"
    "return {'reserved', ARGV[1], start, ARGV[2], ARGV[6], ts, exp}\n");

/* KEYS: logs. ARGV: rows max key prefix, first row. Answers {log, its
 * first row} for a log whose first row is above ARGV[2], or {}. */
sh_script coord_script_rows_first = SH_SCRIPT(
    "coord_rows_first", "for _, log in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                        "  local f = redis.call('HGET', ARGV[1] .. log, 'first')\n"
                        "  if f and tonumber(f) > tonumber(ARGV[2]) then return {log, f} end\n"
                        "end\n"
                        "return {}\n");

/* KEYS: reservation, index. ARGV: owner. */
sh_script coord_script_reserve_release = SH_SCRIPT(
    "coord_reserve_release",
    "local cur = redis.call('HMGET', KEYS[1], 'botId', 'startRow', 'rowCount', 'status', "
    "'timestamp', 'expiresAt')\n"
    "if not cur[1] or cur[1] ~= ARGV[1] then\n"
    "  return {'lease_lost', cur[1] or '', cur[2] or '', cur[3] or '', cur[4] or '', cur[5] or "
    "'', cur[6] or ''}\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('ZREM', KEYS[2], KEYS[1])\n"
    "return {'released', cur[1], cur[2], cur[3], cur[4], cur[5], cur[6]}\n");

/* KEYS: claim index, reservation index. ARGV: max entries of each. Drops
 * index entries whose key has expired (answering their keys), then reads
 * every live entry. */
sh_script coord_script_list = SH_SCRIPT(
    "coord_list",
    LUA_NOW "local function sweep(idx)\n"
            "  local gone = {}\n"
            "  for _, k in ipairs(redis.call('ZRANGEBYSCORE', idx, '-inf', now)) do\n"
            "    if redis.call('EXISTS', k) == 0 then\n"
            "      redis.call('ZREM', idx, k)\n"
            "      table.insert(gone, k)\n"
            "    end\n"
            "  end\n"
            "  return gone\n"
            "end\n"
            "local function read(idx, fields)\n"
            "  local out = {}\n"
            "  for _, k in ipairs(redis.call('ZRANGE', idx, 0, tonumber(ARGV[1]) - 1)) do\n"
            "    local v = redis.call('HMGET', k, unpack(fields))\n"
            "    if v[1] then table.insert(out, v) else redis.call('ZREM', idx, k) end\n"
            "  end\n"
            "  return out\n"
            "end\n"
            "local gc = sweep(KEYS[1])\n"
            "local gr = sweep(KEYS[2])\n"
            "return {gc, read(KEYS[1], {'item', 'botId', 'token', 'status', 'timestamp', "
            "'expiresAt'}), gr, read(KEYS[2], {'item', 'botId', 'startRow', 'rowCount', 'status', "
            "'timestamp', 'expiresAt'})}\n");

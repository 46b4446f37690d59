/* scripts_watch.c - Lua scripts of the IDLE watch leases. A lease lives in
 * the account's hash (watchWorker, watchToken, watchExpires, and the state
 * its worker reports: watchState, watchError, watchSince) and in the sorted
 * set of leases by expiry; an account without a live lease and with
 * folders to watch is free for any worker. Times come from Redis's clock. */
#include "scripts.h"

#define LUA_WATCH_NOW                                                                              \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"                                       \
    "local function num(x) return string.format('%.0f', x) end\n"

/* watchFolders is msgpack; an empty array (0x90) turns the watch off, no
 * field at all is the default ["INBOX"]. */
#define LUA_WATCH_WANTED                                                                           \
    "local function wanted(k)\n"                                                                   \
    "  return redis.call('EXISTS', k) == 1 and redis.call('HGET', k, 'watchFolders') ~= "          \
    "'\\144'\n"                                                                                    \
    "end\n"

/* KEYS: ids, watchers. ARGV: worker, max, lease ms, account prefix. Takes
 * up to max accounts whose watch is wanted and not leased (or whose lease
 * ran out), oldest account first; a new lease's token is max(last + 1,
 * Redis time in microseconds), so it exceeds every earlier token of the
 * account even if the hash lost it. Returns {id, token, expiry, account
 * hash, sealed password} for each. */
sh_script coord_script_watch_lease = SH_SCRIPT(
    "watch_lease", LUA_WATCH_NOW LUA_WATCH_WANTED
    "local out = {}\n"
    "local max = tonumber(ARGV[2])\n"
    "if max <= 0 then return out end\n"
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  local exp = redis.call('ZSCORE', KEYS[2], id)\n"
    "  if not exp or tonumber(exp) <= now then\n"
    "    local k = ARGV[4] .. '{' .. id .. '}'\n"
    "    if wanted(k) then\n"
    "      local last = tonumber(redis.call('HGET', k, 'watchToken') or '0') or 0\n"
    "      local tok = num(math.max(last + 1, us))\n"
    "      local e = num(now + tonumber(ARGV[3]))\n"
    "      redis.call('HSET', k, 'watchWorker', ARGV[1], 'watchToken', tok, 'watchExpires', e, "
    "'watchState', 'connecting', 'watchError', '', 'watchSince', num(now))\n"
    "      redis.call('ZADD', KEYS[2], e, id)\n"
    "      table.insert(out, {id, tok, e, redis.call('HGETALL', k), redis.call('GET', k .. "
    "':secret')})\n"
    "      if #out >= max then break end\n"
    "    elseif exp then\n"
    "      redis.call('ZREM', KEYS[2], id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n");

/* The lease of account id with token tok that worker holds, when it still
 * does: the hash key, else nil. */
#define LUA_WATCH_HELD                                                                             \
    "local function held(id, tok)\n"                                                               \
    "  local k = ARGV[2] .. '{' .. id .. '}'\n"                                                    \
    "  local h = redis.call('HMGET', k, 'watchWorker', 'watchToken')\n"                            \
    "  if h[1] == ARGV[1] and h[2] == tok then return k end\n"                                     \
    "  return nil\n"                                                                               \
    "end\n"

/* KEYS: watchers. ARGV: worker, account prefix, lease ms, then id/token
 * pairs. Extends the leases worker still holds (same token, the account
 * still wants a watch); a lease it lost is left alone. Returns {held ids,
 * lost ids}. */
sh_script coord_script_watch_renew =
    SH_SCRIPT("watch_renew", LUA_WATCH_NOW LUA_WATCH_WANTED LUA_WATCH_HELD
              "local ok, lost = {}, {}\n"
              "local e = num(now + tonumber(ARGV[3]))\n"
              "for i = 4, #ARGV - 1, 2 do\n"
              "  local k = held(ARGV[i], ARGV[i + 1])\n"
              "  if k and wanted(k) then\n"
              "    redis.call('HSET', k, 'watchExpires', e)\n"
              "    redis.call('ZADD', KEYS[1], e, ARGV[i])\n"
              "    table.insert(ok, ARGV[i])\n"
              "  else\n"
              "    table.insert(lost, ARGV[i])\n"
              "  end\n"
              "end\n"
              "return {ok, lost}\n");

/* KEYS: watchers. ARGV: worker, account prefix, then id/token pairs. Ends
 * the leases worker holds (the token stays, for the next lease's); returns
 * the ids released. */
sh_script coord_script_watch_release =
    SH_SCRIPT("watch_release", LUA_WATCH_NOW LUA_WATCH_HELD
              "local out = {}\n"
              "for i = 3, #ARGV - 1, 2 do\n"
              "  local k = held(ARGV[i], ARGV[i + 1])\n"
              "  if k then\n"
              "    redis.call('HSET', k, 'watchWorker', '', 'watchExpires', '', 'watchState', "
              "'off', 'watchError', '', 'watchSince', num(now))\n"
              "    redis.call('ZREM', KEYS[1], ARGV[i])\n"
              "    table.insert(out, ARGV[i])\n"
              "  end\n"
              "end\n"
              "return out\n");

/* KEYS: account. ARGV: token, state, error. Records the state of a live
 * lease with this token (since changes with the state); returns 1, or 0
 * for a stale token. */
sh_script coord_script_watch_report = SH_SCRIPT(
    "watch_report", LUA_WATCH_NOW
    "local h = redis.call('HMGET', KEYS[1], 'watchWorker', 'watchToken', 'watchExpires', "
    "'watchState')\n"
    "local e = tonumber(h[3] or '')\n"
    "if not h[1] or h[1] == '' or h[2] ~= ARGV[1] or not e or e <= now then return 0 end\n"
    "if h[4] ~= ARGV[2] then redis.call('HSET', KEYS[1], 'watchSince', num(now)) end\n"
    "redis.call('HSET', KEYS[1], 'watchState', ARGV[2], 'watchError', ARGV[3])\n"
    "return 1\n");

/* scripts_accounts.c - Lua scripts of the accounts and the sync schedule.
 * Account fields are plain strings in the hash (times in ms), except
 * "folders" (msgpack); the sealed password is a string key of its own. Scripts that walk
 * account ids build account keys from the prefix they are given, so on
 * Redis Cluster these need all keys in one slot (see README.md). */
#include "scripts.h"

#define LUA_NUM "local function num(x) return string.format('%.0f', x) end\n"

/* The minute of the interval an account is synced in; the next start of
 * that minute at or after now: next_slot_time(slot, interval, now). */
#define LUA_NEXT_SLOT                                                                              \
    "local function next_slot_time(slot, interval, now)\n"                                         \
    "  local nowmin = math.floor(now / 60000)\n"                                                   \
    "  local m = nowmin - (nowmin % interval) + slot\n"                                            \
    "  if m < nowmin then m = m + interval end\n"                                                  \
    "  return m * 60000\n"                                                                         \
    "end\n"

/* KEYS: account, ids, due, slots, secret. ARGV: id, now ms, interval
 * minutes, sealed password, then field/value pairs. Puts the account in the least loaded minute of
 * the interval (the lowest such minute), so accounts spread evenly. */
sh_script coord_script_account_create = SH_SCRIPT(
    "account_create", LUA_NUM LUA_NEXT_SLOT
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS account') end\n"
    "local interval = tonumber(ARGV[3])\n"
    "local now = tonumber(ARGV[2])\n"
    "local counts = {}\n"
    "local flat = redis.call('HGETALL', KEYS[4])\n"
    "for i = 1, #flat, 2 do counts[tonumber(flat[i])] = tonumber(flat[i + 1]) end\n"
    "local best, bestn = 0, nil\n"
    "for s = 0, interval - 1 do\n"
    "  local n = counts[s] or 0\n"
    "  if bestn == nil or n < bestn then best, bestn = s, n end\n"
    "end\n"
    "redis.call('HINCRBY', KEYS[4], best, 1)\n"
    "local due = next_slot_time(best, interval, now)\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV, 5))\n"
    "redis.call('SET', KEYS[5], ARGV[4])\n"
    "redis.call('HSET', KEYS[1], 'slot', best, 'nextSyncAt', num(due), 'status', 'idle', "
    "'failures', 0, 'createdAt', ARGV[2], 'updatedAt', ARGV[2])\n"
    "redis.call('ZADD', KEYS[3], due, ARGV[1])\n"
    "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
    "return redis.call('HGETALL', KEYS[1])\n");

/* KEYS: account, due, errors, watchers, secret. ARGV: id, now ms, interval
 * minutes, sealed password ("" keeps it), then field/value pairs. An update lifts an auth_error
 * block: the account is scheduled again in its minute. It also ends the account's IDLE watch
 * lease (its fencing token is kept), so that the watch is taken again with the new settings.
 * Returns nil when there is no account. */
sh_script coord_script_account_update = SH_SCRIPT(
    "account_update", LUA_NUM LUA_NEXT_SLOT
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end\n"
    "if ARGV[4] ~= '' then redis.call('SET', KEYS[5], ARGV[4]) end\n"
    "redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2], 'watchWorker', '', 'watchExpires', '')\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "if redis.call('HGET', KEYS[1], 'status') == 'auth_error' then\n"
    "  local slot = tonumber(redis.call('HGET', KEYS[1], 'slot') or '0')\n"
    "  local due = next_slot_time(slot % tonumber(ARGV[3]), tonumber(ARGV[3]), "
    "tonumber(ARGV[2]))\n"
    "  redis.call('HSET', KEYS[1], 'status', 'idle', 'failures', 0, 'error', '', 'nextSyncAt', "
    "num(due))\n"
    "  redis.call('ZADD', KEYS[2], due, ARGV[1])\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "end\n"
    "return redis.call('HGETALL', KEYS[1])\n");

/* KEYS: account, ids, due, queue, leases, slots, errors, secret, watchers.
 * ARGV: id. */
sh_script coord_script_account_delete =
    SH_SCRIPT("account_delete", "local slot = redis.call('HGET', KEYS[1], 'slot')\n"
                                "if not slot then return 0 end\n"
                                "redis.call('HINCRBY', KEYS[6], slot, -1)\n"
                                "redis.call('DEL', KEYS[1], KEYS[8])\n"
                                "redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                "redis.call('ZREM', KEYS[3], ARGV[1])\n"
                                "redis.call('LREM', KEYS[4], 0, ARGV[1])\n"
                                "redis.call('ZREM', KEYS[5], ARGV[1])\n"
                                "redis.call('SREM', KEYS[7], ARGV[1])\n"
                                "redis.call('ZREM', KEYS[9], ARGV[1])\n"
                                "return 1\n");

/* KEYS: ids. ARGV: account prefix, status filter ("" = all, "error" =
 * error or auth_error, else that status), then account ids. For each
 * listed account that exists and matches: its creation time (its score in
 * ids) and its hash. One page of a listing: the caller bounds the ids. */
sh_script coord_script_account_rows =
    SH_SCRIPT("account_rows",
              "local out = {}\n"
              "for i = 3, #ARGV do\n"
              "  local k = ARGV[1] .. '{' .. ARGV[i] .. '}'\n"
              "  local st = redis.call('HGET', k, 'status')\n"
              "  local want = ARGV[2] == '' or st == ARGV[2] or (ARGV[2] == 'error' and st == "
              "'auth_error')\n"
              "  if st and want then\n"
              "    table.insert(out, redis.call('ZSCORE', KEYS[1], ARGV[i]) or '0')\n"
              "    table.insert(out, redis.call('HGETALL', k))\n"
              "  end\n"
              "end\n"
              "return out\n");

/* KEYS: due, queue, leases, tick, errors. ARGV: now ms ("" = Redis time),
 * batch, interval minutes, force ("1"), account prefix. Queues again the
 * accounts whose lease ran out, then (once per minute across replicas,
 * unless forced) up to batch due accounts, oldest due first. Each queued
 * account's next time is one interval after the time it was due, or, when
 * that has passed too (the account was due for more than an interval: it
 * was created after its minute's tick, ticks were missed, or the batch fell
 * behind), the first of its times after now: one sync catches up on every
 * missed interval, and an account that is not due cannot be queued again
 * in the same interval, not even by a forced tick. Returns {queued ids,
 * requeued ids, now}. */
sh_script coord_script_tick = SH_SCRIPT(
    "sched_tick", LUA_NUM
    "local now = tonumber(ARGV[1])\n"
    "if not now then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local interval = tonumber(ARGV[3]) * 60000\n"
    "local function key(id) return ARGV[5] .. '{' .. id .. '}' end\n"
    "local requeued = {}\n"
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do\n"
    "  redis.call('ZREM', KEYS[3], id)\n"
    "  if redis.call('HGET', key(id), 'status') == 'syncing' then\n"
    "    redis.call('HSET', key(id), 'status', 'queued', 'leaseToken', '', 'leaseExpires', '')\n"
    "    redis.call('LPUSH', KEYS[2], id)\n"
    "    table.insert(requeued, id)\n"
    "  end\n"
    "end\n"
    "local queued = {}\n"
    "local minute = math.floor(now / 60000)\n"
    "if ARGV[4] ~= '1' then\n"
    "  local last = tonumber(redis.call('GET', KEYS[4]) or '-1')\n"
    "  if minute <= last then return {queued, requeued, num(now)} end\n"
    "  redis.call('SET', KEYS[4], minute)\n"
    "end\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, "
    "tonumber(ARGV[2]))\n"
    "for i = 1, #due, 2 do\n"
    "  local id, d = due[i], tonumber(due[i + 1])\n"
    "  local st = redis.call('HGET', key(id), 'status')\n"
    "  if not st or st == 'auth_error' then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  else\n"
    "    local nd = d + interval\n"
    "    if nd <= now then nd = nd + interval * (math.floor((now - nd) / interval) + 1) end\n"
    "    redis.call('ZADD', KEYS[1], nd, id)\n"
    "    redis.call('HSET', key(id), 'nextSyncAt', num(nd))\n"
    "    if st ~= 'queued' and st ~= 'syncing' then\n"
    "      redis.call('HSET', key(id), 'status', 'queued', 'progressId', '')\n"
    "      redis.call('RPUSH', KEYS[2], id)\n"
    "      table.insert(queued, id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {queued, requeued, num(now)}\n");

/* KEYS: ids, queue, leases, errors, due. ARGV: now ms. */
sh_script coord_script_sched_status =
    SH_SCRIPT("sched_status",
              "return {redis.call('ZCARD', KEYS[1]), redis.call('LLEN', KEYS[2]), "
              "redis.call('ZCARD', KEYS[3]), redis.call('SCARD', KEYS[4]), "
              "redis.call('ZCOUNT', KEYS[5], '-inf', ARGV[1]), redis.call('ZCARD', KEYS[5])}\n");

/* KEYS: queue, leases. ARGV: now ms, lease ms, token, account prefix,
 * progress id for scheduled runs. Takes the first queued account: {id,
 * lease expiry, account hash, sealed password}. */
sh_script coord_script_lease = SH_SCRIPT(
    "sync_lease", LUA_NUM
    "while true do\n"
    "  local id = redis.call('LPOP', KEYS[1])\n"
    "  if not id then return false end\n"
    "  local k = ARGV[4] .. '{' .. id .. '}'\n"
    "  if redis.call('HGET', k, 'status') == 'queued' then\n"
    "    local exp = num(tonumber(ARGV[1]) + tonumber(ARGV[2]))\n"
    "    if (redis.call('HGET', k, 'progressId') or '') == '' then\n"
    "      redis.call('HSET', k, 'progressId', ARGV[5])\n"
    "    end\n"
    "    redis.call('HSET', k, 'status', 'syncing', 'leaseToken', ARGV[3], 'leaseExpires', exp)\n"
    "    redis.call('ZADD', KEYS[2], exp, id)\n"
    "    local h = redis.call('HGETALL', k)\n"
    "    redis.call('HDEL', k, 'syncFirst')\n"
    "    return {id, exp, h, redis.call('GET', k .. ':secret')}\n"
    "  end\n"
    "end\n");

/* KEYS: account, leases. ARGV: id, token, now ms, lease ms. */
sh_script coord_script_lease_renew = SH_SCRIPT(
    "sync_renew", LUA_NUM "local cur = redis.call('HMGET', KEYS[1], 'status', 'leaseToken')\n"
                          "if cur[1] ~= 'syncing' or cur[2] ~= ARGV[2] then return false end\n"
                          "local exp = num(tonumber(ARGV[3]) + tonumber(ARGV[4]))\n"
                          "redis.call('HSET', KEYS[1], 'leaseExpires', exp)\n"
                          "redis.call('ZADD', KEYS[2], exp, ARGV[1])\n"
                          "return exp\n");

/* KEYS: account, leases, due, errors, queue. ARGV: id, token, now ms,
 * outcome, message, interval ms, the progress id of a run asked for while
 * this one ran (syncAgain, set by sync_now), which is queued at once unless
 * the login was refused. ok clears the error state (its message, when the
 * run went through with a problem worth showing, becomes the account's
 * errorMessage, "" otherwise); error backs off
 * (interval x 2^(failures-1), at most x8); auth_error leaves the schedule
 * until the account is updated. Returns nil for a stale token. */
sh_script coord_script_lease_complete = SH_SCRIPT(
    "sync_complete", LUA_NUM
    "local cur = redis.call('HMGET', KEYS[1], 'status', 'leaseToken')\n"
    "if cur[1] ~= 'syncing' or cur[2] ~= ARGV[2] then return false end\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "redis.call('HSET', KEYS[1], 'leaseToken', '', 'leaseExpires', '', 'progressId', '')\n"
    "local now = tonumber(ARGV[3])\n"
    "if ARGV[4] == 'ok' then\n"
    "  redis.call('HSET', KEYS[1], 'status', 'ok', 'error', ARGV[5], 'lastSyncedAt', ARGV[3], "
    "'failures', 0)\n"
    "  redis.call('SREM', KEYS[4], ARGV[1])\n"
    "else\n"
    "  local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)\n"
    "  redis.call('HSET', KEYS[1], 'status', ARGV[4], 'error', ARGV[5])\n"
    "  redis.call('SADD', KEYS[4], ARGV[1])\n"
    "  if ARGV[4] == 'auth_error' then\n"
    "    redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "    redis.call('HSET', KEYS[1], 'nextSyncAt', '')\n"
    "  else\n"
    "    local interval = tonumber(ARGV[6])\n"
    "    local wait = math.min(interval * 2 ^ (f - 1), interval * 8)\n"
    "    redis.call('ZADD', KEYS[3], now + wait, ARGV[1])\n"
    "    redis.call('HSET', KEYS[1], 'nextSyncAt', num(now + wait))\n"
    "  end\n"
    "end\n"
    "if redis.call('HGET', KEYS[1], 'syncAgain') == '1' then\n"
    "  redis.call('HDEL', KEYS[1], 'syncAgain')\n"
    "  if ARGV[4] ~= 'auth_error' then\n"
    "    redis.call('HSET', KEYS[1], 'status', 'queued', 'progressId', ARGV[7])\n"
    "    redis.call('LPUSH', KEYS[5], ARGV[1])\n"
    "  end\n"
    "end\n"
    "return redis.call('HGETALL', KEYS[1])\n");

/* KEYS: account, queue. ARGV: progress id, account id, the folder to sync
 * first ("" for none: kept by the next lease, which hands it on). Queues the account now, at the
 * front. Returns {1, progressId} when queued, {0, progressId} when it
 * already was (or is syncing: then another run follows this one, for what
 * was asked while it ran), nil when there is no account. */
sh_script coord_script_sync_now = SH_SCRIPT(
    "sync_now", "local st = redis.call('HGET', KEYS[1], 'status')\n"
                "if not st then return false end\n"
                "if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'syncFirst', ARGV[3]) end\n"
                "if st == 'queued' or st == 'syncing' then\n"
                "  local pid = redis.call('HGET', KEYS[1], 'progressId') or ''\n"
                "  if pid == '' then pid = ARGV[1]; redis.call('HSET', KEYS[1], 'progressId', pid) "
                "end\n"
                "  if st == 'syncing' then redis.call('HSET', KEYS[1], 'syncAgain', '1') end\n"
                "  return {0, pid}\n"
                "end\n"
                "redis.call('HSET', KEYS[1], 'status', 'queued', 'progressId', ARGV[1])\n"
                "redis.call('LPUSH', KEYS[2], ARGV[2])\n"
                "return {1, ARGV[1]}\n");

/* KEYS: secret. ARGV: the blob it must still hold, the new blob. */
sh_script coord_script_reseal =
    SH_SCRIPT("account_reseal", "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                "redis.call('SET', KEYS[1], ARGV[2])\n"
                                "return 1\n");

/* scripts.c - Lua scripts: each write of the service is one of these, so it
 * is atomic and costs one Redis round trip. */
#include "scripts.h"

/* Refuses a write that would take a hash past ARGV[2] fields; the field
 * names to write are ARGV[first], ARGV[first+2], ... */
#define LUA_FIELD_LIMIT                                                                            \
    "local function over(key, first, max)\n"                                                       \
    "  local len = redis.call('HLEN', key)\n"                                                      \
    "  if len + (#ARGV - first + 1) / 2 <= max then return false end\n"                            \
    "  local new = 0\n"                                                                            \
    "  for i = first, #ARGV, 2 do\n"                                                               \
    "    if redis.call('HEXISTS', key, ARGV[i]) == 0 then new = new + 1 end\n"                     \
    "  end\n"                                                                                      \
    "  return len + new > max\n"                                                                   \
    "end\n"

/* KEYS: record, log, log sequence. ARGV: ttl, max fields, createdAt, then
 * field/value pairs. Merges the fields, bumps the version, refreshes the
 * TTLs and returns the whole record. */
sh_script prog_script_update = SH_SCRIPT(
    "progress_update", LUA_FIELD_LIMIT
    "if over(KEYS[1], 4, tonumber(ARGV[2])) then\n"
    "  return redis.error_reply('LIMIT a record holds at most ' .. ARGV[2] .. ' fields')\n"
    "end\n"
    "redis.call('HSETNX', KEYS[1], 'createdAt', ARGV[3])\n"
    "redis.call('HINCRBY', KEYS[1], 'version', 1)\n"
    "if #ARGV >= 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[3], ARGV[1])\n"
    "return redis.call('HGETALL', KEYS[1])\n");

/* KEYS: record, log, log sequence. ARGV: ttl, cap, entry. Appends, keeps
 * the newest cap entries and refreshes the TTLs. Returns the entry's
 * sequence number: 1 for the record's first, +1 for each. */
sh_script prog_script_log_append =
    SH_SCRIPT("progress_log_append",
              "local n = redis.call('RPUSH', KEYS[2], ARGV[3])\n"
              "if n > tonumber(ARGV[2]) then redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1) "
              "end\n"
              "local seq = redis.call('INCR', KEYS[3])\n"
              "redis.call('EXPIRE', KEYS[3], ARGV[1])\n"
              "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
              "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
              "return seq\n");

/* KEYS: record, log, log sequence. Deletes them. Returns {keys deleted,
 * the record's last version (false without one)}. */
sh_script prog_script_delete =
    SH_SCRIPT("progress_delete", "local v = redis.call('HGET', KEYS[1], 'version')\n"
                                 "local n = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
                                 "return {n, v or false}\n");

/* KEYS: job, job index. ARGV: ttl, max fields, jobId, then field/value
 * pairs. Creates the job (version 1) and points the index at it. */
sh_script prog_script_job_create =
    SH_SCRIPT("job_create", LUA_FIELD_LIMIT
              "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
              "  return redis.error_reply('EXISTS job id already taken')\n"
              "end\n"
              "if over(KEYS[1], 4, tonumber(ARGV[2])) then\n"
              "  return redis.error_reply('LIMIT a job holds at most ' .. ARGV[2] .. ' fields')\n"
              "end\n"
              "redis.call('HSET', KEYS[1], 'version', 1, unpack(ARGV, 4))\n"
              "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
              "redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[1])\n"
              "return redis.call('HGETALL', KEYS[1])\n");

/* KEYS: job. ARGV: ttl, max fields, index key prefix, updatedAt, then
 * field/value pairs. Returns nil when the job does not exist. The index of
 * the job's conversation is kept alive with the job while it still points
 * at it (its key is derived from the stored conversationId, which is why it
 * cannot be declared in KEYS). */
sh_script prog_script_job_update =
    SH_SCRIPT("job_update", LUA_FIELD_LIMIT
              "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
              "if over(KEYS[1], 5, tonumber(ARGV[2])) then\n"
              "  return redis.error_reply('LIMIT a job holds at most ' .. ARGV[2] .. ' fields')\n"
              "end\n"
              "redis.call('HINCRBY', KEYS[1], 'version', 1)\n"
              "redis.call('HSET', KEYS[1], 'updatedAt', ARGV[4])\n"
              "if #ARGV >= 6 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end\n"
              "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
              "local conv = redis.call('HGET', KEYS[1], 'conversationId')\n"
              "local jid = redis.call('HGET', KEYS[1], 'jobId')\n"
              "if conv and jid then\n"
              "  local idx = ARGV[3] .. '{' .. cmsgpack.unpack(conv) .. '}'\n"
              "  if redis.call('GET', idx) == cmsgpack.unpack(jid) then\n"
              "    redis.call('EXPIRE', idx, ARGV[1])\n"
              "  end\n"
              "end\n"
              "return redis.call('HGETALL', KEYS[1])\n");

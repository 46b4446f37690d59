/* scripts_oauth.c - the compare-and-set of an OAuth2 token refresh: one
 * sync worker at a time holds an account's refresh lease, and the new
 * secret is written only if the account's authVersion is still the one
 * the worker refreshed from. */
#include "scripts.h"

/* KEYS: account, refresh lease, secret. ARGV: worker, the version the
 * worker holds, now ms, lease ms. Answers {state, version, secret,
 * retryAt}: "gone" (no OAuth2 account), "fresh" (the version moved on:
 * the secret is the newer one), "backoff" (a failed refresh waits until
 * retryAt), "busy" (another worker refreshes), "granted". */
sh_script coord_script_oauth_begin = SH_SCRIPT(
    "oauth_begin",
    "if redis.call('HGET', KEYS[1], 'authType') ~= 'oauth2' then return {'gone'} end\n"
    "local v = redis.call('HGET', KEYS[1], 'authVersion') or ''\n"
    "if v ~= ARGV[2] then return {'fresh', v, redis.call('GET', KEYS[3]) or ''} end\n"
    "local retry = tonumber(redis.call('HGET', KEYS[1], 'authRetryAt') or '0') or 0\n"
    "if retry > tonumber(ARGV[3]) then return {'backoff', v, '', string.format('%d', retry)} end\n"
    "local holder = redis.call('GET', KEYS[2])\n"
    "if holder and holder ~= ARGV[1] then return {'busy', v} end\n"
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])\n"
    "return {'granted', v}\n");

/* KEYS: account, refresh lease, secret. ARGV: worker, version, new sealed
 * secret ("" when the refresh failed), its expiry ms, now ms, the new
 * version, "1" when the failure was transient (counted for the backoff:
 * 5 s doubling to 10 min). Answers {state, version, retryAt}: "lost" (the
 * lease or the version is not the worker's), "stored", "backoff",
 * "released". */
sh_script coord_script_oauth_end = SH_SCRIPT(
    "oauth_end",
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'lost'} end\n"
    "redis.call('DEL', KEYS[2])\n"
    "if redis.call('HGET', KEYS[1], 'authVersion') ~= ARGV[2] then return {'lost'} end\n"
    "if ARGV[3] ~= '' then\n"
    "  redis.call('SET', KEYS[3], ARGV[3])\n"
    "  redis.call('HSET', KEYS[1], 'authVersion', ARGV[6], 'authExpiresAt', ARGV[4],\n"
    "             'authFailures', '0', 'authRetryAt', '0')\n"
    "  return {'stored', ARGV[6]}\n"
    "end\n"
    "if ARGV[7] == '1' then\n"
    "  local n = (tonumber(redis.call('HGET', KEYS[1], 'authFailures') or '0') or 0) + 1\n"
    "  local d = 5000 * 2 ^ math.min(n - 1, 10)\n"
    "  if d > 600000 then d = 600000 end\n"
    "  local at = string.format('%d', tonumber(ARGV[5]) + d)\n"
    "  redis.call('HSET', KEYS[1], 'authFailures', n, 'authRetryAt', at)\n"
    "  return {'backoff', ARGV[2], at}\n"
    "end\n"
    "return {'released', ARGV[2]}\n");

/* store_lua.c - the store's Lua scripts (see store_lua.h, store.h) */
#include "proxy/store_lua.h"

const char store_lua_greylist[] =
	"local now = tonumber(redis.call('TIME')[1])\n"
	"local delay, win, pttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
	"local aa, attl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"if aa > 0 and (tonumber(redis.call('GET', KEYS[2])) or 0) >= aa then return {3, 0} end\n"
	"local v = redis.call('GET', KEYS[1])\n"
	"if v == 'p' then redis.call('EXPIRE', KEYS[1], pttl) return {2, 0} end\n"
	"local first = tonumber(v)\n"
	"if not first then redis.call('SET', KEYS[1], now, 'EX', win) return {0, delay} end\n"
	"if now - first < delay then return {1, first + delay - now} end\n"
	"redis.call('SET', KEYS[1], 'p', 'EX', pttl)\n"
	"redis.call('INCR', KEYS[2])\n"
	"redis.call('EXPIRE', KEYS[2], attl)\n"
	"return {2, 0}\n";

/* The window's expiry is set when the key enters it (HSET keeps it):
 * once per key and window, not on every count (a quarter of the
 * script's time in Redis, docs/scaling.md). */
const char store_lua_count[] =
	"local now = tonumber(redis.call('TIME')[1])\n"
	"local add, w = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	"local start = now - now % w\n"
	"local v = redis.call('HMGET', KEYS[1], 's', 'n')\n"
	"local n = 0\n"
	"local same = tonumber(v[1]) == start\n"
	"if same then n = tonumber(v[2]) or 0 end\n"
	"if add < 0 and n == 0 then return {0, start + w} end\n"
	"if add ~= 0 then\n"
	"  n = n + add\n"
	"  if n < 0 then n = 0 end\n"
	"  redis.call('HSET', KEYS[1], 's', start, 'n', n)\n"
	"  if not same then redis.call('EXPIREAT', KEYS[1], start + w) end\n"
	"end\n"
	"return {n, start + w}\n";

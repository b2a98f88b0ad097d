/* store_lua.h - store.h's two operations as Lua scripts for Redis (EVALSHA,
 * EVAL after NOSCRIPT): each one atomic step on the server, its clock the
 * server's TIME, so replicas racing on a key, or with skewed clocks, agree. */
#ifndef MOAT_PROXY_STORE_LUA_H
#define MOAT_PROXY_STORE_LUA_H

/* KEYS: triplet, client network. ARGV: delay, retry_window, pass_ttl,
 * auto_allow, auto_allow_ttl (seconds; TTLs at least 1). Answers {state,
 * retry_in}: state 0 FIRST, 1 EARLY, 2 PASSED, 3 ALLOWED. A triplet holds
 * the second it was first seen, or "p" once passed; the network its
 * passes. */
extern const char store_lua_greylist[];
/* KEYS: the key. ARGV: add, window (at least 1). Answers {count, reset_at}.
 * The key is a hash {s: the window's start, n: its count}, expiring at the
 * window's end; another window's count reads as 0. A negative add gives
 * counts back, never below 0. */
extern const char store_lua_count[];

#endif

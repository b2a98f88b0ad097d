/* dns_cache.h - the answer cache behind dns.c: keyed by (normalised name,
 * type), expiry by TTL, bounded in entries and bytes, least recently used
 * evicted first. Pure: the caller passes the time, in milliseconds. */
#ifndef MOAT_DNS_CACHE_H
#define MOAT_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "checks/dns.h"

struct dns_entry {
	struct dns_entry *hnext;        /* hash chain */
	struct dns_entry *prev, *next;  /* LRU list, most recent first */
	uint64_t hash;
	uint64_t expires;               /* ms, on the caller's clock */
	size_t cost;                    /* bytes charged against the budget */
	enum dns_status status;
	int type;
	int alen;
	unsigned char *abuf;            /* the raw reply; NULL if there was none */
	char name[];
};

struct dns_cache;

/* NULL if out of memory. max_entries 0 makes a cache that stores nothing. */
struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes);
void dns_cache_free(struct dns_cache *c);

/* The live entry for (name, type), now the most recently used, or NULL. An
 * expired entry is dropped here. Valid until the next put or free. */
const struct dns_entry *dns_cache_get(struct dns_cache *c, const char *name, int type,
                                      uint64_t now);
/* Store a copy, replacing any entry for (name, type) and evicting the least
 * recently used until both bounds hold. ttl is seconds. 0, or -1 if it
 * cannot be stored (no room at all, no memory). */
int dns_cache_put(struct dns_cache *c, const char *name, int type, enum dns_status st,
                  const unsigned char *abuf, int alen, uint32_t ttl, uint64_t now);

size_t dns_cache_count(const struct dns_cache *c);
size_t dns_cache_bytes(const struct dns_cache *c);
unsigned long dns_cache_evictions(const struct dns_cache *c);

/* The cache's key: names come from mail (HELO, MAIL FROM, DKIM selectors),
 * hashed with SipHash (proxy/lib/siphash.h) under a random key. */
uint64_t dns_key_hash(const uint8_t key[16], const char *name, int type);

#endif

/* dns_cache.c - TTL- and size-bounded LRU cache of raw DNS replies, and its
 * keys: normalised names (dns_normalise), hashed with SipHash */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks/dns_cache.h"
#include "proxy/lib/siphash.h"

#define BUCKETS_MIN 16
#define BUCKETS_MAX (1u << 20)  /* 8 MiB of heads; longer chains beyond that */

struct dns_cache {
	struct dns_entry **buckets;
	size_t mask;
	struct dns_entry *head, *tail;  /* LRU list */
	size_t count, max;
	size_t bytes, max_bytes;
	unsigned long evictions;
	uint8_t key[16];
};


uint64_t dns_key_hash(const uint8_t key[16], const char *name, int type)
{
	uint8_t buf[DNS_NAME_MAX + 3];
	size_t n = strlen(name);

	if (n > DNS_NAME_MAX)  /* never from dns.c; keep the hash defined anyway */
		return siphash24(key, name, n) ^ (uint64_t)type;
	memcpy(buf, name, n);
	buf[n] = (uint8_t)(type >> 8);
	buf[n + 1] = (uint8_t)type;
	return siphash24(key, buf, n + 2);
}


int dns_normalise(const char *name, char *out, size_t size)
{
	size_t n = name ? strnlen(name, DNS_NAME_MAX + 2) : 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX || n >= size)
		return -1;
	/* ASCII only: the locale must not fold bytes of IDN labels */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	out[n] = '\0';
	return 0;
}

struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes)
{
	struct dns_cache *c = calloc(1, sizeof *c);
	size_t n = BUCKETS_MIN;

	if (c == NULL)
		return NULL;
	while (n < max_entries && n < BUCKETS_MAX)
		n <<= 1;
	c->buckets = calloc(n, sizeof *c->buckets);
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->max = max_entries;
	c->max_bytes = max_bytes;
	siphash_random_key(c->key);
	return c;
}

static void lru_unlink(struct dns_cache *c, struct dns_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct dns_cache *c, struct dns_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* The link that points at the entry for (name, type), or at the chain end. */
static struct dns_entry **find(struct dns_cache *c, const char *name, int type, uint64_t h)
{
	struct dns_entry **pp = &c->buckets[h & c->mask];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->type == type && strcmp((*pp)->name, name) == 0)
			break;
	return pp;
}

static void drop(struct dns_cache *c, struct dns_entry *e)
{
	struct dns_entry **pp = find(c, e->name, e->type, e->hash);

	*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	c->bytes -= e->cost;
	free(e->abuf);
	free(e);
}

void dns_cache_free(struct dns_cache *c)
{
	if (c == NULL)
		return;
	while (c->head)
		drop(c, c->head);
	free(c->buckets);
	free(c);
}

const struct dns_entry *dns_cache_get(struct dns_cache *c, const char *name, int type,
                                      uint64_t now)
{
	struct dns_entry *e = *find(c, name, type, dns_key_hash(c->key, name, type));

	if (e == NULL)
		return NULL;
	if (now >= e->expires) {
		drop(c, e);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	return e;
}

static struct dns_entry *entry_new(const char *name, int type, enum dns_status st,
                                   const unsigned char *abuf, int alen)
{
	size_t nlen = strlen(name) + 1;
	struct dns_entry *e = calloc(1, sizeof *e + nlen);

	if (e == NULL)
		return NULL;
	if (abuf != NULL && alen > 0) {
		e->abuf = malloc((size_t)alen);
		if (e->abuf == NULL) {
			free(e);
			return NULL;
		}
		memcpy(e->abuf, abuf, (size_t)alen);
		e->alen = alen;
	}
	memcpy(e->name, name, nlen);
	e->type = type;
	e->status = st;
	e->cost = sizeof *e + nlen + (size_t)e->alen;
	return e;
}

int dns_cache_put(struct dns_cache *c, const char *name, int type, enum dns_status st,
                  const unsigned char *abuf, int alen, uint32_t ttl, uint64_t now)
{
	struct dns_entry *e, **pp;

	if (c->max == 0 || (e = entry_new(name, type, st, abuf, alen)) == NULL)
		return -1;
	if (e->cost > c->max_bytes) {
		free(e->abuf);
		free(e);
		return -1;
	}
	e->hash = dns_key_hash(c->key, name, type);
	e->expires = now + (uint64_t)ttl * 1000;
	if (*(pp = find(c, name, type, e->hash)) != NULL)
		drop(c, *pp);
	while (c->count >= c->max || c->bytes + e->cost > c->max_bytes) {
		drop(c, c->tail);
		c->evictions++;
	}
	pp = &c->buckets[e->hash & c->mask];
	e->hnext = *pp;
	*pp = e;
	lru_push(c, e);
	c->count++;
	c->bytes += e->cost;
	return 0;
}

size_t dns_cache_count(const struct dns_cache *c)
{
	return c ? c->count : 0;
}

size_t dns_cache_bytes(const struct dns_cache *c)
{
	return c ? c->bytes : 0;
}

unsigned long dns_cache_evictions(const struct dns_cache *c)
{
	return c ? c->evictions : 0;
}

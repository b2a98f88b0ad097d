/* spf_cache.c - see spf_cache.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/spf_cache.h"

struct slot {
	uint64_t expires_ms;
	size_t keylen;
	char key[SPF_CACHE_KEY_MAX];
	struct spf_outcome o;
};

struct spf_cache {
	struct slot *slots; /* SPF_CACHE_SLOTS, allocated at the first put */
};

struct spf_cache *spf_cache_new(void)
{
	return calloc(1, sizeof(struct spf_cache));
}

void spf_cache_free(struct spf_cache *c)
{
	if (c)
		free(c->slots);
	free(c);
}

/* "ip\0helo\0sender\0receiver" */
size_t spf_cache_key(char *k, const char *ip, const char *helo, const char *sender, const char *receiver)
{
	int n = snprintf(k, SPF_CACHE_KEY_MAX, "%s%c%s%c%s%c%s", ip, 0, helo ? helo : "", 0, sender ? sender : "",
	                 0, receiver ? receiver : "");

	return n > 0 && n < SPF_CACHE_KEY_MAX ? (size_t)n : 0;
}

static unsigned slot_of(const char *k, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h % SPF_CACHE_SLOTS;
}

const struct spf_outcome *spf_cache_get(const struct spf_cache *c, const char *k, size_t n, uint64_t now_ms)
{
	const struct slot *s;

	if (!c || !c->slots || !n)
		return NULL;
	s = &c->slots[slot_of(k, n)];
	if (s->keylen != n || memcmp(s->key, k, n) != 0 || now_ms >= s->expires_ms)
		return NULL;
	return &s->o;
}

void spf_cache_put(struct spf_cache *c, const char *k, size_t n, const struct spf_outcome *o, uint64_t now_ms)
{
	struct slot *s;

	if (!c || !n || n > SPF_CACHE_KEY_MAX || o->res == SPF_RES_TEMPERROR)
		return;
	if (!c->slots && !(c->slots = calloc(SPF_CACHE_SLOTS, sizeof *c->slots)))
		return;
	s = &c->slots[slot_of(k, n)];
	memcpy(s->key, k, n);
	s->keylen = n;
	s->o = *o;
	s->expires_ms = now_ms + SPF_CACHE_TTL_MS;
}

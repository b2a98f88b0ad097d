/* spf_cache.c - see spf_cache.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/spf_cache.h"

#define KEY_MAX 1024 /* ip + helo + sender + receiver, NUL-separated; longer ones are not kept */

struct slot {
	uint64_t expires_ms;
	size_t keylen;
	char key[KEY_MAX];
	struct spf_outcome o;
};

static struct slot *slots; /* SPF_CACHE_SLOTS, allocated at the first put */

/* "ip\0helo\0sender\0receiver"; 0 when it does not fit. */
static size_t make_key(char *k, const char *ip, const char *helo, const char *sender, const char *receiver)
{
	int n = snprintf(k, KEY_MAX, "%s%c%s%c%s%c%s", ip, 0, helo ? helo : "", 0, sender ? sender : "", 0,
	                 receiver ? receiver : "");

	return n > 0 && n < KEY_MAX ? (size_t)n : 0;
}

static unsigned slot_of(const char *k, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h % SPF_CACHE_SLOTS;
}

const struct spf_outcome *spf_cache_get(const char *ip, const char *helo, const char *sender,
                                        const char *receiver, uint64_t now_ms)
{
	char k[KEY_MAX];
	size_t n = make_key(k, ip, helo, sender, receiver);
	struct slot *s;

	if (!slots || !n)
		return NULL;
	s = &slots[slot_of(k, n)];
	if (s->keylen != n || memcmp(s->key, k, n) != 0 || now_ms >= s->expires_ms)
		return NULL;
	return &s->o;
}

void spf_cache_put(const char *ip, const char *helo, const char *sender, const char *receiver,
                   const struct spf_outcome *o, uint64_t now_ms)
{
	char k[KEY_MAX];
	size_t n = make_key(k, ip, helo, sender, receiver);
	struct slot *s;

	if (!n || o->res == SPF_RES_TEMPERROR)
		return;
	if (!slots && !(slots = calloc(SPF_CACHE_SLOTS, sizeof *slots)))
		return;
	s = &slots[slot_of(k, n)];
	memcpy(s->key, k, n);
	s->keylen = n;
	s->o = *o;
	s->expires_ms = now_ms + SPF_CACHE_TTL_MS;
}

void spf_cache_clear(void)
{
	free(slots);
	slots = NULL;
}

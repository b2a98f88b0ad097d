/* iptable.c - a chained hash of address -> count; entries vanish at zero */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "proxy/iptable.h"

#define IPT_BUCKETS 4096 /* power of two; entries are few: open connections */

struct ipent {
	uint8_t key[16]; /* IPv4 as v4-mapped IPv6, so both spellings count once */
	int count;
	struct ipent *next;
};

struct iptable {
	struct ipent *b[IPT_BUCKETS];
};

static void key_of(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

static unsigned hash16(const uint8_t k[16])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ k[i]) * 16777619u;
	return h & (IPT_BUCKETS - 1);
}

struct iptable *iptable_new(void)
{
	return calloc(1, sizeof(struct iptable));
}

int iptable_inc(struct iptable *t, const struct sockaddr *sa)
{
	uint8_t k[16];
	struct ipent *e;
	unsigned h;

	key_of(sa, k);
	h = hash16(k);
	for (e = t->b[h]; e; e = e->next)
		if (memcmp(e->key, k, 16) == 0)
			return ++e->count;
	e = calloc(1, sizeof *e);
	if (!e)
		return 1 << 30; /* out of memory: treat as over any limit */
	memcpy(e->key, k, 16);
	e->count = 1;
	e->next = t->b[h];
	t->b[h] = e;
	return 1;
}

void iptable_dec(struct iptable *t, const struct sockaddr *sa)
{
	uint8_t k[16];
	struct ipent **pp, *e;

	key_of(sa, k);
	for (pp = &t->b[hash16(k)]; (e = *pp) != NULL; pp = &e->next) {
		if (memcmp(e->key, k, 16) == 0) {
			if (--e->count <= 0) {
				*pp = e->next;
				free(e);
			}
			return;
		}
	}
}

void iptable_free(struct iptable *t)
{
	int i;

	if (!t)
		return;
	for (i = 0; i < IPT_BUCKETS; i++) {
		struct ipent *e = t->b[i], *n;

		for (; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(t);
}

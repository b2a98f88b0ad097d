/* strset.c - string set for recipient tables and rule lists.
 *
 * Strings live back to back in an arena; the table holds their offsets and
 * hashes. The load factor stays under 1/2, so a lookup touches one or two
 * slots: a million entries cost about 16 MiB of table plus the strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/strset.h"

#define STRSET_MIN_SLOTS 64

struct slot {
	uint64_t hash;
	size_t off; /* into the arena; 0 = empty (the arena starts with a pad byte) */
	size_t len;
};

struct strset {
	struct slot *slots;
	size_t nslots, count;
	char *arena;
	size_t used, cap;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

struct strset *strset_new(void)
{
	struct strset *set = calloc(1, sizeof *set);

	if (!set)
		return NULL;
	set->nslots = STRSET_MIN_SLOTS;
	set->slots = calloc(set->nslots, sizeof *set->slots);
	set->cap = 4096;
	set->arena = malloc(set->cap);
	if (!set->slots || !set->arena) {
		strset_free(set);
		return NULL;
	}
	set->used = 1;
	return set;
}

static struct slot *find(const struct strset *set, const char *s, size_t len, uint64_t h)
{
	size_t i = h & (set->nslots - 1);

	for (;;) {
		struct slot *sl = &set->slots[i];

		if (sl->off == 0 ||
		    (sl->hash == h && sl->len == len && memcmp(set->arena + sl->off, s, len) == 0))
			return sl;
		i = (i + 1) & (set->nslots - 1);
	}
}

static int grow(struct strset *set)
{
	struct slot *old = set->slots;
	size_t n = set->nslots, i;

	set->slots = calloc(n * 2, sizeof *set->slots);
	if (!set->slots) {
		set->slots = old;
		return -1;
	}
	set->nslots = n * 2;
	for (i = 0; i < n; i++)
		if (old[i].off)
			*find(set, set->arena + old[i].off, old[i].len, old[i].hash) = old[i];
	free(old);
	return 0;
}

int strset_add(struct strset *set, const char *s, size_t len)
{
	uint64_t h = hash_bytes(s, len);
	struct slot *sl;

	if ((set->count + 1) * 2 > set->nslots && grow(set) < 0)
		return -1;
	sl = find(set, s, len, h);
	if (sl->off)
		return 0;
	if (set->used + len + 1 > set->cap) {
		size_t cap = set->cap * 2 > set->used + len + 1 ? set->cap * 2 : set->used + len + 1;
		char *a = realloc(set->arena, cap);

		if (!a)
			return -1;
		set->arena = a;
		set->cap = cap;
	}
	memcpy(set->arena + set->used, s, len);
	set->arena[set->used + len] = '\0';
	sl->hash = h;
	sl->off = set->used;
	sl->len = len;
	set->used += len + 1;
	set->count++;
	return 1;
}

int strset_has(const struct strset *set, const char *s, size_t len)
{
	return find(set, s, len, hash_bytes(s, len))->off != 0;
}

size_t strset_count(const struct strset *set)
{
	return set->count;
}

void strset_free(struct strset *set)
{
	if (!set)
		return;
	free(set->slots);
	free(set->arena);
	free(set);
}

/* topk.c - Space-Saving (see topk.h): counters in a min-heap on count, found
 * by a hash table of their keys (keyed SipHash: the keys are the log's
 * text, which clients choose) */
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/siphash.h"
#include "proxy/report/topk.h"

int topk_init(struct topk *t, size_t cap)
{
	size_t slots = 1;

	memset(t, 0, sizeof *t);
	while (slots < cap * 2)
		slots <<= 1;
	t->cap = cap;
	t->mask = slots - 1;
	t->items = calloc(cap, sizeof *t->items);
	t->heap = calloc(cap, sizeof *t->heap);
	t->table = calloc(slots, sizeof *t->table);
	siphash_random_key(t->seed);
	if (!t->items || !t->heap || !t->table || cap == 0) {
		topk_free(t);
		return -1;
	}
	return 0;
}

void topk_free(struct topk *t)
{
	free(t->items);
	free(t->heap);
	free(t->table);
	memset(t, 0, sizeof *t);
}

static void heap_set(struct topk *t, size_t at, uint32_t item)
{
	t->heap[at] = item;
	t->items[item].heap = (uint32_t)at;
}

/* An item's count grew: move it down towards the leaves. */
static void sift_down(struct topk *t, size_t at)
{
	uint32_t it = t->heap[at];
	uint64_t c = t->items[it].count;

	for (;;) {
		size_t l = 2 * at + 1, r = l + 1, m = l;

		if (l >= t->n)
			break;
		if (r < t->n && t->items[t->heap[r]].count < t->items[t->heap[l]].count)
			m = r;
		if (t->items[t->heap[m]].count >= c)
			break;
		heap_set(t, at, t->heap[m]);
		at = m;
	}
	heap_set(t, at, it);
}

static void sift_up(struct topk *t, size_t at)
{
	uint32_t it = t->heap[at];
	uint64_t c = t->items[it].count;

	while (at > 0) {
		size_t p = (at - 1) / 2;

		if (t->items[t->heap[p]].count <= c)
			break;
		heap_set(t, at, t->heap[p]);
		at = p;
	}
	heap_set(t, at, it);
}

/* The table slot holding item idx's key, or the empty slot where it goes. */
static size_t slot_of(const struct topk *t, uint64_t h, const char *key, size_t n)
{
	size_t s = (size_t)h & t->mask;

	for (;; s = (s + 1) & t->mask) {
		const struct topk_item *it;

		if (t->table[s] == 0)
			return s;
		it = &t->items[t->table[s] - 1];
		if (it->hash == h && it->len == n && memcmp(it->key, key, n) == 0)
			return s;
	}
}

/* Empty slot s, moving later entries of its run back (linear probing
 * without tombstones). */
static void table_remove(struct topk *t, size_t s)
{
	size_t j = s;

	for (;;) {
		size_t home;

		t->table[s] = 0;
		for (;;) {
			j = (j + 1) & t->mask;
			if (t->table[j] == 0)
				return;
			home = (size_t)t->items[t->table[j] - 1].hash & t->mask;
			/* j's entry may move to s unless its home lies in (s, j] */
			if (s <= j ? (home <= s || home > j) : (home <= s && home > j))
				break;
		}
		t->table[s] = t->table[j];
		s = j;
	}
}

/* The length of key cut to fit, never inside a UTF-8 character. */
static size_t key_len(const char *key, size_t n)
{
	if (n < REPORT_KEY_MAX)
		return n;
	n = REPORT_KEY_MAX - 1;
	while (n > 0 && ((unsigned char)key[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void topk_add(struct topk *t, const char *key, size_t n, uint64_t w)
{
	struct topk_item *it;
	uint32_t idx;
	uint64_t h;
	size_t s;
	int fresh;

	if (!t->cap || w == 0)
		return;
	n = key_len(key, n);
	h = siphash24(t->seed, key, n);
	s = slot_of(t, h, key, n);
	t->total += w;
	if (t->table[s]) {
		it = &t->items[t->table[s] - 1];
		it->count += w;
		sift_down(t, it->heap);
		return;
	}
	fresh = t->n < t->cap;
	if (fresh) {
		idx = (uint32_t)t->n++;
		it = &t->items[idx];
		it->count = w;
		it->error = 0;
		t->heap[idx] = idx;
		it->heap = idx;
	} else {
		/* replace the smallest: its count becomes the new key's error */
		idx = t->heap[0];
		it = &t->items[idx];
		table_remove(t, slot_of(t, it->hash, it->key, it->len));
		s = slot_of(t, h, key, n);
		it->error = it->count;
		it->count += w;
		t->replaced = 1;
	}
	it->hash = h;
	it->len = (uint16_t)n;
	memcpy(it->key, key, n);
	t->table[s] = idx + 1;
	/* a new counter is at the end (it may be the smallest), a replaced
	 * one at the root (it grew) */
	if (fresh)
		sift_up(t, it->heap);
	else
		sift_down(t, 0);
}

uint64_t topk_bound(const struct topk *t)
{
	return t->replaced && t->n ? t->items[t->heap[0]].count : 0;
}

/* Does a come before b: a higher count, or the same and a smaller key? */
static int before(const struct topk_item *a, const struct topk_item *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c;

	if (a->count != b->count)
		return a->count > b->count;
	c = memcmp(a->key, b->key, n);
	return c < 0 || (c == 0 && a->len < b->len);
}

size_t topk_sorted(const struct topk *t, const struct topk_item **out, size_t max)
{
	size_t n = 0;

	/* insertion into the max best: max is small (a list shown) */
	for (size_t i = 0; i < t->n; i++) {
		const struct topk_item *it = &t->items[i];
		size_t at = n;

		while (at > 0 && before(it, out[at - 1]))
			at--;
		if (at >= max)
			continue;
		if (n < max)
			n++;
		memmove(out + at + 1, out + at, (n - 1 - at) * sizeof *out);
		out[at] = it;
	}
	return n;
}

uint64_t topk_count(const struct topk *t, const char *key, size_t n, uint64_t *error)
{
	size_t s;

	*error = 0;
	if (!t->cap)
		return 0;
	n = key_len(key, n);
	s = slot_of(t, siphash24(t->seed, key, n), key, n);
	if (!t->table[s])
		return 0;
	*error = t->items[t->table[s] - 1].error;
	return t->items[t->table[s] - 1].count;
}

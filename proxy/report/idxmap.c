/* idxmap.c - 64-bit keys to indexes (see idxmap.h) */
#include <stdlib.h>
#include <string.h>

#include "proxy/report/idxmap.h"

/* Keys may be chosen (hours, session ids): mixed so that runs of them
 * spread over the table. */
static size_t home(const struct idxmap *m, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)key & m->mask;
}

int idxmap_init(struct idxmap *m, size_t slots)
{
	m->keys = calloc(slots, sizeof *m->keys);
	m->vals = calloc(slots, sizeof *m->vals);
	m->mask = slots - 1;
	m->n = 0;
	if (!m->keys || !m->vals) {
		idxmap_free(m);
		return -1;
	}
	return 0;
}

void idxmap_free(struct idxmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

void idxmap_clear(struct idxmap *m)
{
	memset(m->vals, 0, (m->mask + 1) * sizeof *m->vals);
	m->n = 0;
}

static size_t find(const struct idxmap *m, uint64_t key)
{
	size_t s = home(m, key);

	while (m->vals[s] && m->keys[s] != key)
		s = (s + 1) & m->mask;
	return s;
}

long idxmap_get(const struct idxmap *m, uint64_t key)
{
	size_t s;

	if (!m->vals)
		return -1;
	s = find(m, key);
	return m->vals[s] ? (long)m->vals[s] - 1 : -1;
}

int idxmap_put(struct idxmap *m, uint64_t key, uint32_t index)
{
	size_t s = find(m, key);

	if (!m->vals[s]) {
		if (m->n + 1 >= m->mask)
			return -1;
		m->n++;
		m->keys[s] = key;
	}
	m->vals[s] = index + 1;
	return 0;
}

void idxmap_del(struct idxmap *m, uint64_t key)
{
	size_t s = find(m, key), j = s;

	if (!m->vals[s])
		return;
	m->n--;
	for (;;) {
		size_t h;

		m->vals[s] = 0;
		for (;;) {
			j = (j + 1) & m->mask;
			if (!m->vals[j])
				return;
			h = home(m, m->keys[j]);
			/* j's entry may fill the hole unless its home lies in (s, j] */
			if (s <= j ? (h <= s || h > j) : (h <= s && h > j))
				break;
		}
		m->keys[s] = m->keys[j];
		m->vals[s] = m->vals[j];
		s = j;
	}
}

/* idxmap.h - a map from 64-bit keys to indexes, open addressing with
 * linear probing and deletion without tombstones (pure) */
#ifndef MOAT_REPORT_IDXMAP_H
#define MOAT_REPORT_IDXMAP_H

#include <stddef.h>
#include <stdint.h>

struct idxmap {
	uint64_t *keys;
	uint32_t *vals;  /* index + 1; 0: empty slot */
	size_t mask, n;
};

/* slots: a power of two; keep n well below it. 0, or -1 out of memory. */
int idxmap_init(struct idxmap *m, size_t slots);
void idxmap_free(struct idxmap *m);
void idxmap_clear(struct idxmap *m);
/* The index of key, or -1. */
long idxmap_get(const struct idxmap *m, uint64_t key);
/* Set key's index (added, or replaced); -1 if the map is full. */
int idxmap_put(struct idxmap *m, uint64_t key, uint32_t index);
void idxmap_del(struct idxmap *m, uint64_t key);

#endif

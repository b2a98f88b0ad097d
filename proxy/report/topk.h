/* topk.h - the most frequent keys of a stream in bounded memory: the
 * Space-Saving algorithm (Metwally, Agrawal, El Abbadi, "Efficient
 * computation of frequent and top-k elements in data streams", 2005); pure
 *
 * cap counters. A new key, when all are taken, replaces the key with the
 * smallest count m and starts at m + 1 with an error of m. So each count is
 * an upper bound, over the truth by at most its error, and every error is
 * at most total / cap; every key seen more than total / cap times is in the
 * list. Until a key is replaced, the counts are exact. */
#ifndef MOAT_REPORT_TOPK_H
#define MOAT_REPORT_TOPK_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/report/bounds.h"

struct topk_item {
	uint64_t count;  /* at least the true count */
	uint64_t error;  /* count - error <= the true count */
	uint64_t hash;
	uint32_t heap;   /* its place in the heap */
	uint16_t len;
	char key[REPORT_KEY_MAX];
};

struct topk {
	size_t cap, n;
	uint64_t total;          /* weight added: exact */
	int replaced;            /* a key was ever replaced: the counts are bounds */
	struct topk_item *items; /* cap */
	uint32_t *heap;          /* item indexes, a min-heap on count */
	uint32_t *table;         /* item index + 1 by hash (open addressing); 0: empty */
	size_t mask;
	uint8_t seed[16];
};

/* 0, or -1 out of memory. */
int topk_init(struct topk *t, size_t cap);
void topk_free(struct topk *t);

/* Count w more of the n bytes at key (cut to REPORT_KEY_MAX - 1 bytes,
 * never inside a UTF-8 character). */
void topk_add(struct topk *t, const char *key, size_t n, uint64_t w);

/* The largest error a count can have: 0 until a key is replaced, then the
 * smallest count (<= total / cap). */
uint64_t topk_bound(const struct topk *t);

/* Up to max items, highest count first (ties: by key), into out. Returns
 * how many. */
size_t topk_sorted(const struct topk *t, const struct topk_item **out, size_t max);

/* The count of key if it is held (an upper bound), else 0; *error its error. */
uint64_t topk_count(const struct topk *t, const char *key, size_t n, uint64_t *error);

#endif

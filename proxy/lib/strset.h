/* strset.h - a set of strings: open addressing, one arena; built once, then read-only */
#ifndef MOAT_STRSET_H
#define MOAT_STRSET_H

#include <stddef.h>

struct strset;

struct strset *strset_new(void);
/* Add a copy of s (len bytes). 1 added, 0 already there, -1 out of memory. */
int strset_add(struct strset *set, const char *s, size_t len);
int strset_has(const struct strset *set, const char *s, size_t len);
size_t strset_count(const struct strset *set);
void strset_free(struct strset *set);

#endif

/* siphash.h - SipHash-2-4 keyed hash for tables fed by the network */
#ifndef MOAT_SIPHASH_H
#define MOAT_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);
/* 16 random bytes (getrandom; without entropy yet, at least different per run) */
void siphash_random_key(uint8_t key[16]);

#endif

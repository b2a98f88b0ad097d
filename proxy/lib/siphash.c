/* siphash.c - SipHash-2-4 (Aumasson, Bernstein) and its random key: the
 * hash of every table whose keys come from the network (DNS names from mail,
 * client addresses), so an attacker cannot aim collisions at one bucket */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "proxy/lib/siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                          \
	do {                                                              \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                     \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                     \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *in = data, *end = in + len - len % 8;
	uint64_t k0 = le64(key), k1 = le64(key + 8), m, b = (uint64_t)len << 56;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;

	for (; in != end; in += 8) {
		m = le64(in);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = len % 8; i > 0; i--)
		b |= (uint64_t)in[i - 1] << (8 * (i - 1));
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void siphash_random_key(uint8_t key[16])
{
	struct timespec ts;
	uint64_t a, b;

	if (getrandom(key, 16, GRND_NONBLOCK) == 16)
		return;
	/* no entropy yet (early boot): differ between runs at least; a guessed
	 * key costs only time through collisions */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	a = (uint64_t)ts.tv_nsec ^ (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid() << 40;
	b = (uint64_t)(uintptr_t)key ^ a * 0x9E3779B97F4A7C15ULL;
	memcpy(key, &a, 8);
	memcpy(key + 8, &b, 8);
}

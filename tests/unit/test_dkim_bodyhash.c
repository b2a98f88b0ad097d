/* test_dkim_bodyhash.c - checks/dkim_bodyhash.c: DKIM body canonicalization
 * and hash, against RFC 6376's own example, the empty-body hashes every
 * verifier knows, l=, and a plain whole-buffer canonicalizer written from
 * the RFC's text (random bodies, fed in random pieces). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "checks/dkim_bodyhash.h"

/* base64 of SHA-256 of the canonical text, by OpenSSL directly */
static void b64_sha256(const char *canon, size_t n, char out[64])
{
	unsigned char d[32];
	unsigned int dl;

	EVP_Digest(canon, n, d, &dl, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)out, d, 32);
}

static int check(int relaxed, long long limit, const char *body, size_t n, size_t piece, const char *bh)
{
	struct dkim_bodyhash *h = dkim_bodyhash_new(relaxed, limit);
	size_t off;
	int r;

	assert_non_null(h);
	for (off = 0; off < n; off += piece)
		dkim_bodyhash_feed(h, body + off, n - off < piece ? n - off : piece);
	r = dkim_bodyhash_check(h, bh);
	dkim_bodyhash_free(h);
	return r;
}

static void test_empty_bodies(void **state)
{
	/* RFC 6376 3.4.3 / 3.4.4: simple hashes one CRLF, relaxed nothing */
	assert_int_equal(check(0, -1, "", 0, 1, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="), 1);
	assert_int_equal(check(1, -1, "", 0, 1, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="), 1);
	/* only empty lines: the same */
	assert_int_equal(check(0, -1, "\r\n\r\n\r\n", 6, 1, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="), 1);
	assert_int_equal(check(1, -1, " \r\n\t\r\n", 6, 2, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="), 1);
	/* the other's hash does not match */
	assert_int_equal(check(1, -1, "", 0, 1, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="), 0);
}

static void test_rfc6376_example(void **state)
{
	/* RFC 6376 3.4.5 */
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";
	char want[64];
	size_t piece;

	for (piece = 1; piece <= sizeof body; piece++) {
		b64_sha256(" C\r\nD E\r\n", 9, want);
		assert_int_equal(check(1, -1, body, sizeof body - 1, piece, want), 1);
		b64_sha256(" C \r\nD \t E\r\n", 12, want);
		assert_int_equal(check(0, -1, body, sizeof body - 1, piece, want), 1);
	}
}

static void test_length_limit(void **state)
{
	static const char body[] = "Hello  world\r\nmore text\r\n";
	char want[64];

	/* l= counts canonical bytes: "Hello world\r\n" is 13 */
	b64_sha256("Hello world\r\n", 13, want);
	assert_int_equal(check(1, 13, body, sizeof body - 1, 5, want), 1);
	b64_sha256("Hello  wor", 10, want);
	assert_int_equal(check(0, 10, body, sizeof body - 1, 3, want), 1);
	/* l= beyond the body: invalid, whatever the hash */
	assert_int_equal(check(1, 1000, body, sizeof body - 1, 7, want), -1);
	/* l=0: nothing hashed */
	b64_sha256("", 0, want);
	assert_int_equal(check(0, 0, body, sizeof body - 1, 4, want), 1);
}

static void test_bh_syntax(void **state)
{
	/* white space inside bh= is ignored; junk never matches */
	assert_int_equal(check(0, -1, "", 0, 1, " frcCV1k9oG9oKj3dpUqdJg1P\r\n\txRT2RSN/XKdLCPjaYaY= "), 1);
	assert_int_equal(check(0, -1, "", 0, 1, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYa!="), 0);
	assert_int_equal(check(0, -1, "", 0, 1, "frcCV1k9"), 0);
	assert_int_equal(check(0, -1, "", 0, 1, NULL), 0);
}

/* ---- a whole-buffer canonicalizer, line by line as RFC 6376 words it */

struct buf {
	char *p;
	size_t n;
};

static void put(struct buf *b, const char *p, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static struct buf reference(int relaxed, const char *body, size_t n)
{
	struct buf out = {NULL, 0};
	size_t i = 0;

	put(&out, "", 0);
	if (!relaxed) {
		put(&out, body, n);
		while (out.n >= 4 && memcmp(out.p + out.n - 4, "\r\n\r\n", 4) == 0)
			out.n -= 2; /* trailing CRLFs reduced to one */
		if (out.n == 2 && memcmp(out.p, "\r\n", 2) == 0)
			return out;
		if (out.n < 2 || memcmp(out.p + out.n - 2, "\r\n", 2) != 0)
			put(&out, "\r\n", 2);
		return out;
	}
	while (i < n) {
		/* one line: up to CRLF or the end */
		size_t end = i, next;
		struct buf line = {NULL, 0};

		while (end < n && !(body[end] == '\r' && end + 1 < n && body[end + 1] == '\n'))
			end++;
		next = end < n ? end + 2 : n;
		put(&line, "", 0);
		for (size_t j = i; j < end; j++) {
			int ws = body[j] == ' ' || body[j] == '\t';

			if (ws && j > i && (body[j - 1] == ' ' || body[j - 1] == '\t'))
				continue; /* a run of WSP: one SP */
			put(&line, ws ? " " : &body[j], 1);
		}
		while (line.n > 0 && line.p[line.n - 1] == ' ')
			line.n--; /* WSP at the line's end */
		put(&out, line.p, line.n);
		put(&out, "\r\n", 2);
		free(line.p);
		i = next;
	}
	while (out.n >= 2 && memcmp(out.p + out.n - 2, "\r\n", 2) == 0 &&
	       (out.n == 2 || (out.n >= 4 && memcmp(out.p + out.n - 4, "\r\n", 2) == 0)))
		out.n -= 2; /* empty lines at the end */
	return out;
}

static void test_random_bodies_any_pieces(void **state)
{
	static const char *atoms[] = {"a", "xyz", " ", "\t", "\r\n", "\r\n", "\r", "\n", ".", "  \t "};
	char body[400], want[64];
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 20000; round++) {
		size_t n = 0;
		int k = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 40;

		while (k-- > 0) {
			const char *a = atoms[((seed = seed * 1103515245u + 12345u) >> 16) % 10];

			memcpy(body + n, a, strlen(a));
			n += strlen(a);
		}
		for (int relaxed = 0; relaxed < 2; relaxed++) {
			struct buf ref = reference(relaxed, body, n);
			size_t piece = 1 + ((seed = seed * 1103515245u + 12345u) >> 16) % 9;

			b64_sha256(ref.p, ref.n, want);
			if (check(relaxed, -1, body, n, piece, want) != 1) {
				fprintf(stderr, "round %d relaxed %d piece %zu body [%.*s]\n", round, relaxed, piece,
				        (int)n, body);
				fail();
			}
			free(ref.p);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_bodies),
		cmocka_unit_test(test_rfc6376_example),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_bh_syntax),
		cmocka_unit_test(test_random_bodies_any_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

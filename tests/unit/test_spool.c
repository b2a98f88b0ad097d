/* test_spool.c - proxy/spool.c: a message in memory up to MOAT_SPOOL_MEM_MAX,
 * in an unlinked file beyond; reading it back, moving it (whole or with
 * ranges left out) into an evbuffer, and failing for good when the spill
 * file cannot be made. Every byte is checked against a position-dependent
 * pattern, so a shifted, repeated or missing range shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "tests/unit/drain.h"
#include "proxy/lib/bounds.h"
#include "proxy/spool.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define MEM_MAX ((size_t)MOAT_SPOOL_MEM_MAX)
#define END(n) (-(long)(n) - 1) /* an offset n bytes before the end */

/* The byte at offset i of every message here. */
static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 31u + (i >> 8) + (i >> 16) * 7u);
}

static void expect_pattern(const unsigned char *got, size_t off, size_t len, const char *what)
{
	for (size_t i = 0; i < len; i++)
		if (got[i] != pat(off + i))
			fail_msg("%s: byte %zu (offset %zu) is %u, want %u", what, i, off + i, got[i],
			         pat(off + i));
}

/* Write the pattern from offset `from` in chunks of chunk bytes; the
 * return of every spool_write must be 0. */
static void write_pattern(struct spool *sp, size_t from, size_t n, size_t chunk)
{
	unsigned char *buf = malloc(chunk ? chunk : 1);

	assert_non_null(buf);
	while (n > 0) {
		size_t k = n < chunk ? n : chunk;

		for (size_t i = 0; i < k; i++)
			buf[i] = pat(from + i);
		assert_int_equal(spool_write(sp, (const char *)buf, k), 0);
		from += k;
		n -= k;
	}
	free(buf);
}

/* All of out, removed from it. */
static unsigned char *take_all(struct evbuffer *out, size_t *len)
{
	size_t n = evbuffer_get_length(out);
	unsigned char *buf = malloc(n ? n : 1);

	assert_non_null(buf);
	assert_int_equal(evbuffer_remove(out, buf, n), (int)n);
	assert_int_equal(evbuffer_get_length(out), 0);
	*len = n;
	return buf;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own */
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* A fresh spool directory per test; it must be empty again at the end
 * (spill files are unlinked from the start). */
static int setup_dir(void **state)
{
	char *dir = strdup("/tmp/moat-test-spool.XXXXXX");

	if (!dir || !mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int teardown_dir(void **state)
{
	char *dir = *state;
	int n = dir_entries(dir);

	rmdir(dir);
	free(dir);
	return n == 0 ? 0 : -1;
}

/* ---- in memory ---- */

static void test_memory(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *what;
		size_t total, chunk;
	} rows[] = {
		{ "empty", 0, 1 },
		{ "one byte", 1, 1 },
		{ "small", 300, 100 },
		{ "exactly the limit, one write", MEM_MAX, MEM_MAX },
		{ "exactly the limit, many writes", MEM_MAX, 4093 },
		{ "one under the limit", MEM_MAX - 1, MEM_MAX },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct spool *sp = spool_new(dir);
		unsigned char *buf = malloc(rows[i].total + 1);

		assert_non_null(sp);
		assert_non_null(buf);
		assert_int_equal(spool_size(sp), 0);
		write_pattern(sp, 0, rows[i].total, rows[i].chunk);
		if (spool_on_disk(sp))
			fail_msg("row %zu (%s): spilled at %zu bytes", i, rows[i].what, rows[i].total);
		assert_int_equal(spool_failed(sp), 0);
		assert_int_equal(spool_size(sp), rows[i].total);
		assert_int_equal(spool_read(sp, 0, (char *)buf, rows[i].total + 1), (long)rows[i].total);
		expect_pattern(buf, 0, rows[i].total, rows[i].what);
		assert_int_equal(dir_entries(dir), 0);
		free(buf);
		spool_free(sp);
	}
	spool_free(NULL);
}

/* A zero-byte write is a no-op wherever the spool is. */
static void test_zero_write(void **state)
{
	struct spool *sp = spool_new(*state);

	assert_non_null(sp);
	assert_int_equal(spool_write(sp, "", 0), 0);
	assert_int_equal(spool_size(sp), 0);
	write_pattern(sp, 0, MEM_MAX, MEM_MAX);
	assert_int_equal(spool_write(sp, "", 0), 0);
	assert_int_equal(spool_on_disk(sp), 0);
	assert_int_equal(spool_size(sp), MEM_MAX);
	spool_free(sp);
}

/* ---- spilling to a file ---- */

static void test_spill(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *what;
		int null_dir;     /* spool_new(NULL): the default, /tmp */
		size_t before;    /* written first, stays in memory */
		size_t chunk_b;
		size_t crossing;  /* the write that goes past the limit */
		size_t after;     /* more, in chunks of 1000 */
	} rows[] = {
		{ "one write over the limit", 0, 0, 1, MEM_MAX + 1, 0 },
		{ "limit, then one byte", 0, MEM_MAX, MEM_MAX, 1, 0 },
		{ "under, then across", 0, MEM_MAX - 10, 7, 20, 0 },
		{ "one byte, then the limit", 0, 1, 1, MEM_MAX, 0 },
		{ "many small writes, then more", 0, MEM_MAX - 5, 997, 4096, 50000 },
		{ "three times the limit", 0, 0, 1, 3 * MEM_MAX, 1 },
		{ "default directory", 1, 1000, 1000, MEM_MAX, 10 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct spool *sp = spool_new(rows[i].null_dir ? NULL : dir);
		size_t total = rows[i].before + rows[i].crossing + rows[i].after;
		unsigned char *buf = malloc(total + 10);

		assert_non_null(sp);
		assert_non_null(buf);
		write_pattern(sp, 0, rows[i].before, rows[i].chunk_b);
		if (spool_on_disk(sp))
			fail_msg("row %zu (%s): on disk at %zu bytes", i, rows[i].what, rows[i].before);
		write_pattern(sp, rows[i].before, rows[i].crossing, rows[i].crossing);
		if (!spool_on_disk(sp))
			fail_msg("row %zu (%s): still in memory at %zu bytes", i, rows[i].what,
			         rows[i].before + rows[i].crossing);
		write_pattern(sp, rows[i].before + rows[i].crossing, rows[i].after, 1000);
		assert_int_equal(spool_on_disk(sp), 1);
		assert_int_equal(spool_failed(sp), 0);
		assert_int_equal(spool_size(sp), total);
		assert_int_equal(spool_read(sp, 0, (char *)buf, total + 10), (long)total);
		expect_pattern(buf, 0, total, rows[i].what);
		assert_int_equal(dir_entries(dir), 0); /* unlinked */
		free(buf);
		spool_free(sp);
	}
}

/* Reads at offsets around the memory limit and the end, both kinds. */
static void test_read(void **state)
{
	static const struct {
		long off; /* < 0: END(n) */
		size_t len;
	} rows[] = {
		{ 0, 0 },
		{ 0, 1 },
		{ 0, 100 },
		{ 1, 99 },
		{ 4095, 2 },
		{ (long)MEM_MAX - 100, 200 },  /* across the memory limit */
		{ (long)MEM_MAX - 1, 1 },
		{ (long)MEM_MAX, 1 },
		{ (long)MEM_MAX, 5000 },
		{ END(10), 10 },
		{ END(10), 1000 },            /* clamped at the end */
		{ END(1), 1 },
		{ END(0), 10 },               /* at the end: nothing */
		{ 0, 1 << 20 },               /* everything, clamped */
	};
	const size_t sizes[] = { MEM_MAX - 1000, MEM_MAX + 20000 };
	unsigned char *buf = malloc((1 << 20) + 16);

	assert_non_null(buf);
	for (size_t s = 0; s < NROWS(sizes); s++) {
		struct spool *sp = spool_new(*state);
		size_t size = sizes[s];

		assert_non_null(sp);
		write_pattern(sp, 0, size, 65536);
		assert_int_equal(spool_on_disk(sp), size > MEM_MAX);
		for (size_t i = 0; i < NROWS(rows); i++) {
			size_t off = rows[i].off < 0 ? size - (size_t)(-rows[i].off - 1) : (size_t)rows[i].off;
			size_t want;
			long got;
			char what[64];

			if (off > size)
				continue; /* a row for the larger spool only */
			want = rows[i].len < size - off ? rows[i].len : size - off;
			memset(buf, 0xee, rows[i].len + 16);
			got = spool_read(sp, off, (char *)buf, rows[i].len);
			snprintf(what, sizeof what, "size %zu row %zu", size, i);
			if (got != (long)want)
				fail_msg("%s: read(%zu, %zu) = %ld, want %zu", what, off, rows[i].len, got,
				         want);
			expect_pattern(buf, off, want, what);
			for (size_t k = want; k < rows[i].len + 16 && k < want + 16; k++)
				if (buf[k] != 0xee)
					fail_msg("%s: byte %zu written past the %zu read", what, k, want);
		}
		/* past the end */
		assert_int_equal(spool_read(sp, size + 1, (char *)buf, 10), 0);
		assert_int_equal(spool_read(sp, size + 100000, (char *)buf, 10), 0);
		spool_free(sp);
	}
	free(buf);
}

/* ---- a directory where no file can be made ---- */

static void test_spill_fails(void **state)
{
	char file[256];
	int fd;
	static const struct {
		const char *what;
		int use_file;       /* the directory is a regular file */
		const char *dir;
		size_t before;      /* fits in memory: written fine */
	} rows[] = {
		{ "no such directory, after the limit", 0, "/nonexistent/moat-test/spool", MEM_MAX },
		{ "no such directory, first write", 0, "/nonexistent/moat-test/spool", 0 },
		{ "no such directory, after some", 0, "/nonexistent/moat-test/spool", 1000 },
		{ "a file, not a directory", 1, NULL, MEM_MAX },
	};

	snprintf(file, sizeof file, "%s/not-a-dir", (const char *)*state);
	fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	for (size_t i = 0; i < NROWS(rows); i++) {
		struct spool *sp = spool_new(rows[i].use_file ? file : rows[i].dir);
		size_t crossing = MEM_MAX - rows[i].before + 1;
		char *big = calloc(1, crossing);

		assert_non_null(sp);
		assert_non_null(big);
		write_pattern(sp, 0, rows[i].before, 65536);
		assert_int_equal(spool_failed(sp), 0);
		/* the write that has to spill */
		if (spool_write(sp, big, crossing) != -1)
			fail_msg("row %zu (%s): spilling write did not fail", i, rows[i].what);
		if (!spool_failed(sp))
			fail_msg("row %zu (%s): spool_failed not set", i, rows[i].what);
		assert_int_equal(spool_on_disk(sp), 0);
		assert_int_equal(spool_size(sp), rows[i].before);
		/* broken for good: even what would fit, even nothing */
		assert_int_equal(spool_write(sp, "x", 1), -1);
		assert_int_equal(spool_write(sp, "", 0), -1);
		assert_int_equal(spool_failed(sp), 1);
		assert_int_equal(spool_size(sp), rows[i].before);
		free(big);
		spool_free(sp);
	}
	unlink(file);
}

/* ---- moving into an evbuffer ---- */

#define PREFIX "Received: by test\r\n"

struct range {
	long off; /* < 0: END(n) */
	size_t len;
};

/* Build what out must hold: PREFIX, then [0, size) without the ranges. */
static unsigned char *expected(size_t size, const struct spool_range *sk, int n, size_t *len)
{
	unsigned char *e = malloc(sizeof PREFIX - 1 + size + 1);
	size_t o = sizeof PREFIX - 1, pos = 0;

	assert_non_null(e);
	memcpy(e, PREFIX, sizeof PREFIX - 1);
	for (int i = 0; i <= n; i++) {
		size_t end = i < n ? sk[i].off : size;

		for (; pos < end; pos++)
			e[o++] = pat(pos);
		if (i < n)
			pos = sk[i].off + sk[i].len;
	}
	*len = o;
	return e;
}

static void compare(const unsigned char *got, size_t glen, const unsigned char *want,
                    size_t wlen, const char *what)
{
	if (glen != wlen)
		fail_msg("%s: %zu bytes, want %zu", what, glen, wlen);
	for (size_t i = 0; i < wlen; i++)
		if (got[i] != want[i])
			fail_msg("%s: first difference at byte %zu of %zu", what, i, wlen);
}

static const size_t move_sizes[] = { 5000, MEM_MAX, MEM_MAX + 5000 };

static const struct {
	const char *what;
	int n;
	struct range r[4];
} skip_rows[] = {
	{ "nothing skipped", 0, { { 0 } } },
	{ "at the start", 1, { { 0, 10 } } },
	{ "in the middle", 1, { { 100, 50 } } },
	{ "at the end", 1, { { END(20), 20 } } },
	{ "the last byte", 1, { { END(1), 1 } } },
	{ "adjacent", 2, { { 100, 50 }, { 150, 25 } } },
	{ "three adjacent from 0", 3, { { 0, 1 }, { 1, 2 }, { 3, 4 } } },
	{ "start, middle, end", 3, { { 0, 5 }, { 1000, 1 }, { END(7), 7 } } },
	{ "empty range", 2, { { 100, 0 }, { 200, 10 } } },
	{ "everything", 1, { { 0, 0 } } }, /* len filled in: the whole size */
	{ "a page boundary", 2, { { 4090, 12 }, { 4600, 2 } } },
	{ "all but the first and last byte", 1, { { 1, 0 } } }, /* len: size - 2 */
};

static int resolve(size_t size, size_t row, struct spool_range *sk)
{
	for (int k = 0; k < skip_rows[row].n; k++) {
		long off = skip_rows[row].r[k].off;

		sk[k].off = off < 0 ? size - (size_t)(-off - 1) : (size_t)off;
		sk[k].len = skip_rows[row].r[k].len;
	}
	if (strcmp(skip_rows[row].what, "everything") == 0)
		sk[0].len = size;
	if (strncmp(skip_rows[row].what, "all but", 7) == 0)
		sk[0].len = size - 2;
	return skip_rows[row].n;
}

static struct spool *filled(const char *dir, size_t size)
{
	struct spool *sp = spool_new(dir);

	assert_non_null(sp);
	write_pattern(sp, 0, size, 32768);
	assert_int_equal(spool_on_disk(sp), size > MEM_MAX);
	return sp;
}

static void test_move_to(void **state)
{
	int fds = count_fds();

	for (size_t s = 0; s < NROWS(move_sizes) + 1; s++) {
		size_t size = s < NROWS(move_sizes) ? move_sizes[s] : 0;
		struct spool *sp = filled(*state, size);
		struct evbuffer *out = evbuffer_new();
		unsigned char *got, *want;
		size_t glen, wlen;
		char what[64];

		snprintf(what, sizeof what, "move_to, size %zu", size);
		assert_non_null(out);
		evbuffer_add(out, PREFIX, sizeof PREFIX - 1);
		assert_int_equal(spool_move_to(sp, out), 0);
		/* out stands on its own: the spool may go */
		spool_free(sp);
		got = take_all(out, &glen);
		want = expected(size, NULL, 0, &wlen);
		compare(got, glen, want, wlen, what);
		free(got);
		free(want);
		evbuffer_free(out);
	}
	assert_int_equal(count_fds(), fds);
}

static void test_move_skipping(void **state)
{
	int fds = count_fds();

	for (size_t s = 0; s < NROWS(move_sizes); s++) {
		for (size_t row = 0; row < NROWS(skip_rows); row++) {
			size_t size = move_sizes[s];
			struct spool_range sk[4];
			int n = resolve(size, row, sk);
			struct spool *sp = filled(*state, size);
			struct evbuffer *out = evbuffer_new();
			unsigned char *got, *want;
			size_t glen, wlen;
			char what[96];

			snprintf(what, sizeof what, "size %zu (%s), row %zu (%s)", size,
			         size > MEM_MAX ? "file" : "memory", row, skip_rows[row].what);
			assert_non_null(out);
			evbuffer_add(out, PREFIX, sizeof PREFIX - 1);
			if (spool_move_skipping(sp, out, sk, n) != 0)
				fail_msg("%s: returned an error", what);
			spool_free(sp);
			got = take_all(out, &glen);
			want = expected(size, sk, n, &wlen);
			compare(got, glen, want, wlen, what);
			free(got);
			free(want);
			evbuffer_free(out);
		}
	}
	assert_int_equal(count_fds(), fds);
}

/* Ranges that are not sorted, overlap or leave the message: -1. */
static void test_move_skipping_bad(void **state)
{
	static const struct {
		const char *what;
		int n;
		struct range r[3];
	} rows[] = {
		{ "overlapping", 2, { { 100, 50 }, { 120, 10 } } },
		{ "not sorted", 2, { { 200, 10 }, { 100, 10 } } },
		{ "past the end", 1, { { END(5), 10 } } },
		{ "starting past the end", 1, { { END(0), 0 } } }, /* off = size + 1 below */
		{ "second past the end", 2, { { 0, 1 }, { END(0), 5 } } },
	};
	int fds = count_fds();

	for (size_t s = 0; s < NROWS(move_sizes); s++) {
		for (size_t i = 0; i < NROWS(rows); i++) {
			size_t size = move_sizes[s];
			struct spool_range sk[3];
			struct spool *sp = filled(*state, size);
			struct evbuffer *out = evbuffer_new();

			for (int k = 0; k < rows[i].n; k++) {
				long off = rows[i].r[k].off;

				sk[k].off = off < 0 ? size - (size_t)(-off - 1) : (size_t)off;
				sk[k].len = rows[i].r[k].len;
			}
			if (strcmp(rows[i].what, "starting past the end") == 0)
				sk[0].off = size + 1;
			if (spool_move_skipping(sp, out, sk, rows[i].n) != -1)
				fail_msg("size %zu row %zu (%s): accepted", size, i, rows[i].what);
			spool_free(sp);
			evbuffer_free(out);
		}
	}
	assert_int_equal(count_fds(), fds);
}

/* spool.h: "The spool is empty afterwards" - for both moves, both kinds. */
static void test_move_empties(void **state)
{
	int bad = 0;

	for (int skipping = 0; skipping < 2; skipping++) {
		for (size_t s = 0; s < NROWS(move_sizes); s++) {
			size_t size = move_sizes[s];
			struct spool *sp = filled(*state, size);
			struct evbuffer *out = evbuffer_new();
			struct spool_range sk = { 10, 5 };
			char buf[16];
			long r;

			assert_int_equal(skipping ? spool_move_skipping(sp, out, &sk, 1) :
			                            spool_move_to(sp, out),
			                 0);
			r = spool_read(sp, 0, buf, sizeof buf);
			if (spool_size(sp) != 0 || spool_on_disk(sp) || r != 0) {
				print_error("%s, %s spool of %zu: afterwards size %zu, on_disk %d, "
				            "read(0) %ld; want 0, 0, 0\n",
				            skipping ? "spool_move_skipping" : "spool_move_to",
				            size > MEM_MAX ? "file" : "memory", size, spool_size(sp),
				            spool_on_disk(sp), r);
				bad++;
			}
			spool_free(sp);
			evbuffer_free(out);
		}
	}
	if (bad)
		fail_msg("%d of %zu cases not empty", bad, 2 * NROWS(move_sizes));
}

/* The production path: an output that drains to a socket sends file
 * segments with sendfile (offsets from the segment, not materialised). */
static unsigned char *drain_to_socket(struct evbuffer *out, size_t *len)
{
	unsigned char *buf = drain_evbuffer(out, len);

	if (!buf)
		fail_msg("draining the output into a socket failed");
	return buf;
}

static void test_move_sendfile(void **state)
{
	int fds = count_fds();

	for (size_t row = 0; row < NROWS(skip_rows); row++) {
		for (int whole = 0; whole < 2; whole++) {
			size_t size = MEM_MAX + 5000;
			struct spool_range sk[4];
			int n = whole ? 0 : resolve(size, row, sk);
			struct spool *sp = filled(*state, size);
			struct evbuffer *out = evbuffer_new();
			unsigned char *got, *want;
			size_t glen, wlen;
			char what[96];

			if (whole && row > 0) {
				spool_free(sp);
				evbuffer_free(out);
				continue;
			}
			snprintf(what, sizeof what, "sendfile, %s, row %zu (%s)",
			         whole ? "move_to" : "move_skipping", row, skip_rows[row].what);
			assert_non_null(out);
			assert_int_equal(evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD), 0);
			evbuffer_add(out, PREFIX, sizeof PREFIX - 1);
			assert_int_equal(whole ? spool_move_to(sp, out) :
			                         spool_move_skipping(sp, out, sk, n),
			                 0);
			spool_free(sp);
			got = drain_to_socket(out, &glen);
			want = expected(size, sk, n, &wlen);
			compare(got, glen, want, wlen, what);
			free(got);
			free(want);
			evbuffer_free(out);
		}
	}
	assert_int_equal(count_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_zero_write, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_spill, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_read, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_spill_fails, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_move_to, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_move_skipping, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_move_skipping_bad, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_move_empties, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_move_sendfile, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

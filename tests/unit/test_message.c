/* test_message.c - proxy/message.c: the whole end-of-data assembly, from
 * the client's DATA bytes to what the backend's connection sends (drained
 * through a real socket, so spool files go out with sendfile).
 *
 * The invariant: exactly the client's message in wire form, with only our
 * fields added and forged Authentication-Results fields removed whole, and
 * no ambiguous end of data. Checked on the smuggling carrier of issue 11 (a
 * forged field whose end of line falls around every window and buffer
 * edge), on forged fields of every length around those edges, with the
 * message in memory and in a file, fed in the chunk sizes a session sees;
 * and all of it again as a TLS connection takes the message (no sendfile:
 * the spool file mapped into memory, read the way libevent's OpenSSL
 * bufferevent reads its output, with evbuffer_peek). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "proxy/lib/dataparse.h"
#include "tests/unit/drain.h"
#include "proxy/lib/hdrscan.h"
#include "proxy/lib/bounds.h"
#include "proxy/message.h"
#include "tests/unit/msgref.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define HOST "mx.example"

static const char PREFIX[] =
	"Authentication-Results: mx.example; spf=pass smtp.mailfrom=a@sender.example\r\n"
	"Received: from client.example ([192.0.2.1])\r\n\tby mx.example (moat) with ESMTP id 1.1;\r\n"
	"\tMon, 7 Dec 2026 17:00:00 +0000\r\n";

enum spool_mode { SPOOL_DEFAULT, SPOOL_FILE };

/* The second group: the message goes to a TLS connection. */
static int tls_path;

/* All of out as libevent's TLS writer sees it (evbuffer_peek, then drain). */
static unsigned char *peek_evbuffer(struct evbuffer *out, size_t *len)
{
	size_t n = evbuffer_get_length(out), used = 0;
	int nv = evbuffer_peek(out, -1, NULL, NULL, 0);
	struct evbuffer_iovec *v = calloc(nv > 0 ? (size_t)nv : 1, sizeof *v);
	unsigned char *buf = malloc(n + 1);

	assert_non_null(v);
	assert_non_null(buf);
	assert_int_equal(evbuffer_peek(out, -1, NULL, v, nv), nv);
	for (int i = 0; i < nv; i++) {
		assert_non_null(v[i].iov_base);
		memcpy(buf + used, v[i].iov_base, v[i].iov_len);
		used += v[i].iov_len;
	}
	assert_int_equal(used, n);
	evbuffer_drain(out, n);
	free(v);
	*len = n;
	return buf;
}

struct sent {
	unsigned char *bytes;
	size_t len;
	enum message_status st;
	int on_disk;
	int ndrop;
};

/* The client's bytes after 354 (through its CRLF.CRLF) fed in chunks of
 * chunk bytes; then end, send with our prefix, drain. */
static struct sent run(const char *client, size_t len, size_t chunk, enum spool_mode mode,
                       const char *prefix, size_t plen)
{
	struct message m;
	struct sent r = { NULL, 0, MSG_OK, 0, 0 };
	size_t pos = 0;
	int done = 0;

	assert_int_equal(message_begin(&m, "/tmp", (size_t)1 << 30, HOST), 0);
	if (mode == SPOOL_FILE)
		spool_set_mem_max(m.spool, 0);
	while (pos < len && !done) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		size_t used = message_feed(&m, client + pos, n, &done);

		assert_true(used == n || done);
		pos += used;
	}
	assert_true(done);
	assert_int_equal(pos, len); /* the end of data is the client's last byte */
	r.st = message_end(&m);
	r.on_disk = spool_on_disk(m.spool);
	r.ndrop = m.ndrop;
	if (r.st == MSG_OK) {
		struct evbuffer *out = evbuffer_new();

		assert_non_null(out);
		if (!tls_path)
			assert_int_equal(evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD), 0);
		assert_int_equal(message_send(&m, prefix, plen, out, !tls_path), 0);
		r.bytes = tls_path ? peek_evbuffer(out, &r.len) : drain_evbuffer(out, &r.len);
		assert_non_null(r.bytes);
		evbuffer_free(out);
	}
	message_free(&m);
	return r;
}

static void emit_mem(void *ctx, const char *p, size_t n)
{
	struct evbuffer *b = ctx;

	evbuffer_add(b, p, n);
}

/* The client's message in wire form, as dataparse makes it. */
static unsigned char *wire_form(const char *client, size_t len, size_t *wlen)
{
	struct data_parser dp;
	struct evbuffer *b = evbuffer_new();
	unsigned char *w;
	int done = 0;

	assert_non_null(b);
	data_parser_init(&dp);
	data_feed(&dp, client, len, emit_mem, b, &done);
	assert_true(done);
	*wlen = evbuffer_get_length(b);
	w = malloc(*wlen + 1);
	assert_non_null(w);
	evbuffer_remove(b, w, *wlen);
	evbuffer_free(b);
	return w;
}

/* What was sent is the reference's answer, and safe for any receiver. */
static void check_sent(const struct sent *r, const char *client, size_t len, const char *what)
{
	size_t wlen, elen = 0;
	unsigned char *w = wire_form(client, len, &wlen);
	unsigned char *e = ref_expected(w, wlen, HOST, PREFIX, sizeof PREFIX - 1, &elen);

	assert_non_null(e);
	if (!ref_wire_safe(r->bytes, r->len))
		fail_msg("%s: the bytes sent are not whole CRLF lines free of a lone dot", what);
	if (r->len != elen || memcmp(r->bytes, e, elen) != 0) {
		size_t i = 0;

		while (i < elen && i < r->len && r->bytes[i] == e[i])
			i++;
		fail_msg("%s: sent %zu bytes, expected %zu; first difference at %zu", what, r->len, elen, i);
	}
	free(w);
	free(e);
}

/* The carrier of issue 11: a forged field ends "...a.\r\n" with its dot at
 * message offset dot, followed by a whole second transaction as its next
 * lines; body padding after it brings the message to at least total bytes. */
static char *carrier(size_t dot, size_t total, size_t *len, size_t *ar_off, size_t *ar_end)
{
	static const char head[] = "From: <a@sender.example>\r\nTo: <bob@test.example>\r\n"
	                           "Subject: carrier\r\nMessage-ID: <1@sender.example>\r\n";
	static const char ar[] = "Authentication-Results: mx.example; spf=pass smtp.mailfrom=x; x=";
	static const char smuggled[] = "MAIL FROM:<smuggled@sender.example>\r\n"
	                               "RCPT TO:<alice@local.example>\r\nRCPT TO:<victim@remote.example>\r\n"
	                               "DATA\r\nSubject: smuggled\r\n\r\nsmuggled text\r\n";
	static const char pad[] = "padding line of the carrier's body, to spill the spool\r\n";
	size_t cap = dot + total + 4096, n;
	char *b = malloc(cap);

	assert_non_null(b);
	assert_true(dot > sizeof head + sizeof ar);
	memcpy(b, head, sizeof head - 1);
	*ar_off = sizeof head - 1;
	memcpy(b + *ar_off, ar, sizeof ar - 1);
	n = *ar_off + sizeof ar - 1;
	memset(b + n, 'a', dot - n);
	memcpy(b + dot, ".\r\n", 3);
	*ar_end = dot + 3;
	n = *ar_end;
	memcpy(b + n, smuggled, sizeof smuggled - 1);
	n += sizeof smuggled - 1;
	while (n < total) {
		memcpy(b + n, pad, sizeof pad - 1);
		n += sizeof pad - 1;
	}
	memcpy(b + n, ".\r\n", 3);
	*len = n + 3;
	return b;
}

/* Every window and buffer edge moat has had or has: the head the scanner
 * keeps, evbuffer chains, the old 64 KiB scan, the client input bound, the
 * memory spool, twice and four times 64 KiB. */
static const size_t edges[] = { HDRSCAN_HEAD_MAX, 4096, 65536, MOAT_CLIENT_INPUT_MAX, 131072,
                                MOAT_SPOOL_MEM_MAX, 262144 };

static void test_carrier_at_every_edge(void **state)
{
	static const size_t chunks[] = { MOAT_CLIENT_INPUT_MAX, 4093 };
	int cases = 0;

	for (size_t e = 0; e < NROWS(edges); e++) {
		/* dot at edge-3 .. edge+2: the dot, the CR or the LF on the edge */
		for (size_t dot = edges[e] - 3; dot <= edges[e] + 2; dot++) {
			for (int big = 0; big < 2; big++) {
				size_t len, ar_off, ar_end;
				char *c = carrier(dot, big ? MOAT_SPOOL_MEM_MAX + 40000 : 0, &len, &ar_off, &ar_end);

				for (size_t k = 0; k < NROWS(chunks); k++) {
					for (int mode = SPOOL_DEFAULT; mode <= SPOOL_FILE; mode++) {
						char what[160];
						struct sent r = run(c, len, chunks[k], mode, PREFIX, sizeof PREFIX - 1);
						size_t want = sizeof PREFIX - 1 + len - 3 - (ar_end - ar_off);

						snprintf(what, sizeof what, "dot at %zu, %zu bytes, chunks of %zu, %s", dot,
						         len, chunks[k], r.on_disk ? "file" : "memory");
						assert_int_equal(r.st, MSG_OK);
						assert_int_equal(r.ndrop, 1);
						assert_int_equal(r.on_disk, mode == SPOOL_FILE || len - 3 > MOAT_SPOOL_MEM_MAX);
						/* exactly: prefix, the client's bytes before the field and after it */
						if (r.len != want || memcmp(r.bytes, PREFIX, sizeof PREFIX - 1) ||
						    memcmp(r.bytes + sizeof PREFIX - 1, c, ar_off) ||
						    memcmp(r.bytes + sizeof PREFIX - 1 + ar_off, c + ar_end, len - 3 - ar_end))
							fail_msg("%s: not the message without the forged field", what);
						check_sent(&r, c, len, what);
						free(r.bytes);
						cases++;
					}
				}
				free(c);
			}
		}
	}
	print_message("%d carrier cases\n", cases);
}

/* Forged and foreign Authentication-Results fields of every length around
 * the edges, among other fields, folded or not: forged ones go whole,
 * foreign ones stay whole. */
static void test_field_lengths(void **state)
{
	int cases = 0;

	for (size_t e = 0; e < NROWS(edges); e++) {
		for (size_t flen = edges[e] - 2; flen <= edges[e] + 2; flen++) {
			for (int v = 0; v < 4; v++) {
				int forged = v & 1, folded = v & 2;
				const char *name = forged ? "Authentication-Results: mx.example; x="
				                          : "Authentication-Results: other.example; x=";
				size_t nl = strlen(name), len = 0, cap = flen + 512;
				char *c = malloc(cap), what[128];
				struct sent r;

				assert_non_null(c);
				len += (size_t)sprintf(c, "From: <a@sender.example>\r\n");
				memcpy(c + len, name, nl);
				memset(c + len + nl, 'b', flen - nl - 2);
				for (size_t k = 900; folded && k + 3 < flen - 2; k += 997)
					memcpy(c + len + k, "\r\n ", 3);
				memcpy(c + len + flen - 2, "\r\n", 2);
				len += flen;
				len += (size_t)sprintf(c + len, "Subject: x\r\n\r\n.line\r\nbody\r\n.\r\n");
				snprintf(what, sizeof what, "%s field of %zu bytes%s", forged ? "forged" : "foreign",
				         flen, folded ? ", folded" : "");
				for (int mode = SPOOL_DEFAULT; mode <= SPOOL_FILE; mode++) {
					r = run(c, len, MOAT_CLIENT_INPUT_MAX, mode, PREFIX, sizeof PREFIX - 1);
					assert_int_equal(r.st, MSG_OK);
					assert_int_equal(r.ndrop, forged);
					check_sent(&r, c, len, what);
					free(r.bytes);
					cases++;
				}
				free(c);
			}
		}
	}
	print_message("%d field-length cases\n", cases);
}

/* Byte by byte, with bare line ends and dot lines around forged fields:
 * still the reference's answer. */
static void test_small_messages(void **state)
{
	static const char *const msgs[] = {
		"Authentication-Results: mx.example; spf=pass\r\n\r\nbody\r\n.\r\n",
		"A: 1\r\nAuthentication-Results: mx.example;\r\n\tdkim=pass\r\nB: 2\r\n\r\n.\r\n",
		"Authentication-Results: mx.example; a\n.\nMAIL FROM:<x@y>\r\n\r\nb\r\n.\r\n",
		"Authentication-Results: mx.example; a\r.\rMAIL FROM:<x@y>\r\n.\r\n",
		"Authentication-Results: mx.example; a\r\n..\r\n\r\n.\r\n",
		"..Authentication-Results: mx.example; a\r\n\r\n.\r\n",
		"Authentication-Results: mx.example; a\r\n \r\n.x\r\n\r\n.\r\n",
		"\r\nAuthentication-Results: mx.example; a\r\n.\r\n",
		"Authentication-Results: mx.example\r\n.\r\n",
		".\r\n",
	};

	for (size_t i = 0; i < NROWS(msgs); i++) {
		for (size_t chunk = 1; chunk <= 7; chunk += 3) {
			for (int mode = SPOOL_DEFAULT; mode <= SPOOL_FILE; mode++) {
				char what[64];
				struct sent r = run(msgs[i], strlen(msgs[i]), chunk, mode, PREFIX, sizeof PREFIX - 1);

				snprintf(what, sizeof what, "message %zu, chunks of %zu", i, chunk);
				assert_int_equal(r.st, MSG_OK);
				check_sent(&r, msgs[i], strlen(msgs[i]), what);
				free(r.bytes);
			}
		}
	}
}

/* NUL anywhere, in the smuggling shapes too: refused, nothing sent. */
static void test_nul_refused(void **state)
{
	static const struct {
		const char *b;
		size_t len;
	} rows[] = {
#define R(s) { s, sizeof s - 1 }
		R("Subject: x\r\n\r\nbody\r\n\0.\r\nMAIL FROM:<e@x>\r\n.\r\n"),
		R("Subject: x\r\n\r\nbody\r\n.\0\r\nMAIL FROM:<e@x>\r\n.\r\n"),
		R("Subject: x\r\n\r\nbody\0\r\n.\r\n"),
		R("Sub\0ject: x\r\n\r\n.\r\n"),
		R("Subject: x\r\n\r\nbody\r\0\n\r\n.\r\n"),
#undef R
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		for (int mode = SPOOL_DEFAULT; mode <= SPOOL_FILE; mode++) {
			struct sent r = run(rows[i].b, rows[i].len, 3, mode, PREFIX, sizeof PREFIX - 1);

			if (r.st != MSG_NUL)
				fail_msg("row %zu: status %d, want MSG_NUL", i, r.st);
			assert_null(r.bytes);
		}
	}
}

/* MOAT_AUTHRES_DROP_MAX forged fields are all removed; one more refuses the
 * message rather than pass a forgery on. */
static void test_forged_count(void **state)
{
	for (int extra = 0; extra < 2; extra++) {
		size_t n = MOAT_AUTHRES_DROP_MAX + (size_t)extra, len = 0;
		char *c = malloc(n * 48 + 64);
		struct sent r;

		assert_non_null(c);
		for (size_t i = 0; i < n; i++)
			len += (size_t)sprintf(c + len, "Authentication-Results: mx.example; n=%zu\r\n", i);
		len += (size_t)sprintf(c + len, "Subject: x\r\n\r\nbody\r\n.\r\n");
		r = run(c, len, 4096, SPOOL_DEFAULT, PREFIX, sizeof PREFIX - 1);
		if (extra) {
			assert_int_equal(r.st, MSG_FORGED_TOO_MANY);
		} else {
			assert_int_equal(r.st, MSG_OK);
			assert_int_equal(r.ndrop, n);
			check_sent(&r, c, len, "all forged fields");
			free(r.bytes);
		}
		free(c);
	}
}

/* Our own fields are dot-stuffed like the client's lines; fields that are
 * not whole CRLF lines, or a removal that is not whole lines, stop the
 * message: nothing is added to the output. */
static void test_guards(void **state)
{
	static const char msg[] = "Authentication-Results: mx.example; a\r\nSubject: x\r\n\r\nbody\r\n.\r\n";
	static const char *const bad_prefix[] = { "X: a\nY: b\r\n", "X: a\r\n\r", "X: a", "X: a\rb\r\n" };
	struct message m;
	struct evbuffer *out = evbuffer_new();
	unsigned char *got;
	size_t glen;
	int done;

	assert_non_null(out);
	for (size_t i = 0; i < NROWS(bad_prefix) + 2; i++) {
		assert_int_equal(message_begin(&m, "/tmp", 1 << 20, HOST), 0);
		assert_int_equal(message_feed(&m, msg, sizeof msg - 1, &done), sizeof msg - 1);
		assert_int_equal(message_end(&m), MSG_OK);
		assert_int_equal(m.ndrop, 1);
		if (i < NROWS(bad_prefix)) {
			assert_int_equal(message_send(&m, bad_prefix[i], strlen(bad_prefix[i]), out, 1), -1);
		} else {
			/* a removal off the line grid (as a bug would make it) */
			m.drop[0].off += i == NROWS(bad_prefix) ? 1 : 0;
			m.drop[0].len -= 1;
			assert_int_equal(message_send(&m, "X: a\r\n", 6, out, 1), -1);
		}
		assert_int_equal(evbuffer_get_length(out), 0);
		message_free(&m);
	}
	/* a field of ours that starts with a dot goes out stuffed */
	assert_int_equal(message_begin(&m, "/tmp", 1 << 20, HOST), 0);
	assert_int_equal(message_feed(&m, msg, sizeof msg - 1, &done), sizeof msg - 1);
	assert_int_equal(message_end(&m), MSG_OK);
	assert_int_equal(message_send(&m, ".X: a\r\n.\r\n", 10, out, 1), 0);
	got = drain_evbuffer(out, &glen);
	assert_non_null(got);
	assert_true(ref_wire_safe(got, glen));
	assert_memory_equal(got, "..X: a\r\n..\r\nSubject: x\r\n\r\nbody\r\n", glen);
	free(got);
	message_free(&m);
	evbuffer_free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_carrier_at_every_edge),
		cmocka_unit_test(test_field_lengths),
		cmocka_unit_test(test_small_messages),
		cmocka_unit_test(test_nul_refused),
		cmocka_unit_test(test_forged_count),
		cmocka_unit_test(test_guards),
	};

	int failed = cmocka_run_group_tests_name("sendfile", tests, NULL, NULL);

	tls_path = 1;
	return failed + cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}

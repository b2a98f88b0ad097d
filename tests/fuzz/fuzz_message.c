/* fuzz_message.c - libFuzzer: the whole end-of-data assembly (proxy/message.c)
 * from the client's DATA bytes to what the backend's socket receives.
 *
 * Input: byte 0 flags (bit 0: spool file from the first byte; bits 1-2: the
 * chunk size the bytes arrive in; bit 3: a run of bytes inserted; bit 4: a
 * line of our own from the input after the prefix); with bit 3, bytes 1-5
 * give the run (position, length x 8 up to 512 KiB, the byte), so fields
 * longer than every window and buffer are cheap to reach. The rest is the
 * client's DATA stream; CRLF.CRLF is appended until the message ends.
 * Invariants (abort on violation):
 *  - refused for NUL exactly when the message holds a NUL byte;
 *  - message_send succeeds exactly when our prefix is whole CRLF lines;
 *  - then the socket gets exactly the reference's bytes (msgref.h: the
 *    prefix dot-stuffed, the client's wire-form message without the header
 *    fields that claim our id), whole CRLF lines without a lone dot. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "tests/unit/drain.h"
#include "tests/unit/msgref.h"
#include "proxy/lib/dataparse.h"
#include "proxy/lib/log.h"
#include "proxy/message.h"

#define HOST "mx.example"
#define RUN_MAX (512u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* message_send logs each refusal: not for a fuzzer's millions of them */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_open(LOG_TO_FILE, "/dev/null");
	return 0;
}

static const char PREFIX[] = "Authentication-Results: mx.example; spf=pass\r\n"
                             "Received: from x ([192.0.2.1])\r\n\tby mx.example (moat) with ESMTP id 1.1;\r\n"
                             "\tMon, 7 Dec 2026 17:00:00 +0000\r\n";

static void emit_mem(void *ctx, const char *p, size_t n)
{
	evbuffer_add(ctx, p, n);
}

/* The client's stream: the input with its run, then terminators. */
static char *client_bytes(const uint8_t *d, size_t n, int flags, const uint8_t *run, size_t *len)
{
	size_t pos = 0, rl = 0;
	char *c;

	if (flags & 8) {
		pos = n ? ((size_t)run[0] | (size_t)run[1] << 8) % (n + 1) : 0;
		rl = (((size_t)run[2] | (size_t)run[3] << 8) * 8) % RUN_MAX;
	}
	c = malloc(n + rl + 3 * 5);
	if (!c)
		abort();
	memcpy(c, d, pos);
	memset(c + pos, flags & 8 ? run[4] : 0, rl);
	memcpy(c + pos + rl, d + pos, n - pos);
	for (int k = 0; k < 3; k++)
		memcpy(c + n + rl + 5 * (size_t)k, "\r\n.\r\n", 5);
	*len = n + rl + 15;
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = { 1, 7, 4096, 65536 };
	struct data_parser dp;
	struct message m;
	struct evbuffer *wire, *out;
	char prefix[sizeof PREFIX + 80];
	size_t clen, plen = sizeof PREFIX - 1, pos = 0, wlen, elen = 0, olen = 0, chunk;
	unsigned char *w, *e, *o;
	char *c;
	int flags, done = 0, wdone = 0, hdr = 6;

	if (size < (size_t)hdr)
		return 0;
	flags = data[0];
	c = client_bytes(data + hdr, size - hdr, flags, data + 1, &clen);
	memcpy(prefix, PREFIX, plen);
	if (flags & 16) { /* a tag line of the input's: whole lines or refused */
		size_t t = clen < 64 ? clen : 64;

		memcpy(prefix + plen, c, t);
		plen += t;
	}
	/* the reference's view: the wire form, by dataparse alone */
	wire = evbuffer_new();
	data_parser_init(&dp);
	data_feed(&dp, c, clen, emit_mem, wire, &wdone);
	if (!wdone)
		abort(); /* three CRLF.CRLF always end a message */
	wlen = evbuffer_get_length(wire);
	w = malloc(wlen + 1);
	evbuffer_remove(wire, w, wlen);
	evbuffer_free(wire);

	if (message_begin(&m, "/tmp", (size_t)1 << 30, HOST) < 0)
		abort();
	if (flags & 1)
		spool_set_mem_max(m.spool, 0);
	chunk = chunks[(flags >> 1) & 3];
	if (clen > 16384 && chunk < 4096)
		chunk = 4096; /* a byte at a time through a file is a write(2) a byte: too slow to fuzz */
	while (!done && pos < clen) {
		size_t n = clen - pos < chunk ? clen - pos : chunk;
		size_t used = message_feed(&m, c + pos, n, &done);

		if (used != n && !done)
			abort();
		pos += used;
	}
	if (!done)
		abort();
	switch (message_end(&m)) {
	case MSG_NUL:
		if (!memchr(w, 0, wlen))
			abort();
		goto out;
	case MSG_OK:
		if (memchr(w, 0, wlen))
			abort();
		break;
	case MSG_FORGED_TOO_MANY: /* more than the fuzzer's inputs hold */
	default:
		abort();
	}
	out = evbuffer_new();
	evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
	if (message_send(&m, prefix, plen, out, 1) < 0) {
		if (wire_lines_ok(prefix, plen) || evbuffer_get_length(out) != 0)
			abort();
		evbuffer_free(out);
		goto out;
	}
	if (!wire_lines_ok(prefix, plen))
		abort();
	o = drain_evbuffer(out, &olen);
	e = ref_expected(w, wlen, HOST, prefix, plen, &elen);
	if (!o || !e || !ref_wire_safe(o, olen) || olen != elen || memcmp(o, e, olen) != 0)
		abort();
	free(o);
	free(e);
	evbuffer_free(out);
out:
	message_free(&m);
	free(w);
	free(c);
	return 0;
}

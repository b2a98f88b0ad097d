/* header.c - a message's header section, read once (see header.h) */
#include <stdlib.h>
#include <string.h>

#include "checks/header.h"
#include "proxy/lib/dataparse.h"
#include "proxy/lib/hdrscan.h"

#define HEADER_READ_CHUNK 16384

struct out {
	struct msg_header *h;
	size_t cap, max;
};

static void keep(void *arg, const char *p, size_t n)
{
	struct out *o = arg;
	struct msg_header *h = o->h;

	if (h->len + n > o->max) {
		n = o->max - h->len;
		h->truncated = 1;
	}
	if (h->len + n > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4096;
		char *b;

		while (cap < h->len + n)
			cap *= 2;
		if (cap > o->max)
			cap = o->max;
		if (!(b = realloc(h->buf, cap ? cap : 1))) {
			h->truncated = 1; /* no memory: what we have */
			return;
		}
		h->buf = b;
		o->cap = cap;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
}

static void no_field(void *arg, const struct hdr_field *f)
{
}

int msg_header_read(msg_reader rd, void *rarg, size_t msglen, size_t max, struct msg_header *h)
{
	struct out o = {h, 0, max};
	struct hdrscan hs;
	char chunk[HEADER_READ_CHUNK];
	size_t off = 0;
	int at_bol = 1;

	memset(h, 0, sizeof *h);
	hdrscan_init(&hs, no_field, NULL);
	while (off < msglen && !h->truncated) {
		size_t want = msglen - off < sizeof chunk ? msglen - off : sizeof chunk, take;
		long n = rd(rarg, off, chunk, want);

		if (n < 0) {
			msg_header_free(h);
			return -1;
		}
		if (n == 0)
			break;
		hdrscan_feed(&hs, chunk, (size_t)n);
		take = hs.hdr_end ? hs.hdr_end - off : (size_t)n; /* the header ends in this chunk */
		data_unstuff(chunk, take, &at_bol, keep, &o);
		off += take;
		if (hs.hdr_end) {
			h->complete = 1;
			break;
		}
	}
	h->wire_end = off;
	return 0;
}

void msg_header_free(struct msg_header *h)
{
	free(h->buf);
	h->buf = NULL;
	h->len = 0;
}

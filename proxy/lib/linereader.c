/* linereader.c - bounded SMTP command lines (see linereader.h) */
#include <event2/buffer.h>

#include "proxy/lib/linereader.h"

enum line_read line_read(struct line_reader *r, struct evbuffer *in, char *line, size_t *len)
{
	size_t eol_len = 0, have = evbuffer_get_length(in);
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);

	if (p.pos < 0) {
		/* Sanity check: we don't want to store infinitely long commands. */
		if (have <= r->max)
			return LINE_MORE;
		evbuffer_drain(in, have);
		if (r->discarding)
			return LINE_MORE;
		r->discarding = 1;
		return LINE_TOO_LONG;
	}
	if (r->discarding || (size_t)p.pos + eol_len > r->max) {
		int was = r->discarding;

		evbuffer_drain(in, (size_t)p.pos + eol_len);
		r->discarding = 0;
		return was ? LINE_SKIPPED : LINE_TOO_LONG;
	}
	evbuffer_remove(in, line, (size_t)p.pos);
	evbuffer_drain(in, eol_len);
	line[p.pos] = '\0';
	*len = (size_t)p.pos;
	return LINE_OK;
}

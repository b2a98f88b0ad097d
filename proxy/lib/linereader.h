/* linereader.h - SMTP command lines out of a connection's input buffer,
 * bounded: a line over the limit is answered once and skipped to its end */
#ifndef MOAT_LINEREADER_H
#define MOAT_LINEREADER_H

#include <stddef.h>

struct evbuffer;

enum line_read {
	LINE_OK,       /* a whole line, CRLF removed, NUL-terminated */
	LINE_MORE,     /* no whole line yet: wait for input */
	LINE_TOO_LONG, /* a line over the limit: refuse it (once); the rest of it is skipped */
	LINE_SKIPPED,  /* the end of a line already refused went by */
};

struct line_reader {
	size_t max;     /* longest line, CRLF included */
	int discarding; /* inside a refused line */
};

/* Take the next line from in into line (max + 1 bytes); *len its length
 * (a line may hold NUL bytes: the caller decides what they mean). Bytes of
 * an over-long line are drained as they come, never stored. */
enum line_read line_read(struct line_reader *r, struct evbuffer *in, char *line, size_t *len);

#endif

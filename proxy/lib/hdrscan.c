/* hdrscan.c - incremental header-section scanner (see hdrscan.h) */
#include <string.h>

#include "proxy/lib/hdrscan.h"

enum { HS_BOL, HS_LINE, HS_DONE };

void hdrscan_init(struct hdrscan *h, hdrscan_fn cb, void *arg)
{
	memset(h, 0, offsetof(struct hdrscan, head));
	h->state = HS_BOL;
	h->cb = cb;
	h->arg = arg;
}

static void field_end(struct hdrscan *h)
{
	struct hdr_field f;

	if (!h->in_field)
		return;
	h->in_field = 0;
	f.off = h->field_off;
	f.len = h->line_off - h->field_off;
	f.head = h->head;
	f.head_len = h->head_len;
	f.truncated = h->truncated;
	h->cb(h->arg, &f);
}

/* A line begins with c: a continuation of the current field, or the end of
 * that field and the start of the next (or of the empty line). */
static void line_start(struct hdrscan *h, char c)
{
	h->line_off = h->off;
	h->line_first = c;
	if ((c == ' ' || c == '\t') && h->in_field)
		return;
	field_end(h);
	h->in_field = 1;
	h->field_off = h->off;
	h->head_len = 0;
	h->truncated = 0;
}

static void keep_head(struct hdrscan *h, const char *p, size_t n)
{
	size_t room = HDRSCAN_HEAD_MAX - h->head_len;

	if (n > room) {
		n = room;
		h->truncated = 1;
	}
	memcpy(h->head + h->head_len, p, n);
	h->head_len += n;
}

void hdrscan_feed(struct hdrscan *h, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && h->state != HS_DONE) {
		const char *lf;
		size_t end;

		if (h->state == HS_BOL) {
			line_start(h, p[i]);
			h->state = HS_LINE;
		}
		lf = memchr(p + i, '\n', n - i);
		end = lf ? (size_t)(lf - p) + 1 : n;
		keep_head(h, p + i, end - i);
		h->off += end - i;
		i = end;
		if (!lf)
			break;
		h->state = HS_BOL;
		/* "\r\n" (or a bare "\n") alone: the empty line, the header's end */
		if (h->field_off == h->line_off &&
		    (h->off - h->line_off == 1 || (h->off - h->line_off == 2 && h->line_first == '\r'))) {
			h->in_field = 0;
			h->hdr_end = h->off;
			h->state = HS_DONE;
		}
	}
}

void hdrscan_finish(struct hdrscan *h)
{
	if (h->state == HS_BOL) {
		h->line_off = h->off; /* the last field ends where the message does */
		field_end(h);
	}
	h->state = HS_DONE;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int hdrscan_value(const struct hdr_field *f, const char *name, char *out, size_t size)
{
	const char *h = f->head;
	size_t n = strlen(name), len = f->head_len, i, o = 0;

	if (len <= n || size == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)h[i]) != lower((unsigned char)name[i]))
			return 0;
	while (i < len && is_blank(h[i]))
		i++;
	if (i >= len || h[i++] != ':')
		return 0;
	while (i < len && (is_blank(h[i]) || h[i] == '\r' || h[i] == '\n'))
		i++;
	for (; i < len && o + 1 < size; i++)
		if (h[i] != '\r' && h[i] != '\n')
			out[o++] = h[i];
	while (i < len && (h[i] == '\r' || h[i] == '\n'))
		i++;
	/* cut inside a character: drop its first bytes too */
	if (i < len && ((unsigned char)h[i] & 0xc0) == 0x80) {
		while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
			o--;
	}
	while (o > 0 && is_blank(out[o - 1]))
		o--;
	out[o] = '\0';
	return 1;
}

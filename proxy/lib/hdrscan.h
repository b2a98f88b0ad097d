/* hdrscan.h - the header section of a message, scanned as the message
 * arrives; every complete field reported with where it lies; pure */
#ifndef MOAT_HDRSCAN_H
#define MOAT_HDRSCAN_H

#include <stddef.h>

/* Bytes of a field kept for deciding about it (its name and the start of
 * its value): the scan itself has no window, a field of any length is
 * reported whole with its real end. */
#define HDRSCAN_HEAD_MAX 1024

/* One field of the header section: the bytes [off, off + len) of the
 * stream, from the start of its first line to the LF of its last
 * (continuation lines included). */
struct hdr_field {
	size_t off, len;
	const char *head;  /* the field's first bytes */
	size_t head_len;
	int truncated;     /* head holds less than the whole field */
};

typedef void (*hdrscan_fn)(void *arg, const struct hdr_field *f);

/* Fed the message in wire form (the spool's bytes: CRLF lines, as
 * dataparse makes them). A field is reported once its end is known: when
 * the next line starts with neither space nor tab, at the empty line that
 * ends the header section, or at hdrscan_finish. A last line without its
 * LF is never reported: a field goes whole or not at all. */
struct hdrscan {
	size_t off;         /* stream offset of the next byte */
	size_t field_off;   /* start of the current field */
	size_t line_off;    /* start of the current line */
	size_t hdr_end;     /* end of the empty line; 0 until seen */
	int state;
	int in_field;
	char line_first;    /* the current line's first byte */
	int truncated;
	size_t head_len;
	char head[HDRSCAN_HEAD_MAX];
	hdrscan_fn cb;
	void *arg;
};

/* If f is the field named name (ASCII case ignored; blanks may precede the
 * colon), its value into out: as written, leading blanks skipped, line
 * breaks removed (unfolded), trailing blanks dropped, cut to size - 1 bytes
 * between UTF-8 characters. 1 if it is that field; 0 (out untouched) if not. */
int hdrscan_value(const struct hdr_field *f, const char *name, char *out, size_t size);

void hdrscan_init(struct hdrscan *h, hdrscan_fn cb, void *arg);
/* The next n bytes of the message. Costs nothing once the header is over. */
void hdrscan_feed(struct hdrscan *h, const char *p, size_t n);
/* The message ended: a last complete field is reported. */
void hdrscan_finish(struct hdrscan *h);

#endif

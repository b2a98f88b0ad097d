/* outfmt.h - text of the log written back out safely: to a terminal, in
 * JSON, in HTML; numbers with thousands separators (pure but for the FILE) */
#ifndef MOAT_REPORT_OUTFMT_H
#define MOAT_REPORT_OUTFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "1,234,567" */
void fmt_count(uint64_t v, char *out, size_t size);
/* "512.3 MB" (powers of 1000) */
void fmt_bytes(uint64_t v, char *out, size_t size);

/* n bytes of (UTF-8) text for a terminal: control characters (C0, DEL,
 * C1) as '?'; at most max bytes, cut at a character with "...". Returns
 * the characters written (for padding). */
size_t put_text(FILE *f, const char *s, size_t n, size_t max);

/* A JSON string, quotes included (RFC 8259: '"', '\\' and controls escaped). */
void put_json(FILE *f, const char *s, size_t n);

/* HTML text or attribute value: & < > " ' as references, control
 * characters (but tab and newline) as U+FFFD. */
void put_html(FILE *f, const char *s, size_t n);

/* The same into a buffer (size > 0, always terminated); the length. */
size_t html_escape(char *out, size_t size, const char *s, size_t n);

#endif

/* text.h - small text helpers of every layer: untrusted text quoted back,
 * the lines of a file, bounded copies, a millisecond clock; pure but the
 * clock */
#ifndef MOAT_TEXT_H
#define MOAT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define TEXT_SHOW_MAX 64 /* bytes of a bad value quoted back in an error */

/* n bytes of untrusted text for an error message: control bytes as '?',
 * cut after TEXT_SHOW_MAX bytes with "...". Returns out. */
const char *text_show(const char *s, size_t n, char out[TEXT_SHOW_MAX + 4]);

/* The lines of a file's text (moat.conf, rule files, lists), in order: a
 * leading UTF-8 byte order mark (some editors add one) is skipped, "\n" or
 * "\r\n" ends a line, the last line may lack its end. */
struct text_lines {
	const char *p, *end;
	int line;   /* the number of the line last returned, from 1 */
};
void text_lines_begin(struct text_lines *t, const char *text, size_t len);
/* The next line without its line end in *s, *n. 1, or 0 at the end, or -1
 * for a line that holds a NUL byte (t->line is its number). */
int text_lines_next(struct text_lines *t, const char **s, size_t *n);

/* Format an error message into msg (msz bytes); returns -1, for
 * "return text_error(msg, msz, ...);". */
__attribute__((format(printf, 3, 4)))
int text_error(char *msg, size_t msz, const char *fmt, ...);

/* Copy src into dst, cut to size - 1 bytes; always NUL-terminated (size > 0).
 * Returns the length copied. */
size_t text_copy(char *dst, size_t size, const char *src);

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0. */
size_t text_utf8_len(const unsigned char *s, size_t n);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t clock_ms(void);
/* The same clock in nanoseconds (latencies). */
uint64_t clock_ns(void);

#endif

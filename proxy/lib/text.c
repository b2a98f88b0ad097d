/* text.c - small text helpers (see text.h) */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/lib/text.h"

const char *text_show(const char *s, size_t n, char out[TEXT_SHOW_MAX + 4])
{
	size_t i;

	for (i = 0; i < n && i < TEXT_SHOW_MAX; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	memcpy(out + i, i < n ? "..." : "", i < n ? 4 : 1);
	return out;
}

void text_lines_begin(struct text_lines *t, const char *text, size_t len)
{
	t->p = text;
	t->end = text + len;
	t->line = 0;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		t->p += 3;
}

int text_lines_next(struct text_lines *t, const char **s, size_t *n)
{
	const char *nl;
	size_t len;

	if (t->p >= t->end)
		return 0;
	nl = memchr(t->p, '\n', (size_t)(t->end - t->p));
	len = nl ? (size_t)(nl - t->p) : (size_t)(t->end - t->p);
	*s = t->p;
	t->p += len + (nl != NULL);
	t->line++;
	if (memchr(*s, '\0', len))
		return -1;
	if (len > 0 && (*s)[len - 1] == '\r')
		len--;
	*n = len;
	return 1;
}

int text_error(char *msg, size_t msz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msz, fmt, ap);
	va_end(ap);
	return -1;
}

size_t text_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	if (size == 0)
		return 0;
	n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

size_t text_utf8_len(const unsigned char *s, size_t n)
{
	unsigned lo = 0x80, hi = 0xbf;
	size_t len;

	if (n == 0)
		return 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, lo = s[0] == 0xe0 ? 0xa0 : lo, hi = s[0] == 0xed ? 0x9f : hi;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, lo = s[0] == 0xf0 ? 0x90 : lo, hi = s[0] == 0xf4 ? 0x8f : hi;
	else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

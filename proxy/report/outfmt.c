/* outfmt.c - text written back out safely (see outfmt.h) */
#include <string.h>

#include "proxy/lib/text.h"
#include "proxy/report/outfmt.h"

void fmt_count(uint64_t v, char *out, size_t size)
{
	char digits[32], *p = digits + sizeof digits;
	int k = 0;

	*--p = '\0';
	do {
		if (k && k % 3 == 0)
			*--p = ',';
		*--p = (char)('0' + v % 10);
		v /= 10;
		k++;
	} while (v);
	snprintf(out, size, "%s", p);
}

void fmt_bytes(uint64_t v, char *out, size_t size)
{
	static const char *const unit[] = {"bytes", "kB", "MB", "GB", "TB"};
	double d = (double)v;
	int u = 0;

	while (d >= 1000 && u < 4)
		d /= 1000, u++;
	if (u == 0)
		snprintf(out, size, "%llu bytes", (unsigned long long)v);
	else
		snprintf(out, size, "%.1f %s", d, unit[u]);
}

/* The length of the character at s (n bytes left), 1 for a stray byte. */
static size_t char_len(const char *s, size_t n)
{
	size_t k = (unsigned char)*s < 0x80 ? 1 : text_utf8_len((const unsigned char *)s, n < 4 ? n : 4);

	return k ? k : 1;
}

static int is_control(const char *s, size_t k)
{
	unsigned char c = (unsigned char)s[0];

	return (k == 1 && (c < 0x20 || c >= 0x7f)) || (k == 2 && c == 0xc2 && (unsigned char)s[1] < 0xa0);
}

size_t put_text(FILE *f, const char *s, size_t n, size_t max)
{
	size_t i = 0, chars = 0, room = n <= max ? n : max > 3 ? max - 3 : 0;

	while (i < n) {
		size_t k = char_len(s + i, n - i);

		if (i + k > room)
			break;
		if (is_control(s + i, k))
			fputc('?', f);
		else
			fwrite(s + i, 1, k, f);
		i += k;
		chars++;
	}
	if (i < n) {
		fputs("...", f);
		chars += 3;
	}
	return chars;
}

void put_json(FILE *f, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, seg = 0;

	fputc('"', f);
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fwrite(s + seg, 1, i - seg, f);
		seg = i + 1;
		if (c == '"' || c == '\\')
			fputc('\\', f), fputc(c, f);
		else
			fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
	}
	fwrite(s + seg, 1, i - seg, f);
	fputc('"', f);
}

/* The reference or replacement for the character of k bytes at s, or NULL
 * if it goes as it is. */
static const char *html_ref(const char *s, size_t k)
{
	switch (k == 1 ? *s : 0) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&#39;";
	case '\t': case '\n': return NULL;
	}
	/* a stray byte (not UTF-8) is a replacement character too */
	if (is_control(s, k) || (k == 1 && (unsigned char)*s >= 0x80))
		return "\xef\xbf\xbd";
	return NULL;
}

size_t html_escape(char *out, size_t size, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		size_t k = char_len(s + i, n - i);
		const char *r = html_ref(s + i, k);
		const char *src = r ? r : s + i;
		size_t len = r ? strlen(r) : k;

		if (o + len >= size)
			break;
		memcpy(out + o, src, len);
		o += len;
		i += k;
	}
	out[o] = '\0';
	return o;
}

void put_html(FILE *f, const char *s, size_t n)
{
	char buf[1024];

	/* in pieces, each cut between characters */
	while (n > 0) {
		size_t take = n < 128 ? n : 128, k;

		while (take < n && ((unsigned char)s[take] & 0xc0) == 0x80)
			take++;
		k = html_escape(buf, sizeof buf, s, take);
		fwrite(buf, 1, k, f);
		s += take;
		n -= take;
	}
}

/* domain.c - the domain name validator (see domain.h) */
#include "proxy/lib/bounds.h"
#include "proxy/lib/domain.h"
#include "proxy/lib/text.h"

static int is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Bytes of one label character at s (0: not allowed); *utf8 set for UTF-8. */
static size_t label_char(const unsigned char *s, size_t n, unsigned flags, int *utf8)
{
	if (!(flags & DOMAIN_LDH))
		return s[0] > 0x20 && s[0] < 0x7f;
	if (is_alnum(s[0]) || s[0] == '-' || (s[0] == '_' && (flags & DOMAIN_UNDERSCORE)))
		return 1;
	if (s[0] >= 0x80 && (flags & DOMAIN_UTF8)) {
		*utf8 = 1;
		return text_utf8_len(s, n);
	}
	return 0;
}

int domain_check(const char *str, size_t n, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	int labels = 0, utf8 = 0, digits = 0;

	if ((flags & DOMAIN_TRAILING_DOT) && n > 1 && s[n - 1] == '.')
		n--;
	if (n == 0)
		return -1;
	for (;;) {
		size_t start = i, k;
		int u = 0;

		digits = 1;
		for (; i < n && s[i] != '.'; i += k) {
			if ((k = label_char(s + i, n - i, flags, &u)) == 0)
				return -1;
			if (s[i] < '0' || s[i] > '9')
				digits = 0;
		}
		/* a U-label's 63 octets are those of its A-label (idna.c counts them) */
		if (i == start || i - start > (u ? MOAT_IDN_LABEL_MAX : 63))
			return -1;
		utf8 |= u;
		if ((flags & DOMAIN_LDH) && (s[start] == '-' || s[i - 1] == '-'))
			return -1;
		labels++;
		if (i == n)
			break;
		i++; /* the dot; a trailing one fails the next label */
	}
	if (((flags & DOMAIN_MULTI_LABEL) && labels < 2) || ((flags & DOMAIN_NOT_NUMERIC) && digits))
		return -1;
	return utf8;
}

/* idna.c - domain names to A-labels (see idna.h). Label by label: only a
 * label with non-ASCII bytes or an "xn--" prefix goes through libidn2, so
 * the ASCII labels moat meets everywhere cost a lower-casing, and their
 * syntax stays the caller's (libidn2 would refuse "ab--cd", which DNS and
 * RFC 5321 allow). */
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/idna.h"

#define LABEL_MAX 63  /* octets of a label in DNS (RFC 1035 2.3.4) */
#define NAME_TEXT_MAX 253  /* octets of a name in text, without its trailing dot */

/* libidn2: IDNA2008 with UTS #46 mapping (case, width, NFC), non-transitional
 * (ß, ς, ZWJ and ZWNJ stay themselves). */
#define IDN2_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int is_ace(const char *s, size_t n)
{
	return n >= 4 && lower((unsigned char)s[0]) == 'x' && lower((unsigned char)s[1]) == 'n' &&
	       s[2] == '-' && s[3] == '-';
}

static int has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

static int label_needs(const char *s, size_t n)
{
	return is_ace(s, n) || has_8bit(s, n);
}

int idna_needed(const char *in, size_t n)
{
	for (size_t i = 0; i < n;) {
		const char *dot = memchr(in + i, '.', n - i);
		size_t len = dot ? (size_t)(dot - (in + i)) : n - i;

		if (label_needs(in + i, len))
			return 1;
		i += len + 1;
	}
	return 0;
}

/* What libidn2 made of a label must be one DNS label of letters, digits and
 * inner hyphens: UTS #46 maps some characters to ASCII ones ("．" to a dot,
 * "＿" to '_') that no mail domain may hold. */
static int ldh_label(const char *s, size_t n)
{
	if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* One label through libidn2, appended at out + *o. */
static int convert_label(const char *s, size_t n, char *out, size_t size, size_t *o)
{
	char label[MOAT_IDN_LABEL_MAX + 1];
	uint8_t *res = NULL;
	size_t len;
	int rc;

	if (n > MOAT_IDN_LABEL_MAX)
		return IDNA_INVALID;
	memcpy(label, s, n);
	label[n] = '\0';
	rc = idn2_lookup_u8((const uint8_t *)label, &res, IDN2_FLAGS);
	if (rc == IDN2_MALLOC)
		return IDNA_NOMEM;
	if (rc != IDN2_OK || res == NULL) {
		free(res);
		return IDNA_INVALID;
	}
	len = strlen((const char *)res);
	for (size_t i = 0; i < len; i++)
		res[i] = (uint8_t)lower(res[i]);
	if (!ldh_label((const char *)res, len) || *o + len >= size) {
		free(res);
		return IDNA_INVALID;
	}
	memcpy(out + *o, res, len);
	*o += len;
	free(res);
	return IDNA_OK;
}

/* UTS #46's deviation characters, which its transitional processing maps
 * to other text (ß, ς, ZWNJ, ZWJ), and capital sharp s, which older tables
 * (libidn2 2.3, Unicode before 15.1) map to "ss" and newer ones to ß. */
static const char *const deviations[] = {
	"\xc3\x9f", "\xcf\x82", "\xe2\x80\x8c", "\xe2\x80\x8d", "\xe1\xba\x9e",
};

int idna_unambiguous(const char *in, size_t n)
{
	for (size_t d = 0; d < sizeof deviations / sizeof deviations[0]; d++)
		if (memmem(in, n, deviations[d], strlen(deviations[d])))
			return 0;
	return 1;
}

int idna_to_ascii(const char *in, size_t n, char *out, size_t size)
{
	size_t o = 0, i = 0;
	int rc = IDNA_INVALID;

	if (size == 0)
		return IDNA_INVALID;
	if (n > 1 && in[n - 1] == '.')
		n--;
	if (n == 0)
		goto fail;
	for (;;) {
		const char *dot = memchr(in + i, '.', n - i);
		size_t len = dot ? (size_t)(dot - (in + i)) : n - i;

		if (len == 0)
			goto fail;
		if (label_needs(in + i, len)) {
			if ((rc = convert_label(in + i, len, out, size, &o)) != IDNA_OK)
				goto fail;
		} else {
			if (len > LABEL_MAX || o + len >= size)
				goto fail;
			for (size_t k = 0; k < len; k++)
				out[o++] = (char)lower((unsigned char)in[i + k]);
		}
		i += len;
		if (i >= n)
			break;
		if (o + 1 >= size)
			goto fail;
		out[o++] = '.';
		i++;
	}
	if (o > NAME_TEXT_MAX)
		goto fail;
	out[o] = '\0';
	return IDNA_OK;
fail:
	out[0] = '\0';
	return rc == IDNA_NOMEM ? IDNA_NOMEM : IDNA_INVALID;
}

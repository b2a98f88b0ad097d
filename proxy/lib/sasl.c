/* sasl.c - the mechanism and the login name of an AUTH exchange (see sasl.h) */
#include <string.h>
#include <strings.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/sasl.h"
#include "proxy/lib/text.h"

/* What an answer decodes to at most: a line of MOAT_AUTH_LINE_MAX, CRLF
 * included, of base64. */
#define DECODED_MAX ((MOAT_AUTH_LINE_MAX - 2) / 4 * 3)

enum sasl_mech sasl_mech(const char *name)
{
	if (strcasecmp(name, "PLAIN") == 0)
		return SASL_PLAIN;
	if (strcasecmp(name, "LOGIN") == 0)
		return SASL_LOGIN;
	return SASL_NONE;
}

const char *sasl_mech_name(enum sasl_mech m)
{
	return m == SASL_PLAIN ? "PLAIN" : m == SASL_LOGIN ? "LOGIN" : "";
}

int sasl_auth_args(const char *arg, enum sasl_mech *m, const char **initial)
{
	char name[32];
	size_t n = strcspn(arg, " ");

	*m = SASL_NONE;
	*initial = NULL;
	if (n == 0 || n >= sizeof name)
		return n == 0 ? -1 : 0; /* a name no mechanism has: 504, not 501 */
	memcpy(name, arg, n);
	name[n] = '\0';
	*m = sasl_mech(name);
	if (arg[n] == '\0')
		return 0;
	arg += n + 1;
	if (*arg == '\0' || strchr(arg, ' '))
		return -1;
	*initial = arg;
	return 0;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
	size_t o = 0;

	if (len == 1 && in[0] == '=')
		return 0;
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			/* '=' only at the end: "xx==" or "xxx=" */
			if (c == '=' && i + 4 == len && k >= 2 && (k == 3 || in[i + 3] == '=')) {
				v[k] = 0;
				pad++;
			} else if ((v[k] = b64_value(c)) < 0 || pad) {
				return -1;
			}
		}
		/* the bits padding leaves over must be zero (RFC 4648 3.5: canonical) */
		if ((pad == 2 && (v[1] & 0x0f)) || (pad == 1 && (v[2] & 0x03)))
			return -1;
		if (o + 3 - (size_t)pad > size)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	return (long)o;
}

/* A login name fit for the log and the rules: 1 to MOAT_AUTH_USER_MAX bytes
 * of UTF-8, no control characters. */
static int name_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, l;

	if (n == 0 || n > MOAT_AUTH_USER_MAX)
		return 0;
	while (i < n) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7f)
				return 0;
			i++;
		} else if ((l = text_utf8_len(s + i, n - i)) == 0) {
			return 0;
		} else {
			i += l;
		}
	}
	return 1;
}

/* The name in what the answer decodes to; -1 if it holds none. */
static int find_name(enum sasl_mech m, const unsigned char *d, size_t n, const unsigned char **name, size_t *len)
{
	const unsigned char *nul1, *nul2;

	if (m == SASL_LOGIN) {
		if (memchr(d, '\0', n))
			return -1;
		*name = d;
		*len = n;
		return 0;
	}
	if (m != SASL_PLAIN || !(nul1 = memchr(d, '\0', n)) ||
	    !(nul2 = memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - d))))
		return -1;
	/* authcid and passwd non-empty; no third NUL (RFC 4616 2) */
	if (nul2 == nul1 + 1 || nul2 + 1 == d + n || memchr(nul2 + 1, '\0', n - (size_t)(nul2 + 1 - d)))
		return -1;
	*name = nul1 + 1;
	*len = (size_t)(nul2 - nul1 - 1);
	return 0;
}

int sasl_login_name(enum sasl_mech m, const char *b64, size_t len, char *user, size_t size)
{
	unsigned char d[DECODED_MAX];
	const unsigned char *name;
	size_t nlen;
	long n = sasl_b64_decode(b64, len, d, sizeof d);
	int r = -1;

	if (n >= 0 && find_name(m, d, (size_t)n, &name, &nlen) == 0 && name_ok(name, nlen) && nlen < size) {
		memcpy(user, name, nlen);
		user[nlen] = '\0';
		r = 0;
	}
	/* the password was in there */
	explicit_bzero(d, sizeof d);
	return r;
}

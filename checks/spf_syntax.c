/* spf_syntax.c - RFC 7208 section 12 ABNF for records and explanations */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks/spf_syntax.h"

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

int spf_syntax_is_spf1(const char *txt, size_t len)
{
	if (len < 6 || strncasecmp(txt, "v=spf1", 6) != 0)
		return 0;
	return len == 6 || txt[6] == ' ';
}

/* Length of the macro-expand at p (p[0] == '%'), 0 if invalid.
 * macro-expand = ( "%{" macro-letter transformers *delimiter "}" )
 *                / "%%" / "%_" / "%-"; transformers = *DIGIT [ "r" ];
 * c, r and t only in explanations (7.1); a DIGIT of 0 is invalid (7.3). */
static size_t macro_len(const char *p, const char *end, int exp)
{
	const char *q = p + 2;
	unsigned long n = 0;
	int digits = 0;

	if (end - p < 2)
		return 0;
	if (p[1] == '%' || p[1] == '_' || p[1] == '-')
		return 2;
	if (p[1] != '{' || q >= end || *q == '\0')
		return 0;
	if (!strchr("slodiphv", lower(*q)) && !(exp && strchr("crt", lower(*q))))
		return 0;
	q++;
	while (q < end && is_digit(*q)) {
		if (n < 100000)
			n = n * 10 + (unsigned long)(*q - '0');
		digits++;
		q++;
	}
	if (digits && n == 0)
		return 0;
	if (q < end && lower(*q) == 'r')
		q++;
	while (q < end && *q && strchr(".-+,/_=", *q))
		q++;
	if (q >= end || *q != '}')
		return 0;
	return (size_t)(q + 1 - p);
}

/* macro-string = *( macro-expand / macro-literal ), literal %x21-24 / %x26-7E;
 * explanations also allow SP. */
static int macro_string_valid(const char *p, const char *end, int exp)
{
	while (p < end) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '%') {
			size_t n = macro_len(p, end, exp);

			if (n == 0)
				return 0;
			p += n;
		} else if ((ch > 0x20 && ch < 0x7f) || (exp && ch == ' ')) {
			p++;
		} else {
			return 0;
		}
	}
	return 1;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int toplabel_valid(const char *p, const char *end)
{
	int alpha = 0, hyphen = 0;

	if (p >= end)
		return 0;
	for (const char *q = p; q < end; q++) {
		if (is_alpha(*q))
			alpha = 1;
		else if (*q == '-')
			hyphen = 1;
		else if (!is_digit(*q))
			return 0;
	}
	if (!hyphen)
		return alpha;
	return is_alnum(p[0]) && is_alnum(end[-1]);
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static int domain_spec_valid(const char *p, const char *end)
{
	const char *lit = p; /* start of the literal run after the last macro */
	int last_macro = 0;

	if (p >= end || !macro_string_valid(p, end, 0))
		return 0;
	for (const char *q = p; q < end;) {
		if (*q == '%') {
			q += macro_len(q, end, 0);
			lit = q;
			last_macro = 1;
		} else {
			q++;
			last_macro = 0;
		}
	}
	if (last_macro)
		return 1;
	if (end - lit >= 2 && end[-1] == '.')
		end--;
	for (const char *q = end; q > lit; q--) {
		if (q[-1] == '.')
			return toplabel_valid(q, end);
	}
	return 0;
}

/* Decimal without leading zeros, at most max. */
static int cidr_valid(const char *p, const char *end, int max)
{
	int n = 0;

	if (p >= end || end - p > 3 || (p[0] == '0' && end - p > 1))
		return 0;
	for (const char *q = p; q < end; q++) {
		if (!is_digit(*q))
			return 0;
		n = n * 10 + (*q - '0');
	}
	return n <= max;
}

/* Split a trailing dual-cidr-length = [ "/" ip4 ] [ "//" ip6 ] off [p, *end);
 * *v4, *v6: the lengths, -1 when absent. Returns 0 if a length is invalid. */
static int strip_dual_cidr(const char *p, const char **end, int *v4, int *v6)
{
	const char *e = *end, *q;

	*v4 = *v6 = -1;
	/* "//" ip6-cidr-length */
	for (q = e; q > p && is_digit(q[-1]); q--)
		;
	if (q < e && q - p >= 2 && q[-1] == '/' && q[-2] == '/') {
		if (!cidr_valid(q, e, 128))
			return 0;
		*v6 = atoi(q);
		e = q - 2;
		for (q = e; q > p && is_digit(q[-1]); q--)
			;
	}
	/* "/" ip4-cidr-length */
	if (q < e && q - p >= 1 && q[-1] == '/' && !(q - p >= 2 && q[-2] == '/')) {
		if (!cidr_valid(q, e, 32))
			return 0;
		*v4 = atoi(q);
		e = q - 1;
	}
	*end = e;
	return 1;
}

/* ip4-network = qnum "." qnum "." qnum "." qnum, no leading zeros */
static int ip4_valid(const char *p, const char *end)
{
	for (int part = 0; part < 4; part++) {
		const char *s = p;
		int n = 0;

		while (p < end && is_digit(*p)) {
			n = n * 10 + (*p - '0');
			p++;
		}
		if (p == s || p - s > 3 || n > 255 || (*s == '0' && p - s > 1))
			return 0;
		if (part < 3) {
			if (p >= end || *p != '.')
				return 0;
			p++;
		}
	}
	return p == end;
}

static int ip6_valid(const char *p, const char *end)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;

	if (end - p >= (long)sizeof buf || p == end)
		return 0;
	for (const char *q = p; q < end; q++)
		if (!is_digit(*q) && !strchr("abcdefABCDEF:.", *q))
			return 0;
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* ip4/ip6 argument: network then an optional single CIDR length, *cidr
 * (-1 when absent); *net_end: where the network ends. */
static int ipnet_valid(const char *p, const char *end, int v6, const char **net_end, int *cidr)
{
	const char *q, *slash = NULL;

	*cidr = -1;
	for (q = p; q < end; q++)
		if (*q == '/') {
			slash = q;
			break;
		}
	if (slash) {
		if (!cidr_valid(slash + 1, end, v6 ? 128 : 32))
			return 0;
		*cidr = atoi(slash + 1);
		end = slash;
	}
	*net_end = end;
	return v6 ? ip6_valid(p, end) : ip4_valid(p, end);
}

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

static int mech_lookup(const char *p, size_t n)
{
	static const char *const names[] = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};

	for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
		if (strlen(names[i]) == n && strncasecmp(p, names[i], n) == 0)
			return i;
	return -1;
}

static void put_raw(char *out, size_t outsize, size_t *n, const char *p, size_t len)
{
	if (*n + len < outsize) {
		memcpy(out + *n, p, len);
		*n += len;
		out[*n] = '\0';
	} else {
		*n = outsize; /* reported by the caller */
	}
}

/* Append checked text. A macro's DIGIT transformer over 128 becomes 128:
 * RFC 7208 7.3 takes a count beyond the parts as "all of them", a domain
 * has at most 127 labels, and libspf2 rejects more than 128 (SPF_E_BIG_SUBDOM). */
static void put(char *out, size_t outsize, size_t *n, const char *p, size_t len)
{
	const char *end = p + len, *run = p;

	while (p < end) {
		const char *d, *e;

		if (*p != '%' || p + 2 >= end) {
			p++;
			continue;
		}
		if (p[1] != '{') {
			p += 2; /* "%%", "%_", "%-" */
			continue;
		}
		d = p + 3; /* after "%{" and the letter */
		for (e = d; e < end && is_digit(*e); e++)
			;
		if (e - d > 3 || (e - d == 3 && strncmp(d, "128", 3) > 0)) {
			put_raw(out, outsize, n, run, (size_t)(d - run));
			put_raw(out, outsize, n, "128", 3);
			run = e;
		}
		p = e;
	}
	put_raw(out, outsize, n, run, (size_t)(end - run));
}

static void put_str(char *out, size_t outsize, size_t *n, const char *s)
{
	put(out, outsize, n, s, strlen(s));
}

/* One directive [t, end), p after its qualifier: 0 if invalid. Appends " "
 * and the directive as libspf2 must see it to out. */
static int directive(const char *t, const char *p, const char *end, const struct spf_client *cl,
                     int *is_all, char *out, size_t outsize, size_t *n)
{
	const char *q = p, *dom, *dom_end, *net_end;
	int m, v4, v6, any, cidr;
	char num[16];

	while (q < end && is_alnum(*q))
		q++;
	m = mech_lookup(p, (size_t)(q - p));
	*is_all = m == M_ALL;
	switch (m) {
	case M_ALL:
		if (q != end)
			return 0;
		break;
	case M_INCLUDE:
	case M_EXISTS:
		if (q >= end || *q != ':' || !domain_spec_valid(q + 1, end))
			return 0;
		break;
	case M_PTR:
		if (q != end && (*q != ':' || !domain_spec_valid(q + 1, end)))
			return 0;
		break;
	case M_A:
	case M_MX:
		if (q == end)
			break;
		if (*q != ':' && *q != '/')
			return 0;
		dom_end = end;
		if (!strip_dual_cidr(q, &dom_end, &v4, &v6))
			return 0;
		if (*q == '/' ? dom_end != q : !domain_spec_valid(q + 1, dom_end))
			return 0;
		if (!cl || (v4 != 0 && v6 != 0))
			break;
		/* a CIDR length of 0: see SPF_ANY_MARKER */
		any = (cl->family == AF_INET && v4 == 0) || (cl->family == AF_INET6 && v6 == 0);
		dom = *q == ':' ? q + 1 : q;
		put_str(out, outsize, n, " ");
		put(out, outsize, n, t, (size_t)(q - t));
		if (dom < dom_end || any) {
			put_str(out, outsize, n, ":");
			if (dom < dom_end)
				put(out, outsize, n, dom, (size_t)(dom_end - dom));
			else
				put_str(out, outsize, n, "%{d}");
			if (any)
				put_str(out, outsize, n, SPF_ANY_MARKER);
		}
		if (v4 > 0) {
			snprintf(num, sizeof num, "/%d", v4);
			put_str(out, outsize, n, num);
		}
		if (v6 > 0) {
			snprintf(num, sizeof num, "//%d", v6);
			put_str(out, outsize, n, num);
		}
		return 1;
	case M_IP4:
	case M_IP6:
		if (q >= end || *q != ':' || !ipnet_valid(q + 1, end, m == M_IP6, &net_end, &cidr))
			return 0;
		if (!cl || cidr != 0)
			break;
		/* /0 matches every client of the family, and only those */
		put_str(out, outsize, n, " ");
		put(out, outsize, n, t, (size_t)(q + 1 - t));
		if (cl->family == (m == M_IP6 ? AF_INET6 : AF_INET))
			put_str(out, outsize, n, cl->addr);
		else
			put(out, outsize, n, q + 1, (size_t)(net_end - (q + 1)));
		return 1;
	default:
		return 0;
	}
	put_str(out, outsize, n, " ");
	put(out, outsize, n, t, (size_t)(end - t));
	return 1;
}

static int fail(char *err, size_t errsize, const char *why, const char *p, const char *end)
{
	int n = (int)(end - p);

	if (n > 60)
		n = 60;
	if (errsize)
		snprintf(err, errsize, "%s '%.*s'", why, n, p);
	/* the term is checked for printable ASCII before it is quoted, except
	 * when that is the error: blank such bytes */
	for (char *e = err; e && *e; e++)
		if ((unsigned char)*e < 0x20 || (unsigned char)*e > 0x7e)
			*e = '?';
	return -1;
}

int spf_syntax_check(const char *txt, size_t len, const struct spf_client *cl,
                     char *out, size_t outsize, char *err, size_t errsize)
{
	const char *p, *end = txt + len;
	const char *redirect = NULL, *redirect_end = NULL, *exp = NULL, *exp_end = NULL;
	int has_all = 0;
	size_t n = 0;

	if (errsize)
		err[0] = '\0';
	if (outsize)
		out[0] = '\0';
	if (!spf_syntax_is_spf1(txt, len))
		return fail(err, errsize, "not an SPF record", txt, end);
	put(out, outsize, &n, "v=spf1", 6);
	for (p = txt + 6; p < end;) {
		const char *t, *te, *q;

		if (*p == ' ') {
			p++;
			continue;
		}
		t = p;
		while (p < end && *p != ' ')
			p++;
		te = p;
		for (q = t; q < te; q++)
			if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
				return fail(err, errsize, "invalid character in", t, te);
		/* modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
		for (q = t; q < te && (is_alnum(*q) || *q == '-' || *q == '_' || *q == '.'); q++)
			;
		if (q < te && *q == '=') {
			const char *v = q + 1;

			if (q == t || !is_alpha(*t))
				return fail(err, errsize, "invalid modifier name", t, te);
			if (q - t == 8 && strncasecmp(t, "redirect", 8) == 0) {
				if (redirect)
					return fail(err, errsize, "second redirect", t, te);
				if (!domain_spec_valid(v, te))
					return fail(err, errsize, "invalid redirect", t, te);
				redirect = t;
				redirect_end = te;
			} else if (q - t == 3 && strncasecmp(t, "exp", 3) == 0) {
				if (exp)
					return fail(err, errsize, "second exp", t, te);
				if (!domain_spec_valid(v, te))
					return fail(err, errsize, "invalid exp", t, te);
				exp = t;
				exp_end = te;
			} else if (!macro_string_valid(v, te, 0)) {
				return fail(err, errsize, "invalid modifier", t, te);
			}
			continue;
		}
		q = t;
		if (*q == '+' || *q == '-' || *q == '~' || *q == '?')
			q++;
		{
			int is_all = 0;

			if (!directive(t, q, te, cl, &is_all, out, outsize, &n))
				return fail(err, errsize, "invalid mechanism", t, te);
			has_all |= is_all;
		}
	}
	if (redirect && !has_all) {
		put(out, outsize, &n, " ", 1);
		put(out, outsize, &n, redirect, (size_t)(redirect_end - redirect));
	}
	if (exp) {
		put(out, outsize, &n, " ", 1);
		put(out, outsize, &n, exp, (size_t)(exp_end - exp));
	}
	if (n >= outsize)
		return fail(err, errsize, "record too long", txt, end);
	return 0;
}

/* The term [t, te) into out, cut to fit; qual: a qualifier to put first. */
static void term_out(const char *qual, const char *t, const char *te, char *out, size_t size)
{
	snprintf(out, size, "%s%.*s", qual, (int)(te - t), t);
}

int spf_syntax_term(const char *txt, size_t len, int i, char *out, size_t size)
{
	const char *p, *end = txt + len, *redirect = NULL, *redirect_end = NULL;
	int n = 0, has_all = 0;

	if (size)
		out[0] = '\0';
	if (!spf_syntax_is_spf1(txt, len))
		return 0;
	for (p = txt + 6; p < end;) {
		const char *t, *te, *q;

		if (*p == ' ') {
			p++;
			continue;
		}
		for (t = p; p < end && *p != ' '; p++)
			;
		te = p;
		for (q = t; q < te && (is_alnum(*q) || *q == '-' || *q == '_' || *q == '.'); q++)
			;
		if (q < te && *q == '=') { /* a modifier */
			if (q - t == 8 && strncasecmp(t, "redirect", 8) == 0)
				redirect = t, redirect_end = te;
			continue;
		}
		q = t + (*t == '+' || *t == '-' || *t == '~' || *t == '?');
		has_all |= te - q == 3 && strncasecmp(q, "all", 3) == 0;
		if (n++ == i) {
			term_out(q == t ? "+" : "", t, te, out, size);
			return 1;
		}
	}
	if (i == n && redirect && !has_all) {
		term_out("", redirect, redirect_end, out, size);
		return 2;
	}
	return 0;
}

int spf_syntax_exp_valid(const char *txt, size_t len)
{
	return macro_string_valid(txt, txt + len, 1);
}

int spf_macro_uses_p(const char *txt, size_t len)
{
	const char *end = txt + len;

	for (const char *p = txt; p + 2 < end; p++) {
		if (p[0] == '%' && p[1] == '%') {
			p++;
			continue;
		}
		if (p[0] == '%' && p[1] == '{' && lower(p[2]) == 'p')
			return 1;
	}
	return 0;
}

/* RFC 3986 2.3 unreserved characters stay as they are. */
static int unreserved(int c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Append one expanded macro to out: split value on the delimiters, reverse,
 * keep the rightmost n parts, join with '.', URL-encode if asked. */
static int expand_one(const char *val, unsigned long n, int rev, const char *delims, int url,
                      char *out, size_t outsize, size_t *o)
{
	const char *parts[256];
	size_t plen[256];
	int np = 0, first;
	const char *s = val;

	for (const char *q = val;; q++) {
		if (*q == '\0' || strchr(delims, *q)) {
			if (np == (int)(sizeof parts / sizeof parts[0]))
				return -1;
			parts[np] = s;
			plen[np++] = (size_t)(q - s);
			if (*q == '\0')
				break;
			s = q + 1;
		}
	}
	if (rev) {
		for (int i = 0; i < np / 2; i++) {
			const char *tp = parts[i];
			size_t tl = plen[i];

			parts[i] = parts[np - 1 - i];
			plen[i] = plen[np - 1 - i];
			parts[np - 1 - i] = tp;
			plen[np - 1 - i] = tl;
		}
	}
	first = (n > 0 && n < (unsigned long)np) ? np - (int)n : 0;
	for (int i = first; i < np; i++) {
		for (size_t k = 0; k <= plen[i]; k++) {
			char buf[4];
			size_t bl;
			unsigned char ch;

			if (k == plen[i]) {
				if (i == np - 1)
					break;
				ch = '.';
			} else {
				ch = (unsigned char)parts[i][k];
			}
			if (url && !unreserved(ch)) {
				snprintf(buf, sizeof buf, "%%%02X", ch);
				bl = 3;
			} else {
				buf[0] = (char)ch;
				bl = 1;
			}
			if (*o + bl >= outsize)
				return -1;
			memcpy(out + *o, buf, bl);
			*o += bl;
		}
	}
	return 0;
}

int spf_macro_expand_exp(const char *txt, size_t len, const struct spf_macro_vars *v,
                         char *out, size_t outsize)
{
	const char *p = txt, *end = txt + len;
	size_t o = 0;

	if (outsize == 0 || !spf_syntax_exp_valid(txt, len))
		return -1;
	while (p < end) {
		if (*p != '%') {
			if (o + 1 >= outsize)
				return -1;
			out[o++] = *p++;
			continue;
		}
		if (p[1] == '%' || p[1] == '_' || p[1] == '-') {
			const char *lit = p[1] == '%' ? "%" : p[1] == '_' ? " " : "%20";
			size_t ll = strlen(lit);

			if (o + ll >= outsize)
				return -1;
			memcpy(out + o, lit, ll);
			o += ll;
			p += 2;
			continue;
		}
		{
			/* "%{" letter digits [r] delimiters "}" (valid: checked above) */
			int letter = p[2], url = letter >= 'A' && letter <= 'Z';
			const char *q = p + 3, *val = NULL;
			unsigned long n = 0;
			int rev = 0;
			char delims[8];
			size_t nd = 0;

			while (is_digit(*q)) {
				if (n < 100000)
					n = n * 10 + (unsigned long)(*q - '0');
				q++;
			}
			if (lower(*q) == 'r') {
				rev = 1;
				q++;
			}
			while (*q != '}') {
				if (nd < sizeof delims - 1 && !memchr(delims, *q, nd))
					delims[nd++] = *q;
				q++;
			}
			delims[nd] = '\0';
			if (nd == 0)
				strcpy(delims, ".");
			switch (lower(letter)) {
			case 's': val = v->s; break;
			case 'l': val = v->l; break;
			case 'o': val = v->o; break;
			case 'd': val = v->d; break;
			case 'i': val = v->i; break;
			case 'p': val = v->p; break;
			case 'h': val = v->h; break;
			case 'c': val = v->c; break;
			case 'r': val = v->r; break;
			case 't': val = v->t; break;
			case 'v': val = v->v; break;
			}
			if (!val || expand_one(val, n, rev, delims, url, out, outsize, &o) < 0)
				return -1;
			p = q + 1;
		}
	}
	out[o] = '\0';
	return 0;
}

/* smtp_parse.c - SMTP command lines, MAIL/RCPT paths and ESMTP parameters
 * (RFC 5321 4.1, RFC 6531 for UTF-8); pure: no I/O, no allocation (but
 * libidn2's, inside idna.c, for a domain with U-labels or A-labels).
 * Character classes are ASCII by hand: <ctype.h> follows the locale. */
#include <arpa/inet.h>
#include <string.h>

#include "proxy/lib/domain.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/smtp_parse.h"
#include "proxy/lib/text.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", V_HELO }, { "EHLO", V_EHLO }, { "MAIL", V_MAIL }, { "RCPT", V_RCPT },
	{ "DATA", V_DATA }, { "RSET", V_RSET }, { "NOOP", V_NOOP }, { "QUIT", V_QUIT },
	{ "VRFY", V_VRFY }, { "HELP", V_HELP }, { "EXPN", V_EXPN }, { "STARTTLS", V_STARTTLS },
	{ "AUTH", V_AUTH }, { "BDAT", V_BDAT }, { "ETRN", V_ETRN }, { "TURN", V_TURN },
	{ "ATRN", V_ATRN }, { "SEND", V_SEND }, { "SOML", V_SOML }, { "SAML", V_SAML },
	{ "XCLIENT", V_XCLIENT }, { "XFORWARD", V_XFORWARD },
};

static int is_ws(int c) { return c == ' ' || c == '\t'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int to_upper(int c) { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; }
static int to_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* ASCII case-insensitive compare of n bytes; stops at a mismatch, so a
 * shorter NUL-terminated a is never read past its end. */
static int ncase_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (to_upper((unsigned char)a[i]) != to_upper((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Copy n bytes and terminate; callers have checked n against the size. */
static void copy_span(char *dst, size_t size, const unsigned char *s, size_t n, int lower)
{
	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)(lower ? to_lower(s[i]) : s[i]);
	dst[n] = '\0';
}

/* ---- command line ---- */

static int has_ctl(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

static void set_verb(struct smtp_cmd *out, const char *v, size_t n)
{
	if (n == 0 || n >= sizeof out->name)
		return;
	copy_span(out->name, sizeof out->name, (const unsigned char *)v, n, 0);
	for (size_t i = 0; i < n; i++)
		out->name[i] = (char)to_upper((unsigned char)out->name[i]);
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(out->name, verbs[i].name) == 0)
			out->verb = verbs[i].verb;
}

int smtp_cmd_parse(const char *line, struct smtp_cmd *out)
{
	size_t vlen = strcspn(line, " \t"), alen;
	const char *a = line + vlen;

	out->verb = V_UNKNOWN;
	out->name[0] = '\0';
	out->argbuf[0] = '\0';
	out->arg = out->argbuf;
	set_verb(out, line, vlen);
	while (is_ws(*a))
		a++;
	alen = strlen(a);
	while (alen > 0 && is_ws(a[alen - 1]))
		alen--;
	/* the line reader bounds lines; anything longer is not ours to cut */
	if (alen >= sizeof out->argbuf)
		return -1;
	copy_span(out->argbuf, sizeof out->argbuf, (const unsigned char *)a, alen, 0);
	return has_ctl(line) ? -1 : 0;
}

/* ---- path: local part ---- */

/* RFC 5322 atext; non-ASCII is handled by the callers. */
static int is_atext(int c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Relay tricks seen in a local part, quoted or not. */
static int char_flag(int c)
{
	return c == '%' ? PATH_PERCENT : c == '!' ? PATH_BANG : c == '@' ? PATH_QUOTED_AT : 0;
}

/* Dot-string up to '@' or the end: atoms of atext or UTF-8, single dots
 * between them (RFC 5321 is strict here; "a..b" and "a." are refused).
 * Returns its length, 0 if malformed. */
static size_t scan_dot_string(const unsigned char *s, size_t n, int *flags)
{
	size_t i = 0, atom = 0, k;

	for (; i < n && s[i] != '@'; i += k) {
		k = 1;
		if (s[i] == '.') {
			if (atom == 0)
				return 0;
			atom = 0;
		} else if (s[i] >= 0x80) {
			if ((k = text_utf8_len(s + i, n - i)) == 0)
				return 0;
			*flags |= PATH_UTF8;
			atom += k;
		} else if (is_atext(s[i])) {
			*flags |= char_flag(s[i]);
			atom++;
		} else {
			return 0;
		}
	}
	return atom ? i : 0;
}

/* Quoted-string (RFC 5321 qtextSMTP / quoted-pairSMTP, UTF-8 per RFC 6531)
 * starting at s[0] == '"'. *len gets its octets once unquoted, which is what
 * the 64-octet limit counts. Returns the length as sent, 0 if malformed. */
static size_t scan_quoted(const unsigned char *s, size_t n, int *flags, size_t *len)
{
	size_t i = 1, k;

	*len = 0;
	for (; i < n && s[i] != '"'; i += k, *len += k) {
		unsigned char c = s[i];
		k = 1;
		if (c == '\\') {
			if (i + 1 >= n || s[i + 1] < 32 || s[i + 1] > 126)
				return 0;
			c = s[++i];
		} else if (c >= 0x80) {
			if ((k = text_utf8_len(s + i, n - i)) == 0)
				return 0;
			*flags |= PATH_UTF8;
			continue;
		} else if (c < 32 || c > 126) {
			return 0;
		}
		*flags |= char_flag(c);
	}
	if (i >= n)
		return 0;
	*flags |= PATH_QUOTED;
	return i + 1;
}

/* ---- path: domain ---- */

/* Letters, digits, inner hyphens or UTF-8 (U-labels) in dot-separated
 * labels of 1..63 octets as sent; an empty label (leading, double or
 * trailing dot, as in "user@example.com.") is refused. */
static int path_domain_ok(const unsigned char *s, size_t n, int *flags)
{
	int r = domain_check((const char *)s, n, DOMAIN_LDH | DOMAIN_UTF8);

	if (r > 0)
		*flags |= PATH_UTF8;
	return r >= 0;
}

/* "[1.2.3.4]" or "[IPv6:...]" (RFC 5321 4.1.3); inet_pton is strict. */
static int literal_ok(const unsigned char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	int af = AF_INET;

	if (n < 2 || s[0] != '[' || s[n - 1] != ']')
		return 0;
	s++, n -= 2;
	if (n >= 5 && ncase_eq((const char *)s, "IPv6:", 5))
		af = AF_INET6, s += 5, n -= 5;
	if (n >= sizeof buf)
		return 0;
	copy_span(buf, sizeof buf, s, n, 0);
	return inet_pton(af, buf, addr) == 1;
}

static int domain_ok(const unsigned char *s, size_t n, int allow_literal, int *flags)
{
	if (n > 0 && s[0] == '[') {
		*flags |= PATH_LITERAL;
		return allow_literal && literal_ok(s, n);
	}
	return path_domain_ok(s, n, flags);
}

/* The domain in A-labels; a U-label or "xn--" label that IDNA2008 refuses
 * makes the address malformed, and so does a recipient domain that the two
 * processings of UTS #46 read as two names (idna_unambiguous). */
static enum path_err ascii_domain(struct smtp_path *path, int is_rcpt)
{
	size_t n = strlen(path->domain);
	int r;

	if (path->flags & PATH_LITERAL) {
		memcpy(path->ascii_domain, path->domain, sizeof path->domain);
		return PATH_OK;
	}
	r = idna_to_ascii(path->domain, n, path->ascii_domain, sizeof path->ascii_domain);
	if (r == IDNA_OK && is_rcpt && !idna_unambiguous(path->domain, n))
		r = IDNA_INVALID;
	return r == IDNA_OK ? PATH_OK : r == IDNA_NOMEM ? PATH_ERR_NOMEM : PATH_ERR_IDNA;
}

/* Source route "@a,@b:" (RFC 5321 A-d-l, domains only). Returns its
 * length, ':' included, or 0 if malformed. */
static size_t scan_route(const unsigned char *s, size_t n, int *flags)
{
	size_t i = 0, j;

	for (;;) {
		if (i >= n || s[i] != '@')
			return 0;
		for (j = ++i; j < n && s[j] != ',' && s[j] != ':'; j++)
			;
		if (j >= n || !domain_ok(s + i, j - i, 0, flags))
			return 0;
		i = j + 1;
		if (s[j] == ':')
			return i;
	}
}

/* ---- path ---- */

/* RCPT TO:<Postmaster> needs no domain (RFC 5321 4.1.1.3). */
static int is_postmaster(const unsigned char *s, size_t n)
{
	return n == 10 && ncase_eq((const char *)s, "postmaster", 10);
}

/* The text between '<' and '>', or a mailbox without them (n bytes). */
static enum path_err parse_path(const unsigned char *s, size_t n, int is_rcpt,
                                struct smtp_path *path)
{
	size_t i = 0, sent, len, at;
	int flags = 0;

	if (n == 0) {
		path->null = 1;
		return is_rcpt ? PATH_ERR_ADDRESS : PATH_OK;
	}
	/* RFC 5321 4.5.3.1.3: 256 octets, the angle brackets included */
	if (n + 2 > MOAT_PATH_MAX)
		return PATH_ERR_TOOLONG;
	if (is_rcpt && is_postmaster(s, n)) {
		copy_span(path->local, sizeof path->local, s, n, 0);
		copy_span(path->mailbox, sizeof path->mailbox, s, n, 0);
		return PATH_OK;
	}
	if (s[0] == '@') {
		if ((i = scan_route(s, n, &flags)) == 0)
			return PATH_ERR_ADDRESS;
		flags |= PATH_SOURCE_ROUTE;
	}
	if (i >= n)
		return PATH_ERR_ADDRESS;
	if (s[i] == '"')
		sent = scan_quoted(s + i, n - i, &flags, &len);
	else
		sent = len = scan_dot_string(s + i, n - i, &flags);
	at = i + sent;
	if (sent == 0 || at >= n || s[at] != '@')
		return PATH_ERR_ADDRESS;
	/* "user@example.com.": the root's dot, dropped (not "a@.", "a@b..") */
	if (n - at - 1 > 1 && s[at + 1] != '[' && s[n - 1] == '.' && s[n - 2] != '.')
		n--;
	if (len > MOAT_LOCALPART_MAX || n - at - 1 > MOAT_DOMAIN_MAX)
		return PATH_ERR_TOOLONG;
	if (!domain_ok(s + at + 1, n - at - 1, 1, &flags))
		return PATH_ERR_ADDRESS;
	path->flags = flags;
	copy_span(path->local, sizeof path->local, s + i, sent, 0);
	copy_span(path->mailbox, sizeof path->mailbox, s + i, n - i, 0);
	copy_span(path->domain, sizeof path->domain, s + at + 1, n - at - 1, 1);
	return ascii_domain(path, is_rcpt);
}

/* The '>' that closes the path; a quoted local part may hold one. */
static const char *path_end(const char *s)
{
	int quoted = 0;

	for (; *s; s++) {
		if (quoted && *s == '\\' && s[1])
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (*s == '>' && !quoted)
			return s;
	}
	return NULL;
}

/* The end of a mailbox typed without brackets: the first blank outside a
 * quoted local part (Postfix's command tokenizer splits the same way). */
static const char *bare_end(const char *s)
{
	int quoted = 0;

	for (; *s && (quoted || !is_ws(*s)); s++) {
		if (quoted && *s == '\\' && s[1])
			s++;
		else if (*s == '"')
			quoted = !quoted;
	}
	return s;
}

/* ---- ESMTP parameters ---- */

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static int key_ok(const char *s, size_t n, size_t size)
{
	if (n == 0 || n >= size || !is_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531) */
static int value_ok(const unsigned char *s, size_t n, size_t size)
{
	size_t k;

	if (n == 0 || n >= size)
		return 0;
	for (size_t i = 0; i < n; i += k) {
		k = 1;
		if (s[i] >= 0x80) {
			if ((k = text_utf8_len(s + i, n - i)) == 0)
				return 0;
		} else if (s[i] < 33 || s[i] > 126 || s[i] == '=') {
			return 0;
		}
	}
	return 1;
}

/* One "KEY" or "KEY=VALUE" of n bytes; -1 if malformed, a duplicate or one
 * too many. */
static int add_param(struct smtp_params *ps, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	size_t klen = eq ? (size_t)(eq - s) : n;
	struct smtp_param *p;

	if (ps->n >= SMTP_PARAMS_MAX)
		return -1;
	p = &ps->p[ps->n];
	if (!key_ok(s, klen, sizeof p->key))
		return -1;
	if (eq && !value_ok((const unsigned char *)eq + 1, n - klen - 1, sizeof p->value))
		return -1;
	copy_span(p->key, sizeof p->key, (const unsigned char *)s, klen, 0);
	for (size_t i = 0; i < klen; i++)
		p->key[i] = (char)to_upper((unsigned char)p->key[i]);
	if (smtp_param_get(ps, p->key) != NULL)
		return -1;
	p->has_value = eq != NULL;
	p->value[0] = '\0';
	if (eq)
		copy_span(p->value, sizeof p->value, (const unsigned char *)eq + 1, n - klen - 1, 0);
	ps->n++;
	return 0;
}

static enum path_err parse_params(const char *s, struct smtp_params *ps)
{
	for (;;) {
		size_t n;

		while (is_ws(*s))
			s++;
		if (*s == '\0')
			return PATH_OK;
		n = strcspn(s, " \t");
		if (add_param(ps, s, n) != 0)
			return PATH_ERR_PARAM;
		s += n;
	}
}

enum path_err smtp_parse_mail_rcpt(const char *arg, int how, struct smtp_path *path,
                                   struct smtp_params *params)
{
	struct smtp_params scratch;
	int is_rcpt = (how & PARSE_RCPT) != 0;
	const char *kw = is_rcpt ? "TO:" : "FROM:", *p, *end = NULL, *rest = NULL;
	enum path_err err = PATH_ERR_SYNTAX;

	if (params == NULL)
		params = &scratch;
	memset(path, 0, sizeof *path);
	params->n = 0;
	params->at = 0;
	if (!ncase_eq(arg, kw, strlen(kw)))
		return PATH_ERR_SYNTAX;
	/* "FROM: <a@b>": lenient like Postfix */
	for (p = arg + strlen(kw); is_ws(*p); p++)
		;
	if (*p == '<') {
		if ((end = path_end(p + 1)) != NULL && (end[1] == '\0' || is_ws(end[1])))
			rest = end + 1;
	} else if (*p != '\0' && !(how & PARSE_STRICT)) {
		/* "FROM: a@b": as people type it; "<>" is the only null path */
		end = bare_end(p);
		rest = end;
		p--; /* as if a '<' stood there */
	}
	if (rest) {
		err = parse_path((const unsigned char *)p + 1, (size_t)(end - p - 1), is_rcpt, path);
		if (err == PATH_OK)
			err = parse_params(rest, params);
		params->at = (size_t)(rest - arg);
	}
	if (err != PATH_OK) {
		memset(path, 0, sizeof *path);
		params->n = 0;
		params->at = 0;
	}
	return err;
}

const char *smtp_path_text(const char *arg, int how, char *out, size_t size)
{
	const char *kw = (how & PARSE_RCPT) ? "TO:" : "FROM:", *p = arg, *end;

	if (ncase_eq(arg, kw, strlen(kw)))
		for (p += strlen(kw); is_ws(*p); p++)
			;
	if (p == arg) {
		end = p + strlen(p);
	} else if (*p == '<') {
		end = path_end(++p);
		if (!end)
			end = p + strlen(p);
	} else {
		end = bare_end(p);
	}
	copy_span(out, size, (const unsigned char *)p, (size_t)(end - p), 0);
	return out;
}

const struct smtp_param *smtp_param_get(const struct smtp_params *ps, const char *key)
{
	size_t n;

	if (ps == NULL || key == NULL)
		return NULL;
	n = strlen(key);
	for (int i = 0; i < ps->n; i++)
		if (strlen(ps->p[i].key) == n && ncase_eq(ps->p[i].key, key, n))
			return &ps->p[i];
	return NULL;
}

int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++) {
		unsigned long d;

		if (!is_digit((unsigned char)*s))
			return -1;
		d = (unsigned long)(*s - '0');
		if (v > max / 10 || (v == max / 10 && d > max % 10))
			return -1;
		v = v * 10 + d;
	}
	if (out != NULL)
		*out = v;
	return 0;
}

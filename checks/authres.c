/* authres.c - Authentication-Results header fields */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "checks/authres.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/text.h"

#define AR_NAME "Authentication-Results"

/* Append with snprintf; n < 0 once out of room. */
#define AR_ADD(buf, size, n, ...)                                                    \
	do {                                                                         \
		if ((n) >= 0) {                                                      \
			int w_ = snprintf((buf) + (n), (size) - (size_t)(n), __VA_ARGS__); \
			(n) = (w_ < 0 || (size_t)w_ >= (size) - (size_t)(n)) ? -1 : (n) + w_; \
		}                                                                    \
	} while (0)

/* A value goes out as a token if it is one (RFC 2045), else quoted. */
static int is_token(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f || strchr("()<>@,;:\\\"/[]?=", *s))
			return 0;
	return 1;
}

/* What comes from outside loses control bytes before it reaches a header:
 * printable ASCII (space included) is kept, and with utf8 (a message sent
 * with SMTPUTF8, whose header may hold UTF-8: RFC 6532) well-formed UTF-8;
 * any other byte is dropped. */
static void header_text(const char *in, char *out, size_t size, int utf8)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), o = 0, k;

	for (size_t i = 0; i < n; i += k) {
		k = s[i] < 0x80 ? (s[i] >= ' ' && s[i] < 0x7f) : utf8 ? text_utf8_len(s + i, n - i) : 0;
		if (k == 0 || (s[i] == 0xc2 && s[i + 1] < 0xa0)) { /* and C1 controls */
			k = 1;
			continue;
		}
		if (o + k >= size)
			break;
		memcpy(out + o, s + i, k);
		o += k;
	}
	out[o] = '\0';
}

static int has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* A domain for a header without UTF-8: an IDN in A-labels (RFC 8616). */
static void ascii_domain(const char *in, char *out, size_t size)
{
	if (!has_8bit(in) || idna_to_ascii(in, strlen(in), out, size) != IDNA_OK)
		header_text(in, out, size, 0);
}

/* An address for a header without UTF-8: its domain in A-labels; a UTF-8
 * local part cannot be written, and RFC 8601's "@domain" form says what
 * can. (Unreachable from a session: moat takes a UTF-8 address only with
 * SMTPUTF8.) */
static void ascii_address(const char *in, char *out, size_t size)
{
	const char *at = strrchr(in, '@');
	size_t l;

	if (!at || !has_8bit(in)) {
		header_text(in, out, size, 0);
		return;
	}
	l = (size_t)(at - in);
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)in[i] >= 0x80 || (unsigned char)in[i] < ' ')
			l = 0;
	if (l + 2 > size)
		l = 0;
	memcpy(out, in, l);
	out[l] = '@';
	ascii_domain(at + 1, out + l + 1, size - l - 1);
}

/* RFC 5322 atext, for a dot-atom local part (RFC 6532: UTF-8 too). */
static int is_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (unsigned char)c >= 0x80 || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* A domain of letters, digits, '-', '.' and UTF-8 (U-labels): RFC 8601's
 * domain-name, unquoted. Values have been through header_text: their bytes
 * over 0x7f are well-formed UTF-8, there only when the header may hold it. */
static int is_plain_domain(const char *p)
{
	if (!*p)
		return 0;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '.' || (unsigned char)*p >= 0x80))
			return 0;
	return 1;
}

/* "local@domain" with a dot-atom local part and a plain domain: RFC 8601
 * allows it unquoted. Anything else is quoted. */
static int is_plain_address(const char *s)
{
	const char *at = strrchr(s, '@'), *p;

	if (!at || at == s)
		return 0;
	for (p = s; p < at; p++)
		if (!is_atext(*p) && !(*p == '.' && p > s && p[-1] != '.' && p + 1 < at))
			return 0;
	return is_plain_domain(at + 1);
}

enum prop_kind { PROP_TEXT, PROP_ADDRESS, PROP_DOMAIN };

static void add_prop(struct authres *a, const char *prop, const char *raw, enum prop_kind kind)
{
	char v[320], q[660];
	size_t i, o = 0;
	char *buf = a->buf;
	size_t size = a->size;
	int *n = &a->n;

	if (a->utf8 || kind == PROP_TEXT)
		header_text(raw, v, sizeof v, a->utf8);
	else if (kind == PROP_ADDRESS)
		ascii_address(raw, v, sizeof v);
	else
		ascii_domain(raw, v, sizeof v);
	if (is_token(v) || (kind == PROP_ADDRESS && (is_plain_address(v) || (v[0] == '@' && is_plain_domain(v + 1)))) ||
	    (kind == PROP_DOMAIN && is_plain_domain(v))) {
		AR_ADD(buf, size, *n, " %s=%s", prop, v);
		return;
	}
	/* quoted-string: a value from outside can never end it early */
	for (i = 0; v[i] && o + 2 < sizeof q; i++) {
		if (v[i] == '"' || v[i] == '\\')
			q[o++] = '\\';
		q[o++] = v[i];
	}
	q[o] = '\0';
	AR_ADD(buf, size, *n, " %s=\"%s\"", prop, q);
}

/* A comment's text: printable, without the characters that would end or
 * nest it. */
static void comment_text(const char *in, char *out, size_t size)
{
	size_t o = 0;

	header_text(in, out, size, 0);
	for (; out[o]; o++)
		if (out[o] == '(' || out[o] == ')' || out[o] == '\\')
			out[o] = ' ';
}

void authres_begin(struct authres *a, char *buf, size_t size, const char *authserv_id, int utf8)
{
	a->buf = buf;
	a->size = size;
	a->n = 0;
	a->any = 0;
	a->utf8 = utf8;
	AR_ADD(buf, size, a->n, AR_NAME ": %s", authserv_id);
}

void authres_spf(struct authres *a, const struct spf_outcome *spf)
{
	AR_ADD(a->buf, a->size, a->n, ";\r\n\tspf=%s", spf_res_name(spf->res));
	if (spf->helo_identity)
		add_prop(a, "smtp.helo", spf->domain, PROP_DOMAIN);
	else
		add_prop(a, "smtp.mailfrom", spf->identity, PROP_ADDRESS);
	a->any = 1;
}

void authres_dkim(struct authres *a, const struct dkim_outcome *dkim)
{
	if (dkim->nsigs == 0)
		AR_ADD(a->buf, a->size, a->n, ";\r\n\tdkim=none");
	for (int i = 0; i < dkim->nsigs && i < DKIM_MAX_SIGS; i++) {
		const struct dkim_sig_result *s = &dkim->sig[i];

		AR_ADD(a->buf, a->size, a->n, ";\r\n\tdkim=%s", dkim_res_name(s->res));
		if (s->reason[0] && s->res != DKIM_RES_PASS) {
			char r[128];

			comment_text(s->reason, r, sizeof r);
			AR_ADD(a->buf, a->size, a->n, " (%s)", r);
		}
		add_prop(a, "header.d", s->domain, PROP_DOMAIN);
		add_prop(a, "header.s", s->selector, PROP_DOMAIN);
		add_prop(a, "header.b", s->b, PROP_TEXT);
	}
	a->any = 1;
}

void authres_dmarc(struct authres *a, const struct dmarc_outcome *o)
{
	AR_ADD(a->buf, a->size, a->n, ";\r\n\tdmarc=%s", dmarc_res_name(o->res));
	if (o->have_record)
		AR_ADD(a->buf, a->size, a->n, " (p=%s dis=%s)", dmarc_pol_name(o->published),
		       o->res == DMARC_RES_FAIL ? dmarc_pol_name(o->policy) : "none");
	if (o->from_domain[0])
		add_prop(a, "header.from", o->from_domain, PROP_DOMAIN);
	a->any = 1;
}

int authres_end(struct authres *a)
{
	if (!a->any)
		AR_ADD(a->buf, a->size, a->n, "; none");
	AR_ADD(a->buf, a->size, a->n, "\r\n");
	return a->n;
}

int authres_format(char *buf, size_t size, const char *authserv_id, int utf8, const struct spf_outcome *spf,
                   const struct dkim_outcome *dkim)
{
	struct authres a;

	authres_begin(&a, buf, size, authserv_id, utf8);
	if (spf)
		authres_spf(&a, spf);
	if (dkim)
		authres_dkim(&a, dkim);
	return authres_end(&a);
}

/* Skip white space, folding and (nested) comments (RFC 5322 CFWS). */
static const char *skip_cfws(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth > 0) {
			depth--;
		} else if (*p == '\\' && depth > 0 && p + 1 < end) {
			p++;
		} else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			break;
		}
		p++;
	}
	return p;
}

/* RFC 2045 token characters. */
static int token_char(char c)
{
	return c > ' ' && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

int authres_claims_head(const char *field, size_t len, int truncated, const char *authserv_id)
{
	const char *end = field + len, *p;
	char id[256];
	size_t n = 0;

	if (len < sizeof AR_NAME - 1 || strncasecmp(field, AR_NAME, sizeof AR_NAME - 1) != 0)
		return 0;
	p = field + sizeof AR_NAME - 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end)
		return truncated; /* the rest is unseen: it may be ours */
	if (*p != ':')
		return 0;
	p = skip_cfws(p + 1, end);
	if (p < end && *p == '"') {
		/* quoted-string authserv-id */
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (n + 1 >= sizeof id)
				return 1;
			id[n++] = *p;
		}
		if (p >= end)
			return 1; /* unterminated */
		p++;
	} else {
		/* token; '/' and '@' too, as some MTAs write them in ids */
		for (; p < end && (token_char(*p) || *p == '/' || *p == '@'); p++) {
			if (n + 1 >= sizeof id)
				return 1;
			id[n++] = *p;
		}
	}
	id[n] = '\0';
	/* After the id: CFWS, a version number or ';', else it does not parse,
	 * and nobody may claim our name through bad syntax. Nor through length:
	 * a field whose id or what follows it is not all in view goes too. */
	p = skip_cfws(p, end);
	if (n == 0 || (p < end && *p != ';' && !(*p >= '0' && *p <= '9')) || (p >= end && truncated))
		return 1;
	return strcasecmp(id, authserv_id) == 0;
}

int authres_claims(const char *field, size_t len, const char *authserv_id)
{
	return authres_claims_head(field, len, 0, authserv_id);
}

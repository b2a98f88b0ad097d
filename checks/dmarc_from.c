/* dmarc_from.c - the author domain of a message (see dmarc_from.h).
 *
 * The From value is read as RFC 5322 3.4 writes a mailbox-list, with the
 * obsolete forms a real header carries: comments (nested, with quoted
 * pairs) are dropped, quoted strings hide their '@', ',' and ':', a group
 * ("name: a@x, b@y;") lists its members, an angle address may carry a route
 * ("<@relay:user@domain>"). The domain of each address is put in A-labels;
 * each domain is kept once (RFC 7489 6.6.1: every one is evaluated). */
#include <strings.h>
#include <string.h>

#include "checks/dmarc_from.h"
#include "proxy/lib/domain.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/text.h"

#define FROM_VALUE_MAX 4096 /* a From value's bytes read (more: the rest is ignored) */

/* The value with comments removed and quoted strings blanked to 'q': what
 * is left has its structure in plain sight. */
static size_t strip(const char *v, size_t n, char *out, size_t size)
{
	size_t o = 0;
	int depth = 0, quoted = 0;

	for (size_t i = 0; i < n && o + 1 < size; i++) {
		char ch = v[i];

		if (ch == '\\' && (depth || quoted) && i + 1 < n) {
			i++;
			if (quoted)
				out[o++] = 'q';
			continue;
		}
		if (quoted) {
			if (ch == '"')
				quoted = 0;
			out[o++] = 'q';
		} else if (depth) {
			depth += ch == '(' ? 1 : ch == ')' ? -1 : 0;
		} else if (ch == '(') {
			depth = 1;
			out[o++] = ' ';
		} else if (ch == '"') {
			quoted = 1;
			out[o++] = 'q';
		} else {
			out[o++] = ch == '\r' || ch == '\n' || ch == '\t' ? ' ' : ch;
		}
	}
	out[o] = '\0';
	return o;
}

/* One address (a mailbox without its commas): its domain into out. */
static int mailbox_domain(char *m, size_t n, char *out, size_t size)
{
	char *lt = memchr(m, '<', n), *at, *end = m + n, *p;
	char dom[MOAT_DOMAIN_MAX + 2];
	size_t dn;

	if (lt) {
		char *gt = memchr(lt, '>', (size_t)(end - lt));

		if (!gt)
			return -1;
		m = lt + 1;
		end = gt;
		if ((p = memrchr(m, ':', (size_t)(end - m)))) /* an obsolete route */
			m = p + 1;
	}
	if (!(at = memrchr(m, '@', (size_t)(end - m))))
		return -1;
	for (p = at + 1; p < end && *p == ' '; p++)
		;
	while (end > p && end[-1] == ' ')
		end--;
	dn = (size_t)(end - p);
	if (dn == 0 || dn > MOAT_DOMAIN_MAX || memchr(p, ' ', dn) || *p == '[')
		return -1;
	memcpy(dom, p, dn);
	dom[dn] = '\0';
	if (domain_check(dom, dn, DOMAIN_LDH | DOMAIN_UTF8 | DOMAIN_TRAILING_DOT | DOMAIN_NOT_NUMERIC) < 0)
		return -1;
	return idna_to_ascii(dom, dn, out, size) < 0 ? -1 : 0;
}

static enum dmarc_from_status parse_value(const char *v, size_t n, char (*out)[MOAT_DOMAIN_MAX + 1], int *nout)
{
	char buf[FROM_VALUE_MAX + 1], dom[MOAT_DOMAIN_MAX + 1];
	size_t len = strip(v, n < FROM_VALUE_MAX ? n : FROM_VALUE_MAX, buf, sizeof buf);
	size_t start = 0;
	int angle = 0, k;

	*nout = 0;
	for (size_t i = 0; i <= len; i++) {
		char ch = i < len ? buf[i] : ',';

		if (ch == '<')
			angle = 1;
		else if (ch == '>')
			angle = 0;
		if (angle)
			continue;
		if (ch == ':') { /* a group's name ends: its members follow */
			start = i + 1;
			continue;
		}
		if (ch != ',' && ch != ';')
			continue;
		buf[i] = '\0';
		if (strspn(buf + start, " ") < i - start) { /* not an empty member */
			if (mailbox_domain(buf + start, i - start, dom, sizeof dom) < 0)
				return DMARC_FROM_BAD;
			for (k = 0; k < *nout && strcmp(out[k], dom) != 0; k++)
				;
			if (k == *nout) {
				if (*nout == MOAT_DMARC_AUTHORS_MAX)
					return DMARC_FROM_DOMAINS;
				text_copy(out[(*nout)++], MOAT_DOMAIN_MAX + 1, dom);
			}
		}
		start = i + 1;
	}
	return *nout ? DMARC_FROM_OK : DMARC_FROM_BAD;
}

/* Is the field at f (its first line) named name? Blanks may precede the colon. */
static const char *field_value(const char *f, const char *end, const char *name)
{
	size_t k = strlen(name);

	/* the first letter first: most lines are not the field (names are letters) */
	if ((size_t)(end - f) <= k || (f[0] | 0x20) != (name[0] | 0x20) || strncasecmp(f, name, k) != 0)
		return NULL;
	for (f += k; f < end && (*f == ' ' || *f == '\t'); f++)
		;
	return f < end && *f == ':' ? f + 1 : NULL;
}

/* The Message-ID value unfolded (each CR, LF or tab a space), trimmed. */
static void msgid_copy(const char *v, size_t n, char *out, size_t size)
{
	size_t o = 0;

	while (n && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	for (size_t i = 0; i < n && o + 1 < size; i++)
		out[o++] = v[i] == '\r' || v[i] == '\n' || v[i] == '\t' ? ' ' : v[i];
	out[o] = '\0';
}

void dmarc_from_scan(const char *hdr, size_t len, struct dmarc_from *out)
{
	const char *p = hdr, *end = hdr + len;
	int nfrom = 0, have_id = 0;

	/* the domains past ndomains are never read: not zeroed (1 KiB) */
	out->status = DMARC_FROM_OK;
	out->ndomains = 0;
	out->msgid[0] = '\0';
	while (p < end && *p != '\r' && *p != '\n') {
		const char *fe = p, *v;

		/* the field's end: a line that does not start with a blank */
		do {
			const char *nl = memchr(fe, '\n', (size_t)(end - fe));
			fe = nl ? nl + 1 : end;
		} while (fe < end && (*fe == ' ' || *fe == '\t'));
		if ((v = field_value(p, fe, "From")) && nfrom++ == 0)
			out->status = dmarc_from_value(v, (size_t)(fe - v), out->domain, &out->ndomains);
		else if (!have_id && (v = field_value(p, fe, "Message-ID"))) {
			msgid_copy(v, (size_t)(fe - v), out->msgid, sizeof out->msgid);
			have_id = 1;
		}
		p = fe;
	}
	if (nfrom == 0)
		out->status = DMARC_FROM_NONE;
	else if (nfrom > 1)
		out->status = DMARC_FROM_SEVERAL;
	if (out->status != DMARC_FROM_OK)
		out->ndomains = 0;
}

const char *dmarc_from_status_text(enum dmarc_from_status s)
{
	switch (s) {
	case DMARC_FROM_OK: return "from domain found";
	case DMARC_FROM_NONE: return "no From field";
	case DMARC_FROM_SEVERAL: return "several From fields";
	case DMARC_FROM_DOMAINS: return "From addresses in too many domains";
	case DMARC_FROM_BAD: return "From field without a usable address";
	}
	return "?";
}

/* Each message's From value is read twice: as it streams in (DMARC's
 * prefetch) and from the header section (dmarc_from_scan). The worker
 * keeps the last value read and its answer: the same bytes, the same
 * answer (the parse is pure), for a memcmp. Values over FROM_MEMO_MAX
 * bytes are parsed each time. */
#define FROM_MEMO_MAX 512
static _Thread_local struct {
	size_t n;                 /* 0: empty */
	char v[FROM_MEMO_MAX];
	enum dmarc_from_status st;
	int ndomains;
	char domain[MOAT_DMARC_AUTHORS_MAX][MOAT_DOMAIN_MAX + 1];
} memo;

enum dmarc_from_status dmarc_from_value(const char *v, size_t n, char (*out)[MOAT_DOMAIN_MAX + 1], int *nout)
{
	if (n == 0 || n > FROM_MEMO_MAX)
		return parse_value(v, n, out, nout);
	if (memo.n != n || memcmp(memo.v, v, n) != 0) {
		memo.n = 0;
		memo.st = parse_value(v, n, memo.domain, &memo.ndomains);
		memcpy(memo.v, v, n);
		memo.n = n;
	}
	*nout = memo.ndomains;
	for (int i = 0; i < memo.ndomains; i++)
		text_copy(out[i], MOAT_DOMAIN_MAX + 1, memo.domain[i]);
	return memo.st;
}

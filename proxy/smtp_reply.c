/* smtp_reply.c - server reply parsing (RFC 5321 4.2) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/smtp_reply.h"

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->len = 0;
	r->nlines = 0;
	r->text[0] = '\0';
}

enum reply_step smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len)
{
	int code;

	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return REPLY_BAD;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599 || (r->nlines > 0 && code != r->code))
		return REPLY_BAD;
	if (r->len + len + 3 > sizeof r->text || r->nlines >= MOAT_BACKEND_REPLY_LINES)
		return REPLY_BAD;
	if (memchr(line, '\0', len) || memchr(line, '\r', len))
		return REPLY_BAD;
	r->code = code;
	memcpy(r->text + r->len, line, len);
	r->len += len;
	memcpy(r->text + r->len, "\r\n", 3);
	r->len += 2;
	r->nlines++;
	return (len > 3 && line[3] == '-') ? REPLY_MORE : REPLY_DONE;
}

/* Does an EHLO line's keyword (after "250-"/"250 ") equal kw? */
static int ehlo_kw(const char *l, size_t n, const char *kw, const char **param)
{
	size_t k = strlen(kw);

	if (n < k || strncasecmp(l, kw, k) != 0 || (n > k && l[k] != ' '))
		return 0;
	if (param)
		*param = n > k ? l + k + 1 : NULL;
	return 1;
}

/* XCLIENT's attribute list ("NAME ADDR PORT ..."), case-insensitive. */
static unsigned xclient_attrs(const char *p, size_t n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} attrs[] = {
		{ "NAME", XCLIENT_NAME }, { "ADDR", XCLIENT_ADDR }, { "PORT", XCLIENT_PORT },
		{ "PROTO", XCLIENT_PROTO }, { "HELO", XCLIENT_HELO }, { "LOGIN", XCLIENT_LOGIN },
	};
	const char *end = p ? p + n : NULL;
	unsigned got = XCLIENT_OFFERED;

	while (p && p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t w = sp ? (size_t)(sp - p) : (size_t)(end - p);

		for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
			if (w == strlen(attrs[i].name) && strncasecmp(p, attrs[i].name, w) == 0)
				got |= attrs[i].bit;
		p += w + 1;
	}
	return got;
}

/* "PLAIN LOGIN CRAM-MD5" (n bytes; NULL: none): the mechanisms moat passes on. */
static void auth_mechs(const char *p, size_t n, struct ehlo_caps *caps)
{
	while (p && n > 0) {
		size_t w = 0;

		while (w < n && p[w] != ' ')
			w++;
		if (w == 5 && strncasecmp(p, "PLAIN", 5) == 0)
			caps->auth_plain = 1;
		else if (w == 5 && strncasecmp(p, "LOGIN", 5) == 0)
			caps->auth_login = 1;
		p += w;
		n -= w;
		while (n > 0 && *p == ' ')
			p++, n--;
	}
}

void ehlo_caps_parse(const struct smtp_reply *r, struct ehlo_caps *caps)
{
	const char *p = r->text, *end = r->text + r->len;
	int first = 1;

	memset(caps, 0, sizeof *caps);
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		const char *l = p + 4, *param;
		size_t n;

		if (!eol)
			break;
		n = eol > l ? (size_t)(eol - l) : 0;
		if (!first && n > 0) {
			if (ehlo_kw(l, n, "PIPELINING", NULL)) caps->pipelining = 1;
			else if (ehlo_kw(l, n, "8BITMIME", NULL)) caps->eightbit = 1;
			else if (ehlo_kw(l, n, "SMTPUTF8", NULL)) caps->smtputf8 = 1;
			else if (ehlo_kw(l, n, "DSN", NULL)) caps->dsn = 1;
			else if (ehlo_kw(l, n, "ENHANCEDSTATUSCODES", NULL)) caps->enhanced = 1;
			else if (ehlo_kw(l, n, "XFORWARD", NULL)) caps->xforward = 1;
			else if (ehlo_kw(l, n, "STARTTLS", NULL)) caps->starttls = 1;
			else if (ehlo_kw(l, n, "XCLIENT", &param))
				caps->xclient = xclient_attrs(param, param ? n - (size_t)(param - l) : 0);
			else if (ehlo_kw(l, n, "SIZE", &param))
				caps->size = param ? strtoul(param, NULL, 10) : 0;
			else if (ehlo_kw(l, n, "AUTH", &param) || (n > 5 && strncasecmp(l, "AUTH=", 5) == 0 && (param = l + 5)))
				auth_mechs(param, (size_t)(eol - param), caps);
		}
		first = 0;
		p = eol + 2;
	}
}

void reply_first_line(const char *text, char *out, size_t size)
{
	size_t n = strcspn(text, "\r\n");

	if (n >= size)
		n = size - 1;
	memcpy(out, text, n);
	out[n] = '\0';
}

static int id_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
	       c == '_' || c == '-';
}

/* The id starting at p (of the line ending at end): its length, 0 if none. */
static size_t id_at(const char *p, const char *end)
{
	size_t n = 0;

	while (p + n < end && id_char((unsigned char)p[n]))
		n++;
	while (n > 0 && p[n - 1] == '.') /* "queued as X." */
		n--;
	return n <= MOAT_QUEUE_ID_MAX ? n : 0;
}

/* ASCII case-insensitive search for the words w in [line, end), not in
 * the middle of a word ("msgid=" is not "id="). */
static const char *find_word(const char *line, const char *end, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = line; (size_t)(end - p) >= n; p++)
		if ((p == line || !id_char((unsigned char)p[-1])) && strncasecmp(p, w, n) == 0)
			return p;
	return NULL;
}

/* "2.0.0": an enhanced status code, not an id. */
static int is_enhanced(const char *p, const char *end)
{
	int dots = 0;

	for (; p < end; p++)
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			return 0;
	return dots == 2;
}

/* The word before w ("X Message accepted"), not the reply code or the
 * enhanced code: its length and *start, 0 if none. */
static size_t id_before(const char *line, const char *w, const char **start)
{
	const char *q = w, *p;

	while (q > line && q[-1] == ' ')
		q--;
	for (p = q; p > line && id_char((unsigned char)p[-1]); p--)
		;
	*start = p;
	if (p == q || p == line || is_enhanced(p, q))
		return 0;
	return id_at(p, q) == (size_t)(q - p) ? (size_t)(q - p) : 0;
}

int reply_queue_id(const char *text, char *out, size_t size)
{
	static const struct {
		const char *word;  /* the id follows it, or (before = 1) precedes it */
		int before;
	} forms[] = {
		{ "queued as ", 0 },                   /* Postfix */
		{ "id=", 0 },                          /* Exim */
		{ "Message accepted for delivery", 1 }, /* Sendmail, OpenSMTPD */
	};
	const char *line = text, *end;

	out[0] = '\0';
	for (; *line; line = *end ? end + 1 : end) {
		end = line + strcspn(line, "\r\n");
		for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
			const char *w = find_word(line, end, forms[i].word), *id;
			size_t n;

			if (!w)
				continue;
			if (forms[i].before) {
				n = id_before(line, w, &id);
			} else {
				id = w + strlen(forms[i].word);
				n = id_at(id, end);
			}
			if (n == 0 || n >= size)
				continue;
			memcpy(out, id, n);
			out[n] = '\0';
			return 1;
		}
	}
	return 0;
}

/* jsonline.c - one line of moat's JSON log, parsed (see jsonline.h)
 *
 * Speed matters (the report reads hundreds of megabytes): strings are
 * scanned eight bytes at a time for the bytes that need a look (quote,
 * backslash, control, non-ASCII); a string without escapes is not copied;
 * keys are looked up by trying first the one moat writes after the last. */
#include <stdint.h>
#include <string.h>

#include "proxy/lib/text.h"
#include "proxy/report/bounds.h"
#include "proxy/report/jsonline.h"

enum kind { K_STR, K_INT, K_TRUNC, K_SKIP };

struct key {
	const char *name;
	unsigned char len;
	unsigned char kind;
	unsigned char idx; /* K_STR: enum ll_field; K_INT: one of the integers */
};

enum { I_CODE, I_WORKER, I_MESSAGES, I_REJECTED, I_ERRORS };

#define KS(n, f) {n, sizeof n - 1, K_STR, f}
#define KI(n, f) {n, sizeof n - 1, K_INT, f}
#define KX(n) {n, sizeof n - 1, K_SKIP, 0}
/* In the order moat writes them (decision.c, session_log.c, the checks'
 * rows, session_end), so that the next key is usually the next entry. */
static const struct key keys[] = {
	KS("ts", LL_TS), KS("level", LL_LEVEL), KS("event", LL_EVENT), KI("worker", I_WORKER),
	KS("session", LL_SESSION), KS("client_ip", LL_CLIENT_IP), KS("helo", LL_HELO),
	KS("mail_from", LL_MAIL_FROM), KS("rcpt", LL_RCPT), KX("listener"), KX("tls_version"), KX("tls_cipher"),
	KX("auth_user"),
	KS("stage", LL_STAGE), KS("action", LL_ACTION),
	KI("code", I_CODE), KS("esc", LL_ESC), KS("reason", LL_REASON), KS("rule", LL_RULE),
	KS("rule_id", LL_RULE_ID), KS("rdns", LL_RDNS), KS("sender_domain", LL_SENDER_DOMAIN),
	KS("spf", LL_SPF), KS("spf_reason", LL_SPF_REASON), KS("dkim", LL_DKIM),
	KX("backend_tls"), KX("backend_tls_resumed"), KS("queue_id", LL_QUEUE_ID),
	KX("message_id"), KS("subject", LL_SUBJECT), KX("size"), KX("nrcpt"), KX("bare_lf"), KX("bare_cr"),
	KI("messages", I_MESSAGES), KI("rejected", I_REJECTED), KI("errors", I_ERRORS), KS("msg", LL_MSG),
	{"truncated", 9, K_TRUNC, 0},
};
#define NKEYS (sizeof keys / sizeof keys[0])

const char *logline_field_name(enum ll_field f)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].kind == K_STR && keys[i].idx == f)
			return keys[i].name;
	return "";
}

int ll_is(struct ll_str s, const char *w)
{
	size_t n = strlen(w);

	return s.p && s.n == n && memcmp(s.p, w, n) == 0;
}

struct cur {
	const unsigned char *p, *end;
	char *out;      /* next free byte of scratch */
	unsigned hint;  /* the key expected next */
	int depth;
};

/* Non-zero if any of the 8 bytes of x is '"', '\\', below 0x20 or above
 * 0x7f. Exact as to whether there is one (not always as to which). */
static inline uint64_t special8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & high;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *v)
{
	*v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		*v = *v << 4 | (unsigned)h;
	}
	return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* One escape after its backslash at c->p, decoded to o; the new o or NULL.
 * A surrogate not in a pair (valid JSON, not a character) becomes U+FFFD:
 * 6 or 12 input bytes never give more than 4 output bytes. */
static char *unescape(struct cur *c, char *o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	unsigned cp, lo;

	if (c->p >= c->end)
		return NULL;
	if (*c->p != 'u') {
		if (*c->p == '\0' || !(e = strchr(from, *c->p)))
			return NULL;
		c->p++;
		*o++ = to[e - from];
		return o;
	}
	if (hex4(c->p + 1, c->end, &cp) < 0)
		return NULL;
	c->p += 5;
	if (cp >= 0xd800 && cp < 0xdc00 && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' &&
	    hex4(c->p + 2, c->end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
		c->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	} else if (cp >= 0xd800 && cp < 0xe000) {
		cp = 0xfffd;
	}
	return put_utf8(o, cp);
}

/* A string at c->p (its opening quote) into *s. Without an escape it
 * points into the line; with one, into scratch. */
static int string(struct cur *c, struct ll_str *s)
{
	const unsigned char *start = ++c->p, *seg = start;
	char *o = NULL; /* set once an escape is seen */

	for (;;) {
		while (c->end - c->p >= 8) {
			uint64_t x;

			memcpy(&x, c->p, 8);
			if (special8(x))
				break;
			c->p += 8;
		}
		while (c->p < c->end && *c->p >= 0x20 && *c->p < 0x80 && *c->p != '"' && *c->p != '\\')
			c->p++;
		if (c->p >= c->end || *c->p < 0x20)
			return -1;
		if (*c->p >= 0x80) {
			size_t k = text_utf8_len(c->p, (size_t)(c->end - c->p));

			if (k == 0)
				return -1;
			c->p += k;
			continue;
		}
		if (*c->p == '"' && o == NULL) {
			/* no escape: the bytes in the line */
			s->p = (const char *)start;
			s->n = (size_t)(c->p++ - start);
			return 0;
		}
		if (o == NULL)
			o = c->out;
		memcpy(o, seg, (size_t)(c->p - seg));
		o += c->p - seg;
		if (*c->p++ == '"')
			break;
		if (!(o = unescape(c, o)))
			return -1;
		seg = c->p;
	}
	s->p = c->out;
	s->n = (size_t)(o - c->out);
	c->out = o;
	return 0;
}

static void ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int digits(struct cur *c)
{
	const unsigned char *s = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > s ? 0 : -1;
}

/* A number (RFC 8259 6); *v its value when it is an integer of at most 18
 * digits, else -1. */
static int number(struct cur *c, long long *v)
{
	const unsigned char *s = c->p;
	int neg = 0, integer = 1;

	if (*c->p == '-')
		neg = 1, c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (digits(c) < 0)
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++, integer = 0;
		if (digits(c) < 0)
			return -1;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++, integer = 0;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (digits(c) < 0)
			return -1;
	}
	*v = -1;
	if (integer && c->p - s - neg <= 18) {
		long long n = 0;

		for (const unsigned char *d = s + neg; d < c->p; d++)
			n = n * 10 + (*d - '0');
		*v = neg ? -n : n;
	}
	return 0;
}

static int literal(struct cur *c, const char *w, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

static int value(struct cur *c, struct ll_str *s, long long *num, int *truth);

/* An array or object that moat does not write: checked and skipped. */
static int container(struct cur *c)
{
	int obj = *c->p == '{';
	unsigned char close = obj ? '}' : ']';
	struct ll_str s;
	long long n;
	int t;

	if (++c->depth > REPORT_JSON_DEPTH)
		return -1;
	c->p++;
	ws(c);
	if (c->p < c->end && *c->p == close) {
		c->p++, c->depth--;
		return 0;
	}
	for (;;) {
		if (obj) {
			if (c->p >= c->end || *c->p != '"' || string(c, &s) < 0)
				return -1;
			ws(c);
			if (c->p >= c->end || *c->p++ != ':')
				return -1;
			ws(c);
		}
		if (value(c, &s, &n, &t) < 0)
			return -1;
		ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == close) {
			c->p++, c->depth--;
			return 0;
		}
		if (*c->p++ != ',')
			return -1;
		ws(c);
	}
}

/* A value: a string into *s (else s->p = NULL), an integer into *num (else
 * -1), true into *truth. */
static int value(struct cur *c, struct ll_str *s, long long *num, int *truth)
{
	s->p = NULL;
	s->n = 0;
	*num = -1;
	*truth = 0;
	if (c->p >= c->end)
		return -1;
	switch (*c->p) {
	case '"': return string(c, s);
	case '{': case '[': return container(c);
	case 't': *truth = 1; return literal(c, "true", 4);
	case 'f': return literal(c, "false", 5);
	case 'n': return literal(c, "null", 4);
	default:
		if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
			return number(c, num);
		return -1;
	}
}

static const struct key *find_key(struct cur *c, struct ll_str k)
{
	if (c->hint < NKEYS && keys[c->hint].len == k.n && memcmp(keys[c->hint].name, k.p, k.n) == 0)
		return &keys[c->hint++];
	for (unsigned i = 0; i < NKEYS; i++)
		if (keys[i].len == k.n && memcmp(keys[i].name, k.p, k.n) == 0) {
			c->hint = i + 1;
			return &keys[i];
		}
	return NULL;
}

static void store(struct logline *l, const struct key *k, struct ll_str s, long long num, int truth)
{
	long long *ints[] = {&l->code, &l->worker, &l->messages, &l->rejected, &l->errors};

	if (!k)
		return;
	if (k->kind == K_STR)
		l->f[k->idx] = s;
	else if (k->kind == K_INT)
		*ints[k->idx] = num;
	else if (k->kind == K_TRUNC)
		l->truncated = truth;
}

static int members(struct cur *c, struct logline *l)
{
	for (;;) {
		struct ll_str k, s;
		long long num;
		int truth;

		ws(c);
		if (c->p >= c->end || *c->p != '"' || string(c, &k) < 0)
			return -1;
		ws(c);
		if (c->p >= c->end || *c->p++ != ':')
			return -1;
		ws(c);
		if (value(c, &s, &num, &truth) < 0)
			return -1;
		store(l, find_key(c, k), s, num, truth);
		ws(c);
		if (c->p < c->end && *c->p == '}')
			return 0;
		if (c->p >= c->end || *c->p++ != ',')
			return -1;
	}
}

int logline_parse(struct logline *l, const char *line, size_t len, char *scratch)
{
	struct cur c = {(const unsigned char *)line, (const unsigned char *)line + len, scratch, 0, 0};

	memset(l->f, 0, sizeof l->f);
	l->code = l->worker = l->messages = l->rejected = l->errors = -1;
	l->truncated = 0;
	ws(&c);
	if (c.p >= c.end || *c.p++ != '{')
		return -1;
	ws(&c);
	if (c.p < c.end && *c.p == '}') {
		/* {} */
	} else if (members(&c, l) < 0) {
		return -1;
	}
	c.p++;
	ws(&c);
	return c.p == c.end ? 0 : -1;
}

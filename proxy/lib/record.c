/* record.c - the record format of record_dir: see record.h. Pure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/record.h"

#define RECORD_FIELDS_MAX 8           /* values on one line */
#define RECORD_VALUE_MAX 1024         /* a decoded value, a DNS reply's hex aside */
#define RECORD_ABUF_MAX 65535         /* a DNS reply (TCP) */
#define RECORD_OUT_FIRST 4096         /* a record's buffer at first: most stay that small */

static const char *const stage_names[RECORD_STAGES] = {"connect", "helo", "mail", "data"};

const char *record_stage_name(enum record_stage s)
{
	return (unsigned)s < RECORD_STAGES ? stage_names[s] : "?";
}

int record_stage_index(const char *name)
{
	for (int i = 0; i < RECORD_STAGES; i++)
		if (strcmp(name, stage_names[i]) == 0)
			return i;
	return -1;
}

/* ---- writing ---- */

int record_out_init(struct record_out *o, size_t cap)
{
	size_t first = cap < RECORD_OUT_FIRST ? cap : RECORD_OUT_FIRST;

	*o = (struct record_out){.buf = malloc(first ? first : 1), .size = first, .cap = cap};
	return o->buf ? 0 : -1;
}

void record_out_free(struct record_out *o)
{
	free(o->buf);
	o->buf = NULL;
}

int record_encode(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (!src[0] || strcmp(src, "-") == 0) {
		if (size < 4)
			return -1;
		strcpy(dst, src[0] ? "%2D" : "-");
		return 0;
	}
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		if (o + 4 > size)
			return -1;
		if (*p <= ' ' || *p >= 0x7f || *p == '%') {
			dst[o++] = '%';
			dst[o++] = hex[*p >> 4];
			dst[o++] = hex[*p & 15];
		} else {
			dst[o++] = (char)*p;
		}
	}
	dst[o] = '\0';
	return 0;
}

/* Append; what does not fit under cap (or in memory) marks the record full. */
void record_put(struct record_out *o, const void *s, size_t n)
{
	if (o->full || o->len > o->cap || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	if (n > o->size - o->len) {
		size_t size = o->size ? o->size : RECORD_OUT_FIRST;
		char *b;

		while (size < o->len + n)
			size = size > o->cap / 2 ? o->cap : size * 2;
		if (!(b = realloc(o->buf, size))) {
			o->full = 1;
			return;
		}
		o->buf = b;
		o->size = size;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}


void record_line(struct record_out *o, const char *key, int n, const char *const *vals)
{
	char enc[RECORD_VALUE_MAX * 3 + 4];

	record_put(o, key, strlen(key));
	for (int i = 0; i < n; i++) {
		if (record_encode(enc, sizeof enc, vals[i]) < 0)
			strcpy(enc, "-"); /* not from a bounded field: cannot happen */
		record_put(o, " ", 1);
		record_put(o, enc, strlen(enc));
	}
	record_put(o, "\n", 1);
}

void record_verdict_line(struct record_out *o, const char *key, const char *name, const struct record_verdict *v)
{
	char code[16];
	const char *vals[6];
	int n = 0;

	snprintf(code, sizeof code, "%d", v->code);
	vals[n++] = name;
	vals[n++] = v->judged ? code : "";
	vals[n++] = v->esc;
	vals[n++] = v->rule;
	vals[n++] = v->reason;
	record_line(o, key, n, vals);
}

int record_answer_line(struct record_out *o, const struct record_answer *a, size_t bound)
{
	static const char hex[] = "0123456789abcdef";
	char head[RECORD_NAME_MAX * 3 + 64], name[RECORD_NAME_MAX * 3 + 4];
	int n;

	if (record_encode(name, sizeof name, a->name) < 0)
		return -1;
	n = snprintf(head, sizeof head, "dns %d %d %u %s ", a->type, a->status, (unsigned)a->ttl, name);
	if (n < 0 || (size_t)n + (size_t)a->alen * 2 + 2 > bound - (o->len < bound ? o->len : bound) ||
	    o->len >= bound)
		return -1;
	record_put(o, head, (size_t)n);
	if (!a->abuf || a->alen <= 0)
		record_put(o, "-", 1);
	for (int i = 0; a->abuf && i < a->alen && !o->full; i++) {
		char x[2] = {hex[a->abuf[i] >> 4], hex[a->abuf[i] & 15]};

		record_put(o, x, 2);
	}
	record_put(o, "\n", 1);
	return o->full ? -1 : 0;
}

/* ---- reading ---- */

struct parse {
	struct record *r;
	char *err;
	size_t errsize;
	int lineno;
	unsigned char *mem;      /* where decoded replies go */
	size_t memused;
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errsize, "line %d: ", p->lineno);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errsize)
		vsnprintf(p->err + n, p->errsize - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode one value into dst (size bytes): -1 if bad or too long. A NUL
 * byte (%00) is refused: values are C strings. */
static int decode(const char *s, size_t n, char *dst, size_t size)
{
	size_t o = 0;

	if (n == 1 && s[0] == '-') {
		dst[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		} else if (c <= ' ' || c >= 0x7f) {
			return -1;
		}
		if (o + 1 >= size)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* A decimal integer in [min, max]. */
static int number(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;

	if (!*s || strlen(s) > 18)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The values of a line (after its key), decoded; the count, or -1. The
 * reply of a dns line is left encoded (hex): *raw points at it. */
static int split(const char *s, size_t n, char vals[][RECORD_VALUE_MAX], int max, int keep_last,
                 const char **raw, size_t *rawlen)
{
	int nv = 0;
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && s[j] != ' ')
			j++;
		if (j == i || nv == max)
			return -1;
		if (keep_last && nv == max - 1) {
			*raw = s + i;
			*rawlen = j - i;
		} else if (decode(s + i, j - i, vals[nv], RECORD_VALUE_MAX) < 0) {
			return -1;
		}
		nv++;
		i = j + (j < n);
		if (j < n && j + 1 == n)
			return -1; /* a trailing space */
	}
	return nv;
}

static int copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* code esc rule reason -> v */
static int verdict(struct parse *p, char vals[][RECORD_VALUE_MAX], struct record_verdict *v)
{
	long long code;

	memset(v, 0, sizeof *v);
	if (vals[0][0] == '\0')
		return 0; /* not judged */
	if (number(vals[0], 0, 599, &code) < 0 || (code && code < 400))
		return fail(p, "bad reply code");
	v->judged = 1;
	v->code = (int)code;
	if (copy(v->esc, sizeof v->esc, vals[1]) < 0 || copy(v->rule, sizeof v->rule, vals[2]) < 0 ||
	    copy(v->reason, sizeof v->reason, vals[3]) < 0)
		return fail(p, "verdict field too long");
	return 0;
}

static int parse_dns(struct parse *p, char vals[][RECORD_VALUE_MAX], const char *raw, size_t rawlen)
{
	struct record *r = p->r;
	struct record_answer *a;
	long long type, status, ttl;

	if (r->nans == MOAT_RECORD_ANSWERS_MAX)
		return fail(p, "more than %d DNS answers", MOAT_RECORD_ANSWERS_MAX);
	a = &r->ans[r->nans];
	if (number(vals[0], 1, 65535, &type) < 0 || number(vals[1], 0, 3, &status) < 0 ||
	    number(vals[2], 0, 0xffffffffLL, &ttl) < 0 || copy(a->name, sizeof a->name, vals[3]) < 0)
		return fail(p, "bad dns line");
	a->type = (int)type;
	a->status = (int)status;
	a->ttl = (uint32_t)ttl;
	if (!(rawlen == 1 && raw[0] == '-')) {
		if (rawlen % 2 || rawlen / 2 > RECORD_ABUF_MAX || rawlen == 0)
			return fail(p, "bad DNS reply");
		a->abuf = p->mem + p->memused;
		for (size_t i = 0; i < rawlen; i += 2) {
			int hi = hexval(raw[i]), lo = hexval(raw[i + 1]);

			if (hi < 0 || lo < 0)
				return fail(p, "bad DNS reply");
			p->mem[p->memused++] = (unsigned char)(hi << 4 | lo);
		}
		a->alen = (int)(rawlen / 2);
	}
	r->nans++;
	return 0;
}

static int parse_client(struct parse *p, char vals[][RECORD_VALUE_MAX], int nv)
{
	struct record *r = p->r;

	if (nv != 4 || copy(r->client, sizeof r->client, vals[0]) < 0 || !r->client[0] ||
	    copy(r->listener, sizeof r->listener, vals[1]) < 0 || (strcmp(vals[2], "0") && strcmp(vals[2], "1")) ||
	    copy(r->auth_user, sizeof r->auth_user, vals[3]) < 0)
		return fail(p, "bad client line");
	r->tls = vals[2][0] == '1';
	return 0;
}

static int parse_rcpt(struct parse *p, char vals[][RECORD_VALUE_MAX], int nv)
{
	struct record *r = p->r;

	if (nv != 5)
		return fail(p, "bad rcpt line");
	if (r->nrcpt == MOAT_RECORD_RCPTS_MAX)
		return fail(p, "more than %d recipients", MOAT_RECORD_RCPTS_MAX);
	if (copy(r->rcpt[r->nrcpt].mailbox, sizeof r->rcpt[0].mailbox, vals[0]) < 0 || !vals[0][0])
		return fail(p, "bad recipient");
	if (verdict(p, vals + 1, &r->rcpt[r->nrcpt].v) < 0)
		return -1;
	r->nrcpt++;
	return 0;
}

/* One line (not the magic, not "message"). */
static int parse_line(struct parse *p, const char *s, size_t n)
{
	char vals[RECORD_FIELDS_MAX][RECORD_VALUE_MAX];
	struct record *r = p->r;
	size_t k = 0;
	const char *raw = NULL;
	size_t rawlen = 0;
	long long v1, v2;
	int nv, isdns;

	while (k < n && s[k] != ' ')
		k++;
	isdns = k == 3 && memcmp(s, "dns", 3) == 0;
	nv = k < n ? split(s + k + 1, n - k - 1, vals, isdns ? 5 : RECORD_FIELDS_MAX, isdns, &raw, &rawlen) : 0;
	if (nv < 0)
		return fail(p, "bad value");
#define KEY(w) (k == sizeof w - 1 && memcmp(s, w, k) == 0)
	if (isdns)
		return nv == 5 ? parse_dns(p, vals, raw, rawlen) : fail(p, "bad dns line");
	if (KEY("time")) {
		if (nv != 1 || number(vals[0], 0, 1LL << 40, &v1) < 0)
			return fail(p, "bad time");
		r->time = v1;
	} else if (KEY("session")) {
		if (nv != 2 || copy(r->session, sizeof r->session, vals[0]) < 0 || number(vals[1], 0, 1 << 30, &v2) < 0)
			return fail(p, "bad session line");
		r->ntx = (int)v2;
	} else if (KEY("client")) {
		return parse_client(p, vals, nv);
	} else if (KEY("helo")) {
		if (nv != 1 || copy(r->helo, sizeof r->helo, vals[0]) < 0)
			return fail(p, "bad helo line");
	} else if (KEY("mail")) {
		if (nv != 1 || copy(r->from, sizeof r->from, vals[0]) < 0)
			return fail(p, "bad mail line");
		r->has_mail = 1;
	} else if (KEY("rcpt")) {
		return parse_rcpt(p, vals, nv);
	} else if (KEY("stage")) {
		int i = nv == 5 ? record_stage_index(vals[0]) : -1;

		if (i < 0)
			return fail(p, "bad stage line");
		return verdict(p, vals + 1, &r->stage[i]);
	} else if (KEY("checks")) {
		int i = nv == 2 ? record_stage_index(vals[0]) : -1;

		if (i < 0 || copy(r->checks[i], sizeof r->checks[i], vals[1]) < 0)
			return fail(p, "bad checks line");
	} else if (KEY("dropped-answers")) {
		if (nv != 1 || number(vals[0], 0, 1 << 30, &v1) < 0)
			return fail(p, "bad dropped-answers line");
		r->dropped_answers = (int)v1;
	} /* else: a line of a later version, skipped */
#undef KEY
	return 0;
}

int record_parse(const char *buf, size_t len, struct record *r, char *err, size_t errsize)
{
	struct parse p = {r, err, errsize, 1, NULL, 0};
	size_t i, magic = strlen(RECORD_MAGIC);

	memset(r, 0, sizeof *r);
	if (len < magic + 1 || memcmp(buf, RECORD_MAGIC "\n", magic + 1) != 0)
		return fail(&p, "not a moat record (no \"%s\" line)", RECORD_MAGIC);
	if (len > MOAT_RECORD_FILE_MAX)
		return fail(&p, "over %d bytes", MOAT_RECORD_FILE_MAX);
	r->rcpt = calloc(MOAT_RECORD_RCPTS_MAX, sizeof *r->rcpt);
	r->ans = calloc(MOAT_RECORD_ANSWERS_MAX, sizeof *r->ans);
	r->mem = p.mem = malloc(len / 2 + 1);
	if (!r->rcpt || !r->ans || !r->mem) {
		record_free(r);
		return fail(&p, "out of memory");
	}
	for (i = magic + 1; i < len;) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
		long long mlen;

		p.lineno++;
		if (!nl) {
			record_free(r);
			return fail(&p, "no line end");
		}
		if (n > 8 && memcmp(buf + i, "message ", 8) == 0) {
			char num[24];

			if (n - 8 >= sizeof num || (memcpy(num, buf + i + 8, n - 8), num[n - 8] = '\0',
			                            number(num, 0, MOAT_RECORD_MESSAGE_MAX, &mlen) < 0) ||
			    (size_t)mlen != len - i - n - 1) {
				record_free(r);
				return fail(&p, "bad message length");
			}
			r->message = (const unsigned char *)buf + i + n + 1;
			r->message_len = (size_t)mlen;
			break;
		}
		if (parse_line(&p, buf + i, n) < 0) {
			record_free(r);
			return -1;
		}
		i += n + 1;
	}
	if (!r->client[0]) {
		record_free(r);
		return fail(&p, "no client line");
	}
	return 0;
}

void record_free(struct record *r)
{
	free(r->rcpt);
	free(r->ans);
	free(r->mem);
	r->rcpt = NULL;
	r->ans = NULL;
	r->mem = NULL;
}

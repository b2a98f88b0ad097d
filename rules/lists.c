/* lists.c - list files for the rules: domains and addresses in a hash set,
 * networks as sorted, merged address ranges (binary search).
 *
 * A network list needs no longest-prefix match, only "is the address in any
 * of them", so overlapping and adjacent networks are merged into disjoint
 * ranges at load: 10.0.0.0/8 and 10.1.0.0/16 become one range, and a lookup
 * is one binary search over at most the number of entries. */
#include "rules/lists.h"
#include "proxy/lib/domain.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/strset.h"
#include "proxy/lib/text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHOW_MAX TEXT_SHOW_MAX

struct u128 {
	uint64_t hi, lo;
};
struct range4 {
	uint32_t lo, hi;
};
struct range6 {
	struct u128 lo, hi;
};

struct rule_list {
	enum list_kind kind;
	char *name;
	size_t entries;
	struct strset *set;  /* domains, addresses */
	uint64_t suffix_labels; /* bit n: some ".domain" entry has n labels (63: 63 or more) */
	struct range4 *v4;   /* networks, sorted and disjoint once built */
	size_t n4, cap4;
	struct range6 *v6;
	size_t n6, cap6;
};

/* ---- entry syntax ---- */

/* Host names in lists may hold '_' (DKIM selectors, SRV-style names). */
int list_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n <= 253 && domain_check(s, n, DOMAIN_LDH | DOMAIN_UNDERSCORE | DOMAIN_NOT_NUMERIC) >= 0;
}

int list_address_ok(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at - s > 64 * 2 + 2)
		return 0;
	for (const char *p = s; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	return list_name_ok(at + 1);
}

/* ---- messages ---- */

__attribute__((format(printf, 5, 6)))
static int lerr(char *err, size_t errsize, const char *name, int line, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (err && errsize)
		snprintf(err, errsize, "%s:%d: %s", name, line, what);
	return -1;
}

/* ---- building ---- */

/* Labels in a name or a ".domain" (its dots). */
static unsigned labels(const char *s)
{
	unsigned n = s[0] != '.';

	for (; *s; s++)
		n += *s == '.';
	return n;
}

static uint64_t label_bit(unsigned n)
{
	return 1ULL << (n > 63 ? 63 : n);
}

static struct u128 u128_from(const uint8_t b[16])
{
	struct u128 v = { 0, 0 };

	for (int i = 0; i < 8; i++) {
		v.hi = v.hi << 8 | b[i];
		v.lo = v.lo << 8 | b[i + 8];
	}
	return v;
}

static int u128_cmp(struct u128 a, struct u128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	return a.lo < b.lo ? -1 : a.lo > b.lo;
}

/* a + 1 == b, without overflow past the top */
static int u128_next(struct u128 a, struct u128 b)
{
	struct u128 n = { a.hi + (a.lo == UINT64_MAX), a.lo + 1 };

	return !(a.hi == UINT64_MAX && a.lo == UINT64_MAX) && u128_cmp(n, b) == 0;
}

static int add_network(struct rule_list *l, const struct cidr *c)
{
	if (c->family == AF_INET) {
		uint32_t a = (uint32_t)c->addr[0] << 24 | (uint32_t)c->addr[1] << 16 |
		             (uint32_t)c->addr[2] << 8 | c->addr[3];
		uint32_t host = c->prefix >= 32 ? 0 : UINT32_MAX >> c->prefix;

		if (l->n4 == l->cap4) {
			size_t cap = l->cap4 ? l->cap4 * 2 : 256;
			struct range4 *r = realloc(l->v4, cap * sizeof *r);

			if (!r)
				return -1;
			l->v4 = r;
			l->cap4 = cap;
		}
		l->v4[l->n4++] = (struct range4){ a, a | host };
		return 0;
	}
	struct u128 lo = u128_from(c->addr), host;

	host.hi = c->prefix >= 64 ? 0 : UINT64_MAX >> c->prefix;
	host.lo = c->prefix <= 64 ? UINT64_MAX : c->prefix >= 128 ? 0 : UINT64_MAX >> (c->prefix - 64);
	if (l->n6 == l->cap6) {
		size_t cap = l->cap6 ? l->cap6 * 2 : 64;
		struct range6 *r = realloc(l->v6, cap * sizeof *r);

		if (!r)
			return -1;
		l->v6 = r;
		l->cap6 = cap;
	}
	l->v6[l->n6++] = (struct range6){ lo, { lo.hi | host.hi, lo.lo | host.lo } };
	return 0;
}

static int cmp4(const void *a, const void *b)
{
	const struct range4 *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cmp6(const void *a, const void *b)
{
	const struct range6 *x = a, *y = b;

	return u128_cmp(x->lo, y->lo);
}

/* Sort by start, then fold each range into the previous one when they
 * overlap or touch. */
static void merge_networks(struct rule_list *l)
{
	size_t i, n;

	if (l->n4) {
		qsort(l->v4, l->n4, sizeof *l->v4, cmp4);
		for (i = 1, n = 0; i < l->n4; i++) {
			struct range4 *last = &l->v4[n];

			if (l->v4[i].lo <= last->hi || (last->hi != UINT32_MAX && l->v4[i].lo == last->hi + 1)) {
				if (l->v4[i].hi > last->hi)
					last->hi = l->v4[i].hi;
			} else {
				l->v4[++n] = l->v4[i];
			}
		}
		l->n4 = n + 1;
	}
	if (l->n6) {
		qsort(l->v6, l->n6, sizeof *l->v6, cmp6);
		for (i = 1, n = 0; i < l->n6; i++) {
			struct range6 *last = &l->v6[n];

			if (u128_cmp(l->v6[i].lo, last->hi) <= 0 || u128_next(last->hi, l->v6[i].lo)) {
				if (u128_cmp(l->v6[i].hi, last->hi) > 0)
					last->hi = l->v6[i].hi;
			} else {
				l->v6[++n] = l->v6[i];
			}
		}
		l->n6 = n + 1;
	}
}

/* One entry, lower-cased in buf: validate and store. */
static int add_entry(struct rule_list *l, char *buf, size_t n, char *err, size_t errsize, int line)
{
	char shown[SHOW_MAX + 4];
	struct cidr c;

	text_show(buf, n, shown);
	switch (l->kind) {
	case LIST_DOMAINS:
		if (n > 1 && buf[n - 1] == '.')
			buf[--n] = '\0'; /* "example.com." is example.com */
		if (!list_name_ok(buf[0] == '.' ? buf + 1 : buf))
			return lerr(err, errsize, l->name, line, "\"%s\" is not a domain name or .domain", shown);
		if (buf[0] == '.')
			l->suffix_labels |= label_bit(labels(buf));
		break;
	case LIST_ADDRESSES:
		if (!list_address_ok(buf))
			return lerr(err, errsize, l->name, line, "\"%s\" is not an address (user@domain or @domain)",
			            shown);
		break;
	case LIST_NETWORKS:
		if (cidr_parse(buf, &c) < 0)
			return lerr(err, errsize, l->name, line, "\"%s\" is not an IP address or network", shown);
		if (add_network(l, &c) < 0)
			return lerr(err, errsize, l->name, line, "out of memory");
		l->entries++;
		return 0;
	}
	if (strset_add(l->set, buf, n) < 0)
		return lerr(err, errsize, l->name, line, "out of memory");
	l->entries++;
	return 0;
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* One line (without its LF): at most one entry, then blanks or a comment. */
static int parse_line(struct rule_list *l, const char *s, size_t n, char *err, size_t errsize, int line)
{
	char buf[LIST_ENTRY_MAX + 1], shown[SHOW_MAX + 4];
	size_t i = 0, start, len;

	while (i < n && is_blank(s[i]))
		i++;
	if (i == n || s[i] == '#')
		return 0;
	start = i;
	while (i < n && !is_blank(s[i]))
		i++;
	len = i - start;
	while (i < n && is_blank(s[i]))
		i++;
	if (i < n && s[i] != '#') {
		text_show(s + start, n - start, shown);
		return lerr(err, errsize, l->name, line, "\"%s\": one entry a line", shown);
	}
	if (len > LIST_ENTRY_MAX) {
		text_show(s + start, len, shown);
		return lerr(err, errsize, l->name, line, "\"%s\" is too long (max %d bytes)", shown, LIST_ENTRY_MAX);
	}
	for (i = 0; i < len; i++) {
		char ch = s[start + i];

		buf[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	buf[len] = '\0';
	return add_entry(l, buf, len, err, errsize, line);
}

struct rule_list *list_parse(const char *text, size_t len, const char *name, enum list_kind kind,
                             char *err, size_t errsize)
{
	struct rule_list *l = calloc(1, sizeof *l);
	struct text_lines t;
	const char *start;
	size_t n;
	int r;

	if (err && errsize)
		err[0] = '\0';
	if (!l || !(l->name = strdup(name)) || (kind != LIST_NETWORKS && !(l->set = strset_new()))) {
		list_free(l);
		if (err && errsize)
			snprintf(err, errsize, "%s: out of memory", name);
		return NULL;
	}
	l->kind = kind;
	text_lines_begin(&t, text, len);
	while ((r = text_lines_next(&t, &start, &n)) != 0) {
		if ((r < 0 && lerr(err, errsize, l->name, t.line, "NUL byte in line") < 0) ||
		    parse_line(l, start, n, err, errsize, t.line) < 0) {
			list_free(l);
			return NULL;
		}
	}
	merge_networks(l);
	return l;
}

struct rule_list *list_load(const char *path, enum list_kind kind, char *err, size_t errsize)
{
	char dummy[1], msg[256];
	struct rule_list *l;
	size_t len;
	char *text;

	if (!err || !errsize) {
		err = dummy;
		errsize = sizeof dummy;
	}
	if (!(text = file_read(path, LIST_FILE_MAX, &len, NULL, msg, sizeof msg))) {
		snprintf(err, errsize, "%s: %s", path, msg);
		return NULL;
	}
	l = list_parse(text, len, path, kind, err, errsize);
	free(text);
	return l;
}

void list_free(struct rule_list *l)
{
	if (!l)
		return;
	strset_free(l->set);
	free(l->v4);
	free(l->v6);
	free(l->name);
	free(l);
}

/* ---- lookups ---- */

int list_has_name(const struct rule_list *l, const char *name)
{
	if (l->kind != LIST_DOMAINS)
		return 0;
	if (strset_has(l->set, name, strlen(name)))
		return 1;
	/* ".b.c", ".c": only where some entry has that many labels */
	unsigned left = labels(name);

	for (const char *p = strchr(name, '.'); p && l->suffix_labels; p = strchr(p + 1, '.'))
		if ((l->suffix_labels & label_bit(--left)) && strset_has(l->set, p, strlen(p)))
			return 1;
	return 0;
}

int list_has_address(const struct rule_list *l, const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (l->kind != LIST_ADDRESSES)
		return 0;
	return strset_has(l->set, addr, strlen(addr)) || (at && strset_has(l->set, at, strlen(at)));
}

int list_has_ip(const struct rule_list *l, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *b;
	size_t lo = 0, hi;

	if (l->kind != LIST_NETWORKS || !sa)
		return 0;
	if (sa->sa_family == AF_INET6) {
		b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(b, mapped, sizeof mapped) != 0) {
			struct u128 a = u128_from(b);

			/* the last range starting at or below a */
			for (hi = l->n6; lo < hi;) {
				size_t mid = lo + (hi - lo) / 2;

				if (u128_cmp(l->v6[mid].lo, a) <= 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			return lo > 0 && u128_cmp(a, l->v6[lo - 1].hi) <= 0;
		}
		b += 12;
	} else if (sa->sa_family == AF_INET) {
		b = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else {
		return 0;
	}
	uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];

	for (hi = l->n4; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v4[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && a <= l->v4[lo - 1].hi;
}

enum list_kind list_kind(const struct rule_list *l)
{
	return l->kind;
}

const char *list_name(const struct rule_list *l)
{
	return l->name;
}

size_t list_entries(const struct rule_list *l)
{
	return l->entries;
}

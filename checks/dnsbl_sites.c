/* dnsbl_sites.c - the dnsbl_sites / dbl_sites syntax (postscreen's
 * postscreen_dnsbl_sites) and what an answer means. Pure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "checks/dnsbl_sites.h"
#include "proxy/lib/domain.h"

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errsize, const char *entry, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(err, errsize, "\"%.300s\": %s", entry, what);
	return -1;
}

/* A decimal number 0..255 at *s; -1 if none. */
static int octet_num(const char **s)
{
	int v = 0, n = 0;

	while (**s >= '0' && **s <= '9' && n < 4) {
		v = v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	return n == 0 || n > 3 || v > 255 ? -1 : v;
}

static void set_bits(uint8_t bits[32], int lo, int hi)
{
	for (int v = lo; v <= hi; v++)
		bits[v >> 3] |= (uint8_t)(1u << (v & 7));
}

/* One octet pattern: "7", or "[2..11]", "[2;4;10..11]". */
static int octet_pattern(const char **s, uint8_t bits[32])
{
	int lo, hi;

	if (**s != '[') {
		if ((lo = octet_num(s)) < 0)
			return -1;
		set_bits(bits, lo, lo);
		return 0;
	}
	(*s)++;
	for (;;) {
		if ((lo = octet_num(s)) < 0)
			return -1;
		hi = lo;
		if ((*s)[0] == '.' && (*s)[1] == '.') {
			*s += 2;
			if ((hi = octet_num(s)) < 0 || hi < lo)
				return -1;
		}
		set_bits(bits, lo, hi);
		if (**s == ']') {
			(*s)++;
			return 0;
		}
		if (**s != ';')
			return -1;
		(*s)++;
	}
}

static int parse_filter(const char *s, struct dnsbl_site *site)
{
	for (int i = 0; i < 4; i++) {
		if (octet_pattern(&s, site->octet[i]) < 0)
			return -1;
		if (i < 3 && *s++ != '.')
			return -1;
	}
	site->has_filter = 1;
	return *s == '\0' ? 0 : -1;
}

/* An integer weight, sign allowed, at most MOAT_DNSBL_WEIGHT_MAX away from 0. */
static int parse_weight(const char *s, int *w)
{
	int neg = 0, v = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || (v = v * 10 + (*s - '0')) > MOAT_DNSBL_WEIGHT_MAX)
			return -1;
	}
	*w = neg ? -v : v;
	return 0;
}

/* One entry, NUL-terminated in buf (which it cuts). */
static int parse_entry(char *buf, struct dnsbl_site *site, char *err, size_t errsize)
{
	char entry[512], *star, *eq;
	size_t n;

	snprintf(entry, sizeof entry, "%s", buf);
	site->weight = 1;
	if ((star = strrchr(buf, '*'))) {
		*star = '\0';
		if (parse_weight(star + 1, &site->weight) < 0)
			return fail(err, errsize, entry, "the weight after '*' is not an integer from -%d to %d",
			            MOAT_DNSBL_WEIGHT_MAX, MOAT_DNSBL_WEIGHT_MAX);
	}
	if ((eq = strchr(buf, '='))) {
		*eq = '\0';
		if (parse_filter(eq + 1, site) < 0)
			return fail(err, errsize, entry,
			            "the filter after '=' is not d.d.d.d (each d a number 0-255 or a [] "
			            "pattern of ';'-separated numbers and n..m ranges)");
	}
	n = strlen(buf);
	if (n > 1 && buf[n - 1] == '.')
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32 : buf[i]);
	if (n == 0 || n >= sizeof site->zone ||
	    domain_check(buf, n, DOMAIN_LDH | DOMAIN_UNDERSCORE | DOMAIN_MULTI_LABEL | DOMAIN_NOT_NUMERIC) != 0)
		return fail(err, errsize, entry, "not a DNS list zone (a domain name with a dot)");
	memcpy(site->zone, buf, n + 1);
	return 0;
}

int dnsbl_sites_parse(const char *text, struct dnsbl_sites *out, char *err, size_t errsize)
{
	const char *p = text;

	memset(out, 0, sizeof *out);
	if (err && errsize)
		err[0] = '\0';
	for (;;) {
		char buf[512];
		size_t n;

		p += strspn(p, ", \t");
		if (!*p)
			return 0;
		n = strcspn(p, ", \t");
		if (n >= sizeof buf)
			return fail(err, errsize, p, "entry too long");
		if (out->n == MOAT_DNSBL_SITES_MAX)
			return fail(err, errsize, p, "too many entries (max %d)", MOAT_DNSBL_SITES_MAX);
		memcpy(buf, p, n);
		buf[n] = '\0';
		if (parse_entry(buf, &out->site[out->n], err, errsize) < 0)
			return -1;
		out->n++;
		p += n;
	}
}

enum dnsbl_answer dnsbl_answer_kind(const unsigned char a[4])
{
	if (a[0] != 127)
		return DNSBL_NOT_LOOPBACK;
	if (a[1] == 255 && a[2] == 255)
		return DNSBL_ERROR_CODE;
	return DNSBL_LISTING;
}

int dnsbl_site_match(const struct dnsbl_site *s, const unsigned char a[4])
{
	if (!s->has_filter)
		return 1;
	for (int i = 0; i < 4; i++)
		if (!(s->octet[i][a[i] >> 3] & (1u << (a[i] & 7))))
			return 0;
	return 1;
}

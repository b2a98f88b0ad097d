/* spf.c - SPF (RFC 7208) with libspf2, without blocking.
 *
 * libspf2 resolves synchronously through an SPF_dns_server_t. Ours answers
 * from a table of this check's DNS results; a name not in the table is noted
 * as a miss and answered TRY_AGAIN, which ends that evaluation cleanly. After
 * a pass with misses, all of them are looked up in parallel through dns.c and
 * a new pass runs, with a new SPF_request_t. A pass without a new miss is the
 * final one (docs/design.md, "Asynchronous DNS, SPF and DKIM").
 *
 * Over libspf2 1.2.10 this layer also does what the library gets wrong or
 * leaves out: record selection and syntax (spf_syntax.c), the limits of
 * RFC 7208 4.6.4 counted over the whole check, CIDR lengths of 0, the
 * identity checks of 4.3, and the explanation of 6.2. */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ares.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "proxy/lib/log.h"
#include "checks/spf.h"
#include "checks/spf_syntax.h"

/* Limits. RFC 7208 4.6.4 allows 10 DNS-querying terms, each mx or ptr
 * term 10 names, and %{p} 10 more: about 125 answers at most. */
#define SPF_TERMS_MAX 10       /* include, a, mx, ptr, exists, redirect */
#define SPF_VOIDS_MAX 2        /* NXDOMAIN or no answer, RFC 7208 4.6.4 */
#define SPF_TARGETS_MAX 10     /* MX or PTR names looked at per term */
#define SPF_ANSWERS_MAX 160    /* distinct (name, type) per check */
#define SPF_PASSES_MAX 40      /* libspf2 runs; each adds at least one answer */
#define SPF_TIME_MAX_MS 20000  /* RFC 7208 4.6.4: at least 20 seconds */

/* libspf2's default explanation is replaced by this marker, so that our own
 * default can be told from a domain's exp= text. */
#define EXP_MARKER "moat-spf-default-explanation"

enum ans_state { ANS_WANTED, ANS_PENDING, ANS_DONE };

/* One (name, type) this check needs, and what DNS said. */
struct answer {
	struct spf_check *c;
	char name[DNS_NAME_MAX + 1]; /* normalised */
	int type;
	enum ans_state state;
	struct dns_req *req;         /* while ANS_PENDING */
	enum dns_status st;
	int n;                       /* records, DNS_OK only */
	char **rr;                   /* in_addr, in6_addr or NUL-terminated text */
	size_t *len;                 /* bytes of each, the NUL not counted */
};

enum top_state { TOP_OK, TOP_NONE, TOP_PERM, TOP_TEMP };
enum exp_state { EXP_NONE, EXP_OK, EXP_DEFAULT, EXP_MISS };
enum limit { LIM_NONE, LIM_TERMS, LIM_VOIDS, LIM_ANSWERS };

struct spf_check {
	struct dns *dns;
	spf_cb cb;
	void *arg;
	int family;                  /* AF_INET (IPv4-mapped included) or AF_INET6 */
	struct in_addr ip4;
	struct in6_addr ip6;
	char ip_macro[80];           /* %{i}: dotted quad or dotted nibbles */
	char ip_text[INET6_ADDRSTRLEN]; /* %{c} */
	char helo[256];              /* printable, for %{h}; "" = none */
	char sender[320];            /* local@domain evaluated */
	char receiver[256];          /* %{r} */
	uint64_t started_ms;

	SPF_dns_server_t layer;      /* hook = this check */
	SPF_server_t *srv;
	SPF_request_t *req;          /* of the pass running now */
	SPF_response_t *resp;        /* its response */
	SPF_record_t *rec;           /* and the record it compiled */

	struct answer **ans;
	int nans, ans_size;
	int pending;                 /* lookups in flight */
	int done;                    /* out is final */
	struct dns_req *later;       /* delivers an outcome known inside spf_check_start */

	/* per pass */
	int new_miss;
	int top;                     /* the next get_spf is for the checked domain */
	enum top_state top_state;    /* what its record lookup gave */
	char why[200];               /* the last record or DNS trouble, for out.reason */
	int terms, voids;
	enum limit limit;
	const struct answer *tgt;    /* MX/PTR answer whose names libspf2 asks next */
	int tgt_i, tgt_n, tgt_type;
	int tgt_any;                 /* ... for an mx/0 */
	enum exp_state exp_state;    /* of the last explanation libspf2 asked for */
	char exp_name[DNS_NAME_MAX + 1];

	struct spf_outcome out;
};

/* ---- libspf2's message handlers ---- */

/* libspf2 aborts after its error handler returns (an internal error: a
 * failed assertion, no memory). During a pass ours jumps back to run_pass,
 * which frees what the pass made that we hold (its request, response and
 * record) and gives up the check with temperror. What libspf2 made inside
 * the call it was in and had not handed back yet cannot be reached and is
 * lost (a record being compiled: at most some kilobytes). So that this stays bounded, a worker takes at most
 * SPF_LIBSPF2_ERRORS_MAX of them: after that, SPF is temperror without
 * libspf2 until a restart, and the log says so once. libspf2's handlers are
 * process-wide, so are this jump target and count. */
static jmp_buf *spf_jmp;
static int libspf2_errors;
static int inject_errors; /* tests: passes that hit an internal error */

void spf_fail_passes_for_tests(int n)
{
	inject_errors = n;
}

static void spf_log_error(const char *file, int line, const char *msg) __attribute__((noreturn));
static void spf_log_error(const char *file, int line, const char *msg)
{
	log_error("spf_libspf2", "%s:%d: %s", file ? file : "?", line, msg ? msg : "");
	if (spf_jmp)
		longjmp(*spf_jmp, 1);
	abort();
}

static void spf_log_warning(const char *file, int line, const char *msg)
{
	log_warn("spf_libspf2", "%s:%d: %s", file ? file : "?", line, msg ? msg : "");
}

static void spf_log_info(const char *file, int line, const char *msg)
{
	log_info("spf_libspf2", "%s:%d: %s", file ? file : "?", line, msg ? msg : "");
}

/* In enum spf_res's order, as RFC 8601 / RFC 7208 spell them. */
static const char *const spf_res_names[] = {
	"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror", NULL,
};

const char *spf_res_name(enum spf_res r)
{
	if ((unsigned)r >= sizeof spf_res_names / sizeof spf_res_names[0] - 1)
		return "temperror";
	return spf_res_names[r];
}

/* ---- helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Bounded copy; the result is always terminated. */
static void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void why_set(struct spf_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why_set(struct spf_check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
}

/* A name as libspf2 gives it ("host.", a macro result over 253 characters)
 * in the table's form: RFC 7208 4.8 cuts labels off the left of a name that
 * is too long; then dns_normalise (case, trailing dot). -1: not a name DNS
 * can carry (empty label, label over 63), which we answer NXDOMAIN. */
static int name_norm_n(const char *name, size_t len, char *out, size_t size)
{
	const char *p = name;
	char tmp[DNS_NAME_MAX + 2];

	if (len > 0 && name[len - 1] == '.')
		len--;
	while (len > DNS_NAME_MAX) {
		const char *dot = memchr(p, '.', len);

		if (!dot)
			return -1;
		len -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (len == 0)
		return -1;
	for (const char *l = p; l < p + len;) {
		const char *dot = memchr(l, '.', (size_t)(p + len - l));
		size_t ll = dot ? (size_t)(dot - l) : (size_t)(p + len - l);

		if (ll == 0 || ll > 63)
			return -1;
		l += ll + 1;
	}
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	return dns_normalise(tmp, out, size) < 0 ? -1 : 0;
}

static int name_norm(const char *name, char *out, size_t size)
{
	return name_norm_n(name, strlen(name), out, size);
}

/* ---- the answer table ---- */

static struct answer *answer_find(struct spf_check *c, const char *name, int type)
{
	for (int i = 0; i < c->nans; i++)
		if (c->ans[i]->type == type && strcmp(c->ans[i]->name, name) == 0)
			return c->ans[i];
	return NULL;
}

static void answer_clear(struct answer *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->rr[i]);
	free(a->rr);
	free(a->len);
	a->rr = NULL;
	a->len = NULL;
	a->n = 0;
}

static void answer_free(struct answer *a)
{
	if (a->req)
		dns_cancel(a->req);
	answer_clear(a);
	free(a);
}

/* A new entry for (name, type), NULL when the check has asked enough. */
static struct answer *answer_new(struct spf_check *c, const char *name, int type)
{
	struct answer *a;

	if (c->nans >= SPF_ANSWERS_MAX)
		return NULL;
	if (c->nans == c->ans_size) {
		int size = c->ans_size ? c->ans_size * 2 : 16;
		struct answer **n = realloc(c->ans, (size_t)size * sizeof *n);

		if (!n)
			return NULL;
		c->ans = n;
		c->ans_size = size;
	}
	a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->c = c;
	str_copy(a->name, sizeof a->name, name);
	a->type = type;
	a->state = ANS_WANTED;
	c->ans[c->nans++] = a;
	return a;
}

/* A name libspf2 asked for and we do not have: looked up after the pass. */
static void miss(struct spf_check *c, const char *name, int type)
{
	if (answer_find(c, name, type))
		return;
	if (answer_new(c, name, type))
		c->new_miss = 1;
	else if (c->limit == LIM_NONE)
		c->limit = LIM_ANSWERS;
}

/* One more record; text or not, it is stored NUL-terminated. */
static int rr_add(struct answer *a, const void *data, size_t len)
{
	char **rr = realloc(a->rr, (size_t)(a->n + 1) * sizeof *rr);
	size_t *ln;

	if (!rr)
		return -1;
	a->rr = rr;
	ln = realloc(a->len, (size_t)(a->n + 1) * sizeof *ln);
	if (!ln)
		return -1;
	a->len = ln;
	rr[a->n] = malloc(len + 1);
	if (!rr[a->n])
		return -1;
	memcpy(rr[a->n], data, len);
	rr[a->n][len] = '\0';
	ln[a->n++] = len;
	return 0;
}

/* Host names from MX and PTR answers: c-ares escapes what is not printable;
 * anything else is dropped. */
static int name_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static int parse_hostent(struct answer *a, int rc, struct hostent *h, int ptr)
{
	int err = 0;

	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? 0 : -1;
	if (ptr) {
		/* all the names are in h_aliases (h_name repeats the last one) */
		for (char **n = h->h_aliases; n && *n && !err; n++)
			if (name_ok(*n))
				err = rr_add(a, *n, strlen(*n));
	} else {
		for (char **p = h->h_addr_list; p && *p && !err; p++)
			err = rr_add(a, *p, (size_t)h->h_length);
	}
	ares_free_hostent(h);
	return err;
}

/* TXT: c-ares gives one node per string; a record is its strings joined
 * (RFC 7208 3.3). The joined text is never longer than the reply. */
static int parse_txt(struct answer *a, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL;
	char *buf = malloc((size_t)alen + 1);
	size_t n = 0;
	int have = 0, err = 0, rc;

	if (!buf)
		return -1;
	rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (rc != ARES_SUCCESS) {
		free(buf);
		return rc == ARES_ENODATA ? 0 : -1;
	}
	for (struct ares_txt_ext *t = txt; t && !err; t = t->next) {
		if (t->record_start && have) {
			err = rr_add(a, buf, n);
			n = 0;
		}
		have = 1;
		if (n + t->length > (size_t)alen) {
			err = -1;
			break;
		}
		memcpy(buf + n, t->txt, t->length);
		n += t->length;
	}
	if (have && !err)
		err = rr_add(a, buf, n);
	ares_free_data(txt);
	free(buf);
	return err;
}

/* The raw reply into records. -1: unreadable (taken as TEMPFAIL). */
static int answer_parse(struct answer *a, const unsigned char *abuf, int alen)
{
	struct hostent *h = NULL;
	unsigned char any_addr[4] = {0};
	struct ares_mx_reply *mx = NULL;
	int rc, err = 0;

	if (!abuf || alen <= 0)
		return -1;
	switch (a->type) {
	case ns_t_a:
		rc = ares_parse_a_reply(abuf, alen, &h, NULL, NULL);
		return parse_hostent(a, rc, h, 0);
	case ns_t_aaaa:
		rc = ares_parse_aaaa_reply(abuf, alen, &h, NULL, NULL);
		return parse_hostent(a, rc, h, 0);
	case ns_t_ptr:
		rc = ares_parse_ptr_reply(abuf, alen, any_addr, sizeof any_addr, AF_INET, &h);
		return parse_hostent(a, rc, h, 1);
	case ns_t_mx:
		rc = ares_parse_mx_reply(abuf, alen, &mx);
		if (rc != ARES_SUCCESS)
			return rc == ARES_ENODATA ? 0 : -1;
		for (struct ares_mx_reply *m = mx; m && !err; m = m->next)
			if (name_ok(m->host))
				err = rr_add(a, m->host, strlen(m->host));
		ares_free_data(mx);
		return err;
	case ns_t_txt:
		return parse_txt(a, abuf, alen);
	}
	return -1;
}

/* ---- lookups in flight ---- */

static void advance(struct spf_check *c);
static void deliver(struct spf_check *c);
static void answer_cb(void *arg, const struct dns_result *r);

static void lookup_start(struct answer *a)
{
	struct spf_check *c = a->c;

	c->out.lookups++;
	a->req = dns_lookup(c->dns, a->name, a->type, answer_cb, a);
	if (a->req == NULL) { /* no memory to ask: a DNS error */
		a->state = ANS_DONE;
		a->st = DNS_TEMPFAIL;
		return;
	}
	a->state = ANS_PENDING;
	c->pending++;
}

/* libspf2 asks for the addresses of the first MX or PTR names next, one
 * at a time: ask for all of them now. */
static void prefetch(struct spf_check *c, const struct answer *a)
{
	int type = c->family == AF_INET ? ns_t_a : ns_t_aaaa;

	if ((a->type != ns_t_mx && a->type != ns_t_ptr) || a->st != DNS_OK)
		return;
	for (int i = 0; i < a->n && i < SPF_TARGETS_MAX; i++) {
		char norm[DNS_NAME_MAX + 1];
		struct answer *t;

		if (name_norm(a->rr[i], norm, sizeof norm) < 0 || answer_find(c, norm, type))
			continue;
		t = answer_new(c, norm, type);
		if (!t)
			return;
		lookup_start(t);
	}
}

static void answer_cb(void *arg, const struct dns_result *r)
{
	struct answer *a = arg;
	struct spf_check *c = a->c;

	a->req = NULL;
	a->state = ANS_DONE;
	a->st = r->status;
	if (a->st == DNS_OK && answer_parse(a, r->abuf, r->alen) < 0) {
		answer_clear(a);
		a->st = DNS_TEMPFAIL;
	}
	prefetch(c, a);
	c->pending--;
	if (c->pending == 0)
		advance(c);
	if (c->done)
		deliver(c);
}

/* ---- the DNS layer libspf2 calls ---- */

/* A term over the limit ends the evaluation: TRY_AGAIN unwinds libspf2 at
 * once, and conclude() reports the permerror. */
static int count_term(struct spf_check *c)
{
	if (++c->terms <= SPF_TERMS_MAX)
		return 0;
	if (c->limit == LIM_NONE)
		c->limit = LIM_TERMS;
	return -1;
}

/* Is this lookup a term of its own (include, a, mx, ptr, exists)? After an
 * MX or PTR answer libspf2 asks, in order, for the addresses of its first
 * names: those are part of that term. The %{p} macro asks PTR with
 * should_cache 0 and is no term. Returns 1 for a term, 0 if not, -1 if the
 * term is over the limit; *any: answer an address query with the client's
 * address (an mx/0 target). */
static int classify(struct spf_check *c, const char *norm, ns_type type, int should_cache, int *any)
{
	if (c->tgt && c->tgt_i < c->tgt_n && (int)type == c->tgt_type) {
		char t[DNS_NAME_MAX + 1];

		if (name_norm(c->tgt->rr[c->tgt_i], t, sizeof t) == 0 && strcmp(t, norm) == 0) {
			c->tgt_i++;
			*any = c->tgt_any;
			return 0;
		}
	}
	c->tgt = NULL;
	if (type == ns_t_mx || type == ns_t_a || type == ns_t_aaaa || (type == ns_t_ptr && should_cache))
		return count_term(c) < 0 ? -1 : 1;
	return 0;
}

static SPF_dns_rr_t *rr_new(SPF_dns_server_t *s, const char *name, ns_type type, int herrno)
{
	/* NULL from here makes libspf2 call SPF_error: see spf_log_error */
	return SPF_dns_rr_new_init(s, name, type, 0, herrno);
}

/* The records of a, as libspf2 wants them; n of them. */
static SPF_dns_rr_t *rr_fill(SPF_dns_server_t *s, const char *domain, ns_type type,
                             const struct answer *a, int n)
{
	SPF_dns_rr_t *rr = rr_new(s, domain, type, NETDB_SUCCESS);
	int text = type != ns_t_a && type != ns_t_aaaa;

	if (!rr)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (SPF_dns_rr_buf_realloc(rr, i, a->len[i] + (size_t)text) != SPF_E_SUCCESS) {
			SPF_dns_rr_free(rr);
			return rr_new(s, domain, type, TRY_AGAIN);
		}
		memcpy(rr->rr[i], a->rr[i], a->len[i] + (size_t)text);
		rr->num_rr = i + 1;
	}
	return rr;
}

/* With a CIDR length of 0 any address of the name matches: the client's own
 * is as good as any. */
static SPF_dns_rr_t *rr_client(SPF_dns_server_t *s, const char *domain, ns_type type,
                               const struct spf_check *c)
{
	struct answer one = {0};
	char buf[sizeof c->ip6];
	char *rr[1] = {buf};
	size_t len[1] = {type == ns_t_a ? sizeof c->ip4 : sizeof c->ip6};

	memcpy(buf, type == ns_t_a ? (const void *)&c->ip4 : (const void *)&c->ip6, len[0]);
	one.rr = rr;
	one.len = len;
	return rr_fill(s, domain, type, &one, 1);
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *s, const char *domain, ns_type type,
                                  int should_cache)
{
	struct spf_check *c = s->hook;
	char norm[DNS_NAME_MAX + 1];
	const struct answer *a;
	int term, n, herrno, any = 0;
	size_t dl = domain ? strlen(domain) : 0, ml = strlen(SPF_ANY_MARKER);

	if (c->limit != LIM_NONE)
		return rr_new(s, domain, type, TRY_AGAIN);
	if (type == ns_t_spf)   /* RFC 7208 3.1: type SPF is no more */
		return rr_new(s, domain, type, NO_DATA);
	if (dl > ml && strcasecmp(domain + dl - ml, SPF_ANY_MARKER) == 0) {
		any = 1;        /* a/0 or mx/0 (spf_syntax.h) */
		dl -= ml;
	}
	if (name_norm_n(domain ? domain : "", dl, norm, sizeof norm) < 0)
		norm[0] = '\0';
	term = classify(c, norm, type, should_cache, &any);
	if (term < 0)
		return rr_new(s, domain, type, TRY_AGAIN);
	herrno = HOST_NOT_FOUND;
	if (norm[0] == '\0')
		goto negative;
	a = answer_find(c, norm, (int)type);
	if (!a || a->state != ANS_DONE) {
		/* Speculate: go on as if the name had no records, so that the
		 * rest of the record asks for its names in this same round.
		 * A pass with a miss is never the final one. */
		miss(c, norm, (int)type);
		return rr_new(s, domain, type, c->limit == LIM_NONE ? NO_DATA : TRY_AGAIN);
	}
	switch (a->st) {
	case DNS_TEMPFAIL:
		why_set(c, "DNS error looking up %s", norm);
		return rr_new(s, domain, type, TRY_AGAIN);
	case DNS_NXDOMAIN:
		goto negative;
	case DNS_NODATA:
		herrno = NO_DATA;
		goto negative;
	case DNS_OK:
		break;
	}
	herrno = NO_DATA;
	if (a->n == 0)
		goto negative;
	n = a->n;
	if (type == ns_t_mx || type == ns_t_ptr) {
		/* RFC 7208 4.6.4: 10 names at most; for ptr more is no error
		 * (libspf2 would make it permerror), for mx it is */
		if (type == ns_t_ptr && n > SPF_TARGETS_MAX)
			n = SPF_TARGETS_MAX;
		c->tgt = a;
		c->tgt_any = any;
		c->tgt_i = 0;
		c->tgt_n = a->n < SPF_TARGETS_MAX ? a->n : SPF_TARGETS_MAX;
		c->tgt_type = c->family == AF_INET ? ns_t_a : ns_t_aaaa;
	}
	if (any && (type == ns_t_a || type == ns_t_aaaa))
		return rr_client(s, domain, type, c);
	return rr_fill(s, domain, type, a, n);

negative:
	if (term && ++c->voids > SPF_VOIDS_MAX) {
		if (c->limit == LIM_NONE)
			c->limit = LIM_VOIDS;
		return rr_new(s, domain, type, TRY_AGAIN);
	}
	return rr_new(s, domain, type, herrno);
}

/* The record of cur_dom cannot be used: note why, as the result if it is
 * the checked domain's own. */
static SPF_errcode_t unusable(struct spf_check *c, SPF_response_t *resp, int top,
                              enum top_state st, SPF_errcode_t code)
{
	if (top)
		c->top_state = st;
	return SPF_response_add_error(resp, code, "%s", c->why);
}

/* The SPF record of req->cur_dom (RFC 7208 4.4, 4.5), checked and compiled.
 * Called for the checked domain and for each include and redirect. */
static SPF_errcode_t layer_get_spf(SPF_server_t *srv, SPF_request_t *req, SPF_response_t *resp,
                                   SPF_record_t **recp)
{
	struct spf_check *c = srv->resolver->hook;
	int top = c->top, found = 0, idx = 0;
	char norm[DNS_NAME_MAX + 1], err[160], *canon;
	const char *what = top ? "" : " (include or redirect)";
	struct spf_client cl = {c->family, c->ip_text};
	const struct answer *a;
	size_t size;
	int rc;

	*recp = NULL;
	c->top = 0;
	if ((!top && count_term(c) < 0) || c->limit != LIM_NONE)
		return SPF_response_add_error(resp, SPF_E_DNS_ERROR, "DNS lookup limit");
	if (!req->cur_dom || name_norm(req->cur_dom, norm, sizeof norm) < 0) {
		why_set(c, "malformed domain%s", what);
		return unusable(c, resp, top, TOP_NONE, SPF_E_NOT_SPF);
	}
	a = answer_find(c, norm, ns_t_txt);
	if (!a || a->state != ANS_DONE) {
		miss(c, norm, ns_t_txt);
		if (top || c->limit != LIM_NONE)
			return SPF_response_add_error(resp, SPF_E_DNS_ERROR, "not known yet");
		/* speculate (see layer_lookup): an include not known yet
		 * matches nothing in this pass */
		return SPF_record_compile(srv, resp, recp, "v=spf1");
	}
	if (a->st == DNS_TEMPFAIL) {
		why_set(c, "DNS error looking up the SPF record of %s", norm);
		return unusable(c, resp, top, TOP_TEMP, SPF_E_DNS_ERROR);
	}
	for (int i = 0; a->st == DNS_OK && i < a->n; i++)
		if (spf_syntax_is_spf1(a->rr[i], a->len[i])) {
			found++;
			idx = i;
		}
	if (found != 1) {
		why_set(c, "%s SPF record at %s%s", found ? "more than one" : "no", norm, what);
		return found ? unusable(c, resp, top, TOP_PERM, SPF_E_MULTIPLE_RECORDS) :
		               unusable(c, resp, top, TOP_NONE, SPF_E_NOT_SPF);
	}
	size = 6 * a->len[idx] + 64;
	canon = malloc(size);
	if (!canon)
		return SPF_response_add_error(resp, SPF_E_DNS_ERROR, "out of memory");
	if (spf_syntax_check(a->rr[idx], a->len[idx], &cl, canon, size, err, sizeof err) < 0) {
		free(canon);
		why_set(c, "%s at %s", err, norm);
		return unusable(c, resp, top, TOP_PERM, SPF_E_SYNTAX);
	}
	rc = SPF_record_compile(srv, resp, recp, canon);
	free(canon);
	if (rc != SPF_E_SUCCESS) {
		if (*recp)
			SPF_record_free(*recp);
		*recp = NULL;
		why_set(c, "libspf2 cannot compile the record at %s", norm);
		return unusable(c, resp, top, TOP_PERM, SPF_E_SYNTAX);
	}
	return SPF_E_SUCCESS;
}

/* exp= (RFC 7208 6.2): the TXT record of the expanded domain, its macros
 * expanded here (libspf2 URL-encodes in lower case and reads only the first
 * string). Any trouble means the default explanation: an error return. */
static SPF_errcode_t layer_get_exp(SPF_server_t *srv, const char *domain, char **bufp,
                                   size_t *buflenp)
{
	struct spf_check *c = srv->resolver->hook;
	char norm[DNS_NAME_MAX + 1], tbuf[24], text[sizeof c->out.explanation];
	struct spf_macro_vars v;
	const struct answer *a;
	const SPF_request_t *req = c->req;
	size_t len;

	c->exp_state = EXP_DEFAULT;
	if (!domain || name_norm(domain, norm, sizeof norm) < 0)
		return SPF_E_NOT_SPF;
	a = answer_find(c, norm, ns_t_txt);
	if (!a || a->state != ANS_DONE) {
		/* fetched only if this turns out to be the final explanation */
		c->exp_state = EXP_MISS;
		str_copy(c->exp_name, sizeof c->exp_name, norm);
		return SPF_E_DNS_ERROR;
	}
	if (a->st != DNS_OK || a->n != 1 || strlen(a->rr[0]) != a->len[0] ||
	    !spf_syntax_exp_valid(a->rr[0], a->len[0]))
		return SPF_E_NOT_SPF;
	snprintf(tbuf, sizeof tbuf, "%lld", (long long)time(NULL));
	v.s = req->env_from;
	v.l = req->env_from_lp;
	v.o = req->env_from_dp;
	v.d = req->cur_dom;
	v.i = c->ip_macro;
	v.p = spf_macro_uses_p(a->rr[0], a->len[0]) ? SPF_request_get_client_dom(c->req) : "unknown";
	v.h = c->helo[0] ? c->helo : "unknown";
	v.c = c->ip_text;
	v.r = c->receiver;
	v.t = tbuf;
	v.v = c->family == AF_INET ? "in-addr" : "ip6";
	if (!v.p || spf_macro_expand_exp(a->rr[0], a->len[0], &v, text, sizeof text) < 0)
		return SPF_E_NOT_SPF;
	/* the text goes into our SMTP reply: printable US-ASCII only */
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return SPF_E_NOT_SPF;
	len = strlen(text) + 1;
	if (*buflenp < len) {
		char *nb = realloc(*bufp, len);

		if (!nb)
			return SPF_E_NO_MEMORY;
		*bufp = nb;
		*buflenp = len;
	}
	memcpy(*bufp, text, len);
	c->exp_state = EXP_OK;
	return SPF_E_SUCCESS;
}

/* ---- passes ---- */

static void finish(struct spf_check *c, enum spf_res res, const char *reason)
{
	c->out.res = res;
	str_copy(c->out.reason, sizeof c->out.reason, reason);
	c->done = 1;
}

/* The final result when libspf2 ended in an error. */
static void conclude_error(struct spf_check *c, SPF_response_t *resp)
{
	SPF_errcode_t e = SPF_response_errcode(resp);

	if (e == SPF_E_DNS_ERROR || SPF_response_result(resp) == SPF_RESULT_TEMPERROR) {
		finish(c, SPF_RES_TEMPERROR, c->why[0] ? c->why : "DNS error");
		return;
	}
	switch (e) {
	case SPF_E_BIG_DNS: /* the only one left: its per-record limits are off */
		finish(c, SPF_RES_PERMERROR, "more than 10 MX records");
		break;
	case SPF_E_RECURSIVE:
		finish(c, SPF_RES_PERMERROR, "include or redirect loop");
		break;
	case SPF_E_INCLUDE_RETURNED_NONE:
		finish(c, SPF_RES_PERMERROR, "included domain has no SPF record");
		break;
	default:
		finish(c, SPF_RES_PERMERROR, c->why[0] ? c->why : SPF_strerror(e));
		break;
	}
}

/* After a pass that asked for nothing new: the result. */
static void conclude(struct spf_check *c, SPF_response_t *resp)
{
	const char *e;

	switch (c->limit) {
	case LIM_TERMS:
		finish(c, SPF_RES_PERMERROR, "more than 10 DNS-querying terms");
		return;
	case LIM_VOIDS:
		finish(c, SPF_RES_PERMERROR, "more than 2 void lookups");
		return;
	case LIM_ANSWERS:
		finish(c, SPF_RES_PERMERROR, "too many DNS lookups");
		return;
	case LIM_NONE:
		break;
	}
	switch (c->top_state) {
	case TOP_NONE:
		finish(c, SPF_RES_NONE, c->why);
		return;
	case TOP_PERM:
		finish(c, SPF_RES_PERMERROR, c->why);
		return;
	case TOP_TEMP:
		finish(c, SPF_RES_TEMPERROR, c->why);
		return;
	case TOP_OK:
		break;
	}
	switch (SPF_response_result(resp)) {
	case SPF_RESULT_PASS:
		finish(c, SPF_RES_PASS, "a + mechanism matched");
		return;
	case SPF_RESULT_SOFTFAIL:
		finish(c, SPF_RES_SOFTFAIL, "a ~ mechanism matched");
		return;
	case SPF_RESULT_NEUTRAL:
		finish(c, SPF_RES_NEUTRAL, SPF_response_reason(resp) == SPF_REASON_DEFAULT ?
		       "no mechanism matched" : "a ? mechanism matched");
		return;
	case SPF_RESULT_FAIL:
		break;
	default:
		conclude_error(c, resp);
		return;
	}
	/* fail: the explanation of the record that failed (6.2) */
	e = SPF_response_get_explanation(resp);
	if (!e && c->exp_state == EXP_MISS) {
		/* the exp= text is not known yet: fetch it, run once more */
		miss(c, c->exp_name, ns_t_txt);
		if (c->new_miss)
			return;
	}
	finish(c, SPF_RES_FAIL, "a - mechanism matched");
	if (e && c->exp_state == EXP_OK && strcmp(e, EXP_MARKER) != 0) {
		str_copy(c->out.explanation, sizeof c->out.explanation, e);
		c->out.exp_default = 0;
		return;
	}
	snprintf(c->out.explanation, sizeof c->out.explanation,
	         "%.255s does not designate %s as permitted sender", c->out.domain, c->ip_text);
	c->out.exp_default = 1;
}

static int request_setup(struct spf_check *c, SPF_request_t *req)
{
	if (c->family == AF_INET)
		SPF_request_set_ipv4(req, c->ip4);
	else
		SPF_request_set_ipv6(req, c->ip6);
	/* for %{h}; with a null sender this also makes postmaster@helo */
	if (SPF_request_set_helo_dom(req, c->helo[0] ? c->helo : "unknown") != SPF_E_SUCCESS)
		return -1;
	return SPF_request_set_env_from(req, c->sender) == SPF_E_SUCCESS ? 0 : -1;
}

/* One libspf2 evaluation. Not SPF_request_query_mailfrom: that passes
 * loopback clients without looking at any record. */
/* The pass's libspf2 objects, all of them held here (a jump out of libspf2
 * frees them too). */
static void pass_free(struct spf_check *c)
{
	if (c->rec)
		SPF_record_free(c->rec);
	if (c->resp)
		SPF_response_free(c->resp);
	if (c->req)
		SPF_request_free(c->req);
	c->rec = NULL;
	c->resp = NULL;
	c->req = NULL;
}

static void pass_eval(struct spf_check *c)
{
	c->req = SPF_request_new(c->srv);
	if (c->req)
		c->resp = SPF_response_new(c->req);
	if (!c->resp || request_setup(c, c->req) < 0) {
		finish(c, SPF_RES_TEMPERROR, "out of memory");
		pass_free(c);
		return;
	}
	c->req->cur_dom = c->req->env_from_dp;
	c->top = 1;
	if (SPF_server_get_record(c->srv, c->req, c->resp, &c->rec) == SPF_E_SUCCESS) {
		c->resp->spf_record_exp = c->rec;
		SPF_record_interpret(c->rec, c->req, c->resp, 0);
	}
	if (!c->new_miss)
		conclude(c, c->resp);
	pass_free(c);
}

static void run_pass(struct spf_check *c)
{
	jmp_buf jb;

	c->out.passes++;
	c->new_miss = 0;
	c->top = 0;
	c->top_state = TOP_OK;
	c->why[0] = '\0';
	c->terms = c->voids = 0;
	c->limit = LIM_NONE;
	c->tgt = NULL;
	c->exp_state = EXP_NONE;
	if (setjmp(jb)) {
		/* libspf2 hit one of its internal errors (logged) */
		spf_jmp = NULL;
		pass_free(c);
		c->new_miss = 0;
		if (++libspf2_errors == SPF_LIBSPF2_ERRORS_MAX)
			log_error("spf_libspf2", "%d internal errors in libspf2: SPF is temperror from now on, "
			          "until moat restarts (each leaked a little memory)", libspf2_errors);
		finish(c, SPF_RES_TEMPERROR, "internal error in libspf2");
		return;
	}
	spf_jmp = &jb;
	if (inject_errors > 0) {
		inject_errors--;
		SPF_error("an internal error, injected by a test");
	}
	pass_eval(c);
	spf_jmp = NULL;
}

/* Run passes until one needs nothing new, or until lookups are in flight. */
static void advance(struct spf_check *c)
{
	while (!c->done) {
		if (now_ms() - c->started_ms > SPF_TIME_MAX_MS) {
			finish(c, SPF_RES_TEMPERROR, "SPF evaluation took too long");
			return;
		}
		if (c->out.passes >= SPF_PASSES_MAX) {
			finish(c, SPF_RES_TEMPERROR, "SPF evaluation did not settle");
			return;
		}
		run_pass(c);
		if (c->done)
			return;
		for (int i = 0; i < c->nans; i++)
			if (c->ans[i]->state == ANS_WANTED)
				lookup_start(c->ans[i]);
		if (c->pending > 0)
			return;
	}
}

/* Report the outcome and free c. */
static void deliver(struct spf_check *c)
{
	struct spf_outcome out = c->out;
	spf_cb cb = c->cb;
	void *arg = c->arg;

	spf_check_cancel(c);
	cb(arg, &out);
}

/* An outcome known inside spf_check_start, on the loop's next turn. */
static void deferred_cb(void *arg, const struct dns_result *r)
{
	struct spf_check *c = arg;

	c->later = NULL;
	deliver(c);
}

/* ---- starting a check ---- */

/* RFC 7208 4.3: a domain that is malformed or not multi-label gets "none"
 * without any lookup. */
static int domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;
	int labels = 0;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX || d[0] == '[')
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || d[i] == '.') {
			if (label == 0 || label > 63)
				return 0;
			labels++;
			label = 0;
		} else if ((unsigned char)d[i] < 0x21 || (unsigned char)d[i] > 0x7e) {
			return 0;
		} else {
			label++;
		}
	}
	return labels >= 2;
}

/* Untrusted text for libspf2's macros: controls and non-ASCII become '?'
 * (libspf2 1.2.10 overruns its buffer URL-encoding bytes over 0x7f). */
static void printable_copy(char *dst, size_t size, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < size && i < n && src[i]; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || (unsigned char)src[i] > 0x7e) ? '?' : src[i];
	dst[i] = '\0';
}

static int client_set(struct spf_check *c, const struct sockaddr *sa)
{
	const struct in6_addr *a6;

	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return -1;
	if (sa->sa_family == AF_INET) {
		c->family = AF_INET;
		c->ip4 = ((const struct sockaddr_in *)sa)->sin_addr;
	} else if (a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr, IN6_IS_ADDR_V4MAPPED(a6)) {
		/* RFC 7208 5: an IPv4-mapped address is IPv4 */
		c->family = AF_INET;
		memcpy(&c->ip4, a6->s6_addr + 12, 4);
	} else {
		c->family = AF_INET6;
		c->ip6 = *a6;
	}
	if (c->family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&c->ip4;

		snprintf(c->ip_macro, sizeof c->ip_macro, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
		inet_ntop(AF_INET, &c->ip4, c->ip_text, sizeof c->ip_text);
	} else {
		size_t o = 0;

		for (int i = 0; i < 16; i++)
			o += (size_t)snprintf(c->ip_macro + o, sizeof c->ip_macro - o, "%s%x.%x",
			                      i ? "." : "", c->ip6.s6_addr[i] >> 4, c->ip6.s6_addr[i] & 0xf);
		inet_ntop(AF_INET6, &c->ip6, c->ip_text, sizeof c->ip_text);
	}
	return 0;
}

/* The identity of RFC 7208 2.3/2.4 and 4.3; 0, or -1 when there is nothing
 * to evaluate (c is finished then). */
static int identity_set(struct spf_check *c, const char *helo, const char *sender)
{
	char local[64];
	const char *domain, *at;

	printable_copy(c->helo, sizeof c->helo, helo ? helo : "", SIZE_MAX);
	if (!sender || !*sender) {
		/* null sender: the HELO identity, postmaster@helo */
		c->out.helo_identity = 1;
		domain = helo ? helo : "";
		local[0] = '\0';
	} else if ((at = strrchr(sender, '@'))) {
		domain = at + 1;
		printable_copy(local, sizeof local, sender, (size_t)(at - sender));
	} else {
		domain = sender;
		local[0] = '\0';
	}
	printable_copy(c->out.domain, sizeof c->out.domain, domain, SIZE_MAX);
	snprintf(c->sender, sizeof c->sender, "%s@%s", local[0] ? local : "postmaster",
	         c->out.domain);
	str_copy(c->out.identity, sizeof c->out.identity, c->sender);
	if (!*domain) {
		finish(c, SPF_RES_NONE, "no domain to check");
		return -1;
	}
	if (!domain_ok(domain)) {
		finish(c, SPF_RES_NONE, "not a domain SPF can check");
		return -1;
	}
	return 0;
}

/* The first pass, with libspf2's server set up for this check. */
static void evaluate(struct spf_check *c)
{
	SPF_response_t *resp = NULL;

	c->layer.lookup = layer_lookup;
	c->layer.get_spf = layer_get_spf;
	c->layer.get_exp = layer_get_exp;
	c->layer.name = "moat";
	c->layer.hook = c;
	c->srv = SPF_server_new_dns(&c->layer, 0);
	if (!c->srv || SPF_server_set_rec_dom(c->srv, c->receiver) != SPF_E_SUCCESS ||
	    SPF_server_set_explanation(c->srv, EXP_MARKER, &resp) != SPF_E_SUCCESS) {
		finish(c, SPF_RES_TEMPERROR, "out of memory");
	} else {
		/* our limits count over the whole check; libspf2's per record */
		SPF_server_set_max_dns_mech(c->srv, 1000);
		advance(c);
	}
	if (resp)
		SPF_response_free(resp);
}

struct spf_check *spf_check_start(struct dns *d, const struct sockaddr *client, const char *helo,
                                  const char *sender, const char *receiver, spf_cb cb, void *arg)
{
	struct spf_check *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	/* libspf2's default handlers print to stderr and abort */
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_info;
	SPF_debug_handler = NULL;
	c->dns = d;
	c->cb = cb;
	c->arg = arg;
	c->started_ms = now_ms();
	printable_copy(c->receiver, sizeof c->receiver, receiver && *receiver ? receiver : "unknown",
	               SIZE_MAX);
	if (libspf2_errors >= SPF_LIBSPF2_ERRORS_MAX)
		finish(c, SPF_RES_TEMPERROR, "libspf2 off after repeated internal errors");
	else if (identity_set(c, helo, sender) == 0 && client_set(c, client) < 0)
		finish(c, SPF_RES_NONE, "no client IP address");
	if (!c->done)
		evaluate(c);
	if (c->done && !(c->later = dns_defer(d, deferred_cb, c))) {
		spf_check_cancel(c);
		return NULL;
	}
	return c;
}

void spf_check_cancel(struct spf_check *c)
{
	if (!c)
		return;
	dns_cancel(c->later);
	for (int i = 0; i < c->nans; i++)
		answer_free(c->ans[i]);
	free(c->ans);
	if (c->srv)
		SPF_server_free(c->srv);
	free(c);
}

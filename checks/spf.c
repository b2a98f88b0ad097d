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

#include "proxy/lib/domain.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/log.h"
#include "proxy/lib/text.h"
#include "checks/spf.h"
#include "checks/spf_check.h"
#include "checks/spf_syntax.h"

/* ---- libspf2's message handlers ---- */

/* libspf2 aborts after its error handler returns (an internal error: a
 * failed assertion, no memory). During a pass ours jumps back to run_pass,
 * which frees what the pass made that we hold (its request, response and
 * record) and gives up the check with temperror. What libspf2 made inside
 * the call it was in and had not handed back yet cannot be reached and is
 * lost (a record being compiled: at most some kilobytes). So that this stays
 * bounded, a worker takes at most SPF_LIBSPF2_ERRORS_MAX of them: after that,
 * SPF is temperror without libspf2 until a restart, and the log says so once.
 * libspf2's handlers are process-wide, so are this jump target and count. */
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

void spf_why(struct spf_check *c, const char *fmt, ...)
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
int spf_name_norm_n(const char *name, size_t len, char *out, size_t size)
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

int spf_name_norm(const char *name, char *out, size_t size)
{
	return spf_name_norm_n(name, strlen(name), out, size);
}

/* ---- passes ---- */

static void finish(struct spf_check *c, enum spf_res res, const char *reason)
{
	c->out.res = res;
	text_copy(c->out.reason, sizeof c->out.reason, reason);
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

/* ---- which term decided ---- */

/* What a pass of libspf2 changes in the check (the DNS layer's counts, the
 * explanation it asked for), kept across the runs below. */
struct pass_state {
	int top, terms, voids, new_miss, tgt_i, tgt_n, tgt_type, tgt_any;
	enum top_state top_state;
	enum limit limit;
	const struct answer *tgt;
	enum exp_state exp_state;
	char exp_name[DNS_NAME_MAX + 1], why[200];
};

static void pass_save(const struct spf_check *c, struct pass_state *p)
{
	*p = (struct pass_state){c->top, c->terms, c->voids, c->new_miss, c->tgt_i, c->tgt_n, c->tgt_type,
	                         c->tgt_any, c->top_state, c->limit, c->tgt, c->exp_state, "", ""};
	memcpy(p->exp_name, c->exp_name, sizeof p->exp_name);
	memcpy(p->why, c->why, sizeof p->why);
}

static void pass_restore(struct spf_check *c, const struct pass_state *p)
{
	c->top = p->top, c->terms = p->terms, c->voids = p->voids, c->new_miss = p->new_miss;
	c->tgt_i = p->tgt_i, c->tgt_n = p->tgt_n, c->tgt_type = p->tgt_type, c->tgt_any = p->tgt_any;
	c->top_state = p->top_state, c->limit = p->limit, c->tgt = p->tgt, c->exp_state = p->exp_state;
	memcpy(c->exp_name, p->exp_name, sizeof c->exp_name);
	memcpy(c->why, p->why, sizeof c->why);
}

/* Does the checked domain's record cut to its first k terms give the
 * result rp gave? Every answer it needs is in the table: the whole record
 * needed the same ones to get that far. */
static int first_k_decides(struct spf_check *c, int k, const SPF_response_t *rp)
{
	unsigned char all = c->rec->num_mech;
	SPF_response_t *r = SPF_response_new(c->req);
	struct pass_state saved;
	int same;

	if (!r)
		return 1; /* out of memory: the whole record, then */
	pass_save(c, &saved);
	r->spf_record_exp = c->rec;
	c->req->cur_dom = c->req->env_from_dp;
	c->rec->num_mech = (unsigned char)k;
	SPF_record_interpret(c->rec, c->req, r, 0);
	c->rec->num_mech = all;
	same = SPF_response_result(r) == rp->result && SPF_response_reason(r) == rp->reason;
	SPF_response_free(r);
	pass_restore(c, &saved);
	return same;
}

/* The reason of a result: the checked domain's term that decided it, as
 * published ("mechanism -ip4:192.0.2.0/24 matched", "mechanism
 * +include:_spf.example.net matched", "via redirect=_spf.example.net"),
 * found by cutting the record to its first k terms (the shortest that
 * gives the same result). */
static void matched(struct spf_check *c, SPF_response_t *resp, char *out, size_t size)
{
	char term[160];
	const char *txt;
	size_t len;
	int lo = 1, hi = c->rec ? c->rec->num_mech : 0, kind;

	if (hi == 0 || spf_record_text(c, c->out.domain, &txt, &len) < 0) {
		snprintf(out, size, "%s", resp->reason == SPF_REASON_DEFAULT ? "no mechanism matched"
		                                                             : "a mechanism matched");
		return;
	}
	if (resp->reason == SPF_REASON_DEFAULT) { /* no term, or a redirect whose record had none */
		kind = spf_syntax_term(txt, len, hi - 1, term, sizeof term);
		snprintf(out, size, "%s%s", kind == 2 ? term : "no mechanism matched",
		         kind == 2 ? ", no mechanism matched there" : "");
		return;
	}
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (first_k_decides(c, mid, resp))
			hi = mid;
		else
			lo = mid + 1;
	}
	kind = spf_syntax_term(txt, len, lo - 1, term, sizeof term);
	if (kind == 2)
		snprintf(out, size, "via %s", term);
	else if (kind == 1)
		snprintf(out, size, "mechanism %s matched", term);
	else
		snprintf(out, size, "a mechanism matched");
}

/* After a pass that asked for nothing new: the result. */
void spf_conclude(struct spf_check *c, SPF_response_t *resp)
{
	char why[sizeof c->out.reason];

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
		matched(c, resp, why, sizeof why);
		finish(c, SPF_RES_PASS, why);
		return;
	case SPF_RESULT_SOFTFAIL:
		matched(c, resp, why, sizeof why);
		finish(c, SPF_RES_SOFTFAIL, why);
		return;
	case SPF_RESULT_NEUTRAL:
		matched(c, resp, why, sizeof why);
		finish(c, SPF_RES_NEUTRAL, why);
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
		spf_miss(c, c->exp_name, ns_t_txt);
		if (c->new_miss)
			return;
	}
	matched(c, resp, why, sizeof why);
	finish(c, SPF_RES_FAIL, why);
	if (e && c->exp_state == EXP_OK && strcmp(e, EXP_MARKER) != 0) {
		text_copy(c->out.explanation, sizeof c->out.explanation, e);
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
		spf_conclude(c, c->resp);
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
void spf_advance(struct spf_check *c)
{
	while (!c->done) {
		if (clock_ms() - c->started_ms > SPF_TIME_MAX_MS) {
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
				spf_lookup_start(c->ans[i]);
		if (c->pending > 0)
			return;
	}
}

/* Report the outcome and free c. */
void spf_deliver(struct spf_check *c)
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
	spf_deliver(c);
}

/* ---- starting a check ---- */

/* RFC 7208 4.3: a domain that is malformed or not multi-label gets "none"
 * without any lookup. */
static int domain_ok(const char *d)
{
	size_t len = strlen(d);

	if (len > 0 && d[len - 1] == '.')
		len--;
	return len <= DNS_NAME_MAX && d[0] != '[' &&
	       domain_check(d, strlen(d), DOMAIN_MULTI_LABEL | DOMAIN_TRAILING_DOT) >= 0;
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

/* The domain to evaluate: an IDN in A-labels (RFC 8616 4: DNS has no
 * other form; %{d} expands to it); an ASCII one as given (its case shows in
 * explanations). -1: not a domain SPF can check (4.3), or one IDNA2008
 * refuses. */
static int domain_set(struct spf_check *c, const char *domain)
{
	if (idna_needed(domain, strlen(domain)))
		return idna_to_ascii(domain, strlen(domain), c->out.domain, sizeof c->out.domain) == IDNA_OK &&
		       domain_ok(c->out.domain) ? 0 : -1;
	printable_copy(c->out.domain, sizeof c->out.domain, domain, SIZE_MAX);
	return domain_ok(domain) ? 0 : -1;
}

/* The identity of RFC 7208 2.3/2.4 and 4.3; 0, or -1 when there is nothing
 * to evaluate (c is finished then). libspf2 gets "local@domain" in ASCII: a
 * UTF-8 local part shows as '?' to %{l} (RFC 8616 4: such macros cannot
 * name anything in DNS); out.identity keeps the sender as the client wrote
 * it, for Authentication-Results. */
static int identity_set(struct spf_check *c, const char *helo, const char *sender)
{
	char local[64];
	const char *domain, *at;
	int bad;

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
	bad = domain_set(c, domain) < 0;
	snprintf(c->sender, sizeof c->sender, "%s@%s", local[0] ? local : "postmaster",
	         c->out.domain);
	if (sender && *sender)
		text_copy(c->out.identity, sizeof c->out.identity, sender);
	else
		text_copy(c->out.identity, sizeof c->out.identity, c->sender);
	if (!*domain) {
		finish(c, SPF_RES_NONE, "no domain to check");
		return -1;
	}
	if (bad) {
		finish(c, SPF_RES_NONE, "not a domain SPF can check");
		return -1;
	}
	return 0;
}

/* The first pass, with libspf2's server set up for this check. */
static void evaluate(struct spf_check *c)
{
	SPF_response_t *resp = NULL;

	spf_layer_init(c);
	c->srv = SPF_server_new_dns(&c->layer, 0);
	if (!c->srv || SPF_server_set_rec_dom(c->srv, c->receiver) != SPF_E_SUCCESS ||
	    SPF_server_set_explanation(c->srv, EXP_MARKER, &resp) != SPF_E_SUCCESS) {
		finish(c, SPF_RES_TEMPERROR, "out of memory");
	} else {
		/* our limits count over the whole check; libspf2's per record */
		SPF_server_set_max_dns_mech(c->srv, 1000);
		spf_advance(c);
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
	c->started_ms = clock_ms();
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
		spf_answer_free(c->ans[i]);
	free(c->ans);
	if (c->srv)
		SPF_server_free(c->srv);
	free(c);
}

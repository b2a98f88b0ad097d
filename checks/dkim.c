/* dkim.c - DKIM verification (RFC 6376, RFC 8463) with libopendkim, keys from checks/dns.c
 *
 * libopendkim fetches keys inside dkim_eoh() with a blocking resolver; we
 * never let it (docs/design.md, "Asynchronous DNS, SPF and DKIM"). A check runs so:
 *
 *  1. The header section is read through the reader, unstuffed, and each
 *     field goes to dkim_header() whole: folding CRLFs kept, the last CRLF
 *     cut, as dkim_chunk() would hand it.
 *  2. dkim_eoh(). The prescreen callback starts one TXT lookup per distinct
 *     "<s>._domainkey.<d>"; the key lookup callback says TRYAGAIN while a
 *     signature's answer is missing, dkim_eoh() returns DKIM_STAT_CBTRYAGAIN,
 *     and we call it again once every answer is in (the library resumes
 *     where it stopped).
 *  3. With the answer in, the key lookup callback returns DEFAULT and the
 *     library "queries" through our dkim_dns_set_query_* functions, which
 *     hand it the raw reply. Its own reply parser then decides: NXDOMAIN and
 *     NODATA (a synthetic reply) -> no key, more than one TXT record ->
 *     MULTIDNSREPLY, TC set -> KEYFAIL, "p=" -> revoked. A TEMPFAIL is a
 *     query error -> KEYFAIL. Returning the key text from the callback
 *     instead would leave no way to say "temporary": DKIM_CBSTAT_ERROR
 *     aborts the whole dkim_eoh().
 *  4. dkim_eoh() has verified each header signature. The message is read
 *     again from the start and the body (after the header section) goes to
 *     a body hash of our own per signature that verified (dkim_bodyhash.c;
 *     none verified: not read at all), then dkim_eom() with no body, then
 *     one verdict per signature from the library's per-signature state,
 *     with our body hash in place of the library's. A signature verified
 *     only later, or with a hash ours does not do, sends the body to
 *     dkim_body() instead.
 *
 * Key answers always come later from the loop (dns.h), never inside our own
 * calls: the callback that brings the last one goes on with the check.
 */
#include <sys/types.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "proxy/lib/dataparse.h"
#include "checks/dkim.h"
#include "checks/dkim_check.h"
#include "checks/header.h"
#include "checks/dkim_bodyhash.h"

static const unsigned char dkim_id[] = "moat";

/* In enum dkim_res's order, as RFC 8601 spells them. */
static const char *const dkim_res_names[] = {"none", "pass", "fail", "neutral", "temperror", "permerror", NULL};

const char *dkim_res_name(enum dkim_res r)
{
	if ((unsigned)r >= sizeof dkim_res_names / sizeof dkim_res_names[0] - 1)
		return "permerror";
	return dkim_res_names[r];
}

/* Reading the message */

struct sink {
	char *buf;
	size_t len, cap, max;
	size_t skip;           /* unstuffed bytes still to drop */
	struct dkim_check *c;  /* body mode: feed dkim_body */
	int full;
	char batch[DKIM_READ_CHUNK]; /* body mode: bytes not yet given to dkim_body */
};

/* A sink with its fields set and its 16 KiB batch left uninitialised: an
 * initialiser would zero it, twice per message (a profile showed it). */
static void sink_init(struct sink *s, size_t max, size_t skip, struct dkim_check *c)
{
	s->buf = NULL;
	s->len = s->cap = 0;
	s->max = max;
	s->skip = skip;
	s->c = c;
	s->full = 0;
}

/* Body bytes: to our own hashes, or to the library. */
static void body_bytes(struct dkim_check *c, const char *p, size_t n)
{
	int i;

	if (!c->own_body) {
		dkim_body(c->dkim, (u_char *)p, n); /* errors show in the verdicts */
		return;
	}
	for (i = 0; i < c->nsigs; i++)
		if (c->bh[i] && c->bh_first[i] == i)
			dkim_bodyhash_feed(c->bh[i], p, n);
}

/* Each hash once, whichever signatures share it. */
static void free_body_hashes(struct dkim_check *c)
{
	int i;

	for (i = 0; i < c->nsigs; i++) {
		if (c->bh[i] && c->bh_first[i] == i)
			dkim_bodyhash_free(c->bh[i]);
		c->bh[i] = NULL;
	}
}

static void sink_flush(struct sink *s)
{
	if (s->c && s->len)
		body_bytes(s->c, s->batch, s->len);
	s->len = 0;
}

static void sink_emit(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	if (s->skip) {
		size_t k = n < s->skip ? n : s->skip;

		p += k;
		n -= k;
		s->skip -= k;
	}
	if (n == 0)
		return;
	if (s->c) {
		/* The body goes to the library in large pieces: each dkim_body
		 * call costs more than the bytes (perf: a third of DKIM's time
		 * went to per-line calls). */
		if (s->len + n > sizeof s->batch)
			sink_flush(s);
		if (n >= sizeof s->batch) {
			body_bytes(s->c, p, n);
			return;
		}
		memcpy(s->batch + s->len, p, n);
		s->len += n;
		return;
	}
	if (s->len + n > s->max) {
		n = s->max - s->len;
		s->full = 1;
	}
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *nb;

		while (cap < s->len + n)
			cap *= 2;
		if ((nb = realloc(s->buf, cap)) == NULL) {
			s->full = 1;
			return;
		}
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

/* Unstuff the message from wire offset off (a line start) to its end
 * through s. -1 on a read error. */
static int read_message(struct dkim_check *c, struct sink *s, size_t off)
{
	char chunk[DKIM_READ_CHUNK];
	int at_bol = 1;

	while (off < c->msglen) {
		size_t want = c->msglen - off < sizeof chunk ? c->msglen - off : sizeof chunk;
		long n = c->rd(c->rarg, off, chunk, want);

		if (n < 0)
			return -1;
		if (n == 0)
			break;
		off += (size_t)n;
		data_unstuff(chunk, (size_t)n, &at_bol, sink_emit, s);
	}
	return 0;
}

static int is_dkim_signature(const char *f, size_t len)
{
	static const char name[] = "DKIM-Signature";
	const char *colon = memchr(f, ':', len);
	size_t n;

	if (!colon)
		return 0;
	n = (size_t)(colon - f);
	while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\t'))
		n--;
	return n == sizeof name - 1 && strncasecmp(f, name, n) == 0;
}

/* The value of tag name in DKIM-Signature field f, white space removed,
 * into out (RFC 6376 3.2 tag-list; no checks: for the log only). */
static void tag_value(const char *f, size_t len, const char *name, char *out, size_t size)
{
	const char *p = memchr(f, ':', len), *end = f + len;
	size_t o = 0, n = strlen(name);

	out[0] = '\0';
	while (p && ++p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;

		while (p < stop && strchr(" \t\r\n", *p))
			p++;
		if ((size_t)(stop - p) > n && memcmp(p, name, n) == 0 &&
		    (p[n] == '=' || strchr(" \t\r\n", p[n]))) {
			for (p = memchr(p, '=', (size_t)(stop - p)); p && ++p < stop && o + 1 < size;)
				if (!strchr(" \t\r\n", *p))
					out[o++] = (unsigned char)*p < 0x20 ? '?' : *p;
			out[o] = '\0';
			return;
		}
		p = semi;
	}
}

static int has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* Hand one field to the library: folding kept, the last line end cut. */
static int feed_field(struct dkim_check *c, const char *f, size_t len, int *nsig)
{
	DKIM_STAT st;

	if (len >= 2 && f[len - 2] == '\r' && f[len - 1] == '\n')
		len -= 2;
	else if (len >= 1 && f[len - 1] == '\n')
		len -= 1;
	if (len == 0)
		return 0; /* dkim_header asserts len != 0 */
	if (is_dkim_signature(f, len) && ++*nsig > DKIM_MAX_SIGS) {
		/* Each signature costs a body hash and a key lookup: the
		 * extra ones are not shown to the library at all. */
		c->out.nextra++;
		return 0;
	}
	if (is_dkim_signature(f, len) && has_8bit(f, len)) {
		struct dkim_sig_result *r = &c->out.sig[*nsig - 1];

		c->utf8_tags[*nsig - 1] = 1;
		tag_value(f, len, "d", r->domain, sizeof r->domain);
		tag_value(f, len, "s", r->selector, sizeof r->selector);
	}
	st = dkim_header(c->dkim, (u_char *)f, len);
	/* SYNTAX: a malformed field (or signature, kept as such) */
	return st == DKIM_STAT_OK || st == DKIM_STAT_SYNTAX ? 0 : -1;
}

/* Split hdr[0..len) (empty line excluded) into fields. */
static int feed_headers(struct dkim_check *c, const char *hdr, size_t len)
{
	size_t pos = 0, start = 0;
	int nsig = 0, open = 0;

	while (pos < len) {
		const char *eol = memchr(hdr + pos, '\n', len - pos);
		size_t next = eol ? (size_t)(eol - hdr) + 1 : len;

		if (!(open && (hdr[pos] == ' ' || hdr[pos] == '\t'))) {
			if (open && feed_field(c, hdr + start, pos - start, &nsig) < 0)
				return -1;
			start = pos;
			open = 1;
		}
		pos = next;
	}
	if (open && feed_field(c, hdr + start, pos - start, &nsig) < 0)
		return -1;
	return 0;
}

/* Verdicts */

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
	size_t i = 0;

	if (src)
		for (; src[i] && i + 1 < size; i++)
			dst[i] = src[i] < 0x20 || src[i] == 0x7f ? '?' : (char)src[i];
	dst[i] = '\0';
}

/* b= without folding white space, at most size-1 characters. */
static size_t b_value(DKIM_SIGINFO *sig, char *out, size_t size)
{
	const unsigned char *b = dkim_sig_gettagvalue(sig, 0, (u_char *)"b");
	size_t n = 0;

	for (; b && *b && n + 1 < size; b++)
		if (!isspace(*b))
			out[n++] = (char)*b;
	out[n] = '\0';
	return n;
}

/* RFC 6008: 8 characters of b=, more while another signature shares them. */
static void set_header_b(struct dkim_check *c, int i)
{
	char mine[sizeof c->out.sig[0].b], other[sizeof mine];
	size_t n = DKIM_B_MIN, len = b_value(c->sigs[i], mine, sizeof mine);
	int j;

	for (j = 0; j < c->nsigs; j++) {
		if (j == i)
			continue;
		b_value(c->sigs[j], other, sizeof other);
		while (n < len && strncmp(mine, other, n) == 0)
			n++;
	}
	if (n < len)
		mine[n] = '\0';
	memcpy(c->out.sig[i].b, mine, sizeof mine);
}

/* Library errors with a fixed verdict. The rest: KEYFAIL (temperror, the
 * reason says whether we gave up waiting), BADSIG (which hash failed), and
 * errors in the syntax of the signature or the key (permerror). */
static const struct {
	int err;
	enum dkim_res res;
	const char *reason;
} sig_errors[] = {
	/* RFC 6376 6.1.2: no key and a revoked key are PERMFAIL: nothing was
	 * verified, so RFC 8601 2.7.1's "permerror" (a signature that cannot
	 * be verified), not "fail" (one that verifiably does not match). */
	{DKIM_SIGERROR_NOKEY, DKIM_RES_PERMERROR, "no key"},
	{DKIM_SIGERROR_KEYREVOKED, DKIM_RES_PERMERROR, "key revoked"},
	{DKIM_SIGERROR_KEYTOOSMALL, DKIM_RES_FAIL, "key too small"},
	{DKIM_SIGERROR_TOOLARGE_L, DKIM_RES_FAIL, "body shorter than l="},
	{DKIM_SIGERROR_SUBDOMAIN, DKIM_RES_FAIL, "i= outside d= (key t=s)"},
	/* RFC 6376 3.6.2.2: undefined; the zone needs fixing, a retry will
	 * not help (the opendkim milter says temperror). */
	{DKIM_SIGERROR_MULTIREPLY, DKIM_RES_PERMERROR, "more than one key record"},
	{DKIM_SIGERROR_INVALID_A, DKIM_RES_NEUTRAL, "unsupported algorithm"},
};

static enum dkim_res classify(struct dkim_check *c, int i, const char *aborted, const char **why)
{
	DKIM_SIGINFO *sig = c->sigs[i];
	unsigned int flags = dkim_sig_getflags(sig);
	int err = dkim_sig_geterror(sig), bh = dkim_sig_getbh(sig);
	char name[DKIM_KEYNAME_MAX];
	struct dkim_key *k;
	size_t n;

	*why = "";
	switch (c->mark[i]) {
	case MARK_SHA1:
		*why = "rsa-sha1 not accepted (RFC 8301)";
		return DKIM_RES_NEUTRAL;
	case MARK_BAD_Q:
		*why = "no dns/txt query method";
		return DKIM_RES_PERMERROR;
	case MARK_BAD_NAME:
		*why = "bad key name";
		return DKIM_RES_PERMERROR;
	case MARK_NONE:
		break;
	}
	if (c->bh_checked && c->bh[i] && (flags & DKIM_SIGFLAG_PASSED) &&
	    (err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_UNKNOWN || err == DKIM_SIGERROR_BADSIG ||
	     err == DKIM_SIGERROR_TOOLARGE_L)) {
		/* The library verified the header signature over no body: its
		 * body verdicts (a mismatch, l= too large) are about nothing. */
		if (c->bh_res[i] == 1)
			return DKIM_RES_PASS;
		err = c->bh_res[i] < 0 ? DKIM_SIGERROR_TOOLARGE_L : DKIM_SIGERROR_BADSIG;
		bh = c->bh_res[i] < 0 ? bh : DKIM_SIGBH_MISMATCH;
	}
	if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH && err == DKIM_SIGERROR_OK)
		return DKIM_RES_PASS;
	for (n = 0; n < sizeof sig_errors / sizeof sig_errors[0]; n++) {
		if (sig_errors[n].err == err) {
			*why = sig_errors[n].reason;
			return sig_errors[n].res;
		}
	}
	switch (err) {
	case DKIM_SIGERROR_KEYFAIL:
		k = dkim_key_name(sig, name, sizeof name) == 0 ? dkim_key_find(c, name) : NULL;
		*why = k && k->timed_out ? "key lookup timed out" : "key lookup failed";
		return DKIM_RES_TEMPERROR;
	case DKIM_SIGERROR_BADSIG:
		*why = bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch" : "bad signature";
		/* RFC 6376 3.6.1 t=y: not to be treated unlike unsigned mail */
		if (flags & DKIM_SIGFLAG_TESTKEY) {
			*why = bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch, key in test mode (t=y)" :
			                                   "bad signature, key in test mode (t=y)";
			return DKIM_RES_NEUTRAL;
		}
		return DKIM_RES_FAIL;
	case DKIM_SIGERROR_UNKNOWN:
	case DKIM_SIGERROR_OK:
		/* not verified: the library stopped before this one */
		*why = aborted ? aborted : "not verified";
		return aborted ? DKIM_RES_TEMPERROR : DKIM_RES_NEUTRAL;
	default:
		if (c->utf8_tags[i]) {
			/* not the signer's fault: RFC 8616 allows it, the library cannot */
			*why = "UTF-8 in d= or s= (RFC 8616): not supported";
			return DKIM_RES_NEUTRAL;
		}
		/* the syntax of the signature or of the key record */
		*why = dkim_sig_geterrorstr(err);
		if (!*why)
			*why = "malformed";
		return DKIM_RES_PERMERROR;
	}
}

static void judge(struct dkim_check *c, int i, const char *aborted)
{
	DKIM_SIGINFO *sig = c->sigs[i];
	struct dkim_sig_result *r = &c->out.sig[i];
	const unsigned char *d = dkim_sig_getdomain(sig), *s = dkim_sig_getselector(sig);
	const char *why;

	if (!c->utf8_tags[i] || d || dkim_sig_gettagvalue(sig, 0, (u_char *)"d")) {
		copy_text(r->domain, sizeof r->domain, d ? d : dkim_sig_gettagvalue(sig, 0, (u_char *)"d"));
		copy_text(r->selector, sizeof r->selector,
		          s ? s : dkim_sig_gettagvalue(sig, 0, (u_char *)"s"));
	}
	copy_text(r->algo, sizeof r->algo, dkim_sig_gettagvalue(sig, 0, (u_char *)"a"));
	set_header_b(c, i);
	r->res = classify(c, i, aborted, &why);
	snprintf(r->reason, sizeof r->reason, "%s", why);
}

static void summarise(struct dkim_check *c, enum dkim_res floor)
{
	/* pass > fail > temperror > permerror > neutral > none */
	static const int rank[] = {
		[DKIM_RES_NONE] = 0, [DKIM_RES_NEUTRAL] = 1, [DKIM_RES_PERMERROR] = 2,
		[DKIM_RES_TEMPERROR] = 3, [DKIM_RES_FAIL] = 4, [DKIM_RES_PASS] = 5,
	};
	enum dkim_res best = floor;
	int i;

	if (c->out.nextra > 0 && rank[DKIM_RES_PERMERROR] > rank[best])
		best = DKIM_RES_PERMERROR;
	for (i = 0; i < c->out.nsigs; i++)
		if (rank[c->out.sig[i].res] > rank[best])
			best = c->out.sig[i].res;
	c->out.summary = best;
}

/* Done: verdicts from the library's per-signature state. aborted: why the
 * library could not finish, or NULL. */
static void finish(struct dkim_check *c, enum dkim_res floor, const char *aborted)
{
	int i;

	c->out.nsigs = c->nsigs;
	for (i = 0; i < c->nsigs; i++)
		judge(c, i, aborted);
	summarise(c, floor);
	c->done = 1;
}

/* Running */

/* dkim_eoh or dkim_eom, with c as the check the DNS callbacks serve. */
static DKIM_STAT call_lib(struct dkim_check *c, int eom)
{
	struct dkim_check *prev = c->l->current;
	DKIM_STAT st;

	c->l->current = c;
	st = eom ? dkim_eom(c->dkim, NULL) : dkim_eoh(c->dkim);
	c->l->current = prev;
	return st;
}

static int read_headers(struct dkim_check *c)
{
	struct msg_header own;
	const struct msg_header *h = c->header;
	size_t len;
	int rc;

	if (!h) { /* not read for us: read it */
		if (msg_header_read(c->rd, c->rarg, c->msglen, DKIM_HEADER_MAX, &own) < 0) {
			finish(c, DKIM_RES_TEMPERROR, NULL);
			return -1;
		}
		h = &own;
	}
	if (h->truncated) {
		/* Too large to verify: permerror if it was signed at all. */
		int signed_ = 0;

		for (size_t i = 0; i + 15 <= h->len && !signed_; i++)
			if ((i == 0 || h->buf[i - 1] == '\n') && strncasecmp(h->buf + i, "DKIM-Signature:", 15) == 0)
				signed_ = 1;
		finish(c, signed_ ? DKIM_RES_PERMERROR : DKIM_RES_NONE, NULL);
		rc = -1;
		goto out;
	}
	c->body_off = h->wire_end;
	/* the fields, without the empty line */
	len = h->len;
	if (h->complete && len >= 2)
		len -= 2;
	rc = feed_headers(c, h->buf ? h->buf : "", len);
	if (rc < 0)
		finish(c, DKIM_RES_TEMPERROR, NULL);
out:
	if (h == &own)
		msg_header_free(&own);
	return rc;
}

static void arm_wait(struct dkim_check *c)
{
	struct timeval tv;

	if (!c->l->base || c->timer)
		return;
	c->timer = evtimer_new(c->l->base, dkim_wait_expired, c);
	if (!c->timer)
		return; /* the DNS layer's own timeouts still bound the wait */
	tv.tv_sec = c->l->wait_ms / 1000;
	tv.tv_usec = (c->l->wait_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* After dkim_eoh: a body hash of our own for each signature whose header
 * signature verified (only those need the body). 0 if the body need not
 * be read at all; with a signature our hash cannot serve (not SHA-256),
 * the library hashes the body as it would alone. */
static int own_body_hashes(struct dkim_check *c)
{
	dkim_canon_t bc[DKIM_MAX_SIGS];
	long long len[DKIM_MAX_SIGS];
	int i, j, n = 0;

	c->own_body = 1;
	for (i = 0; i < c->nsigs; i++) {
		DKIM_SIGINFO *sig = c->sigs[i];
		dkim_canon_t hc;
		dkim_alg_t alg;
		const unsigned char *l;

		if (c->mark[i] != MARK_NONE)
			continue;
		if (!(dkim_sig_getflags(sig) & DKIM_SIGFLAG_PROCESSED) &&
		    dkim_sig_geterror(sig) == DKIM_SIGERROR_UNKNOWN) {
			/* not verified at dkim_eoh (DELAYSIGPROC): the library
			 * must see the body, as it would alone */
			c->own_body = 0;
			break;
		}
		if (!(dkim_sig_getflags(sig) & DKIM_SIGFLAG_PASSED))
			continue;
		l = dkim_sig_gettagvalue(sig, 0, (u_char *)"l");
		len[i] = l ? strtoll((const char *)l, NULL, 10) : -1;
		if (dkim_sig_getcanons(sig, &hc, &bc[i]) != DKIM_STAT_OK ||
		    dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK ||
		    (alg != DKIM_SIGN_RSASHA256 && alg != DKIM_SIGN_ED25519SHA256)) {
			c->own_body = 0;
			break;
		}
		for (j = 0; j < i && !(c->bh[j] && bc[j] == bc[i] && len[j] == len[i]); j++)
			;
		c->bh_first[i] = j;
		c->bh[i] = j < i ? c->bh[j] : dkim_bodyhash_new(bc[i] == DKIM_CANON_RELAXED, len[i]);
		if (!c->bh[i]) {
			c->own_body = 0;
			break;
		}
		n++;
	}
	if (!c->own_body) {
		free_body_hashes(c);
		return 1;
	}
	return n > 0;
}

/* Go as far as the answers allow; sets c->done at the end. */
void dkim_advance(struct dkim_check *c)
{
	DKIM_STAT st;

	if (c->done)
		return;
	if (c->phase == PH_HEADERS) {
		if (read_headers(c) < 0)
			return;
		c->phase = PH_EOH;
	}
	if (c->phase == PH_EOH) {
		for (;;) {
			st = call_lib(c, 0);
			c->eoh_calls++;
			if (st != DKIM_STAT_CBTRYAGAIN)
				break;
			if (c->pending > 0) {
				c->waiting = 1;
				arm_wait(c);
				return;
			}
			if (c->eoh_calls >= DKIM_EOH_CALLS_MAX) {
				finish(c, DKIM_RES_TEMPERROR, "keys did not settle");
				return;
			}
		}
		if (st == DKIM_STAT_NOSIG) {
			/* unsigned, or every signature set aside by the prescreen */
			finish(c, DKIM_RES_NONE, NULL);
			return;
		}
		if (st != DKIM_STAT_OK) {
			/* out of memory or an internal error: nothing about the message */
			const char *why = dkim_getresultstr(st);

			finish(c, DKIM_RES_TEMPERROR, why ? why : "verifier error");
			return;
		}
		c->phase = PH_BODY;
	}
	{
		struct sink s;
		int i, need = own_body_hashes(c);

		sink_init(&s, 0, 0, c);
		if (need && read_message(c, &s, c->body_off) < 0) {
			finish(c, DKIM_RES_TEMPERROR, "message unreadable");
			return;
		}
		sink_flush(&s);
		for (i = 0; i < c->nsigs; i++)
			if (c->bh[i])
				c->bh_res[i] = dkim_bodyhash_check(c->bh[i], (const char *)dkim_sig_gettagvalue(
				                                                  c->sigs[i], 0, (u_char *)"bh"));
		c->bh_checked = 1;
		/* The per-signature state says it all: dkim_eom only reports on
		 * the one signature it picks. */
		(void)call_lib(c, 1);
		finish(c, DKIM_RES_NONE, NULL);
	}
}

static void check_free(struct dkim_check *c)
{
	int i;

	dns_cancel(c->later);
	for (i = 0; i < c->nkeys; i++) {
		dns_cancel(c->key[i].req);
		free(c->key[i].abuf);
	}
	if (c->timer)
		event_free(c->timer);
	if (c->dkim)
		dkim_free(c->dkim);
	free_body_hashes(c);
	free(c);
}

/* Report and free c: the outcome is copied out first, so cb may do
 * anything, dkim_verifier_free included. */
void dkim_deliver(struct dkim_check *c)
{
	struct dkim_outcome o = c->out;
	dkim_cb cb = c->cb;
	void *arg = c->arg;

	check_free(c);
	cb(arg, &o);
}

/* An outcome known inside dkim_check_start, on the loop's next turn. */
static void deferred_cb(void *arg, const struct dns_result *r)
{
	struct dkim_check *c = arg;

	c->later = NULL;
	dkim_deliver(c);
}

struct dkim_check *dkim_check_start(struct dkim_verifier *l, const struct msg_header *header, dkim_reader rd,
                                    void *rarg, size_t msglen, dkim_cb cb, void *arg)
{
	return dkim_check_start_via(l, l->dns, header, rd, rarg, msglen, cb, arg);
}

struct dkim_check *dkim_check_start_via(struct dkim_verifier *l, struct dns *dns, const struct msg_header *header,
                                        dkim_reader rd, void *rarg, size_t msglen, dkim_cb cb, void *arg)
{
	struct dkim_check *c = calloc(1, sizeof *c);
	DKIM_STAT st = DKIM_STAT_NORESOURCE;

	if (c)
		c->dkim = dkim_verify(l->lib, dkim_id, NULL, &st);
	if (!c || !c->dkim) {
		free(c);
		return NULL;
	}
	c->l = l;
	c->dns = dns;
	c->header = header;
	c->rd = rd;
	c->rarg = rarg;
	c->msglen = msglen;
	c->cb = cb;
	c->arg = arg;
	dkim_set_user_context(c->dkim, c);
	dkim_advance(c);
	if (c->done && !(c->later = dns_defer(dns, deferred_cb, c))) {
		check_free(c);
		return NULL;
	}
	return c;
}

void dkim_check_cancel(struct dkim_check *c)
{
	if (c)
		check_free(c);
}

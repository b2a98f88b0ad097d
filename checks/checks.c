/* checks.c - runs the checks of each stage and hands the session one verdict.
 *
 * MAIL starts the sender-domain check and SPF side by side; the verdict
 * comes when both are in. At the end of data, DKIM runs over the spooled
 * message. Every result stays in the transaction for the log and for
 * Authentication-Results. A trusted client is never refused by them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "recipients.h"
#include "server.h"
#include "session.h"
#include "spool.h"

struct checks {
	struct session *s;
	struct sender_check *sc;  /* in flight */
	struct spf_check *spf;
	struct dkim_check *dk;
	int sender_pending, spf_pending;
	verdict_cb mail_done;     /* the session's callback for MAIL */
	verdict_cb data_done;
	int starting;             /* inside dkim_check_start */
	struct check_results res;
};

static void go_on(struct verdict *v)
{
	memset(v, 0, sizeof *v);
}

/* Bounded copy that may cut (texts from outside, e.g. an SPF explanation). */
static void cut_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void refuse(struct verdict *v, int code, const char *esc, const char *reason, const char *text)
{
	v->code = code;
	cut_copy(v->esc, sizeof v->esc, esc);
	cut_copy(v->text, sizeof v->text, text);
	cut_copy(v->reason, sizeof v->reason, reason);
}

const struct check_results *checks_results(const struct session *s)
{
	return s->tx && s->tx->chk ? &s->tx->chk->res : NULL;
}

/* ---- MAIL: sender domain + SPF ------------------------------------------ */

/* Both sender checks are in: one verdict. A 5xx beats a 4xx; the sender
 * domain's verdict beats SPF's (a domain that does not exist has no policy). */
static void mail_verdict(struct checks *c)
{
	const struct check_results *r = &c->res;
	struct session *s = c->s;
	const char *from = s->tx->from.mailbox;
	struct verdict v, temp;
	char text[1024];

	go_on(&v);
	go_on(&temp);
	switch (r->sender) {
	case SD_NXDOMAIN:
	case SD_NORECORDS:
		snprintf(text, sizeof text, "<%s>: Sender address rejected: Domain not found", from);
		refuse(&v, 550, "5.1.8", r->sender == SD_NXDOMAIN ? "sender domain does not exist"
		                                                  : "sender domain has no MX/A/AAAA", text);
		break;
	case SD_NULLMX:
		snprintf(text, sizeof text, "<%s>: Sender address rejected: Domain does not accept mail (null MX)", from);
		refuse(&v, 550, "5.7.27", "sender domain has a null MX", text);
		break;
	case SD_TEMPFAIL:
		snprintf(text, sizeof text, "<%s>: Sender address rejected: Domain lookup failed, try again later", from);
		refuse(&temp, 451, "4.4.3", "sender domain lookup failed", text);
		break;
	default:
		break;
	}
	if (!v.code && r->spf_done && r->spf.res == SPF_RES_FAIL) {
		snprintf(text, sizeof text, "SPF: %s", r->spf.explanation);
		refuse(&v, 550, "5.7.23", r->spf.reason[0] ? r->spf.reason : "SPF fail", text);
	}
	if (!v.code && !temp.code && r->spf_done && r->spf.res == SPF_RES_TEMPERROR) {
		snprintf(text, sizeof text, "SPF: temporary DNS error evaluating %s, try again later", r->spf.domain);
		refuse(&temp, 451, "4.7.24", "SPF temperror", text);
	}
	if (!v.code)
		v = temp;
	if (v.code && relay_client_trusted(s->cfg, (const struct sockaddr *)&s->peer))
		go_on(&v); /* our own network: results recorded, never refused */
	c->mail_done(s, &v);
}

static void mail_maybe_done(struct checks *c)
{
	if (c->sender_pending || c->spf_pending || !c->mail_done)
		return;
	mail_verdict(c);
}

static void sender_cb_(void *arg, enum sender_res res)
{
	struct checks *c = arg;

	c->sc = NULL;
	c->res.sender = res;
	c->res.sender_done = 1;
	c->sender_pending = 0;
	mail_maybe_done(c);
}

static void spf_cb_(void *arg, const struct spf_outcome *o)
{
	struct checks *c = arg;

	c->spf = NULL;
	c->res.spf = *o;
	c->res.spf_done = 1;
	c->spf_pending = 0;
	mail_maybe_done(c);
}

void checks_mail(struct session *s, verdict_cb done)
{
	struct checks *c = calloc(1, sizeof *c);
	struct verdict v;

	if (!c) {
		refuse(&v, 451, "4.3.0", "out of memory", "Error: local error in processing, try again later");
		done(s, &v);
		return;
	}
	c->s = s;
	s->tx->chk = c;
	/* Both start before either may finish: the verdict waits for mail_done. */
	c->sender_pending = s->cfg->check_sender_domain;
	c->spf_pending = s->cfg->check_spf;
	if (c->sender_pending)
		c->sc = sender_check_start(s->srv->dns, s->tx->from.null ? NULL : s->tx->from.domain,
		                           sender_cb_, c);
	if (c->spf_pending)
		c->spf = spf_check_start(s->srv->dns, (const struct sockaddr *)&s->peer, s->helo,
		                         s->tx->from.null ? "" : s->tx->from.mailbox, s->cfg->hostname,
		                         spf_cb_, c);
	c->mail_done = done;
	mail_maybe_done(c);
}

/* ---- RCPT: relaying ----------------------------------------------------- */

void checks_rcpt(struct session *s, const struct smtp_path *rcpt, verdict_cb done)
{
	struct verdict v;
	char text[1024];

	go_on(&v);
	switch (relay_check(s->cfg, (const struct sockaddr *)&s->peer, rcpt)) {
	case RELAY_OK:
		/* A local domain's user must exist when the table is configured. */
		if (s->cfg->rcpt_table && rcpt->domain[0] && relay_domain_is_local(s->cfg, rcpt->domain) &&
		    !recipients_has(s->cfg->rcpt_table, rcpt->local, rcpt->domain)) {
			snprintf(text, sizeof text, "<%s>: Recipient address rejected: User unknown", rcpt->mailbox);
			refuse(&v, 550, "5.1.1", "unknown recipient", text);
		}
		break;
	case RELAY_BAD_ROUTING:
		snprintf(text, sizeof text, "<%s>: source routing and %%/! addressing are not allowed", rcpt->mailbox);
		refuse(&v, 553, "5.7.1", "routing syntax in recipient", text);
		break;
	case RELAY_DENIED:
		snprintf(text, sizeof text, "<%s>: Relay access denied", rcpt->mailbox);
		refuse(&v, 554, "5.7.1", "relay denied", text);
		break;
	}
	done(s, &v);
}

/* ---- DATA: DKIM ----------------------------------------------------------- */

static long spool_reader(void *arg, size_t off, char *buf, size_t len)
{
	return spool_read(arg, off, buf, len);
}

/* Signatures present, none passing, at least one failing: refuse. */
static void dkim_verdict(struct checks *c)
{
	const struct dkim_outcome *o = &c->res.dkim;
	struct session *s = c->s;
	struct verdict v;
	int i, failed = 0;

	go_on(&v);
	for (i = 0; i < o->nsigs; i++)
		failed |= o->sig[i].res == DKIM_RES_FAIL;
	if (o->summary != DKIM_RES_PASS && failed &&
	    !relay_client_trusted(s->cfg, (const struct sockaddr *)&s->peer))
		refuse(&v, 550, "5.7.20", "DKIM signature verification failed",
		       "No passing DKIM signature found");
	c->data_done(s, &v); /* may free c */
}

static void dkim_cb_(void *arg, const struct dkim_outcome *o)
{
	struct checks *c = arg;

	c->dk = NULL;
	c->res.dkim = *o;
	c->res.dkim_done = 1;
	if (!c->starting) /* else checks_data delivers once dkim_check_start returned */
		dkim_verdict(c);
}

void checks_data(struct session *s, verdict_cb done)
{
	struct checks *c = s->tx->chk;
	struct dkim_check *dk;
	struct verdict v;

	go_on(&v);
	if (!c || !s->cfg->check_dkim) {
		done(s, &v);
		return;
	}
	c->data_done = done;
	c->starting = 1;
	dk = dkim_check_start(s->srv->dkim, spool_reader, s->tx->spool, spool_size(s->tx->spool),
	                      dkim_cb_, c);
	c->starting = 0;
	if (c->res.dkim_done)
		dkim_verdict(c);
	else
		c->dk = dk;
}

/* ---- end ---------------------------------------------------------------- */

void checks_txn_free(struct checks *c)
{
	if (!c)
		return;
	sender_check_cancel(c->sc);
	spf_check_cancel(c->spf);
	dkim_check_cancel(c->dk);
	free(c);
}

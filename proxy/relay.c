/* relay.c - the backend side of a client's transactions (see relay.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "proxy/backend.h"
#include "proxy/config.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/message.h"
#include "proxy/relay.h"
#include "proxy/xclient.h"

/* Where the backend stands in the current transaction. */
enum txn_state {
	T_NONE,    /* nothing sent for this transaction yet */
	T_MAIL_OK, /* the backend accepted our MAIL */
	T_REFUSED, /* it refused MAIL: its reply answers every RCPT */
	T_DOWN,    /* unreachable: 451 for every RCPT */
};

struct relay {
	struct backend_pool *pool;
	const struct config *cfg;
	struct backend *be;        /* kept across transactions; NULL if none */
	int pinned;                /* be authenticated the session: no other, never pooled (relay_adopt) */
	int used;                  /* it served a transaction: RSET first */
	enum txn_state st;
	enum reply_id down_id;     /* with T_DOWN: the 451 every RCPT gets */
	struct smtp_reply *refusal; /* with T_REFUSED, allocated then */
	/* the group [RSET] [XFORWARD] MAIL RCPT */
	int gi_mail;               /* index of MAIL in it */
	int g_rset;                /* it starts with RSET */
	int g_broken;              /* the backend refused that RSET */
	int g_n;                   /* lines in the group */
	/* XCLIENT: the commands that made the backend's session this client's
	 * ("" none yet on this connection), and whether one carried LOGIN */
	char xsent[XCLIENT_LINES_MAX * (XCLIENT_LINE_MAX + 1)];
	char xpending[XCLIENT_LINES_MAX * (XCLIENT_LINE_MAX + 1)];
	int xlogin;
	char tls[16];              /* the connection's TLS version, "none"; "" before one */
	int tls_resumed;           /* its TLS session was resumed */
	char why[400];             /* a reason of ours that outlives the connection */
	/* the step in flight */
	relay_cb cb;
	void *arg;
	struct relay_client cl;
	const struct smtp_path *from;
	const char *from_params, *rcpt_line;
	struct message *msg;
	char *prefix;
	size_t plen;
	/* an outcome known at once waits for the next loop turn */
	struct event *later;
	struct relay_outcome pending;
};

struct relay *relay_new(struct backend_pool *pool, const struct config *cfg)
{
	struct relay *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->pool = pool;
	r->cfg = cfg;
	return r;
}

static void drop(struct relay *r)
{
	backend_free(r->be);
	r->be = NULL;
	r->used = 0;
	r->xsent[0] = '\0';
	r->xlogin = 0;
}

const char *relay_backend_tls(const struct relay *r, int *resumed)
{
	*resumed = r && r->tls_resumed;
	return r && r->tls[0] ? r->tls : NULL;
}

int relay_wants_rdns(const struct backend_pool *pool, const struct config *cfg)
{
	const struct ehlo_caps *caps = backend_pool_caps(pool);

	return cfg->xclient == XCLIENT_MODE_YES ||
	       (cfg->xclient == XCLIENT_MODE_AUTO && caps && (caps->xclient & XCLIENT_NAME));
}

void relay_txn_end(struct relay *r)
{
	r->st = T_NONE;
	free(r->refusal);
	r->refusal = NULL;
	r->g_broken = 0;
}

void relay_free(struct relay *r, int abandon)
{
	if (!r)
		return;
	/* a session of the backend's that XCLIENT gave a login, or that
	 * authenticated (relay_adopt), is no one else's */
	if (abandon || r->xlogin || r->pinned)
		backend_free(r->be);
	else
		backend_release(r->pool, r->be, r->cfg);
	if (r->later)
		event_free(r->later);
	free(r->refusal);
	free(r->prefix);
	free(r);
}

void relay_adopt(struct relay *r, struct backend *be)
{
	if (r->be && !r->xlogin)
		backend_release(r->pool, r->be, r->cfg);
	else
		backend_free(r->be);
	relay_txn_end(r);
	r->be = be;
	r->used = 0; /* nothing to RSET yet */
	r->xsent[0] = '\0';
	r->xlogin = 0;
	r->pinned = 1;
}

/* ---- reporting ------------------------------------------------------------ */

static void report(struct relay *r, const struct relay_outcome *o)
{
	relay_cb cb = r->cb;

	r->cb = NULL;
	free(r->prefix);
	r->prefix = NULL;
	r->msg = NULL;
	cb(r->arg, o);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	report(r, &r->pending);
}

/* An outcome found inside the caller's call: delivered on the next turn. */
static void report_later(struct relay *r, const struct smtp_reply *reply, enum reply_id id, const char *why)
{
	r->pending = (struct relay_outcome){reply, id, why};
	if (!r->later && !(r->later = event_new(backend_pool_base(r->pool), -1, 0, later_cb, r))) {
		/* no memory for an event: the only way left is now */
		report(r, &r->pending);
		return;
	}
	event_active(r->later, 0, 0);
}

static void reply_now(struct relay *r, const struct smtp_reply *reply)
{
	struct relay_outcome o = {reply, R_DONE, NULL};

	report(r, &o);
}

/* The backend is gone for this transaction: every RCPT gets id (a 451). */
static void down_with(struct relay *r, enum reply_id id, const char *why, int now)
{
	struct relay_outcome o = {NULL, id, r->why};

	if (why != r->why) /* kept: the later RCPTs of the transaction say it too */
		snprintf(r->why, sizeof r->why, "%s", why);
	drop(r);
	r->st = T_DOWN;
	r->down_id = id;
	if (now)
		report(r, &o);
	else
		report_later(r, NULL, id, r->why);
}

static void down(struct relay *r, const char *why, int now)
{
	down_with(r, R_BACKEND_DOWN, why, now);
}

/* ---- RCPT ------------------------------------------------------------------ */

static void rcpt_reply_cb(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;

	if (!reply)
		down(r, "backend connection lost", 1);
	else
		reply_now(r, reply);
}

/* MAIL FROM for the backend: the client's path and the parameters this
 * connection can take (it announced their extension). */
static void mail_line(const struct relay *r, char *line, size_t size)
{
	const struct ehlo_caps *bc = backend_caps(r->be);
	struct smtp_params ps;
	struct smtp_path path;
	char tmp[MOAT_CMD_LINE_MAX + 16];
	int n, i;

	n = snprintf(line, size, "MAIL FROM:<%s>", r->from->null ? "" : r->from->mailbox);
	snprintf(tmp, sizeof tmp, "FROM:<> %s", r->from_params);
	if (smtp_parse_mail_rcpt(tmp, 0, &path, &ps) != PATH_OK)
		ps.n = 0;
	for (i = 0; i < ps.n && n > 0 && n < (int)size - 1; i++) {
		const struct smtp_param *p = &ps.p[i];

		if ((!strcmp(p->key, "SIZE") && !bc->size) || (!strcmp(p->key, "BODY") && !bc->eightbit) ||
		    (!strcmp(p->key, "SMTPUTF8") && !bc->smtputf8) ||
		    ((!strcmp(p->key, "RET") || !strcmp(p->key, "ENVID")) && !bc->dsn))
			continue;
		n += snprintf(line + n, size - (size_t)n, p->has_value ? " %s=%s" : " %s", p->key, p->value);
	}
}

/* One reply of the group [RSET] [XFORWARD] MAIL RCPT. */
static void group_cb(void *arg, int idx, const struct smtp_reply *reply)
{
	struct relay *r = arg;

	if (!reply) {
		down(r, "backend connection lost", 1);
		return;
	}
	if (reply->code == 421 && idx < r->g_n - 1) {
		/* closing: the group ends here, no reply follows */
		snprintf(r->why, sizeof r->why, "backend closing: %.*s", (int)strcspn(reply->text, "\r"), reply->text);
		down(r, r->why, 1);
		return;
	}
	if (idx < r->gi_mail) {
		/* RSET must work for reuse to be safe; a refused XFORWARD only
		 * costs the backend's log the client's name. */
		if (idx == 0 && r->g_rset && reply->code / 100 != 2)
			r->g_broken = 1;
		else if (reply->code / 100 != 2)
			log_warn("backend", "backend refused XFORWARD: %.*s", (int)strcspn(reply->text, "\r"),
			         reply->text);
		return;
	}
	if (idx == r->gi_mail) {
		if (reply->code / 100 == 2) {
			r->st = T_MAIL_OK;
		} else if (!r->refusal && !(r->refusal = malloc(sizeof *r->refusal))) {
			r->st = T_DOWN;
		} else {
			/* kept for every RCPT of the transaction */
			r->st = T_REFUSED;
			*r->refusal = *reply;
		}
		return;
	}
	/* The RCPT's reply, last of the group. */
	if (r->g_broken)
		down(r, "backend refused RSET", 1);
	else if (r->st == T_REFUSED)
		reply_now(r, r->refusal);
	else if (r->st == T_DOWN)
		down(r, "backend connection lost", 1);
	else
		reply_now(r, reply);
}

static void start_txn(struct relay *r);

/* XCLIENT's outcome: the EHLO reply after it, or what refused. */
static void xclient_cb(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;
	char first[300];

	if (!reply) {
		down(r, "backend connection lost at XCLIENT", 1);
		return;
	}
	if (reply->code / 100 == 2) {
		memcpy(r->xsent, r->xpending, sizeof r->xsent);
		r->xlogin = r->cl.login && *r->cl.login;
		r->used = 0; /* the backend's session started over: no transaction to RSET */
		start_txn(r);
		return;
	}
	reply_first_line(reply->text, first, sizeof first);
	if (reply->code == 421 || reply->code == 501 || reply->code == 502 || reply->code == 503) {
		/* not a verdict on the client: the backend is closing, or does not
		 * take what moat sent */
		log_warn("backend", "backend refused XCLIENT: %s", first);
		snprintf(r->why, sizeof r->why, "backend refused XCLIENT: %s", first);
		down_with(r, reply->code == 421 ? R_BACKEND_DOWN : R_BACKEND_XCLIENT, r->why, 1);
		return;
	}
	/* The backend's own client restrictions refused the client: its reply
	 * answers every RCPT of the transaction; its session is the refused
	 * client's, never another's. */
	if (!r->refusal && !(r->refusal = malloc(sizeof *r->refusal))) {
		down(r, "out of memory", 1);
		return;
	}
	*r->refusal = *reply;
	drop(r);
	r->st = T_REFUSED;
	reply_now(r, r->refusal);
}

/* XCLIENT, when the backend takes it and this client's is not in place
 * yet: 1 when it went out (xclient_cb goes on), 0 when not needed, -1
 * (reported) when it cannot be. */
static int xclient_step(struct relay *r)
{
	unsigned attrs = backend_caps(r->be)->xclient;
	char lines[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1];
	const char *lp[XCLIENT_LINES_MAX];
	size_t used = 0;
	int n;

	if (r->cfg->xclient == XCLIENT_MODE_NO)
		return 0;
	/* XCLIENT starts the backend's session over: on the connection that
	 * authenticated, only with LOGIN, which keeps it authenticated */
	if (r->pinned && !(attrs & XCLIENT_LOGIN))
		return 0;
	n = xclient_lines(&r->cl, attrs, lines);
	if (n == 0 && r->cfg->xclient == XCLIENT_MODE_YES) {
		down_with(r, R_BACKEND_XCLIENT, "xclient = yes and the backend offers no XCLIENT", 0);
		return -1;
	}
	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++) {
		lp[i] = lines[i];
		used += (size_t)snprintf(r->xpending + used, sizeof r->xpending - used, "%s\n", lines[i]);
	}
	if (strcmp(r->xpending, r->xsent) == 0)
		return 0;
	if (backend_xclient(r->be, r->used, lp, n, xclient_helo_ok(r->cl.helo) ? r->cl.helo : r->cfg->hostname,
	                    r->cl.esmtp, xclient_cb, r) < 0) {
		down(r, "backend connection lost", 0);
		return -1;
	}
	return 1;
}

/* The backend is connected and idle: start its transaction with this RCPT
 * (after XCLIENT, when that comes first). */
static void start_txn(struct relay *r)
{
	char xf[MOAT_CMD_LINE_MAX + 64], mail[MOAT_CMD_LINE_MAX + 64];
	const char *lines[BACKEND_GROUP_MAX], *tls = backend_tls_version(r->be, &r->tls_resumed);
	int n = 0;

	snprintf(r->tls, sizeof r->tls, "%s", tls ? tls : "none");
	if (xclient_step(r) != 0)
		return;
	r->g_rset = r->used; /* a reused connection starts clean */
	r->g_broken = 0;
	if (r->g_rset)
		lines[n++] = "RSET";
	if (!r->xsent[0] && backend_caps(r->be)->xforward) {
		xforward_line(&r->cl, xf, sizeof xf);
		lines[n++] = xf;
	}
	mail_line(r, mail, sizeof mail);
	r->gi_mail = n;
	lines[n++] = mail;
	lines[n++] = r->rcpt_line;
	r->g_n = n;
	r->used = 1;
	if (backend_group(r->be, lines, n, group_cb, r) < 0)
		down(r, "backend connection lost", 0);
}

static void ehlo_reply_cb(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;
	const char *tls = reply ? NULL : backend_tls_error(r->be);

	if (tls) {
		snprintf(r->why, sizeof r->why, "backend TLS required and %s", tls);
		down_with(r, R_BACKEND_TLS, r->why, 1);
		return;
	}
	if (!reply && backend_unresolved(r->be)) {
		snprintf(r->why, sizeof r->why, "%s", backend_error(r->be));
		down_with(r, R_BACKEND_DNS, r->why, 1);
		return;
	}
	if (!reply || reply->code / 100 != 2) {
		if (reply)
			log_warn("backend", "backend refused the session: %.*s", (int)strcspn(reply->text, "\r"),
			         reply->text);
		down(r, "backend unavailable", 1);
		return;
	}
	start_txn(r);
}

void relay_rcpt(struct relay *r, const struct relay_client *cl, const struct smtp_path *from,
                const char *from_params, const char *rcpt_line, relay_cb cb, void *arg)
{
	r->cb = cb;
	r->arg = arg;
	r->cl = *cl;
	r->from = from;
	r->from_params = from_params;
	r->rcpt_line = rcpt_line;
	switch (r->st) {
	case T_MAIL_OK:
		if (backend_command(r->be, rcpt_line, rcpt_reply_cb, r) < 0)
			down(r, "backend connection lost", 0);
		return;
	case T_REFUSED:
		report_later(r, r->refusal, R_DONE, NULL);
		return;
	case T_DOWN:
		report_later(r, NULL, r->down_id, r->down_id == R_BACKEND_DOWN ? "backend unavailable" : r->why);
		return;
	case T_NONE:
		break;
	}
	/* gone, or no longer where the backend is (a reload, a name's new
	 * answer): the transaction takes another */
	if (r->be && (!backend_idle(r->be) || (!r->pinned && !backend_current(r->be, r->cfg))))
		drop(r);
	if (r->be) {
		start_txn(r);
		return;
	}
	if (r->pinned) { /* another connection would not be authenticated */
		down(r, "the authenticated backend connection is gone", 0);
		return;
	}
	if ((r->be = backend_take(r->pool, r->cfg))) {
		r->used = 1; /* RSET first */
		start_txn(r);
		return;
	}
	r->be = backend_open(r->pool, r->cfg, ehlo_reply_cb, r);
	if (!r->be)
		down(r, "backend unavailable", 0);
}

/* ---- DATA ------------------------------------------------------------------ */

static void lost(struct relay *r, enum reply_id id, const char *why, int now)
{
	struct relay_outcome o = {NULL, id, why};

	/* No end-of-data dot has gone out, or the connection is gone: dropping
	 * it delivers nothing (or leaves the backend's answer unknown). */
	drop(r);
	if (now)
		report(r, &o);
	else
		report_later(r, NULL, id, why);
}

static void final_reply_cb(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;

	if (!reply) {
		/* Lost after the message went out: the backend may or may not have
		 * it; the client retries (RFC 5321 6.1 accepts that duplicate). */
		lost(r, R_BACKEND_LOST, "backend connection lost after end of data", 1);
		return;
	}
	r->st = T_NONE; /* the backend's transaction is over */
	reply_now(r, reply);
}

static void data_reply_cb(void *arg, const struct smtp_reply *reply)
{
	struct relay *r = arg;
	struct evbuffer *out;
	int sendfile;

	if (!reply) {
		lost(r, R_BACKEND_LOST, "backend connection lost at DATA", 1);
		return;
	}
	if (reply->code != 354) {
		reply_now(r, reply);
		return;
	}
	/* Straight into the connection's output: a spool file then goes out
	 * with sendfile, never through memory. */
	out = backend_message_buffer(r->be, &sendfile);
	if (!out || message_send(r->msg, r->prefix, r->plen, out, sendfile) < 0) {
		lost(r, R_LOCAL_ERROR, "could not pass the message on", 1);
		return;
	}
	if (backend_message_end(r->be, final_reply_cb, r) < 0)
		lost(r, R_BACKEND_LOST, "backend connection lost after end of data", 1);
}

void relay_data(struct relay *r, struct message *m, const char *prefix, size_t plen, relay_cb cb,
                void *arg)
{
	r->cb = cb;
	r->arg = arg;
	r->msg = m;
	r->plen = plen;
	if (!(r->prefix = malloc(plen ? plen : 1))) {
		report_later(r, NULL, R_LOCAL_ERROR, "out of memory");
		return;
	}
	memcpy(r->prefix, prefix, plen);
	if (!backend_idle(r->be)) {
		lost(r, R_BACKEND_LOST, "backend connection lost before DATA", 0);
		return;
	}
	if (backend_command(r->be, "DATA", data_reply_cb, r) < 0)
		lost(r, R_BACKEND_LOST, "backend connection lost at DATA", 0);
}

/* session_auth.c - AUTH PLAIN and LOGIN passed on to the backend (RFC 4954).
 *
 * Offered on submission_listen and smtps_listen, under TLS; never on listen
 * (port 25 is the MX: there AUTH would only invite password guessing, and
 * submission has ports of its own, RFC 8314 and RFC 6409). moat is not the
 * authority: each AUTH opens a connection to submission_backend, sends the
 * command there, passes the backend's 334 challenges to the client and the
 * client's answers back, and the client hears the backend's verdict
 * verbatim. moat reads only the login name (for the log, the rules and
 * XCLIENT LOGIN); no credential is kept, compared or logged, and the
 * buffers that held one are wiped. After 235 the connection stays with the
 * session for its mail (relay_adopt); after anything else it is closed.
 *
 * Failures count against the client's address (authfail.c): the backend's
 * 5xx verdicts (not its reply to a cancel) and answers moat cannot read.
 * The one that reaches auth_fail_limit ends the session with 421, and every
 * new connection from that address on these listeners gets 421 until its
 * window has passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/authfail.h"
#include "proxy/backend.h"
#include "proxy/decision.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/sasl.h"
#include "proxy/lib/text.h"
#include "proxy/relay.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* An exchange in progress. */
struct session_auth {
	struct backend *be;      /* to submission_backend; NULL before it is opened */
	enum sasl_mech mech;
	int rounds;              /* the backend's 334s so far */
	int cancelled;           /* the client answered "*" */
	int unreadable;          /* moat could not read an answer: it sent "*" instead */
	char user[MOAT_AUTH_USER_MAX + 1]; /* the login name; "" until an answer gave it */
	char *cmd;               /* "AUTH MECH [initial]" until the connection is ready; wiped */
};

static long long now_s(void)
{
	return (long long)(clock_ms() / 1000);
}

int session_auth_blocked(struct session *s)
{
	return s->listener != LISTENER_SMTP && authfail_blocked(s->srv->authfail, &s->peer.sa, s->cfg->auth_fail_limit,
	                                                        s->cfg->auth_fail_window, now_s());
}

/* The "auth" line of an attempt: what happened, never a credential. r: the
 * backend's verdict, else moat's own reply id. */
static void auth_log(struct session *s, const char *result, const char *why, const struct smtp_reply *r,
                     enum reply_id id)
{
	const struct session_auth *a = s->auth;
	char esc[16];
	struct jline j;

	jl_begin(&j, strcmp(result, "success") && strcmp(result, "cancelled") ? "warning" : "info", "auth");
	jl_str(&j, "session", s->id);
	jl_str(&j, "client_ip", s->peer_ip);
	jl_str(&j, "listener", rules_listener_name(s->listener));
	if (a)
		jl_str(&j, "mechanism", sasl_mech_name(a->mech));
	if (a && a->user[0])
		jl_strn(&j, "auth_user", a->user, MOAT_AUTH_USER_MAX);
	jl_str(&j, "result", result);
	if (r) {
		decision_esc_of(r->text, esc, sizeof esc);
		jl_int(&j, "code", r->code);
	} else {
		text_copy(esc, sizeof esc, replies[id].esc ? replies[id].esc : "");
		jl_int(&j, "code", replies[id].code);
	}
	if (esc[0])
		jl_str(&j, "esc", esc);
	if (why)
		jl_str(&j, "reason", why);
	jl_emit(&j);
}

/* The exchange is over: its connection (unless the relay took it) closed. */
static void auth_end(struct session *s)
{
	struct session_auth *a = s->auth;

	if (!a)
		return;
	backend_free(a->be);
	if (a->cmd) {
		explicit_bzero(a->cmd, strlen(a->cmd));
		free(a->cmd);
	}
	explicit_bzero(a, sizeof *a);
	free(a);
	s->auth = NULL;
	s->reader.max = MOAT_CMD_LINE_MAX;
	if (s->state == S_AUTH)
		s->state = S_CMD;
}

void session_auth_free(struct session *s)
{
	auth_end(s);
}

/* A failure of the address: 1 if that blocks it (the caller ends the
 * session with 421 after the reply). */
static int count_failure(struct session *s)
{
	return authfail_add(s->srv->authfail, &s->peer.sa, s->cfg->auth_fail_limit, s->cfg->auth_fail_window,
	                    now_s());
}

/* After a reply that ended the exchange: the next command, or the end. */
static void done(struct session *s, int blocked)
{
	auth_end(s);
	if (blocked) {
		session_note(s, "warning", "auth", "auth_fail_limit (%d) reached: closing; the address gets 421 for %d s",
		             s->cfg->auth_fail_limit, s->cfg->auth_fail_window);
		session_close_with(s, R_AUTH_BLOCKED);
		return;
	}
	session_resume(s);
}

/* moat's own answer ends the exchange (the backend was not asked, or
 * failed): a 454 does not count against the client. */
static void tempfail(struct session *s, const char *why)
{
	session_reply(s, R_AUTH_TEMP, NULL);
	auth_log(s, "tempfail", why, NULL, R_AUTH_TEMP);
	done(s, 0);
}

/* An answer moat cannot read (not base64, no login name in it): refused,
 * and counted. */
static void unreadable(struct session *s)
{
	session_reply(s, R_AUTH_BAD_DATA, NULL);
	auth_log(s, "failure", "an answer moat cannot read", NULL, R_AUTH_BAD_DATA);
	done(s, count_failure(s));
}

/* 235: the session is authenticated, on this connection. */
static void success(struct session *s, const struct smtp_reply *r)
{
	struct session_auth *a = s->auth;
	char *user = strdup(a->user);

	if (!user || checks_auth(s->chk, a->user) < 0 ||
	    (!s->relay && !(s->relay = relay_new(s->srv->backends, s->cfg)))) {
		free(user);
		tempfail(s, "out of memory");
		return;
	}
	s->auth_user = user;
	relay_adopt(s->relay, a->be);
	a->be = NULL;
	session_send(s, r->text, r->len);
	auth_log(s, "success", NULL, r, 0);
	done(s, 0);
}

/* The backend's verdict (not 334). */
static void verdict(struct session *s, const struct smtp_reply *r)
{
	struct session_auth *a = s->auth;
	int failed = r->code / 100 == 5 && !a->cancelled;

	if (a->unreadable) { /* the backend's reply to our "*" */
		unreadable(s);
		return;
	}
	if (r->code / 100 == 2 && a->user[0] && !a->cancelled) {
		success(s, r);
		return;
	}
	if (r->code / 100 == 2) { /* 235 to a cancel, or without a name moat read: not taken */
		tempfail(s, "submission_backend took an exchange moat could not follow");
		return;
	}
	session_send(s, r->text, r->len);
	auth_log(s, a->cancelled ? "cancelled" : failed ? "failure" : "tempfail", NULL, r, 0);
	done(s, failed && count_failure(s));
}

/* A reply of the backend during the exchange. */
static void reply_cb(void *arg, const struct smtp_reply *r)
{
	struct session *s = arg;
	struct session_auth *a = s->auth;

	if (!r) {
		tempfail(s, "submission_backend connection lost");
		return;
	}
	if (r->code == 421) { /* the backend's connection ends, not the client's */
		tempfail(s, "submission_backend closed the connection (421)");
		return;
	}
	if (r->code != 334) {
		verdict(s, r);
		return;
	}
	if (a->cancelled || a->unreadable || ++a->rounds > MOAT_AUTH_ROUNDS_MAX) {
		tempfail(s, "submission_backend asked for more than the mechanism has");
		return;
	}
	/* the challenge, verbatim; the client's answer is a line of its own */
	session_send(s, r->text, r->len);
	s->state = S_AUTH;
	s->reader.max = MOAT_AUTH_LINE_MAX;
	session_resume(s);
}

/* The connection to submission_backend is up (its EHLO answered). */
static void ready_cb(void *arg, const struct smtp_reply *r)
{
	struct session *s = arg;
	struct session_auth *a = s->auth;
	const struct ehlo_caps *c;

	if (!r || r->code / 100 != 2) {
		tempfail(s, r ? "submission_backend refused the session"
		              : backend_unresolved(a->be) ? backend_error(a->be) : "submission_backend unavailable");
		return;
	}
	c = backend_caps(a->be);
	if (!(a->mech == SASL_PLAIN ? c->auth_plain : c->auth_login)) {
		log_warn("auth", "submission_backend does not offer AUTH %s (Postfix: smtpd_sasl_auth_enable = yes; "
		         "smtpd_tls_auth_only = yes needs backend_tls)", sasl_mech_name(a->mech));
		tempfail(s, "submission_backend does not offer the mechanism");
		return;
	}
	if (backend_command(a->be, a->cmd, reply_cb, s) < 0)
		tempfail(s, "submission_backend connection lost");
	explicit_bzero(a->cmd, strlen(a->cmd));
}

/* Refusals before anything goes to the backend; 1 if one was sent. */
static int refused(struct session *s, enum sasl_mech *m, const char **initial, const char *arg)
{
	enum reply_id id = R_COUNT;

	if (s->listener == LISTENER_SMTP)
		id = R_NOT_IMPL; /* the MX offers no AUTH */
	else if (!s->ssl)
		id = R_NEED_STARTTLS;
	else if (!s->esmtp)
		id = R_NEED_HELO; /* RFC 4954 4: after EHLO */
	else if (s->auth_user)
		id = R_AUTH_ALREADY;
	else if (s->tx)
		id = R_TXN_IN_PROGRESS;
	else if (sasl_auth_args(arg, m, initial) < 0)
		id = R_AUTH_SYNTAX;
	else if (*m == SASL_NONE)
		id = R_AUTH_MECH;
	if (id == R_COUNT)
		return 0;
	session_proto_error(s, id, NULL);
	return 1;
}

void session_auth(struct session *s, const char *arg)
{
	struct session_auth *a;
	enum sasl_mech m = SASL_NONE;
	const char *initial = NULL;
	size_t n;

	if (refused(s, &m, &initial, arg))
		return;
	if (!(a = calloc(1, sizeof *a))) {
		session_reply(s, R_AUTH_TEMP, NULL);
		return;
	}
	a->mech = m;
	s->auth = a;
	if (session_auth_blocked(s)) {
		auth_log(s, "blocked", "auth_fail_limit reached", NULL, R_AUTH_BLOCKED);
		auth_end(s);
		session_close_with(s, R_AUTH_BLOCKED);
		return;
	}
	if (initial && sasl_login_name(m, initial, strlen(initial), a->user, sizeof a->user) < 0) {
		unreadable(s);
		return;
	}
	n = strlen(arg) + 8;
	if (!(a->cmd = malloc(n))) {
		tempfail(s, "out of memory");
		return;
	}
	snprintf(a->cmd, n, "AUTH %s%s%s", sasl_mech_name(m), initial ? " " : "", initial ? initial : "");
	if (!(a->be = backend_open_list(s->srv->backends, s->cfg, config_submission_backend(s->cfg), ready_cb, s))) {
		tempfail(s, "out of memory");
		return;
	}
	session_busy(s, 1);
}

/* The client's answer to a 334. Returns 0 when more input is needed. */
int session_auth_step(struct session *s)
{
	struct session_auth *a = s->auth;
	char line[MOAT_AUTH_LINE_MAX + 1];
	size_t len;
	int r;

	switch (line_read(&s->reader, bufferevent_get_input(s->bev), line, &len)) {
	case LINE_MORE:
		return 0;
	case LINE_SKIPPED:
		return 1;
	case LINE_TOO_LONG: /* RFC 4954 4 */
		event_del(s->deadline);
		auth_log(s, "failure", "answer line too long", NULL, R_AUTH_TOO_LONG);
		auth_end(s);
		session_proto_error(s, R_AUTH_TOO_LONG, NULL);
		return 1;
	case LINE_OK:
		break;
	}
	event_del(s->deadline); /* the backend's turn */
	if (len == 1 && line[0] == '*')
		a->cancelled = 1;
	else if (memchr(line, '\0', len) ||
	         (!a->user[0] && sasl_login_name(a->mech, line, len, a->user, sizeof a->user) < 0))
		a->unreadable = 1; /* the backend gets "*" instead: its exchange ends, the client hears 501 */
	s->state = S_CMD;
	s->reader.max = MOAT_CMD_LINE_MAX;
	r = backend_command(a->be, a->cancelled || a->unreadable ? "*" : line, reply_cb, s);
	explicit_bzero(line, len);
	if (r < 0) {
		tempfail(s, "submission_backend connection lost");
		return 1;
	}
	session_busy(s, 1);
	return 1;
}

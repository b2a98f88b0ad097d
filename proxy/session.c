/* session.c - the client side: SMTP commands, limits, the verdicts (DATA: session_data.c).
 *
 * Per command: check syntax -> run the checks (asynchronous) -> proceed with
 * the backend (asynchronous) -> reply. While a step is outstanding the
 * session is "busy": reading from the client pauses and pipelined commands
 * wait in the input buffer, so replies always go out in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "checks/rdns.h"
#include "proxy/backend.h"
#include "proxy/relay.h"
#include "proxy/bevpush.h"
#include "proxy/decision.h"
#include "proxy/conntable.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/linereader.h"
#include "proxy/lib/log.h"
#include "proxy/recorder.h"
#include "proxy/refused.h"
#include "proxy/lib/replies.h"
#include "rules/rules.h"
#include "proxy/server.h"
#include "proxy/session.h"

static void rcpt_backend_step(struct session *s);

/* ---- small helpers ---------------------------------------------------- */

/* What the backend last announced (any connection of this worker; none
 * until one answered): what moat may offer and accept from clients. */
static const struct ehlo_caps *backend_known(const struct session *s)
{
	static const struct ehlo_caps none;
	const struct ehlo_caps *c = backend_pool_caps(s->srv->backends);

	return c ? c : &none;
}

const char *session_helo(const struct session *s)
{
	return s->helo ? s->helo : "";
}

/* Write what the replies left, now (under TLS: one record for them all). */
static void session_flush(struct session *s)
{
	if (s->tls_out)
		tls_push(s->bev, s->tls_out);
	else
		bev_push(s->bev);
}

void session_send(struct session *s, const char *text, size_t len)
{
	if (s->state == S_CLOSING)
		return;
	if (s->tls_out)
		evbuffer_add(s->tls_out, text, len);
	else
		bufferevent_write(s->bev, text, len);
	/* Inside session_process, replies to pipelined commands go out
	 * together at its end. */
	if (!s->processing)
		session_flush(s);
}

void session_reply(struct session *s, enum reply_id id, const char *arg)
{
	char buf[1024];
	int n = reply_format(buf, sizeof buf, id, s->cfg->hostname, arg);

	session_send(s, buf, (size_t)n);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg);

static void session_free(struct session *s)
{
	struct jline j;

	/* no transaction open on it: another session may use it */
	relay_free(s->relay, s->tx != NULL);
	if (s->tx) {
		recorder_end(s->rec, s->ssl != NULL, s->auth_user);
		session_limits_txn_end(s);
		message_free(&s->tx->msg);
		free(s->tx);
	}
	session_auth_free(s);
	checks_free(s->chk);
	recorder_free(s->rec); /* after the checks: their lookups are cancelled */
	free(s->early_v);
	free(s->auth_user);
	if (s->ssl && s->bev)
		session_tls_close(s);
	if (s->bev)
		bufferevent_free(s->bev);
	if (s->tls_out)
		evbuffer_free(s->tls_out);
	if (s->reaper)
		event_free(s->reaper);
	if (s->greet_ev)
		event_free(s->greet_ev);
	if (s->deadline)
		event_free(s->deadline);
	if (s->tls_pending)
		SSL_free(s->tls_pending);
	server_session_gone(s->srv, s);
	/* logged once the connection is closed and given back (the limits) */
	jl_begin(&j, "info", "session_end");
	jl_str(&j, "session", s->id);
	jl_str(&j, "client_ip", s->peer_ip);
	jl_str(&j, "helo", session_helo(s));
	jl_int(&j, "messages", s->ntx);
	jl_int(&j, "rejected", s->nrejected);
	jl_int(&j, "errors", s->errors);
	jl_emit(&j);
	config_unref(s->cfg);
	free(s->helo);
	free(s);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	session_free(arg);
}

/* End the session once the output (the last reply) is flushed. Never frees
 * synchronously: callers up the stack may still hold s. */
void session_close(struct session *s)
{
	struct timeval now = {0, 0};

	if (s->state == S_CLOSING)
		return;
	s->state = S_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	session_flush(s);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		event_add(s->reaper, &now);
}

/* A refusal at connect is queued: the client lingers in refused.c (its
 * commands answered 503 until QUIT), so that commands it already sent meet
 * no reset; the session ends here and no longer counts against the limits.
 * Past the cap of lingering connections, an ordinary close. */
void session_linger(struct session *s)
{
	struct timeval now = {0, 0};

	if (s->state == S_CLOSING)
		return;
	session_flush(s); /* the refusal, into bev's output under TLS */
	if (refused_linger(s->srv, s->bev, s->cfg->command_timeout) < 0) {
		session_close(s);
		return;
	}
	s->bev = NULL; /* refused.c's now, maybe freed already */
	s->state = S_CLOSING;
	event_add(s->reaper, &now);
}

void session_close_with(struct session *s, enum reply_id id)
{
	session_reply(s, id, NULL);
	session_close(s);
}

void session_read_timeout(struct session *s, int seconds)
{
	struct timeval tv = {seconds, 0};

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* A deadline the client must meet, however it trickles its bytes: a
 * command line within command_timeout of the wait for it, a message
 * MOAT_DATA_PROGRESS bytes per data_timeout, the PROXY header within
 * MOAT_PROXY_TIMEOUT. The inactivity timeouts alone would let a client
 * that sends a byte now and then hold a session forever (slowloris). */
void session_deadline(struct session *s, int seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(s->deadline, &tv);
}

/* While a step is outstanding the client waits for us: no read timeout.
 * Reading goes on (bounded by the input watermark), so a client that
 * hangs up ends the session and cancels what it was waiting for. */
void session_busy(struct session *s, int busy)
{
	struct timeval wr = {s->cfg->command_timeout, 0};

	s->busy = busy;
	if (s->state == S_CLOSING)
		return;
	if (busy)
		event_del(s->deadline); /* we are the slow one now */
	if (busy)
		bufferevent_set_timeouts(s->bev, NULL, &wr);
	else
		session_read_timeout(s, s->state == S_DATA ? s->cfg->data_timeout : s->cfg->command_timeout);
}

/* A protocol error: count it; too many end the session (Postfix: hard_error_limit). */
enum reply_id session_proto_error(struct session *s, enum reply_id id, const char *arg)
{
	s->errors++;
	if (s->errors >= MOAT_ERROR_LIMIT) {
		session_close_with(s, R_TOO_MANY_ERRORS);
		return R_TOO_MANY_ERRORS;
	}
	session_reply(s, id, arg);
	return id;
}

/* A MAIL or RCPT refused for what it says (syntax, a parameter, UTF-8): a
 * protocol error, and a decision line with the address as written. */
static void refuse_arg(struct session *s, enum rule_stage stage, enum reply_id id, const char *param,
                       const char *arg, const char *why)
{
	char addr[MOAT_PATH_MAX + 1], reason[128];
	struct decision d = {.stage = stage, .reason = reason};

	smtp_path_text(arg, stage == STAGE_RCPT ? PARSE_RCPT : 0, addr, sizeof addr);
	snprintf(reason, sizeof reason, "%s%s%.40s", why, param ? ": " : "", param ? param : "");
	if (stage == STAGE_MAIL)
		d.mail_from = addr;
	decision_set_reply(&d, session_proto_error(s, id, param));
	session_log_line(s, &d, stage == STAGE_RCPT ? addr : NULL);
}

void session_txn_free(struct session *s)
{
	if (!s->tx)
		return;
	recorder_end(s->rec, s->ssl != NULL, s->auth_user); /* the spool is still there */
	session_limits_txn_end(s);
	checks_txn_end(s->chk);
	if (s->relay)
		relay_txn_end(s->relay);
	message_free(&s->tx->msg);
	free(s->tx);
	s->tx = NULL;
}

/* A step finished: take the next command. */
void session_resume(struct session *s)
{
	session_busy(s, 0);
	session_process(s);
}

/* ---- HELO / EHLO ------------------------------------------------------ */

static void do_helo(struct session *s, const char *arg, int esmtp)
{
	const struct ehlo_caps *bc;
	struct verdict v;
	char buf[512];
	size_t n;

	if (!*arg) {
		session_proto_error(s, esmtp ? R_EHLO_SYNTAX : R_HELO_SYNTAX, NULL);
		return;
	}
	n = strcspn(arg, " \t");
	if (n > MOAT_HELO_MAX)
		n = MOAT_HELO_MAX;
	free(s->helo);
	if (!(s->helo = strndup(arg, n))) {
		session_reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	session_txn_free(s); /* RFC 5321 4.1.4: EHLO resets the transaction */
	checks_helo(s->chk, s->helo, &v);
	recorder_helo(s->rec, s->helo);
	recorder_verdict(s->rec, REC_HELO, &v);
	if (v.code && !s->cfg->delay_reject) {
		session_verdict(s, STAGE_HELO, &v, NULL);
		return;
	}
	if (s->early_v && s->early_stage == STAGE_HELO) {
		free(s->early_v); /* a new HELO is judged anew */
		s->early_v = NULL;
	}
	if (v.code && !s->early_v && (s->early_v = malloc(sizeof *s->early_v))) {
		*s->early_v = v; /* delay_reject: it answers each RCPT */
		s->early_stage = STAGE_HELO;
	}
	s->helo_seen = 1;
	s->esmtp = esmtp;
	if (!esmtp) {
		session_reply(s, R_HELO_OK, NULL);
		return;
	}
	bc = backend_known(s);
	n = (size_t)reply_ehlo(buf, sizeof buf, s->cfg->hostname, (unsigned long)s->cfg->max_message_size,
	                       (bc->smtputf8 ? EHLO_SMTPUTF8 : 0) | (bc->dsn ? EHLO_DSN : 0) |
	                       (s->cfg->tls && !s->ssl ? EHLO_STARTTLS : 0) |
	                       (s->listener != LISTENER_SMTP && s->ssl ? EHLO_AUTH : 0));
	session_send(s, buf, n);
}

/* ---- MAIL ------------------------------------------------------------- */

/* The reply to a MAIL (is_rcpt 0) or RCPT argument that does not parse. */
static enum reply_id path_error(enum path_err e, int is_rcpt)
{
	switch (e) {
	case PATH_ERR_SYNTAX:
	case PATH_ERR_PARAM:
		return is_rcpt ? R_RCPT_SYNTAX : R_MAIL_SYNTAX;
	case PATH_ERR_IDNA:
		return is_rcpt ? R_BAD_RCPT_IDN : R_BAD_SENDER_IDN;
	case PATH_ERR_NOMEM:
		return R_LOCAL_ERROR;
	default:
		return is_rcpt ? R_BAD_RCPT : R_BAD_SENDER;
	}
}

/* The reason of a decision line, by what smtp_parse_mail_rcpt found. */
static const char *const path_why[] = {
	[PATH_OK] = "",
	[PATH_ERR_SYNTAX] = "bad syntax",
	[PATH_ERR_ADDRESS] = "bad address syntax",
	[PATH_ERR_TOOLONG] = "address too long",
	[PATH_ERR_PARAM] = "bad parameter syntax",
	[PATH_ERR_IDNA] = "invalid internationalized domain name",
	[PATH_ERR_NOMEM] = "out of memory",
};

/* Check MAIL parameters; sets *id to a reply on error. 0 ok, -1 error. */
static int mail_params_ok(struct session *s, const struct smtp_params *ps, struct txn *tx,
                          enum reply_id *id, const char **bad)
{
	int i;

	for (i = 0; i < ps->n; i++) {
		const struct smtp_param *p = &ps->p[i];
		unsigned long size;

		*bad = p->key;
		if (strcmp(p->key, "SIZE") == 0) {
			size_t nd = strspn(p->value, "0123456789");

			/* RFC 1870: up to 20 digits; a number that overflows is just too big. */
			if (!p->has_value || nd == 0 || nd > 20 || p->value[nd] != '\0') {
				*id = R_BAD_PARAM_VALUE;
				return -1;
			}
			if (parse_ulong(p->value, ~0UL, &size) < 0 || size > s->cfg->max_message_size) {
				*id = R_SIZE;
				return -1;
			}
		} else if (strcmp(p->key, "BODY") == 0) {
			if (!p->has_value || (strcasecmp(p->value, "7BIT") && strcasecmp(p->value, "8BITMIME"))) {
				*id = R_BAD_PARAM_VALUE;
				return -1;
			}
		} else if (strcmp(p->key, "SMTPUTF8") == 0 && backend_known(s)->smtputf8 && !p->has_value) {
			tx->utf8 = 1;
		} else if ((strcmp(p->key, "RET") == 0 || strcmp(p->key, "ENVID") == 0) &&
		           backend_known(s)->dsn && p->has_value) {
			continue;
		} else {
			*id = R_PARAM;
			return -1;
		}
	}
	return 0;
}

/* Send a check's refusal and log it. */
void session_verdict(struct session *s, enum rule_stage stage, const struct verdict *v, const char *rcpt)
{
	char buf[MOAT_REPLY_LINE_MAX + 1];
	int n = snprintf(buf, sizeof buf - 2, "%d %s %s", v->code, v->esc, v->text);

	/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF;
	 * texts from outside (an SPF explanation) are cut to fit. */
	if (n < 0 || n > MOAT_REPLY_LINE_MAX - 2)
		n = MOAT_REPLY_LINE_MAX - 2;
	buf[n++] = '\r';
	buf[n++] = '\n';
	session_send(s, buf, (size_t)n);
	{
		struct decision d = {.stage = stage, .code = v->code, .esc = v->esc, .reason = v->reason,
		                     .rule_file = v->rule_file, .rule_line = v->rule_line, .rule_id = v->rule_id};

		session_log_line(s, &d, rcpt);
	}
}

static void rcpt_after_mail_checks(struct session *s);

/* The sender checks are in. Without delay_reject they answer MAIL now;
 * with it, MAIL got its 250 already and the verdict answers each RCPT. */
static void mail_decided(struct session *s, const struct verdict *v)
{
	s->tx->mail_v = *v;
	s->tx->mail_checked = 1;
	if (s->cfg->delay_reject) {
		if (s->tx->rcpt_waiting)
			rcpt_after_mail_checks(s);
		return;
	}
	if (v->code) {
		session_verdict(s, STAGE_MAIL, v, NULL);
		session_txn_free(s);
	} else {
		session_reply(s, R_MAIL_OK, NULL);
	}
	session_resume(s);
}

/* The sender checks are in: the message is counted against the limits
 * the mail rules named, then decided. */
static void mail_verdict(void *arg, const struct verdict *v)
{
	struct session *s = arg;

	/* the rules' verdict: what the limits make of it rests on shared
	 * state no record holds (moat replay judges the rules) */
	recorder_verdict(s->rec, REC_MAIL, v);
	recorder_checks(s->rec, REC_MAIL, s->chk);
	s->tx->mail_rules_ok = !s->early_v && !v->code;
	if (!s->early_v && s->cfg->delay_reject)
		session_limits_mail_later(s, v); /* counted with the first RCPT's calls */
	else if (!s->early_v && session_limits_mail(s, v, mail_decided))
		return;
	mail_decided(s, v);
}

static void do_mail(struct session *s, const char *arg)
{
	struct smtp_params ps;
	struct txn *tx;
	enum reply_id id;
	const char *bad = NULL;
	enum path_err e;

	if (!s->helo_seen) {
		session_proto_error(s, R_NEED_HELO, NULL);
		return;
	}
	if (s->tx) {
		session_proto_error(s, R_NESTED_MAIL, NULL);
		return;
	}
	tx = calloc(1, sizeof *tx);
	if (!tx) {
		session_reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	e = smtp_parse_mail_rcpt(arg, s->cfg->strict_envelopes ? PARSE_STRICT : 0, &tx->from, &ps);
	if (e != PATH_OK) {
		free(tx);
		refuse_arg(s, STAGE_MAIL, path_error(e, 0), NULL, arg, path_why[e]);
		return;
	}
	if (mail_params_ok(s, &ps, tx, &id, &bad) < 0) {
		if (id == R_SIZE) {
			s->tx = tx; /* for the log line */
			session_refuse(s, STAGE_MAIL, R_SIZE, "SIZE parameter exceeds message size limit", NULL);
			s->tx = NULL;
			free(tx);
			return;
		}
		free(tx);
		refuse_arg(s, STAGE_MAIL, id, bad, arg, id == R_PARAM ? "unsupported parameter" : "bad parameter value");
		return;
	}
	if ((tx->from.flags & PATH_UTF8) && !tx->utf8) {
		free(tx);
		refuse_arg(s, STAGE_MAIL, R_SMTPUTF8_NEEDED, NULL, arg, "non-ASCII address without SMTPUTF8");
		return;
	}
	/* Keep the parameters as sent, for the backend (validated above). */
	snprintf(tx->from_params, sizeof tx->from_params, "%s", arg + ps.at + strspn(arg + ps.at, " \t"));
	s->tx = tx;
	recorder_mail(s->rec, tx->from.null ? "" : tx->from.mailbox);
	if (s->cfg->delay_reject) {
		/* Like Postfix's smtpd_delay_reject: the sender's verdict waits for RCPT. */
		session_reply(s, R_MAIL_OK, NULL);
		if (s->early_v) {
			/* the client or its HELO is refused already: no lookups for its sender */
			tx->mail_checked = 1;
			return;
		}
	} else {
		session_busy(s, 1);
	}
	checks_mail(s->chk, &tx->from, mail_verdict, s);
}

/* ---- RCPT ------------------------------------------------------------- */

/* The backend's reply to the client's RCPT. */
static void rcpt_result(struct session *s, const struct smtp_reply *r)
{
	struct txn *tx = s->tx;

	if (r->code / 100 == 2) {
		size_t used = strlen(tx->rcpts);

		tx->nrcpt++;
		checks_rcpt_accepted(s->chk);
		snprintf(tx->rcpts + used, sizeof tx->rcpts - used, "%s%s", used ? "," : "", tx->rcpt_log);
	} else {
		session_limits_rcpt_refused(s);
	}
	session_relay_reply(s, STAGE_RCPT, r, tx->rcpt_log);
}

/* The backend's answer to a RCPT, or moat's when it could not be asked. */
static void rcpt_relayed(void *arg, const struct relay_outcome *o)
{
	struct session *s = arg;

	if (o->reply) {
		rcpt_result(s, o->reply);
	} else {
		session_limits_rcpt_refused(s);
		session_refuse(s, STAGE_RCPT, o->id, o->why, s->tx->rcpt_log);
	}
	session_resume(s);
}

/* The RCPT passed moat's checks: pass it on, with who the client is. */
static void rcpt_backend_step(struct session *s)
{
	const struct rdns_result *rd = checks_result(s->chk, &check_rdns);
	struct relay_client cl = {
		.ip = s->peer_ip, .port = sockaddr_port((struct sockaddr *)&s->peer), .helo = session_helo(s),
		.esmtp = s->esmtp, .name = rd && rd->res == RDNS_OK ? rd->name : NULL,
		/* not looked up (the backend took no name when the session began): unknown for now */
		.name_status = !rd || rd->res == RDNS_TEMPFAIL ? CLIENT_NAME_TEMP
		             : rd->res == RDNS_OK ? CLIENT_NAME_OK : CLIENT_NAME_NONE,
		.login = s->auth_user, /* XCLIENT LOGIN */
	};

	if (!s->relay && !(s->relay = relay_new(s->srv->backends, s->cfg))) {
		session_refuse(s, STAGE_RCPT, R_BACKEND_DOWN, "out of memory", s->tx->rcpt_log);
		session_resume(s);
		return;
	}
	relay_rcpt(s->relay, &cl, &s->tx->from, s->tx->from_params, s->tx->rcpt_line, rcpt_relayed, s);
}

/* Greylisting and the recipients limits said their word. */
static void rcpt_limits_done(struct session *s, const struct verdict *v)
{
	if (v->code) {
		session_verdict(s, STAGE_RCPT, v, s->tx->rcpt_log);
		session_resume(s);
		return;
	}
	rcpt_backend_step(s);
}

static void rcpt_verdict(struct session *s, const struct verdict *v)
{
	if (!v->code && v->rule_file) {
		s->tx->rule_file = v->rule_file; /* an accept rule: named when the message is logged */
		s->tx->rule_line = v->rule_line;
		s->tx->rule_id = v->rule_id;
	}
	if (session_limits_rcpt(s, v, rcpt_limits_done)) /* with the MAIL's counts even if v refuses */
		return;
	rcpt_limits_done(s, v);
}

/* With delay_reject, a refused client, HELO or sender refuses every RCPT. */
static void rcpt_after_mail_checks(struct session *s)
{
	struct verdict v;

	s->tx->rcpt_waiting = 0;
	if (s->early_v || s->tx->mail_v.code) {
		if (s->rec && s->tx->mail_rules_ok) { /* a limit refused, not the rules: record their word */
			checks_rcpt(s->chk, &s->tx->rcpt_path, &v);
			recorder_rcpt(s->rec, s->tx->rcpt_path.mailbox, &v);
		} else {
			recorder_rcpt(s->rec, s->tx->rcpt_path.mailbox, NULL);
		}
		session_verdict(s, STAGE_RCPT, s->early_v ? s->early_v : &s->tx->mail_v, s->tx->rcpt_log);
		session_resume(s);
		return;
	}
	checks_rcpt(s->chk, &s->tx->rcpt_path, &v);
	recorder_rcpt(s->rec, s->tx->rcpt_path.mailbox, &v);
	rcpt_verdict(s, &v);
}

static void do_rcpt(struct session *s, const char *arg)
{
	struct smtp_path path;
	struct smtp_params ps;
	enum path_err e;
	char *line;
	int i, n;

	if (!s->tx) {
		session_proto_error(s, R_NEED_MAIL, NULL);
		return;
	}
	e = smtp_parse_mail_rcpt(arg, PARSE_RCPT | (s->cfg->strict_envelopes ? PARSE_STRICT : 0), &path, &ps);
	if (e != PATH_OK) {
		refuse_arg(s, STAGE_RCPT, path_error(e, 1), NULL, arg, path_why[e]);
		return;
	}
	for (i = 0; i < ps.n; i++) {
		const char *k = ps.p[i].key;

		if (!backend_known(s)->dsn || (strcmp(k, "NOTIFY") && strcmp(k, "ORCPT")) || !ps.p[i].has_value) {
			refuse_arg(s, STAGE_RCPT, R_PARAM, k, arg, "unsupported parameter");
			return;
		}
	}
	if ((path.flags & PATH_UTF8) && !s->tx->utf8) {
		refuse_arg(s, STAGE_RCPT, R_SMTPUTF8_NEEDED, NULL, arg, "non-ASCII address without SMTPUTF8");
		return;
	}
	line = s->tx->rcpt_line;
	snprintf(s->tx->rcpt_log, sizeof s->tx->rcpt_log, "%s", path.mailbox);
	if (s->tx->nrcpt >= s->cfg->max_recipients) {
		session_refuse(s, STAGE_RCPT, R_TOO_MANY_RCPT, "too many recipients", path.mailbox);
		return;
	}
	s->tx->nrcpt_tried++;
	/* The line for the backend: the path as parsed, parameters as sent. */
	n = snprintf(line, MOAT_CMD_LINE_MAX + 8, "RCPT TO:<%s>", path.mailbox);
	for (i = 0; i < ps.n && n < MOAT_CMD_LINE_MAX; i++)
		n += snprintf(line + n, (size_t)(MOAT_CMD_LINE_MAX + 8 - n), " %s=%s", ps.p[i].key,
		              ps.p[i].value);
	session_busy(s, 1);
	s->tx->rcpt_path = path;
	if (!s->tx->mail_checked) {
		s->tx->rcpt_waiting = 1; /* delay_reject: mail_verdict continues */
		return;
	}
	rcpt_after_mail_checks(s);
}

/* ---- command dispatch ------------------------------------------------- */

/* What a submission client may say before STARTTLS (RFC 3207 4: the
 * others get 530, as Postfix's smtpd_tls_security_level = encrypt). */
static int before_tls_ok(enum smtp_verb v)
{
	return v == V_HELO || v == V_EHLO || v == V_STARTTLS || v == V_NOOP || v == V_RSET || v == V_QUIT ||
	       v == V_HELP || v == V_UNKNOWN;
}

static void dispatch(struct session *s, const char *line)
{
	struct smtp_cmd c;

	if (smtp_cmd_parse(line, &c) < 0) {
		session_proto_error(s, R_BAD_CHARS, NULL);
		return;
	}
	if (s->listener == LISTENER_SUBMISSION && !s->ssl && !before_tls_ok(c.verb)) {
		session_proto_error(s, R_NEED_STARTTLS, NULL);
		return;
	}
	switch (c.verb) {
	case V_HELO: do_helo(s, c.arg, 0); break;
	case V_EHLO: do_helo(s, c.arg, 1); break;
	case V_MAIL: do_mail(s, c.arg); break;
	case V_RCPT: do_rcpt(s, c.arg); break;
	case V_DATA: session_data_begin(s, c.arg); break;
	case V_RSET:
		if (*c.arg) {
			session_proto_error(s, R_NO_ARGS, "RSET");
			break;
		}
		session_txn_free(s);
		session_reply(s, R_DONE, NULL);
		break;
	case V_NOOP: session_reply(s, R_DONE, NULL); break;
	case V_QUIT: session_close_with(s, R_BYE); break;
	case V_VRFY:
		if (!*c.arg)
			session_proto_error(s, R_NO_ARGS, "VRFY");
		else
			session_reply(s, R_VRFY, NULL);
		break;
	case V_HELP: session_reply(s, R_HELP, NULL); break;
	case V_STARTTLS: session_starttls(s, c.arg); break;
	case V_AUTH: session_auth(s, c.arg); break;
	case V_UNKNOWN: session_proto_error(s, R_UNKNOWN_CMD, NULL); break;
	default: session_proto_error(s, R_NOT_IMPL, NULL); break;
	}
}

/* Read one command line. Returns 0 when more input is needed. */
static int command_step(struct session *s)
{
	char line[MOAT_CMD_LINE_MAX + 1];
	size_t len;

	switch (line_read(&s->reader, bufferevent_get_input(s->bev), line, &len)) {
	case LINE_MORE:
		return 0;
	case LINE_TOO_LONG:
		session_proto_error(s, R_LINE_TOO_LONG, NULL);
		return 1;
	case LINE_SKIPPED:
		return 1;
	case LINE_OK:
		break;
	}
	event_del(s->deadline); /* the next command gets its own */
	if (memchr(line, '\0', len)) {
		session_proto_error(s, R_BAD_CHARS, NULL);
		return 1;
	}
	dispatch(s, line);
	return 1;
}

/* Shutting down, no transaction open: the next command must come soon. */
static int draining(const struct session *s)
{
	return s->srv->stopping && !s->tx;
}

static int drain_idle(const struct session *s)
{
	return s->cfg->command_timeout < MOAT_DRAIN_IDLE ? s->cfg->command_timeout : MOAT_DRAIN_IDLE;
}

/* The client does not take its replies: stop reading its commands (its
 * input then fills to MOAT_CLIENT_INPUT_MAX and the socket is not read)
 * until the output has drained (write_cb), so what we hold is bounded. */
static int backlogged(const struct session *s)
{
	size_t held = evbuffer_get_length(bufferevent_get_output(s->bev));

	if (s->tls_out)
		held += evbuffer_get_length(s->tls_out);
	return held > MOAT_CLIENT_OUTPUT_MAX;
}

void session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	/* A step that finishes synchronously calls session_resume() from inside this
	 * loop: the loop itself goes on, so pipelined commands never recurse. */
	if (s->processing)
		return;
	s->processing = 1;
again:
	while (!s->busy && s->state != S_CLOSING && evbuffer_get_length(in) > 0 && !backlogged(s)) {
		if (s->state == S_PROXY) {
			if (!session_proxy_step(s))
				break;
		} else if (s->state == S_GREET) {
			session_pregreet(s);
		} else if (s->state == S_DATA) {
			session_data_step(s);
		} else if (s->state == S_AUTH) {
			if (!session_auth_step(s))
				break;
		} else if (s->state != S_CMD || !command_step(s)) {
			break; /* S_TLS_*: nothing is read */
		}
	}
	if (!s->bev) { /* handed to refused.c */
		s->processing = 0;
		return;
	}
	if (backlogged(s)) {
		session_flush(s);
		/* all taken at once: read on; else write_cb resumes once it is */
		if (!backlogged(s) && evbuffer_get_length(in) > 0)
			goto again;
	}
	s->processing = 0;
	session_flush(s);
	if (s->state == S_TLS_WAIT) {
		session_tls_flushed(s);
		return;
	}
	if (s->ssl)
		session_tls_pending(s);
	/* Waiting for a command: its deadline runs from now (unless it already does). */
	if (!s->busy && (s->state == S_CMD || s->state == S_AUTH) && !evtimer_pending(s->deadline, NULL))
		session_deadline(s, draining(s) ? drain_idle(s) : s->cfg->command_timeout);
	/* All the client sent is answered: after its EOF, that is the end. */
	if (s->eof && !s->busy && s->state == S_CMD && !backlogged(s))
		session_close(s);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct timeval now = {0, 0};

	if (s->state == S_CLOSING)
		event_add(s->reaper, &now);
	else if (s->state == S_TLS_WAIT)
		session_tls_flushed(s);
	else {
		bev_pushed(bev);
		/* the output drained: commands held back by backlogged() */
		if (!s->busy && (evbuffer_get_length(bufferevent_get_input(bev)) > 0 || s->eof))
			session_process(s);
	}
}

/* The client was too slow: a deadline passed, or nothing moved in either
 * direction within the timeout (writing: it does not read our replies). */
static void timed_out(struct session *s, int writing)
{
	if (s->state == S_TLS_WAIT || s->state == S_TLS_HANDSHAKE) {
		session_tls_timeout(s);
		return;
	}
	session_note(s, "warning", "timeout", "%s not complete in time, closing",
	             writing ? "reading our reply" : s->state == S_PROXY ? "PROXY header"
	                                         : s->state == S_DATA ? "message" : "command");
	if (s->state == S_PROXY) { /* not an SMTP client yet: no reply */
		session_close(s);
		return;
	}
	session_close_with(s, R_TIMEOUT);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	struct timeval now = {0, 0};

	if (s->state == S_TLS_HANDSHAKE) {
		session_tls_event(s, what);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->state != S_CLOSING) {
		timed_out(s, what & BEV_EVENT_WRITING);
		return;
	}
	/* EOF: the client sends no more, but may still read (a half close
	 * after a pipelined QUIT). What it sent is still answered, in order;
	 * then the session ends. Not inside a message, though: that one is
	 * incomplete and dropped. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && s->state == S_CMD) {
		s->eof = 1;
		session_process(s);
		return;
	}
	/* Error, or EOF inside a message: the client is gone. A message not yet
	 * at its end of data is dropped; nothing was sent to the backend for it. */
	if ((what & BEV_EVENT_ERROR) && s->ssl)
		session_tls_error(s);
	if (s->state == S_DATA && s->tx) {
		struct decision d = {.stage = STAGE_DATA, .reason = "client disconnected during DATA"};

		session_log_line(s, &d, NULL);
	}
	s->state = S_CLOSING;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	event_add(s->reaper, &now);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->state == S_CLOSING || s->busy)
		return;
	if (s->state == S_CMD && draining(s)) { /* quiet while moat shuts down */
		session_close_with(s, R_SHUTDOWN);
		return;
	}
	timed_out(s, 0);
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: a bijection (every step is invertible), so
	 * distinct inputs give distinct ids, which look random */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Unique within a run by construction: each worker process (a restarted
 * one too: a new incarnation) numbers its sessions in a range of its own,
 * 2^MOAT_ID_SEQ_BITS wide; the random salt, drawn once per run, makes runs
 * differ (two runs share an id with probability about n^2 / 2^64). */
static uint64_t session_id(const struct server *srv, uint64_t seq)
{
	return mix64(srv->id_salt + (srv->incarnation << MOAT_ID_SEQ_BITS) + seq);
}

void session_bev_attach(struct session *s, struct bufferevent *bev)
{
	s->bev = bev;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, MOAT_CLIENT_INPUT_MAX);
	bufferevent_enable(bev, EV_READ); /* writes: bev_push */
}

void session_start(struct server *srv, int fd, const struct sockaddr *sa, socklen_t salen,
                   enum listener_kind listener)
{
	struct session *s = calloc(1, sizeof *s);

	if (!s || salen > sizeof s->peer) { /* listeners are IPv4/IPv6 only */
		free(s);
		evutil_closesocket(fd);
		conntable_give(srv->conns, srv->worker);
		return;
	}
	s->srv = srv;
	s->listener = listener;
	s->cfg = config_ref(srv->cfg);
	s->reader.max = MOAT_CMD_LINE_MAX;
	s->seq = srv->next_session++;
	snprintf(s->id, sizeof s->id, "%016llx", (unsigned long long)session_id(srv, s->seq));
	memcpy(&s->peer, sa, salen);
	s->peerlen = salen;
	sockaddr_ntop(sa, s->peer_ip, sizeof s->peer_ip);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->reaper = evtimer_new(srv->base, reap_cb, s);
	s->deadline = evtimer_new(srv->base, deadline_cb, s);
	/* linked first so that session_free can always unlink */
	server_session_add(srv, s);
	if (!s->bev || !s->reaper || !s->deadline) {
		if (!s->bev)
			evutil_closesocket(fd);
		session_free(s);
		return;
	}
	session_bev_attach(s, s->bev);
	sock_nodelay(fd);
	session_connect(s);
}

void session_abort(struct session *s)
{
	session_free(s);
}

/* Not a 421 at once: the client may be between two commands of the
 * transaction it came for (a restart without downtime must not refuse it).
 * Waiting for a command outside a transaction, it has MOAT_DRAIN_IDLE
 * seconds to send one; the others get as long when they next wait. */
void session_shutdown(struct session *s)
{
	if (s->state == S_CMD && !s->busy && draining(s))
		session_deadline(s, drain_idle(s));
}

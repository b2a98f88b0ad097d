/* session_log.c - a session's decision lines: who, what the checks found,
 * the message's size; decision.c builds the line. Its other lines (timeouts,
 * removed fields) carry its id too. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proxy/decision.h"
#include "proxy/lib/log.h"
#include "proxy/relay.h"
#include "proxy/server.h"
#include "proxy/session.h"

struct log_ctx {
	const struct session *s;
	enum rule_stage stage;
};

/* What a session adds to its decision lines: the checks' results, and at
 * the data stage what finds the message in the backend's log and the
 * mailbox (its queue id there, Message-ID, Subject as written), its size
 * and bare line ends. */
static void session_fields(struct jline *j, void *arg)
{
	const struct log_ctx *c = arg;
	const struct session *s = c->s;
	int resumed;
	const char *btls = relay_backend_tls(s->relay, &resumed);

	checks_log(s->chk, j);
	/* a line where the backend spoke: how moat reached it */
	if (btls && (c->stage == STAGE_RCPT || c->stage == STAGE_DATA)) {
		jl_str(j, "backend_tls", btls);
		if (resumed)
			jl_bool(j, "backend_tls_resumed", 1);
	}
	if (s->tx && c->stage == STAGE_DATA) {
		const struct data_parser *dp = &s->tx->msg.dp;

		jl_str(j, "queue_id", s->tx->queue_id);
		jl_strn(j, "message_id", s->tx->msg.message_id, MOAT_LOG_MSGID_MAX);
		jl_strn(j, "subject", s->tx->msg.subject, MOAT_LOG_SUBJECT_MAX);
		jl_int(j, "size", (long long)s->tx->msg.size);
		jl_int(j, "nrcpt", s->tx->nrcpt);
		if (dp->bare_lf || dp->bare_cr) {
			jl_int(j, "bare_lf", (long long)dp->bare_lf);
			jl_int(j, "bare_cr", (long long)dp->bare_cr);
		}
	}
}

/* A decision line of this session (d: stage, action, code, reason, rule;
 * rcpt NULL: the transaction's accepted recipients). */
void session_log_line(struct session *s, struct decision *d, const char *rcpt)
{
	struct log_ctx c = {s, d->stage};
	char grey[512];

	d->session = s->id;
	d->client_ip = s->peer_ip;
	d->helo = session_helo(s);
	if (!d->mail_from)
		d->mail_from = s->tx ? (s->tx->from.null ? "<>" : s->tx->from.mailbox) : "";
	d->rcpt = rcpt ? rcpt : s->tx ? s->tx->rcpts : "";
	d->tls_version = s->tls_version;
	d->tls_cipher = s->tls_cipher;
	d->listener = rules_listener_name(s->listener);
	d->auth_user = s->auth_user;
	if (d->stage == STAGE_DATA && !d->greylist && s->tx) {
		checks_greylist_text(s->chk, grey, sizeof grey); /* per accepted recipient */
		d->greylist = grey;
	}
	decision_log(d, session_fields, &c);
	if ((!d->event || !strcmp(d->event, "decision")) && !d->action && d->code / 100 != 2)
		s->nrejected++;
}

/* Reply with one of moat's own replies and log it as the decision. */
void session_refuse(struct session *s, enum rule_stage stage, enum reply_id id, const char *why,
                    const char *rcpt)
{
	struct decision d = {.stage = stage, .reason = why};

	session_reply(s, id, NULL);
	decision_set_reply(&d, id);
	session_log_line(s, &d, rcpt);
}

/* A rule that matched without deciding: tag, log, or anything in monitor
 * mode ("would-reject", logged like the rejection it would have been). */
void session_rule_hit(void *arg, enum rule_stage stage, const struct rule_verdict *h, const char *rcpt)
{
	struct session *s = arg;
	char action[32];
	struct decision d = {.stage = stage, .rule_file = h->file, .rule_line = h->line, .rule_id = h->id,
	                     .action = action};

	if (h->monitor) {
		snprintf(action, sizeof action, "would-%s", rules_action_name(h->action));
		if (h->action == ACTION_REJECT || h->action == ACTION_TEMPFAIL) {
			d.code = h->code;
			d.esc = h->esc;
		}
		d.reason = h->reason;
	} else {
		d.event = "rule";
		d.action = rules_action_name(h->action);
		d.reason = h->action == ACTION_TAG ? h->text : h->reason;
	}
	session_log_line(s, &d, rcpt);
}

/* Pass a backend reply to the client verbatim; a refusal is logged. */
void session_relay_reply(struct session *s, enum rule_stage stage, const struct smtp_reply *r,
                         const char *rcpt)
{
	char why[300], esc[16];
	struct decision d = {.stage = stage, .code = r->code, .esc = esc, .reason = why};

	session_send(s, r->text, r->len);
	if (r->code / 100 != 2 && r->code != 354) {
		snprintf(why, sizeof why, "backend: ");
		reply_first_line(r->text, why + 9, sizeof why - 9);
		decision_esc_of(r->text, esc, sizeof esc);
		session_log_line(s, &d, rcpt);
	}
}


/* A line about the session that is not a decision: its id and client as
 * fields, so that every line of a session is found by its id. */
void session_note(struct session *s, const char *level, const char *event, const char *fmt, ...)
{
	struct jline j;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	jl_begin(&j, level, event);
	jl_str(&j, "session", s->id);
	jl_str(&j, "client_ip", s->peer_ip);
	jl_strn(&j, "msg", msg, sizeof msg);
	jl_emit(&j);
}

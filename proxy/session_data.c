/* session_data.c - the DATA phase: the message in, its checks, its relay.
 *
 * The bytes go to the spool as they come (message.c); at the client's end of
 * data the data-stage checks run over the spool, then relay.c sends our
 * header fields and the message to the backend, whose final reply is the
 * client's. A refusal or a failure ends the transaction, never the session. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/decision.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/log.h"
#include "proxy/msghead.h"
#include "proxy/recorder.h"
#include "proxy/relay.h"
#include "proxy/session.h"
#include "proxy/spool.h"

/* A header field arrived: the checks may start the lookups they will make
 * (DMARC's policy records while the body still comes). */
static void field_arrived(void *arg, const char *head, size_t len, int truncated)
{
	struct session *s = arg;

	checks_header_field(s->chk, head, len, truncated);
}

void session_data_begin(struct session *s, const char *arg)
{
	if (!s->tx) {
		session_proto_error(s, R_NEED_MAIL, NULL);
		return;
	}
	if (s->tx->nrcpt == 0) {
		session_proto_error(s, s->tx->nrcpt_tried ? R_NO_VALID_RCPT : R_NEED_RCPT, NULL);
		return;
	}
	if (*arg) {
		session_proto_error(s, R_NO_ARGS, "DATA");
		return;
	}
	if (message_begin(&s->tx->msg, s->cfg->spool_dir, s->cfg->max_message_size, s->cfg->hostname) < 0) {
		session_reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	s->tx->msg.on_field = field_arrived;
	s->tx->msg.on_field_arg = s;
	session_reply(s, R_DATA_GO, NULL);
	s->state = S_DATA;
	session_read_timeout(s, s->cfg->data_timeout);
	s->data_progress = 0;
	session_deadline(s, s->cfg->data_timeout);
}

/* The header fields we put in front of the message, into buf. */
static int message_head(struct session *s, char *buf, size_t size)
{
	char ar[MOAT_AUTHRES_MAX], date[64];
	struct msghead h = {
		.tags = checks_tags(s->chk),
		.helo = session_helo(s),
		.client_ip = s->peer_ip,
		.ipv6 = s->peer.sa.sa_family == AF_INET6 && !strchr(s->peer_ip, '.'),
		.hostname = s->cfg->hostname,
		.proto = s->tx->utf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
		.tls_version = s->tls_version,
		.authenticated = s->auth_user != NULL,
		.tls_cipher = s->tls_cipher,
		.id = s->id,
		.ntx = s->ntx + 1,
		.date = date,
	};

	if (checks_authres(s->chk, s->cfg->hostname, s->tx->utf8, ar, sizeof ar) > 0)
		h.authres = ar;
	msghead_date(date, sizeof date, (long long)time(NULL));
	return msghead_format(buf, size, &h);
}

/* The transaction ends at the data stage without delivery: reply, log,
 * forget it; with drop, also the backend connection (its state is unknown). */
static void data_failed(struct session *s, enum reply_id id, const char *why)
{
	session_refuse(s, STAGE_DATA, id, why, NULL);
	session_txn_free(s);
}

/* The backend's final reply (or its refusal of DATA), or moat's own when
 * the message could not go. */
static void data_relayed(void *arg, const struct relay_outcome *o)
{
	struct session *s = arg;
	const struct smtp_reply *r = o->reply;

	if (!r) {
		data_failed(s, o->id, o->why);
	} else if (r->code / 100 == 2) {
		char why[300], esc[16];
		struct decision d = {.stage = STAGE_DATA, .code = r->code, .esc = esc, .reason = why,
		                     .rule_file = s->tx->rule_file, .rule_line = s->tx->rule_line,
		                     .rule_id = s->tx->rule_id};

		session_send(s, r->text, r->len);
		reply_first_line(r->text, why, sizeof why);
		decision_esc_of(r->text, esc, sizeof esc);
		reply_queue_id(r->text, s->tx->queue_id, sizeof s->tx->queue_id);
		s->ntx++;
		session_limits_delivered(s);
		metrics_relayed((uint64_t)s->tx->msg.size);
		session_log_line(s, &d, NULL);
		session_txn_free(s);
	} else {
		session_relay_reply(s, STAGE_DATA, r, NULL);
		session_txn_free(s);
	}
	session_resume(s);
}

static long spool_reader(void *arg, size_t off, char *buf, size_t len)
{
	return spool_read(arg, off, buf, len);
}

static void data_decided(struct session *s, const struct verdict *v)
{
	char *head = NULL;
	int n = -1;

	recorder_message(s->rec, spool_reader, s->tx->msg.spool, spool_size(s->tx->msg.spool));
	if (v->rule_file) {
		s->tx->rule_file = v->rule_file;
		s->tx->rule_line = v->rule_line;
		s->tx->rule_id = v->rule_id;
	}
	if (v->code) {
		session_verdict(s, STAGE_DATA, v, NULL);
		session_txn_free(s);
		session_resume(s);
		return;
	}
	if (!s->relay) { /* no RCPT reached the backend: cannot happen with nrcpt > 0 */
		data_failed(s, R_BACKEND_LOST, "backend connection lost before DATA");
		session_resume(s);
		return;
	}
	if (!(head = malloc(MSGHEAD_MAX)) || (n = message_head(s, head, MSGHEAD_MAX)) < 0) {
		data_failed(s, R_LOCAL_ERROR, "could not pass the message on");
		free(head);
		session_resume(s);
		return;
	}
	if (s->tx->msg.ndrop)
		session_note(s, "info", "authres", "removed %d Authentication-Results field(s) claiming %s",
		             s->tx->msg.ndrop, s->cfg->hostname);
	relay_data(s->relay, &s->tx->msg, head, (size_t)n, data_relayed, s);
	free(head);
}

/* The data checks and rules are in: a greylist rule of the data stage
 * asks about every recipient first. */
static void data_verdict(void *arg, const struct verdict *v)
{
	struct session *s = arg;

	recorder_verdict(s->rec, REC_DATA, v); /* the rules' verdict, as at MAIL */
	recorder_checks(s->rec, REC_DATA, s->chk);
	if (session_limits_data(s, v, data_decided))
		return;
	data_decided(s, v);
}

/* The client's end of data. */
static void end_of_data(struct session *s)
{
	struct txn *tx = s->tx;

	s->state = S_CMD;
	session_read_timeout(s, s->cfg->command_timeout);
	event_del(s->deadline);
	switch (message_end(&tx->msg)) {
	case MSG_OK:
		break;
	case MSG_TOO_BIG:
		data_failed(s, R_SIZE, "message size exceeds limit");
		return;
	case MSG_SPOOL_FAILED:
		data_failed(s, R_LOCAL_ERROR, "spool write failed");
		return;
	case MSG_NUL:
		data_failed(s, R_NUL, "message contains NUL characters");
		return;
	case MSG_FORGED_TOO_MANY:
		data_failed(s, R_FORGED_AUTHRES, "too many forged Authentication-Results fields");
		return;
	}
	session_busy(s, 1);
	checks_data(s->chk, spool_reader, tx->msg.spool, spool_size(tx->msg.spool), data_verdict, s);
}

void session_data_step(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v[8];
	int i, nv = evbuffer_peek(in, -1, NULL, v, 8);
	size_t used = 0;
	int done = 0;

	if (nv > 8)
		nv = 8;
	for (i = 0; i < nv && !done; i++)
		used += message_feed(&s->tx->msg, v[i].iov_base, v[i].iov_len, &done);
	evbuffer_drain(in, used);
	s->data_progress += used;
	if (s->data_progress >= MOAT_DATA_PROGRESS && !done) {
		s->data_progress = 0;
		session_deadline(s, s->cfg->data_timeout);
	}
	if (done)
		end_of_data(s);
}

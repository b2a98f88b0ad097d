/* session_connect.c - a session's connection set-up: the PROXY header, the
 * per-address limit, on smtps_listen the TLS handshake, the connect checks
 * and rules, the banner (after greet_pause), a client talking before it
 * (pregreet). A refusal here hands the connection to refused.c and ends
 * the session. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/conntable.h"
#include "proxy/decision.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/replies.h"
#include "proxy/proxyproto.h"
#include "proxy/recorder.h"
#include "proxy/relay.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* The banner; with more, its first line only ("220-", greet_pause). */
static void banner(struct session *s, int more)
{
	char buf[MOAT_REPLY_LINE_MAX + 1];
	int n = reply_format_line(buf, sizeof buf, R_BANNER, s->cfg->hostname, NULL, more);

	session_send(s, buf, (size_t)n);
}

/* greet_pause is over and the client kept quiet: the rest of the banner. */
static void greet_done(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->state != S_GREET)
		return;
	s->state = S_CMD;
	banner(s, 0);
	session_process(s);
}

/* A client that talks before the whole banner is not an SMTP client that
 * waits for the server, as RFC 5321 3.1 requires (postscreen: PREGREET).
 * The banner's "220-" is finished first (a reply's lines share one code),
 * then the refusal answers the early command line and the rest linger. */
void session_pregreet(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);

	banner(s, 0);
	metrics_refused(MR_PREGREET);
	if (eol.pos >= 0)
		evbuffer_drain(in, (size_t)eol.pos + 1);
	session_refuse(s, STAGE_CONNECT, R_PREGREET, "client talked before the greeting (pregreet)", NULL);
	session_linger(s);
}

/* The connect rules have spoken: refuse, or send the banner (after
 * greet_pause, if set). */
static void connect_verdict(void *arg, const struct verdict *v)
{
	struct session *s = arg;
	struct timeval pause = {s->cfg->greet_pause / 1000, (s->cfg->greet_pause % 1000) * 1000};

	session_busy(s, 0);
	recorder_verdict(s->rec, REC_CONNECT, v);
	recorder_checks(s->rec, REC_CONNECT, s->chk);
	if (v->code && !s->cfg->delay_reject) {
		metrics_refused(MR_RULE);
		recorder_end(s->rec, s->ssl != NULL, NULL); /* a session refused at connect is a record too */
		session_verdict(s, STAGE_CONNECT, v, NULL);
		session_linger(s);
		return;
	}
	if (v->code && (s->early_v = malloc(sizeof *s->early_v))) {
		*s->early_v = *v; /* delay_reject: it answers each RCPT */
		s->early_stage = STAGE_CONNECT;
	}
	if (s->cfg->greet_pause > 0 && (s->greet_ev = evtimer_new(s->srv->base, greet_done, s))) {
		s->state = S_GREET;
		banner(s, 1);
		evtimer_add(s->greet_ev, &pause);
	} else {
		s->state = S_CMD;
		banner(s, 0);
	}
	session_process(s); /* what the client sent while the connect checks ran */
}

/* The per-address limit (max_connections_per_ip), counted across the
 * workers. Over it, a 421 and the connection lingers; before an implicit
 * TLS handshake (tls), a plain close: the reply would need the handshake,
 * the very cost the limit spares. 0, or -1: the session ends. */
static int admit(struct session *s, int tls)
{
	enum conn_take n;
	enum reply_id id;
	const char *why;

	sockaddr_ntop((struct sockaddr *)&s->peer, s->peer_ip, sizeof s->peer_ip);
	n = conntable_take_addr(s->srv->conns, s->srv->worker, (struct sockaddr *)&s->peer,
	                        s->cfg->max_connections_per_ip);
	s->counted_ip = n == CONN_TAKEN;
	if (n == CONN_TAKEN)
		return 0;
	id = n == CONN_OVER ? R_TOO_MANY_CONN_IP : R_TOO_MANY_CONN; /* CONN_FULL: fail closed, see conntable.c */
	metrics_refused(MR_MAX_CONNECTIONS_IP);
	why = n == CONN_OVER ? "too many connections from this address" : "connection table full";
	if (tls) {
		struct decision d = {.stage = STAGE_CONNECT, .reason = why};

		decision_set_reply(&d, id);
		session_log_line(s, &d, NULL);
		session_close(s);
		return -1;
	}
	session_refuse(s, STAGE_CONNECT, id, why, NULL);
	session_linger(s);
	return -1;
}

/* The client's real address is known (and on smtps_listen the handshake is
 * done): apply per-address limits, run the connect checks (the reverse DNS
 * lookup is asynchronous), then greet. */
void session_greet(struct session *s)
{
	struct check_env env = {s->srv->base, s->srv->dns, s->srv->dkim, s->srv->spf_cache, session_rule_hit, s};
	struct check_options opt;

	if (!s->counted_ip && admit(s, 0) < 0)
		return;
	if (session_auth_blocked(s)) {
		metrics_refused(MR_AUTH_BLOCKED);
		session_refuse(s, STAGE_CONNECT, R_AUTH_BLOCKED, "too many failed authentications from this address",
		               NULL);
		session_linger(s);
		return;
	}
	if (s->cfg->record_dir[0] &&
	    (s->rec = recorder_new(s->cfg->record_dir, s->cfg->record_messages, s->srv->dns, s->id, s->peer_ip,
	                           rules_listener_name(s->listener)))) {
		env.dns = recorder_dns(s->rec);
		env.spf_cache = NULL; /* a cached SPF result would leave its answers out of the record */
	}
	config_check_options(s->cfg, &opt);
	opt.want_rdns = relay_wants_rdns(s->srv->backends, s->cfg); /* XCLIENT NAME */
	s->chk = checks_new(&opt, &env, (struct sockaddr *)&s->peer);
	if (!s->chk) {
		session_close_with(s, R_LOCAL_ERROR);
		return;
	}
	checks_listener(s->chk, s->listener);
	if (s->ssl)
		checks_tls(s->chk);
	s->state = S_CMD;
	session_busy(s, 1);
	checks_connect(s->chk, connect_verdict, s);
}

/* The client's real address is known: greet, or on smtps_listen first the
 * TLS handshake (session_tls.c greets after it). */
static void connected(struct session *s)
{
	if (s->listener != LISTENER_SMTPS) {
		session_greet(s);
		return;
	}
	if (admit(s, 1) == 0)
		session_tls_accept(s);
}

/* Returns 0 when more input is needed. */
int session_proxy_step(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t len = evbuffer_get_length(in), used = 0;
	const unsigned char *buf;
	struct pp_info pi;
	enum pp_result r;

	if (len > MOAT_PROXY_HEADER_MAX)
		len = MOAT_PROXY_HEADER_MAX;
	buf = evbuffer_pullup(in, (ev_ssize_t)len);
	r = proxy_parse(buf, len, &used, &pi);
	if (r == PP_MORE && len < MOAT_PROXY_HEADER_MAX) {
		if (s->listener == LISTENER_SMTPS) /* not one byte of the ClientHello after it */
			bufferevent_set_max_single_read(s->bev, proxy_need(buf, len));
		return 0;
	}
	if (r != PP_OK) {
		session_note(s, "warning", "proxy_protocol", "no valid PROXY header, closing");
		session_close(s);
		return 0;
	}
	evbuffer_drain(in, used);
	event_del(s->deadline);
	if (!pi.local) {
		if (pi.srclen > sizeof s->peer) { /* not IPv4/IPv6: the parser gives no other */
			session_close(s);
			return 0;
		}
		memcpy(&s->peer, &pi.src, pi.srclen);
		s->peerlen = pi.srclen;
	}
	connected(s);
	return s->state == S_CMD; /* not on to the TLS handshake (another bufferevent) */
}

void session_connect(struct session *s)
{
	struct timeval tv = {MOAT_PROXY_TIMEOUT, 0};

	if (s->cfg->proxy_protocol) {
		s->state = S_PROXY;
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		session_deadline(s, MOAT_PROXY_TIMEOUT);
		if (s->listener == LISTENER_SMTPS)
			bufferevent_set_max_single_read(s->bev, proxy_need(NULL, 0));
		return;
	}
	connected(s);
}

/* session_tls.c - STARTTLS in a session (RFC 3207): the command, the
 * connection handed to an OpenSSL bufferevent, the handshake, the session
 * starting over.
 *
 * Nothing the client sent in plaintext after STARTTLS is ever executed
 * (the CVE-2011-0411 class: a man in the middle appends commands to the
 * client's STARTTLS, which would then run as if they came under TLS): what
 * is buffered when the STARTTLS line is read is dropped, reading stops
 * until the 220 is written, and the socket bufferevent is freed with
 * whatever it still holds; the TLS bufferevent reads the socket from the
 * first byte of the handshake on. */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tls.h"
#include "rules/rules.h"

/* A "tls" line of the session: what happened, with OpenSSL's words. */
static void tls_note(struct session *s, const char *level, const char *what, const char *reason)
{
	struct jline j;

	jl_begin(&j, level, "tls");
	jl_str(&j, "session", s->id);
	jl_str(&j, "client_ip", s->peer_ip);
	jl_str(&j, "msg", what);
	if (reason && reason[0])
		jl_str(&j, "reason", reason);
	jl_emit(&j);
}

void session_starttls(struct session *s, const char *arg)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t dropped;

	if (s->ssl) {
		session_proto_error(s, R_TLS_ACTIVE, NULL);
		return;
	}
	if (!s->cfg->tls) {
		session_proto_error(s, R_NOT_IMPL, NULL);
		return;
	}
	if (*arg) {
		session_proto_error(s, R_NO_ARGS, "STARTTLS");
		return;
	}
	if (s->tx) {
		session_proto_error(s, R_TXN_IN_PROGRESS, NULL);
		return;
	}
	if (!(s->tls_pending = tls_server_ssl(s->cfg->tls))) {
		tls_note(s, "error", "cannot start TLS: out of memory", NULL);
		session_reply(s, R_TLS_UNAVAILABLE, NULL);
		return;
	}
	/* Whatever came after the STARTTLS line is not the client's under TLS. */
	dropped = evbuffer_get_length(in);
	evbuffer_drain(in, dropped);
	s->reader.discarding = 0;
	if (dropped) {
		char what[128];

		snprintf(what, sizeof what, "%zu bytes sent after STARTTLS before the handshake discarded", dropped);
		tls_note(s, "warning", what, NULL);
	}
	bufferevent_disable(s->bev, EV_READ);
	s->state = S_TLS_WAIT;
	session_reply(s, R_STARTTLS_GO, NULL);
	/* the handshake must be over within command_timeout of the command */
	session_deadline(s, s->cfg->command_timeout);
}

/* The handshake on fd (non-blocking, as accepted), the server side of
 * s->tls_pending, in a TLS bufferevent that owns both from now on: after
 * STARTTLS's 220 here; at accept for a listener of implicit TLS. */
static void tls_attach(struct session *s, evutil_socket_t fd)
{
	struct timeval tv = {s->cfg->command_timeout, 0}, now = {0, 0};
	SSL *ssl = s->tls_pending;
	struct bufferevent *bev;

	s->tls_pending = NULL;
	bev = bufferevent_openssl_socket_new(s->srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		/* Out of memory inside libevent: 2.1 frees ssl and closes fd on
		 * some of its failure paths and not on others, so neither is
		 * touched here (a leak, rather than a double free). */
		tls_note(s, "error", "cannot start TLS: out of memory", NULL);
		s->state = S_CLOSING;
		event_add(s->reaper, &now);
		return;
	}
	s->ssl = ssl;
	s->state = S_TLS_HANDSHAKE;
	session_bev_attach(s, bev);
	/* a client that closes without close_notify ends its input, as in
	 * plaintext (SSL_OP_IGNORE_UNEXPECTED_EOF, tls.c) */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_set_timeouts(bev, &tv, &tv);
}

/* The 220 is out: the socket bufferevent is freed, with whatever it still
 * holds, without closing the socket, which goes to TLS. */
static void tls_switch(struct session *s)
{
	evutil_socket_t fd = bufferevent_getfd(s->bev);

	bufferevent_setfd(s->bev, -1);
	bufferevent_free(s->bev);
	s->bev = NULL;
	tls_attach(s, fd);
}

void session_tls_accept(struct session *s)
{
	if (!s->cfg->tls) { /* a reload took tls_cert away; smtps_listen stays until a restart */
		tls_note(s, "error", "implicit TLS without a certificate: the configuration has no tls_cert", NULL);
		session_close(s);
		return;
	}
	if (!(s->tls_pending = tls_server_ssl(s->cfg->tls))) {
		tls_note(s, "error", "cannot start TLS: out of memory", NULL);
		session_close(s);
		return;
	}
	/* the handshake must be over within command_timeout of the connection */
	session_deadline(s, s->cfg->command_timeout);
	tls_switch(s);
}

void session_tls_flushed(struct session *s)
{
	if (s->state == S_TLS_WAIT && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		tls_switch(s);
}

/* The handshake is done. Implicit TLS: the session begins. STARTTLS: the
 * session starts over (RFC 3207 4.2): the HELO and what the checks know of
 * it are forgotten, a new EHLO must come, STARTTLS is no longer offered. */
static void tls_ready(struct session *s)
{
	struct jline j;

	s->tls_version = SSL_get_version(s->ssl);
	s->tls_cipher = SSL_get_cipher_name(s->ssl);
	jl_begin(&j, "info", "tls");
	jl_str(&j, "session", s->id);
	jl_str(&j, "client_ip", s->peer_ip);
	jl_str(&j, "listener", rules_listener_name(s->listener));
	jl_str(&j, "tls_version", s->tls_version);
	jl_str(&j, "tls_cipher", s->tls_cipher);
	jl_bool(&j, "resumed", SSL_session_reused(s->ssl));
	jl_emit(&j);
	event_del(s->deadline);
	/* replies now go out through tls_push, at once (bevpush.h); without
	 * memory for it, through the output and the loop */
	s->tls_out = evbuffer_new();
	if (!s->chk) {
		bufferevent_disable(s->bev, EV_WRITE); /* writes: bev_push */
		session_greet(s);
		return;
	}
	free(s->helo);
	s->helo = NULL;
	s->helo_seen = 0;
	s->esmtp = 0;
	if (s->early_v && s->early_stage == STAGE_HELO) {
		free(s->early_v);
		s->early_v = NULL;
	}
	checks_tls(s->chk);
	s->state = S_CMD;
	bufferevent_disable(s->bev, EV_WRITE); /* writes: bev_push */
	session_resume(s);
}

/* libevent 2.1 reads a TLS connection only when its socket is readable.
 * When the input reached its bound (MOAT_CLIENT_INPUT_MAX) in the middle of
 * a record, OpenSSL holds the rest of that record, decrypted (SSL_pending);
 * once the session has taken input below the bound, libevent waits for the
 * socket again, and a client that sent its last bytes waits for our reply:
 * both would wait until a timeout. So the read event is made active here,
 * as the socket would. */
void session_tls_pending(struct session *s)
{
	if (s->ssl && s->state != S_TLS_HANDSHAKE && s->state != S_CLOSING && SSL_pending(s->ssl) > 0 &&
	    (bufferevent_get_enabled(s->bev) & EV_READ) &&
	    evbuffer_get_length(bufferevent_get_input(s->bev)) < MOAT_CLIENT_INPUT_MAX)
		event_active(&s->bev->ev_read, EV_READ, 1);
}

/* OpenSSL's reason for the last failure of the connection, or the
 * system's, or what happened. */
static const char *failure(struct session *s, short what, int *have_reason)
{
	unsigned long e, first = 0;

	/* They come newest first: the oldest is the cause. libevent 2.1 puts
	 * SSL_get_error's code (1, 5: no library, no reason) among them. */
	while ((e = bufferevent_get_openssl_error(s->bev)))
		if (ERR_GET_LIB(e) != 0)
			first = e;
	*have_reason = first != 0;
	if (first)
		return tls_error_text(first);
	if (what & BEV_EVENT_EOF)
		return "the client closed the connection";
	return errno ? strerror(errno) : "connection lost";
}

static void tls_end(struct session *s)
{
	struct timeval now = {0, 0};

	s->tls_failed = 1;
	s->state = S_CLOSING;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	event_add(s->reaper, &now);
}

void session_tls_event(struct session *s, short what)
{
	int have;
	const char *why;

	if (what & BEV_EVENT_CONNECTED) {
		tls_ready(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		session_tls_timeout(s);
		return;
	}
	why = failure(s, what, &have);
	tls_note(s, "warning", "TLS handshake failed", why);
	tls_end(s);
}

void session_tls_timeout(struct session *s)
{
	tls_note(s, "warning", s->state == S_TLS_WAIT ? "the client did not read the reply to STARTTLS in time"
	                                              : "TLS handshake not complete in time (command_timeout)",
	         NULL);
	tls_end(s); /* no reply: the client is not reading, or not in plaintext */
}

void session_tls_error(struct session *s)
{
	int have;
	const char *why = failure(s, BEV_EVENT_ERROR, &have);

	s->tls_failed = 1;
	if (have)
		tls_note(s, "warning", "TLS error", why);
}

/* RFC 8446 6.1: a close_notify before the close (OpenSSL 3 clients call its
 * absence an error). The last reply is out already; the alert is written
 * straight to the socket, once, without waiting: a client that does not
 * take it loses nothing. */
void session_tls_close(struct session *s)
{
	if (s->tls_failed || !s->tls_version)
		return;
	SSL_shutdown(s->ssl);
	ERR_clear_error();
}

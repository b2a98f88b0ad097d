/* backend.c - SMTP client side towards the backend MTA */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/backend.h"
#include "proxy/backend_addr.h"
#include "proxy/backend_tls.h"
#include "proxy/bevpush.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/text.h"
#include "proxy/xclient.h"

enum bstate {
	B_DIALING,    /* waiting for the next address to try (a name's answer) */
	B_CONNECTING, /* TCP connect in progress */
	B_BANNER,     /* waiting for 220 */
	B_EHLO,       /* waiting for the EHLO reply */
	B_STARTTLS,   /* STARTTLS sent, waiting for its 220 */
	B_HANDSHAKE,  /* the TLS handshake */
	B_XCLIENT,    /* the RSET or an XCLIENT of backend_xclient sent */
	B_IDLE,       /* ready for a command */
	B_WAIT,       /* a command sent, waiting for its reply */
	B_MESSAGE,    /* DATA answered 354: only the message may follow, and only
	               * closing the connection (no QUIT, no pool) abandons it */
	B_DEAD,
};

struct backend_pool {
	struct event_base *base;
	struct backend *idle[MOAT_BACKEND_POOL_MAX];
	int nidle;
	struct backend *probe;   /* at most one at a time */
	struct config *probe_cfg; /* its config (a reference), for its warnings */
	struct ehlo_caps caps;   /* the latest EHLO reply of any connection */
	int caps_known;
	struct backend_tls_cache *tls_cache; /* the TLS session to resume; NULL: none */
	struct backend_names *names; /* the backends' names and addresses */
	int timeout_cap;         /* seconds; 0: the config's */
	int quiet;               /* moat -t: no log lines, the caller tells */
};

struct backend {
	struct backend_pool *pool;
	struct bufferevent *bev;
	enum bstate state;
	char hostname[256];
	struct ehlo_caps caps;
	struct smtp_reply reply; /* being read */
	backend_cb cb;           /* pending request */
	void *arg;
	/* A command group (backend_group): lines, replies seen, lines sent. */
	char group[BACKEND_GROUP_MAX][MOAT_CMD_LINE_MAX + 64];
	int ngroup, greplied, gsent;
	backend_group_cb gcb;
	/* backend_xclient: its lines, the next to send (-1: the RSET first) */
	char xlines[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1];
	int nx, xnext;
	char xhelo[MOAT_HELO_MAX + 1]; /* then HELO/EHLO with this name */
	int xesmtp;
	struct event *defer;     /* reports a failed connect asynchronously */
	struct backend_dial *dial; /* while setting up: the addresses left to try */
	struct backend_target target; /* the backend of the list it is connected to */
	struct sockaddr_storage addr; /* and its address: a pooled one must still be the config's */
	socklen_t addrlen;
	int dial_done;           /* no address left: the last failure is the connection's */
	int unresolved;          /* no backend of the list had an address: 1, 2 when DNS failed */
	int last_refusal;        /* the last failure was the reply in reply */
	int last_tls_failed;     /* it was TLS (backend_tls = required) */
	char last_why[320];
	int pooled;              /* idle in the pool: its end is no news */
	int no_reuse;            /* its backend session is not fit for another client */
	int xclient_used;        /* XCLIENT made its backend session some client's */
	int own_caps;            /* not to cfg's backend (submission_backend): its EHLO is not the pool's */
	int cmd_timeout;         /* seconds: backend_timeout */
	int data_timeout;        /* seconds for the end-of-data reply: backend_data_timeout */
	/* TLS */
	enum backend_tls_mode tls_mode;
	SSL_CTX *ssl_ctx;        /* a reference; NULL: no TLS */
	char tls_name[256];      /* the name the certificate must hold */
	char tls_name_cfg[256];  /* backend_tls_name; "": the backend's name, or its address */
	int setup;               /* connecting, up to the first idle: STARTTLS may follow EHLO */
	int plain;               /* opportunistic TLS failed: this connection goes on without */
	int tls;                 /* TLS is on */
	struct backend_tls_info tls_info;
	char error[320];         /* why the connection failed; "" */
	int tls_failed;          /* it was TLS (backend_tls = required) */
	int starttls_offered;    /* the first EHLO offered STARTTLS */
	int quiet;               /* the readiness probe: its failures are not logged one by one */
	uint64_t sent_ns;        /* when the connect or the last command went: the reply's latency */
};

static int timeout_of(const struct backend *b, int seconds)
{
	int cap = b->pool->timeout_cap;

	return cap > 0 && cap < seconds ? cap : seconds;
}

static int connect_timeout(const struct backend *b)
{
	return b->cmd_timeout < MOAT_BACKEND_CONNECT_TIMEOUT ? b->cmd_timeout : MOAT_BACKEND_CONNECT_TIMEOUT;
}

static void set_timeout(struct backend *b, int seconds)
{
	struct timeval tv = {timeout_of(b, seconds), 0};

	bufferevent_set_timeouts(b->bev, &tv, &tv);
}

/* Report to the pending request; b may be freed by the callback. */
static void finish(struct backend *b, const struct smtp_reply *r)
{
	backend_cb cb = b->cb;
	backend_group_cb gcb = b->gcb;
	void *arg = b->arg;

	b->cb = NULL;
	b->gcb = NULL;
	if (gcb)
		gcb(arg, b->greplied, r);
	else if (cb)
		cb(arg, r);
}

static int retry(struct backend *b, const char *why, int refusal);

/* Whether cfg's backend answers, for /readyz (metrics.h): a reply is an
 * answer; a refused banner, a 421, a connect that failed on every address
 * of the list, or a timeout is not. A change is logged once (not every
 * failed probe). */
static void heard(struct backend *b, int ok, const char *why)
{
	if (b->own_caps || b->pool->quiet || !metrics_backend_answer(ok, clock_ms()))
		return;
	if (ok)
		log_info("readiness", "the backend answers: ready");
	else
		log_warn("readiness", "the backend does not answer (%s): not ready until it does", why);
}

static void die(struct backend *b, const char *why)
{
	if (b->state != B_DEAD && retry(b, why, 0))
		return;
	/* a connection that failed before it was ready (on every address of
	 * the list), or a reply that did not come */
	if (b->state != B_DEAD && (b->setup || b->unresolved || (b->state != B_IDLE && !b->pooled && !strcmp(why, "timeout"))))
		heard(b, 0, why);
	if (b->state != B_DEAD && !b->pooled && !b->error[0] && !b->pool->quiet && !b->unresolved && !b->quiet)
		log_warn("backend", "backend connection failed: %s", why);
	if (b->state != B_DEAD && !b->error[0])
		snprintf(b->error, sizeof b->error, "%s", why);
	b->state = B_DEAD;
	if (b->bev)
		bufferevent_disable(b->bev, EV_READ | EV_WRITE);
	finish(b, NULL);
}

/* backend_tls = required and no TLS: the connection fails, saying why. */
static void tls_fail(struct backend *b, const char *why)
{
	snprintf(b->error, sizeof b->error, "%s", why);
	b->tls_failed = 1;
	if (!b->pool->quiet && !b->quiet)
		log_warn("tls", "backend TLS required and %s", why);
	die(b, why);
}

/* The backend refused the session (the reply in b->reply): the next
 * address while setting up, else the end. */
static void refused(struct backend *b)
{
	char first[256];

	reply_first_line(b->reply.text, first, sizeof first);
	if (retry(b, first, 1))
		return;
	heard(b, 0, first);
	b->state = B_DEAD;
	finish(b, &b->reply);
}

/* Write what the output holds. A TLS connection writes by itself (its
 * EV_WRITE stays enabled: libevent's TLS writer stops watching when its
 * output is empty); bev_push would write past TLS, into the socket. */
static void push(struct backend *b)
{
	if (!b->tls)
		bev_push(b->bev);
}

static void send_line(struct backend *b, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(b->bev);

	evbuffer_add_printf(out, "%s\r\n", line);
	b->sent_ns = clock_ns();
}

static void send_ehlo(struct backend *b)
{
	char ehlo[300];

	snprintf(ehlo, sizeof ehlo, "EHLO %s", b->hostname);
	if (b->xhelo[0]) /* after XCLIENT: the client's, which the backend then logs and judges */
		snprintf(ehlo, sizeof ehlo, "%s %s", b->xesmtp ? "EHLO" : "HELO", b->xhelo);
	send_line(b, ehlo);
	push(b);
	b->state = B_EHLO;
}

static void read_cb(struct bufferevent *bev, void *ctx);
static void write_cb(struct bufferevent *bev, void *ctx);
static void event_cb(struct bufferevent *bev, short what, void *ctx);

/* The backend said 220 to STARTTLS: the handshake, on the same socket. */
static int start_tls(struct backend *b)
{
	struct evbuffer *in = bufferevent_get_input(b->bev);
	size_t extra = evbuffer_get_length(in);
	evutil_socket_t fd = bufferevent_getfd(b->bev);
	SSL *ssl;

	/* What the backend sent after its 220 came before TLS: never read as
	 * a reply of the TLS session (the CVE-2011-0411 class, backend side). */
	if (extra && !b->pool->quiet)
		log_warn("tls", "the backend sent %zu bytes after its reply to STARTTLS: discarded", extra);
	evbuffer_drain(in, extra);
	ssl = backend_tls_new(b->ssl_ctx, b->pool->tls_cache, b->tls_name, b->tls_mode == BACKEND_TLS_REQUIRED);
	if (!ssl) {
		die(b, "out of memory for TLS");
		return 1;
	}
	/* The socket goes from the plain bufferevent to a TLS one (one buffer
	 * per direction, as before; a filter over it would add a copy). */
	bufferevent_setfd(b->bev, -1);
	bufferevent_free(b->bev);
	b->bev = bufferevent_openssl_socket_new(b->pool->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (!b->bev) {
		close(fd);
		die(b, "out of memory for TLS");
		return 1;
	}
	/* a backend that closes without close_notify (an idle timeout) ends
	 * the connection like a plain EOF */
	bufferevent_openssl_set_allow_dirty_shutdown(b->bev, 1);
	bufferevent_setcb(b->bev, read_cb, write_cb, event_cb, b);
	bufferevent_setwatermark(b->bev, EV_READ, 0, MOAT_BACKEND_REPLY_MAX * 2);
	set_timeout(b, connect_timeout(b)); /* the handshake is part of connecting */
	b->tls = 1;
	bufferevent_enable(b->bev, EV_READ | EV_WRITE);
	b->state = B_HANDSHAKE;
	return 1; /* the plain bufferevent's input is gone */
}

static int connect_plain(struct backend *b);

/* The handshake is over: EHLO again, the capabilities anew. */
static void tls_done(struct backend *b)
{
	backend_tls_info(bufferevent_openssl_get_ssl(b->bev), &b->tls_info);
	set_timeout(b, b->cmd_timeout);
	smtp_reply_init(&b->reply);
	send_ehlo(b);
}

/* The handshake failed. opportunistic: nothing was sent but EHLO, so a new
 * plaintext connection serves (as Postfix's smtp_tls_security_level = may). */
static void tls_failed(struct backend *b, const char *why)
{
	if (b->tls_mode == BACKEND_TLS_REQUIRED) {
		tls_fail(b, why);
		return;
	}
	if (!b->pool->quiet)
		log_warn("tls", "backend TLS handshake failed (%s): going on without TLS, on a new connection", why);
	backend_tls_detach(bufferevent_openssl_get_ssl(b->bev));
	bufferevent_free(b->bev);
	b->bev = NULL;
	b->tls = 0;
	b->plain = 1;
	if (connect_plain(b) < 0)
		die(b, "connect failed");
}

/* After the first EHLO: STARTTLS? */
static int want_starttls(const struct backend *b)
{
	return b->setup && !b->tls && !b->plain && b->tls_mode != BACKEND_TLS_NO && b->caps.starttls &&
	       b->ssl_ctx;
}

/* The EHLO reply: ready, or STARTTLS first. 1 when a callback ran. */
static int on_ehlo(struct backend *b)
{
	if (b->reply.code / 100 != 2) {
		refused(b);
		return 1;
	}
	ehlo_caps_parse(&b->reply, &b->caps);
	if (b->setup && !b->tls)
		b->starttls_offered = b->caps.starttls;
	if (want_starttls(b)) {
		smtp_reply_init(&b->reply);
		send_line(b, "STARTTLS");
		push(b);
		b->state = B_STARTTLS;
		return 0;
	}
	if (b->setup && !b->tls && b->tls_mode == BACKEND_TLS_REQUIRED) {
		tls_fail(b, b->ssl_ctx ? "the backend offers no STARTTLS" : "no TLS context");
		return 1;
	}
	b->setup = 0;
	if (b->dial) { /* set up: the addresses left are not needed */
		backend_dial_answered(b->dial);
		backend_dial_free(b->dial);
		b->dial = NULL;
	}
	if (!b->own_caps) {
		b->pool->caps = b->caps;
		b->pool->caps_known = 1;
	}
	b->state = B_IDLE;
	finish(b, &b->reply);
	return 1;
}

/* The reply to STARTTLS. 1 when a callback ran or the input is gone. */
static int on_starttls(struct backend *b)
{
	char first[256], why[300];

	if (b->reply.code == 220)
		return start_tls(b);
	reply_first_line(b->reply.text, first, sizeof first);
	snprintf(why, sizeof why, "the backend refused STARTTLS: %s", first);
	if (b->tls_mode == BACKEND_TLS_REQUIRED || b->reply.code == 421) {
		if (b->tls_mode == BACKEND_TLS_REQUIRED)
			tls_fail(b, why);
		else
			die(b, why);
		return 1;
	}
	/* opportunistic: on in plaintext, with the capabilities asked anew */
	if (!b->pool->quiet)
		log_warn("tls", "%s: going on without TLS", why);
	b->plain = 1;
	smtp_reply_init(&b->reply);
	send_ehlo(b);
	return 0;
}

/* A reply to backend_xclient's RSET or XCLIENT. 1 when a callback ran. */
static int on_xclient(struct backend *b)
{
	int ok = b->xnext < 0 ? b->reply.code / 100 == 2 : b->reply.code == 220;

	if (!ok) {
		b->no_reuse = 1;
		b->state = b->reply.code == 421 ? B_DEAD : B_IDLE;
		finish(b, &b->reply);
		return 1;
	}
	smtp_reply_init(&b->reply);
	if (++b->xnext < b->nx) {
		send_line(b, b->xlines[b->xnext]);
		push(b);
	} else {
		send_ehlo(b); /* the backend's session started over */
	}
	return 0;
}

/* A complete reply arrived. Returns 1 when a callback ran (b may be gone)
 * or the input it came from is gone. */
static int on_reply(struct backend *b)
{
	switch (b->state) {
	case B_BANNER:
		if (b->reply.code != 220) {
			refused(b);
			return 1;
		}
		smtp_reply_init(&b->reply);
		send_ehlo(b);
		return 0;
	case B_EHLO:
		return on_ehlo(b);
	case B_STARTTLS:
		return on_starttls(b);
	case B_XCLIENT:
		return on_xclient(b);
	case B_WAIT:
		if (b->gcb && b->greplied + 1 < b->ngroup && b->reply.code != 421) {
			/* A reply inside a group: report it and go on with the group. */
			b->gcb(b->arg, b->greplied++, &b->reply);
			smtp_reply_init(&b->reply);
			if (b->gsent == b->greplied) {
				send_line(b, b->group[b->gsent++]);
				push(b);
			}
			return 0;
		}
		/* 421 means the backend is closing: no further command. */
		b->state = b->reply.code == 421 ? B_DEAD : b->reply.code == 354 ? B_MESSAGE : B_IDLE;
		finish(b, &b->reply);
		return 1;
	default:
		die(b, "unexpected reply");
		return 1;
	}
}

static void read_cb(struct bufferevent *bev, void *ctx)
{
	struct backend *b = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (b->state != B_DEAD) {
		size_t n;
		enum reply_step step;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

		if (!line) {
			if (evbuffer_get_length(in) > MOAT_BACKEND_REPLY_MAX)
				die(b, "reply line too long");
			return;
		}
		if (b->state == B_IDLE || b->state == B_MESSAGE || b->state == B_HANDSHAKE ||
		    b->state == B_CONNECTING) {
			free(line);
			die(b, "unsolicited reply"); /* e.g. a 421 idle timeout */
			return;
		}
		step = smtp_reply_add_line(&b->reply, line, n);
		free(line);
		if (step == REPLY_BAD) {
			die(b, "malformed reply");
			return;
		}
		if (step == REPLY_DONE) {
			metrics_backend_reply(clock_ns() - b->sent_ns);
			if (b->state != B_BANNER || b->reply.code == 220)
				heard(b, b->reply.code != 421, "421: closing");
		}
		if (step == REPLY_DONE && on_reply(b))
			return; /* a callback ran: b may be gone */
	}
}

static void event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct backend *b = ctx;
	char why[300];

	if ((what & BEV_EVENT_CONNECTED) && b->state == B_HANDSHAKE) {
		tls_done(b);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		b->state = B_BANNER;
		sock_nodelay(bufferevent_getfd(bev));
		return;
	}
	if (b->state == B_HANDSHAKE) {
		if (what & BEV_EVENT_TIMEOUT)
			snprintf(why, sizeof why, "TLS handshake timed out");
		else
			backend_tls_failure(bufferevent_openssl_get_ssl(bev), bufferevent_get_openssl_error(bev), why,
			                    sizeof why);
		tls_failed(b, why);
	} else if (what & BEV_EVENT_TIMEOUT) {
		die(b, "timeout");
	} else if (what & BEV_EVENT_EOF) {
		die(b, "connection closed by backend");
	} else if (b->tls) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		snprintf(why, sizeof why, "TLS: %s", e ? ERR_reason_error_string(e) : "connection reset");
		die(b, why);
	} else {
		die(b, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

static void write_cb(struct bufferevent *bev, void *ctx)
{
	struct backend *b = ctx;

	if (!b->tls)
		bev_pushed(bev);
}

static void defer_cb(evutil_socket_t fd, short what, void *ctx)
{
	die(ctx, "connect failed");
}

/* A new socket bufferevent connecting to b->addr. -1 when it cannot
 * start (then nothing is pending). */
static int connect_plain(struct backend *b)
{
	b->bev = bufferevent_socket_new(b->pool->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!b->bev)
		return -1;
	bufferevent_setcb(b->bev, read_cb, write_cb, event_cb, b);
	bufferevent_setwatermark(b->bev, EV_READ, 0, MOAT_BACKEND_REPLY_MAX * 2);
	set_timeout(b, connect_timeout(b));
	bufferevent_enable(b->bev, EV_READ); /* writes: bev_push */
	b->state = B_CONNECTING;
	b->sent_ns = clock_ns();
	smtp_reply_init(&b->reply);
	if (bufferevent_socket_connect(b->bev, (const struct sockaddr *)&b->addr, (int)b->addrlen) < 0) {
		/* Callbacks never run inside the caller's call. */
		struct timeval now = {0, 0};

		evtimer_add(b->defer, &now);
	}
	return 0;
}

/* The name the backend's certificate must hold: backend_tls_name, else
 * the backend's name, else the address connected to. */
static void tls_name_of(struct backend *b)
{
	if (b->tls_name_cfg[0])
		snprintf(b->tls_name, sizeof b->tls_name, "%s", b->tls_name_cfg);
	else if (b->target.name[0])
		snprintf(b->tls_name, sizeof b->tls_name, "%s", b->target.name);
	else
		sockaddr_ntop((const struct sockaddr *)&b->addr, b->tls_name, sizeof b->tls_name);
}

/* The next address to try is in, or none is left. */
static void dial_cb(void *arg, const struct sockaddr *addr, socklen_t len)
{
	struct backend *b = arg;
	const char *unresolved;
	int failing;

	if (!addr || len > sizeof b->addr) {
		b->dial_done = 1;
		if ((unresolved = backend_dial_unresolved(b->dial, &failing))) {
			/* logged when the name lost its addresses, not for each connection */
			b->unresolved = failing ? 2 : 1;
			die(b, unresolved);
		} else if (b->last_refusal) {
			heard(b, 0, b->last_why);
			b->state = B_DEAD;
			finish(b, &b->reply);
		} else {
			b->tls_failed = b->last_tls_failed;
			die(b, b->last_why[0] ? b->last_why : "no address to connect to");
		}
		return;
	}
	memcpy(&b->addr, addr, len);
	b->addrlen = len;
	b->target = *backend_dial_target(b->dial);
	tls_name_of(b);
	if (connect_plain(b) < 0)
		die(b, "out of memory");
}

/* The connection being set up failed (why; refusal: the reply in
 * b->reply): closed, and the next address of the list asked for. 0 when
 * there is no list to go on with (set up, or none left). */
static int retry(struct backend *b, const char *why, int refusal)
{
	if (!b->setup || !b->dial || b->dial_done)
		return 0;
	backend_dial_failed(b->dial, why);
	snprintf(b->last_why, sizeof b->last_why, "%s", why);
	b->last_refusal = refusal;
	b->last_tls_failed = b->tls_failed;
	b->tls_failed = 0;
	b->error[0] = '\0';
	evtimer_del(b->defer);
	if (b->bev && b->tls)
		backend_tls_detach(bufferevent_openssl_get_ssl(b->bev));
	if (b->bev)
		bufferevent_free(b->bev);
	b->bev = NULL;
	b->tls = b->plain = b->starttls_offered = 0;
	memset(&b->caps, 0, sizeof b->caps);
	b->state = B_DIALING;
	backend_dial_next(b->dial, dial_cb, b);
	return 1;
}

struct backend *backend_open(struct backend_pool *pool, const struct config *cfg, backend_cb cb,
                             void *arg)
{
	return backend_open_list(pool, cfg, &cfg->backend, cb, arg);
}

struct backend *backend_open_list(struct backend_pool *pool, const struct config *cfg,
                                  const struct backend_list *list, backend_cb cb, void *arg)
{
	struct backend *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	b->pool = pool;
	snprintf(b->hostname, sizeof b->hostname, "%s", cfg->hostname);
	b->own_caps = !backend_list_equal(list, &cfg->backend);
	b->cmd_timeout = cfg->backend_timeout;
	b->data_timeout = cfg->backend_data_timeout;
	b->tls_mode = cfg->backend_tls;
	if (cfg->backend_ssl && cfg->backend_tls != BACKEND_TLS_NO && SSL_CTX_up_ref(cfg->backend_ssl) == 1)
		b->ssl_ctx = cfg->backend_ssl;
	snprintf(b->tls_name_cfg, sizeof b->tls_name_cfg, "%s", cfg->backend_tls_name);
	b->setup = 1;
	b->cb = cb;
	b->arg = arg;
	b->state = B_DIALING;
	b->defer = evtimer_new(pool->base, defer_cb, b);
	b->dial = backend_dial_new(pool->names, list);
	if (!b->defer || !b->dial || backend_dial_next(b->dial, dial_cb, b) < 0) {
		backend_free(b);
		return NULL;
	}
	return b;
}

int backend_unresolved(const struct backend *b)
{
	return b ? b->unresolved : 0;
}

void backend_where(const struct backend *b, char *out, size_t size)
{
	char addr[80];

	backend_addr_text((const struct sockaddr *)&b->addr, addr, sizeof addr);
	if (b->target.name[0])
		snprintf(out, size, "%s:%d at %s", b->target.name, b->target.port, addr);
	else
		snprintf(out, size, "%s", addr);
}

void backend_set_quiet(struct backend *b)
{
	b->quiet = 1;
}

const char *backend_tls_error(const struct backend *b)
{
	return b && b->tls_failed ? b->error : NULL;
}

const char *backend_error(const struct backend *b)
{
	return b && b->error[0] ? b->error : NULL;
}

const char *backend_tls_version(const struct backend *b, int *resumed)
{
	*resumed = b && b->tls && b->tls_info.resumed;
	return b && b->tls && b->tls_info.version[0] ? b->tls_info.version : NULL;
}

int backend_xclient(struct backend *b, int rset, const char *const *lines, int n, const char *helo, int esmtp,
                    backend_cb cb, void *arg)
{
	if (b->state != B_IDLE || n < 1 || n > XCLIENT_LINES_MAX)
		return -1;
	snprintf(b->xhelo, sizeof b->xhelo, "%s", helo);
	b->xesmtp = esmtp;
	b->xclient_used = 1;
	for (int i = 0; i < n; i++)
		snprintf(b->xlines[i], sizeof b->xlines[i], "%s", lines[i]);
	b->nx = n;
	b->xnext = rset ? -1 : 0;
	smtp_reply_init(&b->reply);
	b->cb = cb;
	b->arg = arg;
	b->state = B_XCLIENT;
	set_timeout(b, b->cmd_timeout);
	send_line(b, rset ? "RSET" : b->xlines[0]);
	push(b);
	return 0;
}

int backend_command(struct backend *b, const char *line, backend_cb cb, void *arg)
{
	if (b->state != B_IDLE)
		return -1;
	smtp_reply_init(&b->reply);
	b->cb = cb;
	b->arg = arg;
	b->state = B_WAIT;
	set_timeout(b, b->cmd_timeout);
	send_line(b, line);
	push(b);
	return 0;
}

int backend_group(struct backend *b, const char *const *lines, int n, backend_group_cb cb, void *arg)
{
	int i;

	if (b->state != B_IDLE || n < 1 || n > BACKEND_GROUP_MAX)
		return -1;
	for (i = 0; i < n; i++)
		snprintf(b->group[i], sizeof b->group[i], "%s", lines[i]);
	smtp_reply_init(&b->reply);
	b->ngroup = n;
	b->greplied = 0;
	b->gsent = 0;
	b->gcb = cb;
	b->arg = arg;
	b->state = B_WAIT;
	set_timeout(b, b->cmd_timeout);
	/* Without PIPELINING, each line waits for the previous reply. */
	do
		send_line(b, b->group[b->gsent++]);
	while (b->caps.pipelining && b->gsent < n);
	push(b);
	return 0;
}

struct evbuffer *backend_message_buffer(struct backend *b, int *sendfile)
{
	*sendfile = !b->tls;
	return b->state == B_MESSAGE ? bufferevent_get_output(b->bev) : NULL;
}

int backend_message_end(struct backend *b, backend_cb cb, void *arg)
{
	if (b->state != B_MESSAGE)
		return -1;
	smtp_reply_init(&b->reply);
	b->cb = cb;
	b->arg = arg;
	b->state = B_WAIT;
	set_timeout(b, b->data_timeout);
	if (evbuffer_add(bufferevent_get_output(b->bev), ".\r\n", 3) < 0)
		return -1;
	push(b);
	return 0;
}

int backend_idle(const struct backend *b)
{
	return b && b->state == B_IDLE;
}

/* ---- the pool ---------------------------------------------------------------
 * A pooled connection that the backend closes (its idle timeout) or that
 * stays unused for backend_cache_time seconds is dropped. */
struct backend_pool *backend_pool_new(struct event_base *base, struct dns *dns)
{
	struct backend_pool *p = calloc(1, sizeof *p);

	if (p) {
		p->base = base;
		p->tls_cache = backend_tls_cache_new(); /* none: no resumption */
		if (!(p->names = backend_names_new(base, dns))) {
			free(p);
			return NULL;
		}
	}
	return p;
}

struct event_base *backend_pool_base(const struct backend_pool *p)
{
	return p->base;
}

static void pool_remove(struct backend *b)
{
	struct backend_pool *p = b->pool;

	for (int i = 0; i < p->nidle; i++)
		if (p->idle[i] == b) {
			p->idle[i] = p->idle[--p->nidle];
			return;
		}
}

/* A pooled connection died (closed by the backend, timed out, spoke). */
static void pool_dead(void *arg, const struct smtp_reply *r)
{
	struct backend *b = arg;

	pool_remove(b);
	b->state = B_DEAD;
	backend_free(b);
}

/* Is b's backend one of cfg's, still at b's address (a name's latest answer)? */
static int goes_where(const struct backend *b, const struct config *cfg)
{
	for (int i = 0; i < cfg->backend.n; i++)
		if (backend_target_equal(&b->target, &cfg->backend.t[i]))
			return backend_names_current(b->pool->names, &b->target, (const struct sockaddr *)&b->addr);
	return 0;
}

/* Can a connection serve a session of cfg? A backend of cfg's, at an
 * address it still has, reached as cfg says (a reload that changes
 * backend_tls or its CAs makes a new context), and not left some client's
 * by XCLIENT when cfg sends none. */
static int fits(const struct backend *b, const struct config *cfg)
{
	SSL_CTX *want = cfg->backend_tls != BACKEND_TLS_NO ? cfg->backend_ssl : NULL;

	return b->state == B_IDLE && !b->no_reuse && !b->own_caps && b->tls_mode == cfg->backend_tls &&
	       b->ssl_ctx == want && !(b->xclient_used && cfg->xclient == XCLIENT_MODE_NO) && goes_where(b, cfg);
}

int backend_current(const struct backend *b, const struct config *cfg)
{
	return b && goes_where(b, cfg);
}

void backend_release(struct backend_pool *p, struct backend *b, const struct config *cfg)
{
	if (!b)
		return;
	if (!fits(b, cfg) || p->nidle == MOAT_BACKEND_POOL_MAX || !b->bev || cfg->backend_cache_time <= 0 ||
	    evbuffer_get_length(bufferevent_get_input(b->bev))) {
		backend_free(b);
		return;
	}
	b->pooled = 1;
	b->cb = pool_dead;
	b->gcb = NULL;
	b->arg = b;
	set_timeout(b, cfg->backend_cache_time);
	p->idle[p->nidle++] = b;
}

struct backend *backend_take(struct backend_pool *p, const struct config *cfg)
{
	while (p->nidle > 0) {
		struct backend *b = p->idle[--p->nidle];

		if (fits(b, cfg) && snprintf(b->hostname, sizeof b->hostname, "%s", cfg->hostname) > 0) {
			b->pooled = 0;
			b->cb = NULL;
			b->arg = NULL;
			b->cmd_timeout = cfg->backend_timeout;
			b->data_timeout = cfg->backend_data_timeout;
			return b;
		}
		b->state = B_DEAD;
		backend_free(b);
	}
	return NULL;
}

const struct ehlo_caps *backend_pool_caps(const struct backend_pool *p)
{
	return p->caps_known ? &p->caps : NULL;
}

const struct ehlo_caps *backend_caps(const struct backend *b)
{
	return &b->caps;
}

/* QUIT, best effort: the socket closes right after. Under TLS written at
 * once, with a close_notify (freeing the bufferevent sends neither). */
static void quit(struct backend *b)
{
	SSL *ssl = b->tls ? bufferevent_openssl_get_ssl(b->bev) : NULL;

	if (!ssl) {
		send_line(b, "QUIT");
		push(b);
	} else if (evbuffer_get_length(bufferevent_get_output(b->bev)) == 0) {
		ERR_clear_error();
		if (SSL_write(ssl, "QUIT\r\n", 6) == 6)
			SSL_shutdown(ssl);
		ERR_clear_error();
	}
}

void backend_free(struct backend *b)
{
	if (!b)
		return;
	if (b->bev && b->state == B_IDLE)
		quit(b);
	if (b->bev && b->tls)
		backend_tls_detach(bufferevent_openssl_get_ssl(b->bev));
	if (b->bev)
		bufferevent_free(b->bev);
	if (b->defer)
		event_free(b->defer);
	backend_dial_free(b->dial);
	SSL_CTX_free(b->ssl_ctx);
	free(b);
}

void backend_describe(const struct backend *b, char *out, size_t size)
{
	const struct ehlo_caps *c = &b->caps;

	snprintf(out, size, "smtputf8=%d dsn=%d size=%lu xforward=%d xclient=%d starttls=%d tls=%s%s", c->smtputf8,
	         c->dsn, c->size, c->xforward, (c->xclient & XCLIENT_ADDR) != 0, b->starttls_offered,
	         b->tls ? b->tls_info.version : "none",
	         !b->tls ? "" : b->tls_info.verified ? " verified=1" : " verified=0");
}

int backend_warnings(const struct backend *b, const struct config *cfg, const char *w[BACKEND_WARN_MAX])
{
	int n = 0, xclient = (b->caps.xclient & XCLIENT_ADDR) != 0;

	if (!xclient && !b->caps.xforward)
		w[n++] = "the backend offers neither XCLIENT nor XFORWARD: its log and its client restrictions "
		         "see moat's address for every message (Postfix: smtpd_authorized_xclient_hosts)";
	if (!xclient && cfg->xclient == XCLIENT_MODE_YES)
		w[n++] = "xclient = yes and the backend offers no XCLIENT: every RCPT gets 451 4.3.5 until it does";
	if (b->tls && !b->tls_info.verified && cfg->backend_tls_ca[0])
		w[n++] = "the backend's certificate did not verify with backend_tls_ca and backend_tls_name: "
		         "the connection is encrypted, not authenticated";
	return n;
}

void backend_pool_set_timeout(struct backend_pool *p, int seconds)
{
	p->timeout_cap = seconds;
	p->quiet = 1;
	backend_names_quiet(p->names);
}

/* Start-up probe: connect, read EHLO caps, quit. */
static void probe_cancel(struct backend_pool *p)
{
	backend_free(p->probe);
	p->probe = NULL;
	config_unref(p->probe_cfg);
	p->probe_cfg = NULL;
}

static void probe_cb(void *arg, const struct smtp_reply *r)
{
	struct backend_pool *p = arg;
	const char *w[BACKEND_WARN_MAX], *tls = backend_tls_error(p->probe);
	char desc[200], where[BACKEND_NAME_MAX + 80];
	int n;

	if (tls) {
		log_warn("backend_probe", "backend TLS required and %s: every RCPT gets 451 4.7.5 until it is fixed", tls);
	} else if (backend_unresolved(p->probe)) {
		log_warn("backend_probe", "%s, nor any backend of the list: every RCPT gets 451 4.4.3 until one has "
		         "an address", backend_error(p->probe));
	} else if (!r || r->code / 100 != 2) {
		log_warn("backend_probe", "backend did not answer EHLO: SMTPUTF8 and DSN not advertised until it does");
	} else {
		backend_describe(p->probe, desc, sizeof desc);
		backend_where(p->probe, where, sizeof where);
		log_info("backend_probe", "backend %s ready (%s)", where, desc);
		n = backend_warnings(p->probe, p->probe_cfg, w);
		for (int i = 0; i < n; i++)
			log_warn("backend_probe", "%s", w[i]);
	}
	probe_cancel(p);
}

void backend_probe(struct backend_pool *p, const struct config *cfg)
{
	probe_cancel(p);
	p->probe_cfg = config_ref((struct config *)cfg);
	p->probe = backend_open(p, cfg, probe_cb, p);
}

void backend_pool_free(struct backend_pool *p)
{
	if (!p)
		return;
	while (p->nidle > 0)
		backend_free(p->idle[--p->nidle]);
	probe_cancel(p);
	backend_names_free(p->names);
	backend_tls_cache_free(p->tls_cache);
	free(p);
}

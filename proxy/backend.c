/* backend.c - SMTP client side towards the backend MTA */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/backend.h"
#include "proxy/bevpush.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"

enum bstate {
	B_CONNECTING, /* TCP connect in progress */
	B_BANNER,     /* waiting for 220 */
	B_EHLO,       /* waiting for the EHLO reply */
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
	struct ehlo_caps caps;   /* the latest EHLO reply of any connection */
	int caps_known;
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
	struct event *defer;     /* reports a failed connect asynchronously */
	struct sockaddr_storage addr; /* where it is connected: a pooled one must match the config */
	socklen_t addrlen;
	int pooled;              /* idle in the pool: its end is no news */
	int cmd_timeout;         /* seconds: backend_timeout */
	int data_timeout;        /* seconds for the end-of-data reply: backend_data_timeout */
};

static void set_timeout(struct backend *b, int seconds)
{
	struct timeval tv = {seconds, 0};

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

static void die(struct backend *b, const char *why)
{
	if (b->state != B_DEAD && !b->pooled)
		log_warn("backend", "backend connection failed: %s", why);
	b->state = B_DEAD;
	if (b->bev)
		bufferevent_disable(b->bev, EV_READ | EV_WRITE);
	finish(b, NULL);
}

static void send_line(struct backend *b, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(b->bev);

	evbuffer_add_printf(out, "%s\r\n", line);
}

/* A complete reply arrived. Returns 1 when a callback ran (b may be gone). */
static int on_reply(struct backend *b)
{
	char ehlo[300];

	switch (b->state) {
	case B_BANNER:
		if (b->reply.code != 220) {
			b->state = B_DEAD;
			finish(b, &b->reply);
			return 1;
		}
		snprintf(ehlo, sizeof ehlo, "EHLO %s", b->hostname);
		send_line(b, ehlo);
		bev_push(b->bev);
		b->state = B_EHLO;
		smtp_reply_init(&b->reply);
		return 0;
	case B_EHLO:
		if (b->reply.code / 100 == 2) {
			ehlo_caps_parse(&b->reply, &b->caps);
			b->pool->caps = b->caps;
			b->pool->caps_known = 1;
			b->state = B_IDLE;
		} else {
			b->state = B_DEAD;
		}
		finish(b, &b->reply);
		return 1;
	case B_WAIT:
		if (b->gcb && b->greplied + 1 < b->ngroup && b->reply.code != 421) {
			/* A reply inside a group: report it and go on with the group. */
			b->gcb(b->arg, b->greplied++, &b->reply);
			smtp_reply_init(&b->reply);
			if (b->gsent == b->greplied) {
				send_line(b, b->group[b->gsent++]);
				bev_push(b->bev);
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
		if (b->state == B_IDLE || b->state == B_MESSAGE) {
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
		if (step == REPLY_DONE && on_reply(b))
			return; /* a callback ran: b may be gone */
	}
}

static void event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct backend *b = ctx;

	if (what & BEV_EVENT_CONNECTED) {
		b->state = B_BANNER;
		sock_nodelay(bufferevent_getfd(bev));
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		die(b, "timeout");
	else if (what & BEV_EVENT_EOF)
		die(b, "connection closed by backend");
	else
		die(b, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void write_cb(struct bufferevent *bev, void *ctx)
{
	bev_pushed(bev);
}

static void defer_cb(evutil_socket_t fd, short what, void *ctx)
{
	die(ctx, "connect failed");
}

struct backend *backend_open(struct backend_pool *pool, const struct config *cfg, backend_cb cb,
                             void *arg)
{
	struct event_base *base = pool->base;
	struct backend *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	b->pool = pool;
	snprintf(b->hostname, sizeof b->hostname, "%s", cfg->hostname);
	memcpy(&b->addr, &cfg->backend, cfg->backend_len);
	b->addrlen = cfg->backend_len;
	b->cmd_timeout = cfg->backend_timeout;
	b->data_timeout = cfg->backend_data_timeout;
	b->cb = cb;
	b->arg = arg;
	smtp_reply_init(&b->reply);
	b->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	b->defer = evtimer_new(base, defer_cb, b);
	if (!b->bev || !b->defer) {
		backend_free(b);
		return NULL;
	}
	bufferevent_setcb(b->bev, read_cb, write_cb, event_cb, b);
	bufferevent_setwatermark(b->bev, EV_READ, 0, MOAT_BACKEND_REPLY_MAX * 2);
	set_timeout(b, b->cmd_timeout < MOAT_BACKEND_CONNECT_TIMEOUT ? b->cmd_timeout
	                                                            : MOAT_BACKEND_CONNECT_TIMEOUT);
	bufferevent_enable(b->bev, EV_READ); /* writes: bev_push */
	b->state = B_CONNECTING;
	if (bufferevent_socket_connect(b->bev, (const struct sockaddr *)&cfg->backend,
	                               (int)cfg->backend_len) < 0) {
		/* Callbacks never run inside the caller's call. */
		struct timeval now = {0, 0};

		evtimer_add(b->defer, &now);
	}
	return b;
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
	bev_push(b->bev);
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
	bev_push(b->bev);
	return 0;
}

struct evbuffer *backend_message_buffer(struct backend *b)
{
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
	bev_push(b->bev);
	return 0;
}

int backend_idle(const struct backend *b)
{
	return b && b->state == B_IDLE;
}

/* ---- the pool ---------------------------------------------------------------
 * A pooled connection that the backend closes (its idle timeout) or that
 * stays unused for backend_cache_time seconds is dropped. */
struct backend_pool *backend_pool_new(struct event_base *base)
{
	struct backend_pool *p = calloc(1, sizeof *p);

	if (p)
		p->base = base;
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

void backend_release(struct backend_pool *p, struct backend *b, const struct config *cfg)
{
	if (!b)
		return;
	if (b->state != B_IDLE || p->nidle == MOAT_BACKEND_POOL_MAX || !b->bev || cfg->backend_cache_time <= 0 ||
	    evbuffer_get_length(bufferevent_get_input(b->bev)) ||
	    b->addrlen != cfg->backend_len || memcmp(&b->addr, &cfg->backend, b->addrlen) != 0) {
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

		if (b->state == B_IDLE && b->addrlen == cfg->backend_len &&
		    memcmp(&b->addr, &cfg->backend, b->addrlen) == 0 &&
		    snprintf(b->hostname, sizeof b->hostname, "%s", cfg->hostname) > 0) {
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

void backend_free(struct backend *b)
{
	if (!b)
		return;
	if (b->bev && b->state == B_IDLE) {
		/* Best effort; the socket closes right after. */
		send_line(b, "QUIT");
		bev_push(b->bev);
	}
	if (b->bev)
		bufferevent_free(b->bev);
	if (b->defer)
		event_free(b->defer);
	free(b);
}

/* Start-up probe: connect, read EHLO caps, quit. */
static void probe_cancel(struct backend_pool *p)
{
	backend_free(p->probe);
	p->probe = NULL;
}

static void probe_cb(void *arg, const struct smtp_reply *r)
{
	struct backend_pool *p = arg;

	if (!r || r->code / 100 != 2)
		log_warn("backend_probe", "backend did not answer EHLO: SMTPUTF8 and DSN not advertised until it does");
	else
		log_info("backend_probe", "backend ready (smtputf8=%d dsn=%d size=%lu xforward=%d)", p->caps.smtputf8,
		         p->caps.dsn, p->caps.size, p->caps.xforward);
	probe_cancel(p);
}

void backend_probe(struct backend_pool *p, const struct config *cfg)
{
	probe_cancel(p);
	p->probe = backend_open(p, cfg, probe_cb, p);
}

void backend_pool_free(struct backend_pool *p)
{
	if (!p)
		return;
	while (p->nidle > 0)
		backend_free(p->idle[--p->nidle]);
	probe_cancel(p);
	free(p);
}

/* metrics_http.c - metrics_listen: /metrics, /healthz and /readyz over
 * HTTP/1.x (docs/metrics.md).
 *
 * One listening socket, made before the workers fork and shared by them:
 * whichever worker's loop accepts a request answers it, from the counters
 * every worker shares (proxy/lib/metrics.h), so one scrape sees all of
 * moat, and a worker that is stuck or restarting leaves the others to
 * answer. A request is one bounded head (MOAT_HTTP_REQUEST_MAX bytes within
 * MOAT_HTTP_TIMEOUT seconds, parsed by proxy/lib/httpreq.c), one small
 * response, then the connection closes; at most MOAT_HTTP_CONNS_MAX at once
 * per worker, so a slow or broken HTTP client costs only itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "checks/checks.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/httpreq.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/text.h"
#include "proxy/listener.h"
#include "proxy/metrics_http.h"
#include "rules/rules.h"

#define METRICS_BACKLOG 64

struct http_conn {
	struct server *srv;
	struct bufferevent *bev;
	struct event *deadline;
	struct http_conn *prev, *next; /* srv->http: freed when the worker stops */
};

/* The label sets of the layers above, for the exposition. */
static void fill_names(struct metrics_names *n)
{
	memset(n, 0, sizeof *n);
	for (int s = 0; s < STAGE_COUNT && s < METRICS_STAGES_MAX; s++)
		n->stages[n->nstages++] = rules_stage_name((enum rule_stage)s);
	for (int k = 0; k < LISTENER_KINDS && k < METRICS_STAGES_MAX; k++)
		n->listeners[n->nlisteners++] = rules_listener_name((enum listener_kind)k);
	checks_metrics_names(n);
}

int metrics_http_setup(struct server *srv)
{
	const struct config *c = srv->cfg;
	struct metrics_names names;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char ip[64];

	srv->metrics_fd = -1;
	if (!c->metrics_listen_len)
		return 0;
	fill_names(&names);
	if (metrics_init(srv->nworkers, &names) < 0) {
		log_error("metrics", "cannot map the shared counters: %s", strerror(errno));
		return -1;
	}
	sockaddr_ntop((const struct sockaddr *)&c->metrics_listen, ip, sizeof ip);
	srv->metrics_fd = bind_socket((const struct sockaddr *)&c->metrics_listen, c->metrics_listen_len, 1);
	if (srv->metrics_fd < 0 || listen(srv->metrics_fd, METRICS_BACKLOG) < 0 ||
	    getsockname(srv->metrics_fd, (struct sockaddr *)&ss, &len) < 0) {
		log_error("metrics", "cannot listen on %s port %d (metrics_listen): %s", ip,
		          sockaddr_port((const struct sockaddr *)&c->metrics_listen), strerror(errno));
		return -1;
	}
	{
		struct jline j;
		char addr[96];

		sockaddr_ntop((struct sockaddr *)&ss, ip, sizeof ip);
		snprintf(addr, sizeof addr, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
		         sockaddr_port((struct sockaddr *)&ss));
		jl_begin(&j, "info", "metrics_listening");
		jl_str(&j, "addr", addr);
		jl_emit(&j);
	}
	return 0;
}

static void conn_free(struct http_conn *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		h->srv->http = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->srv->nhttp--;
	event_free(h->deadline);
	bufferevent_free(h->bev);
	free(h);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg); /* EOF, an error or the timeout: nothing more to say */
}

/* The whole exchange, answer and drain included, within MOAT_HTTP_TIMEOUT
 * of the accept, however the client trickles. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

/* The rest of what the client sends is read and dropped until it closes
 * (or the timeout): closing with unread input would reset the connection,
 * and the client could lose the response. */
static void discard_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

static void written_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *h = arg;

	shutdown(bufferevent_getfd(bev), SHUT_WR);
	discard_cb(bev, h);
	bufferevent_setcb(bev, discard_cb, NULL, event_cb, h);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_READ);
}

static void respond(struct http_conn *h, int status, const char *reason, const char *type, const char *body,
                    size_t len, int head_only)
{
	struct evbuffer *out = bufferevent_get_output(h->bev);

	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	                    status, reason, type, len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head_only)
		evbuffer_add(out, body, len);
	bufferevent_disable(h->bev, EV_READ);
	bufferevent_setcb(h->bev, NULL, written_cb, event_cb, h);
	bufferevent_enable(h->bev, EV_WRITE);
}

static void text(struct http_conn *h, int status, const char *reason, const char *body, int head_only)
{
	respond(h, status, reason, "text/plain; charset=utf-8", body, strlen(body), head_only);
}

static void route(struct http_conn *h, const struct http_request *req)
{
	uint64_t now = clock_ms();
	uint64_t window = (uint64_t)h->srv->cfg->backend_probe_interval * MOAT_READY_PROBES * 1000;
	int head = strcmp(req->method, "HEAD") == 0;

	if (!head && strcmp(req->method, "GET") != 0) {
		text(h, 405, "Method Not Allowed", "only GET and HEAD\n", 0);
	} else if (strcmp(req->path, "/metrics") == 0) {
		size_t len = 0;
		char *body = metrics_render(now, window, &len);

		if (!body)
			text(h, 500, "Internal Server Error", "out of memory\n", head);
		else
			respond(h, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len, head);
		free(body);
	} else if (strcmp(req->path, "/healthz") == 0) {
		if (metrics_healthy(now))
			text(h, 200, "OK", "ok\n", head);
		else
			text(h, 503, "Service Unavailable", "a worker's event loop is stuck\n", head);
	} else if (strcmp(req->path, "/readyz") == 0) {
		if (metrics_ready(now, window))
			text(h, 200, "OK", "ready\n", head);
		else
			text(h, 503, "Service Unavailable",
			     !metrics_healthy(now) ? "not ready: a worker's event loop is stuck\n"
			     : h->srv->stopping    ? "not ready: stopping\n"
			                           : "not ready: not listening, or the backend does not answer\n",
			     head);
	} else {
		text(h, 404, "Not Found", "not found: /metrics, /healthz, /readyz\n", head);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	struct http_request req;
	enum http_parse st;

	if (len > MOAT_HTTP_REQUEST_MAX)
		len = MOAT_HTTP_REQUEST_MAX;
	st = http_parse_request((const char *)evbuffer_pullup(in, (ssize_t)len), len, MOAT_HTTP_REQUEST_MAX, &req);
	if (st == HTTP_MORE)
		return;
	if (st == HTTP_DONE)
		route(h, &req);
	else if (st == HTTP_TOO_BIG)
		text(h, 431, "Request Header Fields Too Large", "request too large\n", 0);
	else
		text(h, 400, "Bad Request", "bad request\n", 0);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {MOAT_HTTP_TIMEOUT, 0};
	struct http_conn *h;

	if (srv->nhttp >= MOAT_HTTP_CONNS_MAX || !(h = calloc(1, sizeof *h))) {
		close(fd);
		return;
	}
	h->srv = srv;
	h->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	h->deadline = evtimer_new(srv->base, deadline_cb, h);
	if (!h->bev || !h->deadline) {
		if (h->bev)
			bufferevent_free(h->bev);
		else
			close(fd);
		if (h->deadline)
			event_free(h->deadline);
		free(h);
		return;
	}
	srv->nhttp++;
	h->next = srv->http;
	if (h->next)
		h->next->prev = h;
	srv->http = h;
	bufferevent_setwatermark(h->bev, EV_READ, 0, MOAT_HTTP_REQUEST_MAX + 1);
	evtimer_add(h->deadline, &tv);
	bufferevent_setcb(h->bev, read_cb, NULL, event_cb, h);
	bufferevent_enable(h->bev, EV_READ);
}

int metrics_http_start(struct server *srv)
{
	if (srv->metrics_fd < 0)
		return 0;
	/* the listener owns this process's copy of the socket from now */
	srv->metrics = evconnlistener_new(srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1, srv->metrics_fd);
	if (!srv->metrics) {
		log_error("metrics", "cannot accept on metrics_listen: %s", strerror(errno));
		return -1;
	}
	srv->metrics_fd = -1;
	return 0;
}

void metrics_http_stop(struct server *srv)
{
	if (srv->metrics)
		evconnlistener_free(srv->metrics);
	srv->metrics = NULL;
	while (srv->http)
		conn_free(srv->http);
}

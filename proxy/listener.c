/* listener.c - accept connections; refuse those over max_connections */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/listener.h>

#include "limits.h"
#include "listener.h"
#include "log.h"
#include "replies.h"
#include "session.h"

/* Over the limit: one best-effort 421 without a session, then close. The
 * socket is non-blocking; a reply that does not fit is simply lost. */
static void refuse(struct server *srv, int fd, const struct sockaddr *sa)
{
	char buf[512], ip[64];
	struct jline j;
	int n = reply_format(buf, sizeof buf, R_TOO_MANY_CONN, srv->cfg->hostname, NULL);

	if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0;
	close(fd);
	sockaddr_ntop(sa, ip, sizeof ip);
	jl_begin(&j, "info", "decision");
	jl_str(&j, "client_ip", ip);
	jl_str(&j, "stage", "connect");
	jl_str(&j, "action", "tempfail");
	jl_int(&j, "code", 421);
	jl_str(&j, "reason", "too many connections");
	jl_emit(&j);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	struct server *srv = arg;

	if (srv->stopping) {
		close(fd);
		return;
	}
	if (srv->nsessions >= srv->cfg->max_connections) {
		refuse(srv, fd, sa);
		return;
	}
	session_start(srv, fd, sa, (socklen_t)salen);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	int i;

	if (srv->stopping)
		return;
	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_enable(srv->listeners[i]);
}

/* Out of descriptors (EMFILE, ENFILE) or memory: the pending connection
 * stays in the backlog and the listener would fire again at once, so
 * accepting pauses briefly (logged once per pause) while sessions end. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {0, MOAT_ACCEPT_PAUSE_MS * 1000};
	int e = errno, i;

	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_error("accept", "accept failed: %s", strerror(e));
		return;
	}
	if (!srv->accept_pause)
		srv->accept_pause = evtimer_new(srv->base, accept_resume, srv);
	if (!srv->accept_pause || evtimer_pending(srv->accept_pause, NULL))
		return;
	log_error("accept", "accept failed: %s; pausing %d ms (%d sessions open)", strerror(e),
	          MOAT_ACCEPT_PAUSE_MS, srv->nsessions);
	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_disable(srv->listeners[i]);
	evtimer_add(srv->accept_pause, &tv);
}

/* A listening socket; IPv6 ones are IPv6-only so that "0.0.0.0:25, [::]:25"
 * can both be bound. Returns the fd or -1. */
static int bind_socket(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (sa->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, sa, len) < 0 || listen(fd, MOAT_LISTEN_BACKLOG) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int listeners_open(struct server *srv)
{
	const struct config *c = srv->cfg;
	int i;

	for (i = 0; i < c->nlisten; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		struct evconnlistener *l;
		char ip[64];

		int fd = bind_socket((const struct sockaddr *)&c->listen[i], c->listen_len[i]);

		l = fd < 0 ? NULL : evconnlistener_new(srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (!l) {
			if (fd >= 0)
				close(fd);
			sockaddr_ntop((const struct sockaddr *)&c->listen[i], ip, sizeof ip);
			log_error("listen", "cannot listen on %s port %d: %s", ip,
			          sockaddr_port((const struct sockaddr *)&c->listen[i]), strerror(errno));
			return -1;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		srv->listeners[srv->nlisteners++] = l;
		/* Log the bound address: with port 0 the kernel chose it. */
		if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len) == 0) {
			struct jline j;
			char addr[96];

			sockaddr_ntop((struct sockaddr *)&ss, ip, sizeof ip);
			snprintf(addr, sizeof addr, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
			         sockaddr_port((struct sockaddr *)&ss));
			jl_begin(&j, "info", "listening");
			jl_str(&j, "addr", addr);
			jl_bool(&j, "proxy_protocol", c->proxy_protocol);
			jl_emit(&j);
		}
	}
	return 0;
}

void listeners_close(struct server *srv)
{
	int i;

	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->nlisteners = 0;
	if (srv->accept_pause) {
		event_free(srv->accept_pause);
		srv->accept_pause = NULL;
	}
}

/* listener.c - accept connections; refuse those over max_connections */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/listener.h>

#include "proxy/conntable.h"
#include "proxy/decision.h"
#include "proxy/lib/bounds.h"
#include "proxy/listener.h"
#include "proxy/lib/log.h"
#include "proxy/lib/replies.h"
#include "proxy/session.h"

/* Over the limit: one best-effort 421 without a session, then close. The
 * socket is non-blocking; a reply that does not fit is simply lost. */
static void refuse(struct server *srv, int fd, const struct sockaddr *sa)
{
	char buf[512], ip[64];
	struct decision d = {.stage = STAGE_CONNECT, .reason = "too many connections", .client_ip = ip};
	int n = reply_format(buf, sizeof buf, R_TOO_MANY_CONN, srv->cfg->hostname, NULL);

	if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0;
	close(fd);
	sockaddr_ntop(sa, ip, sizeof ip);
	decision_set_reply(&d, R_TOO_MANY_CONN);
	decision_log(&d, NULL, NULL);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	struct server *srv = arg;

	if (srv->stopping) {
		close(fd);
		return;
	}
	/* counted across the workers; the session gives it back */
	if (!conntable_take(srv->conns, srv->worker, srv->cfg->max_connections)) {
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
 * can both be bound; with several workers each has its own socket on the
 * same address (SO_REUSEPORT: the kernel spreads connections). Returns the
 * fd or -1. */
static int bind_socket(const struct sockaddr *sa, socklen_t len, int reuseport)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
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

static void log_listening(int fd, const struct config *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct jline j;
	char ip[64], addr[96];

	/* Log the bound address: with port 0 the kernel chose it. */
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	sockaddr_ntop((struct sockaddr *)&ss, ip, sizeof ip);
	snprintf(addr, sizeof addr, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
	         sockaddr_port((struct sockaddr *)&ss));
	jl_begin(&j, "info", "listening");
	jl_str(&j, "addr", addr);
	jl_bool(&j, "proxy_protocol", c->proxy_protocol);
	jl_emit(&j);
}

int listeners_bind(const struct config *c, int nworkers, int fds[][MOAT_LISTEN_MAX])
{
	int i, w;

	for (i = 0; i < c->nlisten; i++) {
		struct sockaddr_storage sa;
		socklen_t len = c->listen_len[i];
		char ip[64];

		memcpy(&sa, &c->listen[i], len);
		for (w = 0; w < nworkers; w++) {
			fds[w][i] = bind_socket((struct sockaddr *)&sa, len, nworkers > 1);
			if (fds[w][i] < 0) {
				sockaddr_ntop((const struct sockaddr *)&c->listen[i], ip, sizeof ip);
				log_error("listen", "cannot listen on %s port %d: %s", ip,
				          sockaddr_port((const struct sockaddr *)&c->listen[i]), strerror(errno));
				return -1;
			}
			/* Port 0: the other workers' sockets take the port the kernel chose. */
			if (w == 0 && getsockname(fds[0][i], (struct sockaddr *)&sa, &len) != 0)
				return -1;
		}
		log_listening(fds[0][i], c);
	}
	return 0;
}

int listeners_start(struct server *srv, const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct evconnlistener *l = evconnlistener_new(srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE,
		                                              -1, fds[i]);

		if (!l) {
			log_error("listen", "cannot accept on a listening socket: %s", strerror(errno));
			return -1;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		srv->listeners[srv->nlisteners++] = l;
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

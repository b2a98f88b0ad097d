/* refused.c - a connection refused at connect lingers for the client's commands (see refused.h) */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/bevpush.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/linereader.h"
#include "proxy/lib/log.h"
#include "proxy/lib/replies.h"
#include "proxy/lib/smtp_parse.h"
#include "proxy/refused.h"
#include "proxy/server.h"

struct refused {
	struct server *srv;
	struct bufferevent *bev;
	struct event *deadline;    /* the whole linger, however the client trickles */
	struct line_reader reader;
	size_t bytes;              /* taken from the client so far */
	int cmds;
	int closing;               /* the last reply is being flushed */
	struct refused *next, *prev;
};

static void refused_free(struct refused *r)
{
	struct server *srv = r->srv;

	if (r->prev)
		r->prev->next = r->next;
	else
		srv->refused = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (srv->nrefused-- == MOAT_REFUSED_LINGER_MAX)
		srv->refused_full_logged = 0;
	bufferevent_free(r->bev);
	event_free(r->deadline);
	free(r);
}

static void reply(struct refused *r, enum reply_id id)
{
	char buf[MOAT_REPLY_LINE_MAX + 1];
	int n = reply_format(buf, sizeof buf, id, r->srv->cfg->hostname, NULL);

	bufferevent_write(r->bev, buf, (size_t)n);
}

/* No more input: the end, once what is queued is flushed. */
static void end(struct refused *r)
{
	r->closing = 1;
	bufferevent_disable(r->bev, EV_READ);
	event_del(r->deadline);
}

/* The last reply, then the end. */
static void finish(struct refused *r, enum reply_id id)
{
	if (r->closing)
		return;
	reply(r, id);
	end(r);
}

/* Answer every whole command line the client sent: QUIT 221, else 503. */
static void answer(struct refused *r)
{
	struct evbuffer *in = bufferevent_get_input(r->bev);
	size_t before = evbuffer_get_length(in);
	char line[MOAT_CMD_LINE_MAX + 1];
	size_t len;

	while (!r->closing) {
		enum line_read lr = line_read(&r->reader, in, line, &len);
		struct smtp_cmd c;

		if (lr == LINE_MORE)
			break;
		if (lr == LINE_SKIPPED)
			continue;
		if (++r->cmds > MOAT_REFUSED_CMDS_MAX)
			finish(r, R_TOO_MANY_ERRORS);
		else if (lr == LINE_OK && !memchr(line, '\0', len) && smtp_cmd_parse(line, &c) == 0 &&
		         c.verb == V_QUIT)
			finish(r, R_BYE);
		else
			reply(r, R_REFUSED_CMD);
	}
	r->bytes += before - evbuffer_get_length(in);
	if (!r->closing && r->bytes + evbuffer_get_length(in) > MOAT_REFUSED_INPUT_MAX)
		finish(r, R_TOO_MANY_ERRORS);
}

/* Write what is queued; free once the last reply is out. */
static void push(struct refused *r)
{
	bev_push(r->bev);
	if (r->closing && evbuffer_get_length(bufferevent_get_output(r->bev)) == 0)
		refused_free(r);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct refused *r = arg;

	answer(r);
	push(r);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct refused *r = arg;

	if (r->closing)
		refused_free(r);
	else
		bev_pushed(bev);
}

/* EOF: what the client sent is answered (read_cb came first); then the end.
 * An error: the client is gone. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct refused *r = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		end(r);
		push(r);
		return;
	}
	refused_free(r);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct refused *r = arg;

	finish(r, R_TIMEOUT);
	push(r);
}

/* Below the cap (said once when it is reached). */
static int room(struct server *srv)
{
	if (srv->nrefused < MOAT_REFUSED_LINGER_MAX)
		return 1;
	if (!srv->refused_full_logged)
		log_warn("refused", "%d refused connections linger: further refusals close at once",
		         srv->nrefused);
	srv->refused_full_logged = 1;
	return 0;
}

int refused_linger(struct server *srv, struct bufferevent *bev, int timeout)
{
	struct timeval tv = {timeout < MOAT_REFUSED_LINGER_SECS ? timeout : MOAT_REFUSED_LINGER_SECS, 0};
	struct timeval wr = {MOAT_REFUSED_LINGER_SECS, 0};
	struct refused *r;

	if (!room(srv))
		return -1;
	if (!(r = calloc(1, sizeof *r)) || !(r->deadline = evtimer_new(srv->base, deadline_cb, r))) {
		free(r);
		return -1;
	}
	r->srv = srv;
	r->bev = bev;
	r->reader.max = MOAT_CMD_LINE_MAX;
	r->next = srv->refused;
	if (srv->refused)
		srv->refused->prev = r;
	srv->refused = r;
	srv->nrefused++;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, r);
	bufferevent_setwatermark(bev, EV_READ, 0, MOAT_REFUSED_INPUT_MAX + 1);
	bufferevent_set_timeouts(bev, NULL, &wr); /* a client that does not read */
	bufferevent_enable(bev, EV_READ);
	evtimer_add(r->deadline, &tv);
	answer(r);
	push(r);
	return 0;
}

void refused_linger_fd(struct server *srv, int fd, const char *text, size_t len, int timeout)
{
	struct bufferevent *bev = NULL;

	if (room(srv)) {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
		sock_nodelay(fd);
	}
	if (bev && bufferevent_write(bev, text, len) == 0 && refused_linger(srv, bev, timeout) == 0)
		return;
	if (bev) {
		bufferevent_setfd(bev, -1); /* closed below, after the best-effort reply */
		bufferevent_free(bev);
	}
	/* Over the cap: one best-effort reply and close, as before lingering. */
	if (send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0;
	close(fd);
}

void refused_close_all(struct server *srv)
{
	while (srv->refused)
		refused_free(srv->refused);
}

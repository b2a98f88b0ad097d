/* store_drive.c - for the end-to-end tests: the store (store.h) driven from
 * standard input, against a real redis-server or the memory table, on a
 * libevent loop as a worker's.
 *
 *   store_drive [--redis ADDR] [--password P] [--db N] [--timeout MS]
 *
 * Each input line holds commands separated by " ; ", all made before the
 * loop turns again (so they are pipelined on one connection):
 *   grey TRIPLET CLIENT DELAY RETRY_WINDOW PASS_TTL AUTO_ALLOW AUTO_ALLOW_TTL
 *   count KEY ADD WINDOW
 *   state                      (store_redis_up, answered at once)
 *   cancel                     (cancels every call still unanswered: as a
 *                              closing session; their answers never come)
 *   quit                       (cancels them all and exits at once)
 * Each answer is one output line, in the order the answers come:
 *   grey N STATE RETRY_IN MS   (N: the command's place in its line; MS: from
 *   count N COUNT RESET_AT SHARED MS   the call to the answer)
 *   state N UP
 * The log (JSON lines) goes to standard error. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy/lib/log.h"
#include "proxy/store.h"

static const char *const grey_names[] = {"FIRST", "EARLY", "PASSED", "ALLOWED", "SKIPPED"};

struct call {
	int n;
	struct timespec t0;
	struct store_req *req;
	struct call *prev, *next; /* unanswered */
};

static struct call *calls;

static struct store *st;
static int outstanding, at_eof;
static struct event_base *base;

static long long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000LL + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void unlink_call(struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

static void done(struct call *c)
{
	unlink_call(c);
	free(c);
	fflush(stdout);
	if (--outstanding == 0 && at_eof)
		event_base_loopexit(base, NULL);
}

static void on_grey(void *arg, enum store_grey s, long long retry_in)
{
	struct call *c = arg;

	printf("grey %d %s %lld %lld\n", c->n, grey_names[s], retry_in, ms_since(&c->t0));
	done(c);
}

static void on_count(void *arg, const struct store_count *r)
{
	struct call *c = arg;

	printf("count %d %lld %lld %d %lld\n", c->n, r->count, r->reset_at, r->shared, ms_since(&c->t0));
	done(c);
}

static void command(char *cmd, int n)
{
	char *w[9], *save = NULL;
	int nw = 0;
	struct call *c;

	for (char *t = strtok_r(cmd, " ", &save); t && nw < 9; t = strtok_r(NULL, " ", &save))
		w[nw++] = t;
	if (nw == 1 && (strcmp(w[0], "cancel") == 0 || strcmp(w[0], "quit") == 0)) {
		int n_cancelled = 0;

		while (calls) {
			store_cancel(calls->req);
			done(calls);
			n_cancelled++;
		}
		printf("%s %d %d\n", w[0], n, n_cancelled);
		fflush(stdout);
		if (w[0][0] == 'q')
			event_base_loopexit(base, NULL);
		return;
	}
	if (nw == 1 && strcmp(w[0], "state") == 0) {
		printf("state %d %d\n", n, store_redis_up(st));
		fflush(stdout);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->n = n;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	outstanding++;
	c->next = calls;
	if (calls)
		calls->prev = c;
	calls = c;
	if (nw == 8 && strcmp(w[0], "grey") == 0) {
		struct store_grey_params p = { atoi(w[3]), atoi(w[4]), atoi(w[5]), atoi(w[6]), atoi(w[7]) };

		if ((c->req = store_greylist(st, w[1], w[2], &p, on_grey, c)))
			return;
	} else if (nw == 4 && strcmp(w[0], "count") == 0) {
		if ((c->req = store_count(st, w[1], atoll(w[2]), atoi(w[3]), on_count, c)))
			return;
	}
	printf("error %d bad command or no memory\n", n);
	done(c);
}

static void on_input(struct bufferevent *bev, void *arg)
{
	char *line;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF))) {
		char *save = NULL;
		int n = 0;

		for (char *cmd = strtok_r(line, ";", &save); cmd; cmd = strtok_r(NULL, ";", &save)) {
			while (*cmd == ' ')
				cmd++;
			if (*cmd)
				command(cmd, n++);
		}
		free(line);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	at_eof = 1;
	bufferevent_disable(bev, EV_READ);
	if (outstanding == 0)
		event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
	struct store_config cfg = { NULL, NULL, 0, 1000 };
	struct store_shm *shm;
	struct bufferevent *in;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--redis") == 0)
			cfg.redis = argv[i + 1];
		else if (strcmp(argv[i], "--password") == 0)
			cfg.redis_password = argv[i + 1];
		else if (strcmp(argv[i], "--db") == 0)
			cfg.redis_db = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--timeout") == 0)
			cfg.redis_timeout = atoi(argv[i + 1]);
	}
	signal(SIGPIPE, SIG_IGN);
	log_open(LOG_TO_STDERR, NULL);
	base = event_base_new();
	shm = store_shm_new();
	st = base && shm ? store_new(base, shm, &cfg) : NULL;
	in = base ? bufferevent_socket_new(base, 0, 0) : NULL;
	if (!st || !in) {
		fprintf(stderr, "store_drive: cannot start\n");
		return 1;
	}
	bufferevent_setcb(in, on_input, NULL, on_event, NULL);
	bufferevent_enable(in, EV_READ);
	event_base_dispatch(base);
	bufferevent_free(in);
	store_free(st);
	store_shm_free(shm);
	event_base_free(base);
	return 0;
}

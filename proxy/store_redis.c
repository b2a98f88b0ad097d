/* store_redis.c - a worker's connection to Redis (see store_req.h, store.h).
 *
 * hiredis's asynchronous API on the worker's loop (its libevent adapter):
 * one connection, every call one EVALSHA of store_lua.c's scripts
 * pipelined on it (EVAL once Redis says NOSCRIPT), the replies coming back
 * in order. Nothing blocks: the connect is non-blocking, to a numeric
 * address or a socket path (store_addr.h: hiredis would resolve a name
 * with getaddrinfo), and AUTH, SELECT and a PING go first on it.
 *
 * State, as logged and counted (metrics_redis_state): up once the PING is
 * answered, down on a failed connect, a closed connection, an error to
 * AUTH or SELECT, or a deadline missed. Calls are sent only while up (and
 * while the first connection is being made, at start); else they answer
 * at once as faults. A connection that faults is freed and another made
 * after a backoff (MOAT_STORE_REDIS_BACKOFF_MIN_MS doubling to _MAX_MS,
 * with jitter; back to the minimum once up).
 *
 * Deadlines: each call is due redis_timeout ms after it was made, the
 * connection's set-up likewise after the connect. One timer watches the
 * earliest; when it passes, the connection is freed: Redis answers in
 * order, so the calls behind a late one would be late too. Freeing a
 * hiredis context calls back every command it holds with no reply: that
 * is how each call comes back as a fault, and why a request is never
 * freed while hiredis holds it (its callback hands it back to store.c,
 * which frees it after the answer, or at once if cancelled). Calls sent
 * in order have deadlines in order; those sent again as EVAL are on a
 * second list, in order too: the earliest deadline is the head of one of
 * the two. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/store_addr.h"
#include "proxy/store_lua.h"
#include "proxy/store_req.h"

enum state { ST_START, ST_UP, ST_DOWN };


struct store_redis {
	struct event_base *base;
	struct store *st;
	struct store_redis_addr addr;
	char where[160];              /* for the log: "127.0.0.1:6379", "[::1]:6379", the path */
	char *password;               /* NULL: no AUTH */
	int db, timeout_ms;
	redisAsyncContext *ac;        /* NULL: waiting to reconnect */
	int setup_done;               /* the PING after AUTH and SELECT answered */
	long long setup_deadline;     /* monotonic ms, while !setup_done */
	enum state state;
	int error_logged;             /* an error reply was logged on this connection */
	enum metrics_redis_error drop_why; /* what the calls of a dropped connection count as */
	struct store_list sent, resent;     /* calls hiredis holds, by deadline */
	int npending;
	struct event *deadline_ev, *retry_ev;
	int backoff_ms;
	unsigned rng;
	char sha_grey[41], sha_count[41];
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The earliest deadline of the connection's set-up and its calls; -1: none. */
static long long earliest(const struct store_redis *rd)
{
	long long due = -1;

	if (rd->ac && !rd->setup_done)
		due = rd->setup_deadline;
	if (rd->sent.head && (due < 0 || rd->sent.head->deadline_ms < due))
		due = rd->sent.head->deadline_ms;
	if (rd->resent.head && (due < 0 || rd->resent.head->deadline_ms < due))
		due = rd->resent.head->deadline_ms;
	return due;
}

/* The timer at the earliest deadline, or off. */
static void arm(struct store_redis *rd)
{
	long long due = earliest(rd), now;
	struct timeval tv;

	if (due < 0) {
		event_del(rd->deadline_ev);
		return;
	}
	now = mono_ms();
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)(due % 1000) * 1000;
	event_add(rd->deadline_ev, &tv);
}

static void set_state(struct store_redis *rd, enum state s, const char *why)
{
	if (s == rd->state)
		return;
	rd->state = s;
	metrics_redis_state(log_get_worker(), s == ST_UP); /* before the line: who reads it sees the count */
	if (s == ST_UP)
		log_info("redis", "Redis at %s answers: greylisting and rate limits shared through it", rd->where);
	else
		log_warn("redis", "Redis at %s does not answer (%s): greylisting skipped and rate limits counted "
		         "per process until it does", rd->where, why);
}

static void connect_now(struct store_redis *rd);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	connect_now(arg);
}

/* Another connection after the backoff, with jitter (half to all of it). */
static void retry_later(struct store_redis *rd)
{
	int ms = rd->backoff_ms / 2 + (int)(rand_r(&rd->rng) % (unsigned)(rd->backoff_ms / 2 + 1));
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	rd->backoff_ms = rd->backoff_ms * 2 > MOAT_STORE_REDIS_BACKOFF_MAX_MS ? MOAT_STORE_REDIS_BACKOFF_MAX_MS
	                                                                      : rd->backoff_ms * 2;
	event_add(rd->retry_ev, &tv);
}

/* The connection faulted: down, freed (every call it holds comes back as
 * a fault, counted as metric), another one later. */
static void drop(struct store_redis *rd, const char *why, enum metrics_redis_error metric)
{
	redisAsyncContext *ac = rd->ac;

	rd->drop_why = metric;
	set_state(rd, ST_DOWN, why);
	rd->ac = NULL;
	if (ac)
		redisAsyncFree(ac); /* inside a hiredis callback: freed when it returns */
	arm(rd);
	retry_later(rd);
}

static void fault(struct store_req *r, enum metrics_redis_error why)
{
	metrics_redis_error(why);
	store_answered(r); /* its answer is the fault's, filled in advance */
}

/* A reply of the scripts: {a, b}, both integers; -1 otherwise. */
static int two_integers(const redisReply *rep, long long *a, long long *b)
{
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		return -1;
	*a = rep->element[0]->integer;
	*b = rep->element[1]->integer;
	return 0;
}

/* 0, or -1 for a reply of the wrong shape. */
static int take_answer(struct store_req *r, const redisReply *rep)
{
	long long a, b;

	if (two_integers(rep, &a, &b) < 0)
		return -1;
	if (r->kind == REQ_GREY) {
		if (a < 0 || a > 3 || b < 0)
			return -1;
		r->grey = a == 0 ? STORE_GREY_FIRST : a == 1 ? STORE_GREY_EARLY : a == 2 ? STORE_GREY_PASSED
		                                                                         : STORE_GREY_ALLOWED;
		r->retry_in = b;
	} else {
		if (b <= 0) /* a window's end: a second since the epoch */
			return -1;
		r->count.count = a;
		r->count.reset_at = b;
		r->count.shared = 1;
	}
	return 0;
}

static int send_call(struct store_redis *rd, struct store_req *r, int eval);

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_req *r = privdata;
	struct store_redis *rd = ac->data;
	const redisReply *rep = reply;

	store_list_unlink(r->evalsha_failed ? &rd->resent : &rd->sent, r);
	rd->npending--;
	if (!rep) { /* the connection is gone (drop: it was late, or it failed) */
		fault(r, rd->drop_why);
	} else if (rep->type == REDIS_REPLY_ERROR && !r->evalsha_failed && strncmp(rep->str, "NOSCRIPT", 8) == 0 &&
	           rd->ac == ac && send_call(rd, r, 1) == 0) {
		/* sent again as EVAL (it keeps its deadline) */
	} else if (rep->type == REDIS_REPLY_ERROR) {
		if (!rd->error_logged)
			log_warn("redis", "Redis at %s answered an error (%.200s): that call fails open; others may "
			         "too, logged once per connection", rd->where, rep->str);
		rd->error_logged = 1;
		fault(r, MRE_ERROR);
	} else if (take_answer(r, rep) < 0) {
		if (!rd->error_logged)
			log_warn("redis", "Redis at %s answered a store call with a reply of the wrong type (%d): that "
			         "call fails open; logged once per connection", rd->where, rep->type);
		rd->error_logged = 1;
		fault(r, MRE_BAD_REPLY);
	} else {
		store_answered(r);
	}
	if (rd->ac == ac)
		arm(rd);
}

/* AUTH, SELECT, PING: an error or no reply drops the connection; the
 * PING's answer makes it up. */
static void on_setup(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rd = ac->data;
	const redisReply *rep = reply;
	char why[256];

	if (!rep || rd->ac != ac) /* being freed: handled where it was */
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof why, "%s: %.200s", (const char *)privdata, rep->str);
		drop(rd, why, MRE_CONNECTION);
		return;
	}
	if (strcmp(privdata, "PING") == 0) {
		rd->setup_done = 1;
		rd->backoff_ms = MOAT_STORE_REDIS_BACKOFF_MIN_MS;
		set_state(rd, ST_UP, NULL);
		arm(rd);
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct store_redis *rd = ac->data;
	char why[160];

	if (status == REDIS_OK || rd->ac != ac)
		return;
	/* hiredis frees ac after this, calling back what it holds */
	snprintf(why, sizeof why, "connect: %.120s", ac->errstr[0] ? ac->errstr : strerror(errno));
	rd->ac = NULL;
	set_state(rd, ST_DOWN, why);
	arm(rd);
	retry_later(rd);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct store_redis *rd = ac->data;
	char why[160];

	if (rd->ac != ac) /* freed by drop() or store_redis_free() */
		return;
	snprintf(why, sizeof why, "connection lost: %.120s", ac->err ? ac->errstr : "closed by Redis");
	rd->ac = NULL;
	set_state(rd, ST_DOWN, why);
	arm(rd);
	retry_later(rd);
}

static void connect_now(struct store_redis *rd)
{
	redisAsyncContext *ac = rd->addr.is_unix ? redisAsyncConnectUnix(rd->addr.host)
	                                         : redisAsyncConnect(rd->addr.host, rd->addr.port);
	char why[160];

	if (!ac || ac->err || redisLibeventAttach(ac, rd->base) != REDIS_OK) {
		snprintf(why, sizeof why, "connect: %.120s", ac && ac->err ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		set_state(rd, ST_DOWN, why);
		retry_later(rd);
		return;
	}
	ac->data = rd;
	rd->ac = ac;
	rd->setup_done = 0;
	rd->error_logged = 0;
	rd->drop_why = MRE_CONNECTION;
	rd->setup_deadline = mono_ms() + rd->timeout_ms;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (rd->password)
		redisAsyncCommand(ac, on_setup, "AUTH", "AUTH %s", rd->password);
	if (rd->db)
		redisAsyncCommand(ac, on_setup, "SELECT", "SELECT %d", rd->db);
	redisAsyncCommand(ac, on_setup, "PING", "PING");
	arm(rd);
}

static int ttl(int seconds)
{
	return seconds < 1 ? 1 : seconds;
}

/* n in decimal at p (room for 20 digits and a sign); its length. */
static size_t put_ll(char *p, long long n)
{
	char tmp[24];
	unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
	size_t k = 0, len = 0;

	do
		tmp[k++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		p[len++] = '-';
	while (k)
		p[len++] = tmp[--k];
	return len;
}

/* The command in RESP (an array of bulk strings) into buf; its length, or
 * 0 if it does not fit. Made here rather than by hiredis's
 * redisAsyncCommandArgv, whose formatting (sdscatfmt per argument) was
 * the largest part of a call's cost in moat (docs/scaling.md). */
static size_t resp_command(char *buf, size_t size, int argc, const char **argv, const size_t *len)
{
	size_t need = 16, at = 0;

	for (int i = 0; i < argc; i++)
		need += len[i] + 32;
	if (need > size)
		return 0;
	buf[at++] = '*';
	at += put_ll(buf + at, argc);
	buf[at++] = '\r';
	buf[at++] = '\n';
	for (int i = 0; i < argc; i++) {
		buf[at++] = '$';
		at += put_ll(buf + at, (long long)len[i]);
		buf[at++] = '\r';
		buf[at++] = '\n';
		memcpy(buf + at, argv[i], len[i]);
		at += len[i];
		buf[at++] = '\r';
		buf[at++] = '\n';
	}
	return at;
}

/* r's script on the connection (EVALSHA, or EVAL); 0, or -1 if hiredis
 * refused it (the connection is going). */
static int send_call(struct store_redis *rd, struct store_req *r, int eval)
{
	char n[5][24], cmd[4096];
	size_t cmdlen;
	const char *argv[10];
	size_t len[10];
	int argc = 0, nargs;

	argv[argc++] = eval ? "EVAL" : "EVALSHA";
	if (r->kind == REQ_GREY) {
		const struct store_grey_params *p = &r->grey_params;

		argv[argc++] = eval ? store_lua_greylist : rd->sha_grey;
		argv[argc++] = "2";
		argv[argc++] = r->key;
		argv[argc++] = r->key2;
		n[0][put_ll(n[0], p->delay < 0 ? 0 : p->delay)] = '\0';
		n[1][put_ll(n[1], ttl(p->retry_window))] = '\0';
		n[2][put_ll(n[2], ttl(p->pass_ttl))] = '\0';
		n[3][put_ll(n[3], p->auto_allow < 0 ? 0 : p->auto_allow)] = '\0';
		n[4][put_ll(n[4], ttl(p->auto_allow_ttl))] = '\0';
		nargs = 5;
	} else {
		argv[argc++] = eval ? store_lua_count : rd->sha_count;
		argv[argc++] = "1";
		argv[argc++] = r->key;
		n[0][put_ll(n[0], r->add)] = '\0';
		n[1][put_ll(n[1], ttl(r->window))] = '\0';
		nargs = 2;
	}
	for (int i = 0; i < nargs; i++)
		argv[argc++] = n[i];
	for (int i = 0; i < argc; i++)
		len[i] = strlen(argv[i]);
	cmdlen = resp_command(cmd, sizeof cmd, argc, argv, len);
	if (cmdlen ? redisAsyncFormattedCommand(rd->ac, on_reply, r, cmd, cmdlen) != REDIS_OK
	           : redisAsyncCommandArgv(rd->ac, on_reply, r, argc, argv, len) != REDIS_OK)
		return -1;
	r->evalsha_failed = eval;
	store_list_push(eval ? &rd->resent : &rd->sent, r);
	rd->npending++;
	metrics_redis_call();
	return 0;
}

int store_redis_send(struct store_redis *rd, struct store_req *r)
{
	if (!rd->ac || rd->state == ST_DOWN) {
		metrics_redis_error(MRE_DOWN);
		return -1;
	}
	if (rd->npending >= MOAT_STORE_REDIS_PENDING_MAX) {
		metrics_redis_error(MRE_QUEUE_FULL);
		return -1;
	}
	r->deadline_ms = mono_ms() + rd->timeout_ms;
	if (send_call(rd, r, 0) < 0) {
		metrics_redis_error(MRE_CONNECTION);
		return -1;
	}
	r->state = REQ_SENT;
	if (rd->npending == 1)
		arm(rd);
	return 0;
}

/* The earliest deadline passed: the connection is late (or the set-up). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct store_redis *rd = arg;
	char why[64];

	long long due = earliest(rd);

	if (!rd->ac || due < 0 || due > mono_ms()) { /* armed for what has gone since */
		arm(rd);
		return;
	}
	snprintf(why, sizeof why, "no answer within redis_timeout (%d ms)%s", rd->timeout_ms,
	         rd->setup_done ? "" : " of the connect");
	drop(rd, why, MRE_TIMEOUT);
}

static void sha1_hex(const char *text, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL);
	for (unsigned i = 0; i < n && i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct store_redis *store_redis_new(struct event_base *base, const struct store_config *cfg, struct store *st)
{
	struct store_redis *rd = calloc(1, sizeof *rd);
	char msg[256];

	if (!rd)
		return NULL;
	if (store_redis_addr_parse(cfg->redis, &rd->addr, msg, sizeof msg) < 0) {
		free(rd);
		errno = EINVAL;
		return NULL;
	}
	if (rd->addr.is_unix)
		snprintf(rd->where, sizeof rd->where, "%s", rd->addr.host);
	else
		snprintf(rd->where, sizeof rd->where, strchr(rd->addr.host, ':') ? "[%s]:%d" : "%s:%d", rd->addr.host,
		         rd->addr.port);
	rd->base = base;
	rd->st = st;
	rd->db = cfg->redis_db;
	rd->timeout_ms = cfg->redis_timeout > 0 ? cfg->redis_timeout : 1000;
	rd->backoff_ms = MOAT_STORE_REDIS_BACKOFF_MIN_MS;
	rd->drop_why = MRE_CONNECTION;
	rd->rng = (unsigned)getpid() ^ (unsigned)mono_ms();
	rd->password = cfg->redis_password ? strdup(cfg->redis_password) : NULL;
	rd->deadline_ev = evtimer_new(base, on_deadline, rd);
	rd->retry_ev = evtimer_new(base, on_retry, rd);
	sha1_hex(store_lua_greylist, rd->sha_grey);
	sha1_hex(store_lua_count, rd->sha_count);
	if ((cfg->redis_password && !rd->password) || !rd->deadline_ev || !rd->retry_ev) {
		store_redis_free(rd);
		errno = ENOMEM;
		return NULL;
	}
	connect_now(rd);
	return rd;
}

void store_redis_free(struct store_redis *rd)
{
	redisAsyncContext *ac;

	if (!rd)
		return;
	ac = rd->ac;
	rd->ac = NULL;
	if (ac)
		redisAsyncFree(ac); /* every call it holds comes back (on_reply) */
	if (rd->deadline_ev)
		event_free(rd->deadline_ev);
	if (rd->retry_ev)
		event_free(rd->retry_ev);
	if (rd->password) {
		explicit_bzero(rd->password, strlen(rd->password));
		free(rd->password);
	}
	free(rd);
}

int store_redis_state(const struct store_redis *rd)
{
	return rd->state == ST_UP;
}

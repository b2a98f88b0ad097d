/* recorder.c - record_dir: see recorder.h.
 *
 * Writing a file is synchronous: a record is small (MOAT_RECORD_BYTES_MAX,
 * with record_messages at most MOAT_RECORD_MESSAGE_MAX more), written once
 * per transaction, after the client has its reply. Nothing of it can fail
 * the session: a write error costs the record only. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checks/checks.h"
#include "checks/dns.h"
#include "proxy/lib/log.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/text.h"
#include "proxy/recorder.h"
#include "proxy/replay_verdict.h"

struct recorder {
	struct dns *view;                 /* the worker's resolver, tapped */
	char *dir;
	int messages;
	char session[32];
	char client[64];
	char listener[16];
	int ntx;
	char helo[MOAT_HELO_MAX + 1];
	struct record_verdict stage[RECORD_STAGES];
	char checks[RECORD_STAGES][RECORD_CHECKS_MAX];
	/* the session's DNS answers so far, as lines (connect answers serve
	 * every transaction of the session) */
	struct record_out dns;
	int nans, dropped;
	uint64_t seen[MOAT_RECORD_ANSWERS_MAX]; /* (name, type) of each, hashed: one answer each */
	/* the transaction */
	int has_mail;
	char from[MOAT_PATH_MAX + 1];
	struct record_out rcpts;
	int nrcpt;
	char *msg;                        /* the message (record_messages), read at the data stage */
	size_t msg_size;
};

static unsigned long drops; /* records not written, in this process */

/* FNV-1a of (name, type): the same question asked twice (a DMARC prefetch
 * and the lookup, a cache hit for the next transaction) is kept once. */
static uint64_t question_hash(const char *name, int type)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(unsigned)type;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ULL;
	return h;
}

/* An answer a check of the session received. */
static void tap(void *arg, const struct dns_result *res)
{
	struct recorder *r = arg;
	struct record_answer a = {res->type, (int)res->status, res->ttl, "", res->abuf, res->alen};
	uint64_t h = question_hash(res->name, res->type);

	for (int i = 0; i < r->nans; i++)
		if (r->seen[i] == h)
			return; /* replay answers a question with the first answer */

	text_copy(a.name, sizeof a.name, res->name); /* normalised, at most DNS_NAME_MAX */
	if (r->nans >= MOAT_RECORD_ANSWERS_MAX || record_answer_line(&r->dns, &a, r->dns.cap) < 0) {
		r->dropped++;
		return;
	}
	r->seen[r->nans++] = h;
}

struct recorder *recorder_new(const char *dir, int messages, struct dns *dns, const char *session_id,
                              const char *client_ip, const char *listener)
{
	struct recorder *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->messages = messages;
	text_copy(r->session, sizeof r->session, session_id);
	text_copy(r->client, sizeof r->client, client_ip);
	text_copy(r->listener, sizeof r->listener, listener);
	if (!(r->dir = strdup(dir)) || !(r->view = dns_view_new(dns, tap, r)) ||
	    record_out_init(&r->dns, MOAT_RECORD_BYTES_MAX / 2) < 0 ||
	    record_out_init(&r->rcpts, MOAT_RECORD_BYTES_MAX / 4) < 0) {
		recorder_free(r);
		return NULL;
	}
	return r;
}

struct dns *recorder_dns(struct recorder *r)
{
	return r->view;
}

void recorder_free(struct recorder *r)
{
	if (!r)
		return;
	dns_free(r->view);
	record_out_free(&r->dns);
	record_out_free(&r->rcpts);
	free(r->msg);
	free(r->dir);
	free(r);
}

void recorder_verdict(struct recorder *r, enum record_stage stage, const struct verdict *v)
{
	if (r)
		replay_verdict_of(&r->stage[stage], v);
}

void recorder_checks(struct recorder *r, enum record_stage stage, const struct checks *c)
{
	static const enum rule_stage of[RECORD_STAGES] = {STAGE_CONNECT, STAGE_HELO, STAGE_MAIL, STAGE_DATA};

	if (r)
		checks_describe(c, of[stage], r->checks[stage], sizeof r->checks[stage]);
}

void recorder_helo(struct recorder *r, const char *helo)
{
	if (r)
		text_copy(r->helo, sizeof r->helo, helo);
}

void recorder_mail(struct recorder *r, const char *mailbox)
{
	if (!r)
		return;
	r->has_mail = 1;
	text_copy(r->from, sizeof r->from, mailbox);
}

/* Read now: once relayed, a message in memory is the backend connection's. */
void recorder_message(struct recorder *r, msg_reader rd, void *rarg, size_t size)
{
	size_t off = 0;

	if (!r || !r->messages || size > MOAT_RECORD_MESSAGE_MAX)
		return;
	free(r->msg);
	if (!(r->msg = malloc(size + 1)))
		return;
	while (off < size) {
		long got = rd(rarg, off, r->msg + off, size - off);

		if (got <= 0) {
			free(r->msg);
			r->msg = NULL;
			return;
		}
		off += (size_t)got;
	}
	r->msg_size = size;
}

void recorder_rcpt(struct recorder *r, const char *mailbox, const struct verdict *v)
{
	struct record_verdict rv = {0};

	if (!r)
		return;
	if (v)
		replay_verdict_of(&rv, v);
	r->nrcpt++;
	record_verdict_line(&r->rcpts, "rcpt", mailbox, &rv);
}

/* The lines of the record, without the message. */
static void record_head(struct recorder *r, struct record_out *o, int tls, const char *auth_user)
{
	char num[32], ntx[16];
	const char *v[4];

	record_line(o, "moat-record", 1, (const char *[]){"1"});
	snprintf(num, sizeof num, "%lld", (long long)time(NULL));
	record_line(o, "time", 1, (const char *[]){num});
	snprintf(ntx, sizeof ntx, "%d", r->ntx);
	record_line(o, "session", 2, (const char *[]){r->session, ntx});
	v[0] = r->client;
	v[1] = r->listener;
	v[2] = tls ? "1" : "0";
	v[3] = auth_user ? auth_user : "";
	record_line(o, "client", 4, v);
	if (r->helo[0])
		record_line(o, "helo", 1, (const char *[]){r->helo});
	record_verdict_line(o, "stage", "connect", &r->stage[REC_CONNECT]);
	if (r->checks[REC_CONNECT][0])
		record_line(o, "checks", 2, (const char *[]){"connect", r->checks[REC_CONNECT]});
	record_verdict_line(o, "stage", "helo", &r->stage[REC_HELO]);
	if (r->has_mail) {
		record_line(o, "mail", 1, (const char *[]){r->from});
		record_verdict_line(o, "stage", "mail", &r->stage[REC_MAIL]);
		if (r->checks[REC_MAIL][0])
			record_line(o, "checks", 2, (const char *[]){"mail", r->checks[REC_MAIL]});
	}
	record_put(o, r->rcpts.buf, r->rcpts.len);
	if (r->stage[REC_DATA].judged) {
		record_verdict_line(o, "stage", "data", &r->stage[REC_DATA]);
		record_line(o, "checks", 2, (const char *[]){"data", r->checks[REC_DATA]});
	}
	record_put(o, r->dns.buf, r->dns.len);
	if (r->dropped) {
		snprintf(num, sizeof num, "%d", r->dropped);
		record_line(o, "dropped-answers", 1, (const char *[]){num});
	}
}

/* The message, appended as "message N" and its bytes. */
static void record_body(struct recorder *r, struct record_out *o)
{
	char line[40];
	int n;

	if (!r->msg)
		return;
	n = snprintf(line, sizeof line, "message %zu\n", r->msg_size);
	record_put(o, line, (size_t)n);
	record_put(o, r->msg, r->msg_size);
}

/* To a temporary name, then renamed: a reader never sees half a record. */
static int write_file(struct recorder *r, const struct record_out *o)
{
	char tmp[1200], name[1200];
	int fd, err;

	snprintf(name, sizeof name, "%s/%lld-%s-%d.rec", r->dir, (long long)time(NULL), r->session, r->ntx);
	snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%d", r->dir, r->session, r->ntx);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0 && errno == ENOENT && recorder_dir_ready(r->dir, 1) == 0) /* set by a reload */
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -1;
	if (file_write_all(fd, o->buf, o->len) < 0) {
		err = errno;
		close(fd);
		unlink(tmp);
		errno = err;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, name) < 0) {
		err = errno;
		unlink(tmp);
		errno = err;
		return -1;
	}
	return 0;
}

static void dropped(struct recorder *r, const char *why)
{
	drops++;
	log_warn("record", "session %s transaction %d not recorded in %s: %s (%lu so far)", r->session, r->ntx,
	         r->dir, why, drops);
}

/* The transaction's parts are forgotten; the session's (connect, HELO,
 * DNS answers) stay for the next. */
static void txn_reset(struct recorder *r)
{
	r->has_mail = 0;
	r->from[0] = '\0';
	r->rcpts.len = 0;
	r->rcpts.full = 0;
	r->nrcpt = 0;
	free(r->msg);
	r->msg = NULL;
	r->msg_size = 0;
	memset(&r->stage[REC_MAIL], 0, sizeof r->stage[REC_MAIL]);
	memset(&r->stage[REC_DATA], 0, sizeof r->stage[REC_DATA]);
	r->checks[REC_MAIL][0] = r->checks[REC_DATA][0] = '\0';
}

void recorder_end(struct recorder *r, int tls, const char *auth_user)
{
	struct record_out o;
	size_t body;

	if (!r)
		return;
	body = r->msg ? r->msg_size + 40 : 0;
	r->ntx++;
	if (r->nrcpt > MOAT_RECORD_RCPTS_MAX || r->rcpts.full) {
		dropped(r, "too many recipients");
	} else if (record_out_init(&o, MOAT_RECORD_BYTES_MAX + body) < 0) {
		dropped(r, "out of memory");
	} else {
		o.cap = MOAT_RECORD_BYTES_MAX;
		record_head(r, &o, tls, auth_user);
		o.cap = MOAT_RECORD_BYTES_MAX + body;
		if (o.full) {
			dropped(r, "over the record's bound");
		} else {
			record_body(r, &o);
			if (o.full)
				dropped(r, "out of memory");
			else if (write_file(r, &o) < 0)
				dropped(r, strerror(errno));
		}
		record_out_free(&o);
	}
	txn_reset(r);
}

int recorder_dir_ready(const char *dir, int create)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		char parent[1100];
		const char *slash = strrchr(dir, '/');

		if (errno != ENOENT || !slash)
			return -1;
		if (!create) { /* can it be made? */
			snprintf(parent, sizeof parent, "%.*s", slash == dir ? 1 : (int)(slash - dir), dir);
			return access(parent, W_OK | X_OK);
		}
		if (mkdir(dir, 0750) < 0)
			return -1;
	} else if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return access(dir, W_OK | X_OK);
}

/* message.c - a message from the client to the backend (see message.h) */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "checks/authres.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/message.h"

/* A complete header field: noted for the log if it is the first Subject or
 * Message-ID; removed if it forges our Authentication-Results. */
static void field_seen(void *arg, const struct hdr_field *f)
{
	struct message *m = arg;

	if (m->on_field)
		m->on_field(m->on_field_arg, f->head, f->head_len, f->truncated);
	if (!m->have_subject && hdrscan_value(f, "Subject", m->subject, sizeof m->subject)) {
		m->have_subject = 1;
		return;
	}
	if (!m->have_message_id && hdrscan_value(f, "Message-ID", m->message_id, sizeof m->message_id)) {
		m->have_message_id = 1;
		return;
	}
	if (!authres_claims_head(f->head, f->head_len, f->truncated, m->authserv_id))
		return;
	if (m->ndrop == MOAT_AUTHRES_DROP_MAX) {
		m->drop_overflow = 1;
		return;
	}
	if (!m->drop && !(m->drop = malloc(MOAT_AUTHRES_DROP_MAX * sizeof *m->drop))) {
		m->drop_overflow = 1; /* refused rather than passed on with a forgery */
		return;
	}
	m->drop[m->ndrop].off = f->off;
	m->drop[m->ndrop].len = f->len;
	m->ndrop++;
}

int message_begin(struct message *m, const char *spool_dir, size_t max_size, const char *authserv_id)
{
	m->spool = spool_new(spool_dir);
	if (!m->spool)
		return -1;
	data_parser_init(&m->dp);
	hdrscan_init(&m->hs, field_seen, m);
	m->authserv_id = authserv_id;
	m->max_size = max_size;
	m->size = 0;
	m->too_big = 0;
	m->nul = 0;
	m->drop = NULL;
	m->ndrop = 0;
	m->drop_overflow = 0;
	m->subject[0] = m->message_id[0] = '\0';
	m->have_subject = m->have_message_id = 0;
	m->on_field = NULL;
	m->on_field_arg = NULL;
	return 0;
}

/* Wire-form bytes from the parser: counted, scanned, stored. */
static void emit(void *ctx, const char *p, size_t n)
{
	struct message *m = ctx;

	m->size += n;
	/* scanned even past the limit, so that the refusal names the message */
	hdrscan_feed(&m->hs, p, n);
	if (m->too_big)
		return;
	/* Keep reading to the end of data, but stop storing. */
	if (m->size > m->max_size) {
		m->too_big = 1;
		return;
	}
	if (memchr(p, '\0', n))
		m->nul++;
	spool_write(m->spool, p, n);
}

size_t message_feed(struct message *m, const char *in, size_t len, int *done)
{
	return data_feed(&m->dp, in, len, emit, m, done);
}

enum message_status message_end(struct message *m)
{
	hdrscan_finish(&m->hs);
	if (m->too_big)
		return MSG_TOO_BIG;
	if (spool_finish(m->spool) < 0)
		return MSG_SPOOL_FAILED;
	if (m->nul)
		return MSG_NUL;
	if (m->drop_overflow)
		return MSG_FORGED_TOO_MANY;
	return MSG_OK;
}

int wire_lines_ok(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	if (memchr(buf, '\0', len))
		return 0;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));

		if (!lf || lf == p || lf[-1] != '\r' || memchr(p, '\r', (size_t)(lf - 1 - p)))
			return 0;
		p = lf + 1;
	}
	return 1;
}

/* Our fields, dot-stuffed like the client's lines (a tag rule may write a
 * field whose name starts with a dot). */
static int add_prefix(struct evbuffer *out, const char *prefix, size_t plen)
{
	const char *p = prefix, *end = prefix + plen;

	if (!wire_lines_ok(prefix, plen))
		return -1;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(lf - p) + 1;

		if (*p == '.' && evbuffer_add(out, ".", 1) < 0)
			return -1;
		if (evbuffer_add(out, p, n) < 0)
			return -1;
		p += n;
	}
	return 0;
}

static int spool_byte(struct spool *sp, size_t off)
{
	char c;

	return spool_read(sp, off, &c, 1) == 1 ? (unsigned char)c : -1;
}

/* The removals are ascending, inside the message, and each is whole lines:
 * it starts where a line starts and ends after an LF. */
static int drops_ok(struct message *m)
{
	size_t prev = 0, size = spool_size(m->spool);

	for (int i = 0; i < m->ndrop; i++) {
		const struct spool_range *r = &m->drop[i];

		if (r->len == 0 || r->off < prev || r->len > size || r->off > size - r->len)
			return 0;
		if ((r->off > 0 && spool_byte(m->spool, r->off - 1) != '\n') ||
		    spool_byte(m->spool, r->off + r->len - 1) != '\n')
			return 0;
		prev = r->off + r->len;
	}
	return 1;
}

int message_send(struct message *m, const char *prefix, size_t plen, struct evbuffer *out, int sendfile)
{
	struct evbuffer *msg;
	int r = -1;

	if (!drops_ok(m)) {
		log_error("message", "not passing a message on: a header removal is not whole lines");
		return -1;
	}
	/* Assembled apart, then moved (chains, not bytes): all or nothing. */
	if (!(msg = evbuffer_new()))
		return -1;
	/* else a spool file's segment is mapped (or read) into memory: so it
	 * must be for a TLS connection, which encrypts from memory (a sendfile
	 * segment has none: libevent's TLS writer would read garbage) */
	if (sendfile)
		evbuffer_set_flags(msg, EVBUFFER_FLAG_DRAINS_TO_FD);
	if (add_prefix(msg, prefix, plen) < 0)
		log_error("message", "not passing a message on: our header fields are not whole lines");
	else if (spool_move_skipping(m->spool, msg, m->drop, m->ndrop) == 0)
		r = evbuffer_add_buffer(out, msg);
	evbuffer_free(msg);
	return r;
}

void message_free(struct message *m)
{
	spool_free(m->spool);
	free(m->drop);
	m->spool = NULL;
	m->drop = NULL;
}

/* message.h - one message on its way from the client's DATA bytes to the
 * backend: the only path its bytes take */
#ifndef MOAT_MESSAGE_H
#define MOAT_MESSAGE_H

#include <stddef.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/dataparse.h"
#include "proxy/lib/hdrscan.h"
#include "proxy/spool.h"

struct evbuffer;

/* The invariant kept here: the backend gets the client's message in wire
 * form (dot-stuffed, CRLF lines, as dataparse makes it), minus whole header
 * fields that forge our Authentication-Results, plus our own fields in front
 * (themselves dot-stuffed, whole CRLF lines). Nothing is cut inside a line,
 * so no end of data, bare CR or bare LF can appear that the client did not
 * send; a message with NUL bytes is refused, never passed on. */
struct message {
	struct spool *spool;
	struct data_parser dp;
	struct hdrscan hs;
	const char *authserv_id;   /* fields that claim it are removed */
	size_t size;               /* wire bytes received */
	size_t max_size;
	int too_big;               /* over max_size: the rest is read and discarded */
	unsigned long nul;         /* NUL bytes in the message */
	struct spool_range *drop;  /* forged fields to remove, ascending; NULL while none */
	int ndrop;
	int drop_overflow;         /* more than MOAT_AUTHRES_DROP_MAX of them */
	/* for the decision lines: the first of each field, as written (hdrscan_value) */
	char subject[MOAT_LOG_SUBJECT_MAX + 1];
	char message_id[MOAT_LOG_MSGID_MAX + 1];
	int have_subject, have_message_id;
	/* every complete header field as it arrives (its first bytes), for
	 * lookups the checks can start before the end of data; NULL: none */
	void (*on_field)(void *arg, const char *head, size_t len, int truncated);
	void *on_field_arg;
};

enum message_status {
	MSG_OK,
	MSG_TOO_BIG,        /* over max_size */
	MSG_NUL,            /* NUL bytes: refused (what a receiver that drops them reads is not what we checked) */
	MSG_FORGED_TOO_MANY, /* more forged Authentication-Results than we remove */
	MSG_SPOOL_FAILED,   /* could not be stored */
};

/* Start receiving into a new spool. 0, or -1 (out of memory). */
int message_begin(struct message *m, const char *spool_dir, size_t max_size, const char *authserv_id);
/* The client's DATA bytes; see data_feed (*done at the end of data). */
size_t message_feed(struct message *m, const char *in, size_t len, int *done);
/* After *done: whether the message can go on. */
enum message_status message_end(struct message *m);
/* Our header fields (prefix: whole CRLF lines) and the message without the
 * forged fields, appended to out: the spool file, if any, as a sendfile
 * segment (sendfile: out goes to a plain socket), else mapped into memory
 * (TLS). Checks what it passes on: -1 (nothing added) if the prefix is not
 * whole lines or a removal would not be whole lines. The spool is empty
 * afterwards. */
int message_send(struct message *m, const char *prefix, size_t plen, struct evbuffer *out, int sendfile);
void message_free(struct message *m);

/* Is buf[0..len) whole CRLF lines, with no bare CR or LF and no NUL? */
int wire_lines_ok(const char *buf, size_t len);

#endif

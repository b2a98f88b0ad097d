/* dkim_check.h - the inside of DKIM verification, shared by dkim.c (the
 * message, the library's verdicts, the check's life) and dkim_keys.c (the
 * keys: fetched through dns.c, handed to libopendkim); nothing else
 * includes this */
#ifndef MOAT_DKIM_CHECK_H
#define MOAT_DKIM_CHECK_H

#include <event2/event.h>
#include <opendkim/dkim.h>

#include "checks/dkim.h"
#include "checks/dkim_bodyhash.h"

#define DKIM_READ_CHUNK 16384
/* dkim_eoh() calls per message: one, plus one per wait for keys. */
#define DKIM_EOH_CALLS_MAX (DKIM_MAX_SIGS + 2)
#define DKIM_KEYNAME_MAX (DNS_NAME_MAX + 1)
#define DKIM_B_MIN 8  /* RFC 6008 section 2: at least 8 characters of b= */

struct dkim_verifier {
	DKIM_LIB *lib;
	struct dns *dns;
	struct event_base *base;   /* for the wait cap; NULL: none */
	int wait_ms;
	struct dkim_check *current; /* the check inside a libopendkim call */
};

/* One key record, shared by the signatures that name it. */
struct dkim_key {
	char name[DKIM_KEYNAME_MAX]; /* normalised "<s>._domainkey.<d>" */
	struct dkim_check *c;
	struct dns_req *req;         /* lookup in flight */
	int done;                    /* answer (or give-up) recorded */
	int timed_out;               /* the wait cap gave up on it */
	enum dns_status st;
	unsigned char *abuf;         /* copy of the reply, DNS_OK only */
	int alen;
	size_t served;               /* bytes handed to the library */
};

/* Our own verdicts on a signature, decided before the library gets to it. */
enum dkim_mark { MARK_NONE, MARK_SHA1, MARK_BAD_Q, MARK_BAD_NAME };

enum dkim_phase { PH_HEADERS, PH_EOH, PH_BODY };

struct dkim_check {
	struct dkim_verifier *l;
	DKIM *dkim;
	dkim_reader rd;
	void *rarg;
	size_t msglen;
	dkim_cb cb;
	void *arg;

	enum dkim_phase phase;
	const struct msg_header *header; /* read for us (checks.c), or NULL: we read it */
	size_t body_off;       /* where the body starts in the message as kept (wire form) */
	int eoh_calls;
	DKIM_SIGINFO **sigs;   /* the library's list, from the prescreen callback */
	int nsigs;
	enum dkim_mark mark[DKIM_MAX_SIGS];
	/* The signature's tags hold UTF-8 (RFC 8616 allows U-labels in d= and s=
	 * of an SMTPUTF8 message): libopendkim 2.11 refuses any non-ASCII byte
	 * in them, so such a signature cannot be verified; its d= and s= are
	 * read here for the log and Authentication-Results. */
	int utf8_tags[DKIM_MAX_SIGS];

	struct dkim_key key[DKIM_MAX_SIGS];
	int nkeys;
	int pending;           /* lookups outstanding */
	int waiting;           /* dkim_eoh wants keys that are not in yet */
	int timed_out;
	struct event *timer;

	/* Body hashes of our own (dkim_bodyhash.h), one per signature whose
	 * header signature verified; the library then sees no body. */
	int own_body;
	struct dkim_bodyhash *bh[DKIM_MAX_SIGS];
	int bh_first[DKIM_MAX_SIGS]; /* the signature whose hash bh[i] is: the same
	                              * canonicalization and l= share one */
	int bh_res[DKIM_MAX_SIGS];   /* dkim_bodyhash_check: 1, 0 or -1 */
	int bh_checked;            /* bh_res holds the results (the body was read) */

	int done;
	struct dns *dns;       /* where its keys are asked: the session's (a recorder's view) */
	struct dns_req *later; /* delivers an outcome known inside dkim_check_start */
	struct dkim_outcome out;
};

/* dkim_keys.c */
struct dkim_key *dkim_key_find(struct dkim_check *c, const char *name);
/* The key record's name of a signature, normalised; -1 if it has none. */
int dkim_key_name(DKIM_SIGINFO *sig, char *out, size_t size);
/* The wait for keys is over (the timer dkim.c arms): give up the missing. */
void dkim_wait_expired(evutil_socket_t fd, short what, void *arg);
/* dkim.c: go on with the check (a key came in); the outcome is final. */
void dkim_advance(struct dkim_check *c);
void dkim_deliver(struct dkim_check *c);

#endif

/* relay.h - the backend side of a client's transactions: the pipelined
 * [RSET] [XFORWARD] MAIL RCPT group, MAIL parameters the backend can take, a
 * refused MAIL answering every RCPT, DATA, the message and the final reply
 * (Postfix keeps this in smtpd_proxy.c). The session decides what to say
 * to the client and what to log; this file only talks to the backend. */
#ifndef MOAT_RELAY_H
#define MOAT_RELAY_H

#include "proxy/lib/smtp_parse.h"
#include "proxy/lib/replies.h"
#include "proxy/smtp_reply.h"

struct backend_pool;
struct config;
struct message;
struct relay;

/* How a step ended. reply: the backend's own reply, for the client
 * verbatim. Else moat's reply id with why for the log (the backend
 * connection, if any, is then gone). */
struct relay_outcome {
	const struct smtp_reply *reply;
	enum reply_id id;
	const char *why;
};

/* Called exactly once per step, always later from the loop. */
typedef void (*relay_cb)(void *arg, const struct relay_outcome *o);

/* Who the client is, for XFORWARD. */
struct relay_client {
	const char *ip;    /* text, "192.0.2.1" or "2001:db8::1" */
	int port;
	const char *helo;  /* "" before HELO */
	int esmtp;
};

/* One per session; cfg must outlive it (the session's reference). */
struct relay *relay_new(struct backend_pool *pool, const struct config *cfg);
/* The session ends: the connection goes back to the pool, or with abandon
 * (a client transaction is open) is closed. No callback runs afterwards.
 * NULL is ignored. */
void relay_free(struct relay *r, int abandon);

/* A RCPT that passed moat's checks: open (or reuse) the connection and
 * start the backend's transaction with MAIL (the client's path from,
 * params as the client sent them, minus what this connection does not
 * take), or pass on the RCPT of a transaction already started. The
 * outcome is the backend's reply to the RCPT; if the backend refused
 * MAIL, its refusal answers this and every later RCPT. */
void relay_rcpt(struct relay *r, const struct relay_client *cl, const struct smtp_path *from,
                const char *from_params, const char *rcpt_line, relay_cb cb, void *arg);
/* End of data, checks passed: DATA, then our header fields (prefix) and
 * the message (message_send), then the final reply. The outcome is the
 * backend's reply to DATA when not 354, else its final reply. */
void relay_data(struct relay *r, struct message *m, const char *prefix, size_t plen, relay_cb cb,
                void *arg);
/* (prefix is copied; m must stay until the callback.) */
/* The client's transaction is over without delivery (RSET, refused): the
 * next RCPT starts the backend's afresh (with RSET). */
void relay_txn_end(struct relay *r);
#endif

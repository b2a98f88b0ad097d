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
#include "proxy/xclient.h"

struct backend;
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

/* One per session; cfg must outlive it (the session's reference). */
struct relay *relay_new(struct backend_pool *pool, const struct config *cfg);
/* The session ends: the connection goes back to the pool, or with abandon
 * (a client transaction is open) is closed. No callback runs afterwards.
 * NULL is ignored. */
void relay_free(struct relay *r, int abandon);

/* The session authenticated on be (AUTH passed on to submission_backend,
 * which said 235): its transactions go over be and no other connection
 * (another would not be authenticated: the backend would not let it
 * relay); be is never pooled nor reused, and is closed with the session.
 * Once be is lost, every RCPT gets 451. A connection r had is released.
 * XCLIENT goes over it only when the backend takes LOGIN (else the
 * backend's session would start over unauthenticated): XFORWARD then. */
void relay_adopt(struct relay *r, struct backend *be);

/* A RCPT that passed moat's checks: open (or reuse) the connection, tell
 * the backend who the client is (XCLIENT, per xclient and what it offers:
 * once per connection and client; else XFORWARD in the group) and
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
/* The TLS version of the backend connection of the last RCPT ("TLSv1.3",
 * "none"), NULL before any, and whether its TLS session was resumed: for
 * the decision lines (backend_tls, backend_tls_resumed). */
const char *relay_backend_tls(const struct relay *r, int *resumed);
/* Does the backend take the client's name (XCLIENT NAME)? Then the session
 * looks it up (check_options.want_rdns). With xclient = auto, not before
 * the backend told (the start-up probe answers within moat's first
 * milliseconds): a session that began before goes as NAME=[TEMPUNAVAIL]. */
int relay_wants_rdns(const struct backend_pool *pool, const struct config *cfg);
/* The client's transaction is over without delivery (RSET, refused): the
 * next RCPT starts the backend's afresh (with RSET). */
void relay_txn_end(struct relay *r);
#endif

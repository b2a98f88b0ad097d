/* backend.h - one SMTP client connection to the backend MTA */
#ifndef MOAT_BACKEND_H
#define MOAT_BACKEND_H

#include <event2/event.h>
#include "proxy/config.h"
#include "proxy/smtp_reply.h"

struct evbuffer;
struct dns;
struct backend;
struct backend_pool;

/* Called once per request. r is NULL when the connection failed, was lost or
 * timed out (the backend is then dead: free it). The callback may free b. */
typedef void (*backend_cb)(void *arg, const struct smtp_reply *r);

/* Connect to cfg's backend (the first of its list that answers: each
 * address of a name in turn, then the next backend's; a name's addresses
 * come from backend_addr.c, asked through DNS when it has none to go by),
 * read the banner, send EHLO <hostname>; with backend_tls, then
 * STARTTLS (when offered, or required), the handshake and EHLO again (the
 * capabilities before TLS are forgotten, RFC 3207 4.2). cb gets the last
 * EHLO reply (a 2xx means ready) or NULL (backend_tls_error says why when
 * it was TLS that failed). Never calls cb before returning (no callback of
 * this file ever does). The connection reports its EHLO to pool.
 *
 * backend_tls = opportunistic: a refused STARTTLS goes on in plaintext; a
 * failed handshake (nothing was sent yet) goes on with a new plaintext
 * connection. required: either fails the connection. */
struct backend *backend_open(struct backend_pool *pool, const struct config *cfg, backend_cb cb,
                             void *arg);
/* The connection failed because no backend of the list had an address
 * (every name unresolved: backend_error says which and why): 1 when DNS
 * said the last has none (NXDOMAIN, no A or AAAA record), 2 when DNS
 * failed; else 0. */
int backend_unresolved(const struct backend *b);
/* Where it is connected: "mx.example.com:25 at 192.0.2.1:25", "192.0.2.1:25". */
void backend_where(const struct backend *b, char *out, size_t size);
/* Its failures are not logged (the readiness probe: the change is). */
void backend_set_quiet(struct backend *b);
/* Why the connection failed when it was TLS (backend_tls = required: no
 * STARTTLS offered or accepted, the handshake failed, the certificate did
 * not verify); NULL when it was not. */
const char *backend_tls_error(const struct backend *b);
/* Why the connection failed ("connection refused", a TLS error); NULL if
 * it did not (or answered with a refusal: the reply says why). */
const char *backend_error(const struct backend *b);
/* The TLS version of an established connection ("TLSv1.3"), NULL if none;
 * *resumed: its TLS session was resumed (a ticket of an earlier one). */
const char *backend_tls_version(const struct backend *b, int *resumed);
/* Idle: tell the backend who the client is, XCLIENT (XCLIENT_README). The
 * lines (no CRLF) go one at a time, each answered by a new greeting (220:
 * the backend's session starts over), after RSET when rset (a reused
 * connection may be inside a transaction, where XCLIENT is refused); then
 * EHLO helo (HELO helo without esmtp) again: the backend takes that name as
 * the client's HELO, whatever XCLIENT said. cb gets the EHLO reply (2xx:
 * ready, with the capabilities it gave), or the first reply that refused
 * (the connection is then not reused: backend_release closes it), or NULL. */
int backend_xclient(struct backend *b, int rset, const char *const *lines, int n, const char *helo, int esmtp,
                    backend_cb cb, void *arg);
/* The same to another list than cfg's backend (submission_backend: AUTH
 * and the authenticated session's mail); its EHLO is its own, not what
 * backend_pool_caps says (unless the list is cfg's backend). list is copied. */
struct backend *backend_open_list(struct backend_pool *pool, const struct config *cfg,
                                  const struct backend_list *list, backend_cb cb, void *arg);
/* Send one command line (no CRLF) and wait for its reply. 0, or -1 if the
 * connection is not idle (a bug) or dead. */
int backend_command(struct backend *b, const char *line, backend_cb cb, void *arg);
/* Up to BACKEND_GROUP_MAX command lines (no CRLF) as one group: pipelined
 * when the backend offers PIPELINING (RFC 2920), else one after another.
 * cb runs once per reply with the line's index; r NULL means the connection
 * failed and no further call follows. cb may free b only at the last reply
 * or at r NULL. */
#define BACKEND_GROUP_MAX 4
typedef void (*backend_group_cb)(void *arg, int idx, const struct smtp_reply *r);
int backend_group(struct backend *b, const char *const *lines, int n, backend_group_cb cb, void *arg);
/* After a 354: the buffer to write the wire-form message into (the
 * connection's own output, so file segments go out with sendfile, *sendfile
 * = 1; under TLS *sendfile = 0: the bytes must be in memory), or NULL if
 * the connection is not waiting for a message. Then backend_message_end
 * adds ".\r\n" and waits (up to MOAT_BACKEND_DATA_TIMEOUT) for the final
 * reply. Until then the connection is neither idle nor reusable:
 * backend_free closes it without QUIT, which abandons the message. */
struct evbuffer *backend_message_buffer(struct backend *b, int *sendfile);
int backend_message_end(struct backend *b, backend_cb cb, void *arg);
/* Idle and connected: can take a new command. */
int backend_idle(const struct backend *b);
const struct ehlo_caps *backend_caps(const struct backend *b);
/* Close: QUIT when idle, else a plain close. No callback runs afterwards. */
void backend_free(struct backend *b);
/* ---- the backend connections of one worker --------------------------------
 * A pool of idle connections, the start-up probe, and what the backend last
 * announced. A session that ends leaves its idle connection in the pool; the
 * next one that needs a backend takes it (after RSET, as on any reused
 * connection) instead of paying a TCP set-up, the banner and EHLO. */
/* Names of backends are looked up through dns (NULL: none is). */
struct backend_pool *backend_pool_new(struct event_base *base, struct dns *dns);
/* The event loop its connections live on. */
struct event_base *backend_pool_base(const struct backend_pool *p);
/* Closes every pooled connection and the probe. */
void backend_pool_free(struct backend_pool *p);
/* A session is done with b: keep it for another (idle, same backend
 * address, room in the pool, backend_cache_time > 0), else free it. */
void backend_release(struct backend_pool *p, struct backend *b, const struct config *cfg);
/* Does b still go where cfg's backend is: to a backend of its list, at an
 * address that backend still has (after a name's TTL, its new answer)? A
 * session's connection that no longer does serves no new transaction. */
int backend_current(const struct backend *b, const struct config *cfg);
/* An idle pooled connection to cfg's backend (current, reached as cfg
 * says), or NULL. The taker sends RSET before its transaction. */
struct backend *backend_take(struct backend_pool *p, const struct config *cfg);
/* What the backend offered in the latest EHLO reply of any of this worker's
 * connections; NULL until one answered. moat advertises SMTPUTF8 and DSN to
 * clients, and accepts their parameters, only when this says the backend
 * has them; which parameters go out on one connection is that connection's
 * own backend_caps. */
const struct ehlo_caps *backend_pool_caps(const struct backend_pool *p);
/* Connect once (at start-up, after a reload) only to learn the caps; logs
 * what the backend offers (backend_probe), and warns when it offers neither
 * XCLIENT nor XFORWARD, when xclient = yes and it offers no XCLIENT, and
 * when backend_tls = required fails. */
void backend_probe(struct backend_pool *p, const struct config *cfg);
/* For moat -t: connections of p give up after at most seconds (connect,
 * each reply) and log nothing (the caller tells what happened). */
void backend_pool_set_timeout(struct backend_pool *p, int seconds);
/* What a connection that answered EHLO offers ("smtputf8=1 dsn=0
 * size=10240000 xforward=1 xclient=0 starttls=1 tls=TLSv1.3 verified=1"). */
void backend_describe(const struct backend *b, char *out, size_t size);
/* What is amiss with it under cfg: up to BACKEND_WARN_MAX sentences, the
 * count returned. */
#define BACKEND_WARN_MAX 3
int backend_warnings(const struct backend *b, const struct config *cfg, const char *w[BACKEND_WARN_MAX]);

#endif

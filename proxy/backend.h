/* backend.h - one SMTP client connection to the backend MTA */
#ifndef MOAT_BACKEND_H
#define MOAT_BACKEND_H

#include <event2/event.h>
#include "proxy/config.h"
#include "proxy/smtp_reply.h"

struct evbuffer;
struct backend;
struct backend_pool;

/* Called once per request. r is NULL when the connection failed, was lost or
 * timed out (the backend is then dead: free it). The callback may free b. */
typedef void (*backend_cb)(void *arg, const struct smtp_reply *r);

/* Connect, read the banner, send EHLO <hostname>. cb gets the EHLO reply
 * (a 2xx means ready) or NULL. Never calls cb before returning (no callback
 * of this file ever does). The connection reports its EHLO to pool. */
struct backend *backend_open(struct backend_pool *pool, const struct config *cfg, backend_cb cb,
                             void *arg);
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
 * connection's own output, so file segments go out with sendfile), or NULL
 * if the connection is not waiting for a message. Then backend_message_end
 * adds ".\r\n" and waits (up to MOAT_BACKEND_DATA_TIMEOUT) for the final
 * reply. Until then the connection is neither idle nor reusable:
 * backend_free closes it without QUIT, which abandons the message. */
struct evbuffer *backend_message_buffer(struct backend *b);
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
struct backend_pool *backend_pool_new(struct event_base *base);
/* The event loop its connections live on. */
struct event_base *backend_pool_base(const struct backend_pool *p);
/* Closes every pooled connection and the probe. */
void backend_pool_free(struct backend_pool *p);
/* A session is done with b: keep it for another (idle, same backend
 * address, room in the pool, backend_cache_time > 0), else free it. */
void backend_release(struct backend_pool *p, struct backend *b, const struct config *cfg);
/* An idle pooled connection to cfg's backend, or NULL. The taker sends
 * RSET before its transaction. */
struct backend *backend_take(struct backend_pool *p, const struct config *cfg);
/* What the backend offered in the latest EHLO reply of any of this worker's
 * connections; NULL until one answered. moat advertises SMTPUTF8 and DSN to
 * clients, and accepts their parameters, only when this says the backend
 * has them; which parameters go out on one connection is that connection's
 * own backend_caps. */
const struct ehlo_caps *backend_pool_caps(const struct backend_pool *p);
/* Connect once (at start-up, after a reload) only to learn the caps. */
void backend_probe(struct backend_pool *p, const struct config *cfg);

#endif

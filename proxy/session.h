/* session.h - one client SMTP session and its transaction */
#ifndef MOAT_SESSION_H
#define MOAT_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "checks/checks.h"
#include "proxy/config.h"
#include "proxy/lib/linereader.h"
#include "proxy/lib/replies.h"
#include "proxy/message.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/smtp_parse.h"
#include "proxy/smtp_reply.h"

struct server;
struct relay;
struct bufferevent;
struct ssl_st;
struct evbuffer;
struct session_auth;
struct recorder;
struct txn_limits;

enum sstate {
	S_PROXY,   /* waiting for the PROXY protocol header */
	S_GREET,   /* "220-" sent, greet_pause running: the client must keep quiet */
	S_CMD,     /* reading commands */
	S_DATA,    /* reading the message */
	S_TLS_WAIT, /* STARTTLS: the 220 being flushed, reading stopped (session_tls.c) */
	S_TLS_HANDSHAKE, /* the TLS handshake on the connection */
	S_AUTH,    /* AUTH: the backend sent 334, the client's answer is read (session_auth.c) */
	S_CLOSING, /* last reply being flushed; input ignored */
};

/* One mail transaction: MAIL .. end of DATA. */
struct txn {
	struct smtp_path from;
	char from_params[600];         /* MAIL parameters to pass on */
	int utf8;                      /* SMTPUTF8 given */
	int nrcpt;                     /* accepted by the backend */
	int nrcpt_tried;               /* RCPT commands that passed syntax */
	char rcpt_log[MOAT_PATH_MAX + 1];      /* last recipient, for the log */
	char rcpt_line[MOAT_CMD_LINE_MAX + 8]; /* the RCPT being passed to the backend */
	char rcpts[1024];              /* accepted recipients, comma-separated, for the log */
	struct message msg;            /* during and after DATA (msg.spool set) */
	struct verdict mail_v;         /* the MAIL checks' verdict, once mail_checked */
	int mail_checked;
	int mail_rules_ok;             /* the mail rules accepted (a 451 in mail_v is a rate limit's) */
	int rcpt_waiting;              /* with delay_reject: a RCPT waits for mail_v */
	struct smtp_path rcpt_path;    /* the RCPT being processed */
	const char *rule_file;         /* the rule that accepted the message (data stage) */
	int rule_line;
	const char *rule_id;
	char queue_id[MOAT_QUEUE_ID_MAX + 1]; /* the backend's, from its final reply; "" none */
	struct txn_limits *limits;     /* greylisting and rate limits (session_limits.c); NULL: none yet */
};

struct session {
	struct server *srv;
	struct config *cfg;            /* the config this session started with (a reference) */
	struct bufferevent *bev;       /* the client: a socket bufferevent, or an OpenSSL one */
	char id[17];                   /* hex session id, in every log line */
	union sockaddr_ip peer;        /* real client (after PROXY) */
	socklen_t peerlen;
	char peer_ip[INET6_ADDRSTRLEN];
	enum listener_kind listener;   /* the listener it came through: what it offers and requires */
	int counted_ip;                /* counted under its address in the connection table */
	enum sstate state;
	int helo_seen;
	int esmtp;
	char *helo;                    /* the HELO/EHLO name; NULL before */
	int busy;                      /* waiting on a check or the backend: input paused */
	int processing;                /* inside session_process */
	int eof;                       /* the client sent EOF: answer what is left, then close */
	struct line_reader reader;     /* command lines, bounded */
	int errors;                    /* protocol errors so far */
	int ntx;                       /* transactions delivered */
	int nrejected;
	struct txn *tx;                /* NULL outside MAIL..end of DATA */
	struct checks *chk;            /* the checks, their results, the rules' state */
	struct verdict *early_v;       /* delay_reject: a connect/HELO refusal that answers each RCPT */
	enum rule_stage early_stage;   /* which: a new HELO replaces a HELO's */
	struct relay *relay;           /* the backend side, from the first RCPT on; NULL before */
	struct session *next, *prev;   /* the server's list, for shutdown */
	struct event *reaper;          /* frees the session from the loop */
	struct event *greet_ev;        /* end of greet_pause */
	struct event *deadline;        /* the client's time to finish a command/message (slowloris) */
	size_t data_progress;          /* DATA bytes since the deadline was last pushed back */
	uint64_t seq;
	/* TLS (session_tls.c) */
	struct ssl_st *tls_pending;    /* made at STARTTLS, ours until the TLS bufferevent takes it */
	struct ssl_st *ssl;            /* the connection's, owned by bev; NULL: plaintext */
	const char *tls_version;       /* after the handshake ("TLSv1.3"); NULL before */
	const char *tls_cipher;        /* "TLS_AES_256_GCM_SHA384" */
	int tls_failed;                /* a TLS or socket error: no close_notify */
	struct evbuffer *tls_out;      /* after the handshake, replies on their way to tls_push; NULL: bev's output */
	/* AUTH (session_auth.c) */
	struct session_auth *auth;     /* an exchange in progress; NULL: none */
	char *auth_user;               /* the login name the backend took (235); NULL: not authenticated */
	struct recorder *rec;          /* record_dir: what its transactions were judged on; NULL: none */
};

/* Start a session on an accepted socket, counted by the caller in the
 * connection table's total (conntable_take): the session gives it back. */
void session_start(struct server *srv, int fd, const struct sockaddr *sa, socklen_t salen,
                   enum listener_kind listener);
/* Server shutdown: a session waiting for a command outside a transaction
 * gets 421 unless one comes within MOAT_DRAIN_IDLE seconds; the others
 * finish what they are doing first. */
void session_shutdown(struct session *s);
/* Free now, whatever its state (process exit). */
void session_abort(struct session *s);
/* The reply a verdict asks for, sent by the session. */
void session_send(struct session *s, const char *text, size_t len);
/* One of moat's own replies. */
void session_reply(struct session *s, enum reply_id id, const char *arg);
/* The HELO/EHLO name, "" before. */
const char *session_helo(const struct session *s);

/* session.c's steps, shared with session_data.c (the DATA phase). */
void session_read_timeout(struct session *s, int seconds);
/* The deadline a trickling client must meet (slowloris). */
void session_deadline(struct session *s, int seconds);
/* Set while the client waits for a check or the backend: no read timeout. */
void session_busy(struct session *s, int busy);
/* A protocol error: reply and count; MOAT_ERROR_LIMIT of them end the
 * session. Returns the reply sent (R_TOO_MANY_ERRORS then). */
enum reply_id session_proto_error(struct session *s, enum reply_id id, const char *arg);
/* Forget the transaction: its checks, its backend transaction, its message. */
void session_txn_free(struct session *s);
/* A step finished: take the next command, or end a draining session. */
void session_resume(struct session *s);
/* Send a check's refusal and log it. */
void session_verdict(struct session *s, enum rule_stage stage, const struct verdict *v, const char *rcpt);

/* The end, once the last reply is flushed (never frees at once: callers up
 * the stack may hold s). */
void session_close(struct session *s);
/* One of moat's own replies, then the end. */
void session_close_with(struct session *s, enum reply_id id);
/* A refusal at connect: the connection lingers in refused.c for the
 * client's commands (503 to each, 221 to QUIT), the session ends. */
void session_linger(struct session *s);
/* Take what the client sent, command by command, while the session is not
 * waiting for a step; replies to pipelined commands go out together. */
void session_process(struct session *s);

/* Give the session its client bufferevent: callbacks, input bound, reading
 * on (writes: bev_push); the timeouts are the caller's. */
void session_bev_attach(struct session *s, struct bufferevent *bev);

/* session_connect.c: the connection set-up. The PROXY header (when
 * proxy_protocol), else at once: the per-address limit, the connect
 * checks and rules, the banner. */
void session_connect(struct session *s);
/* S_PROXY: parse the header. Returns 0 when more input is needed. */
int session_proxy_step(struct session *s);
/* S_GREET: the client talked before the whole banner: refused. */
void session_pregreet(struct session *s);
/* The per-address limit (unless taken already), the connect checks and
 * rules, the banner: after the PROXY header, or the handshake of implicit
 * TLS. */
void session_greet(struct session *s);

/* session_tls.c: STARTTLS (RFC 3207). */
void session_starttls(struct session *s, const char *arg);
/* smtps_listen (RFC 8314): the handshake at once, on the accepted socket;
 * the session greets after it. */
void session_tls_accept(struct session *s);
/* S_TLS_WAIT: the 220 may be out; if so, the connection goes over to TLS. */
void session_tls_flushed(struct session *s);
/* An event of the TLS bufferevent during the handshake (S_TLS_HANDSHAKE). */
void session_tls_event(struct session *s, short what);
/* The handshake did not finish in time (command_timeout): log, close. */
void session_tls_timeout(struct session *s);
/* An error on the TLS connection after the handshake: logged with
 * OpenSSL's reason, if it has one. */
void session_tls_error(struct session *s);
/* After the session took input: what OpenSSL holds decrypted is read
 * (libevent 2.1 would wait for the socket). */
void session_tls_pending(struct session *s);
/* The session ends: a close_notify, unless the connection failed. */
void session_tls_close(struct session *s);

/* session_auth.c: AUTH PLAIN and LOGIN passed on to submission_backend
 * (RFC 4954), on submission_listen and smtps_listen, under TLS. */
void session_auth(struct session *s, const char *arg);
/* S_AUTH: the client's answer to a 334. Returns 0 when more input is
 * needed. */
int session_auth_step(struct session *s);
/* The session ends: an exchange in progress is dropped. */
void session_auth_free(struct session *s);
/* Refused at connect: the address failed AUTH auth_fail_limit times in
 * its window (on the listeners that offer AUTH). */
int session_auth_blocked(struct session *s);

/* session_data.c: DATA, the message, its checks and its relay. */
void session_data_begin(struct session *s, const char *arg);
/* Feed buffered message bytes to the parser; at the end of data, check and relay. */
void session_data_step(struct session *s);

/* session_limits.c: greylisting and rate limits (the greylist and
 * ratelimit rules' hits in a verdict of code 0), through the store. */
typedef void (*limits_done_fn)(struct session *s, const struct verdict *v);
/* MAIL: count the message against v's limits. 1: done comes later with
 * v, or a 451 refusal; 0: nothing to count, go on with v now. */
int session_limits_mail(struct session *s, const struct verdict *v, limits_done_fn done);
/* MAIL with delay_reject: its refusal is only answered at the first RCPT,
 * so v's limits are counted then, with that RCPT's calls (one round trip,
 * decided first, as at MAIL). */
void session_limits_mail_later(struct session *s, const struct verdict *v);
/* RCPT (tx->rcpt_path): greylist it and count it against v's limits (the
 * calls sent together; a greylisted recipient's counts given back). 1:
 * the session waits (a greylisted recipient is refused and the session
 * resumed here; else done comes later); 0: go on with v now. */
int session_limits_rcpt(struct session *s, const struct verdict *v, limits_done_fn done);
/* End of data: a greylist rule of the data stage greylists every accepted
 * recipient; one not passed refuses the message (451 4.7.1). 1: done
 * comes later; 0: go on with v now. */
int session_limits_data(struct session *s, const struct verdict *v, limits_done_fn done);
/* The backend refused the RCPT just counted: it does not count. */
void session_limits_rcpt_refused(struct session *s);
/* The message was delivered: it counts. */
void session_limits_delivered(struct session *s);
/* The transaction ends: calls in flight cancelled, a message not
 * delivered given back. */
void session_limits_txn_end(struct session *s);

/* session_log.c: the session's decision lines. */
struct decision;
/* d's stage, action, code, reason and rule, with the session's who and
 * what; rcpt NULL: the transaction's accepted recipients; d->mail_from
 * NULL: the transaction's sender. */
void session_log_line(struct session *s, struct decision *d, const char *rcpt);
/* Reply with one of moat's own replies and log it as the decision. */
void session_refuse(struct session *s, enum rule_stage stage, enum reply_id id, const char *why,
                    const char *rcpt);
/* A backend reply, passed on verbatim; a refusal is logged. */
void session_relay_reply(struct session *s, enum rule_stage stage, const struct smtp_reply *r,
                         const char *rcpt);
/* check_env.hit: a rule that matched without deciding (tag, log, monitor). */
void session_rule_hit(void *arg, enum rule_stage stage, const struct rule_verdict *h, const char *rcpt);
/* Another line of the session (level "info", "warning"; event), with its id. */
void session_note(struct session *s, const char *level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif

/* metrics.h - moat's counters for metrics_listen's /metrics, and the
 * heartbeats and backend answers behind /healthz and /readyz, in memory the
 * workers share (docs/metrics.md names every metric).
 *
 * metrics_init maps one zeroed MAP_SHARED block before the workers fork:
 * every worker adds to the same counters with relaxed atomic additions (no
 * lock on the hot path), any worker renders the sum of all, and the counts
 * outlive a worker's restart (the supervisor keeps the mapping); they start
 * from zero when moat starts. Without metrics_init (metrics_listen unset)
 * every call below returns at once.
 *
 * Label values never come from a client: stages, actions, checks and their
 * result words are fixed sets, and rule ids come from the rule files, at
 * most MOAT_METRICS_RULES_MAX of them by name (the rest count as
 * rule="_other", a name no rule id can have). */
#ifndef MOAT_LIB_METRICS_H
#define MOAT_LIB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/lib/bounds.h"

#define METRICS_STAGES_MAX 8

/* The names of the label sets given by the layers above (static strings:
 * the workers inherit them with the fork). */
struct metrics_names {
	const char *stages[METRICS_STAGES_MAX];   /* decision stages, by index */
	int nstages;
	const char *checks[MOAT_METRICS_CHECKS_MAX];
	const char *results[MOAT_METRICS_CHECKS_MAX][MOAT_METRICS_RESULTS_MAX]; /* each check's result words */
	int nchecks;
	const char *listeners[METRICS_STAGES_MAX]; /* listener kinds, by index */
	int nlisteners;
};

/* Why a connection was refused at connect (moat_connections_refused_total). */
enum metrics_refusal {
	MR_MAX_CONNECTIONS,     /* max_connections */
	MR_MAX_CONNECTIONS_IP,  /* max_connections_per_ip (or the shared table full) */
	MR_AUTH_BLOCKED,        /* auth_fail_limit */
	MR_PREGREET,            /* talked before the greeting */
	MR_RULE,                /* a connect rule */
	MR_COUNT
};

/* A DNS list query that gave no usable answer (moat_dnsbl_errors_total):
 * never a listing. */
enum metrics_dnsbl_error {
	MD_TIMEOUT,      /* no answer within dnsbl_timeout */
	MD_TEMPFAIL,     /* SERVFAIL, refused, unparsable */
	MD_ERROR_CODE,   /* 127.255.255.x: the list refused the query (Spamhaus) */
	MD_NOT_LOOPBACK, /* an answer outside 127/8 */
	MD_COUNT
};

/* A store call to Redis answered as a fault (moat_redis_errors_total):
 * fail open (store.h). */
enum metrics_redis_error {
	MRE_DOWN,       /* answered at once: no connection that answers */
	MRE_TIMEOUT,    /* no answer within redis_timeout */
	MRE_CONNECTION, /* the connection failed or closed with the call outstanding */
	MRE_ERROR,      /* Redis answered an error */
	MRE_BAD_REPLY,  /* a reply of the wrong shape */
	MRE_QUEUE_FULL, /* MOAT_STORE_REDIS_PENDING_MAX calls outstanding */
	MRE_COUNT
};

/* 0, or -1 (errno set). Before the workers fork; once per process. */
int metrics_init(int nworkers, const struct metrics_names *names);
void metrics_free(void);
/* metrics_init was called: metrics_listen is on. */
int metrics_on(void);

/* ---- the hot path (relaxed atomic additions) ---- */
/* A decision line: its stage index, action ("reject", "would-reject", ...)
 * and rule id (NULL or "": none). */
void metrics_decision(int stage, const char *action, const char *rule_id);
/* A check's result: its index, and the index of its word (-1: unknown). */
void metrics_check(int check, int result);
void metrics_accepted(int listener);
void metrics_refused(enum metrics_refusal why);
void metrics_sessions(int worker, int open);
void metrics_dns_query(uint64_t ns);
void metrics_dns_cache(int hit);
void metrics_backend_reply(uint64_t ns);
void metrics_reload(int ok);
void metrics_worker_restart(void);
void metrics_dnsbl_error(enum metrics_dnsbl_error kind);
void metrics_relayed(uint64_t bytes);
/* Redis (store_redis.c): a call sent; a call answered as a fault; worker
 * w's connection now answers (up 1) or not (0): counted as a change when
 * it differs from what it last said (the first state counts). */
void metrics_redis_call(void);
void metrics_redis_error(enum metrics_redis_error why);
void metrics_redis_state(int worker, int up);

/* ---- health ---- */
/* A worker's loop is turning (now: clock_ms); listening: its SMTP sockets
 * take connections (0 from SIGTERM on). */
void metrics_heartbeat(int worker, uint64_t now);
void metrics_listening(int worker, int on);
/* The supervisor: worker w is gone (its sessions and beat with it). */
void metrics_worker_gone(int worker);
/* The backend answered (ok) or did not (a connect, banner or reply that
 * failed or timed out). 1 when this changes what the last answer said
 * (the caller logs the change), else 0. */
int metrics_backend_answer(int ok, uint64_t now);
/* Is a probe of the backend due (nothing heard for interval ms)? 1 for one
 * caller per interval across the workers. */
int metrics_probe_due(uint64_t now, uint64_t interval);
/* /healthz: every running worker beat within MOAT_HEALTH_STALE seconds. */
int metrics_healthy(uint64_t now);
/* /readyz: healthy, some worker listening, and the backend's last answer
 * was a good one within window ms. */
int metrics_ready(uint64_t now, uint64_t window);

/* The Prometheus text exposition (version 0.0.4) of everything: a malloc'd
 * string (*len bytes), NULL for want of memory. */
char *metrics_render(uint64_t now, uint64_t window, size_t *len);
/* The index of word in a NULL-terminated list of at most max words, -1 if absent. */
int metrics_word(const char *const *words, int max, const char *word);

#endif

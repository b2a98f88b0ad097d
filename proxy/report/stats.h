/* stats.h - what the report counts: exact totals, top lists (topk.h) and
 * refusals per hour, from parsed decision lines (pure) */
#ifndef MOAT_REPORT_STATS_H
#define MOAT_REPORT_STATS_H

#include <stdint.h>

#include "proxy/report/idxmap.h"
#include "proxy/report/jsonline.h"
#include "proxy/report/topk.h"

/* In filter_actions' order, then anything else. */
enum { ACT_ACCEPT, ACT_REJECT, ACT_TEMPFAIL, ACT_WACCEPT, ACT_WREJECT, ACT_WTEMPFAIL, ACT_WTAG, ACT_TAG,
       ACT_LOG, ACT_OTHER, ACT_COUNT };
enum { ST_CONNECT, ST_HELO, ST_MAIL, ST_RCPT, ST_DATA, ST_OTHER, ST_COUNT };
/* The top lists: of the refusals (or, with --action, of the matching
 * lines), of the would-be refusals of monitor mode, of the DNS temporary
 * failures (the name: "sender example.org", "rdns 192.0.2.0/24", "dkim
 * example.com"). A rule's key is "ID\tFILE:LINE". */
enum { TOP_REASONS, TOP_RULES, TOP_CLIENTS, TOP_NETS, TOP_SENDERS, TOP_RCPT_DOMAINS, TOP_HELOS,
       TOP_W_REASONS, TOP_W_RULES, TOP_W_SENDERS, TOP_DNS_NAMES, TOP_COUNT };
/* The checks whose temporary DNS failure a decision line shows. */
enum { DNS_SPF, DNS_SENDER_DOMAIN, DNS_RDNS, DNS_DKIM, DNS_COUNT };

extern const char *const stats_action_names[ACT_COUNT];
extern const char *const stats_stage_names[ST_COUNT];
extern const char *const stats_top_names[TOP_COUNT];
extern const char *const stats_dns_names[DNS_COUNT];

struct hour_reason {
	uint64_t hash, count;
};

struct hour {
	int64_t hour;            /* since the epoch */
	uint64_t decisions, refusals, would;
	uint32_t nreasons;
	int replaced;            /* more reasons than REPORT_HOUR_REASONS: counts are bounds */
	struct hour_reason r[REPORT_HOUR_REASONS];
};

struct report_stats {
	/* input */
	uint64_t lines, bytes, malformed, foreign, out_of_range, other_events, truncated;
	/* decision lines by stage and action; rule lines by action */
	uint64_t decisions, by_action[ACT_COUNT], by_stage[ST_COUNT][ACT_COUNT];
	uint64_t rule_lines, rule_by_action[ACT_COUNT];
	uint64_t refusals, would;    /* reject + tempfail; would-reject + would-tempfail */
	uint64_t focus;              /* lines the top lists count */
	/* session_end lines (without a filter) */
	uint64_t sessions, messages, session_rejected, session_errors;
	/* DNS temporary failures: decision lines that show one, by check and action */
	uint64_t dns, dns_by_check[DNS_COUNT], dns_by_action[ACT_COUNT];
	int64_t first_ts, last_ts;   /* of the lines counted; first > last: none */
	int focus_all;               /* --action given: the top lists count every matching line */
	struct topk top[TOP_COUNT];
	/* per hour (at most REPORT_HOURS_MAX); refusals of further hours */
	struct hour *hours;
	size_t nhours;
	struct idxmap hour_map;      /* hour -> index in hours */
	size_t hour_last;
	uint64_t hours_dropped;
	uint8_t seed[16];            /* reasons' hashes */
	/* the last client address and its network (sessions repeat them) */
	char last_ip[64], last_net[64];
};

/* 0, or -1 out of memory. */
int stats_init(struct report_stats *s, int focus_all);
void stats_free(struct report_stats *s);

/* A decision or rule line (event "decision" or "rule") at ts. */
void stats_decision(struct report_stats *s, const struct logline *l, int64_t ts);
/* A session_end line. */
void stats_session_end(struct report_stats *s, const struct logline *l);

/* The hash of a reason, as the per-hour counts keep it. */
uint64_t stats_reason_hash(const struct report_stats *s, const char *reason, size_t n);

/* The hours with a count, oldest first (sorted in place). */
void stats_sort_hours(struct report_stats *s);

/* The action and stage index of a line's words. */
int stats_action(struct ll_str a);
int stats_stage(struct ll_str st);

#endif

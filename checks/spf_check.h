/* spf_check.h - the inside of one SPF check, shared by spf.c (passes of
 * libspf2, the outcome) and spf_dns.c (the DNS layer libspf2 calls and the
 * table of answers behind it); nothing outside these two includes this */
#ifndef MOAT_SPF_CHECK_H
#define MOAT_SPF_CHECK_H

#include <stdint.h>
#include <netinet/in.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "checks/dns.h"
#include "checks/spf.h"

/* Limits. RFC 7208 4.6.4 allows 10 DNS-querying terms, each mx or ptr
 * term 10 names, and %{p} 10 more: about 125 answers at most. */
#define SPF_TERMS_MAX 10       /* include, a, mx, ptr, exists, redirect */
#define SPF_VOIDS_MAX 2        /* NXDOMAIN or no answer, RFC 7208 4.6.4 */
#define SPF_TARGETS_MAX 10     /* MX or PTR names looked at per term */
#define SPF_ANSWERS_MAX 160    /* distinct (name, type) per check */
#define SPF_PASSES_MAX 40      /* libspf2 runs; each adds at least one answer */
#define SPF_TIME_MAX_MS 20000  /* RFC 7208 4.6.4: at least 20 seconds */

/* libspf2's default explanation is replaced by this marker, so that our own
 * default can be told from a domain's exp= text. */
#define EXP_MARKER "moat-spf-default-explanation"

enum ans_state { ANS_WANTED, ANS_PENDING, ANS_DONE };

/* One (name, type) this check needs, and what DNS said. */
struct answer {
	struct spf_check *c;
	char name[DNS_NAME_MAX + 1]; /* normalised */
	int type;
	enum ans_state state;
	struct dns_req *req;         /* while ANS_PENDING */
	enum dns_status st;
	int n;                       /* records, DNS_OK only */
	char **rr;                   /* in_addr, in6_addr or NUL-terminated text */
	size_t *len;                 /* bytes of each, the NUL not counted */
};

enum top_state { TOP_OK, TOP_NONE, TOP_PERM, TOP_TEMP };
enum exp_state { EXP_NONE, EXP_OK, EXP_DEFAULT, EXP_MISS };
enum limit { LIM_NONE, LIM_TERMS, LIM_VOIDS, LIM_ANSWERS };

struct spf_check {
	struct dns *dns;
	spf_cb cb;
	void *arg;
	int family;                  /* AF_INET (IPv4-mapped included) or AF_INET6 */
	struct in_addr ip4;
	struct in6_addr ip6;
	char ip_macro[80];           /* %{i}: dotted quad or dotted nibbles */
	char ip_text[INET6_ADDRSTRLEN]; /* %{c} */
	char helo[256];              /* printable, for %{h}; "" = none */
	char sender[320];            /* local@domain evaluated */
	char receiver[256];          /* %{r} */
	uint64_t started_ms;

	SPF_dns_server_t layer;      /* hook = this check */
	SPF_server_t *srv;
	SPF_request_t *req;          /* of the pass running now */
	SPF_response_t *resp;        /* its response */
	SPF_record_t *rec;           /* and the record it compiled */

	struct answer **ans;
	int nans, ans_size;
	int pending;                 /* lookups in flight */
	int done;                    /* out is final */
	struct dns_req *later;       /* delivers an outcome known inside spf_check_start */

	/* per pass */
	int new_miss;
	int top;                     /* the next get_spf is for the checked domain */
	enum top_state top_state;    /* what its record lookup gave */
	char why[200];               /* the last record or DNS trouble, for out.reason */
	int terms, voids;
	enum limit limit;
	const struct answer *tgt;    /* MX/PTR answer whose names libspf2 asks next */
	int tgt_i, tgt_n, tgt_type;
	int tgt_any;                 /* ... for an mx/0 */
	enum exp_state exp_state;    /* of the last explanation libspf2 asked for */
	char exp_name[DNS_NAME_MAX + 1];

	struct spf_outcome out;
};

/* spf.c */
__attribute__((format(printf, 2, 3)))
void spf_why(struct spf_check *c, const char *fmt, ...);
int spf_name_norm_n(const char *name, size_t len, char *out, size_t size);
int spf_name_norm(const char *name, char *out, size_t size);
void spf_conclude(struct spf_check *c, SPF_response_t *resp);
/* Run passes until one needs nothing new, or lookups are in flight. */
void spf_advance(struct spf_check *c);
/* The outcome is final: report it. */
void spf_deliver(struct spf_check *c);

/* spf_dns.c */
void spf_answer_free(struct answer *a);
/* Note (name, type) as wanted by this pass. */
void spf_miss(struct spf_check *c, const char *name, int type);
void spf_lookup_start(struct answer *a);
/* The DNS layer: what libspf2 calls to resolve, answered from the table. */
void spf_layer_init(struct spf_check *c);
/* The SPF record of domain as published, from the table: 0, or -1 (not
 * known, or not one record). */
int spf_record_text(struct spf_check *c, const char *domain, const char **txt, size_t *len);

#endif

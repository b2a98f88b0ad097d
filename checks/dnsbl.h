/* dnsbl.h - DNS lists, weighted as postscreen's postscreen_dnsbl_sites:
 * the client's address under each zone of dnsbl_sites at connect (row
 * "dnsbl"), the HELO and sender domains under each zone of dbl_sites at
 * MAIL (row "dbl"). Every zone is asked once, all side by side through
 * dns.c (cached by TTL there), under one deadline (dnsbl_timeout): a list
 * that does not answer in time costs that deadline and counts as an error,
 * never as a listing. An answer matching a site's filter adds its weight;
 * 127.255.255.x (Spamhaus: refused query) and answers outside 127/8 are
 * errors, logged and counted. */
#ifndef MOAT_CHECKS_DNSBL_H
#define MOAT_CHECKS_DNSBL_H

#include <sys/socket.h>

#include "checks/check.h"
#include "checks/dnsbl_sites.h"

#define DNSBL_NAMES_MAX CHECK_NAMES_MAX   /* sites a result names */
#define DNSBL_TEXT_MAX 512

/* What the lists said (checks_result gives this for both rows). */
struct dnsbl_result {
	long score;                        /* for dbl: the higher of the HELO's and the sender's */
	long threshold;                    /* dnsbl_threshold / dbl_threshold ("threshold" in rules) */
	int nlisted;                       /* sites whose filter matched, negative weights too */
	int weight[DNSBL_NAMES_MAX];
	int nerrors;                       /* zones that timed out, failed or gave an error answer */
	char score_text[24];
	/* dnsbl_run_start zeroes the above and empties the texts below: the
	 * rest (4 KiB) is written before it is read */
	char listed[DNSBL_NAMES_MAX][MOAT_DOMAIN_MAX + 1]; /* [0, nlisted) */
	char errors[DNSBL_TEXT_MAX];       /* "slow.example timeout, bl.example 127.255.255.254" */
	char names[DNSBL_TEXT_MAX];        /* %{dnsbl}: the listing sites, ", "-separated */
	char reply[DNSBL_TEXT_MAX];        /* %{dnsbl_reply}: sites of positive weight, or not named */
	char domains[DNSBL_TEXT_MAX];      /* dbl: the listed domains */
};

/* "4.3.2.1" for 1.2.3.4, the 32 reversed nibbles for IPv6 (a mapped IPv4
 * address is IPv4); -1 if neither. Pure. */
int dnsbl_reversed(const struct sockaddr *sa, char *out, size_t size);

/* The engine both rows run: each name of prefixes (0 to 2) under every
 * zone of sites. Weights add up per prefix; the score is the highest
 * prefix's. nprefixes given as -n - 1: the prefixes are domain names, and
 * the result names those listed (dbl). */
struct dnsbl_run;
typedef void (*dnsbl_done_fn)(void *arg);
/* NULL: nothing to ask (r filled: score 0) or no memory (r filled, one
 * error); done then never runs. */
struct dnsbl_run *dnsbl_run_start(const struct check_ctx *ctx, const struct dnsbl_sites *sites,
                                  const char *const *prefixes, int nprefixes, int threshold,
                                  struct dnsbl_result *r, dnsbl_done_fn done, void *arg);
void dnsbl_run_cancel(struct dnsbl_run *run);

/* Both rows' slot: the result first (what checks_result hands out), then
 * the run in flight and the row's completion. */
struct dnsbl_slot {
	struct dnsbl_result r;             /* first: the result the shared hooks read */
	struct dnsbl_run *run;             /* these three set by the rows' start */
	check_done_fn done;
	void *arg;
};

/* Shared by both rows: facts' values, log fields, and as the rows' own
 * hooks (check.h): the run's completion (arg: the slot), cancel, describe,
 * result word. */
void dnsbl_values(const struct dnsbl_result *r, int nfacts, struct rule_value *v,
                  const char *(*names)[CHECK_NAMES_MAX]);
void dnsbl_log(const struct dnsbl_result *r, const char *prefix, struct jline *j);
void dnsbl_slot_done(void *arg);
void dnsbl_cancel(void *handle);
void dnsbl_describe(const void *result, char *buf, size_t size);
int dnsbl_result_word(const void *result); /* listed, clean, error */
extern const char *const dnsbl_results[];

extern const struct check_def check_dnsbl;
extern const struct check_def check_dbl;

#endif

/* filter.h - which decision lines the report is about: --client, --sender,
 * --rcpt, --action, --rule, --session (pure) */
#ifndef MOAT_REPORT_FILTER_H
#define MOAT_REPORT_FILTER_H

#include <stddef.h>

#include "proxy/lib/netaddr.h"
#include "proxy/report/bounds.h"
#include "proxy/report/jsonline.h"

enum filter_kind { FILTER_CLIENT, FILTER_SENDER, FILTER_RCPT, FILTER_ACTION, FILTER_RULE, FILTER_SESSION,
	           FILTER_KINDS };

struct filter_value {
	const char *s; /* the option's argument (it outlives the filter) */
	size_t n;      /* bytes of it that count (a session's ".N" left out) */
	int domain;    /* --sender, --rcpt: s is a domain ("@example.org", "example.org") */
};

struct report_filter {
	struct cidr client[REPORT_FILTER_MAX];
	struct filter_value v[FILTER_KINDS][REPORT_FILTER_MAX];
	size_t n[FILTER_KINDS];
	int any; /* some filter given */
};

/* The kind of an option name without its dashes ("client"), or -1. */
int filter_kind_of(const char *option);

/* Add a value of an option: --client ADDR or CIDR; --sender and --rcpt
 * ADDR, @DOMAIN or DOMAIN ("<>": the null sender); --action WORD[,WORD];
 * --rule ID or FILE:LINE (FILE may be the end of the path the log names);
 * --session ID (an "ID.N" of a Received field is taken too). 0, or -1
 * with a message in err. */
int filter_add(struct report_filter *f, enum filter_kind k, const char *value, char *err, size_t size);

/* Does the line (a decision or rule line) pass every kind of filter given:
 * one of the values of each? A kind not given passes. */
int filter_match(const struct report_filter *f, const struct logline *l);

/* The actions of decision and rule lines, for --action and the totals. */
extern const char *const filter_actions[];

#endif

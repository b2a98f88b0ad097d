/* facts.h - the facts the rules decide on: stages, relaying, and the
 * vocabulary of results the checks declare. Pure data, no behaviour. */
#ifndef MOAT_RULES_FACTS_H
#define MOAT_RULES_FACTS_H

enum rule_stage { STAGE_CONNECT, STAGE_HELO, STAGE_MAIL, STAGE_RCPT, STAGE_DATA };
#define STAGE_COUNT 5

/* ---- the listener a client came through (moat.conf) ---- */
/* listen: the MX (port 25); smtps_listen: implicit TLS (RFC 8314, port
 * 465); submission_listen: STARTTLS required (RFC 6409, port 587). The
 * last two offer AUTH. */
enum listener_kind { LISTENER_SMTP, LISTENER_SMTPS, LISTENER_SUBMISSION };
#define LISTENER_KINDS 3

/* ---- relaying (rcpt): local-recipient-only ---- */
/* Local-recipient-only relaying: what relay_check (checks/relay.c) found. */
enum relay_result { RELAY_OK, RELAY_DENIED, RELAY_BAD_ROUTING };

/* ---- greylisting (proxy/greylist.c): what the store said of a recipient's
 * triplet (store.h's enum store_grey, plus none: no greylist rule applied) ---- */
enum rule_grey { GREY_NONE, GREY_FIRST, GREY_EARLY, GREY_PASSED, GREY_ALLOWED, GREY_SKIPPED };
#define GREY_STATES 6

/* ---- what the checks find ----
 * The rules know no check by name. Each check declares the facts it fills
 * (its row in checks/registry.c), and the rules take that vocabulary at
 * load: a rule tests
 *   NAME WORD                          a result ("spf fail")
 *   NAME DOMAIN | .DOMAIN | list:PATH  a name it found ("dkim-signer example.com")
 *   NAME none                          it found no name ("rdns none")
 * and a reply, header or note names any of them as %{NAME} ('-' written
 * '_'), text facts included ("%{spf_explanation}"). */
enum rule_kind {
	RULE_WORD,  /* one of words */
	RULE_NAMES, /* names (domains) */
	RULE_TEXT,  /* text for templates only */
	RULE_NUMBER, /* an integer, compared: "dnsbl-score >= 3", "dnsbl-score >= threshold"
	              * (words: numbers the check names, their values in rule_value.named) */
};

struct rule_vocab_fact {
	const char *name;
	enum rule_stage stage;     /* known from this stage on */
	enum rule_kind kind;
	const char *const *words;  /* RULE_WORD: the values, NULL-terminated;
	                            * RULE_NAMES: NULL, or {"none", NULL} when "NAME none" may be tested;
	                            * RULE_NUMBER: NULL, or the names of numbers the check knows
	                            * ("threshold": a moat.conf key) */
	const char *usage;         /* RULE_NAMES: what its argument may be, for errors */
};

#define RULES_VOCAB_MAX 64     /* facts in a vocabulary (ruleset_uses_value has a bit each) */

struct rule_vocab {
	const struct rule_vocab_fact *facts;
	size_t n;
};

/* A vocabulary fact's value; rule_facts.values has one per fact, in the
 * vocabulary's order. */
struct rule_value {
	int known;                 /* found: the check ran */
	int word;                  /* RULE_WORD: index into words */
	const char *const *names;  /* RULE_NAMES */
	size_t nnames;
	const char *text;          /* RULE_TEXT; also what %{NAME} gives for RULE_NAMES and
	                            * RULE_NUMBER (NULL: "") */
	long number;               /* RULE_NUMBER */
	const long *named;         /* RULE_NUMBER: the values of its words */
};

#endif

/* lists.h - list files for the rules: domains, addresses, networks; built once, then read-only
 *
 * One entry a line, '#' comments (at the start of a line or after a blank),
 * blank lines skipped, case folded. Domains and addresses go into one hash
 * set each (proxy/strset.h): a lookup is a handful of probes whatever the
 * size. Networks become sorted, merged address ranges: a lookup is a binary
 * search. A million entries load in well under a second. */
#ifndef MOAT_RULES_LISTS_H
#define MOAT_RULES_LISTS_H

#include <stddef.h>
#include <sys/socket.h>

enum list_kind {
	LIST_DOMAINS,   /* "example.com" (that name), ".example.com" (its subdomains) */
	LIST_ADDRESSES, /* "user@example.com", "@example.com" (any user there) */
	LIST_NETWORKS,  /* "192.0.2.1", "10.0.0.0/8", "2001:db8::/32" */
};

#define LIST_ENTRY_MAX 320                 /* bytes of one entry (an address: 64 + 1 + 255) */
#define LIST_FILE_MAX (1024L * 1024 * 1024) /* bytes of a list file */

struct rule_list;

/* Read and parse a list file. NULL on error with "PATH:LINE: message" (or
 * "PATH: cannot open: reason") in err. */
struct rule_list *list_load(const char *path, enum list_kind kind, char *err, size_t errsize);
/* The same from memory; name is used in messages. */
struct rule_list *list_parse(const char *text, size_t len, const char *name, enum list_kind kind,
                             char *err, size_t errsize);
void list_free(struct rule_list *l);

/* Lookups; name and addr must be lower case, without a trailing dot. */
int list_has_name(const struct rule_list *l, const char *name); /* exact, or a ".parent" entry */
int list_has_address(const struct rule_list *l, const char *addr); /* exact, or "@domain" */
int list_has_ip(const struct rule_list *l, const struct sockaddr *sa); /* v4-mapped v6 is v4 */

enum list_kind list_kind(const struct rule_list *l);
const char *list_name(const struct rule_list *l);
size_t list_entries(const struct rule_list *l); /* entries read (duplicates included) */

/* Entry syntax, shared with the rule parser: 1 ok, 0 not. */
int list_name_ok(const char *s);    /* host name: LDH and '_' labels of 1..63, at most 253 */
int list_address_ok(const char *s); /* "local@domain" or "@domain" */

#endif

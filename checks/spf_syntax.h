/* spf_syntax.h - RFC 7208 record syntax (section 12 ABNF) and explanation
 * macros, checked by moat before libspf2 sees a record: libspf2 1.2.10
 * accepts many invalid records, evaluates redirect= where it stands and
 * URL-encodes with lower-case hex. Pure, no I/O. */
#ifndef MOAT_SPF_SYNTAX_H
#define MOAT_SPF_SYNTAX_H

#include <stddef.h>

/* 1 if txt (len bytes, NULs allowed) is an SPF record at all: "v=spf1"
 * (any case) followed by SP or the end (RFC 7208 4.5). */
int spf_syntax_is_spf1(const char *txt, size_t len);

/* libspf2 rejects CIDR lengths of 0 (its 0 means "none"). For the client
 * at hand they are rewritten: ip4:x/0 becomes ip4:<client> for an IPv4
 * client and ip4:x for an IPv6 one (it never matches), the same for ip6;
 * a/0 and mx/0 get SPF_ANY_MARKER after their domain, and the DNS layer
 * answers an address query for such a name with the client's address when
 * the name has any (spf.c). The marker starts with a control byte, which
 * no macro value can hold (records, HELO, sender and PTR names are all
 * printable by then), so no input can forge it. */
#define SPF_ANY_MARKER "\x01moat-any"

struct spf_client {
	int family;             /* AF_INET or AF_INET6 */
	const char *addr;       /* as text: "192.0.2.1", "2001:db8::1" */
};

/* Check an SPF record against the ABNF: terms separated by SP only,
 * printable US-ASCII, known mechanisms with valid arguments, CIDR lengths,
 * macros, at most one redirect= and one exp= (RFC 7208 6).
 * 0: out holds the record as libspf2 must see it: the mechanisms in order
 * (CIDR lengths of 0 rewritten for cl, unless cl is NULL), then redirect=
 * unless the record has an "all" (6.1: ignored then), then exp=; unknown
 * modifiers left out (6: ignored). outsize >= 6 * len + 64 always suffices.
 * -1: a syntax error (or out too small), err says which term. */
int spf_syntax_check(const char *txt, size_t len, const struct spf_client *cl,
                     char *out, size_t outsize, char *err, size_t errsize);

/* The i-th (0-based) directive libspf2 evaluates of a record that passed
 * spf_syntax_check, as published, for a log line: its mechanisms in
 * order, with the qualifier written out ("+mx", "-ip4:192.0.2.0/24"),
 * then "redirect=..." (unless the record has an "all"). 1 and the term in
 * out (cut to fit), 2 if it is the redirect, 0 if there is no such term. */
int spf_syntax_term(const char *txt, size_t len, int i, char *out, size_t size);

/* The value of a macro expansion (RFC 7208 7). */
struct spf_macro_vars {
	const char *s, *l, *o, *d, *i, *p, *h, *c, *r, *t, *v;
};

/* Check explanation text: explain-string = *( macro-string / SP ), where
 * c, r and t are allowed (7.1). 1 if valid. */
int spf_syntax_exp_valid(const char *txt, size_t len);

/* Expand valid explanation text into out (NUL-terminated). Upper-case
 * macro letters are URL-encoded with upper-case hex (RFC 3986 2.1). -1 if
 * the text is invalid, a variable is NULL or out is too small. */
int spf_macro_expand_exp(const char *txt, size_t len, const struct spf_macro_vars *v,
                         char *out, size_t outsize);

/* Check txt for p-needing letters: 1 if the text uses %{p} / %{P}. */
int spf_macro_uses_p(const char *txt, size_t len);

#endif

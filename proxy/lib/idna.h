/* idna.h - internationalised domain names in the one form moat looks up and
 * compares: A-labels (RFC 5890), lower case, no trailing dot.
 *
 * IDNA2008 (RFC 5891-5893) through libidn2, with the UTS #46 mapping and
 * non-transitional processing, as Postfix does: "ПРИМЕР.test" and
 * "пример.test" are "xn--e1afmkfd.test", "straße.de" is "xn--strae-oqa.de"
 * (not IDNA2003's "strasse.de"). Pure CPU, no I/O: fine on the event loop. */
#ifndef MOAT_IDNA_H
#define MOAT_IDNA_H

#include <stddef.h>

enum idna_err {
	IDNA_OK = 0,
	IDNA_INVALID = -1, /* a label fails IDNA2008 (a disallowed code point, the
	                    * Bidi or CONTEXTJ rules, a broken "xn--" label), an
	                    * empty label, or the name is over 253 octets, or a
	                    * label over 63, once in A-labels */
	IDNA_NOMEM = -2,   /* libidn2 could not allocate */
};

/* The n bytes at in, a domain name (labels of ASCII, U-labels in UTF-8 or
 * A-labels; one trailing dot is ignored), in A-label form into out (size
 * bytes; 254 hold any name). An ASCII label that does not start with "xn--"
 * is only lower-cased: its syntax is the caller's to check (LDH for a path,
 * '_' for a DKIM selector). A label with a byte over 0x7f or an "xn--"
 * prefix must be a valid IDNA2008 label. Returns 0 or an enum idna_err;
 * out is "" on error. */
int idna_to_ascii(const char *in, size_t n, char *out, size_t size);

/* Does the n bytes at in hold a label idna_to_ascii converts (non-ASCII,
 * or an "xn--" A-label)? Without one, the A-label form is in lower-cased. */
int idna_needed(const char *in, size_t n);

/* Is the n bytes at in one domain whatever IDNA processing a backend uses?
 * 0 when it holds a character that UTS #46 transitional processing (IDNA2003's
 * answer, and ICU's default before ICU 76, which Postfix uses) or an older
 * mapping table turns into other text: "straße.de" is "strasse.de" there
 * (ß, ẞ, ς, ZWJ, ZWNJ). A recipient domain must be one domain: a backend
 * that maps it the other way would take a domain moat judged local for
 * someone else's. Its A-label is never ambiguous. */
int idna_unambiguous(const char *in, size_t n);

#endif

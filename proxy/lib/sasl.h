/* sasl.h - what moat reads of an AUTH exchange it passes on (RFC 4954):
 * the mechanism, and the login name in the client's base64 answers to
 * PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login). The password is
 * never kept: it is decoded into a buffer of the call's, which is wiped
 * before the call returns. Pure. */
#ifndef MOAT_SASL_H
#define MOAT_SASL_H

#include <stddef.h>

enum sasl_mech { SASL_NONE, SASL_PLAIN, SASL_LOGIN };

/* The mechanism named (any case), or SASL_NONE. */
enum sasl_mech sasl_mech(const char *name);
/* "PLAIN", "LOGIN". */
const char *sasl_mech_name(enum sasl_mech m);

/* "AUTH mechanism [initial-response]": the mechanism and where the initial
 * response starts (NULL: none; "=" is an empty one, RFC 4954 4). 0, or -1
 * when the argument is not that shape. */
int sasl_auth_args(const char *arg, enum sasl_mech *m, const char **initial);

/* Base64 (RFC 4648 4: the alphabet, padding as required, nothing else) of
 * in[0..len) into out: the decoded length, or -1 (not base64, or more than
 * size bytes). "=" alone is the empty answer (RFC 4954 4). */
long sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t size);

/* The login name in a client's answer, base64 as sent (len bytes): for
 * PLAIN, its message "[authzid] NUL authcid NUL passwd" (each of the last
 * two non-empty, no other NUL): the authcid; for LOGIN, the first answer:
 * the whole of it. The name must be UTF-8 without control characters and
 * at most MOAT_AUTH_USER_MAX bytes. 0 and the name in user (size bytes,
 * NUL-terminated), or -1: not an answer moat passes on. */
int sasl_login_name(enum sasl_mech m, const char *b64, size_t len, char *user, size_t size);

#endif

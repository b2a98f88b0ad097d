/* backend_target.h - where backend and submission_backend point: a list of
 * backends, each a numeric address or a DNS name with a port; the parser
 * (pure) and the words for logs */
#ifndef MOAT_BACKEND_TARGET_H
#define MOAT_BACKEND_TARGET_H

#include <stddef.h>
#include <sys/socket.h>
#include "proxy/lib/bounds.h"

#define BACKEND_NAME_MAX 253 /* a DNS name in text, no trailing dot */

struct backend_target {
	char name[BACKEND_NAME_MAX + 1]; /* A-labels, lower case, no trailing dot; "" an address */
	int port;
	struct sockaddr_storage addr;    /* an address's (name ""); port included */
	socklen_t addrlen;
};

/* In order: the first that answers takes the mail (failover). */
struct backend_list {
	int n;
	struct backend_target t[MOAT_BACKENDS_MAX];
};

/* "mx1.example.com:25, 192.0.2.1, [2001:db8::1]:2525": items separated by
 * commas or blanks, each "ADDR[:PORT]", "[V6][:PORT]" or "NAME[:PORT]" (port
 * 25 unless given). A name has at least two labels (moat applies no search
 * list) and a last label that is not a number; a U-label name is kept as its
 * A-labels. 0, or -1 with "\"ITEM\" why" (or "more than N backends") in msg. */
int backend_list_parse(const char *val, struct backend_list *l, char *msg, size_t msz);
/* The same backends in the same order. */
int backend_list_equal(const struct backend_list *a, const struct backend_list *b);
/* The same backend: the same name and port, or the same address and port. */
int backend_target_equal(const struct backend_target *a, const struct backend_target *b);
/* "mx.example.com:25", "192.0.2.1:25", "[2001:db8::1]:25". */
void backend_target_text(const struct backend_target *t, char *out, size_t size);
/* An address and port as "192.0.2.1:25" or "[2001:db8::1]:25". */
void backend_addr_text(const struct sockaddr *sa, char *out, size_t size);

#endif

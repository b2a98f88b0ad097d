/* xclient.h - what moat tells the backend about the real client: XCLIENT
 * (Postfix's XCLIENT_README: the backend's session then takes the client's
 * address, name and HELO, and its own client restrictions apply to them) or
 * XFORWARD (its log only). Pure: the command lines, xtext-encoded. */
#ifndef MOAT_XCLIENT_H
#define MOAT_XCLIENT_H

#include <stddef.h>

/* The client's reverse DNS name, as the backend's NAME takes it. */
enum client_name {
	CLIENT_NAME_OK,      /* name: the forward-confirmed name */
	CLIENT_NAME_NONE,    /* none (a permanent failure): [UNAVAILABLE] */
	CLIENT_NAME_TEMP,    /* a temporary failure, or not looked up: [TEMPUNAVAIL] */
};

/* Who the client is. */
struct relay_client {
	const char *ip;      /* text, "192.0.2.1" or "2001:db8::1" */
	int port;
	const char *helo;    /* "" before HELO */
	int esmtp;
	enum client_name name_status;
	const char *name;    /* with CLIENT_NAME_OK */
	const char *login;   /* the authenticated user; NULL: none */
};

/* An XCLIENT command line stays within SMTP's 512 bytes with its CRLF
 * (XCLIENT_README); the attributes are spread over up to XCLIENT_LINES_MAX
 * commands when one would be longer (NAME ADDR PORT first). */
#define XCLIENT_LINE_MAX 510
#define XCLIENT_LINES_MAX 3

/* RFC 3461 xtext of in into out (size >= 1): '+', '=' and bytes outside
 * '!'..'~' as "+XX". Returns the length it needs (as snprintf: out is cut,
 * whole escapes only, when that is >= size). */
size_t xtext(const char *in, char *out, size_t size);

/* The XCLIENT commands (no CRLF) for cl with the attributes the backend
 * lists (attrs: XCLIENT_* of smtp_reply.h): ADDR, PORT, NAME, HELO, PROTO,
 * and LOGIN when cl has one. A value that cannot fit in one command is
 * sent as [UNAVAILABLE]. Returns the number of lines, or 0 when the
 * backend does not take ADDR (XCLIENT is then no use). */
int xclient_lines(const struct relay_client *cl, unsigned attrs, char lines[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1]);

/* Can the client's HELO name follow EHLO to the backend after XCLIENT (one
 * word of printable ASCII, at most 255 bytes)? Else moat's own name goes. */
int xclient_helo_ok(const char *helo);

/* The XFORWARD command (no CRLF) for cl: NAME ADDR PORT PROTO HELO SOURCE. */
void xforward_line(const struct relay_client *cl, char *line, size_t size);

#endif

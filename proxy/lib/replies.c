/* replies.c - the reply table (codes: RFC 5321 4.2.3; enhanced: RFC 3463, RFC 7372) */
#include <stdio.h>
#include <string.h>

#include "proxy/lib/replies.h"

const struct reply replies[R_COUNT] = {
	[R_BANNER]            = {220, NULL,    "%h ESMTP moat"},
	[R_HELO_OK]           = {250, NULL,    "%h"},
	[R_EHLO_OK]           = {250, NULL,    "%h"},
	[R_MAIL_OK]           = {250, "2.1.0", "OK"},
	[R_PREGREET]          = {554, "5.5.1", "Error: SMTP protocol violation"},
	[R_DONE]              = {250, "2.0.0", "OK"},
	[R_BYE]             = {221, "2.0.0", "Bye"},
	[R_VRFY]            = {252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"},
	[R_HELP]            = {214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"},
	[R_DATA_GO]         = {354, NULL,    "End data with <CR><LF>.<CR><LF>"},
	[R_HELO_SYNTAX]     = {501, "5.5.4", "Syntax: HELO hostname"},
	[R_EHLO_SYNTAX]     = {501, "5.5.4", "Syntax: EHLO hostname"},
	[R_NEED_HELO]       = {503, "5.5.1", "Error: send HELO/EHLO first"},
	[R_NESTED_MAIL]     = {503, "5.5.1", "Error: nested MAIL command"},
	[R_NEED_MAIL]       = {503, "5.5.1", "Error: need MAIL command"},
	[R_NEED_RCPT]       = {503, "5.5.1", "Error: need RCPT command"},
	[R_NO_VALID_RCPT]   = {554, "5.5.1", "Error: no valid recipients"},
	[R_MAIL_SYNTAX]     = {501, "5.5.4", "Syntax: MAIL FROM:<address>"},
	[R_RCPT_SYNTAX]     = {501, "5.5.4", "Syntax: RCPT TO:<address>"},
	[R_BAD_SENDER]      = {501, "5.1.7", "Bad sender address syntax"},
	[R_BAD_RCPT]        = {501, "5.1.3", "Bad recipient address syntax"},
	/* IDNA2008 says what a domain name is: one it refuses is bad syntax (5.1.8
	 * is for a domain DNS says cannot take mail) */
	[R_BAD_SENDER_IDN]  = {501, "5.1.7", "Bad sender address syntax: invalid internationalized domain name"},
	[R_BAD_RCPT_IDN]    = {501, "5.1.3", "Bad recipient address syntax: invalid or ambiguous internationalized domain name"},
	[R_PARAM]           = {555, "5.5.4", "Unsupported parameter: %s"},
	[R_BAD_PARAM_VALUE] = {501, "5.5.4", "Bad parameter value: %s"},
	[R_NO_ARGS]         = {501, "5.5.4", "Syntax: %s takes no arguments"},
	[R_SIZE]            = {552, "5.3.4", "Message size exceeds fixed limit"},
	[R_TOO_MANY_RCPT]   = {452, "4.5.3", "Error: too many recipients"},
	[R_UNKNOWN_CMD]     = {500, "5.5.2", "Error: command not recognized"},
	[R_NOT_IMPL]        = {502, "5.5.1", "Error: command not implemented"},
	[R_LINE_TOO_LONG]   = {500, "5.5.2", "Error: line too long"},
	[R_BAD_CHARS]       = {500, "5.5.2", "Error: bad characters in command"},
	[R_SMTPUTF8_NEEDED] = {553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8"},
	[R_TOO_MANY_CONN]   = {421, "4.7.0", "%h Error: too many connections"},
	[R_TOO_MANY_CONN_IP]= {421, "4.7.0", "%h Error: too many connections from your address"},
	[R_TIMEOUT]         = {421, "4.4.2", "%h Error: timeout exceeded"},
	[R_TOO_MANY_ERRORS] = {421, "4.7.0", "%h Error: too many errors"},
	[R_BACKEND_DOWN]    = {451, "4.4.1", "Error: backend unavailable, try again later"},
	[R_BACKEND_LOST]    = {451, "4.4.2", "Error: backend connection lost, try again later"},
	/* no backend of the list has an address (its name: NXDOMAIN, no A or
	 * AAAA record, or DNS failing before any answer) */
	[R_BACKEND_DNS]     = {451, "4.4.3", "Error: backend address not known, try again later"},
	[R_SHUTDOWN]        = {421, "4.3.2", "%h Service shutting down"},
	[R_LOCAL_ERROR]     = {451, "4.3.0", "Error: local error in processing, try again later"},
	[R_NUL]             = {550, "5.6.0", "Message contains NUL characters"},
	[R_RELAY_DENIED]    = {554, "5.7.1", "<%s>: Relay access denied"},
	[R_RELAY_ROUTING]   = {553, "5.7.1", "<%s>: source routing and %%/! addressing are not allowed"},
	[R_FORGED_AUTHRES]  = {550, "5.7.1", "Message has too many Authentication-Results fields claiming %h"},
	/* RFC 5321 3.1: after a 554 greeting, every command but QUIT */
	[R_REFUSED_CMD]     = {503, "5.5.1", "Error: this connection was refused, send QUIT"},
	/* RFC 3207; the refusals as Postfix words them */
	[R_STARTTLS_GO]     = {220, "2.0.0", "Ready to start TLS"},
	[R_TLS_ACTIVE]      = {554, "5.5.1", "Error: TLS already active"},
	[R_TXN_IN_PROGRESS] = {503, "5.5.1", "Error: MAIL transaction in progress"},
	[R_TLS_UNAVAILABLE] = {454, "4.7.0", "TLS not available due to local problem"},
	/* backend_tls = required without a verified TLS connection to the backend */
	[R_BACKEND_TLS]     = {451, "4.7.5", "Error: no secure connection to the backend, try again later"},
	/* xclient = yes, and the backend takes no XCLIENT (or refused its syntax) */
	[R_BACKEND_XCLIENT] = {451, "4.3.5", "Error: backend not configured for this proxy, try again later"},
	/* submission_listen before STARTTLS (RFC 3207 4) */
	[R_NEED_STARTTLS]   = {530, "5.7.0", "Must issue a STARTTLS command first"},
	/* AUTH (RFC 4954 4, 6); the backend's own replies (334, 235, 535...)
	 * go to the client verbatim */
	[R_AUTH_MECH]       = {504, "5.5.4", "Unrecognized authentication type"},
	[R_AUTH_SYNTAX]     = {501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"},
	[R_AUTH_ALREADY]    = {503, "5.5.1", "Error: already authenticated"},
	[R_AUTH_BAD_DATA]   = {501, "5.5.2", "Cannot decode response"},
	[R_AUTH_TOO_LONG]   = {500, "5.5.6", "Authentication Exchange line is too long"},
	[R_AUTH_TEMP]       = {454, "4.7.0", "Temporary authentication failure"},
	[R_AUTH_ABORTED]    = {501, "5.7.0", "Authentication aborted"},
	[R_AUTH_BLOCKED]    = {421, "4.7.0", "%h Error: too many failed authentications from your address, try again later"},
	/* greylisting: %s the seconds until a retry passes */
	[R_GREYLISTED]      = {451, "4.7.1", "Greylisted, try again in %s seconds"},
	/* %s: "100 messages per hour for 192.0.2.1 reached, try again after 14:00:00 UTC" */
	[R_RATE_LIMITED]    = {451, "4.7.1", "Rate limit of %s"},
};

/* Append at most the room left, keeping 3 bytes for CRLF and NUL. */
static void put(char *buf, int size, int *n, const char *s, size_t len)
{
	int room = size - 3 - *n;

	if (room <= 0)
		return;
	if (len > (size_t)room)
		len = (size_t)room;
	memcpy(buf + *n, s, len);
	*n += (int)len;
}

/* The EHLO keywords moat offers, in order; when: 0 always, else the
 * EHLO_* flag that offers it. */
static const struct {
	const char *text; /* "%lu": the size limit */
	unsigned when;
} ehlo_keywords[] = {
	{"PIPELINING", 0},
	{"SIZE %lu", 0},
	{"STARTTLS", EHLO_STARTTLS},
	{"AUTH PLAIN LOGIN", EHLO_AUTH},
	{"8BITMIME", 0},
	{"SMTPUTF8", EHLO_SMTPUTF8},
	{"DSN", EHLO_DSN},
	{"ENHANCEDSTATUSCODES", 0},
};

int reply_ehlo(char *buf, int size, const char *hostname, unsigned long size_limit, unsigned offers)
{
	int n = reply_format_line(buf, size, R_EHLO_OK, hostname, NULL, 1), last = -1, i;

	for (i = 0; i < (int)(sizeof ehlo_keywords / sizeof ehlo_keywords[0]); i++)
		if (!ehlo_keywords[i].when || (ehlo_keywords[i].when & offers))
			last = i;
	for (i = 0; i <= last && n > 0 && n < size; i++) {
		char kw[64];
		int w;

		if (ehlo_keywords[i].when && !(ehlo_keywords[i].when & offers))
			continue;
		snprintf(kw, sizeof kw, ehlo_keywords[i].text, size_limit);
		w = snprintf(buf + n, (size_t)(size - n), "%d%c%s\r\n", replies[R_EHLO_OK].code, i < last ? '-' : ' ', kw);
		n = w < 0 || w >= size - n ? -1 : n + w;
	}
	return n;
}

/* The text with %h, %s and %% expanded, appended with put. */
static void expand(char *buf, int size, int *n, const char *text, const char *hostname, const char *arg)
{
	for (const char *t = text; *t; t++) {
		const char *sub = NULL;

		if (t[0] == '%' && t[1] == 'h')
			sub = hostname;
		else if (t[0] == '%' && t[1] == 's')
			sub = arg ? arg : "";
		else if (t[0] == '%' && t[1] == '%')
			sub = "%";
		if (sub) {
			put(buf, size, n, sub, strlen(sub));
			t++;
		} else {
			put(buf, size, n, t, 1);
		}
	}
}

int reply_text(char *buf, int size, enum reply_id id, const char *hostname, const char *arg)
{
	int n = 0;

	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	expand(buf, size, &n, replies[id].text, hostname, arg);
	buf[n] = '\0';
	return n;
}

int reply_format(char *buf, int size, enum reply_id id, const char *hostname, const char *arg)
{
	return reply_format_line(buf, size, id, hostname, arg, 0);
}

int reply_format_line(char *buf, int size, enum reply_id id, const char *hostname, const char *arg,
                      int more)
{
	const struct reply *r = &replies[id];
	char head[16];
	int n = 0;

	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	put(buf, size, &n, head, (size_t)snprintf(head, sizeof head, "%d%c", r->code, more ? '-' : ' '));
	if (r->esc) {
		put(buf, size, &n, r->esc, strlen(r->esc));
		put(buf, size, &n, " ", 1);
	}
	expand(buf, size, &n, r->text, hostname, arg);
	buf[n++] = '\r';
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

/* replies.c - the reply table (codes: RFC 5321 4.2.3; enhanced: RFC 3463, RFC 7372) */
#include <stdio.h>
#include <string.h>

#include "proxy/replies.h"

const struct reply replies[R_COUNT] = {
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
	[R_SHUTDOWN]        = {421, "4.3.2", "%h Service shutting down"},
	[R_LOCAL_ERROR]     = {451, "4.3.0", "Error: local error in processing, try again later"},
	[R_NUL]             = {550, "5.6.0", "Message contains NUL characters"},
	[R_FORGED_AUTHRES]  = {550, "5.7.1", "Message has too many Authentication-Results fields claiming %h"},
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

int reply_format(char *buf, int size, enum reply_id id, const char *hostname, const char *arg)
{
	const struct reply *r = &replies[id];
	char head[16];
	const char *t;
	int n = 0;

	if (size < 3) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	put(buf, size, &n, head, (size_t)snprintf(head, sizeof head, "%d ", r->code));
	if (r->esc) {
		put(buf, size, &n, r->esc, strlen(r->esc));
		put(buf, size, &n, " ", 1);
	}
	for (t = r->text; *t; t++) {
		const char *sub = NULL;

		if (t[0] == '%' && t[1] == 'h')
			sub = hostname;
		else if (t[0] == '%' && t[1] == 's')
			sub = arg ? arg : "";
		else if (t[0] == '%' && t[1] == '%')
			sub = "%";
		if (sub) {
			put(buf, size, &n, sub, strlen(sub));
			t++;
		} else {
			put(buf, size, &n, t, 1);
		}
	}
	buf[n++] = '\r';
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

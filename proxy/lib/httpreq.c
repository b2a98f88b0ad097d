/* httpreq.c - an HTTP/1.x request head (RFC 9112 3 and 5), pure */
#include <string.h>

#include "proxy/lib/httpreq.h"

/* RFC 9110 5.6.2: a method is a token. */
static int tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the head: the offset after the empty line, 0 if not there yet. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Every header line: no control byte but HTAB, a name (token) and a colon. */
static int fields_ok(const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *q = p;
		const char *eol = nl > p && nl[-1] == '\r' ? nl - 1 : nl;

		if (eol == p) /* the empty line */
			return 1;
		while (q < eol && tchar((unsigned char)*q))
			q++;
		if (q == p || q == eol || *q != ':')
			return 0;
		for (; q < eol; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				return 0;
			else if (*q == 0x7f)
				return 0;
		p = nl + 1;
	}
	return 0;
}

enum http_parse http_parse_request(const char *buf, size_t len, size_t max, struct http_request *req)
{
	size_t end = head_end(buf, len < max ? len : max), n;
	const char *p = buf, *sp, *eol;

	memset(req, 0, sizeof *req);
	if (!end) {
		/* a line that cannot be a request line is refused at once */
		for (size_t i = 0; i < len && i < HTTP_METHOD_MAX && buf[i] != ' '; i++)
			if (!tchar((unsigned char)buf[i]))
				return HTTP_BAD;
		return len >= max ? HTTP_TOO_BIG : HTTP_MORE;
	}
	eol = memchr(buf, '\n', end);
	n = (size_t)(eol - buf) - (eol > buf && eol[-1] == '\r');
	/* METHOD SP TARGET SP HTTP/1.D */
	for (sp = p; sp < buf + n && tchar((unsigned char)*sp); sp++)
		;
	if (sp == p || sp == buf + n || *sp != ' ' || (size_t)(sp - p) > HTTP_METHOD_MAX)
		return HTTP_BAD;
	memcpy(req->method, p, (size_t)(sp - p));
	p = sp + 1;
	if (n < 9 || memcmp(buf + n - 9, " HTTP/1.", 8) != 0 || buf[n - 1] < '0' || buf[n - 1] > '9' ||
	    buf + n - 9 <= p)
		return HTTP_BAD;
	req->minor = buf[n - 1] - '0';
	sp = buf + n - 9;
	if (*p != '/')
		return HTTP_BAD; /* origin-form only */
	for (const char *q = p; q < sp; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return HTTP_BAD;
	{
		const char *qm = memchr(p, '?', (size_t)(sp - p));
		size_t plen = (size_t)((qm ? qm : sp) - p);

		if (plen > HTTP_PATH_MAX)
			return HTTP_BAD;
		memcpy(req->path, p, plen);
	}
	if (!fields_ok(eol + 1, buf + end))
		return HTTP_BAD;
	req->len = end;
	return HTTP_DONE;
}

/* httpreq.h - an HTTP/1.x request head, as metrics_listen reads it (pure):
 * the request line and the end of the header fields, nothing more (no
 * body is read: a request with one is answered and the connection closed). */
#ifndef MOAT_LIB_HTTPREQ_H
#define MOAT_LIB_HTTPREQ_H

#include <stddef.h>

#define HTTP_METHOD_MAX 16
#define HTTP_PATH_MAX 256

enum http_parse {
	HTTP_MORE,    /* the head is not whole yet */
	HTTP_DONE,    /* a whole, well-formed head: req filled */
	HTTP_BAD,     /* not an HTTP/1.x request head (400) */
	HTTP_TOO_BIG, /* no end of the head within max bytes (431) */
};

struct http_request {
	char method[HTTP_METHOD_MAX + 1]; /* as sent ("GET") */
	char path[HTTP_PATH_MAX + 1];     /* the target without its query ("/metrics") */
	int minor;                        /* HTTP/1.minor */
	size_t len;                       /* bytes of the head, its empty line included */
};

/* Parse the len bytes of buf received so far (lines end in CRLF or LF; a
 * head of at most max bytes). */
enum http_parse http_parse_request(const char *buf, size_t len, size_t max, struct http_request *req);

#endif

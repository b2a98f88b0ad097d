/* proxyproto.h - HAProxy PROXY protocol v1 and v2 headers; pure */
#ifndef MOAT_PROXYPROTO_H
#define MOAT_PROXYPROTO_H

#include <stddef.h>
#include <sys/socket.h>

enum pp_result {
	PP_OK,   /* a whole valid header; *consumed bytes belong to it */
	PP_MORE, /* valid so far, need more bytes */
	PP_BAD,  /* not a PROXY header or a malformed one: close the connection */
};

struct pp_info {
	int local;                   /* v2 LOCAL / v1 UNKNOWN: keep the socket's own addresses */
	struct sockaddr_storage src; /* the real client */
	socklen_t srclen;
	struct sockaddr_storage dst; /* the address the client connected to */
	socklen_t dstlen;
};

/* Parse the start of a connection's input. v1 ("PROXY TCP4 ...\r\n", at most
 * 107 bytes) and v2 (12-byte signature, version 2, PROXY/LOCAL, TCP/UDP over
 * IPv4/IPv6; TLVs skipped; UNIX addresses are PP_BAD). */
enum pp_result proxy_parse(const unsigned char *buf, size_t len, size_t *consumed, struct pp_info *out);

/* How many more bytes may be read from the connection without reading
 * past the header (at least 1), given the buf[0..len) read so far, all of
 * which is header (proxy_parse said PP_MORE). Implicit TLS reads no byte of
 * the ClientHello that follows the header, which goes to OpenSSL. */
size_t proxy_need(const unsigned char *buf, size_t len);

#endif

/* header.h - a message's header section, read once from where the message
 * is kept (the spool), for every check that looks at it: the header rules
 * and DKIM. The end is found by proxy/lib/hdrscan.c, the one header scanner. */
#ifndef MOAT_CHECKS_HEADER_H
#define MOAT_CHECKS_HEADER_H

#include <stddef.h>

#include "checks/check.h"

struct msg_header {
	char *buf;        /* the header section, dot-stuffing undone, CRLF lines;
	                   * its empty line included when complete */
	size_t len;
	size_t wire_end;  /* where the body starts in the message as kept (wire form) */
	int complete;     /* the empty line was seen (else: no body, or truncated) */
	int truncated;    /* longer than the max asked for: buf holds its start */
};

/* Read the header section of a message in wire form (msglen bytes through
 * rd), keeping at most max bytes of it. 0, or -1 on a read error (h then
 * holds nothing to free). */
int msg_header_read(msg_reader rd, void *rarg, size_t msglen, size_t max, struct msg_header *h);
void msg_header_free(struct msg_header *h);

#endif

/* checks.h - where the anti-spam checks plug into a session.
 *
 * Each hook is asynchronous: it calls done exactly once, now or later from the
 * event loop, with a verdict. A verdict with code 0 means "go on". Checks
 * never write to the client: the session sends what the verdict says. */
#ifndef MOAT_CHECKS_H
#define MOAT_CHECKS_H

#include <sys/socket.h>
#include "config.h"
#include "smtp_parse.h"

struct session;

struct verdict {
	int code;          /* 0 = go on; else the SMTP reply code (4xx/5xx) */
	char esc[12];      /* enhanced status code, "5.7.1" */
	char text[512];    /* reply text after the codes */
	char reason[256];  /* short reason for the log ("relay denied") */
};

typedef void (*verdict_cb)(struct session *s, const struct verdict *v);

void checks_mail(struct session *s, verdict_cb done);
void checks_rcpt(struct session *s, const struct smtp_path *rcpt, verdict_cb done);
void checks_data(struct session *s, verdict_cb done);
/* A session ends with checks in flight: drop their callbacks. */
void checks_cancel(struct session *s);

/* Local-recipient-only relaying (checks/relay.c); pure. */
enum relay_result { RELAY_OK, RELAY_DENIED, RELAY_BAD_ROUTING };
int relay_domain_is_local(const struct config *cfg, const char *domain);
int relay_client_trusted(const struct config *cfg, const struct sockaddr *client);
enum relay_result relay_check(const struct config *cfg, const struct sockaddr *client,
                              const struct smtp_path *rcpt);

#endif

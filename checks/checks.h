/* checks.h - where the anti-spam checks plug into a session.
 *
 * Each hook is asynchronous: it calls done exactly once, now or later from the
 * event loop, with a verdict. A verdict with code 0 means "go on". Checks
 * never write to the client: the session sends what the verdict says. */
#ifndef MOAT_CHECKS_H
#define MOAT_CHECKS_H

#include <sys/socket.h>
#include "config.h"
#include "dkim.h"
#include "sender.h"
#include "smtp_parse.h"
#include "spf.h"

struct session;

struct verdict {
	int code;          /* 0 = go on; else the SMTP reply code (4xx/5xx) */
	char esc[12];      /* enhanced status code, "5.7.1" */
	char text[512];    /* reply text after the codes */
	char reason[256];  /* short reason for the log ("relay denied") */
};

typedef void (*verdict_cb)(struct session *s, const struct verdict *v);

/* What the checks found, kept in the transaction for the log and for
 * Authentication-Results. */
struct check_results {
	int sender_done;
	enum sender_res sender;
	int spf_done;
	struct spf_outcome spf;
	int dkim_done;
	struct dkim_outcome dkim;
};

/* A transaction's checks: created by checks_mail, freed with the transaction. */
struct checks;

/* MAIL: sender domain and SPF, side by side (needs s->tx->from). */
void checks_mail(struct session *s, verdict_cb done);
/* RCPT: relaying. */
void checks_rcpt(struct session *s, const struct smtp_path *rcpt, verdict_cb done);
/* End of data: DKIM over s->tx->spool. */
void checks_data(struct session *s, verdict_cb done);
/* Results so far, or NULL before MAIL. */
const struct check_results *checks_results(const struct session *s);
/* Cancel whatever is in flight (no callback follows) and free. */
void checks_txn_free(struct checks *c);

/* Local-recipient-only relaying (checks/relay.c); pure. */
enum relay_result { RELAY_OK, RELAY_DENIED, RELAY_BAD_ROUTING };
int relay_domain_is_local(const struct config *cfg, const char *domain);
int relay_client_trusted(const struct config *cfg, const struct sockaddr *client);
enum relay_result relay_check(const struct config *cfg, const struct sockaddr *client,
                              const struct smtp_path *rcpt);

#endif

/* checks.c - runs the checks for each stage and hands the session one verdict */
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "session.h"

static void go_on(struct verdict *v)
{
	memset(v, 0, sizeof *v);
}

static void refuse(struct verdict *v, int code, const char *esc, const char *reason,
                   const char *fmt, const char *arg)
{
	v->code = code;
	snprintf(v->esc, sizeof v->esc, "%s", esc);
	snprintf(v->text, sizeof v->text, fmt, arg);
	snprintf(v->reason, sizeof v->reason, "%s", reason);
}

void checks_mail(struct session *s, verdict_cb done)
{
	struct verdict v;

	go_on(&v);
	done(s, &v);
}

void checks_rcpt(struct session *s, const struct smtp_path *rcpt, verdict_cb done)
{
	struct verdict v;

	go_on(&v);
	switch (relay_check(s->cfg, (const struct sockaddr *)&s->peer, rcpt)) {
	case RELAY_OK:
		break;
	case RELAY_BAD_ROUTING:
		refuse(&v, 553, "5.7.1", "routing syntax in recipient",
		       "<%s>: source routing and %%/! addressing are not allowed", rcpt->mailbox);
		break;
	case RELAY_DENIED:
		refuse(&v, 554, "5.7.1", "relay denied", "<%s>: Relay access denied", rcpt->mailbox);
		break;
	}
	done(s, &v);
}

void checks_data(struct session *s, verdict_cb done)
{
	struct verdict v;

	go_on(&v);
	done(s, &v);
}

void checks_cancel(struct session *s)
{
	(void)s; /* no asynchronous check yet */
}

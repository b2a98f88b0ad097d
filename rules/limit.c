/* limit.c - a ratelimit rule's limit: "KEY N/WINDOW [messages|recipients]".
 *
 *   ratelimit client 100/1h                    100 messages an hour per client address
 *   ratelimit sender-domain 1000/1d recipients 1000 recipients a day per sender domain
 *   ratelimit auth-user 50/10m                 50 messages per 10 minutes per login name
 *
 * Pure: the words of the rule in, the limit out. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/lib/text.h"
#include "rules/ruleset.h"

static const char *const key_names[] = {
	[LIMIT_CLIENT] = "client", [LIMIT_SENDER_DOMAIN] = "sender-domain", [LIMIT_AUTH_USER] = "auth-user",
};
static const char *const unit_names[] = { [LIMIT_MESSAGES] = "messages", [LIMIT_RECIPIENTS] = "recipients" };

const char *rules_limit_key_name(enum rule_limit_key k)
{
	return (unsigned)k < sizeof key_names / sizeof key_names[0] ? key_names[k] : "?";
}

const char *rules_limit_unit_name(enum rule_limit_unit u)
{
	return (unsigned)u < sizeof unit_names / sizeof unit_names[0] ? unit_names[u] : "?";
}

long rules_window_parse(const char *s)
{
	size_t n = strspn(s, "0123456789");
	long v = 0, mul;

	if (n > 9 || s[n] == '\0' || s[n + 1] != '\0')
		return -1;
	switch (s[n] | 0x20) {
	case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return -1;
	}
	if (n == 0)
		v = 1; /* "100/h" */
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v < 1 || v > RULES_LIMIT_WINDOW_MAX / mul)
		return -1;
	return v * mul;
}

/* "100/1h" */
static int parse_rate(const char *s, struct rule_limit *out)
{
	size_t n = strspn(s, "0123456789");
	long v = 0, w;

	if (n == 0 || n > 10 || s[n] != '/')
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v < 1 || v > RULES_LIMIT_COUNT_MAX || (w = rules_window_parse(s + n + 1)) < 0)
		return -1;
	out->max = v;
	out->window = (int)w;
	return 0;
}

int rules_limit_parse(const char *const *words, size_t n, struct rule_limit *out, char *err, size_t errsize)
{
	char shown[TEXT_SHOW_MAX + 4];
	size_t k;

	memset(out, 0, sizeof *out);
	for (k = 0; k < sizeof key_names / sizeof key_names[0]; k++)
		if (n > 0 && strcasecmp(words[0], key_names[k]) == 0)
			break;
	if (n == 0 || k == sizeof key_names / sizeof key_names[0]) {
		snprintf(err, errsize, "ratelimit needs client, sender-domain or auth-user and N/WINDOW "
		                       "(\"ratelimit client 100/1h\")");
		return -1;
	}
	out->key = (enum rule_limit_key)k;
	if (n < 2) {
		snprintf(err, errsize, "ratelimit %s needs N/WINDOW (\"100/1h\": 100 per hour)", key_names[k]);
		return -1;
	}
	if (parse_rate(words[1], out) < 0) {
		snprintf(err, errsize, "ratelimit: \"%s\" is not N/WINDOW (a count from 1 to %ld, a window "
		         "from 1s to %dd: 30s, 10m, 1h, 1d)", text_show(words[1], strlen(words[1]), shown),
		         RULES_LIMIT_COUNT_MAX, RULES_LIMIT_WINDOW_MAX / 86400);
		return -1;
	}
	out->unit = LIMIT_MESSAGES;
	if (n > 2 && strcasecmp(words[2], "recipients") == 0)
		out->unit = LIMIT_RECIPIENTS;
	else if (!(n > 2 && strcasecmp(words[2], "messages") == 0))
		return 2;
	return 3;
}

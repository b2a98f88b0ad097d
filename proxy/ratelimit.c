/* ratelimit.c - rate limits' pure parts (see ratelimit.h). Fixed windows
 * aligned to the epoch (store.h's store_count): a limit of 100/1h allows
 * 100 from 13:00:00 to 13:59:59 UTC, and 100 more from 14:00:00. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/lib/siphash.h"
#include "proxy/ratelimit.h"

const char *ratelimit_subject(const struct rule_limit *l, const char *client_ip, const char *sender_domain,
                              const char *auth_user)
{
	switch (l->key) {
	case LIMIT_CLIENT: return client_ip && *client_ip ? client_ip : NULL;
	case LIMIT_SENDER_DOMAIN: return sender_domain && *sender_domain ? sender_domain : NULL;
	case LIMIT_AUTH_USER: return auth_user && *auth_user ? auth_user : NULL;
	}
	return NULL;
}

void ratelimit_key(const struct rule_limit *l, const char *subject, char key[STORE_KEY_MAX])
{
	static const uint8_t k[16] = "moat-ratelimit-1"; /* the same in every replica */
	const char *unit = l->unit == LIMIT_RECIPIENTS ? "r" : "m";
	const char *kind = l->key == LIMIT_CLIENT ? "c" : l->key == LIMIT_SENDER_DOMAIN ? "d" : "u";
	int n = snprintf(key, STORE_KEY_MAX, "r:%s:%s:%ld/%d:%s", unit, kind, l->max, l->window, subject);

	for (char *p = key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (n < 0 || n >= STORE_KEY_MAX)
		snprintf(key, STORE_KEY_MAX, "r:%s:%s:%ld/%d:#%016llx", unit, kind, l->max, l->window,
		         (unsigned long long)siphash24(k, key, strlen(key)));
}

void ratelimit_window_text(int window, char *buf, size_t size)
{
	static const struct { int secs; const char *one, *many; } units[] = {
		{ 86400, "day", "days" }, { 3600, "hour", "hours" }, { 60, "minute", "minutes" },
		{ 1, "second", "seconds" },
	};

	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (window % units[i].secs)
			continue;
		if (window == units[i].secs)
			snprintf(buf, size, "per %s", units[i].one);
		else
			snprintf(buf, size, "per %d %s", window / units[i].secs, units[i].many);
		return;
	}
}

void ratelimit_reset_text(long long reset_at, long long now, char *buf, size_t size)
{
	time_t r = (time_t)reset_at, n = (time_t)now;
	struct tm tr, tn;

	gmtime_r(&r, &tr);
	gmtime_r(&n, &tn);
	if (tr.tm_year == tn.tm_year && tr.tm_yday == tn.tm_yday)
		strftime(buf, size, "%H:%M:%S UTC", &tr);
	else
		strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tr);
}

void ratelimit_text(const struct rule_limit *l, const char *subject, long long reset_at, long long now,
                    char *buf, size_t size)
{
	char per[48], at[48];

	ratelimit_window_text(l->window, per, sizeof per);
	ratelimit_reset_text(reset_at, now, at, sizeof at);
	snprintf(buf, size, "%ld %s %s for %.256s reached, try again after %s", l->max,
	         l->max == 1 ? (l->unit == LIMIT_RECIPIENTS ? "recipient" : "message") : rules_limit_unit_name(l->unit),
	         per, subject, at);
	for (char *p = buf; *p; p++) /* a login name is the client's text: never a CR or LF in a reply */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

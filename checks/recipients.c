/* recipients.c - local_recipients: unknown users are refused before DATA */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "checks/recipients.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/strset.h"

/* Lower-case copy of "local@domain" into buf; -1 if it does not fit. */
static int key(char *buf, size_t size, const char *local, size_t llen, const char *domain)
{
	size_t dl = strlen(domain), i;

	if (llen + dl + 2 > size)
		return -1;
	for (i = 0; i < llen; i++)
		buf[i] = (char)tolower((unsigned char)local[i]);
	buf[llen] = '@';
	for (i = 0; i < dl; i++)
		buf[llen + 1 + i] = (char)tolower((unsigned char)domain[i]);
	buf[llen + 1 + dl] = '\0';
	return (int)(llen + 1 + dl);
}

int recipients_has(const struct strset *t, const char *local, const char *domain)
{
	char k[MOAT_PATH_MAX * 2];
	const char *plus = strchr(local, '+');
	int n;

	if ((n = key(k, sizeof k, local, strlen(local), domain)) > 0 && strset_has(t, k, (size_t)n))
		return 1;
	if (plus && (n = key(k, sizeof k, local, (size_t)(plus - local), domain)) > 0 &&
	    strset_has(t, k, (size_t)n))
		return 1;
	return (n = key(k, sizeof k, "", 0, domain)) > 0 && strset_has(t, k, (size_t)n);
}

/* One entry: trimmed, must hold exactly one '@' with a domain after it;
 * into out lower-cased, its domain in A-labels (an entry may be written
 * with U-labels or A-labels: the check compares smtp_path.ascii_domain). */
static int entry(char *line, char *out, size_t size)
{
	char *p = line, *end, *at;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strcspn(p, "#\r\n");
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	if (!*p)
		return 0;
	at = strchr(p, '@');
	if (!at || strchr(at + 1, '@') || !at[1] || strpbrk(p, " \t"))
		return -1;
	n = (size_t)(at - p);
	if (n + 2 > size)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '@';
	return idna_to_ascii(at + 1, strlen(at + 1), out + n + 1, size - n - 1) == IDNA_OK ? 1 : -1;
}

struct strset *recipients_load(const char *path, char *err, size_t errsize)
{
	FILE *f = fopen(path, "r");
	struct strset *t;
	char line[MOAT_PATH_MAX * 2 + 2];
	int lineno = 0;

	if (!f) {
		snprintf(err, errsize, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	t = strset_new();
	while (t && fgets(line, sizeof line, f)) {
		char e[sizeof line];
		int r;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errsize, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		r = entry(line, e, sizeof e);
		if (r < 0) {
			snprintf(err, errsize, "%s:%d: \"%.64s\" is not user@domain or @domain", path, lineno, line);
			goto fail;
		}
		if (r > 0 && strset_add(t, e, strlen(e)) < 0) {
			snprintf(err, errsize, "%s:%d: out of memory", path, lineno);
			goto fail;
		}
	}
	fclose(f);
	if (!t)
		snprintf(err, errsize, "%s: out of memory", path);
	return t;
fail:
	fclose(f);
	strset_free(t);
	return NULL;
}

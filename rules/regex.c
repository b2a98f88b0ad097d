/* regex.c - a /regex/ of a rule file, checked before regcomp sees it; pure */
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/text.h"
#include "rules/regex.h"
#include "rules/rules.h"

/* A repetition operator at re[i]: its length (0: none) and how many copies
 * of its operand glibc's regcomp makes (it expands "x+" to "xx*" and
 * "x{2,5}" to five x's). */
static size_t repeat_at(const char *re, size_t i, unsigned long *copies)
{
	size_t j = i + 1;
	unsigned long n = 0, m;

	*copies = 1;
	if (re[i] == '*' || re[i] == '?')
		return 1;
	if (re[i] == '+') {
		*copies = 2;
		return 1;
	}
	if (re[i] != '{' || re[j] < '0' || re[j] > '9')
		return 0;
	for (; re[j] >= '0' && re[j] <= '9'; j++)
		n = n < 100000 ? n * 10 + (unsigned long)(re[j] - '0') : n;
	m = n;
	if (re[j] == ',') {
		m = re[j + 1] >= '0' && re[j + 1] <= '9' ? 0 : n + 1; /* "{n,}" is n copies and a star */
		for (j++; re[j] >= '0' && re[j] <= '9'; j++)
			m = m < 100000 ? m * 10 + (unsigned long)(re[j] - '0') : m;
	}
	if (re[j] != '}')
		return 0; /* regcomp will say what is wrong */
	*copies = m > 1 ? m : 1;
	return j + 1 - i;
}

/* Past the bracket expression at re[i] ("[^]a-z[:digit:]]"). */
static size_t skip_bracket(const char *re, size_t i)
{
	i++;
	if (re[i] == '^')
		i++;
	if (re[i] == ']')
		i++;
	while (re[i] && re[i] != ']') {
		if (re[i] == '[' && (re[i + 1] == ':' || re[i + 1] == '.' || re[i + 1] == '=')) {
			const char *end = strstr(re + i + 2, (char[]){ re[i + 1], ']', '\0' });

			i = end ? (size_t)(end - re) + 2 : strlen(re);
		} else {
			i++;
		}
	}
	return re[i] ? i + 1 : i;
}

/* The next element of a regex at re[i]: its length; *paren: '(' or ')' or 0. */
static size_t element(const char *re, size_t i, int *paren)
{
	*paren = 0;
	if (re[i] == '(' || re[i] == ')') {
		*paren = re[i];
		return 1;
	}
	if (re[i] == '[')
		return skip_bracket(re, i) - i;
	return re[i] == '\\' && re[i + 1] ? 2 : 1;
}

/* See regex.h. */
int rules_regex_check(const char *re, char *why, size_t size)
{
	size_t len = strlen(re), i, n, open[RULES_NEST_MAX + 1];
	unsigned long *group = calloc(len + 1, sizeof *group), within[RULES_NEST_MAX + 1], copies, total = 0;
	int depth = 0, deepest = 0, paren, repeated = 0, r = 0;

	if (!group)
		return text_error(why, size, "out of memory");
	/* pass 1: the copies of each group, from the repetition after its ')' */
	for (i = 0; i < len; i += n) {
		if ((n = repeat_at(re, i, &copies)) > 0)
			continue;
		n = element(re, i, &paren);
		if (paren == '(' && ++depth <= RULES_NEST_MAX) {
			open[depth] = i;
		} else if (paren == ')' && depth > 0) {
			if (depth <= RULES_NEST_MAX) {
				repeat_at(re, i + 1, &copies);
				group[open[depth]] = copies;
			}
			depth--;
		}
		deepest = depth > deepest ? depth : deepest;
	}
	if (deepest > RULES_NEST_MAX) {
		free(group);
		return text_error(why, size, "groups nested too deep (max %d)", RULES_NEST_MAX);
	}
	/* pass 2: copies of each atom times those of the groups around it */
	within[0] = 1;
	depth = 0;
	for (i = 0; i < len && r == 0; i += n) {
		if ((n = repeat_at(re, i, &copies)) > 0) {
			if (repeated)
				r = text_error(why, size, "a repetition of a repetition");
			repeated = 1;
			continue;
		}
		repeated = 0;
		n = element(re, i, &paren);
		if (re[i] == '\\' && re[i + 1] >= '1' && re[i + 1] <= '9')
			r = text_error(why, size, "back-references are not allowed");
		if (paren == '(' && depth < RULES_NEST_MAX) {
			depth++;
			within[depth] = within[depth - 1] * (group[i] ? group[i] : 1);
			copies = 1;
		} else if (paren == ')') {
			depth -= depth > 0;
			continue;
		} else {
			repeat_at(re, i + n, &copies);
		}
		total += paren ? 0 : within[depth] * copies;
		if (within[depth] * copies > RULES_REGEX_COPIES || total > RULES_REGEX_COPIES)
			r = text_error(why, size, "repetitions add up to more than %d copies", RULES_REGEX_COPIES);
	}
	free(group);
	return r;
}


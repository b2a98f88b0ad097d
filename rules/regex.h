/* regex.h - rule-file regexes checked for what would make regcomp or
 * regexec costly; pure */
#ifndef MOAT_RULES_REGEX_H
#define MOAT_RULES_REGEX_H

#include <stddef.h>

/* glibc's regcomp copies a repeated operand once per repetition, and
 * regexec on back-references can take exponential time over a header an
 * attacker writes. Refused: back-references, a repetition of a repetition
 * ("a++": 2^n copies), groups nested deeper than RULES_NEST_MAX, and
 * repetitions that multiply or add up past RULES_REGEX_COPIES copies of an
 * atom ("((a{99}){99}){99}"). Unbalanced parentheses are left to regcomp.
 * 0, or -1 with the reason in why. */
int rules_regex_check(const char *re, char *why, size_t size);

#endif

/* registry.h - the checks moat runs: one row each (check.h), in the order
 * they report in logs and Authentication-Results */
#ifndef MOAT_CHECKS_REGISTRY_H
#define MOAT_CHECKS_REGISTRY_H

#include <stddef.h>

#include "checks/check.h"
#include "rules/facts.h"

/* The rows; *n gets their number. */
const struct check_def *const *checks_registry(size_t *n);
/* Every row's facts, in row order: what rule files may test (give it to
 * ruleset_load). */
const struct rule_vocab *checks_vocab(void);
/* Where row i's facts start in the vocabulary. */
size_t checks_first_fact(size_t i);

#endif

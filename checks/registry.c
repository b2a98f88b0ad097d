/* registry.c - the checks moat runs. A new check: its module (with its row,
 * struct check_def, see check.h) and a line here. */
#include <pthread.h>
#include <string.h>

#include "checks/dkim.h"
#include "checks/dnsbl.h"
#include "checks/dmarc.h"
#include "checks/authorship.h"
#include "checks/rdns.h"
#include "checks/registry.h"
#include "checks/sender.h"
#include "checks/spf.h"
#include "rules/rules.h"

static const struct check_def *const rows[] = {
	&check_rdns,   /* connect */
	&check_dnsbl,  /* connect */
	&check_sender, /* mail */
	&check_spf,    /* mail */
	&check_dbl,    /* mail */
	&check_dkim,   /* data */
	&check_authorship, /* data: list mail, the author's own signatures; settled on DKIM's */
	&check_dmarc,  /* data, settled on SPF's and DKIM's results */
};
#define NROWS (sizeof rows / sizeof rows[0])

/* The vocabulary: the rows' facts one after another, made once (it is
 * constant from then on, whichever thread asks first). */
static struct rule_vocab_fact flat[RULES_VOCAB_MAX];
static size_t first[NROWS];
static struct rule_vocab vocab = {flat, 0};
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
	size_t n = 0;

	for (size_t i = 0; i < NROWS; i++) {
		first[i] = n;
		for (size_t k = 0; k < rows[i]->nfacts && n < RULES_VOCAB_MAX; k++)
			flat[n++] = rows[i]->facts[k];
	}
	vocab.n = n;
}

const struct check_def *const *checks_registry(size_t *n)
{
	*n = NROWS;
	return rows;
}

const struct rule_vocab *checks_vocab(void)
{
	pthread_once(&once, build);
	return &vocab;
}

size_t checks_first_fact(size_t i)
{
	pthread_once(&once, build);
	return i < NROWS ? first[i] : vocab.n;
}

int check_word(const char *const *words, const char *name)
{
	for (int i = 0; words[i]; i++)
		if (strcmp(words[i], name) == 0)
			return i;
	return -1;
}

int check_fact_used(const struct ruleset *rs, size_t first_fact, size_t i)
{
	return rs && ruleset_uses_value(rs, first_fact + i);
}

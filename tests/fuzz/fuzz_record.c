/* fuzz_record.c - libFuzzer harness for proxy/lib/record.c: a record
 * file as moat replay reads it from disk (untrusted). A record that
 * parses is written again from what was read, and must read back the
 * same.
 *
 *   make fuzz-build; build/fuzz/fuzz_record -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/record) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rewrite(const struct record *r, struct record_out *o)
{
	char ntx[16];

	record_line(o, "moat-record", 1, (const char *[]){"1"});
	snprintf(ntx, sizeof ntx, "%d", r->ntx);
	record_line(o, "session", 2, (const char *[]){r->session, ntx});
	record_line(o, "client", 4, (const char *[]){r->client, r->listener, r->tls ? "1" : "0", r->auth_user});
	record_line(o, "helo", 1, (const char *[]){r->helo});
	for (int i = 0; i < RECORD_STAGES; i++) {
		record_verdict_line(o, "stage", record_stage_name((enum record_stage)i), &r->stage[i]);
		record_line(o, "checks", 2, (const char *[]){record_stage_name((enum record_stage)i), r->checks[i]});
	}
	for (int i = 0; i < r->nrcpt; i++)
		record_verdict_line(o, "rcpt", r->rcpt[i].mailbox, &r->rcpt[i].v);
	for (int i = 0; i < r->nans; i++)
		if (record_answer_line(o, &r->ans[i], o->cap) < 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record r, again;
	struct record_out o;
	char err[200], *copy = malloc(size ? size : 1); /* exact size: ASan sees a read past the end */

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (record_parse(copy, size, &r, err, sizeof err) == 0) {
		if (r.nrcpt > MOAT_RECORD_RCPTS_MAX || r.nans > MOAT_RECORD_ANSWERS_MAX ||
		    (r.message && r.message + r.message_len != (const unsigned char *)copy + size))
			abort();
		if (record_out_init(&o, 4u << 20) < 0)
			abort();
		rewrite(&r, &o);
		if (o.full || record_parse(o.buf, o.len, &again, err, sizeof err) < 0)
			abort();
		if (again.nrcpt != r.nrcpt || again.nans != r.nans || strcmp(again.client, r.client) ||
		    strcmp(again.helo, r.helo) || strcmp(again.auth_user, r.auth_user) ||
		    memcmp(again.stage, r.stage, sizeof r.stage) || memcmp(again.checks, r.checks, sizeof r.checks))
			abort();
		for (int i = 0; i < r.nans; i++)
			if (again.ans[i].alen != r.ans[i].alen ||
			    (r.ans[i].alen && memcmp(again.ans[i].abuf, r.ans[i].abuf, (size_t)r.ans[i].alen)))
				abort();
		record_free(&again);
		record_out_free(&o);
		record_free(&r);
	}
	free(copy);
	return 0;
}

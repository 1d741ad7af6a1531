/*
 * tally-find.h - look-ups of one account or domain in a tally, shared by
 * the report's unit tests. Header only (static functions): each unit test
 * is a program of its own. Include after <cmocka.h> and report/tally.h.
 * Returns NULL when the name is not in the tally.
 */
#ifndef TLSGATE_TEST_TALLY_FIND_H
#define TLSGATE_TEST_TALLY_FIND_H

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* account names compare without case, as the tally keeps them */
static inline struct tally_account *find_account(struct tally *t, const char *name)
{
	size_t n;
	struct tally_account **v = tally_accounts(t, false, &n), *found = NULL;
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i]->name, name) == 0)
			found = v[i];
	free(v);
	return found;
}

static inline struct tally_domain *find_domain(struct tally *t, const char *name)
{
	size_t n;
	struct tally_domain **v = tally_domains(t, &n), *found = NULL;
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->name, name) == 0)
			found = v[i];
	free(v);
	return found;
}

#endif

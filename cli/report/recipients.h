/*
 * recipients - the domains `tlsgate notify` may write to: those the policy
 * names in a rule or exemption ("@example.com", "alice@example.com"), and
 * those listed in tlsgate.conf's `notify_domains`. An account of any other
 * domain (a name someone made a server log) gets no notice: notices never
 * go to an outside domain.
 *
 * Invariant: names are kept lower case; look-ups are ASCII
 * case-insensitive. Errors: recipients_init returns -1 when out of memory.
 */
#ifndef TLSGATE_RECIPIENTS_H
#define TLSGATE_RECIPIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

struct recipients {
	char **domains;
	size_t n, cap;
};

/* policy may be NULL; list is `notify_domains` (space-separated) or NULL. */
int recipients_init(struct recipients *r, const struct tg_policy *policy,
		    const char *list);
bool recipients_allowed(const struct recipients *r, const char *domain);
bool recipients_allowed_n(const struct recipients *r, const char *domain, size_t len);
void recipients_free(struct recipients *r);

#endif

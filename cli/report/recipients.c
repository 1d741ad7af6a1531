/*
 * recipients - the domains notices may go to. See recipients.h.
 */
#include "recipients.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"

static int add(struct recipients *r, const char *s, size_t len)
{
	if (len == 0 || recipients_allowed_n(r, s, len))
		return 0;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		char **v = realloc(r->domains, ncap * sizeof(*v));
		if (v == NULL)
			return -1;
		r->domains = v;
		r->cap = ncap;
	}
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return -1;
	for (size_t i = 0; i < len; i++)
		copy[i] = tg_ascii_lower(s[i]);
	copy[len] = '\0';
	r->domains[r->n++] = copy;
	return 0;
}

/* The domain of a rule subject: "@dom" or "local@dom"; none for "*" and
 * bare login names. */
static int add_subject(struct recipients *r, const char *subject)
{
	const char *at = subject != NULL ? strrchr(subject, '@') : NULL;
	return at != NULL ? add(r, at + 1, strlen(at + 1)) : 0;
}

int recipients_init(struct recipients *r, const struct tg_policy *policy,
		    const char *list)
{
	memset(r, 0, sizeof(*r));
	if (policy != NULL) {
		for (size_t i = 0; i < tg_policy_mode_rule_count(policy); i++) {
			struct tg_mode_rule_info info;
			tg_policy_mode_rule(policy, i, &info);
			if (add_subject(r, info.subject) < 0)
				return -1;
		}
		for (size_t i = 0; i < tg_policy_exemption_count(policy); i++) {
			struct tg_exemption_info info;
			tg_policy_exemption(policy, i, &info);
			if (add_subject(r, info.subject) < 0)
				return -1;
		}
	}
	for (const char *p = list; p != NULL && *p;) {
		size_t n = strcspn(p, " ");
		if (add(r, p, n) < 0)
			return -1;
		p += n;
		p += strspn(p, " ");
	}
	return 0;
}

bool recipients_allowed_n(const struct recipients *r, const char *domain, size_t len)
{
	for (size_t i = 0; i < r->n; i++)
		if (tg_ascii_caseeq(r->domains[i], strlen(r->domains[i]), domain, len))
			return true;
	return false;
}

bool recipients_allowed(const struct recipients *r, const char *domain)
{
	return recipients_allowed_n(r, domain, strlen(domain));
}

void recipients_free(struct recipients *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->domains[i]);
	free(r->domains);
	memset(r, 0, sizeof(*r));
}

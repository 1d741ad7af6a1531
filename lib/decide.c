/*
 * decide - resolution of one login against a policy snapshot.
 * See decide.h; the rules are in docs/policy.md.
 */
#include "decide.h"

#include <stdio.h>
#include <string.h>

#include "date.h"
#include "policy_int.h"

/* The subjects that can apply to a login, most specific first. */
struct subjects {
	int32_t idx[3];
	int count;
	bool has_account;	/* idx[0] is the account itself */
};

static void find_subjects(const struct tg_policy *policy, const char *user,
			  struct subjects *out)
{
	size_t len = strlen(user);
	const char *at = memrchr(user, '@', len);
	size_t dlen = at != NULL && at[1] != '\0' ? len - (size_t)(at - user) : 0;
	uint32_t domain_hash = tg_subject_hash_more(TG_HASH_START, user + len - dlen, dlen);
	uint32_t account_hash = tg_subject_hash_more(domain_hash, user, len - dlen);

	/* Both look-ups miss the cache in a large policy: start the second
	 * before waiting for the first. */
	tg_subject_prefetch(policy, account_hash);
	if (dlen)
		tg_subject_prefetch(policy, domain_hash);
	out->count = 0;
	int32_t k = tg_subject_find(policy, user, len, account_hash);
	out->has_account = k >= 0 && user[0] != '@' && !(len == 1 && user[0] == '*');
	if (out->has_account)
		out->idx[out->count++] = k;
	if (dlen) {
		k = tg_subject_find(policy, at, dlen, domain_hash);
		if (k >= 0)
			out->idx[out->count++] = k;
	}
	if (policy->global >= 0)
		out->idx[out->count++] = policy->global;
}

static const struct tg_mode_rule *find_mode_rule(const struct tg_policy *policy,
						 const struct subjects *subjects,
						 int levels,
						 enum tg_service service)
{
	for (int s = 0; s < subjects->count && s < levels; s++) {
		const struct tg_subject *subj = &policy->subjects[subjects->idx[s]];
		for (int32_t i = subj->first_mode; i >= 0; i = policy->modes[i].next)
			if (policy->modes[i].protocols & (1u << service))
				return &policy->modes[i];
	}
	return NULL;
}

static bool exemption_applies(const struct tg_policy *policy,
			      const struct tg_exemption *e,
			      const struct tg_login *login)
{
	if (!(e->protocols & (1u << login->service)))
		return false;
	if (e->until != 0 && e->until < login->today)
		return false;
	for (uint32_t n = 0; n < e->net_count; n++)
		if (tg_net_contains(&policy->nets[e->net_first + n], login->client))
			return true;
	return false;
}

static const struct tg_exemption *find_exemption(const struct tg_policy *policy,
						 const struct subjects *subjects,
						 const struct tg_login *login)
{
	if (login->client == NULL)
		return NULL;	/* an unknown address is in no network */
	for (int s = 0; s < subjects->count; s++) {
		const struct tg_subject *subj = &policy->subjects[subjects->idx[s]];
		for (int32_t i = subj->first_exempt; i >= 0; i = policy->exempts[i].next)
			if (exemption_applies(policy, &policy->exempts[i], login))
				return &policy->exempts[i];
	}
	return NULL;
}

void tg_decide(const struct tg_policy *policy, const struct tg_login *login,
	       struct tg_decision *d)
{
	struct subjects subjects;
	const struct tg_mode_rule *rule = NULL;

	memset(d, 0, sizeof(*d));
	d->tls = login->tls;
	find_subjects(policy, login->user, &subjects);

	if (login->mode_override >= TG_MODE_OFF &&
	    login->mode_override <= TG_MODE_REQUIRE) {
		d->rule_mode = (enum tg_mode)login->mode_override;
		d->rule.file = TG_REF_USERDB;
	} else {
		/* Supposing the domain enforced leaves only the account's own
		 * rules to look at. */
		int levels = !login->assume_domain_require ? subjects.count :
			     subjects.has_account ? 1 : 0;
		rule = find_mode_rule(policy, &subjects, levels, login->service);
		if (rule != NULL) {
			d->rule_mode = (enum tg_mode)rule->mode;
			d->rule = rule->ref;
			d->rule_note = rule->note;
			d->message = rule->message;
			d->min_tls = (enum tg_tls)rule->min_tls;
			if (rule->mode == TG_MODE_REQUIRE)
				d->enforce_from = rule->from;
			d->brownout_message = rule->brownout_message;
			d->min_tls_message = rule->min_tls_message;
		} else {
			/* the supposed domain rule has no file line */
			d->rule_mode = login->assume_domain_require ?
				       TG_MODE_REQUIRE : TG_MODE_OFF;
		}
	}
	d->mode = d->rule_mode;
	if (d->mode == TG_MODE_REQUIRE && d->enforce_from > login->today)
		d->mode = TG_MODE_AUDIT;
	if (d->mode == TG_MODE_AUDIT && rule != NULL && rule->window_count > 0 &&
	    login->now != 0) {
		const struct tg_window *w = tg_window_at(
			policy->windows + rule->window_first, rule->window_count,
			login->now);
		if (w != NULL) {
			d->mode = TG_MODE_REQUIRE;
			d->brownout = true;
			d->window = *w;
		}
	}

	if (d->mode == TG_MODE_OFF) {
		d->verdict = TG_VERDICT_ALLOW;
		return;
	}
	if (login->tls != TG_TLS_NONE) {
		/* A version we do not know cannot be held against the client:
		 * min_tls applies where the server reports it. */
		if (d->min_tls == TG_TLS_NONE || login->tls == TG_TLS_UNKNOWN ||
		    login->tls >= d->min_tls) {
			d->verdict = TG_VERDICT_ALLOW;
			return;
		}
		d->tls_below_min = true;
	}
	const struct tg_exemption *e = find_exemption(policy, &subjects, login);
	if (e != NULL) {
		d->verdict = TG_VERDICT_EXEMPT;
		d->exemption = e->ref;
		d->exemption_note = e->note;
		return;
	}
	d->verdict = d->mode == TG_MODE_REQUIRE ? TG_VERDICT_REJECT : TG_VERDICT_AUDIT;
}

enum tg_refusal_source tg_refusal_source(const struct tg_decision *d)
{
	if (d->brownout)
		return d->brownout_message != NULL ? TG_TEXT_BROWNOUT_RULE
						   : TG_TEXT_BROWNOUT_DEFAULT;
	if (d->tls_below_min)
		return d->min_tls_message != NULL ? TG_TEXT_MIN_TLS_RULE
						  : TG_TEXT_MIN_TLS_DEFAULT;
	return d->message != NULL ? TG_TEXT_RULE : TG_TEXT_CONFIG;
}

const char *tg_refusal_text(const struct tg_decision *d,
			    const char *config_message, char *buf, size_t size)
{
	switch (tg_refusal_source(d)) {
	case TG_TEXT_RULE:
		return d->message;
	case TG_TEXT_CONFIG:
		return config_message != NULL ? config_message : "";
	case TG_TEXT_MIN_TLS_RULE:
		return d->min_tls_message;
	case TG_TEXT_MIN_TLS_DEFAULT:
		snprintf(buf, size, TG_MIN_TLS_MESSAGE, tg_tls_name(d->tls),
			 tg_tls_name(d->min_tls));
		return buf;
	case TG_TEXT_BROWNOUT_RULE:
		return d->brownout_message;
	case TG_TEXT_BROWNOUT_DEFAULT:
		break;
	}
	if (d->enforce_from != 0) {
		char day[TG_DATE_STRLEN];
		snprintf(buf, size, "TLS will be required from %s. %s",
			 tg_date_format(d->enforce_from, day, sizeof(day)),
			 TG_BROWNOUT_MESSAGE);
	} else {
		snprintf(buf, size, "TLS will be required soon. %s", TG_BROWNOUT_MESSAGE);
	}
	return buf;
}

char *tg_rule_ref_format(const struct tg_rule_ref *ref, char *buf, size_t size)
{
	/* Written by hand: this runs for every event line. */
	const char *file = ref->file != NULL ? ref->file : "default";
	size_t len = strlen(file);
	char digits[12];
	size_t nd = 0;

	if (size == 0)
		return buf;
	if (ref->file != NULL && ref->line != 0) {
		uint32_t n = ref->line;
		do {
			digits[nd++] = (char)('0' + n % 10);
			n /= 10;
		} while (n != 0);
		digits[nd++] = ':';
	}
	if (len + nd >= size) {
		/* too small: cut, as snprintf would */
		snprintf(buf, size, "%s", file);
		return buf;
	}
	memcpy(buf, file, len);
	for (size_t i = 0; i < nd; i++)
		buf[len + i] = digits[nd - 1 - i];
	buf[len + nd] = '\0';
	return buf;
}

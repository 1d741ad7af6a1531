/*
 * probe/verdict - verdicts and reasons from probe facts. See
 * verdict.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"
#include "verdict.h"

static void add(struct probe_result *r, enum probe_level level,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add(struct probe_result *r, enum probe_level level,
		const char *fmt, ...)
{
	va_list ap;

	if (r->nreasons >= PROBE_REASONS_MAX)
		return;
	struct probe_reason *reason = &r->reasons[r->nreasons++];
	reason->level = level;
	va_start(ap, fmt);
	vsnprintf(reason->text, sizeof(reason->text), fmt, ap);
	va_end(ap);
}

static const char *starttls_word(const struct probe_result *r)
{
	return r->service->proto == PROBE_POP3 ? "STLS" : "STARTTLS";
}

static void judge_failure(struct probe_result *r)
{
	switch (r->failure) {
	case PF_NONE:
		break;
	case PF_RESOLVE:
		add(r, PROBE_PROBLEM, "%s", r->error);
		break;
	case PF_CONNECT:
		add(r, PROBE_PROBLEM, "not reachable: %s", r->error);
		break;
	case PF_DIALOG:
		add(r, PROBE_PROBLEM, "the %s dialogue failed: %s",
		    probe_proto_name(r->service->proto), r->error);
		break;
	case PF_NO_STARTTLS:
		add(r, PROBE_PROBLEM, "%s is not offered: clients on this port "
		    "cannot switch to TLS, so enforcing TLS locks them out",
		    starttls_word(r));
		break;
	case PF_TLS:
		add(r, PROBE_PROBLEM, "%s", r->error);
		break;
	}
}

static void judge_certificate(struct probe_result *r, int warn_days)
{
	char text[400];

	if (!r->tls_ok)
		return;
	if (!r->cert.present) {
		add(r, PROBE_PROBLEM, "the server sent no certificate");
		return;
	}
	for (size_t i = 0; i < r->cert.nerrors; i++) {
		probe_verify_reason(r->cert.errors[i], &r->cert, r->name,
				    text, sizeof(text));
		add(r, PROBE_PROBLEM, "%s", text);
	}
	if (!r->cert.expired && r->cert.days_left < warn_days)
		add(r, PROBE_WARNING, "the certificate expires in %ld day%s (%s)",
		    r->cert.days_left, r->cert.days_left == 1 ? "" : "s",
		    r->cert.not_after);
}

static void judge_versions(struct probe_result *r)
{
	char old[40] = "", untested[60] = "";
	bool modern = false, any = false;

	for (size_t v = 0; v < PROBE_NVERSIONS; v++) {
		switch (r->versions[v]) {
		case PV_ACCEPTED:
			any = true;
			if (v < 2)
				probe_list_add(old, sizeof(old), ", ",
					       probe_version_names[v]);
			else
				modern = true;
			break;
		case PV_UNKNOWN:
			probe_list_add(untested, sizeof(untested), ", ",
				       probe_version_names[v]);
			break;
		default:
			break;
		}
	}
	if (r->versions[0] == PV_NOT_TRIED)
		return;		/* no sweep */
	if (any && !modern)
		add(r, PROBE_PROBLEM, "the server accepts only %s: current clients "
		    "require TLSv1.2 or later", old);
	else if (old[0] != '\0')
		add(r, PROBE_WARNING, "the server still accepts %s (deprecated, "
		    "RFC 8996)", old);
	if (modern && r->versions[3] == PV_REFUSED)
		add(r, PROBE_NOTE, "TLSv1.3 is not offered");
	if (untested[0] != '\0')
		add(r, PROBE_NOTE, "could not test %s (%s)", untested,
		    r->version_why[r->versions[3] == PV_UNKNOWN ? 3 :
				   r->versions[2] == PV_UNKNOWN ? 2 :
				   r->versions[1] == PV_UNKNOWN ? 1 : 0]);
}

/*
 * Cleartext login on offer before STARTTLS: a warning, unless tlsgate
 * decides per account (the probe runs with its configuration). Then it is
 * expected - exempt and audit accounts must still log in - and only noted.
 */
static void judge_plaintext_auth(struct probe_result *r, bool per_account)
{
	const struct probe_caps *c = &r->caps;
	char what[sizeof(r->reasons[0].text)];

	if (r->service->style != PROBE_STARTTLS || r->plaintext_auth != 1)
		return;
	switch (r->service->proto) {
	case PROBE_IMAP:
		snprintf(what, sizeof(what), "password login is advertised before "
			 "STARTTLS (%s%s%s)", c->login_disabled ? "LOGINDISABLED, but " :
			 "no LOGINDISABLED", c->mechs[0] ? "; AUTH=" : "", c->mechs);
		break;
	case PROBE_POP3: {
		char list[160] = "";
		if (c->user_command)
			probe_list_add(list, sizeof(list), ", ", "USER");
		if (c->mech_plain || c->mech_login) {
			char sasl[140];
			snprintf(sasl, sizeof(sasl), "SASL %s", c->mechs);
			probe_list_add(list, sizeof(list), ", ", sasl);
		}
		snprintf(what, sizeof(what), "password login is advertised before "
			 "STLS (%s)", list);
		break;
	}
	case PROBE_SMTP:
		snprintf(what, sizeof(what), "AUTH is advertised before STARTTLS "
			 "(AUTH %s)", c->mechs);
		break;
	case PROBE_SIEVE:
	default:
		snprintf(what, sizeof(what), "password login is advertised before "
			 "STARTTLS (SASL \"%s\")", c->mechs);
		break;
	}
	if (per_account)
		add(r, PROBE_NOTE, "%s: expected with tlsgate, which refuses "
		    "cleartext logins per account (accounts that require TLS)", what);
	else
		add(r, PROBE_WARNING, "%s: clients may send passwords in cleartext",
		    what);
}

void probe_judge(struct probe_result *r, int warn_days, bool per_account)
{
	r->nreasons = 0;
	if (r->optional && r->failure == PF_CONNECT) {
		r->verdict = PROBE_CLOSED;
		add(r, PROBE_NOTE, "nothing answers on this standard port (%s)",
		    r->error);
		return;
	}
	judge_failure(r);
	if (r->service != NULL) {	/* NULL: the host did not resolve */
		judge_plaintext_auth(r, per_account);
		judge_certificate(r, warn_days);
		judge_versions(r);
	}

	r->verdict = PROBE_READY;
	for (size_t i = 0; i < r->nreasons; i++) {
		if (r->reasons[i].level == PROBE_PROBLEM)
			r->verdict = PROBE_NOT_READY;
		else if (r->reasons[i].level == PROBE_WARNING &&
			 r->verdict == PROBE_READY)
			r->verdict = PROBE_WARNINGS;
	}
}

enum probe_verdict probe_overall(const struct probe_result *results, size_t n)
{
	enum probe_verdict worst = PROBE_CLOSED;

	for (size_t i = 0; i < n; i++)
		if (results[i].verdict > worst)
			worst = results[i].verdict;
	return worst == PROBE_CLOSED ? PROBE_NOT_READY : worst;
}

const char *probe_verdict_name(enum probe_verdict v)
{
	switch (v) {
	case PROBE_CLOSED: return "closed";
	case PROBE_READY: return "ready";
	case PROBE_WARNINGS: return "warnings";
	case PROBE_NOT_READY: return "not ready";
	}
	return "?";
}

int probe_verdict_exit(enum probe_verdict v)
{
	switch (v) {
	case PROBE_READY: return PROBE_EXIT_READY;
	case PROBE_WARNINGS: return PROBE_EXIT_WARNINGS;
	default: return PROBE_EXIT_NOT_READY;
	}
}

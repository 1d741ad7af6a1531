/*
 * test-cli-probe-verdict - how probe facts become verdicts, reasons and
 * exit codes (probe_verdict), and that the JSON report escapes what it
 * prints (probe_output). Each row starts from a good STARTTLS endpoint and
 * changes one fact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509_vfy.h>

#include "probe/output.h"
#include "probe/verdict.h"

static void good_result(struct probe_result *r, const char *service)
{
	const struct probe_service *svc = probe_service_by_name(service, strlen(service));
	probe_result_init(r, svc, "mail.example.org", svc->port, "mail.example.org",
			  false);
	r->reachable = true;
	r->caps.known = true;
	r->caps.starttls = true;
	r->plaintext_auth = 0;
	r->tls_ok = true;
	r->cert.present = true;
	r->cert.days_left = 200;
	strcpy(r->cert.not_after, "2027-06-01");
	strcpy(r->cert.issuer_cn, "Example CA");
	strcpy(r->cert.names, "DNS:mail.example.org");
	r->versions[0] = PV_REFUSED;
	r->versions[1] = PV_REFUSED;
	r->versions[2] = PV_ACCEPTED;
	r->versions[3] = PV_ACCEPTED;
}

enum change {
	NOTHING, NO_STARTTLS, DIALOG_FAILED, TLS_FAILED, CONNECT_FAILED,
	CLOSED_DEFAULT_PORT, PLAINTEXT_AUTH, PLAINTEXT_AUTH_IMPLICIT,
	EXPIRES_SOON, EXPIRED, WRONG_NAME, SELF_SIGNED, OLD_VERSIONS,
	ONLY_OLD_VERSIONS, NO_TLS13, VERSION_UNKNOWN, NO_CERT,
	TWO_CERT_ERRORS, NO_SWEEP, RESOLVE_FAILED,
};

static const struct verdict_case {
	const char *label;
	const char *service;
	enum change change;
	enum probe_verdict want;
	const char *want_reason;	/* substring of some reason; NULL: none */
	size_t want_nreasons;
} cases[] = {
	{ "all good", "imap", NOTHING, PROBE_READY, NULL, 0 },
	{ "no STARTTLS", "imap", NO_STARTTLS, PROBE_NOT_READY,
	  "STARTTLS is not offered", 1 },
	{ "no STLS", "pop3", NO_STARTTLS, PROBE_NOT_READY, "STLS is not offered", 1 },
	{ "dialogue failed", "smtp", DIALOG_FAILED, PROBE_NOT_READY,
	  "the SMTP dialogue failed: not an SMTP greeting", 1 },
	{ "handshake failed", "imaps", TLS_FAILED, PROBE_NOT_READY,
	  "TLS handshake failed", 2 },	/* and "accepts only TLSv1" */
	{ "unreachable", "imap", CONNECT_FAILED, PROBE_NOT_READY,
	  "not reachable: connect failed", 1 },
	{ "closed default port", "imap", CLOSED_DEFAULT_PORT, PROBE_CLOSED,
	  "nothing answers", 1 },
	{ "cleartext login before STARTTLS", "imap", PLAINTEXT_AUTH,
	  PROBE_WARNINGS, "no LOGINDISABLED", 1 },
	{ "cleartext login on implicit TLS port is fine", "imaps",
	  PLAINTEXT_AUTH_IMPLICIT, PROBE_READY, NULL, 0 },
	{ "AUTH before STARTTLS", "submission", PLAINTEXT_AUTH, PROBE_WARNINGS,
	  "AUTH is advertised before STARTTLS (AUTH PLAIN)", 1 },
	{ "expires soon", "imap", EXPIRES_SOON, PROBE_WARNINGS,
	  "expires in 5 days (2027-06-01)", 1 },
	{ "expired", "imap", EXPIRED, PROBE_NOT_READY, "expired on 2027-06-01", 1 },
	{ "wrong name", "imap", WRONG_NAME, PROBE_NOT_READY,
	  "not valid for mail.example.org (it names DNS:other.example)", 1 },
	{ "self-signed", "sieve", SELF_SIGNED, PROBE_NOT_READY, "self-signed", 1 },
	{ "TLSv1 still accepted", "imap", OLD_VERSIONS, PROBE_WARNINGS,
	  "still accepts TLSv1, TLSv1.1", 1 },
	{ "only TLSv1.x", "imap", ONLY_OLD_VERSIONS, PROBE_NOT_READY,
	  "accepts only TLSv1, TLSv1.1", 1 },
	{ "no TLSv1.3 is a note", "smtp", NO_TLS13, PROBE_READY,
	  "TLSv1.3 is not offered", 1 },
	{ "untestable version is a note", "imap", VERSION_UNKNOWN, PROBE_READY,
	  "could not test TLSv1 (no reply within", 1 },
	{ "no certificate", "imap", NO_CERT, PROBE_NOT_READY, "no certificate", 1 },
	{ "two certificate errors", "imap", TWO_CERT_ERRORS, PROBE_NOT_READY,
	  "expired on", 2 },
	{ "no sweep", "imap", NO_SWEEP, PROBE_READY, NULL, 0 },
	{ "unresolvable", "imap", RESOLVE_FAILED, PROBE_NOT_READY,
	  "cannot resolve", 1 },
};

static void apply(struct probe_result *r, enum change c)
{
	switch (c) {
	case NOTHING: break;
	case NO_STARTTLS:
		r->caps.starttls = false;
		r->tls_ok = false;
		r->failure = PF_NO_STARTTLS;
		memset(r->versions, 0, sizeof(r->versions));
		break;
	case DIALOG_FAILED:
		r->tls_ok = false;
		r->failure = PF_DIALOG;
		strcpy(r->error, "not an SMTP greeting: \"* OK\"");
		memset(r->versions, 0, sizeof(r->versions));
		break;
	case TLS_FAILED:
		r->tls_ok = false;
		r->failure = PF_TLS;
		strcpy(r->error, "TLS handshake failed: unsupported protocol");
		r->versions[2] = r->versions[3] = PV_REFUSED;
		r->versions[0] = PV_ACCEPTED;
		break;
	case CONNECT_FAILED:
	case CLOSED_DEFAULT_PORT:
		r->reachable = r->tls_ok = false;
		r->failure = PF_CONNECT;
		r->optional = c == CLOSED_DEFAULT_PORT;
		strcpy(r->error, "connect failed: Connection refused");
		memset(r->versions, 0, sizeof(r->versions));
		break;
	case PLAINTEXT_AUTH:
	case PLAINTEXT_AUTH_IMPLICIT:
		r->plaintext_auth = 1;
		r->caps.mech_plain = true;
		r->caps.auth_advertised = true;
		strcpy(r->caps.mechs, "PLAIN");
		break;
	case EXPIRES_SOON:
		r->cert.days_left = 5;
		break;
	case EXPIRED:
		r->cert.days_left = -3;
		r->cert.expired = true;
		r->cert.errors[r->cert.nerrors++] = X509_V_ERR_CERT_HAS_EXPIRED;
		break;
	case WRONG_NAME:
		strcpy(r->cert.names, "DNS:other.example");
		r->cert.errors[r->cert.nerrors++] = X509_V_ERR_HOSTNAME_MISMATCH;
		break;
	case SELF_SIGNED:
		r->cert.errors[r->cert.nerrors++] = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
		break;
	case OLD_VERSIONS:
		r->versions[0] = r->versions[1] = PV_ACCEPTED;
		break;
	case ONLY_OLD_VERSIONS:
		r->versions[0] = r->versions[1] = PV_ACCEPTED;
		r->versions[2] = r->versions[3] = PV_REFUSED;
		break;
	case NO_TLS13:
		r->versions[3] = PV_REFUSED;
		break;
	case VERSION_UNKNOWN:
		r->versions[0] = PV_UNKNOWN;
		strcpy(r->version_why[0], "no reply within 500 ms");
		break;
	case NO_CERT:
		r->cert.present = false;
		break;
	case TWO_CERT_ERRORS:
		r->cert.expired = true;
		r->cert.days_left = -1;
		r->cert.errors[r->cert.nerrors++] = X509_V_ERR_HOSTNAME_MISMATCH;
		r->cert.errors[r->cert.nerrors++] = X509_V_ERR_CERT_HAS_EXPIRED;
		break;
	case NO_SWEEP:
		memset(r->versions, 0, sizeof(r->versions));
		break;
	case RESOLVE_FAILED:
		probe_result_init(r, NULL, "bad..name", 0, "bad..name", false);
		r->failure = PF_RESOLVE;
		strcpy(r->error, "cannot resolve bad..name: Name or service not known");
		break;
	}
}

static void test_verdicts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct verdict_case *c = &cases[i];
		struct probe_result r;
		good_result(&r, c->service);
		apply(&r, c->change);
		probe_judge(&r, 30, false);
		bool found = c->want_reason == NULL;
		for (size_t k = 0; k < r.nreasons; k++)
			if (c->want_reason && strstr(r.reasons[k].text, c->want_reason))
				found = true;
		if (r.verdict != c->want || !found || r.nreasons != c->want_nreasons)
			fail_msg("%s: verdict %s, %zu reasons, first \"%s\"", c->label,
				 probe_verdict_name(r.verdict), r.nreasons,
				 r.nreasons ? r.reasons[0].text : "");
	}
}

static void test_overall_and_exit(void **state)
{
	struct probe_result rs[3];
	(void)state;
	for (int i = 0; i < 3; i++)
		good_result(&rs[i], "imap");
	rs[0].verdict = PROBE_READY;
	rs[1].verdict = PROBE_CLOSED;
	rs[2].verdict = PROBE_WARNINGS;
	assert_int_equal(probe_overall(rs, 2), PROBE_READY);
	assert_int_equal(probe_overall(rs, 3), PROBE_WARNINGS);
	rs[0].verdict = PROBE_NOT_READY;
	assert_int_equal(probe_overall(rs, 3), PROBE_NOT_READY);
	/* nothing answered at all is not "ready" */
	assert_int_equal(probe_overall(rs + 1, 1), PROBE_NOT_READY);
	assert_int_equal(probe_overall(rs, 0), PROBE_NOT_READY);
	assert_int_equal(probe_verdict_exit(PROBE_READY), 0);
	assert_int_equal(probe_verdict_exit(PROBE_WARNINGS), 1);
	assert_int_equal(probe_verdict_exit(PROBE_NOT_READY), 2);
}

static void test_json_escaping(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} rows[] = {
		{ "plain", "\"plain\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "\x01\n\x7f", "\"\\u0001\\u000a\\u007f\"" },
		{ "\xc3\xa4", "\"\\u00c3\\u00a4\"" },
		{ "", "\"\"" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		probe_json_string(f, rows[i].in);
		fclose(f);
		assert_string_equal(buf, rows[i].want);
		free(buf);
	}
}

/* With tlsgate's configuration, cleartext login on offer is expected:
 * noted, and the endpoint is ready if nothing else is wrong. */
static void test_plaintext_auth_with_tlsgate_config(void **state)
{
	(void)state;
	struct probe_result r;
	good_result(&r, "submission");
	apply(&r, PLAINTEXT_AUTH);
	probe_judge(&r, 30, true);
	assert_int_equal(r.verdict, PROBE_READY);
	assert_int_equal(r.nreasons, 1);
	assert_int_equal(r.reasons[0].level, PROBE_NOTE);
	assert_non_null(strstr(r.reasons[0].text, "AUTH is advertised before STARTTLS (AUTH PLAIN)"));
	assert_non_null(strstr(r.reasons[0].text, "expected with tlsgate"));

	/* other findings still count */
	good_result(&r, "imap");
	apply(&r, PLAINTEXT_AUTH);
	r.cert.days_left = 5;
	probe_judge(&r, 30, true);
	assert_int_equal(r.verdict, PROBE_WARNINGS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_plaintext_auth_with_tlsgate_config),
		cmocka_unit_test(test_overall_and_exit),
		cmocka_unit_test(test_json_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

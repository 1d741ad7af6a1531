/*
 * test-policyd-answer - from request attributes to the reply and the event
 * line: verdicts, reply texts, smtp_reply, messages, unauthenticated
 * requests, IPv4/IPv6/unknown clients, TLS versions against min_tls, from=
 * before and after the day, and requests that are not policy requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "decide.h"
#include "event.h"
#include "policy.h"
#include "request.h"

static const char policy_text[] =
	"audit      *\n"							/* 1 */
	"require    @example.com         from=2027-03-01\n"			/* 2 */
	"require    @shop.example.net    message=\"Shop: use TLS\"\n"	/* 3 */
	"off        bob@example.com\n"						/* 4 */
	"require    alice@example.com    min_tls=TLSv1.2\n"			/* 5 */
	"exempt     scanner@example.com  192.0.2.10/32 protocols=smtp until=2027-12-31\n" /* 6 */
	"exempt     @shop.example.net    2001:db8:1::/48,10.20.0.0/16\n"	/* 7 */
	"require    carol@example.com    protocols=imap\n"			/* 8 */
	"require    printer@example.com\n";					/* 9 */

#define REJECT_DEFAULT "action=530 5.7.0 Global: please use TLS\n\n"
#define MIN_TLS_TEXT(used, min) "Your mail program connected with " used \
	", but this server requires " min " or newer. Update the mail program, " \
	"or allow the newer TLS version in its security settings"
#define DUNNO "action=DUNNO\n\n"

enum cfgv { PLAIN_CFG, CHECK_UNAUTH, CUSTOM_REPLY, NO_LOG_TLS };

static const struct row {
	const char *user;	/* sasl_username; NULL: attribute absent */
	const char *sender;
	const char *client;	/* NULL: attribute absent */
	const char *tls;	/* encryption_protocol */
	int32_t today;
	enum cfgv cfg;
	const char *reply;
	const char *event;	/* substring of the event line; NULL: no event */
} rows[] = {
	/* require account, plaintext: rejected with the global message */
	{ "alice@example.com", NULL, "192.0.2.7", "", 20261129, PLAIN_CFG, REJECT_DEFAULT,
	  "service=smtp user=alice@example.com client=192.0.2.7 tls=none verdict=reject mode=require rule=t.conf:5" },
	{ "alice@example.com", NULL, "192.0.2.7", "TLSv1.3", 20261129, PLAIN_CFG, DUNNO,
	  "tls=TLSv1.3 verdict=allow" },
	{ "alice@example.com", NULL, "192.0.2.7", "TLSv1.2", 20261129, PLAIN_CFG, DUNNO, "verdict=allow" },
	/* min_tls: TLS 1.1 counts as plaintext, but the reply says why */
	{ "alice@example.com", NULL, "192.0.2.7", "TLSv1.1", 20261129, PLAIN_CFG,
	  "action=550 5.7.10 " MIN_TLS_TEXT("TLSv1.1", "TLSv1.2") "\n\n",
	  "tls=TLSv1.1 verdict=reject" },
	{ "alice@example.com", NULL, "192.0.2.7", "TLSv1", 20261129, PLAIN_CFG,
	  "action=550 5.7.10 " MIN_TLS_TEXT("TLSv1", "TLSv1.2") "\n\n",
	  "tls=TLSv1 verdict=reject" },
	/* a version Postfix might report that we do not know: TLS */
	{ "alice@example.com", NULL, "192.0.2.7", "TLSv1.4", 20261129, PLAIN_CFG, DUNNO,
	  "tls=yes verdict=allow" },
	/* from= in the future: audit; on and after the day: reject */
	{ "dave@example.com", NULL, "192.0.2.7", "", 20270228, PLAIN_CFG, DUNNO,
	  "verdict=audit mode=audit rule=t.conf:2 enforce_from=2027-03-01" },
	{ "dave@example.com", NULL, "192.0.2.7", "", 20270301, PLAIN_CFG, REJECT_DEFAULT,
	  "verdict=reject mode=require rule=t.conf:2" },
	/* the rule's message wins over the global one */
	{ "x@shop.example.net", NULL, "203.0.113.1", "", 20261129, PLAIN_CFG,
	  "action=530 5.7.0 Shop: use TLS\n\n", "verdict=reject" },
	/* exemptions: IPv4 with until=, IPv6, IPv4 network */
	{ "scanner@example.com", NULL, "192.0.2.10", "", 20270302, PLAIN_CFG, DUNNO,
	  "verdict=exempt mode=require rule=t.conf:2 exemption=t.conf:6" },
	{ "scanner@example.com", NULL, "192.0.2.10", "", 20280101, PLAIN_CFG, REJECT_DEFAULT,
	  "verdict=reject" },
	{ "scanner@example.com", NULL, "192.0.2.11", "", 20270302, PLAIN_CFG, REJECT_DEFAULT,
	  "verdict=reject" },
	{ "x@shop.example.net", NULL, "2001:db8:1::25", "", 20261129, PLAIN_CFG, DUNNO,
	  "client=2001:db8:1::25 tls=none verdict=exempt" },
	{ "x@shop.example.net", NULL, "2001:db8:2::25", "", 20261129, PLAIN_CFG,
	  "action=530 5.7.0 Shop: use TLS\n\n", "client=2001:db8:2::25 tls=none verdict=reject" },
	{ "x@shop.example.net", NULL, "::ffff:10.20.3.4", "", 20261129, PLAIN_CFG, DUNNO,
	  "client=10.20.3.4 tls=none verdict=exempt" },
	/* unknown or garbled client address: in no exempt network */
	{ "x@shop.example.net", NULL, "unknown", "", 20261129, PLAIN_CFG,
	  "action=530 5.7.0 Shop: use TLS\n\n", "client=unknown tls=none verdict=reject" },
	{ "x@shop.example.net", NULL, "[10.20.3.4]", "", 20261129, PLAIN_CFG,
	  "action=530 5.7.0 Shop: use TLS\n\n", "client=unknown tls=none verdict=reject" },
	{ "x@shop.example.net", NULL, NULL, "", 20261129, PLAIN_CFG,
	  "action=530 5.7.0 Shop: use TLS\n\n", "client=unknown" },
	/* audit and off */
	{ "someone@else.org", NULL, "192.0.2.7", "", 20261129, PLAIN_CFG, DUNNO,
	  "user=someone@else.org client=192.0.2.7 tls=none verdict=audit mode=audit rule=t.conf:1" },
	{ "bob@example.com", NULL, "192.0.2.7", "", 20280101, PLAIN_CFG, DUNNO,
	  "verdict=allow mode=off rule=t.conf:4" },
	/* a rule for imap only does not apply to smtp */
	{ "carol@example.com", NULL, "192.0.2.7", "", 20280101, PLAIN_CFG, REJECT_DEFAULT,
	  "rule=t.conf:2" },
	/* no SASL: DUNNO, no event (port 25) - unless unauthenticated = check */
	{ NULL, "printer@example.com", "192.0.2.7", "", 20261129, PLAIN_CFG, DUNNO, NULL },
	{ "", "printer@example.com", "192.0.2.7", "", 20261129, PLAIN_CFG, DUNNO, NULL },
	{ NULL, "printer@example.com", "192.0.2.7", "", 20261129, CHECK_UNAUTH, REJECT_DEFAULT,
	  "user=printer@example.com client=192.0.2.7 tls=none verdict=reject" },
	{ NULL, "", "192.0.2.7", "", 20261129, CHECK_UNAUTH, DUNNO, NULL },
	/* smtp_reply */
	{ "alice@example.com", NULL, "192.0.2.7", "", 20261129, CUSTOM_REPLY,
	  "action=554 5.7.1 Global: please use TLS\n\n", "verdict=reject" },
	/* log_tls = no: TLS sessions make no event, plaintext ones still do */
	{ "alice@example.com", NULL, "192.0.2.7", "TLSv1.3", 20261129, NO_LOG_TLS, DUNNO, NULL },
	{ "someone@else.org", NULL, "192.0.2.7", "", 20261129, NO_LOG_TLS, DUNNO, "verdict=audit" },
	/* peer data cannot forge a field */
	{ "eve@x verdict=allow", NULL, "192.0.2.7", "", 20261129, PLAIN_CFG, DUNNO,
	  "user=\"eve@x verdict=allow\" client=192.0.2.7 tls=none verdict=audit" },
};

static struct tg_policy *policy;

static int setup(void **state)
{
	struct tg_errors errs;
	(void)state;
	tg_errors_init(&errs);
	policy = tg_policy_load_buffer("t.conf", policy_text, strlen(policy_text), &errs);
	for (size_t i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	tg_errors_clear(&errs);
	return policy == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	tg_policy_free(policy);
	return 0;
}

static void set_attr(struct pd_request *req, enum pd_attr a, const char *v)
{
	if (v == NULL)
		return;
	snprintf(req->value[a], sizeof(req->value[a]), "%s", v);
	req->len[a] = strlen(v);
	req->present[a] = true;
}

static struct pd_request *new_request(void)
{
	struct pd_reader *reader = malloc(sizeof(*reader));
	assert_non_null(reader);
	pd_reader_init(reader);
	return &reader->req;	/* req is the first member */
}

static void test_rows(void **state)
{
	(void)state;
	struct pd_answer *a = malloc(sizeof(*a));
	assert_non_null(a);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct pd_request *req = new_request();
		char why[256] = "";
		struct pd_answer_config cfg = {
			.smtp_reply = r->cfg == CUSTOM_REPLY ? "554 5.7.1" : NULL,
			.message = "Global: please use TLS",
			.check_unauthenticated = r->cfg == CHECK_UNAUTH,
			.log_tls = r->cfg != NO_LOG_TLS,
		};
		set_attr(req, PD_ATTR_REQUEST, "smtpd_access_policy");
		set_attr(req, PD_ATTR_SASL_USERNAME, r->user);
		set_attr(req, PD_ATTR_SENDER, r->sender);
		set_attr(req, PD_ATTR_CLIENT_ADDRESS, r->client);
		set_attr(req, PD_ATTR_ENCRYPTION_PROTOCOL, r->tls);
		if (pd_answer(req, policy, &cfg, r->today, 0, a, why, sizeof(why)) < 0)
			fail_msg("row %zu: error %s", i, why);
		if (strlen(r->reply) != a->reply_len || memcmp(a->reply, r->reply, a->reply_len) != 0)
			fail_msg("row %zu (%s): reply \"%.*s\", want \"%s\"", i,
				 r->user ? r->user : "-", (int)a->reply_len, a->reply, r->reply);
		if (r->event == NULL) {
			if (a->has_event)
				fail_msg("row %zu: unexpected event %s", i, a->event);
		} else {
			if (!a->has_event || strstr(a->event, r->event) == NULL)
				fail_msg("row %zu: event \"%s\" lacks \"%s\"", i,
					 a->has_event ? a->event : "(none)", r->event);
			/* and it reads back */
			struct tg_event_parsed *p = malloc(sizeof(*p));
			assert_non_null(p);
			assert_int_equal(tg_event_parse(a->event, strlen(a->event), p), 0);
			assert_string_equal(p->ev.value[TG_EV_SERVICE], "smtp");
			assert_string_equal(p->ev.value[TG_EV_USER], r->user ? r->user : r->sender);
			free(p);
		}
		free(req);
	}
	free(a);
}

/* The reply for each reason of a refusal (docs/postfix.md, "Every reply"). */
static const char reasons_policy_text[] =
	"require    @r.example           min_tls=TLSv1.3\n"				/* 1 */
	"require    own@r.example        min_tls=TLSv1.3 min_tls_message=\"Old TLS: see https://r.example/tls\" message=\"No TLS: see https://r.example/tls\"\n" /* 2 */
	"audit      @b.example           min_tls=TLSv1.3 brownout=2027-02-01T09:00Z/4h\n"; /* 3 */

#define BROWNOUT_NOW 1801476000		/* 2027-02-01T10:00Z, inside line 3's window */

static const struct reason_row {
	const char *user;
	const char *tls;
	const char *smtp_reply;		/* config; NULL: the default */
	int64_t now;
	const char *reply;
} reason_rows[] = {
	/* no TLS: RFC 3207's 530 5.7.0, the configured text */
	{ "a@r.example", "", NULL, 0, "action=530 5.7.0 Global\n\n" },
	{ "own@r.example", "", NULL, 0, "action=530 5.7.0 No TLS: see https://r.example/tls\n\n" },
	/* TLS below min_tls: 550 5.7.10 and the text naming both versions */
	{ "a@r.example", "TLSv1.2", NULL, 0,
	  "action=550 5.7.10 " MIN_TLS_TEXT("TLSv1.2", "TLSv1.3") "\n\n" },
	{ "a@r.example", "SSLv3", NULL, 0,
	  "action=550 5.7.10 " MIN_TLS_TEXT("TLSv1", "TLSv1.3") "\n\n" },
	{ "own@r.example", "TLSv1.2", NULL, 0,
	  "action=550 5.7.10 Old TLS: see https://r.example/tls\n\n" },
	/* a configured class-5 code stays for no TLS; min_tls keeps its own */
	{ "a@r.example", "", "554 5.7.1", 0, "action=554 5.7.1 Global\n\n" },
	{ "a@r.example", "TLSv1.2", "554 5.7.1", 0,
	  "action=550 5.7.10 " MIN_TLS_TEXT("TLSv1.2", "TLSv1.3") "\n\n" },
	/* a class-4 smtp_reply (a soft start): min_tls is soft as well */
	{ "a@r.example", "", "450 4.7.0", 0, "action=450 4.7.0 Global\n\n" },
	{ "a@r.example", "TLSv1.2", "450 4.7.0", 0,
	  "action=450 4.7.10 " MIN_TLS_TEXT("TLSv1.2", "TLSv1.3") "\n\n" },
	/* TLS new enough, or of a version Postfix did not name: allowed */
	{ "a@r.example", "TLSv1.3", NULL, 0, DUNNO },
	{ "a@r.example", "TLSv9", NULL, 0, DUNNO },
	/* a brownout window keeps its code and its text, with or without TLS */
	{ "a@b.example", "", NULL, BROWNOUT_NOW,
	  "action=530 5.7.0 TLS will be required soon. " TG_BROWNOUT_MESSAGE "\n\n" },
	{ "a@b.example", "TLSv1.2", NULL, BROWNOUT_NOW,
	  "action=530 5.7.0 TLS will be required soon. " TG_BROWNOUT_MESSAGE "\n\n" },
	{ "a@b.example", "TLSv1.2", NULL, 0, DUNNO },	/* outside: audit */
};

static void test_reply_per_reason(void **state)
{
	(void)state;
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("r.conf", reasons_policy_text,
						    strlen(reasons_policy_text), &errs);
	for (size_t i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	tg_errors_clear(&errs);
	assert_non_null(p);
	struct pd_answer *a = malloc(sizeof(*a));
	assert_non_null(a);
	for (size_t i = 0; i < sizeof(reason_rows) / sizeof(reason_rows[0]); i++) {
		const struct reason_row *r = &reason_rows[i];
		struct pd_request *req = new_request();
		char why[256] = "";
		struct pd_answer_config cfg = {
			.smtp_reply = r->smtp_reply, .message = "Global", .log_tls = true,
		};
		set_attr(req, PD_ATTR_REQUEST, "smtpd_access_policy");
		set_attr(req, PD_ATTR_SASL_USERNAME, r->user);
		set_attr(req, PD_ATTR_CLIENT_ADDRESS, "192.0.2.7");
		set_attr(req, PD_ATTR_ENCRYPTION_PROTOCOL, r->tls);
		if (pd_answer(req, p, &cfg, 20270201, r->now, a, why, sizeof(why)) < 0)
			fail_msg("reason row %zu: error %s", i, why);
		if (strlen(r->reply) != a->reply_len ||
		    memcmp(a->reply, r->reply, a->reply_len) != 0)
			fail_msg("reason row %zu (%s, \"%s\"): reply \"%.*s\", want \"%s\"",
				 i, r->user, r->tls, (int)a->reply_len, a->reply, r->reply);
		free(req);
	}
	/* the account database cannot tell: tempfail, or DUNNO */
	pd_answer_userdb_failure(TG_FAILURE_TEMPFAIL, a);
	assert_int_equal(a->reply_len, strlen("action=451 4.7.0 account database not "
					      "available, try again later\n\n"));
	assert_memory_equal(a->reply, "action=451 4.7.0 ", 17);
	pd_answer_userdb_failure(TG_FAILURE_ALLOW, a);
	assert_memory_equal(a->reply, DUNNO, strlen(DUNNO));
	free(a);
	tg_policy_free(p);
}

/* instance goes to session=, sasl_method to mech= */
static void test_session_and_mech(void **state)
{
	(void)state;
	struct pd_answer *a = malloc(sizeof(*a));
	struct pd_request *req = new_request();
	struct pd_answer_config cfg = { .message = "m", .log_tls = true };
	char why[256];
	assert_non_null(a);
	set_attr(req, PD_ATTR_REQUEST, "smtpd_access_policy");
	set_attr(req, PD_ATTR_SASL_USERNAME, "alice@example.com");
	set_attr(req, PD_ATTR_SASL_METHOD, "PLAIN");
	set_attr(req, PD_ATTR_INSTANCE, "1a2b.6569a3f1.1c2d3.0");
	set_attr(req, PD_ATTR_CLIENT_ADDRESS, "192.0.2.7");
	set_attr(req, PD_ATTR_ENCRYPTION_PROTOCOL, "");
	assert_int_equal(pd_answer(req, policy, &cfg, 20261129, 0, a, why, sizeof(why)), 0);
	assert_true(a->has_event);
	assert_non_null(strstr(a->event, " mech=PLAIN session=1a2b.6569a3f1.1c2d3.0"));
	assert_int_equal(a->verdict, TG_VERDICT_REJECT);
	free(req);
	free(a);
}

/* helo_name, client_name, reverse_client_name and the ports go to the
 * event after everything else; "unknown" and junk ports are left out. */
static void test_device_fields(void **state)
{
	static const struct {
		const char *helo, *name, *rname, *cport, *sport;
		const char *want;	/* in the event; NULL: no device field */
	} device_rows[] = {
		{ "pc17.lan", "mail.example.net", "mail.example.net", "40123", "587",
		  " helo=pc17.lan client_name=mail.example.net "
		  "reverse_client_name=mail.example.net client_port=40123 server_port=587" },
		{ "[192.0.2.7]", "unknown", "unknown", "0", "99999",
		  "session=s helo=[192.0.2.7]" },
		{ "evil\x1b]0;x\x07 tlsgate: service=imap", NULL, NULL, "12a", NULL,
		  " helo=\"evil\\x1b]0;x\\x07 tlsgate: service=imap\"" },
		{ "", "", "", "", "", NULL },
	};
	(void)state;
	struct pd_answer *a = malloc(sizeof(*a));
	assert_non_null(a);
	for (size_t i = 0; i < sizeof(device_rows) / sizeof(device_rows[0]); i++) {
		struct pd_request *req = new_request();
		struct pd_answer_config cfg = { .message = "m", .log_tls = true };
		char why[256];
		set_attr(req, PD_ATTR_REQUEST, "smtpd_access_policy");
		set_attr(req, PD_ATTR_SASL_USERNAME, "alice@example.com");
		set_attr(req, PD_ATTR_INSTANCE, "s");
		set_attr(req, PD_ATTR_CLIENT_ADDRESS, "192.0.2.7");
		set_attr(req, PD_ATTR_HELO_NAME, device_rows[i].helo);
		set_attr(req, PD_ATTR_CLIENT_NAME, device_rows[i].name);
		set_attr(req, PD_ATTR_REVERSE_CLIENT_NAME, device_rows[i].rname);
		set_attr(req, PD_ATTR_CLIENT_PORT, device_rows[i].cport);
		set_attr(req, PD_ATTR_SERVER_PORT, device_rows[i].sport);
		assert_int_equal(pd_answer(req, policy, &cfg, 20261129, 0, a, why, sizeof(why)), 0);
		assert_true(a->has_event);
		if (device_rows[i].want == NULL ? strstr(a->event, "session=s") == NULL ||
					   strstr(a->event, "session=s ") != NULL
					 : strstr(a->event, device_rows[i].want) == NULL)
			fail_msg("row %zu: event \"%s\"", i, a->event);
		if (strstr(a->event, "unknown") != NULL || strstr(a->event, "port=0") != NULL ||
		    strstr(a->event, "99999") != NULL || strstr(a->event, "12a") != NULL)
			fail_msg("row %zu: event \"%s\"", i, a->event);
		free(req);
	}
	free(a);
}

static const struct bad_row {
	const char *request;	/* NULL: absent */
	const char *why;
} bad_rows[] = {
	{ NULL, "request without request=smtpd_access_policy" },
	{ "junk", "unsupported request=\"junk\"" },
	{ "smtpd_access_policy ", "unsupported request" },
	{ "\x1b[2J", "unsupported request=\"?[2J\"" },
};

static void test_not_a_policy_request(void **state)
{
	(void)state;
	struct pd_answer *a = malloc(sizeof(*a));
	struct pd_answer_config cfg = { .message = "m", .log_tls = true };
	assert_non_null(a);
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		struct pd_request *req = new_request();
		char why[256] = "";
		set_attr(req, PD_ATTR_REQUEST, bad_rows[i].request);
		set_attr(req, PD_ATTR_SASL_USERNAME, "alice@example.com");
		assert_int_equal(pd_answer(req, policy, &cfg, 20261129, 0, a, why, sizeof(why)), -1);
		if (strstr(why, bad_rows[i].why) == NULL)
			fail_msg("bad row %zu: why \"%s\", want \"%s\"", i, why, bad_rows[i].why);
		assert_int_equal(a->reply_len, 0);
		free(req);
	}
	free(a);
}

static const struct tls_row {
	const char *text;
	enum tg_tls want;
} tls_rows[] = {
	{ "", TG_TLS_NONE },
	{ "TLSv1", TG_TLS_V1_0 },
	{ "TLSv1.1", TG_TLS_V1_1 },
	{ "TLSv1.2", TG_TLS_V1_2 },
	{ "TLSv1.3", TG_TLS_V1_3 },
	{ "SSLv3", TG_TLS_V1_0 },	/* older than TLSv1: counts as the oldest */
	{ "TLSv1.4", TG_TLS_UNKNOWN },
	{ "none", TG_TLS_UNKNOWN },	/* not Postfix's spelling of plaintext */
};

static void test_tls_of(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(tls_rows) / sizeof(tls_rows[0]); i++)
		assert_int_equal(pd_tls_of(tls_rows[i].text, strlen(tls_rows[i].text)),
				 tls_rows[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_session_and_mech),
		cmocka_unit_test(test_not_a_policy_request),
		cmocka_unit_test(test_tls_of),
		cmocka_unit_test(test_device_fields),
		cmocka_unit_test(test_reply_per_reason),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

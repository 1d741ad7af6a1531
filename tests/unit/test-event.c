/*
 * test-event - event lines: format, escaping of hostile values, parsing
 * back from every log prefix, malformed lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "event.h"

static void test_format_plain(void **state)
{
	struct tg_event ev = { 0 };
	char buf[TG_EVENT_MAX_LINE];
	ev.value[TG_EV_SERVICE] = "smtp";
	ev.value[TG_EV_USER] = "alice@example.com";
	ev.value[TG_EV_CLIENT] = "192.0.2.7";
	ev.value[TG_EV_TLS] = "none";
	ev.value[TG_EV_VERDICT] = "reject";
	ev.value[TG_EV_MODE] = "require";
	ev.value[TG_EV_RULE] = "policy.d/example.com.conf:3";
	assert_true(tg_event_format(&ev, buf, sizeof(buf)) > 0);
	assert_string_equal(buf,
		"tlsgate: service=smtp user=alice@example.com client=192.0.2.7 tls=none "
		"verdict=reject mode=require rule=policy.d/example.com.conf:3");
	ev.value[TG_EV_EXEMPTION] = "e.conf:9";
	ev.value[TG_EV_SESSION] = "4LxyZ";
	assert_true(tg_event_format(&ev, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "rule=policy.d/example.com.conf:3 exemption=e.conf:9 session=4LxyZ"));
	/* a buffer smaller than the maximum line is refused */
	char small[100];
	assert_int_equal(tg_event_format(&ev, small, sizeof(small)), -1);
}

static void test_escaping(void **state)
{
	static const struct {
		const char *user;
		const char *want;	/* as written */
	} rows[] = {
		{ "alice", "user=alice " },
		{ "", "user=\"\" " },
		{ "a b", "user=\"a b\" " },
		{ "x verdict=allow", "user=\"x verdict=allow\" " },
		{ "a\nb tlsgate: service=imap", "user=\"a\\x0ab tlsgate: service=imap\" " },
		{ "q\"uote", "user=\"q\\\"uote\" " },
		{ "back\\slash", "user=\"back\\\\slash\" " },
		{ "esc\x1b[31m", "user=\"esc\\x1b[31m\" " },
		{ "j\xc3\xbcrgen", "user=\"j\\xc3\\xbcrgen\" " },
		{ "del\x7f", "user=\"del\\x7f\" " },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_event ev = { 0 };
		char buf[TG_EVENT_MAX_LINE];
		struct tg_event_parsed parsed;
		ev.value[TG_EV_SERVICE] = "imap";
		ev.value[TG_EV_USER] = rows[i].user;
		ev.value[TG_EV_CLIENT] = "unknown";
		ev.value[TG_EV_TLS] = "none";
		ev.value[TG_EV_VERDICT] = "audit";
		ev.value[TG_EV_MODE] = "audit";
		ev.value[TG_EV_RULE] = "default";
		int n = tg_event_format(&ev, buf, sizeof(buf));
		assert_true(n > 0);
		if (strstr(buf, rows[i].want) == NULL)
			fail_msg("row %zu: '%s' lacks '%s'", i, buf, rows[i].want);
		for (int k = 0; k < n; k++)
			if ((unsigned char)buf[k] < 0x20 || (unsigned char)buf[k] >= 0x7f)
				fail_msg("row %zu: byte %d is 0x%02x", i, k, (unsigned char)buf[k]);
		/* round trip: the same value comes back, no field is forged */
		assert_int_equal(tg_event_parse(buf, (size_t)n, &parsed), 0);
		assert_string_equal(parsed.ev.value[TG_EV_USER], rows[i].user);
		assert_string_equal(parsed.ev.value[TG_EV_VERDICT], "audit");
		assert_string_equal(parsed.ev.value[TG_EV_SERVICE], "imap");
	}
}

static void test_long_value_cut(void **state)
{
	char user[1000], buf[TG_EVENT_MAX_LINE];
	memset(user, '\n', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	struct tg_event ev = { 0 };
	for (int f = 0; f < TG_EV_COUNT; f++)
		ev.value[f] = user;	/* every field at its worst */
	int n = tg_event_format(&ev, buf, sizeof(buf));
	assert_true(n > 0 && n < TG_EVENT_MAX_LINE);
	assert_non_null(strstr(buf, "\\x0a...\""));
	struct tg_event_parsed parsed;
	assert_int_equal(tg_event_parse(buf, (size_t)n, &parsed), 0);
	assert_int_equal(parsed.ev.len[TG_EV_USER], TG_EVENT_MAX_VALUE + 3);
}

static void test_parse_prefixes(void **state)
{
	static const char *const lines[] = {
		"Nov 29 10:00:01 mx tlsgate-policyd[123]: tlsgate: service=smtp user=a@b client=192.0.2.7 tls=none verdict=reject mode=require rule=p.conf:3\n",
		"2026-11-29T10:00:01.123456+01:00 mx dovecot: auth: Info: tlsgate: service=imap user=a@b client=192.0.2.7 tls=none verdict=reject mode=require rule=p.conf:3",
		"Nov 29 10:00:01 auth: Info: tlsgate: service=imap user=a@b client=192.0.2.7 tls=none verdict=reject mode=require rule=p.conf:3 mech=PLAIN session=abc\r\n",
		"tlsgate: service=imap user=a@b client=192.0.2.7 tls=none verdict=reject mode=require rule=p.conf:3 future_key=1",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct tg_event_parsed p;
		if (tg_event_parse(lines[i], strlen(lines[i]), &p) != 0)
			fail_msg("line %zu not parsed", i);
		assert_string_equal(p.ev.value[TG_EV_USER], "a@b");
		assert_string_equal(p.ev.value[TG_EV_RULE], "p.conf:3");
		assert_string_equal(lines[i] + p.tag_offset, strstr(lines[i], "tlsgate: service="));
	}
}

static void test_parse_malformed(void **state)
{
	static const char *const lines[] = {
		"",
		"Nov 29 10:00:01 mx postfix/smtpd[1]: connect from unknown",
		"tlsgate: started",
		"tlsgate: service=imap",					/* fields missing */
		"tlsgate: service=imap user=a client=x tls=none verdict=allow mode=off",
		"tlsgate: service=imap user=a client=x tls=none verdict=allow mode=off rule=r user=b",	/* duplicate */
		"tlsgate: service=imap user=\"a client=x tls=none verdict=allow mode=off rule=r",	/* open quote */
		"tlsgate: service=imap user=\"a\\q\" client=x tls=none verdict=allow mode=off rule=r",	/* bad escape */
		"tlsgate: service=imap user=\"a\\x4\" client=x tls=none verdict=allow mode=off rule=r",
		"tlsgate: service=imap user=a\"b client=x tls=none verdict=allow mode=off rule=r",
		"tlsgate: service=imap user=a  client=x tls=none verdict=allow mode=off rule=r",	/* double blank */
		"tlsgate: service=imap user client=x tls=none verdict=allow mode=off rule=r",
		"tlsgate: service=imap user=\"x\"y client=x tls=none verdict=allow mode=off rule=r",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct tg_event_parsed p;
		if (tg_event_parse(lines[i], strlen(lines[i]), &p) != -1)
			fail_msg("line %zu parsed: %s", i, lines[i]);
	}
}

static void test_from_decision(void **state)
{
	struct tg_decision d = { 0 };
	struct tg_event ev;
	struct tg_event_texts texts;
	struct tg_addr addr;
	char buf[TG_EVENT_MAX_LINE];

	d.verdict = TG_VERDICT_EXEMPT;
	d.mode = TG_MODE_AUDIT;
	d.rule = (struct tg_rule_ref){ "/etc/tlsgate/policy.d/example.com.conf", 2 };
	d.exemption = (struct tg_rule_ref){ "/etc/tlsgate/policy.d/example.com.conf", 5 };
	d.enforce_from = 20270301;
	assert_int_equal(tg_addr_parse("::ffff:192.0.2.10", 17, &addr), 0);
	tg_event_from_decision(&ev, &texts, &d, "scanner@example.com", TG_SERVICE_SMTP,
			       &addr, TG_TLS_NONE, "PLAIN", NULL);
	assert_true(tg_event_format(&ev, buf, sizeof(buf)) > 0);
	assert_string_equal(buf,
		"tlsgate: service=smtp user=scanner@example.com client=192.0.2.10 tls=none "
		"verdict=exempt mode=audit rule=/etc/tlsgate/policy.d/example.com.conf:2 "
		"exemption=/etc/tlsgate/policy.d/example.com.conf:5 enforce_from=2027-03-01 mech=PLAIN");

	memset(&d, 0, sizeof(d));
	tg_event_from_decision(&ev, &texts, &d, "a", TG_SERVICE_IMAP, NULL,
			       TG_TLS_V1_3, NULL, "s1");
	assert_true(tg_event_format(&ev, buf, sizeof(buf)) > 0);
	assert_string_equal(buf,
		"tlsgate: service=imap user=a client=unknown tls=TLSv1.3 verdict=allow "
		"mode=off rule=default session=s1");
}

/* The device fields come after login=, in the table's order, cut at
 * TG_EVENT_MAX_DEVICE_VALUE bytes and escaped like every value. */
static void test_device_fields(void **state)
{
	struct tg_event ev = { 0 };
	struct tg_event_texts texts;
	struct tg_event_parsed parsed;
	char buf[TG_EVENT_MAX_LINE];
	ev.value[TG_EV_SERVICE] = "imap";
	ev.value[TG_EV_USER] = "a@example.com";
	ev.value[TG_EV_CLIENT] = "192.0.2.7";
	ev.value[TG_EV_TLS] = "none";
	ev.value[TG_EV_VERDICT] = "audit";
	ev.value[TG_EV_MODE] = "audit";
	ev.value[TG_EV_RULE] = "default";
	ev.value[TG_EV_LOGIN] = "a";
	ev.value[TG_EV_IMAP_ID_NAME] = "scanner \"x\" tlsgate: service=imap";
	ev.value[TG_EV_IMAP_ID_VERSION] = "1.0";
	ev.value[TG_EV_HELO] = "pc17.lan";
	tg_event_set_ports(&ev, &texts, 40123, 0);
	int n = tg_event_format(&ev, buf, sizeof(buf));
	assert_true(n > 0);
	assert_non_null(strstr(buf, " login=a imap_id_name=\"scanner \\\"x\\\" tlsgate: service=imap\" "
				    "imap_id_version=1.0 helo=pc17.lan client_port=40123"));
	assert_null(strstr(buf, "server_port"));
	assert_int_equal(tg_event_parse(buf, (size_t)n, &parsed), 0);
	assert_string_equal(parsed.ev.value[TG_EV_IMAP_ID_NAME], "scanner \"x\" tlsgate: service=imap");
	assert_string_equal(parsed.ev.value[TG_EV_CLIENT_PORT], "40123");
	assert_string_equal(parsed.ev.value[TG_EV_SERVICE], "imap");

	char big[1000];
	memset(big, 'h', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ev.value[TG_EV_HELO] = big;
	n = tg_event_format(&ev, buf, sizeof(buf));
	assert_int_equal(tg_event_parse(buf, (size_t)n, &parsed), 0);
	assert_int_equal(parsed.ev.len[TG_EV_HELO], TG_EVENT_MAX_DEVICE_VALUE + 3);
}

/* Every field present, every value at its worst (all bytes escaped, over
 * the cut): the line is still written. */
static void test_worst_line(void **state)
{
	struct tg_event ev = { 0 };
	struct tg_event_parsed parsed;
	static char worst[4096], buf[TG_EVENT_MAX_LINE];
	memset(worst, '\x01', sizeof(worst) - 1);
	for (int f = 0; f < TG_EV_COUNT; f++)
		ev.value[f] = worst;
	int n = tg_event_format(&ev, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(tg_event_parse(buf, (size_t)n, &parsed), 0);
	for (int f = 0; f < TG_EV_COUNT; f++)
		assert_non_null(parsed.ev.value[f]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_plain),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_long_value_cut),
		cmocka_unit_test(test_parse_prefixes),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_from_decision),
		cmocka_unit_test(test_device_fields),
		cmocka_unit_test(test_worst_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

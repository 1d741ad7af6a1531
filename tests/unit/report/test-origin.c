/*
 * test-origin - which log lines are events tlsgate wrote (cli/report/
 * origin.h): every log form the Dovecot module and tlsgate-policyd appear
 * in, and the places where others put the tag (a Message-ID logged by
 * Postfix's cleanup, a login name logged by Dovecot's auth_verbose, another
 * program, the tag mid-message); plausible user and client values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "report/origin.h"

#define EV "tlsgate: service=imap user=a@example.com client=192.0.2.7 tls=none " \
	   "verdict=audit mode=audit rule=r"

static void test_origins(void **state)
{
	static const struct {
		const char *prefix;	/* put in front of EV */
		enum origin_kind kind;
	} rows[] = {
		/* ours */
		{ "", ORIGIN_OURS },					/* journalctl -o cat */
		{ "Nov 29 10:00:01 mx dovecot: auth: Info: ", ORIGIN_OURS },
		{ "Nov 29 10:00:01 mx dovecot: auth: ", ORIGIN_OURS },
		{ "Nov  9 10:00:01 mx dovecot[812]: auth: Info: ", ORIGIN_OURS },
		{ "Nov 29 10:00:01 auth: Info: ", ORIGIN_OURS },	/* log_path */
		{ "2026-11-29 10:00:01 auth: Info: ", ORIGIN_OURS },	/* log_timestamp with year */
		{ "auth: Info: ", ORIGIN_OURS },			/* -o cat of Dovecot */
		{ "Nov 29 10:00:01 mx tlsgate-policyd[812]: ", ORIGIN_OURS },
		{ "Nov 29 10:00:01.123456 mx tlsgate-policyd[812]: ", ORIGIN_OURS },
		{ "2026-11-29T10:00:01+0100 mx tlsgate-policyd[812]: ", ORIGIN_OURS },
		{ "2026-11-29T10:00:01.123456+01:00 mx tlsgate-policyd[812]: ", ORIGIN_OURS },
		{ "2026-11-29T10:00:01Z mx tlsgate-policyd: ", ORIGIN_OURS },
		{ "tlsgate-policyd[812]: info: ", ORIGIN_OURS },	/* -f, stderr */
		{ "2026-11-29T10:00:01+0100 mx tlsgate-policyd[9]: tlsgate-policyd[9]: info: ",
		  ORIGIN_OURS },					/* -f in the journal */
		/* foreign */
		{ "Nov 29 10:00:01 mx postfix/cleanup[7]: 4XyZ1: message-id=<", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx dovecot: auth: Info: passwd-file(", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 auth: Info: plain(?,192.0.2.1): Invalid username: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx dovecot: imap-login: Info: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx dovecot: auth-worker(9): Info: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx dovecot: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx evil: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx tlsgate-policyd[x]: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx tlsgate-policyd[]: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx tlsgate-policyd-x: ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx tlsgate-policyd[1]: x ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 mx tlsgate-policyd[1]:  ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01 a b tlsgate-policyd[1]: ", ORIGIN_FOREIGN },
		{ "x ", ORIGIN_FOREIGN },
		{ " ", ORIGIN_FOREIGN },
		{ "Nov 29 10:00:01tlsgate-policyd: ", ORIGIN_FOREIGN },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char line[512];
		size_t plen = strlen(rows[i].prefix);
		memcpy(line, rows[i].prefix, plen);
		memcpy(line + plen, EV, sizeof(EV));
		size_t off = 12345;
		enum origin_kind k = origin_classify(line, strlen(line), &off);
		if (k != rows[i].kind || (k == ORIGIN_OURS && off != plen))
			fail_msg("row %zu '%s': kind %d off %zu", i, rows[i].prefix, (int)k, off);
	}
	size_t off;
	assert_int_equal(origin_classify("Nov 29 10:00:01 mx x: y", 23, &off), ORIGIN_NONE);
	assert_int_equal(origin_classify("", 0, &off), ORIGIN_NONE);
	/* the tag must be followed by service= to be looked at at all */
	assert_int_equal(origin_classify("tlsgate: x", 10, &off), ORIGIN_NONE);
}

static void test_plausible(void **state)
{
	static const struct {
		const char *user;
		bool ok;
	} users[] = {
		{ "alice@example.com", true },
		{ "legacy", true },
		{ "j\xc3\xbcrgen@example.com", true },
		{ "", false },
		{ "a b@example.com", false },
		{ "a\"b", false },
		{ "a'b", false },
		{ "a\\b", false },
		{ "<a>", false },
		{ "a\x1b[31m", false },
		{ "a\x7f", false },
		{ "bad\xff", false },
		{ "a\xe2\x80\xae" "b", false },	/* U+202E right-to-left override */
		{ "a\xe2\x80\x8f" "b", false },	/* U+200F */
		{ "a\xe2\x81\xa6" "b", false },	/* U+2066 */
		{ "a\xd8\x9c" "b", false },	/* U+061C */
		{ "a\xe2\x80\x94" "b", true },	/* U+2014, an em dash: not bidi */
	};
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (origin_user_plausible(users[i].user, strlen(users[i].user)) != users[i].ok)
			fail_msg("user row %zu", i);
	char longname[ORIGIN_MAX_USER + 2];
	memset(longname, 'a', sizeof(longname));
	assert_true(origin_user_plausible(longname, ORIGIN_MAX_USER));
	assert_false(origin_user_plausible(longname, ORIGIN_MAX_USER + 1));

	static const struct {
		const char *client;
		bool ok;
	} clients[] = {
		{ "192.0.2.7", true }, { "2001:db8::1", true }, { "unknown", true },
		{ "", false }, { "1", false }, { "192.0.2.7 x", false },
		{ "Your mailbox is locked. Re-login: https://evil.example/", false },
		{ "unknown2", false },
	};
	for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++)
		if (origin_client_plausible(clients[i].client, strlen(clients[i].client)) != clients[i].ok)
			fail_msg("client row %zu", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_origins),
		cmocka_unit_test(test_plausible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-netaddr - strict address and network parsing, matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "netaddr.h"

static void test_addr_parse(void **state)
{
	static const struct {
		const char *in;
		int ok;
		int family;
		const char *canon;
	} rows[] = {
		{ "192.0.2.7", 1, 4, "192.0.2.7" },
		{ "0.0.0.0", 1, 4, "0.0.0.0" },
		{ "255.255.255.255", 1, 4, "255.255.255.255" },
		{ "2001:db8::1", 1, 6, "2001:db8::1" },
		{ "2001:DB8::1", 1, 6, "2001:db8::1" },
		{ "::1", 1, 6, "::1" },
		{ "::ffff:192.0.2.7", 1, 4, "192.0.2.7" },	/* mapped = IPv4 */
		{ "::FFFF:c000:0207", 1, 4, "192.0.2.7" },
		{ "::192.0.2.7", 1, 6, "::192.0.2.7" },		/* compatible != mapped */
		{ "10.1", 0, 0, NULL },				/* inet_aton forms */
		{ "010.0.0.1", 0, 0, NULL },
		{ "0x7f.0.0.1", 0, 0, NULL },
		{ "1.2.3.4 ", 0, 0, NULL },
		{ " 1.2.3.4", 0, 0, NULL },
		{ "256.0.0.1", 0, 0, NULL },
		{ "[::1]", 0, 0, NULL },
		{ "IPv6:::1", 0, 0, NULL },
		{ "fe80::1%eth0", 0, 0, NULL },
		{ "unknown", 0, 0, NULL },
		{ "", 0, 0, NULL },
		{ "1:2:3:4:5:6:7:8:9", 0, 0, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_addr a;
		char buf[TG_ADDR_STRLEN];
		int r = tg_addr_parse(rows[i].in, strlen(rows[i].in), &a);
		if (!rows[i].ok) {
			if (r != -1)
				fail_msg("row %zu '%s' parsed", i, rows[i].in);
			continue;
		}
		if (r != 0)
			fail_msg("row %zu '%s' refused", i, rows[i].in);
		assert_int_equal(a.family, rows[i].family);
		assert_string_equal(tg_addr_format(&a, buf, sizeof(buf)), rows[i].canon);
	}
	/* An embedded NUL is not an address, whatever follows it. */
	struct tg_addr a;
	assert_int_equal(tg_addr_parse("1.2.3.4\0x", 9, &a), -1);
}

static void test_net_parse(void **state)
{
	static const struct {
		const char *in;
		const char *canon;	/* NULL: error */
		const char *why;	/* part of the error */
	} rows[] = {
		{ "192.0.2.10", "192.0.2.10/32", NULL },
		{ "192.0.2.10/32", "192.0.2.10/32", NULL },
		{ "10.20.0.0/16", "10.20.0.0/16", NULL },
		{ "0.0.0.0/0", "0.0.0.0/0", NULL },
		{ "2001:db8:1::/48", "2001:db8:1::/48", NULL },
		{ "::/0", "::/0", NULL },
		{ "2001:db8::1", "2001:db8::1/128", NULL },
		{ "::ffff:192.0.2.0/120", "192.0.2.0/24", NULL },
		{ "192.0.2.1/24", NULL, "did you mean 192.0.2.0/24?" },
		{ "10.20.30.40/16", NULL, "did you mean 10.20.0.0/16?" },
		{ "2001:db8:1::1/48", NULL, "did you mean 2001:db8:1::/48?" },
		{ "192.0.2.0/33", NULL, "prefix length over 32" },
		{ "2001:db8::/129", NULL, "prefix length over 128" },
		{ "192.0.2.0/", NULL, "bad prefix length" },
		{ "192.0.2.0/24/1", NULL, "bad prefix length" },
		{ "192.0.2.0/08", NULL, "bad prefix length" },
		{ "192.0.2.0/-1", NULL, "bad prefix length" },
		{ "192.0.2.0/2x", NULL, "bad prefix length" },
		{ "::ffff:192.0.2.0/24", NULL, "from 96 to 128" },
		{ "10.1/16", NULL, "not an IPv4 or IPv6 address" },
		{ "example.com", NULL, "not an IPv4 or IPv6 address" },
		{ "/24", NULL, "not an IPv4 or IPv6 address" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_net n;
		char why[200] = "", buf[64];
		int r = tg_net_parse(rows[i].in, strlen(rows[i].in), &n, why, sizeof(why));
		if (rows[i].canon != NULL) {
			if (r != 0)
				fail_msg("row %zu '%s': %s", i, rows[i].in, why);
			assert_string_equal(tg_net_format(&n, buf, sizeof(buf)), rows[i].canon);
		} else {
			if (r != -1)
				fail_msg("row %zu '%s' accepted", i, rows[i].in);
			if (strstr(why, rows[i].why) == NULL)
				fail_msg("row %zu '%s': why '%s' lacks '%s'", i,
					 rows[i].in, why, rows[i].why);
		}
	}
}

static void test_net_contains(void **state)
{
	static const struct {
		const char *net, *addr;
		int want;
	} rows[] = {
		{ "192.0.2.0/24", "192.0.2.0", 1 },
		{ "192.0.2.0/24", "192.0.2.255", 1 },
		{ "192.0.2.0/24", "192.0.3.0", 0 },
		{ "192.0.2.0/24", "::ffff:192.0.2.7", 1 },	/* mapped client */
		{ "::ffff:192.0.2.0/120", "192.0.2.7", 1 },
		{ "192.0.2.10", "192.0.2.10", 1 },
		{ "192.0.2.10", "192.0.2.11", 0 },
		{ "10.0.0.0/9", "10.127.255.255", 1 },
		{ "10.0.0.0/9", "10.128.0.0", 0 },
		{ "0.0.0.0/0", "203.0.113.1", 1 },
		{ "0.0.0.0/0", "2001:db8::1", 0 },		/* families differ */
		{ "::/0", "192.0.2.1", 0 },
		{ "::/0", "2001:db8::1", 1 },
		{ "2001:db8:1::/48", "2001:db8:1:ffff::1", 1 },
		{ "2001:db8:1::/48", "2001:db8:2::1", 0 },
		{ "2001:db8::/33", "2001:db8:7fff::1", 1 },
		{ "2001:db8::/33", "2001:db8:8000::1", 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_net n;
		struct tg_addr a;
		char why[200];
		assert_int_equal(tg_net_parse(rows[i].net, strlen(rows[i].net), &n, why, sizeof(why)), 0);
		assert_int_equal(tg_addr_parse(rows[i].addr, strlen(rows[i].addr), &a), 0);
		if (tg_net_contains(&n, &a) != rows[i].want)
			fail_msg("row %zu: %s in %s should be %d", i, rows[i].addr,
				 rows[i].net, rows[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_net_contains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

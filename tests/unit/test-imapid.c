/*
 * test-imapid - the IMAP ID reader (lib/imapid): what Dovecot passes as
 * client_id, and hostile texts a client can make it pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapid.h"

static void test_accepted(void **state)
{
	static const struct {
		const char *text;
		const char *name, *version;	/* NULL: not kept */
	} rows[] = {
		{ "\"name\" \"scanner-x\" \"version\" \"1.0\"", "scanner-x", "1.0" },
		{ "(\"name\" \"Thunderbird\" \"version\" \"115.3.1\")", "Thunderbird", "115.3.1" },
		{ "\"NAME\" \"Outlook\" \"os\" NIL", "Outlook", NULL },
		{ "\"vendor\" \"ACME\" \"Version\" \"2\"", NULL, "2" },
		{ "\"name\" NIL \"version\" \"3\"", NULL, "3" },
		{ "NIL", NULL, NULL },
		{ "nil", NULL, NULL },
		{ "", NULL, NULL },
		{ "()", NULL, NULL },
		/* the first of a field wins */
		{ "\"name\" \"first\" \"name\" \"second\"", "first", NULL },
		/* quotes and backslashes come back unescaped */
		{ "\"name\" \"say \\\"hi\\\" \\\\o/\"", "say \"hi\" \\o/", NULL },
		/* bytes kept as sent: control, 8-bit, bidi (shown escaped elsewhere) */
		{ "\"name\" \"a\x1b[31mb\"", "a\x1b[31mb", NULL },
		{ "\"name\" \"\xe2\x80\xae" "evil\"", "\xe2\x80\xae" "evil", NULL },
		/* an event tag inside the ID is just text */
		{ "\"name\" \"x tlsgate: service=imap user=bob\"",
		  "x tlsgate: service=imap user=bob", NULL },
		/* field names over 30 bytes are no field */
		{ "\"nameXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\" \"x\"", NULL, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_imapid id;
		char why[128] = "";
		if (tg_imapid_parse(rows[i].text, strlen(rows[i].text), &id, why, sizeof(why)) != 0)
			fail_msg("row %zu refused: %s", i, why);
		assert_int_equal(id.has_name, rows[i].name != NULL);
		assert_int_equal(id.has_version, rows[i].version != NULL);
		if (rows[i].name != NULL)
			assert_string_equal(id.name, rows[i].name);
		if (rows[i].version != NULL)
			assert_string_equal(id.version, rows[i].version);
		assert_false(id.cut);
	}
}

static void test_refused(void **state)
{
	static const struct {
		const char *text;
		size_t len;		/* 0: strlen */
	} rows[] = {
		{ "\"name\"", 0 },				/* odd count */
		{ "\"name\" ", 0 },
		{ "\"name\" \"x", 0 },				/* unterminated */
		{ "\"name\" \"x\\n\"", 0 },			/* bad escape */
		{ "\"name\" \"x\\", 0 },
		{ "\"name\" {5}\r\nhello", 0 },			/* literal */
		{ "name \"x\"", 0 },				/* bare atom */
		{ "\"name\"  \"x\"", 0 },			/* two spaces */
		{ "\"name\"\"x\"", 0 },				/* no space */
		{ "(\"name\" \"x\"", 0 },			/* unbalanced */
		{ "\"name\" \"x\")", 0 },
		{ "((\"name\" \"x\"))", 0 },			/* nested */
		{ "\"name\" \"x\" ", 0 },			/* trailing space */
		{ "\"name\" \"a\0b\"", 12 },			/* NUL */
		{ "\"name\" NILL", 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_imapid id;
		char why[128] = "";
		size_t len = rows[i].len ? rows[i].len : strlen(rows[i].text);
		if (tg_imapid_parse(rows[i].text, len, &id, why, sizeof(why)) != -1)
			fail_msg("row %zu accepted", i);
		assert_true(why[0] != '\0');
		assert_false(id.has_name);
		assert_false(id.has_version);
		/* the error text never echoes the input */
		assert_null(strstr(why, "name"));
	}
}

/* A 10 KB value: over the input bound, refused; a 4 KB one is cut. */
static void test_long_values(void **state)
{
	struct tg_imapid id;
	char why[128];
	size_t big = 10 * 1024;
	char *text = malloc(big + 32);
	assert_non_null(text);

	int n = snprintf(text, 32, "\"name\" \"");
	memset(text + n, 'A', big);
	memcpy(text + n + big, "\"", 2);
	assert_int_equal(tg_imapid_parse(text, strlen(text), &id, why, sizeof(why)), -1);

	memcpy(text + n + 4000, "\" \"version\" \"9\"", 16);
	assert_int_equal(tg_imapid_parse(text, strlen(text), &id, why, sizeof(why)), 0);
	assert_true(id.cut);
	assert_int_equal(strlen(id.name), TG_IMAPID_MAX_VALUE);
	assert_string_equal(id.version, "9");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_long_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

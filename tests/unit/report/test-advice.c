/*
 * test-advice - program names to the setting that moves the program to TLS
 * (cli/report/advice.h): the names programs give of themselves, hostile
 * names (long, NUL, control bytes, invalid UTF-8, a known name inside a
 * longer word), and that every program of docs/rollout.md's table has an
 * entry with the same setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/advice.h"

#define DOC "../../docs/rollout.md"
#define DOC_HEADING "## Mail programs: what users see and the setting that fixes it"

static void test_names(void **state)
{
	static const struct {
		const char *name;
		const char *program;	/* "" generic */
	} rows[] = {
		{ "Thunderbird", "Thunderbird" },
		{ "Mozilla Thunderbird 115.5.0", "Thunderbird" },
		{ "THUNDERBIRD", "Thunderbird" },
		{ "Mutt/2.2.12 (2023-09-09)", "mutt" },
		{ "mutt", "mutt" },
		{ "NeoMutt/20220429", "neomutt" },
		{ "fetchmail 6.4.37", "fetchmail" },
		{ "isync", "mbsync" },
		{ "mbsync 1.4.4", "mbsync" },
		{ "msmtp", "msmtp" },
		{ "s-nail v14.9.24", "s-nail" },
		{ "swaks v20201014.0 jetmore.org/john/code/swaks/", "swaks" },
		{ "curl/7.88.1", "curl" },
		{ "getmail 6.18.11", "getmail" },
		{ "Python/3.11 imaplib", "python3" },
		{ "Microsoft Outlook 16.0", "Outlook" },
		{ "iPhone Mail", "Apple Mail" },
		{ "Mac OS X Mail", "Apple Mail" },
		{ "K-9 Mail", "K-9 Mail" },
		{ "Evolution 3.46.4", "Evolution" },
		/* unknown, or a name only inside a longer word */
		{ "", "" },
		{ "Roundcube Webmail", "" },
		{ "mutton", "" },
		{ "curly", "" },
		{ "xthunderbird", "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct advice *a = advice_for(rows[i].name, strlen(rows[i].name));
		if (strcmp(a->program, rows[i].program) != 0)
			fail_msg("row %zu \"%s\": %s, want %s", i, rows[i].name,
				 a->program, rows[i].program);
		assert_non_null(advice_text(a, ADVICE_EN));
		assert_non_null(advice_text(a, ADVICE_DE));
		assert_true(strcmp(advice_text(a, ADVICE_EN), advice_text(a, ADVICE_DE)) != 0);
	}
	assert_ptr_equal(advice_for(NULL, 5), advice_generic());
}

static void test_hostile_names(void **state)
{
	/* control bytes, NUL and invalid UTF-8 around a name: they separate
	 * words, never join them, and never reach the advice */
	static const char with_nul[] = "\x1b[2J\0mutt\xff\xfe";
	const struct advice *a = advice_for(with_nul, sizeof(with_nul) - 1);
	assert_string_equal(a->program, "mutt");
	assert_null(strchr(a->en, '\x1b'));
	static const char joined[] = "mu\0tt";
	assert_ptr_equal(advice_for(joined, sizeof(joined) - 1), advice_generic());

	/* a long name: only the first ADVICE_MAX_INPUT bytes count */
	size_t big = 1 << 20;
	char *s = malloc(big);
	assert_non_null(s);
	memset(s, 'x', big);
	memcpy(s + big - 5, " mutt", 5);
	assert_ptr_equal(advice_for(s, big), advice_generic());
	memset(s, ' ', ADVICE_MAX_INPUT);
	memcpy(s + ADVICE_MAX_INPUT - 4, "mutt", 4);
	assert_string_equal(advice_for(s, big)->program, "mutt");
	memcpy(s + ADVICE_MAX_INPUT - 3, "mutt", 4);	/* cut at the limit */
	assert_ptr_equal(advice_for(s, big), advice_generic());
	free(s);
}

/* One cell of a Markdown table row, trimmed; returns the next cell. */
static char *cell(char *p, char *out, size_t size)
{
	char *end = strchr(p, '|');
	size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
	while (n > 0 && (*p == ' '))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n'))
		n--;
	snprintf(out, size, "%.*s", (int)n, p);
	return end != NULL ? end + 1 : p + strlen(p);
}

static void test_every_program_of_the_doc_table_has_its_setting(void **state)
{
	FILE *f = fopen(DOC, "r");
	assert_non_null(f);
	char line[1024];
	int in_section = 0, rows = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "## ", 3) == 0) {
			in_section = strncmp(line, DOC_HEADING, strlen(DOC_HEADING)) == 0;
			continue;
		}
		if (!in_section || line[0] != '|')
			continue;
		char cells[6][300];
		char *p = line + 1;
		for (int i = 0; i < 6; i++)
			p = cell(p, cells[i], sizeof(cells[i]));
		if (strcmp(cells[0], "program") == 0 || cells[0][0] == '-')
			continue;
		const struct advice *a = advice_by_program(cells[0]);
		if (a == NULL)
			fail_msg("%s: no advice entry for \"%s\"", DOC, cells[0]);
		if (strcmp(a->setting, cells[5]) != 0)
			fail_msg("%s: %s/%s names the setting \"%s\", advice.c \"%s\"", DOC,
				 cells[0], cells[1], cells[5], a->setting);
		/* and the program's own name finds it */
		assert_ptr_equal(advice_for(cells[0], strlen(cells[0])), a);
		rows++;
	}
	fclose(f);
	if (rows < 10)
		fail_msg("%s: only %d rows under \"%s\"", DOC, rows, DOC_HEADING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_every_program_of_the_doc_table_has_its_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-hostile-regressions - inputs that once broke a parser (found by
 * fuzzing, sanitizers or hostile tests), kept so that they stay fixed,
 * and the equivalence of the two ways a policy is read: from a file in
 * chunks and from a buffer in one piece.
 *
 * Each row names what it guards. Under `make test-sanitize` these run with
 * ASan and UBSan, which is where most of them would show.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "netaddr.h"
#include "policy.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/tg-hostile-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return chmod(dir, 0755);
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(const char *name)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void write_bytes(const char *name, const char *data, size_t len)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, 0644), 0);
	assert_int_equal(close(fd), 0);
}

/* A policy directory without any *.conf: qsort() got a NULL array (UBSan:
 * "null pointer passed as argument 1"). Fixed in lib/policy.c load_dir. */
static void test_empty_directory(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	assert_int_equal(mkdir(path_of("empty.d"), 0755), 0);
	write_bytes("empty.d/readme.txt", "not a policy\n", 13);
	struct tg_policy *p = tg_policy_load(path_of("empty.d"), &errs);
	assert_non_null(p);
	assert_int_equal(tg_policy_mode_rule_count(p), 0);
	tg_policy_free(p);
	tg_errors_clear(&errs);
}

/* What a load produced, to compare a file load with a buffer load. */
struct outcome {
	int loaded;
	size_t modes, exempts, errors;
	char first_error[512];
	uint32_t lines[8];	/* refs of the last rules */
};

static void describe(struct tg_policy *p, const struct tg_errors *errs,
		     struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->errors = tg_errors_total(errs);
	if (errs->count > 0) {
		/* "file:line: message" without the file name */
		const char *rest = strchr(errs->msgs[0], ':');
		snprintf(o->first_error, sizeof(o->first_error), "%s", rest ? rest : "");
	}
	if (p == NULL)
		return;
	o->loaded = 1;
	o->modes = tg_policy_mode_rule_count(p);
	o->exempts = tg_policy_exemption_count(p);
	for (size_t i = 0; i < 8 && i < o->modes; i++) {
		struct tg_mode_rule_info info;
		tg_policy_mode_rule(p, o->modes - 1 - i, &info);
		o->lines[i] = info.ref.line;
	}
}

static void check_same(const char *what, const char *data, size_t len)
{
	struct tg_errors e1, e2;
	struct outcome a, b;

	tg_errors_init(&e1);
	tg_errors_init(&e2);
	struct tg_policy *p1 = tg_policy_load_buffer("x.conf", data, len, &e1);
	describe(p1, &e1, &a);
	write_bytes("x.conf", data, len);
	struct tg_policy *p2 = tg_policy_load(path_of("x.conf"), &e2);
	describe(p2, &e2, &b);
	if (a.loaded != b.loaded || a.modes != b.modes || a.exempts != b.exempts ||
	    a.errors != b.errors || strcmp(a.first_error, b.first_error) != 0 ||
	    memcmp(a.lines, b.lines, sizeof(a.lines)) != 0)
		fail_msg("%s: buffer load (loaded %d, %zu rules, %zu errors, '%s') "
			 "differs from file load (loaded %d, %zu rules, %zu errors, '%s')",
			 what, a.loaded, a.modes, a.errors, a.first_error,
			 b.loaded, b.modes, b.errors, b.first_error);
	tg_policy_free(p1);
	tg_policy_free(p2);
	tg_errors_clear(&e1);
	tg_errors_clear(&e2);
}

#define MIB (1024 * 1024)
/* Where lib/policy.c's reader ends its first read(2): READ_CHUNK plus room
 * for one line and its CR LF. The rows also cut at MIB, in case that
 * changes. */
static const size_t chunk_ends[] = { MIB + TG_POLICY_MAX_LINE + 2, MIB };

/* Builds `pad` bytes of comment lines, then `tail`, then rules. */
static size_t build(char *buf, size_t pad, const char *tail, size_t tail_len)
{
	size_t n = 0;
	while (n < pad) {
		size_t line = pad - n > 100 ? 100 : pad - n;
		memset(buf + n, '#', line);
		if (line > 1)
			buf[n + line - 1] = '\n';
		n += line;
	}
	memcpy(buf + n, tail, tail_len);
	n += tail_len;
	n += (size_t)sprintf(buf + n, "audit @after.example\nrequire @last.example\n");
	return n;
}

/* A file is read in chunks; a line cut by a chunk end must read the same
 * as in one piece: rules, CRLF, an over-long line, a NUL, a BOM-less
 * start, a missing final newline. */
static void test_file_equals_buffer(void **state)
{
	static const struct {
		const char *what;
		const char *tail;
	} rows[] = {
		{ "rule across the chunk end", "require @cut.example protocols=imap,pop3\n" },
		{ "CRLF across the chunk end", "require @crlf.example\r\naudit @x.example\r\n" },
		{ "quoted note across", "off a@b note=\"a note that is cut \\\" here\"\n" },
		{ "bad line across", "require @cut.example from=2027-13-01\n" },
		{ "NUL across", "require @n\0ul.example\n" },
	};
	size_t cap = 2 * MIB + 16384;
	char *buf = malloc(cap);
	char what[200];
	assert_non_null(buf);

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		size_t tail_len = strlen(rows[r].tail);
		if (strstr(rows[r].what, "NUL"))
			tail_len = 23;
		/* the chunk end falls before the tail, on its first bytes,
		 * in its middle, on its last bytes and after it */
		const size_t cuts[] = { 0, 1, 2, 3, tail_len / 2, tail_len - 2,
					tail_len - 1, tail_len, tail_len + 1 };
		for (size_t e = 0; e < 2; e++)
		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			size_t cut = cuts[c];
			size_t pad = chunk_ends[e] - cut;
			size_t len = build(buf, pad, rows[r].tail, tail_len);
			snprintf(what, sizeof(what), "%s (cut %zu)", rows[r].what, cut);
			check_same(what, buf, len);
		}
	}

	/* over-long lines at and around the chunk end, and the last line
	 * without a newline */
	static const size_t longs[] = { 4096, 4097, 4098, 70000 };
	static const size_t backs[] = { 0, 1, 4096, 4097, 4098, 8200 };
	for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
		for (size_t b = 0; b < sizeof(backs) / sizeof(backs[0]); b++) {
			size_t back = backs[b];
			size_t pad = chunk_ends[0] - back;
			char *tail = malloc(longs[i] + 2);
			assert_non_null(tail);
			memset(tail, 'x', longs[i]);
			memcpy(tail, "audit @", 7);
			tail[longs[i]] = '\n';
			size_t len = build(buf, pad, tail, longs[i] + 1);
			free(tail);
			snprintf(what, sizeof(what), "line of %zu bytes at %zu before", longs[i], back);
			check_same(what, buf, len);
			check_same("no final newline", buf, len - 1);
		}
	}
	free(buf);
}

/* Config and event parsers at their limits: one byte under and over. */
static void test_limits(void **state)
{
	char *line = malloc(TG_CONFIG_MAX_LINE + 64);
	struct tg_config cfg;
	struct tg_errors errs;
	assert_non_null(line);

	for (int over = 0; over <= 1; over++) {
		size_t n = (size_t)sprintf(line, "policy = /p\nmessage = ");
		size_t fill = TG_CONFIG_MAX_LINE - strlen("message = ") + (size_t)over;
		memset(line + n, 'm', fill);
		n += fill;
		tg_config_init(&cfg);
		tg_errors_init(&errs);
		int r = tg_config_parse(&cfg, "c.conf", line, n, &errs);
		assert_int_equal(r, -1);	/* over either limit */
		assert_non_null(strstr(errs.msgs[0], over ? "line longer than" : "longer than 400"));
		tg_config_free(&cfg);
		tg_errors_clear(&errs);
	}
	free(line);

	/* an event line as long as the parser's storage, and one longer */
	static struct tg_event_parsed parsed;
	size_t cap = TG_EVENT_MAX_LINE + 64;
	char *ev = malloc(cap);
	assert_non_null(ev);
	int n = snprintf(ev, cap, "tlsgate: service=imap user=u client=unknown tls=none verdict=allow mode=off rule=default session=");
	memset(ev + n, 's', cap - (size_t)n);
	assert_int_equal(tg_event_parse(ev, cap, &parsed), -1);
	assert_int_equal(tg_event_parse(ev, (size_t)n + 100, &parsed), 0);
	assert_int_equal(parsed.ev.len[TG_EV_SESSION], 100);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_directory),
		cmocka_unit_test(test_file_equals_buffer),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

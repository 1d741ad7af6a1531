/*
 * test-cli-notify - `tlsgate notify`: quoted-printable and encoded-word
 * headers, safe addresses, and whole runs of cmd_notify against a log and
 * a policy in a temporary directory (--out, --dry-run, --state/--every,
 * --max, templates with errors, a damaged state file, --send through a
 * stand-in sendmail script).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "report/mime.h"

static void test_qp_roundtrip(void **state)
{
	static const struct {
		const char *in;
		const char *want;	/* encoded */
	} rows[] = {
		{ "hello\n", "hello\n" },
		{ "a=b\n", "a=3Db\n" },
		{ "Verschl\xc3\xbcsselung\n", "Verschl=C3=BCsselung\n" },
		{ "trailing space \n", "trailing space=20\n" },
		{ "tab\t\n", "tab=09\n" },
		{ ".\n", "=2E\n" },
		{ "x\n.hidden\n", "x\n=2Ehidden\n" },
		{ "From here\n", "=46rom here\n" },
		{ "ctl\x1b[0m\n", "ctl=1B[0m\n" },
		{ "no newline", "no newline" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct mime_buf b;
		char dec[256];
		size_t n;
		mime_buf_init(&b);
		mime_qp_encode(&b, rows[i].in, strlen(rows[i].in));
		assert_false(b.failed);
		assert_string_equal(b.data, rows[i].want);
		assert_int_equal(mime_qp_decode(b.data, b.len, dec, &n), 0);
		assert_string_equal(dec, rows[i].in);
		mime_buf_free(&b);
	}
}

static void test_qp_line_length(void **state)
{
	char in[2000];
	size_t n = 0;
	/* long lines of mixed plain and encoded characters */
	for (int i = 0; i < 600; i++) {
		const char *piece = i % 3 ? "a" : "\xc3\xa4";
		memcpy(in + n, piece, strlen(piece));
		n += strlen(piece);
		if (i % 250 == 249)
			in[n++] = '\n';
	}
	in[n] = '\0';
	struct mime_buf b;
	mime_buf_init(&b);
	mime_qp_encode(&b, in, n);
	size_t col = 0;
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\n') {
			assert_true(col <= 76);
			col = 0;
		} else {
			col++;
		}
	}
	assert_true(col <= 76);
	char *dec = malloc(b.len + 1);
	size_t dn;
	assert_int_equal(mime_qp_decode(b.data, b.len, dec, &dn), 0);
	assert_int_equal(dn, n);
	assert_memory_equal(dec, in, n);
	free(dec);
	mime_buf_free(&b);
	assert_int_equal(mime_qp_decode("=G1", 3, (char[8]){ 0 }, &dn), -1);
	assert_int_equal(mime_qp_decode("abc=", 4, (char[8]){ 0 }, &dn), -1);
}

static void test_headers(void **state)
{
	static const struct {
		const char *value, *want;
	} rows[] = {
		{ "plain subject", "Subject: plain subject\n" },
		{ "Gr\xc3\xbc\xc3\x9f" "e", "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n" },
		{ "a b?c", "Subject: a b?c\n" },
		{ "\xc3\xa4 b?c_=", "Subject: =?UTF-8?Q?=C3=A4_b=3Fc=5F=3D?=\n" },
		/* control characters never reach a header raw */
		{ "x\r\nBcc: evil@example.com", "Subject: =?UTF-8?Q?x=3F=3FBcc=3A_evil=40example=2Ecom?=\n" },
		{ "bad \xff", "Subject: =?UTF-8?Q?bad_=3F?=\n" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct mime_buf b;
		mime_buf_init(&b);
		mime_header(&b, "Subject", rows[i].value);
		assert_string_equal(b.data, rows[i].want);
		mime_buf_free(&b);
	}
	/* a long non-ASCII value is folded into words of <= 75 characters */
	char longv[600] = "";
	for (int i = 0; i < 100; i++)
		strcat(longv, "\xc3\xbc" "x");
	struct mime_buf b;
	mime_buf_init(&b);
	mime_header(&b, "Subject", longv);
	char *save, *line = strtok_r(b.data, "\n", &save);
	int lines = 0;
	for (; line; line = strtok_r(NULL, "\n", &save), lines++)
		assert_true(strlen(line) <= 78);
	assert_true(lines > 3);
	mime_buf_free(&b);
}

static void test_safe_address(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} rows[] = {
		{ "alice@example.com", true },
		{ "first.last+tag@mail.example.org", true },
		{ "legacy", false },
		{ "@example.com", false },
		{ "alice@", false },
		{ "a b@example.com", false },
		{ "a@b@example.com", false },
		{ "../../etc/passwd@x.org", false },
		{ "a/b@example.com", false },
		{ "a@example.com\nBcc: x@y.org", false },
		{ "\"quoted\"@example.com", false },
		{ ".a@example.com", false },
		{ "a@.example.com", false },
		{ "a@example..com", false },
		{ "j\xc3\xbcrgen@example.com", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (mime_safe_address(rows[i].s) != rows[i].ok)
			fail_msg("row %zu '%s'", i, rows[i].s);
}

/* ---- whole runs ---- */

static char dir[64];
static char path_log[128], path_policy[128], path_out[128], path_state[128];
static char path_tpl[128], path_mailer[128], path_mailed[128];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *read_file(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count_eml(void)
{
	DIR *d = opendir(path_out);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".eml") != NULL;
	closedir(d);
	return n;
}

static int run_notify(const char *const *args)
{
	char *argv[40];
	int argc = 0;
	argv[argc++] = "notify";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	struct cli_context ctx = { .policy_path = path_policy, .progname = "tlsgate" };
	return cmd_notify(argc, argv, &ctx);
}

static int setup_dir(void **state)
{
	setenv("TZ", "UTC", 1);
	tzset();
	strcpy(dir, "/tmp/tg-test-notify-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path_log, sizeof(path_log), "%s/mail.log", dir);
	snprintf(path_policy, sizeof(path_policy), "%s/policy.conf", dir);
	snprintf(path_out, sizeof(path_out), "%s/out", dir);
	snprintf(path_state, sizeof(path_state), "%s/state", dir);
	snprintf(path_tpl, sizeof(path_tpl), "%s/t.txt", dir);
	snprintf(path_mailer, sizeof(path_mailer), "%s/mailer.sh", dir);
	snprintf(path_mailed, sizeof(path_mailed), "%s/mailed", dir);
	mkdir(path_out, 0700);
	write_file(path_policy,
		   "audit *\n"
		   "require @example.com from=2027-03-01\n"
		   "exempt scan@example.com 192.0.2.10\n");
	write_file(path_log,
		   "Nov 29 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=alice@example.com "
		   "client=192.0.2.7 tls=none verdict=audit mode=audit rule=p:2 mech=PLAIN\n"
		   "Nov 29 10:00:02 mx dovecot: auth: Info: tlsgate: service=smtp user=bob@example.com "
		   "client=192.0.2.8 tls=none verdict=audit mode=audit rule=p:2 mech=PLAIN\n"
		   "Nov 29 10:00:03 mx dovecot: auth: Info: tlsgate: service=imap user=carol@example.com "
		   "client=192.0.2.9 tls=TLSv1.3 verdict=allow mode=audit rule=p:2\n"
		   "Nov 29 10:00:04 mx dovecot: auth: Info: tlsgate: service=smtp user=scan@example.com "
		   "client=192.0.2.10 tls=none verdict=exempt mode=audit rule=p:2 exemption=p:3\n"
		   "Nov 29 10:00:05 mx dovecot: auth: Info: tlsgate: service=imap user=\"x/../y@example.com\" "
		   "client=192.0.2.11 tls=none verdict=audit mode=audit rule=p:2\n");
	write_file(path_tpl,
		   "Subject: TLS for {{account}}\n"
		   "\n"
		   "Seen: {{services}} from {{clients}}, last {{last_seen}}.\n"
		   "{{#enforce_from}}\n"
		   "Enforced from {{enforce_from}}.\n"
		   "{{/enforce_from}}\n"
		   "{{#imap}}\n"
		   "IMAP: 993 or 143 with STARTTLS\n"
		   "{{/imap}}\n"
		   "{{#smtp}}\n"
		   "SMTP: 465 or 587 with STARTTLS\n"
		   "{{/smtp}}\n"
		   "{{^enforce_from}}\n"
		   "No date yet.\n"
		   "{{/enforce_from}}\n");
	/* a stand-in sendmail: appends what it gets, fails for bob */
	write_file(path_mailer, "#!/bin/sh\n"
		   "msg=$(cat)\n"
		   "case \"$msg\" in *'To: bob@'*) exit 75;; esac\n"
		   "printf '%s\\n--END--\\n' \"$msg\" >> \"$1\"\n");
	chmod(path_mailer, 0700);
	return 0;
}

static int teardown_dir(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_run_out(void **state)
{
	const char *args[] = { "--out", path_out, "--from", "Admin <postmaster@example.com>",
			       "--template", path_tpl, "--at", "2026-11-29", path_log, NULL };
	assert_int_equal(run_notify(args), 0);
	/* alice and bob: not carol (TLS), not scan (exempt), not the odd name */
	assert_int_equal(count_eml(), 2);
	char p[600];
	snprintf(p, sizeof(p), "%s/alice@example.com.eml", path_out);
	char *m = read_file(p);
	assert_non_null(m);
	static const char *const want[] = {
		"From: Admin <postmaster@example.com>\r\n",
		"To: alice@example.com\r\n",
		"Subject: TLS for alice@example.com\r\n",
		"Date: ",
		"Message-ID: <",
		"@example.com>\r\n",
		"MIME-Version: 1.0\r\n",
		"Content-Type: text/plain; charset=UTF-8\r\n",
		"Content-Transfer-Encoding: quoted-printable\r\n",
		"\r\n\r\nSeen: IMAP from 192.0.2.7, last 2026-11-29 10:00.\r\n",
		"Enforced from 2027-03-01.\r\nIMAP: 993 or 143 with STARTTLS\r\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(m, want[i]) == NULL)
			fail_msg("missing '%s' in:\n%s", want[i], m);
	assert_null(strstr(m, "SMTP: 465"));
	assert_null(strstr(m, "No date yet"));
	assert_null(strstr(m, "{{"));
	/* no temporary files left */
	snprintf(p, sizeof(p), "ls -A '%s' | grep -q -e tmp -e '^[.]'", path_out);
	assert_int_not_equal(system(p), 0);
}

/* Once the domain's from= day has come, the notice says the logins are
 * refused already, and no date that lies in the past. */
static void test_run_out_already_enforced(void **state)
{
	char tpl[160], p[600];
	snprintf(tpl, sizeof(tpl), "%s/t2.txt", dir);
	write_file(tpl,
		   "Subject: TLS for {{account}}\n"
		   "\n"
		   "{{#enforced}}\n"
		   "Refused already.\n"
		   "{{/enforced}}\n"
		   "{{#enforce_from}}\n"
		   "Enforced from {{enforce_from}}.\n"
		   "{{/enforce_from}}\n");
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml", path_out);
	assert_int_equal(system(p), 0);
	const char *args[] = { "--out", path_out, "--from", "Admin <postmaster@example.com>",
			       "--template", tpl, "--at", "2027-03-02", path_log, NULL };
	assert_int_equal(run_notify(args), 0);
	snprintf(p, sizeof(p), "%s/alice@example.com.eml", path_out);
	char *m = read_file(p);
	assert_non_null(m);
	if (strstr(m, "Refused already.") == NULL || strstr(m, "Enforced from") != NULL)
		fail_msg("want 'Refused already.' and no date in:\n%s", m);
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml", path_out);
	assert_int_equal(system(p), 0);
}

/* {{devices}} names the program (IMAP ID) or EHLO name of each device;
 * hostile names reach the body without control or bidi characters, cut,
 * quoted, and never the headers. */
static void test_run_devices(void **state)
{
	char log[160], tpl[160], out[160], p[600];
	snprintf(log, sizeof(log), "%s/dev.log", dir);
	snprintf(tpl, sizeof(tpl), "%s/t3.txt", dir);
	snprintf(out, sizeof(out), "%s/devout", dir);
	mkdir(out, 0700);
	write_file(log,
		   "Nov 29 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=dave@example.com "
		   "client=192.0.2.7 tls=none verdict=audit mode=audit rule=p:2 "
		   "imap_id_name=scanner-x imap_id_version=1.0\n"
		   "Nov 29 10:00:02 mx tlsgate-policyd[1]: tlsgate: service=smtp user=dave@example.com "
		   "client=192.0.2.8 tls=none verdict=audit mode=audit rule=p:2 helo=pc17.lan\n"
		   "Nov 29 10:00:03 mx dovecot: auth: Info: tlsgate: service=imap user=dave@example.com "
		   "client=192.0.2.9 tls=none verdict=audit mode=audit rule=p:2 "
		   "imap_id_name=\"Subject: x\\x0d\\x0aBcc: evil@example.org\\x1b[2J\\xe2\\x80\\xae"
		   "gpj.exe AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n"
		   "Nov 29 10:00:03 mx dovecot: auth: Info: tlsgate: service=imap user=dave@example.com "
		   "client=192.0.2.9 tls=none verdict=audit mode=audit rule=p:2\n"
		   "Nov 29 10:00:04 mx dovecot: auth: Info: tlsgate: service=pop3 user=erin@example.com "
		   "client=192.0.2.10 tls=none verdict=audit mode=audit rule=p:2\n");
	write_file(tpl,
		   "Subject: TLS for {{account}}\n"
		   "\n"
		   "Clients: {{clients}}.\n"
		   "{{devices}}"
		   "{{#named}}\n"
		   "Names as the programs give them.\n"
		   "{{/named}}\n");
	const char *args[] = { "--out", out, "--from", "Admin <postmaster@example.com>",
			       "--template", tpl, "--at", "2026-11-29", log, NULL };
	assert_int_equal(run_notify(args), 0);
	snprintf(p, sizeof(p), "%s/dave@example.com.eml", out);
	char *m = read_file(p);
	assert_non_null(m);
	static const char *const want[] = {
		"\"scanner-x 1.0\"",
		"EHLO pc17.lan",
		"192.0.2.7",
		"Names as the programs give them.",
		/* each address once, though 192.0.2.9 has two devices */
		"Clients: 192.0.2.7, 192.0.2.8, 192.0.2.9.",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(m, want[i]) == NULL)
			fail_msg("missing '%s' in:\n%s", want[i], m);
	/* headers: only the ones notify writes */
	char *body = strstr(m, "\r\n\r\n");
	assert_non_null(body);
	*body = '\0';
	assert_null(strstr(m, "Bcc"));
	assert_null(strstr(m, "scanner"));
	*body = '\r';
	/* body: no control or bidi character, raw or quoted-printable */
	assert_null(strchr(m, 0x1b));
	assert_null(strstr(m, "=1B"));
	assert_null(strstr(m, "=E2=80=AE"));
	assert_null(strstr(m, "=0D=0A"));
	assert_null(strstr(m, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	/* an account without named devices: a "-" and no {{#named}} text */
	snprintf(p, sizeof(p), "%s/erin@example.com.eml", out);
	m = read_file(p);
	assert_non_null(m);
	assert_non_null(strstr(m, "192.0.2.10"));
	assert_null(strstr(m, "Names as the programs"));
	/* --dry-run names each address once too */
	snprintf(p, sizeof(p), "%s/dry.txt", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stdout);
	int saved = dup(1);
	dup2(fd, 1);
	const char *dry[] = { "--dry-run", "--at", "2026-11-29", log, NULL };
	int r = run_notify(dry);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(fd);
	assert_int_equal(r, 0);
	m = read_file(p);
	assert_non_null(m);
	if (strstr(m, "from 192.0.2.7 192.0.2.8 192.0.2.9, last") == NULL)
		fail_msg("dry run does not name each address once:\n%s", m);
	snprintf(p, sizeof(p), "rm -rf '%s'", out);
	assert_int_equal(system(p), 0);
}

/* A program the advice table knows, named in IMAP ID, gets the setting
 * that moves it to TLS under its line, in the template's language; an
 * unknown program and an EHLO name get none. */
static void test_run_device_advice(void **state)
{
	char log[160], tdir[160], tpl[200], out[160], p[600];
	snprintf(log, sizeof(log), "%s/adv.log", dir);
	snprintf(tdir, sizeof(tdir), "%s/advtpl", dir);
	snprintf(out, sizeof(out), "%s/advout", dir);
	mkdir(tdir, 0700);
	write_file(log,
		   "Nov 29 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=frank@example.com "
		   "client=192.0.2.7 tls=none verdict=audit mode=audit rule=p:2 "
		   "imap_id_name=Thunderbird imap_id_version=115.3\n"
		   "Nov 29 10:00:02 mx dovecot: auth: Info: tlsgate: service=imap user=gina@example.com "
		   "client=192.0.2.8 tls=none verdict=audit mode=audit rule=p:2 "
		   "imap_id_name=scanner-x imap_id_version=1.0\n"
		   "Nov 29 10:00:03 mx tlsgate-policyd[1]: tlsgate: service=smtp user=gina@example.com "
		   "client=192.0.2.9 tls=none verdict=audit mode=audit rule=p:2 helo=thunderbird\n");
	static const struct {
		const char *lang, *want, *unwanted;
	} rows[] = {
		{ "en", "-> Thunderbird: Account Settings > Server Settings", "Konten-Einstellungen" },
		{ "de", "-> Thunderbird: Konten-Einstellungen > Server-Einstellungen", "Account Settings" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(tpl, sizeof(tpl), "%s/notice.%s.txt", tdir, rows[i].lang);
		write_file(tpl, "Subject: TLS for {{account}}\n\n{{devices}}");
		mkdir(out, 0700);
		const char *args[] = { "--out", out, "--from", "Admin <postmaster@example.com>",
				       "--templates", tdir, "--lang", rows[i].lang,
				       "--at", "2026-11-29", log, NULL };
		assert_int_equal(run_notify(args), 0);
		snprintf(p, sizeof(p), "%s/frank@example.com.eml", out);
		char *m = read_file(p);
		assert_non_null(m);
		char *body = strstr(m, "\r\n\r\n");
		assert_non_null(body);
		if (strstr(body, rows[i].want) == NULL || strstr(body, rows[i].unwanted) != NULL)
			fail_msg("%s: want '%s' in:\n%s", rows[i].lang, rows[i].want, body);
		snprintf(p, sizeof(p), "%s/gina@example.com.eml", out);
		m = read_file(p);
		assert_non_null(m);
		if (strstr(m, "-> ") != NULL)
			fail_msg("%s: advice for an unknown program or an EHLO name:\n%s",
				 rows[i].lang, m);
		snprintf(p, sizeof(p), "rm -rf '%s'", out);
		assert_int_equal(system(p), 0);
	}
}

static void test_run_state_every_max(void **state)
{
	char p[600];
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml '%s'", path_out, path_state);
	assert_int_equal(system(p), 0);
	const char *args[] = { "--out", path_out, "--from", "postmaster@example.com",
			       "--template", path_tpl, "--state", path_state, "--every", "7d",
			       "--max", "1", path_log, NULL };
	assert_int_equal(run_notify(args), 0);
	assert_int_equal(count_eml(), 1);
	char *st = read_file(path_state);
	assert_non_null(strstr(st, "alice@example.com\t"));
	assert_null(strstr(st, "bob@"));
	/* second run: alice was told, bob is next */
	assert_int_equal(run_notify(args), 0);
	assert_int_equal(count_eml(), 2);
	st = read_file(path_state);
	assert_non_null(strstr(st, "bob@example.com\t"));
	/* third run: nobody left to tell */
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml", path_out);
	assert_int_equal(system(p), 0);
	assert_int_equal(run_notify(args), 0);
	assert_int_equal(count_eml(), 0);

	/* an old entry is due again */
	write_file(path_state, "# comment\nalice@example.com\t1000\nbob@example.com\t1000\n");
	const char *all[] = { "--out", path_out, "--from", "postmaster@example.com",
			      "--template", path_tpl, "--state", path_state, "--every", "1d",
			      path_log, NULL };
	assert_int_equal(run_notify(all), 0);
	assert_int_equal(count_eml(), 2);

	/* a damaged state file stops the run before anything is written */
	static const char *const damaged[] = {
		"alice@example.com 1000\n",
		"alice@example.com\tsoon\n",
		"\t1000\n",
		"alice@example.com\t1000",
	};
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		snprintf(p, sizeof(p), "rm -f '%s'/*.eml", path_out);
		assert_int_equal(system(p), 0);
		write_file(path_state, damaged[i]);
		if (run_notify(all) != 2 || count_eml() != 0)
			fail_msg("damaged state row %zu accepted", i);
		assert_string_equal(read_file(path_state), damaged[i]);
	}
}

static void test_bad_arguments_and_templates(void **state)
{
	static const char *const bad_templates[] = {
		"no subject\n\nbody\n",
		"Subject: x\nX-Other: y\n\nbody\n",
		"Subject: x\n\n{{nosuch}}\n",
		"Subject: x\n\n{{#imap}} never closed\n",
		"Subject: x\n\n{{/imap}}\n",
		"Subject: x\n\n{{#imap}}{{#pop3}}{{/pop3}}{{/imap}}\n",
		"Subject: {{account\n\nbody\n",
		"Subject: x\n\nnot UTF-8 \xff\n",
	};
	for (size_t i = 0; i < sizeof(bad_templates) / sizeof(bad_templates[0]); i++) {
		write_file(path_tpl, bad_templates[i]);
		const char *args[] = { "--out", path_out, "--from", "postmaster@example.com",
				       "--template", path_tpl, path_log, NULL };
		if (run_notify(args) != 2)
			fail_msg("bad template row %zu accepted", i);
	}
	static const char *const bad_args[][8] = {
		{ path_log, NULL },					/* no mode */
		{ "--dry-run", "--send", path_log, NULL },		/* two modes */
		{ "--send", path_log, NULL },				/* no --from */
		{ "--dry-run", "--every", "7d", path_log, NULL },	/* no --state */
		{ "--dry-run", "--every", "7x", NULL },
		{ "--dry-run", "--max", "-1", NULL },
		{ "--send", "--from", "a@b\r\nBcc: c@d", NULL },
		{ "--dry-run", "--lang", "../etc", NULL },
	};
	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++)
		if (run_notify(bad_args[i]) != 2)
			fail_msg("bad arguments row %zu accepted", i);
}

static void test_send(void **state)
{
	char cmd[300];
	write_file(path_tpl, "Subject: TLS for {{account}}\n\nHello {{account}}\n");
	snprintf(cmd, sizeof(cmd), "%s %s", path_mailer, path_mailed);
	unlink(path_state);
	unlink(path_mailed);
	const char *args[] = { "--send", "--sendmail", cmd, "--from", "postmaster@example.com",
			       "--template", path_tpl, "--state", path_state, path_log, NULL };
	/* alice goes through, bob's sendmail fails: exit 1, only alice recorded */
	assert_int_equal(run_notify(args), 1);
	char *mailed = read_file(path_mailed);
	assert_non_null(mailed);
	assert_non_null(strstr(mailed, "To: alice@example.com\n"));
	assert_null(strstr(mailed, "\r\n"));	/* sendmail gets local line ends */
	char *st = read_file(path_state);
	assert_non_null(strstr(st, "alice@example.com\t"));
	assert_null(strstr(st, "bob@"));
	const char *missing[] = { "--send", "--sendmail", "/nonexistent/sendmail -t", "--from",
				  "postmaster@example.com", "--template", path_tpl, path_log, NULL };
	assert_int_equal(run_notify(missing), 1);
}

/* Forged events must not turn notices into phishing: a tag planted in a
 * Message-ID or a login name is no event, free text is no client address,
 * and an account of a domain the policy does not name (a local user can
 * ask the policy server about any name) gets no notice unless
 * tlsgate.conf's notify_domains lists the domain. */
static void test_outside_domains(void **state)
{
	char log[160], conf[160], p[600];
	snprintf(log, sizeof(log), "%s/forged.log", dir);
	snprintf(conf, sizeof(conf), "%s/tlsgate.conf", dir);
	write_file(log,
		   "Nov 29 10:00:01 mx postfix/cleanup[7]: 4XyZ1: message-id=<tlsgate: service=smtp "
		   "user=victim@gmail.example client=192.0.2.66 tls=none verdict=reject mode=require "
		   "rule=r mech=PLAIN>\n"
		   "Nov 29 10:00:02 mx dovecot: auth: Info: passwd-file(tlsgate: service=imap "
		   "user=victim2@gmail.example client=192.0.2.66 tls=none verdict=audit mode=audit "
		   "rule=r,192.0.2.66): unknown user\n"
		   "Nov 29 10:00:03 mx tlsgate-policyd[5]: tlsgate: service=smtp user=victim3@example.com "
		   "client=\"Your mailbox is locked. Re-login: https://evil.example/\" tls=none "
		   "verdict=audit mode=audit rule=r mech=PLAIN\n"
		   "Nov 29 10:00:04 mx tlsgate-policyd[5]: tlsgate: service=smtp user=outsider@gmail.example "
		   "client=192.0.2.67 tls=none verdict=audit mode=audit rule=r mech=PLAIN\n"
		   "Nov 29 10:00:05 mx tlsgate-policyd[5]: tlsgate: service=smtp user=alice@example.com "
		   "client=192.0.2.7 tls=none verdict=audit mode=audit rule=r mech=PLAIN\n");
	write_file(path_tpl, "Subject: TLS for {{account}}\n\nSeen from {{clients}}\n");
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml", path_out);
	assert_int_equal(system(p), 0);
	const char *args[] = { "--out", path_out, "--from", "postmaster@example.com",
			       "--template", path_tpl, "--at", "2026-11-29", log, NULL };
	assert_int_equal(run_notify(args), 0);
	/* only alice: the policy ("audit *", "require @example.com") names
	 * example.com, not gmail.example */
	assert_int_equal(count_eml(), 1);
	snprintf(p, sizeof(p), "%s/alice@example.com.eml", path_out);
	assert_non_null(read_file(p));
	snprintf(p, sizeof(p), "%s/outsider@gmail.example.eml", path_out);
	assert_null(read_file(p));
	snprintf(p, sizeof(p), "%s/victim3@example.com.eml", path_out);
	assert_null(read_file(p));

	/* listed in notify_domains: the plausible outside account is told */
	snprintf(p, sizeof(p), "policy = %s\nnotify_domains = @Gmail.Example other.example\n",
		 path_policy);
	write_file(conf, p);
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml", path_out);
	assert_int_equal(system(p), 0);
	struct cli_context ctx = { .config_path = conf, .progname = "tlsgate" };
	char *argv[] = { "notify", "--out", path_out, "--from", "postmaster@example.com",
			 "--template", path_tpl, "--at", "2026-11-29", log, NULL };
	assert_int_equal(cmd_notify(10, argv, &ctx), 0);
	assert_int_equal(count_eml(), 2);
	snprintf(p, sizeof(p), "%s/outsider@gmail.example.eml", path_out);
	char *m = read_file(p);
	assert_non_null(m);
	assert_null(strstr(m, "evil"));
	snprintf(p, sizeof(p), "%s/victim@gmail.example.eml", path_out);
	assert_null(read_file(p));
	snprintf(p, sizeof(p), "%s/victim2@gmail.example.eml", path_out);
	assert_null(read_file(p));
	unlink(log);
	unlink(conf);
}

/* Whoever can write the output directory plants symlinks at the
 * temporary names the earlier code used (NAME.tmp.PID for --out and
 * --state, FILE.tmp for report --html): the file they point to must stay
 * as it was, and the outputs are regular files. */
static void test_planted_symlinks(void **state)
{
	char victim[160], link[700], p[700], html[160];
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	write_file(victim, "precious\n");
	snprintf(p, sizeof(p), "rm -f '%s'/*.eml '%s'", path_out, path_state);
	assert_int_equal(system(p), 0);
	long pid = (long)getpid();
	static const char *const accounts[] = { "alice@example.com", "bob@example.com" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(link, sizeof(link), "%s/%s.eml.tmp.%ld", path_out, accounts[i], pid);
		assert_int_equal(symlink(victim, link), 0);
	}
	snprintf(link, sizeof(link), "%s.tmp.%ld", path_state, pid);
	assert_int_equal(symlink(victim, link), 0);
	snprintf(html, sizeof(html), "%s/r.html", dir);
	snprintf(link, sizeof(link), "%s.tmp", html);
	assert_int_equal(symlink(victim, link), 0);

	write_file(path_tpl, "Subject: TLS for {{account}}\n\nHello {{account}}\n");
	const char *args[] = { "--out", path_out, "--from", "postmaster@example.com",
			       "--template", path_tpl, "--state", path_state, path_log, NULL };
	assert_int_equal(run_notify(args), 0);
	struct cli_context ctx = { .policy_path = path_policy, .progname = "tlsgate" };
	char *argv_html[] = { "report", "--html", html, path_log, NULL };
	assert_int_equal(cmd_report(4, argv_html, &ctx), 0);

	assert_string_equal(read_file(victim), "precious\n");
	struct stat st;
	snprintf(p, sizeof(p), "%s/alice@example.com.eml", path_out);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(lstat(path_state, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(lstat(html, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_non_null(strstr(read_file(html), "<!DOCTYPE html>"));

	/* a symlink at the target's own name is replaced, not followed */
	unlink(html);
	assert_int_equal(symlink(victim, html), 0);
	assert_int_equal(cmd_report(4, argv_html, &ctx), 0);
	assert_string_equal(read_file(victim), "precious\n");
	assert_int_equal(lstat(html, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* nothing of ours left behind besides the planted links */
	snprintf(p, sizeof(p), "ls -A '%s' | grep -q '^[.]'", path_out);
	assert_int_not_equal(system(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp_roundtrip),
		cmocka_unit_test(test_qp_line_length),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_safe_address),
		cmocka_unit_test(test_run_out),
		cmocka_unit_test(test_run_state_every_max),
		cmocka_unit_test(test_bad_arguments_and_templates),
		cmocka_unit_test(test_send),
		cmocka_unit_test(test_run_out_already_enforced),
		cmocka_unit_test(test_outside_domains),
		cmocka_unit_test(test_planted_symlinks),
		cmocka_unit_test(test_run_devices),
		cmocka_unit_test(test_run_device_advice),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

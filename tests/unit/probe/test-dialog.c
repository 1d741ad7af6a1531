/*
 * test-cli-probe-dialog - the probe's protocol dialogues (probe_dialog):
 * IMAP greeting/CAPABILITY, POP3 CAPA, SMTP EHLO, ManageSieve greeting
 * parsing, STARTTLS replies, and garbage from the server. Each row is a
 * server transcript fed line by line, with the commands the dialogue must
 * send and the outcome it must reach.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "probe/dialog.h"

struct dialog_case {
	const char *label;
	enum probe_proto proto;
	bool implicit;
	const char *lines[24];	/* server lines, NULL-terminated */
	enum probe_step want;
	int want_starttls;	/* -1: don't care */
	int want_plain_auth;	/* -1 unknown, 0, 1; 9: don't care */
	const char *want_sent;	/* all commands sent, concatenated */
	const char *want_why;	/* substring of d.why on PD_FAIL */
	const char *want_mechs;	/* NULL: don't care */
};

#define DOVECOT_IMAP_PLAIN "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID " \
	"ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] Dovecot ready."
#define DOVECOT_IMAP_NOPLAIN "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID " \
	"ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready."

static const struct dialog_case cases[] = {
	/* ---- IMAP */
	{ "imap: caps in greeting, plaintext login allowed", PROBE_IMAP, false,
	  { DOVECOT_IMAP_PLAIN, "P2 OK Begin TLS negotiation now.", NULL },
	  PD_TLS, 1, 1, "P2 STARTTLS\r\n", NULL, "PLAIN LOGIN" },
	{ "imap: LOGINDISABLED", PROBE_IMAP, false,
	  { DOVECOT_IMAP_NOPLAIN, "P2 OK go", NULL },
	  PD_TLS, 1, 0, "P2 STARTTLS\r\n", NULL, "" },
	{ "imap: no caps in greeting: asks CAPABILITY", PROBE_IMAP, false,
	  { "* OK hello", "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED",
	    "P1 OK done", "* BYE ignored untagged", "p2 ok fine", NULL },
	  PD_TLS, 1, 0, "P1 CAPABILITY\r\nP2 STARTTLS\r\n", NULL, NULL },
	{ "imap: no STARTTLS offered", PROBE_IMAP, false,
	  { "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plain only", NULL },
	  PD_DONE, 0, 1, "", NULL, "PLAIN" },
	{ "imap: STARTTLS refused", PROBE_IMAP, false,
	  { DOVECOT_IMAP_NOPLAIN, "P2 NO [UNAVAILABLE] not now", NULL },
	  PD_FAIL, 1, 0, "P2 STARTTLS\r\n", "STARTTLS refused", NULL },
	{ "imap: BYE greeting", PROBE_IMAP, false,
	  { "* BYE Too many connections", NULL },
	  PD_FAIL, 0, -1, "", "refused the session", NULL },
	{ "imap: PREAUTH greeting", PROBE_IMAP, false,
	  { "* PREAUTH welcome", NULL },
	  PD_FAIL, 0, -1, "", "refused the session", NULL },
	{ "imap: an SMTP server", PROBE_IMAP, false,
	  { "220 mail.test ESMTP", NULL },
	  PD_FAIL, 0, -1, "", "not an IMAP greeting", NULL },
	{ "imap: unterminated capability code", PROBE_IMAP, false,
	  { "* OK [CAPABILITY IMAP4rev1 STARTTLS", NULL },
	  PD_FAIL, 0, -1, "", "unterminated", NULL },
	{ "imap: CAPABILITY answered NO", PROBE_IMAP, false,
	  { "* OK hi", "P1 NO go away", NULL },
	  PD_FAIL, 0, -1, "P1 CAPABILITY\r\n", "CAPABILITY failed", NULL },
	{ "imap: CAPABILITY OK without a list", PROBE_IMAP, false,
	  { "* OK hi", "P1 OK", NULL },
	  PD_FAIL, 0, -1, "P1 CAPABILITY\r\n", "no capability list", NULL },
	{ "imap: garbage instead of tagged reply", PROBE_IMAP, false,
	  { "* OK hi", "\x01\x02\xff garbage", NULL },
	  PD_FAIL, 0, -1, "P1 CAPABILITY\r\n", "unexpected IMAP reply", NULL },
	{ "imap: wrong tag on STARTTLS", PROBE_IMAP, false,
	  { DOVECOT_IMAP_NOPLAIN, "P1 OK stale", NULL },
	  PD_FAIL, 1, 0, "P2 STARTTLS\r\n", "unexpected IMAP reply to STARTTLS", NULL },
	{ "imap: implicit TLS greeting", PROBE_IMAP, true,
	  { "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", NULL },
	  PD_DONE, -1, 9, "", NULL, NULL },
	{ "imap: empty line", PROBE_IMAP, false,
	  { "", NULL }, PD_FAIL, 0, -1, "", "not an IMAP greeting", NULL },
	{ "imap: lower-case keywords", PROBE_IMAP, false,
	  { "* ok [capability imap4rev1 starttls logindisabled] hi", "p2 OK", NULL },
	  PD_TLS, 1, 0, "P2 STARTTLS\r\n", NULL, NULL },

	/* ---- POP3 */
	{ "pop3: CAPA with USER and STLS", PROBE_POP3, false,
	  { "+OK Dovecot ready.", "+OK", "CAPA", "TOP", "UIDL", "RESP-CODES",
	    "PIPELINING", "AUTH-RESP-CODE", "STLS", "USER", "SASL PLAIN LOGIN",
	    ".", "+OK Begin TLS negotiation now.", NULL },
	  PD_TLS, 1, 1, "CAPA\r\nSTLS\r\n", NULL, "PLAIN LOGIN" },
	{ "pop3: no USER, no plaintext SASL", PROBE_POP3, false,
	  { "+OK hi", "+OK list follows", "STLS", "SASL", "TOP", ".", "+OK", NULL },
	  PD_TLS, 1, 0, "CAPA\r\nSTLS\r\n", NULL, "" },
	{ "pop3: SASL CRAM-MD5 only", PROBE_POP3, false,
	  { "+OK hi", "+OK", "STLS", "SASL CRAM-MD5", ".", "+OK", NULL },
	  PD_TLS, 1, 0, "CAPA\r\nSTLS\r\n", NULL, "CRAM-MD5" },
	{ "pop3: no STLS", PROBE_POP3, false,
	  { "+OK hi", "+OK", "USER", ".", NULL },
	  PD_DONE, 0, 1, "CAPA\r\n", NULL, NULL },
	{ "pop3: dot-stuffed capability", PROBE_POP3, false,
	  { "+OK hi", "+OK", "..odd", "STLS", ".", "+OK", NULL },
	  PD_TLS, 1, 0, "CAPA\r\nSTLS\r\n", NULL, NULL },
	{ "pop3: no CAPA, STLS works", PROBE_POP3, false,
	  { "+OK hi", "-ERR unknown command", "+OK begin TLS", NULL },
	  PD_TLS, 1, -1, "CAPA\r\nSTLS\r\n", NULL, NULL },
	{ "pop3: no CAPA, no STLS", PROBE_POP3, false,
	  { "+OK hi", "-ERR unknown command", "-ERR unknown command", NULL },
	  PD_DONE, 0, -1, "CAPA\r\nSTLS\r\n", NULL, NULL },
	{ "pop3: STLS refused after CAPA listed it", PROBE_POP3, false,
	  { "+OK hi", "+OK", "STLS", ".", "-ERR TLS unavailable", NULL },
	  PD_FAIL, 1, 0, "CAPA\r\nSTLS\r\n", "STLS refused", NULL },
	{ "pop3: -ERR greeting", PROBE_POP3, false,
	  { "-ERR go away", NULL }, PD_FAIL, 0, -1, "", "refused the session", NULL },
	{ "pop3: an IMAP server", PROBE_POP3, false,
	  { "* OK IMAP ready", NULL }, PD_FAIL, 0, -1, "", "not a POP3 greeting", NULL },
	{ "pop3: garbage CAPA status", PROBE_POP3, false,
	  { "+OK hi", "what?", NULL },
	  PD_FAIL, 0, -1, "CAPA\r\n", "unexpected POP3 reply to CAPA", NULL },
	{ "pop3: +OKAY is not +OK", PROBE_POP3, false,
	  { "+OKAY", NULL }, PD_FAIL, 0, -1, "", "not a POP3 greeting", NULL },
	{ "pop3: implicit greeting", PROBE_POP3, true,
	  { "+OK ready", NULL }, PD_DONE, -1, 9, "", NULL, NULL },

	/* ---- SMTP */
	{ "smtp: Postfix submission with AUTH before STARTTLS", PROBE_SMTP, false,
	  { "220 mail.test ESMTP", "250-mail.test", "250-PIPELINING",
	    "250-SIZE 10240000", "250-STARTTLS", "250-AUTH PLAIN LOGIN",
	    "250-ENHANCEDSTATUSCODES", "250 CHUNKING", "220 2.0.0 Ready to start TLS",
	    NULL },
	  PD_TLS, 1, 1, "EHLO [192.0.2.9]\r\nSTARTTLS\r\n", NULL, "PLAIN LOGIN" },
	{ "smtp: MX without AUTH", PROBE_SMTP, false,
	  { "220-mail.test ESMTP", "220 second greeting line", "250-mail.test",
	    "250-STARTTLS", "250 8BITMIME", "220 go", NULL },
	  PD_TLS, 1, 0, "EHLO [192.0.2.9]\r\nSTARTTLS\r\n", NULL, "" },
	{ "smtp: old AUTH= form", PROBE_SMTP, false,
	  { "220 hi", "250-x", "250-AUTH=LOGIN", "250 STARTTLS", "220 go", NULL },
	  PD_TLS, 1, 1, "EHLO [192.0.2.9]\r\nSTARTTLS\r\n", NULL, "LOGIN" },
	{ "smtp: AUTH without mechanisms (Dovecot, plaintext auth disabled)",
	  PROBE_SMTP, false,
	  { "220 hi", "250-x", "250-AUTH", "250 STARTTLS", "220 go", NULL },
	  PD_TLS, 1, 0, "EHLO [192.0.2.9]\r\nSTARTTLS\r\n", NULL, "" },
	{ "smtp: EHLO with a bare 250", PROBE_SMTP, false,
	  { "220 hi", "250", NULL },
	  PD_DONE, 0, 0, "EHLO [192.0.2.9]\r\n", NULL, NULL },
	{ "smtp: no STARTTLS", PROBE_SMTP, false,
	  { "220 hi", "250-x", "250 AUTH PLAIN", NULL },
	  PD_DONE, 0, 1, "EHLO [192.0.2.9]\r\n", NULL, NULL },
	{ "smtp: 554 greeting", PROBE_SMTP, false,
	  { "554 5.7.1 no service", NULL },
	  PD_FAIL, 0, -1, "", "refused the session", NULL },
	{ "smtp: EHLO refused", PROBE_SMTP, false,
	  { "220 hi", "502 5.5.2 Error: command not recognized", NULL },
	  PD_FAIL, 0, -1, "EHLO [192.0.2.9]\r\n", "EHLO refused", NULL },
	{ "smtp: STARTTLS refused", PROBE_SMTP, false,
	  { "220 hi", "250-x", "250 STARTTLS", "454 4.7.0 TLS not available", NULL },
	  PD_FAIL, 1, 0, "EHLO [192.0.2.9]\r\nSTARTTLS\r\n", "STARTTLS refused", NULL },
	{ "smtp: code changes mid-reply", PROBE_SMTP, false,
	  { "220 hi", "250-x", "251 STARTTLS", NULL },
	  PD_FAIL, 0, -1, "EHLO [192.0.2.9]\r\n", "changes its code", NULL },
	{ "smtp: an IMAP server", PROBE_SMTP, false,
	  { "* OK IMAP4rev1", NULL }, PD_FAIL, 0, -1, "", "not an SMTP greeting", NULL },
	{ "smtp: bad separator", PROBE_SMTP, false,
	  { "220xhi", NULL }, PD_FAIL, 0, -1, "", "not an SMTP greeting", NULL },
	{ "smtp: code 199", PROBE_SMTP, false,
	  { "199 hi", NULL }, PD_FAIL, 0, -1, "", "not an SMTP greeting", NULL },
	{ "smtp: short line", PROBE_SMTP, false,
	  { "22", NULL }, PD_FAIL, 0, -1, "", "not an SMTP greeting", NULL },
	{ "smtp: garbage in EHLO reply", PROBE_SMTP, false,
	  { "220 hi", "250-x", "\x80\x81 binary", NULL },
	  PD_FAIL, 0, -1, "EHLO [192.0.2.9]\r\n", "not an SMTP reply", NULL },
	{ "smtp: implicit TLS greeting", PROBE_SMTP, true,
	  { "220 mail.test ESMTP", NULL }, PD_DONE, -1, 9, "", NULL, NULL },

	/* ---- ManageSieve */
	{ "sieve: Pigeonhole greeting with PLAIN", PROBE_SIEVE, false,
	  { "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"",
	    "\"SIEVE\" \"fileinto reject envelope\"", "\"NOTIFY\" \"mailto\"",
	    "\"SASL\" \"PLAIN LOGIN\"", "\"STARTTLS\"", "\"VERSION\" \"1.0\"",
	    "OK \"Dovecot ready.\"", "OK \"Begin TLS negotiation now.\"", NULL },
	  PD_TLS, 1, 1, "STARTTLS\r\n", NULL, "PLAIN LOGIN" },
	{ "sieve: empty SASL before TLS", PROBE_SIEVE, false,
	  { "\"IMPLEMENTATION\" \"x\"", "\"SASL\" \"\"", "\"STARTTLS\"", "OK",
	    "OK", NULL },
	  PD_TLS, 1, 0, "STARTTLS\r\n", NULL, "" },
	{ "sieve: escaped quote in value", PROBE_SIEVE, false,
	  { "\"IMPLEMENTATION\" \"a \\\"quoted\\\" name\"", "\"STARTTLS\"", "ok",
	    "OK", NULL },
	  PD_TLS, 1, 0, "STARTTLS\r\n", NULL, NULL },
	{ "sieve: no STARTTLS", PROBE_SIEVE, false,
	  { "\"IMPLEMENTATION\" \"x\"", "\"SASL\" \"PLAIN\"", "OK", NULL },
	  PD_DONE, 0, 1, "", NULL, "PLAIN" },
	{ "sieve: STARTTLS refused", PROBE_SIEVE, false,
	  { "\"STARTTLS\"", "OK", "NO \"no TLS today\"", NULL },
	  PD_FAIL, 1, 0, "STARTTLS\r\n", "STARTTLS refused", NULL },
	{ "sieve: BYE greeting", PROBE_SIEVE, false,
	  { "BYE \"too busy\"", NULL },
	  PD_FAIL, 0, -1, "", "refused the session", NULL },
	{ "sieve: OK without capabilities", PROBE_SIEVE, false,
	  { "OK \"hi\"", NULL }, PD_FAIL, 0, -1, "", "without capabilities", NULL },
	{ "sieve: literal in capability", PROBE_SIEVE, false,
	  { "\"IMPLEMENTATION\" {5}", NULL },
	  PD_FAIL, 0, -1, "", "literal", NULL },
	{ "sieve: unterminated string", PROBE_SIEVE, false,
	  { "\"SASL\" \"PLAIN", NULL }, PD_FAIL, 0, -1, "", "bad ManageSieve", NULL },
	{ "sieve: trailing junk", PROBE_SIEVE, false,
	  { "\"SASL\" \"PLAIN\" x", NULL }, PD_FAIL, 0, -1, "", "bad ManageSieve", NULL },
	{ "sieve: an IMAP server", PROBE_SIEVE, false,
	  { "* OK IMAP", NULL }, PD_FAIL, 0, -1, "", "not a ManageSieve greeting", NULL },
	{ "sieve: garbage after capabilities", PROBE_SIEVE, false,
	  { "\"STARTTLS\"", "garbage", NULL },
	  PD_FAIL, -1, -1, "", "bad ManageSieve capability line", NULL },
};

static void run_case(const struct dialog_case *c)
{
	struct probe_dialog d;
	char sent[512] = "";
	enum probe_step step = PD_READ;
	size_t i = 0;

	probe_dialog_init(&d, c->proto, c->implicit, "[192.0.2.9]");
	for (; c->lines[i] != NULL; i++) {
		step = probe_dialog_feed(&d, c->lines[i], strlen(c->lines[i]));
		if (step == PD_SEND)
			strncat(sent, d.out, sizeof(sent) - strlen(sent) - 1);
		if (step != PD_READ && step != PD_SEND)
			break;
	}
	if (step != c->want || c->lines[i] == NULL || c->lines[i + 1] != NULL ||
	    strcmp(sent, c->want_sent) != 0)
		fail_msg("%s: step %d (want %d) after line %zu, sent \"%s\" (want "
			 "\"%s\"), why \"%s\"", c->label, step, c->want, i, sent,
			 c->want_sent, d.why);
	if (c->want == PD_FAIL && strstr(d.why, c->want_why) == NULL)
		fail_msg("%s: why \"%s\" lacks \"%s\"", c->label, d.why, c->want_why);
	if (c->want_starttls >= 0 && d.caps.starttls != (c->want_starttls == 1))
		fail_msg("%s: starttls %d", c->label, d.caps.starttls);
	if (c->want_plain_auth != 9 &&
	    probe_caps_plaintext_auth(&d) != c->want_plain_auth)
		fail_msg("%s: plaintext auth %d, want %d", c->label,
			 probe_caps_plaintext_auth(&d), c->want_plain_auth);
	if (c->want_mechs != NULL && strcmp(d.caps.mechs, c->want_mechs) != 0)
		fail_msg("%s: mechs \"%s\", want \"%s\"", c->label, d.caps.mechs,
			 c->want_mechs);
	/* the peer text quoted in reasons is printable ASCII only */
	for (const char *p = d.why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			fail_msg("%s: unprintable byte in why", c->label);
}

static void test_transcripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* A NUL inside a line (the reader allows it) is refused clearly. */
static void test_nul_byte(void **state)
{
	static const enum probe_proto protos[] = { PROBE_IMAP, PROBE_POP3,
						   PROBE_SMTP, PROBE_SIEVE };
	(void)state;
	for (size_t i = 0; i < 4; i++) {
		struct probe_dialog d;
		probe_dialog_init(&d, protos[i], false, "x");
		assert_int_equal(probe_dialog_feed(&d, "+OK\0x", 5), PD_FAIL);
		assert_non_null(strstr(d.why, "NUL byte"));
	}
}

/* Feeding after the end is an error, not undefined behaviour. */
static void test_feed_after_end(void **state)
{
	struct probe_dialog d;
	(void)state;
	probe_dialog_init(&d, PROBE_POP3, true, "x");
	assert_int_equal(probe_dialog_feed(&d, "+OK", 3), PD_DONE);
	assert_int_equal(probe_dialog_feed(&d, "+OK", 3), PD_FAIL);
	assert_non_null(strstr(d.why, "more than expected"));
}

/* A multi-line reply may not go on for ever. */
static void test_reply_line_limit(void **state)
{
	static const enum probe_proto protos[] = { PROBE_IMAP, PROBE_POP3,
						   PROBE_SMTP, PROBE_SIEVE };
	static const char *const first[] = { "* OK hi", "+OK hi", "220 hi", NULL };
	static const char *const filler[] = { "* NOISE", "X-CAP", "250-X", "\"X\"" };
	(void)state;
	for (size_t p = 0; p < 4; p++) {
		struct probe_dialog d;
		enum probe_step step = PD_READ;
		probe_dialog_init(&d, protos[p], false, "x");
		if (first[p] != NULL)
			step = probe_dialog_feed(&d, first[p], strlen(first[p]));
		if (protos[p] == PROBE_POP3)
			step = probe_dialog_feed(&d, "+OK", 3);
		if (protos[p] == PROBE_SMTP)
			step = probe_dialog_feed(&d, "250-x", 5);
		int n = 0;
		while ((step == PD_READ || step == PD_SEND) && n < 1000) {
			step = probe_dialog_feed(&d, filler[p], strlen(filler[p]));
			n++;
		}
		assert_int_equal(step, PD_FAIL);
		assert_true(n <= PROBE_DIALOG_MAX_LINES + 1);
		assert_non_null(strstr(d.why, "longer than"));
	}
}

/* Random bytes never crash a dialogue; failures always carry a reason
 * in printable ASCII. */
static void test_random_garbage(void **state)
{
	(void)state;
	srand(8);
	for (int round = 0; round < 4000; round++) {
		struct probe_dialog d;
		enum probe_step step = PD_READ;
		probe_dialog_init(&d, (enum probe_proto)(round % 4), round % 7 == 0, "x");
		for (int n = 0; n < 20 && (step == PD_READ || step == PD_SEND); n++) {
			char line[64];
			size_t len = (size_t)(rand() % (int)sizeof(line));
			for (size_t k = 0; k < len; k++) {
				int r = rand() % 10;
				line[k] = r < 3 ? "+OK* \"250-STARTTLS"[rand() % 18] :
					(char)(rand() % 256);
			}
			step = probe_dialog_feed(&d, line, len);
		}
		assert_true(step >= PD_READ && step <= PD_FAIL);
		if (step == PD_FAIL) {
			assert_true(d.why[0] != '\0');
			for (const char *p = d.why; *p; p++)
				assert_true((unsigned char)*p >= 0x20 &&
					    (unsigned char)*p <= 0x7e);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_feed_after_end),
		cmocka_unit_test(test_reply_line_limit),
		cmocka_unit_test(test_random_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

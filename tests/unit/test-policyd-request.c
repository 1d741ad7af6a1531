/*
 * test-policyd-request - the policy request reader with good and hostile
 * input: one row per case, each fed whole, byte by byte and in odd-sized
 * chunks the way a connection's buffer would (leftover bytes kept and fed
 * again), so that the outcome never depends on how the bytes arrive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

#define MAX_SEEN 8

/* What a stream of bytes came to. */
struct outcome {
	int requests;				/* complete ones */
	char user[MAX_SEEN][PD_MAX_LINE + 1];	/* sasl_username of each */
	char client[MAX_SEEN][PD_MAX_LINE + 1];
	char tls[MAX_SEEN][PD_MAX_LINE + 1];
	int present_tls[MAX_SEEN];
	int error;				/* -1 seen */
	char why[256];
	int mid_request;			/* at EOF: bytes of an unfinished request */
};

/* Feeds `len` bytes `chunk` at a time through a buffer like the server's. */
static void run(const char *data, size_t len, size_t chunk, struct outcome *o)
{
	static char buf[4 * 1024 * 1024];
	static struct pd_reader reader;
	size_t have = 0, pos = 0;

	memset(o, 0, sizeof(*o));
	pd_reader_init(&reader);
	while (pos < len && !o->error) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		memcpy(buf + have, data + pos, n);
		have += n;
		pos += n;
		for (;;) {
			size_t used;
			int r = pd_reader_feed(&reader, buf, have, &used, o->why, sizeof(o->why));
			memmove(buf, buf + used, have - used);
			have -= used;
			if (r < 0) {
				o->error = 1;
				break;
			}
			if (r == 0)
				break;
			if (o->requests < MAX_SEEN) {
				const struct pd_request *q = &reader.req;
				snprintf(o->user[o->requests], sizeof(o->user[0]), "%s",
					 q->value[PD_ATTR_SASL_USERNAME]);
				snprintf(o->client[o->requests], sizeof(o->client[0]), "%s",
					 q->value[PD_ATTR_CLIENT_ADDRESS]);
				snprintf(o->tls[o->requests], sizeof(o->tls[0]), "%s",
					 q->value[PD_ATTR_ENCRYPTION_PROTOCOL]);
				o->present_tls[o->requests] = q->present[PD_ATTR_ENCRYPTION_PROTOCOL];
			}
			o->requests++;
		}
	}
	if (!o->error)
		o->mid_request = (int)(have + reader.req.bytes);
}

static const char postfix_request[] =
	"request=smtpd_access_policy\n"
	"protocol_state=RCPT\n"
	"protocol_name=ESMTP\n"
	"client_address=192.0.2.7\n"
	"client_name=unknown\n"
	"client_port=40000\n"
	"reverse_client_name=unknown\n"
	"server_address=127.0.0.1\n"
	"server_port=587\n"
	"helo_name=laptop\n"
	"sender=alice@example.com\n"
	"recipient=bob@example.net\n"
	"recipient_count=0\n"
	"queue_id=\n"
	"instance=1a2b.6569a3f1.1c2d3.0\n"
	"size=0\n"
	"etrn_domain=\n"
	"stress=\n"
	"sasl_method=PLAIN\n"
	"sasl_username=alice@example.com\n"
	"sasl_sender=\n"
	"ccert_subject=\n"
	"ccert_issuer=\n"
	"ccert_fingerprint=\n"
	"ccert_pubkey_fingerprint=\n"
	"encryption_protocol=\n"
	"encryption_cipher=\n"
	"encryption_keysize=0\n"
	"policy_context=\n"
	"\n";

static const struct row {
	const char *name;
	const char *data;	/* NULL: built by the test (see make_input) */
	int requests;		/* complete requests */
	const char *user0, *client0, *tls0;
	const char *user1;	/* second request, NULL if not checked */
	const char *error;	/* substring of why, NULL: no error */
	int mid_request;	/* unfinished request bytes at EOF */
} rows[] = {
	{ "postfix 3.7 request", postfix_request, 1, "alice@example.com", "192.0.2.7", "", NULL, NULL, 0 },
	{ "TLS request", "request=smtpd_access_policy\nsasl_username=a@b\nencryption_protocol=TLSv1.3\n"
	  "encryption_cipher=TLS_AES_256_GCM_SHA384\n\n", 1, "a@b", "", "TLSv1.3", NULL, NULL, 0 },
	{ "IPv6 client", "request=smtpd_access_policy\nclient_address=2001:db8::7\n\n",
	  1, "", "2001:db8::7", "", NULL, NULL, 0 },
	{ "unknown client", "request=smtpd_access_policy\nclient_address=unknown\n\n",
	  1, "", "unknown", "", NULL, NULL, 0 },
	{ "pipelined", "request=smtpd_access_policy\nsasl_username=one\n\n"
	  "request=smtpd_access_policy\nsasl_username=two\n\n", 2, "one", "", "", "two", NULL, 0 },
	{ "attribute order free, unknown ignored",
	  "x_future=1\nsasl_username=u\nrequest=smtpd_access_policy\ntls_sni=mx\n\n",
	  1, "u", "", "", NULL, NULL, 0 },
	{ "duplicate: last wins", "request=smtpd_access_policy\nsasl_username=first\nsasl_username=last\n\n",
	  1, "last", "", "", NULL, NULL, 0 },
	{ "value with '='", "request=smtpd_access_policy\nsasl_username=a=b\n\n",
	  1, "a=b", "", "", NULL, NULL, 0 },
	{ "CRLF line ends", "request=smtpd_access_policy\r\nsasl_username=crlf\r\n\r\n",
	  1, "crlf", "", "", NULL, NULL, 0 },
	{ "no final empty line", "request=smtpd_access_policy\nsasl_username=x\n",
	  0, NULL, NULL, NULL, NULL, NULL, 44 },
	{ "EOF mid-line", "request=smtpd_access_policy\nsasl_user",
	  0, NULL, NULL, NULL, NULL, NULL, 37 },
	{ "EOF after one of two", "request=smtpd_access_policy\nsasl_username=one\n\nrequest=smtp",
	  1, "one", "", "", NULL, NULL, 12 },
	{ "line without =", "request=smtpd_access_policy\nhello world\n\n",
	  0, NULL, NULL, NULL, NULL, "line without '='", 0 },
	{ "empty name", "=value\n\n", 0, NULL, NULL, NULL, NULL, "bad attribute name", 0 },
	{ "bad name", "sasl username=x\n\n", 0, NULL, NULL, NULL, NULL, "bad attribute name", 0 },
	{ "empty request", "\n", 0, NULL, NULL, NULL, NULL, "empty request", 0 },
	{ "error after a good request", "request=smtpd_access_policy\n\ngarbage\n",
	  1, "", "", "", NULL, "line without '='", 0 },
	/* the rows below are built by make_input() */
	{ "NUL byte in value", NULL, 0, NULL, NULL, NULL, NULL, "NUL byte", 0 },
	{ "line of exactly the limit", NULL, 1, NULL, NULL, NULL, NULL, NULL, 0 },
	{ "limit plus CR", NULL, 1, NULL, NULL, NULL, NULL, NULL, 0 },
	{ "line one over the limit", NULL, 0, NULL, NULL, NULL, NULL, "line longer than 2048", 0 },
	{ "endless line, no newline", NULL, 0, NULL, NULL, NULL, NULL, "line longer than 2048", 0 },
	{ "100 attributes", NULL, 1, NULL, NULL, NULL, NULL, NULL, 0 },
	{ "101 attributes", NULL, 0, NULL, NULL, NULL, NULL, "more than 100 attributes", 0 },
	{ "10000 attributes", NULL, 0, NULL, NULL, NULL, NULL, "more than 100 attributes", 0 },
	{ "request over the size limit", NULL, 0, NULL, NULL, NULL, NULL, "request longer than 32768", 0 },
};

/* Inputs too big or binary for a string literal; returns malloc'ed data. */
static char *make_input(const char *name, size_t *len)
{
	size_t cap = 2 * 1024 * 1024, n = 0;
	char *d = malloc(cap);
	assert_non_null(d);
#define ADD(s, l) do { memcpy(d + n, (s), (l)); n += (l); } while (0)
#define ADDS(s) ADD(s, strlen(s))
	if (strcmp(name, "NUL byte in value") == 0) {
		ADDS("request=smtpd_access_policy\nsasl_username=ali");
		ADD("\0", 1);
		ADDS("ce\n\n");
	} else if (strcmp(name, "line of exactly the limit") == 0 ||
		   strcmp(name, "limit plus CR") == 0 ||
		   strcmp(name, "line one over the limit") == 0) {
		size_t want = PD_MAX_LINE + (strstr(name, "over") != NULL);
		size_t fill = want - strlen("ccert_subject=");
		ADDS("request=smtpd_access_policy\nccert_subject=");
		memset(d + n, 'x', fill);
		n += fill;
		if (strstr(name, "CR") != NULL)
			ADDS("\r");
		ADDS("\n\n");
	} else if (strcmp(name, "endless line, no newline") == 0) {
		ADDS("request=smtpd_access_policy\nsasl_username=");
		memset(d + n, 'y', 100000);
		n += 100000;
	} else if (strstr(name, "attributes") != NULL) {
		int count = atoi(name);
		ADDS("request=smtpd_access_policy\n");
		for (int i = 1; i < count; i++) {
			char line[32];
			ADD(line, (size_t)snprintf(line, sizeof(line), "x%d=%d\n", i, i));
		}
		ADDS("\n");
	} else if (strcmp(name, "request over the size limit") == 0) {
		ADDS("request=smtpd_access_policy\n");
		for (int i = 0; i < 20; i++) {	/* 20 lines of 2000 bytes */
			ADDS("ccert_subject=");
			memset(d + n, 'z', 1986);
			n += 1986;
			ADDS("\n");
		}
		ADDS("\n");
	} else {
		fail_msg("no input for row %s", name);
	}
	assert_true(n <= cap);
	*len = n;
	return d;
}

static void check_row(const struct row *r, size_t chunk)
{
	size_t len;
	char *built = NULL;
	const char *data = r->data;
	struct outcome *o = malloc(sizeof(*o));
	assert_non_null(o);

	if (data == NULL)
		data = built = make_input(r->name, &len);
	else
		len = strlen(data);
	run(data, len, chunk, o);

	if (r->error != NULL) {
		if (!o->error || strstr(o->why, r->error) == NULL)
			fail_msg("%s (chunk %zu): want error \"%s\", got %s \"%s\"", r->name,
				 chunk, r->error, o->error ? "error" : "none", o->why);
	} else if (o->error) {
		fail_msg("%s (chunk %zu): unexpected error \"%s\"", r->name, chunk, o->why);
	}
	if (o->requests != r->requests)
		fail_msg("%s (chunk %zu): %d requests, want %d", r->name, chunk,
			 o->requests, r->requests);
	if (r->user0 != NULL) {
		assert_string_equal(o->user[0], r->user0);
		assert_string_equal(o->client[0], r->client0);
		assert_string_equal(o->tls[0], r->tls0);
	}
	if (r->user1 != NULL)
		assert_string_equal(o->user[1], r->user1);
	if (r->error == NULL && o->mid_request != r->mid_request)
		fail_msg("%s (chunk %zu): %d bytes unfinished, want %d", r->name, chunk,
			 o->mid_request, r->mid_request);
	free(built);
	free(o);
}

static void test_rows(void **state)
{
	static const size_t chunks[] = { 1, 7, 4096, (size_t)-1 };
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			/* byte by byte through 100 kB is slow but still quick */
			check_row(&rows[i], chunks[c]);
		}
}

/* A limit-sized value is kept whole, never cut. */
static void test_long_value_kept_whole(void **state)
{
	(void)state;
	static char data[PD_MAX_LINE + 64];
	size_t n = (size_t)sprintf(data, "request=smtpd_access_policy\nsasl_username=");
	size_t vlen = PD_MAX_LINE - strlen("sasl_username=");
	memset(data + n, 'v', vlen);
	n += vlen;
	memcpy(data + n, "\n\n", 2);
	n += 2;
	struct outcome *o = malloc(sizeof(*o));
	assert_non_null(o);
	run(data, n, 13, o);
	assert_int_equal(o->error, 0);
	assert_int_equal(o->requests, 1);
	assert_int_equal(strlen(o->user[0]), vlen);
	free(o);
}

/* Attributes of one request never leak into the next. */
static void test_no_leak_between_requests(void **state)
{
	(void)state;
	const char *data = "request=smtpd_access_policy\nsasl_username=alice\n"
			   "encryption_protocol=TLSv1.2\n\n"
			   "request=smtpd_access_policy\n\n";
	struct outcome *o = malloc(sizeof(*o));
	assert_non_null(o);
	run(data, strlen(data), 5, o);
	assert_int_equal(o->requests, 2);
	assert_string_equal(o->user[1], "");
	assert_string_equal(o->tls[1], "");
	assert_int_equal(o->present_tls[1], 0);
	assert_int_equal(o->present_tls[0], 1);
	free(o);
}

/* Peer bytes in an error message are sanitised. */
static void test_why_is_sanitised(void **state)
{
	(void)state;
	const char *data = "request=smtpd_access_policy\n\x1b[31mbad\"\x7f\n\n";
	struct outcome *o = malloc(sizeof(*o));
	assert_non_null(o);
	run(data, strlen(data), 4096, o);
	assert_int_equal(o->error, 1);
	for (const char *p = o->why; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	assert_null(strchr(o->why, '\x1b'));
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_long_value_kept_whole),
		cmocka_unit_test(test_no_leak_between_requests),
		cmocka_unit_test(test_why_is_sanitised),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

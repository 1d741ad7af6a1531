/*
 * fuzz-policy - libFuzzer target for the policy file parser
 * (tg_policy_load_buffer).
 *
 * The input is one policy file. A policy that loads is then read back
 * through every accessor and asked for verdicts, so that a parser that
 * accepts something the engine cannot digest is caught too. Invariants
 * checked (abort on violation): a load either returns a snapshot and no
 * error, or NULL and at least one error; error messages are one printable
 * line; each rule's ref is a line that exists in the input. One input in
 * 16 (chosen by its bytes, so runs repeat) is also written to a file and
 * loaded from there (the chunked file reader, not the buffer one): both
 * must agree on the outcome, the rule counts and every rule's line. Only a
 * sample, as the file round trip costs more than the parse; chunk ends
 * (1 MiB apart) are covered by test-hostile-regressions.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decide.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static void check_errors(const struct tg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		for (const char *p = errs->msgs[i]; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
}

static void ask(const struct tg_policy *policy, const char *user,
		const struct tg_addr *client, enum tg_tls tls)
{
	for (int svc = 0; svc < TG_SERVICE_COUNT; svc++) {
		struct tg_login login = {
			.user = user, .service = (enum tg_service)svc,
			.client = client, .tls = tls, .today = 20270301,
			.mode_override = -1,
		};
		struct tg_decision d;
		tg_decide(policy, &login, &d);
		if ((unsigned)d.verdict > TG_VERDICT_REJECT)
			abort();
		/* TLS at or above every min_tls is never refused. */
		if (tls == TG_TLS_V1_3 && d.verdict == TG_VERDICT_REJECT)
			abort();
	}
}

static void walk(const struct tg_policy *policy, size_t lines)
{
	struct tg_policy_stats stats;
	tg_policy_stats(policy, 20270301, &stats);
	if (stats.files != 1)
		abort();

	struct tg_addr v4, v6;
	tg_addr_parse("192.0.2.10", 10, &v4);
	tg_addr_parse("2001:db8:1::5", 13, &v6);

	for (size_t i = 0; i < tg_policy_mode_rule_count(policy); i++) {
		struct tg_mode_rule_info r;
		tg_policy_mode_rule(policy, i, &r);
		if (r.ref.line == 0 || r.ref.line > lines || r.protocols == 0)
			abort();
		ask(policy, r.subject, &v4, TG_TLS_NONE);
		ask(policy, r.subject, NULL, TG_TLS_V1_3);
	}
	for (size_t i = 0; i < tg_policy_exemption_count(policy); i++) {
		struct tg_exemption_info e;
		tg_policy_exemption(policy, i, &e);
		if (e.ref.line == 0 || e.ref.line > lines || e.net_count == 0)
			abort();
		/* An exempted address inside its own network: plaintext is
		 * never rejected for that subject when it is an account. */
		ask(policy, e.subject, &e.nets[0].addr, TG_TLS_NONE);
		ask(policy, e.subject, &v6, TG_TLS_UNKNOWN);
	}
	ask(policy, "nobody@example.com", &v4, TG_TLS_NONE);
	ask(policy, "", NULL, TG_TLS_NONE);
}

static char tmpdir[] = "/tmp/fuzz-policy-XXXXXX";
static char path[64];

static void remove_tmp(void)
{
	unlink(path);
	rmdir(tmpdir);
}

/* Loads data through a file; compares with the buffer load `policy`. */
static void compare_file_load(const uint8_t *data, size_t size,
			      const struct tg_policy *policy)
{
	if (path[0] == '\0') {
		if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0700) < 0)
			abort();
		snprintf(path, sizeof(path), "%s/p.conf", tmpdir);
		atexit(remove_tmp);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) < 0)
		abort();
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *other = tg_policy_load(path, &errs);
	if ((other == NULL) != (policy == NULL))
		abort();
	if (other != NULL) {
		size_t n = tg_policy_mode_rule_count(policy);
		if (n != tg_policy_mode_rule_count(other) ||
		    tg_policy_exemption_count(policy) != tg_policy_exemption_count(other))
			abort();
		for (size_t i = 0; i < n; i++) {
			struct tg_mode_rule_info a, b;
			tg_policy_mode_rule(policy, i, &a);
			tg_policy_mode_rule(other, i, &b);
			if (a.ref.line != b.ref.line || strcmp(a.subject, b.subject) != 0)
				abort();
		}
		tg_policy_free(other);
	}
	tg_errors_clear(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *policy = tg_policy_load_buffer("fuzz.conf",
		(const char *)data, size, &errs);
	check_errors(&errs);
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	if ((h & 15) == 0)
		compare_file_load(data, size, policy);
	if (policy != NULL) {
		if (tg_errors_total(&errs) != 0)
			abort();
		walk(policy, count_lines((const char *)data, size));
		tg_policy_free(policy);
	} else if (tg_errors_total(&errs) == 0) {
		abort();
	}
	tg_errors_clear(&errs);
	return 0;
}

/*
 * policy-bench - how fast a policy loads and decides, and how much memory
 * it takes, for generated policies of a given size.
 *
 *   policy-bench generate ACCOUNTS DOMAINS EXEMPTIONS FILE
 *   policy-bench run FILE ACCOUNTS DOMAINS EXEMPTIONS LOOKUPS
 *
 * `run` loads FILE once (wall time, peak RSS from /proc/self/status), then
 * decides LOOKUPS logins from a mixed stream prepared beforehand: listed
 * accounts, unlisted accounts of listed domains, unknown domains; IPv4,
 * IPv6 and IPv4-mapped addresses; one login in eight from the address of
 * one of its exemptions; TLS and plaintext; all five services. It
 * prints one line of key=value figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decide.h"
#include "policy.h"
#include "benchutil.h"

/* Deterministic pseudo-random numbers (xorshift), same stream each run. */
static unsigned long long rng = 88172645463325252ull;
static unsigned long next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned long)rng;
}

static int generate(long accounts, long domains, long exemptions, const char *path)
{
	static const char *const verbs[] = { "require", "audit", "off", "require" };
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	fprintf(f, "# generated: %ld accounts, %ld domains, %ld exemptions\naudit *\n",
		accounts, domains, exemptions);
	for (long d = 0; d < domains; d++)
		fprintf(f, "%s @d%ld.example%s\n", verbs[d % 4], d,
			d % 20 == 0 ? " from=2027-03-01" : "");
	for (long a = 0; a < accounts; a++)
		fprintf(f, "%s user%ld@d%ld.example%s\n", verbs[a % 3], a, a % domains,
			a % 7 == 0 ? " protocols=imap,pop3" :
			a % 11 == 0 && a % 3 == 0 ? " min_tls=TLSv1.2" : "");
	for (long e = 0; e < exemptions; e++) {
		if (e % 2 == 0)
			fprintf(f, "exempt user%ld@d%ld.example 10.%ld.%ld.0/24 protocols=smtp until=2027-12-31 note=\"device %ld\"\n",
				e * 97 % accounts, e * 97 % accounts % domains,
				e / 256 % 256, e % 256, e);
		else
			fprintf(f, "exempt @d%ld.example 2001:db8:%lx::/48,192.0.2.%ld\n",
				e % domains, e % 65536, e % 256);
	}
	return fclose(f) == 0 ? 0 : 1;
}

struct sample {
	char user[64];
	enum tg_service service;
	struct tg_addr addr;
	enum tg_tls tls;
};

static int run(const char *path, long accounts, long domains, long exemptions,
	       long lookups)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	long rss_before = status_kb("VmRSS:");
	double t0 = now();
	struct tg_policy *policy = tg_policy_load(path, &errs);
	double load = now() - t0;
	if (policy == NULL) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		return 1;
	}
	long rss_loaded = status_kb("VmRSS:");
	long hwm = status_kb("VmHWM:");

	/* Prepare the stream first: only decisions are timed. */
	enum { STREAM = 1 << 16 };
	struct sample *s = calloc(STREAM, sizeof(*s));
	for (long i = 0; i < STREAM; i++) {
		unsigned long r = next_rand();
		switch (r % 4) {
		case 0: case 1:
			snprintf(s[i].user, sizeof(s[i].user), "user%ld@d%ld.example",
				 (long)(r / 4 % (unsigned long)accounts),
				 (long)(r / 4 % (unsigned long)accounts % (unsigned long)domains));
			break;
		case 2:
			snprintf(s[i].user, sizeof(s[i].user), "other%lu@d%ld.example",
				 r % 1000, (long)(r / 8 % (unsigned long)domains));
			break;
		default:
			snprintf(s[i].user, sizeof(s[i].user), "someone@elsewhere%lu.net", r % 1000);
		}
		s[i].service = (enum tg_service)(r / 16 % TG_SERVICE_COUNT);
		char ip[64];
		switch (r / 128 % 4) {
		case 0: snprintf(ip, sizeof(ip), "10.%lu.%lu.7", r / 512 % 40, r / 4096 % 256); break;
		case 1: snprintf(ip, sizeof(ip), "2001:db8:%lx::1", r / 512 % 65536); break;
		case 2: snprintf(ip, sizeof(ip), "::ffff:192.0.2.%lu", r / 512 % 256); break;
		default: snprintf(ip, sizeof(ip), "203.0.113.%lu", r / 512 % 256);
		}
		tg_addr_parse(ip, strlen(ip), &s[i].addr);
		s[i].tls = (enum tg_tls)(r / 65536 % 3 == 0 ? TG_TLS_NONE : TG_TLS_V1_0 + r / 8192 % 4);
		if (r % 8 == 7 && exemptions > 0) {
			/* a device behind one of the generated exemptions */
			long e = (long)(r / 8 % (unsigned long)exemptions);
			if (e % 2 == 0) {
				snprintf(s[i].user, sizeof(s[i].user), "user%ld@d%ld.example",
					 e * 97 % accounts, e * 97 % accounts % domains);
				s[i].service = TG_SERVICE_SMTP;
				snprintf(ip, sizeof(ip), "10.%ld.%ld.5", e / 256 % 256, e % 256);
			} else {
				snprintf(s[i].user, sizeof(s[i].user), "device@d%ld.example",
					 e % domains);
				snprintf(ip, sizeof(ip), "192.0.2.%ld", e % 256);
			}
			tg_addr_parse(ip, strlen(ip), &s[i].addr);
			s[i].tls = TG_TLS_NONE;
		}
	}

	long counts[4] = { 0 };
	struct tg_login login = { .today = 20261129, .mode_override = -1 };
	struct tg_decision d;
	t0 = now();
	for (long i = 0; i < lookups; i++) {
		const struct sample *x = &s[i & (STREAM - 1)];
		login.user = x->user;
		login.service = x->service;
		login.client = &x->addr;
		login.tls = x->tls;
		tg_decide(policy, &login, &d);
		counts[d.verdict]++;
	}
	double decide = now() - t0;

	struct tg_policy_stats st;
	tg_policy_stats(policy, 20261129, &st);
	printf("rules=%zu accounts=%zu domains=%zu exemptions=%zu load_s=%.3f "
	       "rss_policy_mb=%.1f peak_rss_mb=%.1f lookups=%ld ns_per_decision=%.1f "
	       "allow=%ld exempt=%ld audit=%ld reject=%ld\n",
	       st.mode_rules, st.account_subjects, st.domain_subjects, st.exemptions,
	       load, (double)(rss_loaded - rss_before) / 1024.0, (double)hwm / 1024.0,
	       lookups, decide * 1e9 / (double)lookups,
	       counts[0], counts[1], counts[2], counts[3]);
	free(s);
	tg_policy_free(policy);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "generate") == 0)
		return generate(atol(argv[2]), atol(argv[3]), atol(argv[4]), argv[5]);
	if (argc == 7 && strcmp(argv[1], "run") == 0)
		return run(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]),
			   atol(argv[6]));
	fprintf(stderr, "usage: policy-bench generate ACCOUNTS DOMAINS EXEMPTIONS FILE\n"
			"       policy-bench run FILE ACCOUNTS DOMAINS EXEMPTIONS LOOKUPS\n");
	return 2;
}

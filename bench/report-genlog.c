/*
 * report-genlog - writes a synthetic mail log for the `tlsgate report`
 * benchmark: event lines of the Dovecot module and tlsgate-policyd in the
 * log formats report reads, mixed with ordinary Postfix/Dovecot lines.
 *
 *   report-genlog BYTES ACCOUNTS > FILE
 *
 * Deterministic (fixed seed). Accounts u<N>@d<N % 1000>.example; each has
 * a profile from a hash of its number: 85 % TLS only, 10 % plaintext in
 * audit mode, 3 % an exempt device, 2 % rejected in require mode with
 * PLAIN. About 1 % of policyd events are written twice (a retried
 * request), 20 % of lines are not events. Times advance over a week
 * starting 2026-11-22, so every line has a plausible timestamp.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352d;
	x ^= x >> 15;
	x *= 0x846ca68b;
	x ^= x >> 16;
	return x;
}

static const char *const services[] = { "imap", "pop3", "smtp", "submission", "sieve" };

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: report-genlog BYTES ACCOUNTS > FILE\n");
		return 2;
	}
	unsigned long long target = strtoull(argv[1], NULL, 10);
	unsigned long accounts = strtoul(argv[2], NULL, 10);
	if (target == 0 || accounts == 0) {
		fprintf(stderr, "report-genlog: BYTES and ACCOUNTS must be > 0\n");
		return 2;
	}
	static char buf[1 << 20];
	setvbuf(stdout, buf, _IOFBF, sizeof(buf));

	unsigned long long written = 0, line_no = 0;
	/* a week of seconds spread over the lines */
	const unsigned long long est_lines = target / 190 + 1;
	char line[1024];
	while (written < target) {
		unsigned long long sec = line_no * 604800ull / est_lines;
		unsigned day = 22 + (unsigned)(sec / 86400);
		unsigned hh = (unsigned)(sec / 3600 % 24), mm = (unsigned)(sec / 60 % 60),
			 ss = (unsigned)(sec % 60);
		const char *mon = "Nov";
		if (day > 30) {
			day -= 30;
			mon = "Dec";
		}
		line_no++;
		uint64_t r = rnd();
		int n;
		char stamp[64];
		unsigned fmt = (unsigned)(r % 10);
		if (fmt < 7)
			snprintf(stamp, sizeof(stamp), "%s %2u %02u:%02u:%02u mail", mon, day, hh, mm, ss);
		else if (fmt < 9)
			snprintf(stamp, sizeof(stamp), "2026-%s-%02uT%02u:%02u:%02u.%06u+00:00 mail",
				 mon[0] == 'N' ? "11" : "12", day, hh, mm, ss, (unsigned)(r >> 40) % 1000000);
		else
			snprintf(stamp, sizeof(stamp), "%s %2u %02u:%02u:%02u.%06u mail", mon, day, hh,
				 mm, ss, (unsigned)(r >> 40) % 1000000);

		if ((r >> 8) % 5 == 0) {
			/* not an event */
			n = snprintf(line, sizeof(line),
				     "%s postfix/smtpd[%u]: connect from unknown[198.51.100.%u]\n",
				     stamp, (unsigned)(r >> 20) % 30000, (unsigned)(r >> 36) % 250);
			fwrite(line, 1, (size_t)n, stdout);
			written += (unsigned long long)n;
			continue;
		}
		uint32_t acct = (uint32_t)((r >> 16) % accounts);
		uint32_t profile = mix(acct) % 100;
		unsigned svc = (unsigned)(r >> 48) % 5;
		int plaintext = profile >= 85 && (r >> 52) % 4 != 0;
		char client[48];
		snprintf(client, sizeof(client), "%u.%u.%u.%u", 10 + acct % 200, (acct >> 8) % 256,
			 (acct >> 16) % 256, 1 + (unsigned)(r >> 58) % 3);
		const char *tls = plaintext ? "none" : ((r >> 30) & 1) ? "TLSv1.3" : "TLSv1.2";
		const char *verdict = "allow", *mode = "audit";
		char exempt[64] = "";
		if (plaintext) {
			if (profile < 95) {
				verdict = "audit";
			} else if (profile < 98) {
				verdict = "exempt";
				snprintf(exempt, sizeof(exempt), " exemption=/etc/tlsgate/policy.d/legacy.conf:%u",
					 1 + acct % 50);
			} else {
				verdict = "reject";
				mode = "require";
			}
		}
		if (profile >= 98)
			mode = "require";
		int policyd = svc == 2;
		const char *prog = policyd ? "tlsgate-policyd[812]" : "dovecot[901]: auth";
		const char *info = policyd ? "" : " Info:";
		char session[40] = "";
		if (policyd)
			snprintf(session, sizeof(session), " session=%llX", (unsigned long long)(r >> 12) & 0xffffffffffull);
		n = snprintf(line, sizeof(line),
			     "%s %s:%s tlsgate: service=%s user=u%u@d%u.example client=%s tls=%s "
			     "verdict=%s mode=%s rule=/etc/tlsgate/policy.d/domains.conf:%u%s "
			     "mech=PLAIN%s\n",
			     stamp, prog, info, services[svc], acct, acct % 1000, client, tls, verdict,
			     mode, 1 + acct % 1000, exempt, session);
		fwrite(line, 1, (size_t)n, stdout);
		written += (unsigned long long)n;
		if (policyd && (r >> 40) % 100 == 0) {
			fwrite(line, 1, (size_t)n, stdout);	/* retried request */
			written += (unsigned long long)n;
			line_no++;
		}
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

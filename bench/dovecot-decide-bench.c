/*
 * dovecot-decide-bench - what the tlsgate passdb adds to one login inside
 * Dovecot's auth process: tgdc_decide() (poll check, mapping, decision,
 * event line) over a real policy, with the event handed to a log function
 * that copies it, as Dovecot's logging does first.
 *
 * Usage: dovecot-decide-bench TLSGATE.CONF ACCOUNTS COUNT
 * Users cycle through user0..user{ACCOUNTS-1}@bench.test (the names
 * bench/dovecot-bench.py writes), half plaintext, half TLS, IMAP.
 * Prints the load time and the mean time per decision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tgdc.h"

static size_t logged_bytes;
static char sink[16384];

static void log_copy(void *ctx, enum tgdc_level level, const char *line)
{
	size_t len = strlen(line);

	(void)ctx;
	if (level != TGDC_LOG_INFO)
		fprintf(stderr, "%s\n", line);
	if (len >= sizeof(sink))
		len = sizeof(sink) - 1;
	memcpy(sink, line, len);
	logged_bytes += len;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s TLSGATE.CONF ACCOUNTS COUNT\n", argv[0]);
		return 2;
	}
	unsigned long accounts = strtoul(argv[2], NULL, 10);
	unsigned long count = strtoul(argv[3], NULL, 10);
	if (accounts == 0 || count == 0) {
		fprintf(stderr, "ACCOUNTS and COUNT must be positive\n");
		return 2;
	}

	double t0 = now_seconds();
	struct tgdc *tg = tgdc_open(argv[1], log_copy, NULL);
	double load = now_seconds() - t0;
	if (tg == NULL)
		return 1;

	/* names prepared beforehand: only the decisions are timed */
	enum { NAMES = 4096 };
	static char names[NAMES][48];
	for (unsigned i = 0; i < NAMES; i++)
		snprintf(names[i], sizeof(names[i]), "user%lu@bench.test",
			 (unsigned long)((i * 2654435761u) % accounts));

	struct tgdc_result res;
	unsigned long refused = 0;
	time_t now = time(NULL);
	t0 = now_seconds();
	for (unsigned long i = 0; i < count; i++) {
		struct tgdc_request req = {
			.user = names[i % NAMES],
			.service = "imap",
			.remote_ip = (i & 2) ? "192.0.2.7" : "2001:db8::7",
			.secured = (i & 1) ? TGDC_SECURED_TLS : TGDC_SECURED_NONE,
			.mech = "PLAIN",
			.session = "IydopXBhDaZ/AAAC",
			.now = now,
		};
		tgdc_decide(tg, &req, &res);
		refused += res.action == TGDC_REFUSE;
	}
	double per = (now_seconds() - t0) / (double)count;
	printf("tgdc: policy load %.3f s; %lu decisions, %.2f us each "
	       "(%lu refused, %.0f bytes of event per decision)\n",
	       load, count, per * 1e6, refused, (double)logged_bytes / (double)count);
	tgdc_close(tg);
	return 0;
}

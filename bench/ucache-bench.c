/*
 * ucache-bench - how fast tlsgate-policyd's cache of account answers
 * (lib/ucache) answers from a warm table, and how much memory it takes.
 *
 *   ucache-bench ACCOUNTS CACHE_SIZE LOOKUPS
 *
 * Fills a cache of CACHE_SIZE entries with ACCOUNTS names of the
 * policyd-load model (uN@dM.example, 100 per domain), then looks up
 * LOOKUPS of them in a random order prepared beforehand (every look-up a
 * hit), and LOOKUPS/10 names that are not there. Prints one line of
 * key=value figures. A check, not only a timer: exits 1 if an answer is
 * wrong or missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ucache.h"
#include "benchutil.h"

/* xorshift64*: a fixed, reproducible order */
static unsigned long long next_random(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* All names in one block, NUL-separated, `width` bytes apart. */
static char *make_names(long count, long domains, const char *prefix, int width)
{
	char *names = malloc((size_t)count * (size_t)width);
	if (names == NULL)
		return NULL;
	for (long i = 0; i < count; i++)
		snprintf(names + i * width, (size_t)width, "%s%d@d%d.example", prefix, (int)i,
			 (int)(i % domains));
	return names;
}

int main(int argc, char **argv)
{
	enum { WIDTH = 48 };	/* fits "x" INT_MAX "@d" INT_MAX ".example" */
	if (argc != 4) {
		fprintf(stderr, "usage: ucache-bench ACCOUNTS CACHE_SIZE LOOKUPS\n");
		return 2;
	}
	long accounts = atol(argv[1]), size = atol(argv[2]), lookups = atol(argv[3]);
	long domains = accounts / 100 > 10 ? accounts / 100 : 10;
	if (accounts <= 0 || size <= 0 || lookups <= 0)
		return 2;
	char *names = make_names(accounts, domains, "u", WIDTH);
	char *absent = make_names(lookups / 10 + 1, domains, "x", WIDTH);
	long *order = malloc((size_t)lookups * sizeof(*order));
	struct tg_ucache *c = tg_ucache_new((size_t)size, 3600);
	if (names == NULL || absent == NULL || order == NULL || c == NULL)
		return 2;
	unsigned long long seed = 88172645463325252ULL;
	for (long i = 0; i < lookups; i++)
		order[i] = (long)(next_random(&seed) % (unsigned long long)accounts);
	long rss1 = status_kb("VmRSS:");

	double t0 = now();
	for (long i = 0; i < accounts; i++)
		if (tg_ucache_put(c, names + i * WIDTH, (int)(i % 3), 1000) < 0)
			return 2;
	double t1 = now();
	long rss2 = status_kb("VmRSS:");

	long hits = 0, wrong = 0;
	for (long i = 0; i < lookups; i++) {
		int mode;
		if (tg_ucache_get(c, names + order[i] * WIDTH, 1001, &mode)) {
			hits++;
			wrong += mode != (int)(order[i] % 3);
		}
	}
	double t2 = now();
	long absent_hits = 0;
	for (long i = 0; i < lookups / 10; i++) {
		int mode;
		absent_hits += tg_ucache_get(c, absent + i * WIDTH, 1001, &mode);
	}
	double t3 = now();

	long cached = (long)tg_ucache_count(c);
	printf("accounts=%ld cache_size=%ld cached=%ld put=%.0fns/name hit=%.0fns/lookup "
	       "miss=%.0fns/lookup found=%ld/%ld wrong=%ld memory=%ldkB (%.0f bytes/name)\n",
	       accounts, size, cached, (t1 - t0) * 1e9 / (double)accounts,
	       (t2 - t1) * 1e9 / (double)lookups, (t3 - t2) * 1e9 / (double)(lookups / 10 + 1),
	       hits, lookups, wrong, rss2 - rss1, (double)(rss2 - rss1) * 1024.0 / (double)cached);
	tg_ucache_free(c);
	free(order);
	free(absent);
	free(names);
	/* a full cache keeps every name: all found, none wrong, no absent one found */
	return wrong == 0 && absent_hits == 0 && (cached < accounts || hits == lookups) ? 0 : 1;
}

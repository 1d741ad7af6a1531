/*
 * fuzz-ucache - libFuzzer target for tlsgate-policyd's cache of account
 * answers (lib/ucache), whose names come from peers (sasl_username,
 * sender). The input is a small cache (1-64 entries, TTL 1-8 s) and a
 * script of operations: put or get a name (0-63 bytes, or 128-255 when a
 * flag is set), move the clock forward or back, forget everything.
 *
 * Invariants checked against a reference (every name's last answer and
 * its expiry; abort on violation): a hit returns the mode last put for
 * exactly that name, and only while that answer is live; a name just put
 * is found; nothing is found after a clear; the count stays within the
 * cache's bound. Leaks are reported by the fuzzer's leak check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ucache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAME 255
#define MAX_KNOWN 1024

struct known {
	char name[MAX_NAME + 1];
	int mode;
	time_t expires;
};

static struct known known[MAX_KNOWN];
static size_t known_count;

struct input {
	const uint8_t *p, *end;
};

static unsigned take(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

/* A name from the input: bytes up to the first NUL. */
static void take_name(struct input *in, char *name)
{
	unsigned b = take(in);
	size_t len = b & 0x3f;
	if (b & 0x40)
		len += 128 + (b & 0x80 ? 64 : 0);
	size_t n = 0;
	while (n < len && in->p < in->end)
		name[n++] = (char)*in->p++;
	name[n] = '\0';
}

static struct known *find_known(const char *name)
{
	for (size_t i = 0; i < known_count; i++)
		if (strcmp(known[i].name, name) == 0)
			return &known[i];
	return NULL;
}

static void check_get(struct tg_ucache *c, const char *name, time_t now)
{
	int mode = 99;
	int hit = tg_ucache_get(c, name, now, &mode);
	const struct known *k = find_known(name);
	if (hit != 0 && hit != 1)
		abort();
	if (hit && (k == NULL || now >= k->expires || mode != k->mode))
		abort();
}

static void put(struct tg_ucache *c, const char *name, int mode, time_t now, unsigned ttl)
{
	if (tg_ucache_put(c, name, mode, now) < 0)
		return;		/* out of memory: nothing cached, nothing to check */
	struct known *k = find_known(name);
	if (k == NULL) {
		if (known_count == MAX_KNOWN)
			abort();	/* more names than the input can hold */
		k = &known[known_count++];
		strcpy(k->name, name);
	}
	k->mode = mode;
	k->expires = now + (time_t)ttl;
	int got = 99;
	if (tg_ucache_get(c, name, now, &got) != 1 || got != mode)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, data + size };
	size_t max_entries = 1 + take(&in) % 64;
	unsigned ttl = 1 + take(&in) % 8;
	struct tg_ucache *c = tg_ucache_new(max_entries, ttl);
	char name[MAX_NAME + 1];
	time_t now = 1000000;
	if (c == NULL)
		return 0;
	known_count = 0;
	while (in.p < in.end) {
		unsigned op = take(&in);
		switch (op & 3) {
		case 0:
			take_name(&in, name);
			put(c, name, (int)(op >> 2) % 4 - 1, now, ttl);
			break;
		case 1:
			take_name(&in, name);
			check_get(c, name, now);
			break;
		case 2:		/* the clock: mostly forward, sometimes back */
			now += (op & 0x80) ? -(time_t)((op >> 2) & 0x1f) : (time_t)(op >> 2);
			break;
		default:
			if (op == 0xff) {
				tg_ucache_clear(c);
				known_count = 0;
				if (tg_ucache_count(c) != 0)
					abort();
			}
			break;
		}
		/* sets are a power of two at most twice what is needed */
		if (tg_ucache_count(c) > 2 * max_entries + TG_UCACHE_WAYS)
			abort();
	}
	for (size_t i = 0; i < known_count; i++)
		check_get(c, known[i].name, now);
	tg_ucache_free(c);
	return 0;
}

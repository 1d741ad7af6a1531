/*
 * fuzz-netaddr - libFuzzer target for address and network parsing
 * (tg_addr_parse, tg_net_parse).
 *
 * Invariants checked (abort on violation): a parsed address formats to
 * text that parses back to the same address; a parsed network formats and
 * parses back to itself, has a prefix within its family, contains its own
 * address and has no host bits set; `why` is always a terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const char *s, size_t len)
{
	struct tg_addr a, b;
	char text[TG_ADDR_STRLEN];

	if (tg_addr_parse(s, len, &a) < 0)
		return;
	if (a.family != 4 && a.family != 6)
		abort();
	tg_addr_format(&a, text, sizeof(text));
	if (tg_addr_parse(text, strlen(text), &b) < 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void check_net(const char *s, size_t len)
{
	struct tg_net n, m;
	char why[200], text[TG_ADDR_STRLEN + 8];

	memset(why, 'x', sizeof(why));
	if (tg_net_parse(s, len, &n, why, sizeof(why)) < 0) {
		if (memchr(why, '\0', sizeof(why)) == NULL)
			abort();
		return;
	}
	if (n.prefix > (n.addr.family == 4 ? 32 : 128))
		abort();
	if (!tg_net_contains(&n, &n.addr))
		abort();
	tg_net_format(&n, text, sizeof(text));
	if (tg_net_parse(text, strlen(text), &m, why, sizeof(why)) < 0 ||
	    memcmp(&n, &m, sizeof(n)) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly `size` bytes, so that a read past the counted
	 * length is caught by the sanitizer. */
	char *s = malloc(size ? size : 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	check_addr(s, size);
	check_net(s, size);
	free(s);
	return 0;
}

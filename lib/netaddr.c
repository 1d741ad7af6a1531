/*
 * netaddr - strict IPv4/IPv6 address and network parsing and matching.
 * See netaddr.h.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int tg_addr_parse(const char *s, size_t len, struct tg_addr *out)
{
	char text[TG_ADDR_STRLEN];
	uint8_t bytes[16];

	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, bytes) == 1) {
		out->family = 4;
		memcpy(out->bytes, bytes, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, bytes) == 1) {
		if (memcmp(bytes, v4_mapped_prefix, 12) == 0) {
			out->family = 4;
			memcpy(out->bytes, bytes + 12, 4);
		} else {
			out->family = 6;
			memcpy(out->bytes, bytes, 16);
		}
		return 0;
	}
	return -1;
}

static unsigned addr_bits(const struct tg_addr *addr)
{
	return addr->family == 4 ? 32 : 128;
}

/* Clears every bit after the first `prefix` bits. */
static void mask_to_prefix(struct tg_addr *addr, unsigned prefix)
{
	unsigned nbytes = addr_bits(addr) / 8;
	for (unsigned i = 0; i < nbytes; i++) {
		unsigned first_bit = i * 8;
		if (first_bit >= prefix)
			addr->bytes[i] = 0;
		else if (first_bit + 8 > prefix)
			addr->bytes[i] &= (uint8_t)(0xff << (8 - (prefix - first_bit)));
	}
}

int tg_net_parse(const char *s, size_t len, struct tg_net *out,
		 char *why, size_t whylen)
{
	const char *slash = memchr(s, '/', len);
	size_t addr_len = slash != NULL ? (size_t)(slash - s) : len;
	int shown = len > 60 ? 60 : (int)len;

	memset(out, 0, sizeof(*out));
	if (tg_addr_parse(s, addr_len, &out->addr) < 0) {
		snprintf(why, whylen, "'%.*s' is not an IPv4 or IPv6 address",
			 addr_len > 60 ? 60 : (int)addr_len, s);
		return -1;
	}
	unsigned bits = addr_bits(&out->addr);
	/* An IPv4-mapped network keeps its meaning: ::ffff:192.0.2.0/120 is
	 * 192.0.2.0/24. */
	int mapped = out->addr.family == 4 && memchr(s, ':', addr_len) != NULL;
	unsigned prefix = bits;
	if (slash != NULL) {
		const char *p = slash + 1;
		const char *end = s + len;
		if (p == end || end - p > 3) {
			snprintf(why, whylen, "'%.*s': bad prefix length", shown, s);
			return -1;
		}
		prefix = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9') {
				snprintf(why, whylen, "'%.*s': bad prefix length", shown, s);
				return -1;
			}
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (slash[1] == '0' && len - addr_len > 2) {
			snprintf(why, whylen, "'%.*s': bad prefix length", shown, s);
			return -1;
		}
		if (mapped) {
			if (prefix < 96 || prefix > 128) {
				snprintf(why, whylen,
					 "'%.*s': an IPv4-mapped network needs a prefix from 96 to 128",
					 shown, s);
				return -1;
			}
			prefix -= 96;
		}
		if (prefix > bits) {
			snprintf(why, whylen, "'%.*s': prefix length over %u",
				 shown, s, bits);
			return -1;
		}
	}
	struct tg_addr masked = out->addr;
	mask_to_prefix(&masked, prefix);
	if (memcmp(masked.bytes, out->addr.bytes, sizeof(masked.bytes)) != 0) {
		char right[TG_ADDR_STRLEN];
		tg_addr_format(&masked, right, sizeof(right));
		snprintf(why, whylen,
			 "'%.*s' has host bits set: did you mean %s/%u?",
			 shown, s, right, prefix);
		return -1;
	}
	out->prefix = (uint8_t)prefix;
	return 0;
}

bool tg_net_contains(const struct tg_net *net, const struct tg_addr *addr)
{
	if (net->addr.family != addr->family)
		return false;
	unsigned full = net->prefix / 8, rest = net->prefix % 8;
	if (memcmp(net->addr.bytes, addr->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (net->addr.bytes[full] & mask) == (addr->bytes[full] & mask);
}

char *tg_addr_format(const struct tg_addr *addr, char *buf, size_t size)
{
	if (inet_ntop(addr->family == 4 ? AF_INET : AF_INET6, addr->bytes,
		      buf, (socklen_t)size) == NULL && size > 0)
		buf[0] = '\0';
	return buf;
}

char *tg_net_format(const struct tg_net *net, char *buf, size_t size)
{
	char addr[TG_ADDR_STRLEN];
	tg_addr_format(&net->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, net->prefix);
	return buf;
}

/*
 * netaddr - IPv4/IPv6 addresses and networks, parsed strictly.
 *
 * Only the forms inet_pton(3) accepts are addresses ("10.1" or "010.0.0.1"
 * are not). An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is stored as the
 * IPv4 address it carries, so it matches IPv4 networks. A network whose
 * address has bits set beyond its prefix is an error that names the right
 * form. Parsers return -1 and fill `why`; they never allocate.
 */
#ifndef TLSGATE_NETADDR_H
#define TLSGATE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_ADDR_STRLEN 46	/* INET6_ADDRSTRLEN */

struct tg_addr {
	uint8_t family;		/* 4 or 6 */
	uint8_t bytes[16];	/* IPv4 uses the first 4 */
};

struct tg_net {
	struct tg_addr addr;
	uint8_t prefix;		/* 0..32 or 0..128 */
};

/* An address, e.g. "192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7". */
int tg_addr_parse(const char *s, size_t len, struct tg_addr *out);
/* A network "ADDR/PREFIX", or a bare address meaning one host. */
int tg_net_parse(const char *s, size_t len, struct tg_net *out,
		 char *why, size_t whylen);
bool tg_net_contains(const struct tg_net *net, const struct tg_addr *addr);
/* Writes the canonical text form; returns buf. */
char *tg_addr_format(const struct tg_addr *addr, char *buf, size_t size);
char *tg_net_format(const struct tg_net *net, char *buf, size_t size);

#endif

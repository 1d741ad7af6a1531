/*
 * probe/target - what `tlsgate probe` connects to: the mail services it
 * knows (protocol, TLS style, standard port) and the parsing of an
 * endpoint argument "[SERVICE://]HOST[:PORT]" (HOST: name, IPv4, or
 * [IPv6]; a bare IPv6 address without brackets has no port).
 *
 * Parsers return -1 and fill `why`; nothing here allocates or touches the
 * network.
 */
#ifndef TLSGATE_PROBE_TARGET_H
#define TLSGATE_PROBE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum probe_proto { PROBE_IMAP, PROBE_POP3, PROBE_SMTP, PROBE_SIEVE };

enum probe_tls_style {
	PROBE_STARTTLS,		/* plaintext first, then STARTTLS / STLS */
	PROBE_IMPLICIT,		/* TLS from the first byte */
};

struct probe_service {
	const char *name;	/* "imap", "imaps", ... */
	enum probe_proto proto;
	enum probe_tls_style style;
	uint16_t port;		/* standard port */
};

#define PROBE_HOST_MAX 255

struct probe_target {
	char host[PROBE_HOST_MAX + 1];	/* without [] around IPv6 */
	bool has_port;
	uint16_t port;
	const struct probe_service *service;	/* NULL: none given */
};

/* The services probed when an endpoint names only a host, in order. */
const struct probe_service *probe_default_services(size_t *count_r);
/* By name ("imap", "imaps", "pop3", "pop3s", "smtp", "submission",
 * "smtps" or "submissions", "sieve" or "managesieve"); NULL if unknown. */
const struct probe_service *probe_service_by_name(const char *name, size_t len);
/* The service whose standard port this is; NULL if none. */
const struct probe_service *probe_service_by_port(unsigned port);
const char *probe_proto_name(enum probe_proto proto);

int probe_target_parse(const char *spec, struct probe_target *t,
		       char *why, size_t why_size);

#endif

/*
 * names - the small vocabularies of tlsgate: services, TLS versions, modes
 * and verdicts, with their spellings in policy files and event lines.
 *
 * Parsers take a pointer and a length (the text need not be terminated) and
 * return -1 for an unknown name; they never allocate.
 */
#ifndef TLSGATE_NAMES_H
#define TLSGATE_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* A service is the protocol a client logs in with. */
enum tg_service {
	TG_SERVICE_IMAP,
	TG_SERVICE_POP3,
	TG_SERVICE_SMTP,	/* SMTP AUTH at the MTA (Postfix) */
	TG_SERVICE_SUBMISSION,	/* Dovecot's submission service */
	TG_SERVICE_SIEVE,	/* ManageSieve */
	TG_SERVICE_COUNT
};
#define TG_SERVICES_ALL ((uint8_t)((1u << TG_SERVICE_COUNT) - 1))

/* What the server knows about the connection's encryption. Ordered: a
 * version compares with min_tls by value. */
enum tg_tls {
	TG_TLS_NONE = 0,	/* plaintext */
	TG_TLS_UNKNOWN,		/* TLS, version not reported */
	TG_TLS_V1_0,
	TG_TLS_V1_1,
	TG_TLS_V1_2,
	TG_TLS_V1_3,
};

enum tg_mode {
	TG_MODE_OFF,
	TG_MODE_AUDIT,
	TG_MODE_REQUIRE,
};

enum tg_verdict {
	TG_VERDICT_ALLOW,	/* TLS used, or mode off */
	TG_VERDICT_EXEMPT,	/* plaintext allowed by an exemption */
	TG_VERDICT_AUDIT,	/* plaintext, would be rejected, allowed */
	TG_VERDICT_REJECT,
};

int tg_service_parse(const char *s, size_t len);
const char *tg_service_name(enum tg_service service);

/* Parses a comma-separated list such as "imap,pop3" into a bit mask
 * (bit = 1 << service). Returns -1 and fills why on an empty list, an
 * empty item, an unknown name or a name listed twice. */
int tg_service_list_parse(const char *s, size_t len, uint8_t *mask,
			  char *why, size_t whylen);
/* Writes "imap,pop3" for a mask; returns buf. */
char *tg_service_list_format(uint8_t mask, char *buf, size_t size);

/* "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" (as Postfix and OpenSSL spell
 * them). tg_tls_parse also takes "none" and "yes" (TLS, version unknown). */
int tg_tls_version_parse(const char *s, size_t len);
int tg_tls_parse(const char *s, size_t len);
const char *tg_tls_name(enum tg_tls tls);

int tg_mode_parse(const char *s, size_t len);
/* The tlsgate_mode field of a user database: the same names in any case
 * (control panels and SQL columns often hold "REQUIRE"). Every part that
 * reads the field uses this, so that all of them agree. */
int tg_mode_field_parse(const char *s, size_t len);
const char *tg_mode_name(enum tg_mode mode);
int tg_verdict_parse(const char *s, size_t len);
const char *tg_verdict_name(enum tg_verdict verdict);

#endif

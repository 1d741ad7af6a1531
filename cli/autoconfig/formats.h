/*
 * autoconfig/formats - the files that tell mail clients how to reach a
 * domain's mail servers, with TLS only: the Mozilla autoconfig file
 * (config-v1.1.xml), the Microsoft Autodiscover POX response, an Apple
 * configuration profile (.mobileconfig, unsigned) and a DNS zone snippet
 * of RFC 6186 / RFC 8314 SRV records.
 *
 * Invariants: nothing but implicit TLS (IMAP, POP3, submission on 465) or
 * STARTTLS on submission port 587 is ever written; a service that is not
 * configured is left out of the XML files and published as "not offered"
 * (target ".") in the zone, and so are plaintext IMAP and POP3, always.
 * Host names and the domain have passed tg_dns_name_valid(); the display
 * name is escaped. Output is a pure function of the settings (the
 * profile's UUIDs are derived from the domain), so a rerun gives the same
 * bytes. Writers return 0, or -1 when the stream reports an error.
 */
#ifndef TLSGATE_AUTOCONFIG_FORMATS_H
#define TLSGATE_AUTOCONFIG_FORMATS_H

#include <stdio.h>

#include "config.h"

struct ac_settings {
	const char *domain;		/* lower-case DNS name */
	const char *name;		/* provider name shown to users */
	const struct tg_endpoint *imap;	/* host NULL: not published */
	const struct tg_endpoint *pop3;
	const struct tg_endpoint *submission;	/* 465 TLS, 587 STARTTLS */
	unsigned ttl;			/* of the SRV records */
};

/* The submission endpoint uses STARTTLS (port 587), not implicit TLS. */
int ac_submission_starttls(const struct ac_settings *s);

int ac_write_mozilla(FILE *out, const struct ac_settings *s);
int ac_write_autodiscover(FILE *out, const struct ac_settings *s);
int ac_write_mobileconfig(FILE *out, const struct ac_settings *s);
int ac_write_zone(FILE *out, const struct ac_settings *s);

/* A name-based (version 5) UUID of `name`, "xxxxxxxx-xxxx-...", for the
 * profile's payloads. buf holds at least 37 bytes. */
char *ac_uuid(const char *name, char *buf);

#endif

/*
 * probe/target - services and endpoint arguments. See target.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "target.h"

static const struct probe_service services[] = {
	{ "imap", PROBE_IMAP, PROBE_STARTTLS, 143 },
	{ "imaps", PROBE_IMAP, PROBE_IMPLICIT, 993 },
	{ "pop3", PROBE_POP3, PROBE_STARTTLS, 110 },
	{ "pop3s", PROBE_POP3, PROBE_IMPLICIT, 995 },
	{ "smtp", PROBE_SMTP, PROBE_STARTTLS, 25 },
	{ "submission", PROBE_SMTP, PROBE_STARTTLS, 587 },
	{ "smtps", PROBE_SMTP, PROBE_IMPLICIT, 465 },
	{ "sieve", PROBE_SIEVE, PROBE_STARTTLS, 4190 },
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

static const struct {
	const char *alias;
	const char *name;
} aliases[] = {
	{ "submissions", "smtps" },
	{ "managesieve", "sieve" },
};

const struct probe_service *probe_default_services(size_t *count_r)
{
	*count_r = NSERVICES;
	return services;
}

const struct probe_service *probe_service_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strlen(aliases[i].alias) == len &&
		    strncasecmp(aliases[i].alias, name, len) == 0) {
			name = aliases[i].name;
			len = strlen(name);
		}
	for (size_t i = 0; i < NSERVICES; i++)
		if (strlen(services[i].name) == len &&
		    strncasecmp(services[i].name, name, len) == 0)
			return &services[i];
	return NULL;
}

const struct probe_service *probe_service_by_port(unsigned port)
{
	for (size_t i = 0; i < NSERVICES; i++)
		if (services[i].port == port)
			return &services[i];
	return NULL;
}

const char *probe_proto_name(enum probe_proto proto)
{
	switch (proto) {
	case PROBE_IMAP: return "IMAP";
	case PROBE_POP3: return "POP3";
	case PROBE_SMTP: return "SMTP";
	case PROBE_SIEVE: return "ManageSieve";
	}
	return "?";
}

static int parse_port(const char *s, uint16_t *port, char *why, size_t why_size)
{
	unsigned long v = 0;

	if (*s == '\0') {
		snprintf(why, why_size, "empty port");
		return -1;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > 65535) {
			snprintf(why, why_size, "port must be a number 1-65535");
			return -1;
		}
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535) {
		snprintf(why, why_size, "port must be a number 1-65535");
		return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

static int set_host(struct probe_target *t, const char *s, size_t len,
		    char *why, size_t why_size)
{
	if (len == 0) {
		snprintf(why, why_size, "empty host");
		return -1;
	}
	if (len > PROBE_HOST_MAX) {
		snprintf(why, why_size, "host longer than %d characters",
			 PROBE_HOST_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '[' || c == ']') {
			snprintf(why, why_size, "invalid character in host");
			return -1;
		}
	}
	memcpy(t->host, s, len);
	t->host[len] = '\0';
	return 0;
}

int probe_target_parse(const char *spec, struct probe_target *t,
		       char *why, size_t why_size)
{
	const char *rest = spec;
	const char *sep = strstr(spec, "://");

	memset(t, 0, sizeof(*t));
	if (sep != NULL) {
		t->service = probe_service_by_name(spec, (size_t)(sep - spec));
		if (t->service == NULL) {
			snprintf(why, why_size,
				 "unknown service '%.*s' (imap, imaps, pop3, pop3s, "
				 "smtp, submission, smtps, sieve)",
				 (int)(sep - spec) > 32 ? 32 : (int)(sep - spec), spec);
			return -1;
		}
		rest = sep + 3;
	}
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (close == NULL) {
			snprintf(why, why_size, "missing ']' after IPv6 address");
			return -1;
		}
		if (set_host(t, rest + 1, (size_t)(close - rest - 1), why, why_size) < 0)
			return -1;
		if (close[1] == '\0')
			return 0;
		if (close[1] != ':') {
			snprintf(why, why_size, "expected ':PORT' after ']'");
			return -1;
		}
		t->has_port = true;
		return parse_port(close + 2, &t->port, why, why_size);
	}
	const char *colon = strchr(rest, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL)	/* bare IPv6 */
		return set_host(t, rest, strlen(rest), why, why_size);
	if (colon == NULL)
		return set_host(t, rest, strlen(rest), why, why_size);
	if (set_host(t, rest, (size_t)(colon - rest), why, why_size) < 0)
		return -1;
	t->has_port = true;
	return parse_port(colon + 1, &t->port, why, why_size);
}

/*
 * names - spellings of services, TLS versions, modes and verdicts.
 * See names.h.
 */
#include "names.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const service_names[TG_SERVICE_COUNT] = {
	"imap", "pop3", "smtp", "submission", "sieve",
};

static const char *const tls_names[] = {
	"none", "yes", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3",
};

static const char *const mode_names[] = { "off", "audit", "require" };
static const char *const verdict_names[] = { "allow", "exempt", "audit", "reject" };

/* Exact match of a counted string against a table of names. */
static int lookup(const char *const *table, int count, const char *s,
		  size_t len, int ignore_case)
{
	for (int i = 0; i < count; i++) {
		if (strlen(table[i]) != len)
			continue;
		if (ignore_case ? strncasecmp(table[i], s, len) == 0 :
				  memcmp(table[i], s, len) == 0)
			return i;
	}
	return -1;
}

int tg_service_parse(const char *s, size_t len)
{
	return lookup(service_names, TG_SERVICE_COUNT, s, len, 1);
}

const char *tg_service_name(enum tg_service service)
{
	return (unsigned)service < TG_SERVICE_COUNT ? service_names[service] : "?";
}

int tg_service_list_parse(const char *s, size_t len, uint8_t *mask,
			  char *why, size_t whylen)
{
	uint8_t seen = 0;
	size_t start = 0;

	if (len == 0) {
		snprintf(why, whylen, "empty protocol list");
		return -1;
	}
	while (start <= len) {
		size_t end = start;
		while (end < len && s[end] != ',')
			end++;
		if (end == start) {
			snprintf(why, whylen, "empty item in protocol list");
			return -1;
		}
		int svc = tg_service_parse(s + start, end - start);
		if (svc < 0) {
			snprintf(why, whylen,
				 "unknown protocol '%.*s' (known: imap, pop3, smtp, submission, sieve)",
				 (int)(end - start > 40 ? 40 : end - start), s + start);
			return -1;
		}
		if (seen & (1u << svc)) {
			snprintf(why, whylen, "protocol '%s' listed twice",
				 service_names[svc]);
			return -1;
		}
		seen |= (uint8_t)(1u << svc);
		start = end + 1;
	}
	*mask = seen;
	return 0;
}

char *tg_service_list_format(uint8_t mask, char *buf, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (int i = 0; i < TG_SERVICE_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		int n = snprintf(buf + used, size - used, "%s%s",
				 used ? "," : "", service_names[i]);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	return buf;
}

int tg_tls_version_parse(const char *s, size_t len)
{
	int v = lookup(tls_names, 6, s, len, 0);
	return v >= TG_TLS_V1_0 ? v : -1;
}

int tg_tls_parse(const char *s, size_t len)
{
	return lookup(tls_names, 6, s, len, 0);
}

const char *tg_tls_name(enum tg_tls tls)
{
	return (unsigned)tls <= TG_TLS_V1_3 ? tls_names[tls] : "?";
}

int tg_mode_parse(const char *s, size_t len)
{
	return lookup(mode_names, 3, s, len, 0);
}

int tg_mode_field_parse(const char *s, size_t len)
{
	return lookup(mode_names, 3, s, len, 1);
}

const char *tg_mode_name(enum tg_mode mode)
{
	return (unsigned)mode <= TG_MODE_REQUIRE ? mode_names[mode] : "?";
}

int tg_verdict_parse(const char *s, size_t len)
{
	return lookup(verdict_names, 4, s, len, 0);
}

const char *tg_verdict_name(enum tg_verdict verdict)
{
	return (unsigned)verdict <= TG_VERDICT_REJECT ? verdict_names[verdict] : "?";
}

/*
 * config - the tlsgate.conf parser. See config.h.
 *
 * Parsing fills a scratch config; only a file without errors replaces the
 * caller's, so a failed reload never leaves a mixed configuration.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "filetrust.h"
#include "text.h"

#define MAX_CONFIG_BYTES (1024 * 1024)

void tg_config_init(struct tg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_tls = true;
	cfg->failure = TG_FAILURE_TEMPFAIL;
	cfg->socket_mode = 0666;
	cfg->idle_timeout = 300;
	cfg->max_connections = 4096;
	cfg->userdb_cache_ttl = TG_USERDB_DEFAULT_TTL;
	cfg->userdb_cache_size = TG_USERDB_DEFAULT_CACHE_SIZE;
	cfg->userdb_timeout = TG_USERDB_DEFAULT_TIMEOUT;
	cfg->max_connections_per_peer = 1024;
}

void tg_config_free(struct tg_config *cfg)
{
	free(cfg->path);
	free(cfg->policy);
	free(cfg->message);
	for (size_t i = 0; i < cfg->listen_count; i++)
		free(cfg->listen[i]);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pidfile);
	free(cfg->socket_owner);
	free(cfg->socket_group);
	free(cfg->smtp_reply);
	free(cfg->autoconfig_imap.host);
	free(cfg->autoconfig_pop3.host);
	free(cfg->autoconfig_submission.host);
	free(cfg->autoconfig_name);
	free(cfg->userdb_socket);
	free(cfg->notify_domains);
	tg_config_init(cfg);
}

struct value {
	const char *s;
	size_t len;
};

typedef int setter_fn(struct tg_config *cfg, const struct value *v,
		      char *why, size_t whylen);

static int set_string(char **field, const struct value *v, char *why,
		      size_t whylen)
{
	if (v->len == 0) {
		snprintf(why, whylen, "empty value");
		return -1;
	}
	if (!tg_text_valid(v->s, v->len)) {
		snprintf(why, whylen, "not valid UTF-8 text (or has control characters)");
		return -1;
	}
	char *copy = strndup(v->s, v->len);
	if (copy == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	free(*field);
	*field = copy;
	return 0;
}

static int parse_bool(const struct value *v, bool *out, char *why, size_t whylen)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (int i = 0; i < 4; i++) {
		if (tg_ascii_caseeq(v->s, v->len, yes[i], strlen(yes[i]))) {
			*out = true;
			return 0;
		}
		if (tg_ascii_caseeq(v->s, v->len, no[i], strlen(no[i]))) {
			*out = false;
			return 0;
		}
	}
	snprintf(why, whylen, "expected yes or no");
	return -1;
}

static int parse_uint(const struct value *v, unsigned min, unsigned max,
		      int base, unsigned *out, char *why, size_t whylen)
{
	char buf[16];
	char *end;
	if (v->len == 0 || v->len >= sizeof(buf) || v->s[0] == '-' || v->s[0] == '+') {
		snprintf(why, whylen, "expected a number from %u to %u", min, max);
		return -1;
	}
	memcpy(buf, v->s, v->len);
	buf[v->len] = '\0';
	errno = 0;
	unsigned long n = strtoul(buf, &end, base);
	if (errno != 0 || *end != '\0' || n < min || n > max) {
		snprintf(why, whylen, base == 8 ? "expected an octal mode such as 0660" :
			 "expected a number from %u to %u", min, max);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* A duration: a number of seconds, or with a suffix s, m or h, from min
 * to max seconds. -1 without a message: the callers say what they take. */
static int parse_duration(const struct value *v, unsigned min, unsigned max,
			  unsigned *out)
{
	struct value num = *v;
	unsigned scale = 1;
	char ignored[80];
	if (num.len > 0) {
		switch (num.s[num.len - 1]) {
		case 's': scale = 1; num.len--; break;
		case 'm': scale = 60; num.len--; break;
		case 'h': scale = 3600; num.len--; break;
		}
	}
	unsigned n;
	if (parse_uint(&num, 0, max, 10, &n, ignored, sizeof(ignored)) < 0 ||
	    (uint64_t)n * scale > max || n * scale < min)
		return -1;
	*out = n * scale;
	return 0;
}

/* From 1s to 24h. */
static int parse_seconds(const struct value *v, unsigned *out, char *why,
			 size_t whylen)
{
	if (parse_duration(v, 1, 86400, out) < 0) {
		snprintf(why, whylen, "expected a duration from 1s to 24h (e.g. 300, 5m)");
		return -1;
	}
	return 0;
}

static int set_policy(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_string(&c->policy, v, w, n); }

/* Text of at most max bytes. */
static int set_text(char **field, const struct value *v, size_t max, char *w,
		    size_t n)
{
	if (v->len > max) {
		snprintf(w, n, "longer than %zu bytes", max);
		return -1;
	}
	return set_string(field, v, w, n);
}

static int set_message(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_text(&c->message, v, TG_CONFIG_MAX_MESSAGE, w, n); }

static int set_log_tls(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_bool(v, &c->log_tls, w, n); }

static int set_failure(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	if (tg_ascii_caseeq(v->s, v->len, "tempfail", 8))
		c->failure = TG_FAILURE_TEMPFAIL;
	else if (tg_ascii_caseeq(v->s, v->len, "allow", 5))
		c->failure = TG_FAILURE_ALLOW;
	else {
		snprintf(w, n, "expected tempfail or allow");
		return -1;
	}
	return 0;
}

static int set_listen(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	/* Several listeners: repeat the key or separate them by blanks. */
	size_t i = 0;
	while (i < v->len) {
		while (i < v->len && (v->s[i] == ' ' || v->s[i] == '\t' || v->s[i] == ','))
			i++;
		size_t start = i;
		while (i < v->len && v->s[i] != ' ' && v->s[i] != '\t' && v->s[i] != ',')
			i++;
		if (i == start)
			break;
		struct value one = { v->s + start, i - start };
		if (!(one.len > 5 && strncmp(one.s, "inet:", 5) == 0) &&
		    !(one.len > 5 && strncmp(one.s, "unix:", 5) == 0)) {
			snprintf(w, n, "expected inet:HOST:PORT or unix:PATH");
			return -1;
		}
		if (c->listen_count >= TG_CONFIG_MAX_LISTEN) {
			snprintf(w, n, "more than %d listeners", TG_CONFIG_MAX_LISTEN);
			return -1;
		}
		char *slot = NULL;
		if (set_string(&slot, &one, w, n) < 0)
			return -1;
		c->listen[c->listen_count++] = slot;
	}
	return 0;
}

static int set_trusted_proxies(struct tg_config *c, const struct value *v,
			       char *w, size_t n)
{
	/* Networks separated by blanks or commas; each ADDR or ADDR/PREFIX. */
	size_t i = 0;
	while (i < v->len) {
		while (i < v->len && (v->s[i] == ' ' || v->s[i] == '\t' || v->s[i] == ','))
			i++;
		size_t start = i;
		while (i < v->len && v->s[i] != ' ' && v->s[i] != '\t' && v->s[i] != ',')
			i++;
		if (i == start)
			break;
		if (c->trusted_proxy_count >= TG_CONFIG_MAX_PROXIES) {
			snprintf(w, n, "more than %d networks", TG_CONFIG_MAX_PROXIES);
			return -1;
		}
		char why[128];
		if (tg_net_parse(v->s + start, i - start,
				 &c->trusted_proxies[c->trusted_proxy_count],
				 why, sizeof(why)) < 0) {
			snprintf(w, n, "%s", why);
			return -1;
		}
		c->trusted_proxy_count++;
	}
	if (c->trusted_proxy_count == 0) {
		snprintf(w, n, "expected one or more networks (ADDR or ADDR/PREFIX)");
		return -1;
	}
	return 0;
}

static int set_user(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_string(&c->user, v, w, n); }
static int set_group(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_string(&c->group, v, w, n); }
static int set_pidfile(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_string(&c->pidfile, v, w, n); }
static int set_socket_owner(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_string(&c->socket_owner, v, w, n); }
static int set_socket_group(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_string(&c->socket_group, v, w, n); }
static int set_socket_mode(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_uint(v, 0, 0777, 8, &c->socket_mode, w, n); }

static int set_smtp_reply(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	/* "4XX" or "5XX", then an enhanced status code of the same class. */
	const char *s = v->s;
	if (v->len < 9 || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || s[3] != ' ' || s[4] != s[0] || s[5] != '.') {
		snprintf(w, n, "expected an SMTP reply code and enhanced status code, e.g. 530 5.7.0");
		return -1;
	}
	size_t i = 6;
	int dots = 0;
	for (; i < v->len; i++) {
		if (s[i] == '.')
			dots++;
		else if (s[i] < '0' || s[i] > '9')
			break;
	}
	if (i != v->len || dots != 1 || s[v->len - 1] == '.' || s[6] == '.') {
		snprintf(w, n, "expected an SMTP reply code and enhanced status code, e.g. 530 5.7.0");
		return -1;
	}
	return set_string(&c->smtp_reply, v, w, n);
}

static int set_unauthenticated(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	if (tg_ascii_caseeq(v->s, v->len, "dunno", 5))
		c->check_unauthenticated = false;
	else if (tg_ascii_caseeq(v->s, v->len, "check", 5))
		c->check_unauthenticated = true;
	else {
		snprintf(w, n, "expected dunno or check");
		return -1;
	}
	return 0;
}

static int set_idle_timeout(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_seconds(v, &c->idle_timeout, w, n); }
static int set_max_connections(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_uint(v, 1, 1000000, 10, &c->max_connections, w, n); }

/* "HOST" or "HOST:PORT": a DNS name (no address: clients check the
 * certificate against the name) and a port from 1 to 65535. */
static int set_endpoint(struct tg_endpoint *ep, const struct value *v,
			unsigned default_port, char *w, size_t n)
{
	const char *colon = memchr(v->s, ':', v->len);
	size_t host_len = colon ? (size_t)(colon - v->s) : v->len;
	if (!tg_dns_name_valid(v->s, host_len)) {
		snprintf(w, n, "expected a server name such as mail.example.net "
			 "(letters, digits, hyphens and dots; xn-- form for "
			 "international names)");
		return -1;
	}
	unsigned port = default_port;
	if (colon != NULL) {
		struct value p = { colon + 1, v->len - host_len - 1 };
		if (parse_uint(&p, 1, 65535, 10, &port, w, n) < 0) {
			snprintf(w, n, "expected HOST or HOST:PORT with a port from 1 to 65535");
			return -1;
		}
	}
	struct value host = { v->s, host_len };
	if (set_string(&ep->host, &host, w, n) < 0)
		return -1;
	ep->port = port;
	return 0;
}

static int set_autoconfig_imap(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_endpoint(&c->autoconfig_imap, v, 993, w, n); }
static int set_autoconfig_pop3(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_endpoint(&c->autoconfig_pop3, v, 995, w, n); }

static int set_autoconfig_submission(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	if (set_endpoint(&c->autoconfig_submission, v, 465, w, n) < 0)
		return -1;
	/* Only what RFC 8314 names: implicit TLS on 465, STARTTLS on 587. */
	if (c->autoconfig_submission.port != 465 && c->autoconfig_submission.port != 587) {
		snprintf(w, n, "expected port 465 (implicit TLS) or 587 (STARTTLS)");
		return -1;
	}
	return 0;
}

/* "dovecot:PATH", PATH absolute: the only account database spoken. */
static int set_userdb(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	static const char prefix[] = "dovecot:";
	size_t plen = sizeof(prefix) - 1;
	if (v->len <= plen || memcmp(v->s, prefix, plen) != 0 || v->s[plen] != '/') {
		snprintf(w, n, "expected dovecot:PATH with an absolute PATH to Dovecot's auth-userdb socket");
		return -1;
	}
	/* sun_path holds 108 bytes with its NUL */
	if (v->len - plen > 107) {
		snprintf(w, n, "socket path longer than 107 bytes");
		return -1;
	}
	struct value path = { v->s + plen, v->len - plen };
	return set_string(&c->userdb_socket, &path, w, n);
}

/* A duration from 0 (off) to max seconds, with an optional s/m/h suffix. */
static int parse_seconds_upto(const struct value *v, unsigned max, unsigned *out,
			      char *why, size_t whylen)
{
	if (parse_duration(v, 0, max, out) < 0) {
		snprintf(why, whylen, "expected a duration from 0 to %us (e.g. 60, 5m)", max);
		return -1;
	}
	return 0;
}

static int set_userdb_cache_ttl(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_seconds_upto(v, 86400, &c->userdb_cache_ttl, w, n); }
static int set_userdb_cache_size(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_uint(v, 0, TG_USERDB_MAX_CACHE_SIZE, 10, &c->userdb_cache_size, w, n); }

static int set_userdb_timeout(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	if (parse_seconds_upto(v, TG_USERDB_MAX_TIMEOUT, &c->userdb_timeout, w, n) < 0 ||
	    c->userdb_timeout == 0) {
		snprintf(w, n, "expected a duration from 1s to %ds", TG_USERDB_MAX_TIMEOUT);
		return -1;
	}
	return 0;
}

static int set_autoconfig_name(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return set_text(&c->autoconfig_name, v, TG_CONFIG_MAX_AUTOCONFIG_NAME, w, n); }

static int set_max_per_peer(struct tg_config *c, const struct value *v, char *w, size_t n)
{ return parse_uint(v, 1, 1000000, 10, &c->max_connections_per_peer, w, n); }

/* Domain names separated by blanks, each with an optional leading '@';
 * kept lower case, without '@', separated by single spaces. */
static int set_notify_domains(struct tg_config *c, const struct value *v, char *w, size_t n)
{
	char *out = malloc(v->len + 1);
	size_t o = 0;
	if (out == NULL) {
		snprintf(w, n, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < v->len;) {
		while (i < v->len && (v->s[i] == ' ' || v->s[i] == '\t'))
			i++;
		if (i < v->len && v->s[i] == '@')
			i++;
		size_t start = i;
		for (; i < v->len && v->s[i] != ' ' && v->s[i] != '\t'; i++) {
			char ch = tg_ascii_lower(v->s[i]);
			if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			      ch == '-' || ch == '.')) {
				snprintf(w, n, "expected domain names separated by spaces, e.g. example.com example.org");
				free(out);
				return -1;
			}
			if (i == start && o > 0)
				out[o++] = ' ';
			out[o++] = ch;
		}
	}
	out[o] = '\0';
	if (o == 0) {
		snprintf(w, n, "empty value");
		free(out);
		return -1;
	}
	free(c->notify_domains);
	c->notify_domains = out;
	return 0;
}

static const struct {
	const char *name;
	setter_fn *set;
	bool repeatable;
} keys[] = {
	{ "policy", set_policy, false },
	{ "message", set_message, false },
	{ "log_tls", set_log_tls, false },
	{ "failure", set_failure, false },
	{ "trusted_proxies", set_trusted_proxies, false },
	{ "listen", set_listen, true },
	{ "user", set_user, false },
	{ "group", set_group, false },
	{ "pidfile", set_pidfile, false },
	{ "socket_owner", set_socket_owner, false },
	{ "socket_group", set_socket_group, false },
	{ "socket_mode", set_socket_mode, false },
	{ "smtp_reply", set_smtp_reply, false },
	{ "unauthenticated", set_unauthenticated, false },
	{ "idle_timeout", set_idle_timeout, false },
	{ "max_connections", set_max_connections, false },
	{ "autoconfig_imap", set_autoconfig_imap, false },
	{ "autoconfig_pop3", set_autoconfig_pop3, false },
	{ "autoconfig_submission", set_autoconfig_submission, false },
	{ "autoconfig_name", set_autoconfig_name, false },
	{ "userdb", set_userdb, false },
	{ "userdb_cache_ttl", set_userdb_cache_ttl, false },
	{ "userdb_cache_size", set_userdb_cache_size, false },
	{ "userdb_timeout", set_userdb_timeout, false },
	{ "max_connections_per_peer", set_max_per_peer, false },
	{ "notify_domains", set_notify_domains, false },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits "key = value" (value possibly quoted) into key and value. */
static int split_line(const char *line, size_t len, struct value *key,
		      struct value *val, char *scratch, char *why, size_t whylen)
{
	size_t i = 0;
	while (i < len && is_blank(line[i]))
		i++;
	key->s = line + i;
	while (i < len && !is_blank(line[i]) && line[i] != '=')
		i++;
	key->len = (size_t)(line + i - key->s);
	while (i < len && is_blank(line[i]))
		i++;
	if (key->len == 0 || i >= len || line[i] != '=') {
		snprintf(why, whylen, "expected key = value");
		return -1;
	}
	i++;
	while (i < len && is_blank(line[i]))
		i++;
	if (i < len && line[i] == '"') {
		size_t n = 0;
		for (i++;; i++) {
			if (i >= len) {
				snprintf(why, whylen, "unterminated quoted value");
				return -1;
			}
			if (line[i] == '"')
				break;
			if (line[i] == '\\') {
				if (i + 1 >= len || (line[i + 1] != '"' && line[i + 1] != '\\')) {
					snprintf(why, whylen, "bad escape (only \\\" and \\\\ are allowed)");
					return -1;
				}
				i++;
			}
			scratch[n++] = line[i];
		}
		i++;
		while (i < len && is_blank(line[i]))
			i++;
		if (i < len && line[i] != '#') {
			snprintf(why, whylen, "text after the closing quote");
			return -1;
		}
		val->s = scratch;
		val->len = n;
		return 0;
	}
	val->s = line + i;
	/* A '#' after a blank starts a comment; trailing blanks go. */
	size_t end = i;
	for (size_t k = i; k < len; k++) {
		if (line[k] == '#' && k > i && is_blank(line[k - 1]))
			break;
		if (!is_blank(line[k]))
			end = k + 1;
	}
	val->len = end - i;
	return 0;
}

static char *resolve_policy_path(const char *config_name, const char *policy)
{
	if (policy[0] == '/' || strchr(config_name, '/') == NULL)
		return strdup(policy);
	const char *slash = strrchr(config_name, '/');
	char *joined;
	if (asprintf(&joined, "%.*s/%s", (int)(slash - config_name),
		     config_name, policy) < 0)
		return NULL;
	return joined;
}

int tg_config_parse(struct tg_config *cfg, const char *name,
		    const char *data, size_t len, struct tg_errors *errs)
{
	struct tg_config tmp;
	char scratch[TG_CONFIG_MAX_LINE + 1], why[256];
	unsigned char seen[NKEYS] = { 0 };
	size_t before = tg_errors_total(errs), pos = 0;
	unsigned lineno = 0;

	tg_config_init(&tmp);
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;
		pos += line_len + (nl != NULL);
		lineno++;
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		if (line_len > TG_CONFIG_MAX_LINE) {
			tg_errors_add(errs, name, lineno, "line longer than %d bytes", TG_CONFIG_MAX_LINE);
			continue;
		}
		if (memchr(line, '\0', line_len) != NULL) {
			tg_errors_add(errs, name, lineno, "NUL byte in line");
			continue;
		}
		size_t k = 0;
		while (k < line_len && is_blank(line[k]))
			k++;
		if (k == line_len || line[k] == '#')
			continue;

		struct value key, val;
		if (split_line(line, line_len, &key, &val, scratch, why, sizeof(why)) < 0) {
			tg_errors_add(errs, name, lineno, "%s", why);
			continue;
		}
		size_t idx = 0;
		while (idx < NKEYS && !(strlen(keys[idx].name) == key.len &&
					memcmp(keys[idx].name, key.s, key.len) == 0))
			idx++;
		if (idx == NKEYS) {
			char shown[60];
			tg_sanitize(key.s, key.len, 40, shown, sizeof(shown));
			tg_errors_add(errs, name, lineno, "unknown key '%s'", shown);
			continue;
		}
		if (seen[idx] && !keys[idx].repeatable) {
			tg_errors_add(errs, name, lineno, "%s given twice", keys[idx].name);
			continue;
		}
		seen[idx] = 1;
		if (keys[idx].set(&tmp, &val, why, sizeof(why)) < 0)
			tg_errors_add(errs, name, lineno, "%s: %s", keys[idx].name, why);
	}
	if (tg_errors_total(errs) == before && tmp.policy == NULL)
		tg_errors_add(errs, name, 0, "no policy = PATH given");
	if (tg_errors_total(errs) == before && tmp.policy != NULL) {
		char *resolved = resolve_policy_path(name, tmp.policy);
		if (resolved == NULL)
			tg_errors_add(errs, name, 0, "out of memory");
		free(tmp.policy);
		tmp.policy = resolved;
	}
	if (tg_errors_total(errs) == before && tmp.message == NULL &&
	    (tmp.message = strdup(TG_DEFAULT_MESSAGE)) == NULL)
		tg_errors_add(errs, name, 0, "out of memory");
	if (tg_errors_total(errs) == before &&
	    (tmp.path = strdup(name)) == NULL)
		tg_errors_add(errs, name, 0, "out of memory");
	if (tg_errors_total(errs) != before) {
		tg_config_free(&tmp);
		return -1;
	}
	tg_config_free(cfg);
	*cfg = tmp;
	return 0;
}

int tg_config_load(struct tg_config *cfg, const char *path,
		   struct tg_errors *errs)
{
	char *data, why[512];
	size_t len;
	struct stat st;

	if (tg_read_trusted(path, 0, MAX_CONFIG_BYTES, &data, &len, &st,
			    why, sizeof(why)) < 0) {
		tg_errors_add(errs, path, 0, "%s", why);
		return -1;
	}
	int r = tg_config_parse(cfg, path, data, len, errs);
	free(data);
	return r;
}

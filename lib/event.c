/*
 * event - writing and reading event lines. See event.h.
 */
#include "event.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "date.h"

static const char *const field_names[TG_EV_COUNT] = {
	"service", "user", "client", "tls", "verdict", "mode", "rule",
	"exemption", "enforce_from", "mech", "session", "brownout", "login",
	"imap_id_name", "imap_id_version", "helo", "client_name",
	"reverse_client_name", "client_port", "server_port",
};
#define REQUIRED_FIELDS 7	/* service .. rule */
/* strlen of field_names, so that parsing a key costs no strlen calls */
static const size_t field_lens[TG_EV_COUNT] = {
	7, 4, 6, 3, 7, 4, 4, 9, 12, 4, 7, 8, 5, 12, 15, 4, 11, 19, 11, 11,
};

const char *tg_event_field_name(enum tg_event_field field)
{
	return (unsigned)field < TG_EV_COUNT ? field_names[field] : "?";
}

/* Bytes written without quotes: printable ASCII but '"' and '\\'. */
static const bool plain[256] = {
	['!'] = 1, ['#' ... '['] = 1, [']' ... '~'] = 1,
};

static bool plain_byte(unsigned char c)
{
	return plain[c];
}

struct out {
	char *buf;
	size_t size, used;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->size - o->used <= n) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->used, s, n);
	o->used += n;
}

static void put_quoted(struct out *o, const char *v, size_t len, size_t max)
{
	size_t shown = len > max ? max : len;
	put(o, "\"", 1);
	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)v[i];
		char esc[5];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			static const char hex[] = "0123456789abcdef";
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			put(o, esc, 4);
		} else {
			put(o, (const char *)&v[i], 1);
		}
	}
	if (shown < len)
		put(o, "...", 3);
	put(o, "\"", 1);
}

/* Writes a value bare when it can be, in one pass over it; values over
 * max bytes are cut. */
static void put_value(struct out *o, const char *v, size_t max)
{
	size_t i = 0;
	char *dst = o->buf + o->used;
	size_t room = o->full ? 0 : o->size - o->used - 1;
	size_t limit = room < max ? room : max;

	while (i < limit && plain[(unsigned char)v[i]]) {
		dst[i] = v[i];
		i++;
	}
	if (v[i] == '\0' && i > 0) {
		o->used += i;
		return;
	}
	put_quoted(o, v, i + strlen(v + i), max);
}

int tg_event_format(const struct tg_event *ev, char *buf, size_t size)
{
	struct out o = { buf, size, 0, false };

	if (size < TG_EVENT_MAX_LINE)
		return -1;
	put(&o, TG_EVENT_TAG, strlen(TG_EVENT_TAG));
	bool first = true;
	for (int f = 0; f < TG_EV_COUNT; f++) {
		const char *v = ev->value[f];
		if (v == NULL) {
			if (f >= REQUIRED_FIELDS)
				continue;
			v = "";
		}
		if (!first)
			put(&o, " ", 1);
		first = false;
		put(&o, field_names[f], strlen(field_names[f]));
		put(&o, "=", 1);
		put_value(&o, v, tg_event_is_device_field((enum tg_event_field)f) ?
				 TG_EVENT_MAX_DEVICE_VALUE : TG_EVENT_MAX_VALUE);
	}
	/* 13 fields of at most 4 * 256 + 20 bytes and 7 device fields of at
	 * most 4 * 96 + 26 bytes always fit (unit test "worst line"). */
	buf[o.used] = '\0';
	return o.full ? -1 : (int)o.used;
}

void tg_event_from_decision(struct tg_event *ev, struct tg_event_texts *texts,
			    const struct tg_decision *d, const char *user,
			    enum tg_service service,
			    const struct tg_addr *client, enum tg_tls tls,
			    const char *mech, const char *session)
{
	memset(ev, 0, sizeof(*ev));
	ev->value[TG_EV_SERVICE] = tg_service_name(service);
	ev->value[TG_EV_USER] = user;
	if (client != NULL)
		ev->value[TG_EV_CLIENT] = tg_addr_format(client, texts->client,
							  sizeof(texts->client));
	else
		ev->value[TG_EV_CLIENT] = "unknown";
	ev->value[TG_EV_TLS] = tg_tls_name(tls);
	ev->value[TG_EV_VERDICT] = tg_verdict_name(d->verdict);
	ev->value[TG_EV_MODE] = tg_mode_name(d->mode);
	ev->value[TG_EV_RULE] = tg_rule_ref_format(&d->rule, texts->rule,
						   sizeof(texts->rule));
	if (d->exemption.file != NULL)
		ev->value[TG_EV_EXEMPTION] = tg_rule_ref_format(&d->exemption,
			texts->exemption, sizeof(texts->exemption));
	if (d->enforce_from != 0)
		ev->value[TG_EV_ENFORCE_FROM] = tg_date_format(d->enforce_from,
			texts->enforce_from, sizeof(texts->enforce_from));
	ev->value[TG_EV_MECH] = mech;
	ev->value[TG_EV_SESSION] = session;
	if (d->brownout && d->verdict == TG_VERDICT_REJECT)
		ev->value[TG_EV_BROWNOUT] = "yes";
}

static const char *port_text(unsigned port, char *buf, size_t size)
{
	if (port == 0 || port > 65535)
		return NULL;
	snprintf(buf, size, "%u", port);
	return buf;
}

void tg_event_set_ports(struct tg_event *ev, struct tg_event_texts *texts,
			unsigned client_port, unsigned server_port)
{
	ev->value[TG_EV_CLIENT_PORT] = port_text(client_port, texts->client_port,
						 sizeof(texts->client_port));
	ev->value[TG_EV_SERVER_PORT] = port_text(server_port, texts->server_port,
						 sizeof(texts->server_port));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Finds the tag followed by "service=". */
static const char *find_tag(const char *line, size_t len)
{
	static const char needle[] = TG_EVENT_TAG "service=";
	size_t n = sizeof(needle) - 1;
	const char *p = line, *end = line + len;
	while ((size_t)(end - p) >= n) {
		const char *t = memchr(p, 't', (size_t)(end - p) - n + 1);
		if (t == NULL)
			return NULL;
		if (memcmp(t, needle, n) == 0)
			return t;
		p = t + 1;
	}
	return NULL;
}

int tg_event_parse(const char *line, size_t len, struct tg_event_parsed *out)
{
	const char *tag = find_tag(line, len);
	if (tag == NULL)
		return -1;
	memset(&out->ev, 0, sizeof(out->ev));
	out->tag_offset = (size_t)(tag - line);

	const char *p = tag + strlen(TG_EVENT_TAG), *end = line + len;
	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	size_t used = 0;
	while (p < end) {
		const char *key = p;
		while (p < end && *p != '=' && *p != ' ')
			p++;
		if (p >= end || *p != '=' || p == key)
			return -1;
		size_t key_len = (size_t)(p - key);
		p++;
		char *value = out->storage + used;
		size_t n = 0;
		if (p < end && *p == '"') {
			p++;
			for (;;) {
				if (p >= end)
					return -1;
				char c = *p++;
				if (c == '"')
					break;
				if (c == '\\') {
					if (p >= end)
						return -1;
					c = *p++;
					if (c == 'x') {
						if (end - p < 2 || hexval(p[0]) < 0 || hexval(p[1]) < 0)
							return -1;
						c = (char)(hexval(p[0]) * 16 + hexval(p[1]));
						p += 2;
					} else if (c != '"' && c != '\\') {
						return -1;
					}
				}
				if (used + n + 1 >= sizeof(out->storage))
					return -1;
				value[n++] = c;
			}
		} else {
			while (p < end && *p != ' ') {
				if (!plain_byte((unsigned char)*p))
					return -1;
				if (used + n + 1 >= sizeof(out->storage))
					return -1;
				value[n++] = *p++;
			}
		}
		value[n] = '\0';
		used += n + 1;
		if (p < end) {
			if (*p != ' ')
				return -1;
			p++;
		}
		for (int f = 0; f < TG_EV_COUNT; f++) {
			if (field_lens[f] == key_len && field_names[f][0] == key[0] &&
			    memcmp(field_names[f], key, key_len) == 0) {
				if (out->ev.value[f] != NULL)
					return -1;
				out->ev.value[f] = value;
				out->ev.len[f] = n;
				break;
			}
		}
	}
	for (int f = 0; f < REQUIRED_FIELDS; f++)
		if (out->ev.value[f] == NULL)
			return -1;
	return 0;
}

/*
 * event - the one event line that the Dovecot module and tlsgate-policyd
 * write for each decision, and that `tlsgate report` reads back. The format
 * is a stable interface (docs/events.md):
 *
 *   tlsgate: service=imap user=alice@example.com client=192.0.2.7 tls=none
 *            verdict=reject mode=require rule=/etc/tlsgate/policy.d/a.conf:3
 *            [exemption=FILE:LINE] [enforce_from=YYYY-MM-DD] [mech=PLAIN]
 *            [session=ID] [brownout=yes] [login=NAME]
 *            [imap_id_name=..] [imap_id_version=..] [helo=..]
 *            [client_name=..] [reverse_client_name=..] [client_port=N]
 *            [server_port=N]
 *
 * (one line). A value that is empty or holds anything but printable ASCII
 * other than '"' and '\' is written in double quotes, with \" \\ and \xHH
 * escapes, so that no value can start a field, a line or a terminal
 * sequence. Values over TG_EVENT_MAX_VALUE bytes are cut and end in "...".
 * The device fields (imap_id_name .. server_port) are what the client or
 * its DNS says about itself: shown to people, never decided on; they are
 * cut at TG_EVENT_MAX_DEVICE_VALUE bytes, so that a line with every field
 * at its worst still fits TG_EVENT_MAX_LINE.
 * Readers ignore keys they do not know.
 */
#ifndef TLSGATE_EVENT_H
#define TLSGATE_EVENT_H

#include <stddef.h>

#include "decide.h"

#define TG_EVENT_TAG "tlsgate: "
#define TG_EVENT_MAX_VALUE 256
#define TG_EVENT_MAX_LINE 16384
#define TG_EVENT_MAX_DEVICE_VALUE 96

enum tg_event_field {
	TG_EV_SERVICE,
	TG_EV_USER,
	TG_EV_CLIENT,
	TG_EV_TLS,
	TG_EV_VERDICT,
	TG_EV_MODE,
	TG_EV_RULE,
	TG_EV_EXEMPTION,
	TG_EV_ENFORCE_FROM,
	TG_EV_MECH,
	TG_EV_SESSION,
	TG_EV_BROWNOUT,		/* "yes": refused in a brownout window */
	TG_EV_LOGIN,		/* the name as typed, when not the account's */
	/* The device, as it names itself (client-supplied, never decided on): */
	TG_EV_IMAP_ID_NAME,	/* IMAP ID "name" (Dovecot, imap_id_retain) */
	TG_EV_IMAP_ID_VERSION,	/* IMAP ID "version" */
	TG_EV_HELO,		/* Postfix: helo_name (EHLO/HELO argument) */
	TG_EV_CLIENT_NAME,	/* Postfix: client_name (verified DNS name) */
	TG_EV_REVERSE_CLIENT_NAME, /* Postfix: reverse_client_name (PTR) */
	TG_EV_CLIENT_PORT,	/* the client's TCP port */
	TG_EV_SERVER_PORT,	/* the server port it connected to */
	TG_EV_COUNT
};

/* Field values; NULL = not present (the first seven are always written). */
struct tg_event {
	const char *value[TG_EV_COUNT];
	size_t len[TG_EV_COUNT];	/* set by the parser */
};

const char *tg_event_field_name(enum tg_event_field field);

/* Writes the event line (without newline) into buf; returns its length,
 * or -1 if buf is smaller than TG_EVENT_MAX_LINE. */
int tg_event_format(const struct tg_event *ev, char *buf, size_t size);

/* Storage for the texts an event built from a decision points to. */
struct tg_event_texts {
	char client[TG_ADDR_STRLEN];
	char client_port[8];
	char server_port[8];
	char rule[600];
	char exemption[600];
	char enforce_from[16];
};

/* Fills ev from a decision. client: NULL means "unknown". mech and
 * session may be NULL. */
void tg_event_from_decision(struct tg_event *ev, struct tg_event_texts *texts,
			    const struct tg_decision *d, const char *user,
			    enum tg_service service,
			    const struct tg_addr *client, enum tg_tls tls,
			    const char *mech, const char *session);

/* Sets client_port / server_port from port numbers (0: unknown, not
 * written), with their text in texts. */
void tg_event_set_ports(struct tg_event *ev, struct tg_event_texts *texts,
			unsigned client_port, unsigned server_port);

/* Whether a field is one of the device fields (cut shorter, see above). */
static inline int tg_event_is_device_field(enum tg_event_field field)
{
	return field >= TG_EV_IMAP_ID_NAME && field < TG_EV_COUNT;
}

/* A parsed line: values point into `storage` (unescaped, NUL-terminated). */
struct tg_event_parsed {
	struct tg_event ev;
	size_t tag_offset;	/* where "tlsgate: " starts in the line */
	char storage[TG_EVENT_MAX_LINE];
};

/* Finds and parses an event in a log line (anything before the tag is the
 * log's prefix). Returns 0, or -1 when the line holds no well-formed event
 * (no tag, bad escape, duplicate key, a required field missing). */
int tg_event_parse(const char *line, size_t len, struct tg_event_parsed *out);

#endif

/*
 * origin - which log lines are events that tlsgate wrote, and which event
 * values are plausible, for `tlsgate report` and `tlsgate notify`.
 *
 * Anyone who can send mail or try a login can put the event tag into a log
 * line (a Message-ID that Postfix's cleanup logs, a login name that
 * Dovecot's auth_verbose logs). So an event counts only when the tag opens
 * the message part of a line written by Dovecot's auth process or by
 * tlsgate-policyd (docs/events.md, "Reading rules"):
 *
 *   [STAMP [HOST] ] dovecot[[PID]]: auth: [Info: ]TAG      syslog, journal
 *   STAMP auth: [Info: ]TAG                                Dovecot log_path
 *   [STAMP [HOST] ] tlsgate-policyd[[PID]]: [info: ]TAG   syslog, journal, -f
 *   TAG                                                   journalctl -o cat
 *
 * STAMP is a syslog ("Mon DD HH:MM:SS[.frac]") or RFC 3339 / ISO
 * ("YYYY-MM-DD[T ]HH:MM:SS[.frac][zone]") timestamp. Anything else that
 * holds the tag is "foreign": not an event, counted apart from malformed
 * events.
 *
 * Plausible values: `client` is an IP address or `unknown`; `user` is
 * 1..ORIGIN_MAX_USER bytes of valid UTF-8 without spaces, quotes,
 * backslashes, angle brackets, control or bidirectional-formatting
 * characters.
 *
 * Pure functions over caller buffers; no errors beyond the return values.
 */
#ifndef TLSGATE_ORIGIN_H
#define TLSGATE_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"

#define ORIGIN_MAX_USER 255

enum origin_kind {
	ORIGIN_NONE,		/* no tag in the line */
	ORIGIN_FOREIGN,		/* a tag, but not where tlsgate writes it */
	ORIGIN_OURS,		/* the tag opens a Dovecot auth or policyd message */
};

/* Classifies line[0..len); for ORIGIN_OURS sets *tag_off to the tag. */
enum origin_kind origin_classify(const char *line, size_t len, size_t *tag_off);

/* Length of the timestamp that opens line (0 when there is none). */
size_t origin_stamp_len(const char *line, size_t len);

bool origin_user_plausible(const char *s, size_t len);
bool origin_client_plausible(const char *s, size_t len);
/* Both of the above for a parsed event. */
bool origin_event_plausible(const struct tg_event *ev);

/* True for the UTF-8 encoding at s[0..len) of a bidirectional formatting
 * character (U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069); sets *n to
 * its length. */
bool origin_is_bidi(const char *s, size_t len, size_t *n);

#endif

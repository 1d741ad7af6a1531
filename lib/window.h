/*
 * window - brownout windows: short spans of time before a require rule's
 * from= date (or within an audit rule) in which plaintext is refused as a
 * test, written "START/DURATION[,START/DURATION...]".
 *
 * START is YYYY-MM-DD (midnight) or YYYY-MM-DDTHH:MM[:SS], in the local
 * time zone unless followed by Z or an offset +HH:MM / -HH:MM. DURATION is
 * a number with s, m, h or d, from 1s to TG_WINDOW_MAX_SECONDS. A window
 * is [start, start + duration): it begins at START and ends just before
 * the end time. tg_windows_parse() returns the windows sorted by start,
 * or -1 with `why` for a malformed item, too many windows or two that
 * overlap. It never allocates.
 */
#ifndef TLSGATE_WINDOW_H
#define TLSGATE_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_WINDOW_MAX 16
#define TG_WINDOW_MAX_SECONDS (30 * 86400)

struct tg_window {
	int64_t start;		/* seconds since the epoch */
	int64_t end;		/* first second after the window */
};

int tg_windows_parse(const char *s, size_t len, struct tg_window *out,
		     size_t *count, char *why, size_t whylen);

/* The window of w[0..n) that holds `now`, or NULL. */
const struct tg_window *tg_window_at(const struct tg_window *w, size_t n,
				     int64_t now);

/* Parses one point in time as START above (also used by explain --at). */
int tg_time_parse(const char *s, size_t len, int64_t *when);

/* "YYYY-MM-DD HH:MM" in local time; returns buf. */
char *tg_time_format(int64_t when, char *buf, size_t size);

#endif

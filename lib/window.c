/*
 * window - brownout windows. See window.h.
 */
#include "window.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "date.h"

static int two_digits(const char *s, int max)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	int v = (s[0] - '0') * 10 + (s[1] - '0');
	return v > max ? -1 : v;
}

/* Offset "Z", "+HH:MM" or "-HH:MM" in seconds east of UTC. */
static int parse_offset(const char *s, size_t len, long *offset)
{
	if (len == 1 && s[0] == 'Z') {
		*offset = 0;
		return 0;
	}
	if (len != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
		return -1;
	int h = two_digits(s + 1, 23), m = two_digits(s + 4, 59);
	if (h < 0 || m < 0)
		return -1;
	*offset = (s[0] == '-' ? -1L : 1L) * (h * 3600L + m * 60L);
	return 0;
}

int tg_time_parse(const char *s, size_t len, int64_t *when)
{
	int32_t day;
	if (len < TG_DATE_STRLEN - 1 || tg_date_parse(s, TG_DATE_STRLEN - 1, &day) < 0)
		return -1;
	struct tm tm = {
		.tm_year = day / 10000 - 1900,
		.tm_mon = day / 100 % 100 - 1,
		.tm_mday = day % 100,
		.tm_isdst = -1,
	};
	size_t pos = TG_DATE_STRLEN - 1;
	if (pos < len && s[pos] == 'T') {
		if (len < pos + 6 || s[pos + 3] != ':')
			return -1;
		tm.tm_hour = two_digits(s + pos + 1, 23);
		tm.tm_min = two_digits(s + pos + 4, 59);
		pos += 6;
		if (pos < len && s[pos] == ':') {
			if (len < pos + 3)
				return -1;
			tm.tm_sec = two_digits(s + pos + 1, 59);
			pos += 3;
		}
		if (tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
			return -1;
	}
	if (pos < len) {
		long offset;
		if (parse_offset(s + pos, len - pos, &offset) < 0)
			return -1;
		*when = (int64_t)timegm(&tm) - offset;
		return 0;
	}
	struct tm want = tm;
	time_t t = mktime(&tm);
	/* A local time skipped by a clock change does not exist. */
	if (t == (time_t)-1 || tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min ||
	    tm.tm_mday != want.tm_mday)
		return -1;
	*when = (int64_t)t;
	return 0;
}

static int parse_duration(const char *s, size_t len, int64_t *seconds)
{
	if (len < 2 || len > 10)
		return -1;
	int64_t n = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	switch (s[len - 1]) {
	case 's': break;
	case 'm': n *= 60; break;
	case 'h': n *= 3600; break;
	case 'd': n *= 86400; break;
	default: return -1;
	}
	if (n < 1 || n > TG_WINDOW_MAX_SECONDS)
		return -1;
	*seconds = n;
	return 0;
}

static void shown(const char *s, size_t len, char *buf, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 4 < size; i++)
		buf[o++] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (o + 4 >= size && len > o) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

int tg_windows_parse(const char *s, size_t len, struct tg_window *out,
		     size_t *count, char *why, size_t whylen)
{
	size_t n = 0, start = 0;
	char item[48];

	while (start <= len) {
		size_t end = start;
		while (end < len && s[end] != ',')
			end++;
		const char *it = s + start;
		size_t it_len = end - start;
		const char *slash = memchr(it, '/', it_len);
		shown(it, it_len, item, sizeof(item));
		if (it_len == 0) {
			snprintf(why, whylen, "empty item in the window list");
			return -1;
		}
		if (n == TG_WINDOW_MAX) {
			snprintf(why, whylen, "more than %d windows", TG_WINDOW_MAX);
			return -1;
		}
		int64_t at, dur;
		if (slash == NULL || tg_time_parse(it, (size_t)(slash - it), &at) < 0) {
			snprintf(why, whylen, "'%s': expected START/DURATION, START as "
				 "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]", item);
			return -1;
		}
		if (parse_duration(slash + 1, it_len - (size_t)(slash + 1 - it), &dur) < 0) {
			snprintf(why, whylen, "'%s': the duration is a number with s, m, h "
				 "or d, from 1s to %dd", item, TG_WINDOW_MAX_SECONDS / 86400);
			return -1;
		}
		/* insertion keeps them sorted */
		size_t k = n;
		while (k > 0 && out[k - 1].start > at) {
			out[k] = out[k - 1];
			k--;
		}
		out[k] = (struct tg_window){ at, at + dur };
		n++;
		start = end + 1;
	}
	for (size_t i = 1; i < n; i++) {
		if (out[i].start < out[i - 1].end) {
			char a[32], b[32];
			tg_time_format(out[i - 1].start, a, sizeof(a));
			tg_time_format(out[i].start, b, sizeof(b));
			snprintf(why, whylen, "the windows starting %s and %s overlap", a, b);
			return -1;
		}
	}
	*count = n;
	return 0;
}

const struct tg_window *tg_window_at(const struct tg_window *w, size_t n,
				     int64_t now)
{
	for (size_t i = 0; i < n; i++)
		if (now >= w[i].start && now < w[i].end)
			return &w[i];
	return NULL;
}

char *tg_time_format(int64_t when, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)when;
	if (localtime_r(&t, &tm) == NULL)
		snprintf(buf, size, "?");
	else
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
	return buf;
}

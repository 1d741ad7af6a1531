/*
 * origin - event lines tlsgate wrote, and plausible values. See origin.h.
 */
#include "origin.h"

#include <string.h>

#include "netaddr.h"
#include "text.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t skip_digits(const char *s, size_t len, size_t i)
{
	while (i < len && is_digit(s[i]))
		i++;
	return i;
}

/* "Mon DD HH:MM:SS" (DD may be " D"), then an optional fraction. */
static size_t syslog_stamp_len(const char *p, size_t len)
{
	if (len < 15 || p[0] < 'A' || p[0] > 'Z' || p[3] != ' ' || p[6] != ' ' ||
	    p[9] != ':' || p[12] != ':')
		return 0;
	if (!is_digit(p[5]) || !is_digit(p[7]) || !is_digit(p[8]) ||
	    !is_digit(p[10]) || !is_digit(p[11]) || !is_digit(p[13]) || !is_digit(p[14]))
		return 0;
	size_t i = 15;
	if (i + 1 < len && p[i] == '.' && is_digit(p[i + 1]))
		i = skip_digits(p, len, i + 1);
	return i;
}

/* "YYYY-MM-DD[T ]HH:MM:SS", an optional fraction and zone. */
static size_t iso_stamp_len(const char *p, size_t len)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	if (len < 19)
		return 0;
	for (size_t i = 0; i < 19; i++) {
		if (shape[i] == 'd' ? !is_digit(p[i]) :
		    shape[i] == 'T' ? (p[i] != 'T' && p[i] != ' ') : p[i] != shape[i])
			return 0;
	}
	size_t i = 19;
	if (i + 1 < len && (p[i] == '.' || p[i] == ',') && is_digit(p[i + 1]))
		i = skip_digits(p, len, i + 1);
	if (i < len && p[i] == 'Z')
		return i + 1;
	if (i + 5 <= len && (p[i] == '+' || p[i] == '-')) {
		size_t j = skip_digits(p, len, i + 1);
		if (j == i + 5)
			return j;	/* +HHMM */
		if (j == i + 3 && j + 3 <= len && p[j] == ':' && is_digit(p[j + 1]) &&
		    is_digit(p[j + 2]))
			return j + 3;	/* +HH:MM */
	}
	return i;
}

size_t origin_stamp_len(const char *line, size_t len)
{
	size_t n = syslog_stamp_len(line, len);
	return n ? n : iso_stamp_len(line, len);
}

static bool starts(const char *p, size_t len, const char *word, size_t *used)
{
	size_t n = strlen(word);
	if (len < n || memcmp(p, word, n) != 0)
		return false;
	*used = n;
	return true;
}

/* NAME or NAME[PID], then ": ". */
static bool program(const char *p, size_t len, const char *name, size_t *used)
{
	size_t i;
	if (!starts(p, len, name, &i))
		return false;
	if (i < len && p[i] == '[') {
		size_t j = skip_digits(p, len, i + 1);
		if (j == i + 1 || j >= len || p[j] != ']')
			return false;
		i = j + 1;
	}
	if (i + 2 > len || p[i] != ':' || p[i + 1] != ' ')
		return false;
	*used = i + 2;
	return true;
}

static bool tag_at(const char *p, size_t len)
{
	return len >= sizeof(TG_EVENT_TAG) - 1 &&
	       memcmp(p, TG_EVENT_TAG, sizeof(TG_EVENT_TAG) - 1) == 0;
}

/* "auth: [Info: ]" */
static bool dovecot_auth(const char *p, size_t len, size_t *used)
{
	size_t i, j;
	if (!starts(p, len, "auth: ", &i))
		return false;
	if (starts(p + i, len - i, "Info: ", &j))
		i += j;
	*used = i;
	return true;
}

/* The message part from p on: returns the tag offset when one of the
 * origins opens it with the tag right after, else (size_t)-1. */
static size_t origin_at(const char *p, size_t len)
{
	size_t i = 0, n;
	if (program(p, len, "dovecot", &n)) {
		if (!dovecot_auth(p + n, len - n, &i))
			return (size_t)-1;
		i += n;
	} else if (dovecot_auth(p, len, &n)) {
		i = n;
	} else if (program(p, len, "tlsgate-policyd", &n)) {
		i = n;
		/* -f output (stderr) kept by the journal repeats the name */
		if (program(p + i, len - i, "tlsgate-policyd", &n))
			i += n;
		if (starts(p + i, len - i, "info: ", &n))
			i += n;
	} else {
		return (size_t)-1;
	}
	return tag_at(p + i, len - i) ? i : (size_t)-1;
}

enum origin_kind origin_classify(const char *line, size_t len, size_t *tag_off)
{
	static const char needle[] = TG_EVENT_TAG "service=";
	if (memmem(line, len, needle, sizeof(needle) - 1) == NULL)
		return ORIGIN_NONE;
	if (tag_at(line, len)) {
		*tag_off = 0;
		return ORIGIN_OURS;
	}
	size_t start = 0, off;
	size_t stamp = origin_stamp_len(line, len);
	if (stamp > 0) {
		if (stamp >= len || line[stamp] != ' ')
			return ORIGIN_FOREIGN;
		start = stamp + 1;
	}
	off = origin_at(line + start, len - start);
	if (off == (size_t)-1 && stamp > 0) {
		/* a host name between the timestamp and the program */
		const char *sp = memchr(line + start, ' ', len - start);
		if (sp != NULL && sp > line + start) {
			start = (size_t)(sp - line) + 1;
			off = origin_at(line + start, len - start);
		}
	}
	if (off == (size_t)-1)
		return ORIGIN_FOREIGN;
	*tag_off = start + off;
	return ORIGIN_OURS;
}

bool origin_is_bidi(const char *s, size_t len, size_t *n)
{
	const unsigned char *u = (const unsigned char *)s;
	if (len >= 2 && u[0] == 0xd8 && u[1] == 0x9c) {		/* U+061C */
		*n = 2;
		return true;
	}
	if (len < 3 || u[0] != 0xe2)
		return false;
	*n = 3;
	if (u[1] == 0x80)	/* U+200E, U+200F, U+202A..U+202E */
		return u[2] == 0x8e || u[2] == 0x8f || (u[2] >= 0xaa && u[2] <= 0xae);
	if (u[1] == 0x81)	/* U+2066..U+2069 */
		return u[2] >= 0xa6 && u[2] <= 0xa9;
	return false;
}

bool origin_user_plausible(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > ORIGIN_MAX_USER || !tg_text_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		size_t n;
		char c = s[i];
		if (c == ' ' || c == '"' || c == '\'' || c == '\\' || c == '<' || c == '>')
			return false;
		if (origin_is_bidi(s + i, len - i, &n))
			return false;
	}
	return true;
}

bool origin_client_plausible(const char *s, size_t len)
{
	struct tg_addr addr;
	if (s == NULL)
		return false;
	if (len == 7 && memcmp(s, "unknown", 7) == 0)
		return true;
	return tg_addr_parse(s, len, &addr) == 0;
}

bool origin_event_plausible(const struct tg_event *ev)
{
	return origin_user_plausible(ev->value[TG_EV_USER], ev->len[TG_EV_USER]) &&
	       origin_client_plausible(ev->value[TG_EV_CLIENT], ev->len[TG_EV_CLIENT]);
}

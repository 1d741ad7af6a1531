/*
 * outfmt - safe output of untrusted text. See outfmt.h.
 */
#include "outfmt.h"

#include <string.h>
#include <time.h>

#include "names.h"
#include "origin.h"
#include "tally.h"

char *outfmt_text(const char *s, size_t max, char *buf, size_t size)
{
	size_t n = 0, len = strlen(s);
	if (size == 0)
		return buf;
	for (size_t i = 0; i < len && n + 1 < size; i++) {
		if (i >= max && len > max) {
			for (int k = 0; k < 3 && n + 1 < size; k++)
				buf[n++] = '.';
			break;
		}
		unsigned char c = (unsigned char)s[i];
		buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[n] = '\0';
	return buf;
}

size_t outfmt_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* What one ASCII byte becomes in an output form; NULL: itself. */
typedef const char *escape_fn(unsigned char c, char buf[8]);

/* The code point of a well-formed UTF-8 sequence of n bytes. */
static uint32_t code_point(const unsigned char *p, size_t n)
{
	uint32_t cp = n == 1 ? p[0] : n == 2 ? (p[0] & 0x1fu) : n == 3 ? (p[0] & 0x0fu) : (p[0] & 0x07u);
	for (size_t i = 1; i < n; i++)
		cp = (cp << 6) | (p[i] & 0x3fu);
	return cp;
}

/* Writes s with ASCII bytes passed through `escape`, well-formed UTF-8
 * sequences as they are, except bidirectional formatting characters
 * (U+202E and friends, which would reorder what a reader sees), written
 * as "\uXXXX" (bidi_json) or "[U+XXXX]"; each byte of a broken sequence as
 * `invalid` (NULL: the byte itself). */
static void put_escaped(FILE *out, const char *s, escape_fn *escape,
			const char *invalid, bool bidi_json)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	char buf[8];

	for (size_t i = 0; i < len;) {
		if (p[i] < 0x80) {
			const char *e = escape(p[i], buf);
			if (e != NULL)
				fputs(e, out);
			else
				putc(p[i], out);
			i++;
			continue;
		}
		size_t n = outfmt_utf8_len(p + i, len - i), bn;
		if (n == 0) {
			if (invalid != NULL)
				fputs(invalid, out);
			else
				putc(p[i], out);
			i++;
		} else if (origin_is_bidi((const char *)p + i, n, &bn)) {
			if (bidi_json)
				fprintf(out, "\\u%04x", (unsigned)code_point(p + i, n));
			else
				fprintf(out, "[U+%04X]", (unsigned)code_point(p + i, n));
			i += n;
		} else {
			fwrite(p + i, 1, n, out);
			i += n;
		}
	}
}

static const char *json_escape(unsigned char c, char buf[8])
{
	if (c == '"')
		return "\\\"";
	if (c == '\\')
		return "\\\\";
	if (c < 0x20 || c == 0x7f) {
		snprintf(buf, 8, "\\u%04x", c);
		return buf;
	}
	return NULL;
}

void outfmt_json_string(FILE *out, const char *s)
{
	putc('"', out);
	put_escaped(out, s, json_escape, "\\ufffd", true);
	putc('"', out);
}

static const char *csv_escape(unsigned char c, char buf[8])
{
	if (c == '"')
		return "\"\"";
	return c < 0x20 || c == 0x7f ? "?" : NULL;
}

void outfmt_csv_field(FILE *out, const char *s)
{
	putc('"', out);
	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')
		putc('\'', out);
	put_escaped(out, s, csv_escape, NULL, false);
	putc('"', out);
}

static const char *html_escape(unsigned char c, char buf[8])
{
	switch (c) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&#39;";
	}
	return c < 0x20 || c == 0x7f ? "?" : NULL;
}

void outfmt_html(FILE *out, const char *s)
{
	put_escaped(out, s, html_escape, "&#xfffd;", false);
}

char *outfmt_time_text(int64_t when, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)when;
	if (when == TALLY_NO_TIME || localtime_r(&t, &tm) == NULL)
		snprintf(buf, size, "-");
	else
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
	return buf;
}

char *outfmt_time_iso(int64_t when, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)when;
	char zone[8];
	if (when == TALLY_NO_TIME || localtime_r(&t, &tm) == NULL) {
		snprintf(buf, size, "%s", "");
		return buf;
	}
	strftime(zone, sizeof(zone), "%z", &tm);	/* +0100 */
	char day[32];
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s%.3s:%.2s", day, zone, zone + 3);
	return buf;
}

char *outfmt_services(uint8_t mask, char *buf, size_t size)
{
	if (mask == 0)
		snprintf(buf, size, "-");
	else
		tg_service_list_format(mask, buf, size);
	return buf;
}

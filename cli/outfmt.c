/*
 * outfmt - safe output of untrusted text. See outfmt.h.
 */
#include "outfmt.h"

#include <string.h>
#include <time.h>

#include "names.h"
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

void outfmt_json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	putc('"', out);
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			putc('\\', out);
			putc(c, out);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			putc(c, out);
			i++;
		} else {
			size_t n = outfmt_utf8_len(p + i, len - i);
			if (n == 0) {
				fputs("\\ufffd", out);
				i++;
			} else {
				fwrite(p + i, 1, n, out);
				i += n;
			}
		}
	}
	putc('"', out);
}

void outfmt_csv_field(FILE *out, const char *s)
{
	putc('"', out);
	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')
		putc('\'', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"')
			fputs("\"\"", out);
		else if (*p < 0x20 || *p == 0x7f)
			putc('?', out);
		else
			putc(*p, out);
	}
	putc('"', out);
}

void outfmt_html(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		switch (c) {
		case '&': fputs("&amp;", out); i++; continue;
		case '<': fputs("&lt;", out); i++; continue;
		case '>': fputs("&gt;", out); i++; continue;
		case '"': fputs("&quot;", out); i++; continue;
		case '\'': fputs("&#39;", out); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			putc('?', out);
			i++;
		} else if (c < 0x80) {
			putc(c, out);
			i++;
		} else {
			size_t n = outfmt_utf8_len(p + i, len - i);
			if (n == 0) {
				fputs("&#xfffd;", out);
				i++;
			} else {
				fwrite(p + i, 1, n, out);
				i += n;
			}
		}
	}
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

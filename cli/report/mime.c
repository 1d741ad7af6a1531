/*
 * mime - message building blocks. See mime.h.
 */
#include "mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "outfmt.h"

void mime_buf_init(struct mime_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void mime_buf_free(struct mime_buf *b)
{
	free(b->data);
	mime_buf_init(b);
}

void mime_buf_add(struct mime_buf *b, const char *s, size_t len)
{
	if (b->failed)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 1024;
		while (ncap < b->len + len + 1)
			ncap *= 2;
		char *n = realloc(b->data, ncap);
		if (n == NULL) {
			b->failed = true;
			return;
		}
		b->data = n;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void mime_buf_adds(struct mime_buf *b, const char *s)
{
	mime_buf_add(b, s, strlen(s));
}

int mime_buf_crlf(const struct mime_buf *in, struct mime_buf *out)
{
	mime_buf_init(out);
	size_t start = 0;
	for (size_t i = 0; i < in->len; i++) {
		if (in->data[i] == '\n') {
			mime_buf_add(out, in->data + start, i - start);
			mime_buf_add(out, "\r\n", 2);
			start = i + 1;
		}
	}
	mime_buf_add(out, in->data + start, in->len - start);
	return out->failed ? -1 : 0;
}

/* ---- quoted-printable ---- */

static const char hex[] = "0123456789ABCDEF";

void mime_qp_encode(struct mime_buf *b, const char *text, size_t len)
{
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\n') {
			mime_buf_add(b, "\n", 1);
			col = 0;
			continue;
		}
		bool at_end = i + 1 == len || text[i + 1] == '\n';
		bool line_start = col == 0 && (i == 0 || text[i - 1] == '\n');
		bool encode = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
			      ((c == ' ' || c == '\t') && at_end) ||
			      (line_start && c == '.') ||
			      (line_start && len - i >= 5 && memcmp(text + i, "From ", 5) == 0);
		size_t width = encode ? 3 : 1;
		/* keep room for the soft break "=" on a line of 76 */
		if (col + width > 75) {
			mime_buf_add(b, "=\n", 2);
			col = 0;
		}
		if (encode) {
			char e[3] = { '=', hex[c >> 4], hex[c & 15] };
			mime_buf_add(b, e, 3);
		} else {
			mime_buf_add(b, (const char *)&c, 1);
		}
		col += width;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int mime_qp_decode(const char *in, size_t len, char *out, size_t *outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '=') {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				continue;
			out[n++] = in[i];
			continue;
		}
		if (i + 1 < len && in[i + 1] == '\n') {
			i++;
			continue;
		}
		if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (i + 2 >= len || hexval(in[i + 1]) < 0 || hexval(in[i + 2]) < 0)
			return -1;
		out[n++] = (char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
		i += 2;
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

/* ---- headers ---- */

void mime_header(struct mime_buf *b, const char *name, const char *value)
{
	bool plain = true;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			plain = false;
	mime_buf_adds(b, name);
	mime_buf_add(b, ": ", 2);
	if (plain) {
		mime_buf_adds(b, value);
		mime_buf_add(b, "\n", 1);
		return;
	}
	/* Encoded words of at most 75 characters, never splitting a UTF-8
	 * sequence; invalid bytes and control characters become '?'. */
	const unsigned char *p = (const unsigned char *)value;
	size_t len = strlen(value), i = 0;
	bool first = true;
	while (i < len) {
		char word[80];
		size_t w = 0;
		memcpy(word, "=?UTF-8?Q?", 10);
		w = 10;
		while (i < len) {
			size_t n = outfmt_utf8_len(p + i, len - i);
			char piece[12];
			size_t pl = 0;
			if (n == 0 || p[i] < 0x20 || p[i] == 0x7f) {
				memcpy(piece, "=3F", 3);	/* '?' */
				pl = 3;
				n = 1;
			} else if (n == 1 && ((p[i] >= 'A' && p[i] <= 'Z') ||
					      (p[i] >= 'a' && p[i] <= 'z') ||
					      (p[i] >= '0' && p[i] <= '9') ||
					      strchr("!*+-/", p[i]) != NULL)) {
				piece[pl++] = (char)p[i];
			} else if (n == 1 && p[i] == ' ') {
				piece[pl++] = '_';
			} else {
				for (size_t k = 0; k < n; k++) {
					piece[pl++] = '=';
					piece[pl++] = hex[p[i + k] >> 4];
					piece[pl++] = hex[p[i + k] & 15];
				}
			}
			/* words of <= 75 characters; the first shares its line
			 * with the header name */
			size_t limit = first ? 76 - (strlen(name) + 2) : 75;
			if (w + pl + 2 > limit && w > 10)
				break;
			memcpy(word + w, piece, pl);
			w += pl;
			i += n;
		}
		memcpy(word + w, "?=", 2);
		w += 2;
		if (!first)
			mime_buf_add(b, "\n ", 2);
		mime_buf_add(b, word, w);
		first = false;
	}
	mime_buf_add(b, "\n", 1);
}

void mime_date(time_t when, char *buf, size_t size)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	char zone[8];
	localtime_r(&when, &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	snprintf(buf, size, "%.3s, %d %.3s %04d %02d:%02d:%02d %s",
		 days + 3 * tm.tm_wday, tm.tm_mday, months + 3 * tm.tm_mon,
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
}

int mime_message_id(const char *domain, time_t when, char *buf, size_t size)
{
	unsigned char rnd[16];
	char hx[33];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		hx[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
		hx[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
	}
	hx[32] = '\0';
	snprintf(buf, size, "<%lld.%s.tlsgate@%s>", (long long)when, hx, domain);
	return 0;
}

bool mime_safe_address(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t len = strlen(s);
	if (at == NULL || at == s || at[1] == '\0' || len > 254)
		return false;
	for (const char *p = s; p < at; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || strchr("._+=-", c) != NULL))
			return false;
	}
	if (s[0] == '.' || at[-1] == '.')
		return false;
	for (const char *p = at + 1; *p; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return at[1] != '.' && s[len - 1] != '.' && strstr(at, "..") == NULL;
}

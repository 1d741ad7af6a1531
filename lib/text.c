/*
 * text - UTF-8 checks and the shared line tokenizer. See text.h.
 */
#include "text.h"

#include <stdint.h>
#include <stdio.h>

bool tg_text_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if ((c & 0xe0) == 0xc0) {
			n = 2; cp = c & 0x1f; min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3; cp = c & 0x0f; min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4; cp = c & 0x07; min = 0x10000;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		/* C1 controls are as dangerous in a log as C0 ones. */
		if (cp >= 0x80 && cp <= 0x9f)
			return false;
		i += n;
	}
	return true;
}

bool tg_ascii_caseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (tg_ascii_lower(a[i]) != tg_ascii_lower(b[i]))
			return false;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

bool tg_dns_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > TG_DNS_NAME_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!ldh(s[i]) || (label == 0 && s[i] == '-'))
			return false;
		label++;
	}
	return true;
}

int tg_next_token(const char *line, size_t len, size_t *pos,
		  struct tg_token *tok, char *scratch, size_t *scratch_used,
		  char *why, size_t whylen)
{
	size_t i = *pos;

	while (i < len && is_blank(line[i]))
		i++;
	if (i >= len || line[i] == '#') {
		*pos = len;
		return 0;
	}
	tok->text = line + i;
	tok->key = NULL;
	tok->key_len = 0;
	tok->value = NULL;
	tok->value_len = 0;
	tok->quoted = false;

	size_t start = i;
	while (i < len && !is_blank(line[i]) && line[i] != '=' && line[i] != '"')
		i++;
	if (i < len && line[i] == '"') {
		snprintf(why, whylen, "unexpected '\"' (quotes go only after key=)");
		return -1;
	}
	if (i >= len || line[i] != '=') {
		tok->len = i - start;
		*pos = i;
		return 1;
	}
	tok->key = line + start;
	tok->key_len = i - start;
	i++;			/* '=' */
	if (i < len && line[i] == '"') {
		char *out = scratch + *scratch_used;
		size_t n = 0;
		i++;
		for (;;) {
			if (i >= len) {
				snprintf(why, whylen, "unterminated quoted value of '%.*s'",
					 (int)(tok->key_len > 40 ? 40 : tok->key_len), tok->key);
				return -1;
			}
			char c = line[i++];
			if (c == '"')
				break;
			if (c == '\\') {
				if (i >= len || (line[i] != '"' && line[i] != '\\')) {
					snprintf(why, whylen,
						 "bad escape in quoted value (only \\\" and \\\\ are allowed)");
					return -1;
				}
				c = line[i++];
			}
			out[n++] = c;
		}
		if (i < len && !is_blank(line[i])) {
			snprintf(why, whylen, "text right after a closing quote");
			return -1;
		}
		tok->value = out;
		tok->value_len = n;
		tok->quoted = true;
		*scratch_used += n;
	} else {
		size_t vstart = i;
		while (i < len && !is_blank(line[i])) {
			if (line[i] == '"') {
				snprintf(why, whylen,
					 "unexpected '\"' inside a value (quote the whole value: key=\"...\")");
				return -1;
			}
			i++;
		}
		tok->value = line + vstart;
		tok->value_len = i - vstart;
	}
	tok->len = (size_t)(line + i - tok->text);
	*pos = i;
	return 1;
}

/*
 * imapid - reading the IMAP ID text. See imapid.h.
 */
#include "imapid.h"

#include <stdio.h>
#include <string.h>

#include "text.h"

/* Where a token's unescaped value goes: into the kept field, or nowhere. */
struct sink {
	char *buf;		/* NULL: the value is not kept */
	size_t max;		/* bytes buf holds, without the NUL */
	size_t used;
	bool cut;
};

static void sink_put(struct sink *s, char c)
{
	if (s->buf == NULL)
		return;
	if (s->used < s->max)
		s->buf[s->used++] = c;
	else
		s->cut = true;
}

/* A quoted string starting at text[*pos] == '"'. Returns 0 or -1. */
static int read_quoted(const char *text, size_t len, size_t *pos,
		       struct sink *s, char *why, size_t whylen)
{
	size_t p = *pos + 1;
	while (p < len && text[p] != '"') {
		char c = text[p++];
		if (c == '\\') {
			if (p >= len || (text[p] != '"' && text[p] != '\\')) {
				snprintf(why, whylen, "bad escape at byte %zu", p - 1);
				return -1;
			}
			c = text[p++];
		} else if (c == '\0') {
			snprintf(why, whylen, "NUL byte at %zu", p - 1);
			return -1;
		}
		sink_put(s, c);
	}
	if (p >= len) {
		snprintf(why, whylen, "unterminated quoted string");
		return -1;
	}
	*pos = p + 1;
	return 0;
}

/* One token at text[*pos]: a quoted string or NIL. *nil says which. */
static int read_token(const char *text, size_t len, size_t *pos, bool *nil,
		      struct sink *s, char *why, size_t whylen)
{
	*nil = false;
	if (text[*pos] == '"')
		return read_quoted(text, len, pos, s, why, whylen);
	if (len - *pos >= 3 && tg_ascii_caseeq(text + *pos, 3, "NIL", 3) &&
	    (len - *pos == 3 || text[*pos + 3] == ' ' || text[*pos + 3] == ')')) {
		*nil = true;
		*pos += 3;
		return 0;
	}
	if (text[*pos] == '{')
		snprintf(why, whylen, "literal at byte %zu (not supported)", *pos);
	else
		snprintf(why, whylen, "neither a quoted string nor NIL at byte %zu", *pos);
	return -1;
}

/* Strips the ID command's own parentheses, if there are. */
static int unwrap(const char **text, size_t *len, char *why, size_t whylen)
{
	bool open = *len > 0 && (*text)[0] == '(';
	bool close = *len > 0 && (*text)[*len - 1] == ')';
	if (open != close || (open && *len < 2)) {
		snprintf(why, whylen, "unbalanced parentheses");
		return -1;
	}
	if (open) {
		(*text)++;
		*len -= 2;
	}
	return 0;
}

/* The kept field a key names, or NULL. */
static char *field_of(struct tg_imapid *out, const char *key, size_t klen,
		      bool **has)
{
	if (tg_ascii_caseeq(key, klen, "name", 4) && !out->has_name) {
		*has = &out->has_name;
		return out->name;
	}
	if (tg_ascii_caseeq(key, klen, "version", 7) && !out->has_version) {
		*has = &out->has_version;
		return out->version;
	}
	return NULL;
}

static int parse_pairs(const char *text, size_t len, struct tg_imapid *out,
		       char *why, size_t whylen)
{
	char key[31];	/* RFC 2971: field names are at most 30 bytes */
	size_t pos = 0;
	bool nil;

	while (pos < len) {
		struct sink ks = { key, sizeof(key) - 1, 0, false };
		if (read_token(text, len, &pos, &nil, &ks, why, whylen) < 0)
			return -1;
		if (pos >= len || text[pos] != ' ') {
			snprintf(why, whylen, "field without a value");
			return -1;
		}
		pos++;
		if (pos >= len) {
			snprintf(why, whylen, "field without a value");
			return -1;
		}
		bool *has = NULL;
		/* a longer name (ks.cut) is no field kept here */
		char *dst = nil || ks.cut ? NULL : field_of(out, key, ks.used, &has);
		struct sink vs = { dst, TG_IMAPID_MAX_VALUE, 0, false };
		if (read_token(text, len, &pos, &nil, &vs, why, whylen) < 0)
			return -1;
		if (dst != NULL && !nil) {
			dst[vs.used] = '\0';
			*has = true;
			out->cut |= vs.cut;
		}
		if (pos < len) {
			if (text[pos] != ' ' || pos + 1 >= len) {
				snprintf(why, whylen, "tokens not separated by one space at byte %zu", pos);
				return -1;
			}
			pos++;
		}
	}
	return 0;
}

int tg_imapid_parse(const char *text, size_t len, struct tg_imapid *out,
		    char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	if (len > TG_IMAPID_MAX_INPUT) {
		snprintf(why, whylen, "ID text over %d bytes", TG_IMAPID_MAX_INPUT);
		return -1;
	}
	if (unwrap(&text, &len, why, whylen) < 0)
		return -1;
	if (len == 3 && tg_ascii_caseeq(text, 3, "NIL", 3))
		return 0;
	if (parse_pairs(text, len, out, why, whylen) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

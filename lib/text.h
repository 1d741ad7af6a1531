/*
 * text - small string helpers shared by the parsers: UTF-8 validation,
 * ASCII case folding, tokens of a "VERB key=value key=\"quoted\"" line.
 */
#ifndef TLSGATE_TEXT_H
#define TLSGATE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) without control characters (C0, DEL). */
bool tg_text_valid(const char *s, size_t len);
static inline char tg_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}
bool tg_ascii_caseeq(const char *a, size_t alen, const char *b, size_t blen);

/* A host or domain name as DNS and mail clients take it: labels of 1 to
 * 63 letters, digits and hyphens (not at a label's start or end), joined
 * by single dots, at most TG_DNS_NAME_MAX bytes, no trailing dot.
 * Internationalised names must be given in their A-label (xn--) form. */
#define TG_DNS_NAME_MAX 253
bool tg_dns_name_valid(const char *s, size_t len);

/* One token of a rule or configuration line. A token is a run of
 * non-blank characters; KEY="..." has a quoted value in which \" and \\
 * are the only escapes. '#' at the start of a token starts a comment. */
struct tg_token {
	const char *text;	/* the token as written */
	size_t len;
	const char *key;	/* NULL when the token has no '=' */
	size_t key_len;
	const char *value;	/* unescaped; points into the scratch buffer
				 * when quoted */
	size_t value_len;
	bool quoted;
};

/* Reads the next token of line[*pos..len). Returns 1 with a token, 0 at
 * the end of the line (or a comment), -1 with `why` on a broken token.
 * scratch must hold len bytes; quoted values are unescaped into it. */
int tg_next_token(const char *line, size_t len, size_t *pos,
		  struct tg_token *tok, char *scratch, size_t *scratch_used,
		  char *why, size_t whylen);

#endif

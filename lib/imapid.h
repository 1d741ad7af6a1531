/*
 * imapid - reader of the IMAP ID (RFC 2971) text Dovecot passes to auth as
 * `client_id` (imap_id_retain = yes): the client's field/value pairs as an
 * IMAP list body, e.g.
 *
 *   "name" "Thunderbird" "version" "115.3.1" "os" NIL
 *
 * An outer pair of parentheses (the ID command's own argument) and a bare
 * NIL (no fields) are accepted too. Only "name" and "version" are kept
 * (field names compared ignoring ASCII case; the first of each wins).
 *
 * The text comes from the client and proves nothing: it names a device
 * for people to read, and is never used to decide a login.
 *
 * Accepted: tokens separated by single spaces, each a quoted string (only
 * \" and \\ escapes) or NIL (any case); an even number of them. Refused
 * (-1 with `why`): literals ({N}), NUL bytes, bare atoms other than NIL,
 * unbalanced quotes or parentheses, an odd token count, input over
 * TG_IMAPID_MAX_INPUT bytes. A kept value longer than TG_IMAPID_MAX_VALUE
 * bytes is cut there (`cut` says so). Values keep their bytes as sent
 * (control, 8-bit and bidirectional characters included): whoever shows
 * them escapes or strips them. `why` never holds input bytes.
 *
 * Nothing here allocates, logs or exits.
 */
#ifndef TLSGATE_IMAPID_H
#define TLSGATE_IMAPID_H

#include <stdbool.h>
#include <stddef.h>

#define TG_IMAPID_MAX_INPUT 8192
#define TG_IMAPID_MAX_VALUE 128

struct tg_imapid {
	char name[TG_IMAPID_MAX_VALUE + 1];	/* "" when not sent (or NIL) */
	char version[TG_IMAPID_MAX_VALUE + 1];
	bool has_name, has_version;
	bool cut;		/* a kept value was longer than the maximum */
};

/* Returns 0 with *out filled, or -1 with why (out then holds nothing). */
int tg_imapid_parse(const char *text, size_t len, struct tg_imapid *out,
		    char *why, size_t whylen);

#endif

/*
 * advice - the one setting that moves a mail program to TLS, found by the
 * name the program gives of itself (an IMAP ID "name" such as
 * "Thunderbird", a User-Agent or X-Mailer such as "Mutt/2.2.12", an EHLO
 * or software string), in English and German, for notices to users.
 *
 * The settings of the programs measured in tests/e2e/test_mailclients.py
 * are word for word those of the table in docs/rollout.md ("Mail
 * programs: what users see and the setting that fixes it"); a unit test
 * holds the two together.
 *
 * The name is client-supplied, so nothing in it is trusted: only its first
 * ADVICE_MAX_INPUT bytes are looked at, it may hold any bytes (NUL,
 * control, invalid UTF-8), and it only selects one of the fixed entries -
 * no byte of it reaches the advice. A program is recognised by one of its
 * tokens, case-insensitively, where the token stands as a word (not inside
 * a longer run of letters and digits: "Mutt/2.2" is mutt, "mutton" is not).
 * An unknown or missing name gets the generic entry. Pure functions over
 * a static table; nothing is allocated; nothing fails.
 */
#ifndef TLSGATE_ADVICE_H
#define TLSGATE_ADVICE_H

#include <stddef.h>

#define ADVICE_MAX_INPUT 256

enum advice_lang { ADVICE_EN, ADVICE_DE };

struct advice {
	const char *program;	/* as docs/rollout.md names it; "" generic */
	const char *setting;	/* the table's setting cell (Markdown) */
	const char *en, *de;	/* one line for the user */
};

/* The entry for a program name of len bytes (name may be NULL); never
 * NULL: the generic entry when nothing matches. */
const struct advice *advice_for(const char *name, size_t len);
/* The line in that language. */
const char *advice_text(const struct advice *a, enum advice_lang lang);
/* The entry for the program named exactly so (case-insensitive), as the
 * table's first column names it; NULL if none. */
const struct advice *advice_by_program(const char *program);
/* The generic entry. */
const struct advice *advice_generic(void);

#endif

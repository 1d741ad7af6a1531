/*
 * fuzz-imapid - libFuzzer target for the IMAP ID reader (tg_imapid_parse),
 * which the Dovecot module runs on the client_id text a client controls.
 *
 * Invariants checked (abort on violation): a refusal fills `why` and
 * leaves nothing kept; kept values are NUL-terminated within
 * TG_IMAPID_MAX_VALUE bytes; a value not cut, quoted again and read back,
 * gives the same value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *v, int has)
{
	size_t n = strnlen(v, TG_IMAPID_MAX_VALUE + 1);
	if (n > TG_IMAPID_MAX_VALUE || (!has && n != 0))
		abort();
}

/* "name" "<value, escaped again>" read back. */
static void check_round_trip(const struct tg_imapid *id)
{
	char text[4 * TG_IMAPID_MAX_VALUE + 16], why[128];
	size_t n = 0;
	memcpy(text, "\"name\" \"", 8);
	n = 8;
	for (const char *p = id->name; *p; p++) {
		if (*p == '"' || *p == '\\')
			text[n++] = '\\';
		text[n++] = *p;
	}
	text[n++] = '"';
	struct tg_imapid again;
	if (tg_imapid_parse(text, n, &again, why, sizeof(why)) != 0 ||
	    strcmp(again.name, id->name) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_imapid id;
	char why[128] = "";
	char *copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	int r = tg_imapid_parse(copy, size, &id, why, sizeof(why));
	free(copy);
	if (r < 0) {
		if (why[0] == '\0' || id.has_name || id.has_version)
			abort();
		return 0;
	}
	check_value(id.name, id.has_name);
	check_value(id.version, id.has_version);
	if (id.has_name && !id.cut)
		check_round_trip(&id);
	return 0;
}

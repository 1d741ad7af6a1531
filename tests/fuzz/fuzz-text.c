/*
 * fuzz-text - libFuzzer target for the shared helpers every parser stands
 * on: the token reader (tg_next_token), UTF-8 validation (tg_text_valid)
 * and day parsing (tg_date_parse).
 *
 * Invariants checked (abort on violation): tokens lie inside the line and
 * advance; unescaped values fit the scratch buffer; tg_text_valid agrees
 * with a slow reference decoder; a parsed day formats back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: decode one code point at a time with explicit tables. */
static int ref_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned c = s[i];
		unsigned cp, need;
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { need = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { need = 3; cp = c & 0x07; }
		else return 0;
		if (len - i - 1 < need)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return 0;
		i += need + 1;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	char *scratch = malloc(size ? size : 1);
	char why[200];
	if (line == NULL || scratch == NULL) {
		free(line);
		free(scratch);
		return 0;
	}
	memcpy(line, data, size);

	if (tg_text_valid(line, size) != (ref_valid(data, size) != 0))
		abort();

	size_t pos = 0, used = 0;
	struct tg_token tok;
	int r;
	while ((r = tg_next_token(line, size, &pos, &tok, scratch, &used,
				  why, sizeof(why))) > 0) {
		if (tok.text < line || tok.text + tok.len > line + size ||
		    tok.len == 0 || pos > size || used > size)
			abort();
		if (tok.key != NULL && tok.key + tok.key_len > line + size)
			abort();
	}
	if (r < 0 && memchr(why, '\0', sizeof(why)) == NULL)
		abort();

	int32_t day;
	if (tg_date_parse(line, size, &day) == 0) {
		char back[TG_DATE_STRLEN + 8];
		tg_date_format(day, back, sizeof(back));
		if (size != 10 || memcmp(back, line, 10) != 0)
			abort();
		if (tg_date_diff(day, day) != 0 ||
		    tg_date_diff(19700101, day) < 0)
			abort();
	}
	free(line);
	free(scratch);
	return 0;
}

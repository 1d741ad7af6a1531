/*
 * probe/text - safe quoting of peer text for the probe report. See
 * text.h.
 */
#include <string.h>
#include <strings.h>

#include "text.h"

static void mark_cut(char *out, size_t size)
{
	if (size >= 4)
		memcpy(out + size - 4, "...", 4);
}

char *probe_clean_text(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o + 1 >= size) {
			mark_cut(out, size);
			return out;
		}
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	out[o] = '\0';
	return out;
}

bool probe_list_add(char *buf, size_t size, const char *sep, const char *item)
{
	size_t used = strlen(buf);
	size_t need = (used > 0 ? strlen(sep) : 0) + strlen(item);

	if (used >= 3 && strcmp(buf + used - 3, "...") == 0)
		return false;	/* already cut */
	if (used + need + 1 > size) {
		if (size >= 4) {
			if (used + 4 > size)
				used = size - 4;
			memcpy(buf + used, "...", 4);
		}
		return false;
	}
	if (used > 0)
		strcat(buf, sep);
	strcat(buf, item);
	return true;
}

bool probe_words_contain(const char *list, const char *word)
{
	size_t wlen = strlen(word);
	const char *p = list;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		const char *end = p;
		while (*end != '\0' && *end != ' ')
			end++;
		if ((size_t)(end - p) == wlen && strncasecmp(p, word, wlen) == 0)
			return true;
		p = end;
	}
	return false;
}

/*
 * errors - collected "file:line: message" errors. See errors.h.
 */
#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_errors_init(struct tg_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
}

void tg_errors_clear(struct tg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	tg_errors_init(errs);
}

static void append(struct tg_errors *errs, char *msg)
{
	if (errs->count >= TG_ERRORS_MAX) {
		errs->dropped++;
		free(msg);
		return;
	}
	char **grown = realloc(errs->msgs, (errs->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		errs->dropped++;
		free(msg);
		return;
	}
	errs->msgs = grown;
	errs->msgs[errs->count++] = msg;
}

void tg_errors_vadd(struct tg_errors *errs, const char *file, unsigned line,
		    const char *fmt, va_list ap)
{
	char text[1024], prefix[1200];
	vsnprintf(text, sizeof(text), fmt, ap);
	/* Messages are one line each, whatever went into them. */
	for (char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (file == NULL)
		snprintf(prefix, sizeof(prefix), "%s", text);
	else if (line == 0)
		snprintf(prefix, sizeof(prefix), "%s: %s", file, text);
	else
		snprintf(prefix, sizeof(prefix), "%s:%u: %s", file, line, text);
	char *msg = strdup(prefix);
	if (msg == NULL) {
		errs->dropped++;
		return;
	}
	append(errs, msg);
}

void tg_errors_add(struct tg_errors *errs, const char *file, unsigned line,
		   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tg_errors_vadd(errs, file, line, fmt, ap);
	va_end(ap);
}

void tg_errors_move(struct tg_errors *dst, struct tg_errors *src)
{
	for (size_t i = 0; i < src->count; i++)
		append(dst, src->msgs[i]);
	dst->dropped += src->dropped;
	free(src->msgs);
	tg_errors_init(src);
}

size_t tg_errors_total(const struct tg_errors *errs)
{
	return errs->count + errs->dropped;
}

char *tg_sanitize(const char *s, size_t len, size_t max, char *buf, size_t size)
{
	size_t out = 0;
	int cut = len > max;

	if (size == 0)
		return buf;
	if (cut)
		len = max;
	for (size_t i = 0; i < len && out + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[out++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\'') ? '?' : (char)c;
	}
	if (cut)
		for (int i = 0; i < 3 && out + 1 < size; i++)
			buf[out++] = '.';
	buf[out] = '\0';
	return buf;
}

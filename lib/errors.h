/*
 * errors - a caller-owned list of error messages, "file:line: message".
 *
 * Loaders collect every error they find (up to TG_ERRORS_MAX, then one
 * "too many errors" line) instead of stopping at the first, so that an
 * admin sees all mistakes of a policy at once. Messages never contain a
 * newline or control character: peer or file data is sanitised before it
 * is put in one.
 */
#ifndef TLSGATE_ERRORS_H
#define TLSGATE_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

#define TG_ERRORS_MAX 100

struct tg_errors {
	char **msgs;
	size_t count;
	size_t dropped;		/* errors past TG_ERRORS_MAX */
};

#define TG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

void tg_errors_init(struct tg_errors *errs);
void tg_errors_clear(struct tg_errors *errs);	/* frees the messages */
/* Adds "file:line: message" (line 0: "file: message"; file NULL: message). */
void tg_errors_add(struct tg_errors *errs, const char *file, unsigned line,
		   const char *fmt, ...) TG_PRINTF(4, 5);
void tg_errors_vadd(struct tg_errors *errs, const char *file, unsigned line,
		    const char *fmt, va_list ap) TG_PRINTF(4, 0);
/* Moves all messages of src to the end of dst. */
void tg_errors_move(struct tg_errors *dst, struct tg_errors *src);
/* Total errors found, counting dropped ones. */
size_t tg_errors_total(const struct tg_errors *errs);

/* Copies at most `max` bytes of untrusted text into buf for a message:
 * control characters, quotes and bytes over 0x7e become '?', and "..." marks
 * a cut. Returns buf. */
char *tg_sanitize(const char *s, size_t len, size_t max, char *buf, size_t size);

#endif

/*
 * mime - the pieces of an RFC 5322 / MIME text message that `tlsgate
 * notify` writes: quoted-printable bodies (RFC 2045), encoded-word
 * headers (RFC 2047), Date and Message-ID.
 *
 * Everything is built into a growing buffer (struct mime_buf) with "\n"
 * line ends; mime_buf_crlf() converts for files. Output lines are at most
 * 76 characters (quoted-printable) or folded (headers), a line of a body
 * that starts with "." or "From " is encoded so that no transport can
 * take it for the end of the message or an mbox separator.
 * Functions return -1 only when memory runs out.
 */
#ifndef TLSGATE_MIME_H
#define TLSGATE_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct mime_buf {
	char *data;
	size_t len, cap;
	bool failed;		/* an allocation failed; data is incomplete */
};

void mime_buf_init(struct mime_buf *b);
void mime_buf_free(struct mime_buf *b);
void mime_buf_add(struct mime_buf *b, const char *s, size_t len);
void mime_buf_adds(struct mime_buf *b, const char *s);
/* A copy with every "\n" turned into "\r\n". */
int mime_buf_crlf(const struct mime_buf *in, struct mime_buf *out);

/* Appends `text` (UTF-8, "\n" line ends) quoted-printable encoded. */
void mime_qp_encode(struct mime_buf *b, const char *text, size_t len);
/* Decodes quoted-printable (for tests and checks); returns -1 on a bad
 * escape. out needs len + 1 bytes. */
int mime_qp_decode(const char *in, size_t len, char *out, size_t *outlen);

/* Appends "Name: value\n": the value as is when it is printable ASCII,
 * else as RFC 2047 Q encoded words of UTF-8, folded. */
void mime_header(struct mime_buf *b, const char *name, const char *value);

/* "Sun, 29 Nov 2026 21:00:00 +0000" for `when`, local zone. */
void mime_date(time_t when, char *buf, size_t size);
/* "<TIME.RANDOM@DOMAIN>" with 16 random bytes (hex). Returns -1 when no
 * random bytes could be had. */
int mime_message_id(const char *domain, time_t when, char *buf, size_t size);

/* Whether s is an address we are willing to put in To: and a file name:
 * local@domain with local of [A-Za-z0-9._+=-] and a domain of
 * letters, digits, '-' and '.', 254 bytes at most. */
bool mime_safe_address(const char *s);

#endif

/*
 * fuzz-authmaster - libFuzzer target for what Dovecot's auth service
 * sends back: tg_am_parse_line() on the input as one line, and
 * tg_am_next_reply() on the input as a byte stream cut in two reads.
 *
 * Invariants checked (abort on violation): a reply's mode is NONE,
 * INVALID or a tg_mode; the texts kept for log lines are NUL-terminated
 * and printable; the reader never claims more bytes than it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authmaster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const struct tg_am_reply *r)
{
	if (r->mode < TG_AM_MODE_INVALID || r->mode > 2)
		abort();
	if (memchr(r->mode_text, '\0', sizeof(r->mode_text)) == NULL ||
	    memchr(r->reason, '\0', sizeof(r->reason)) == NULL)
		abort();
	for (const char *p = r->reason; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	for (const char *p = r->mode_text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

static struct tg_am_conn conn;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_am_reply r;
	char why[256];

	if (tg_am_parse_line((const char *)data, size, &r, why, sizeof(why)) > 0)
		check_reply(&r);

	/* the same bytes as a stream, in two reads */
	memset(&conn, 0, sizeof(conn));
	conn.fd = -1;
	size_t half = size / 2, fed = 0;
	for (int round = 0; round < 2; round++) {
		size_t want = round == 0 ? half : size - half;
		size_t room = sizeof(conn.in) - conn.in_len;
		if (conn.in_off > 0) {
			memmove(conn.in, conn.in + conn.in_off, conn.in_len - conn.in_off);
			conn.in_len -= conn.in_off;
			conn.in_off = 0;
			room = sizeof(conn.in) - conn.in_len;
		}
		if (want > room)
			want = room;
		memcpy(conn.in + conn.in_len, data + fed, want);
		conn.in_len += want;
		fed += want;
		int n;
		while ((n = tg_am_next_reply(&conn, &r, why, sizeof(why))) > 0)
			check_reply(&r);
		if (conn.in_off > conn.in_len)
			abort();
		if (n < 0)
			break;
	}
	return 0;
}

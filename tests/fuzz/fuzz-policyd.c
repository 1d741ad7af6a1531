/*
 * fuzz-policyd - libFuzzer target for tlsgate-policyd's request reader
 * (pd_reader_feed), the parser that faces Postfix's connection.
 *
 * The input is the byte stream of one connection. It is fed three ways:
 * all at once, in small chunks of varying size (as a slow or fragmenting
 * peer would send it) and byte by byte for short inputs; each time the
 * caller keeps the unfinished line and feeds it again with more bytes,
 * as the daemon does. Invariants checked (abort on violation): the three
 * ways give the same requests and the same final outcome (the reader's
 * answers do not depend on how TCP cut the stream); `used` only ever
 * covers whole lines inside the buffer; a kept value is NUL-terminated at
 * its length, holds no NUL and no newline and fits PD_MAX_LINE; `why` is a
 * printable line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a over what a run saw: each request's kept attributes, then the
 * outcome (-1 for an error, 0 for a stream that ended). */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211u;
	}
	return h;
}

static uint64_t digest_request(uint64_t h, const struct pd_request *req)
{
	for (int a = 0; a < PD_ATTR_COUNT; a++) {
		unsigned char present = req->present[a];
		h = mix(h, &present, 1);
		if (!present)
			continue;
		if (req->len[a] > PD_MAX_LINE || req->value[a][req->len[a]] != '\0' ||
		    memchr(req->value[a], '\0', req->len[a]) != NULL ||
		    memchr(req->value[a], '\n', req->len[a]) != NULL)
			abort();
		h = mix(h, req->value[a], req->len[a] + 1);
	}
	return h;
}

static struct pd_reader reader;

/* Feeds data in chunks of chunk(i) bytes; returns the digest. */
static uint64_t run(const uint8_t *data, size_t size, unsigned mode)
{
	char *buf = malloc(size + 1);
	size_t have = 0, sent = 0, round = 0;
	uint64_t h = 14695981039346656037u;
	char why[256];
	int outcome = 0;

	if (buf == NULL)
		abort();
	pd_reader_init(&reader);
	while (sent < size) {
		size_t chunk = mode == 0 ? size :
			       mode == 1 ? 1 : 1 + (round * 7 + data[round % size]) % 61;
		round++;
		if (chunk > size - sent)
			chunk = size - sent;
		memcpy(buf + have, data + sent, chunk);
		have += chunk;
		sent += chunk;
		for (;;) {
			size_t used = 12345;
			memset(why, 'x', sizeof(why));
			int r = pd_reader_feed(&reader, buf, have, &used, why,
					       sizeof(why));
			if (r < 0) {
				if (memchr(why, '\0', sizeof(why)) == NULL)
					abort();
				for (const char *p = why; *p; p++)
					if ((unsigned char)*p < 0x20 || *p == 0x7f)
						abort();
				outcome = -1;
				goto done;
			}
			if (used > have || (used > 0 && buf[used - 1] != '\n'))
				abort();
			memmove(buf, buf + used, have - used);
			have -= used;
			if (r == 0)
				break;
			h = digest_request(h, &reader.req);
		}
	}
done:
	h = mix(h, &outcome, sizeof(outcome));
	free(buf);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint64_t whole = run(data, size, 0);
	if (run(data, size, 2) != whole)
		abort();
	if (size <= 4096 && run(data, size, 1) != whole)
		abort();
	return 0;
}

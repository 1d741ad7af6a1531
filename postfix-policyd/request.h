/*
 * request - reader of Postfix policy-delegation requests (SMTPD_POLICY_README).
 *
 * A request is "name=value" lines ended by an empty line. The reader is fed
 * the bytes of a connection as they arrive and keeps, of each request, only
 * the attributes tlsgate-policyd decides on; it never stores more than the
 * limits below and never truncates: input over a limit is an error.
 *
 * Format, as accepted:
 *  - lines end in LF; one CR right before the LF is dropped (hand testing);
 *  - a name is 1..PD_MAX_NAME bytes of [A-Za-z0-9_.-]; the value is the
 *    rest of the line after the first '=' and may be empty;
 *  - unknown attributes are ignored (but count towards the limits);
 *  - a duplicated attribute: the last one wins;
 *  - a NUL byte anywhere, a line without '=', a bad name are errors.
 *
 * Limits (all documented in docs/postfix.md):
 *  PD_MAX_LINE     bytes of one line, without its line end
 *  PD_MAX_ATTRS    attributes of one request
 *  PD_MAX_REQUEST  bytes of one request, line ends and final empty line
 *                  included
 *
 * Error contract: pd_reader_feed() returns -1 and fills `why` (which never
 * holds raw peer bytes: samples go through tg_sanitize); the reader must
 * then be reset (or the connection dropped). Nothing here allocates, logs
 * or exits.
 */
#ifndef TLSGATE_POLICYD_REQUEST_H
#define TLSGATE_POLICYD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#define PD_MAX_LINE 2048
#define PD_MAX_NAME 64
#define PD_MAX_ATTRS 100
#define PD_MAX_REQUEST 32768

/* The attributes that are kept. */
enum pd_attr {
	PD_ATTR_REQUEST,		/* "smtpd_access_policy" */
	PD_ATTR_PROTOCOL_STATE,
	PD_ATTR_CLIENT_ADDRESS,		/* IPv4, IPv6 or "unknown" */
	PD_ATTR_INSTANCE,		/* Postfix's id of the mail transaction */
	PD_ATTR_SENDER,
	PD_ATTR_SASL_METHOD,
	PD_ATTR_SASL_USERNAME,
	PD_ATTR_ENCRYPTION_PROTOCOL,	/* empty: plaintext */
	/* The device, as it and its DNS name it: for the event only. */
	PD_ATTR_HELO_NAME,
	PD_ATTR_CLIENT_NAME,
	PD_ATTR_REVERSE_CLIENT_NAME,
	PD_ATTR_CLIENT_PORT,
	PD_ATTR_SERVER_PORT,
	PD_ATTR_COUNT
};

const char *pd_attr_name(enum pd_attr attr);

struct pd_request {
	char value[PD_ATTR_COUNT][PD_MAX_LINE + 1];	/* NUL-terminated */
	size_t len[PD_ATTR_COUNT];
	bool present[PD_ATTR_COUNT];
	unsigned attrs;		/* attribute lines read */
	size_t bytes;		/* bytes read, line ends included */
};

struct pd_reader {
	struct pd_request req;
};

void pd_reader_init(struct pd_reader *reader);

/*
 * Reads complete lines from buf[0..len). Returns
 *   1  a request is complete in reader->req; *used bytes were consumed
 *      (through its empty line). The next call starts a new request.
 *   0  no complete request yet; *used bytes (whole lines) were consumed,
 *      the caller keeps buf[*used..len), an unfinished line, and feeds it
 *      again with more bytes after it.
 *  -1  a limit or the format was broken; why says which.
 */
int pd_reader_feed(struct pd_reader *reader, const char *buf, size_t len,
		   size_t *used, char *why, size_t whylen);

/* Whether part of a request has been read (for "EOF in mid-request"). */
bool pd_reader_started(const struct pd_reader *reader);

#endif

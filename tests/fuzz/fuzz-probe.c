/*
 * fuzz-probe - libFuzzer target for the probe's reading of server replies
 * (probe_dialog_feed): greetings, IMAP CAPABILITY, POP3 CAPA, SMTP EHLO
 * and ManageSieve capability lines, and the answers to STARTTLS.
 *
 * The first input byte picks the protocol and implicit TLS; the rest is
 * what a hostile server sends, cut into lines at '\n' (as the probe's line
 * reader would hand them over). Invariants checked (abort on violation):
 * the dialog ends (DONE, TLS or FAIL) or asks for more, never anything
 * else; every text it keeps (greeting, mechanisms, command, why) is a
 * terminated printable string; a failure has a reason; the command it
 * wants sent is one printable line ending in CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe/dialog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
	const char *end = memchr(s, '\0', cap);
	if (end == NULL)
		abort();
	for (const char *p = s; p < end; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct probe_dialog d;
	if (size == 0)
		return 0;
	enum probe_proto proto = (enum probe_proto)(data[0] % 4);
	bool implicit = (data[0] >> 2) & 1;
	probe_dialog_init(&d, proto, implicit, "[192.0.2.1]");
	data++;
	size--;

	size_t pos = 0;
	enum probe_step step = PD_READ;
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
		char *line = malloc(len ? len : 1);	/* exact size for ASan */
		if (line == NULL)
			return 0;
		memcpy(line, data + pos, len);
		step = probe_dialog_feed(&d, line, len);
		free(line);
		pos += len + (nl != NULL);
		if (step == PD_SEND) {
			size_t n = strnlen(d.out, sizeof(d.out));
			if (n < 3 || n == sizeof(d.out) || memcmp(d.out + n - 2, "\r\n", 2) != 0)
				abort();
			d.out[n - 2] = '\0';
			check_text(d.out, sizeof(d.out));
			d.out[n - 2] = '\r';
		} else if (step != PD_READ) {
			break;
		}
	}
	if (step == PD_FAIL && d.why[0] == '\0')
		abort();
	if ((unsigned)step > PD_FAIL)
		abort();
	check_text(d.greeting, sizeof(d.greeting));
	check_text(d.caps.mechs, sizeof(d.caps.mechs));
	check_text(d.why, sizeof(d.why));
	(void)probe_caps_plaintext_auth(&d);
	return 0;
}

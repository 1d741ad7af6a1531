/*
 * fuzz-report - libFuzzer target for what `tlsgate report` reads: log
 * files (plain or gzip, through logscan), the timestamps in front of the
 * lines (logtime_parse), the event in each line (tg_event_parse) and the
 * --since/--until arguments (logtime_parse_arg).
 *
 * The input is a whole log file, handed to logscan through a memfd.
 * Invariants checked (abort on violation): every line handed out lies in
 * the reader's buffer, has no newline and is at most LOGSCAN_MAX_LINE
 * bytes; a parsed event has its required fields; a parsed timestamp of a
 * line is on or after 1970 minus a day; `why` is always terminated. The
 * origin check (report/origin.h): a line is ours only with the tag at the
 * offset given; a line with "tlsgate: service=" is never "no tag"; a
 * plausible user holds no
 * blank, quote, control or bidi character and fits ORIGIN_MAX_USER; a
 * plausible client parses as an address or is "unknown".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "event.h"
#include "report/logscan.h"
#include "report/origin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tg_event_parsed parsed;

static void check_plausible(const struct tg_event *ev)
{
	const char *u = ev->value[TG_EV_USER];
	size_t n = ev->len[TG_EV_USER], bidi;
	if (n == 0 || n > ORIGIN_MAX_USER)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\' ||
		    origin_is_bidi(u + i, n - i, &bidi))
			abort();
	}
	struct tg_addr addr;
	const char *cl = ev->value[TG_EV_CLIENT];
	size_t cn = ev->len[TG_EV_CLIENT];
	if (!(cn == 7 && memcmp(cl, "unknown", 7) == 0) && tg_addr_parse(cl, cn, &addr) != 0)
		abort();
}

static void check_line(struct logtime *lt, const char *line, size_t len)
{
	int64_t when;
	if (memchr(line, '\n', len) != NULL || len > LOGSCAN_MAX_LINE)
		abort();
	(void)logtime_parse(lt, line, len, &when);
	size_t off = 0;
	enum origin_kind kind = origin_classify(line, len, &off);
	if (kind == ORIGIN_OURS) {
		if (off >= len || len - off < sizeof(TG_EVENT_TAG) - 1 ||
		    memcmp(line + off, TG_EVENT_TAG, sizeof(TG_EVENT_TAG) - 1) != 0)
			abort();
		if (tg_event_parse(line + off, len - off, &parsed) == 0 &&
		    origin_event_plausible(&parsed.ev))
			check_plausible(&parsed.ev);
	} else if (kind == ORIGIN_NONE && memmem(line, len, "tlsgate: service=", 17) != NULL) {
		abort();
	}
	if (tg_event_parse(line, len, &parsed) == 0) {
		for (int f = 0; f < TG_EV_EXEMPTION; f++)
			if (parsed.ev.value[f] == NULL)
				abort();
		if (parsed.tag_offset >= len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	char why[512];
	struct logtime lt;

	if (fd < 0) {
		fd = memfd_create("fuzz-report", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();

	/* A year-less timestamp is placed by a reference time. */
	logtime_init(&lt, (time_t)1790000000);

	struct logscan ls;
	if (logscan_open(&ls, path, why, sizeof(why)) == 0) {
		const char *line;
		size_t len;
		int r;
		while ((r = logscan_next(&ls, &line, &len, why, sizeof(why))) > 0) {
			if (line < ls.buf || line + len > ls.buf + LOGSCAN_BUF_SIZE)
				abort();
			check_line(&lt, line, len);
		}
		if (r < 0 && memchr(why, '\0', sizeof(why)) == NULL)
			abort();
		logscan_close(&ls);
	}

	/* The first 64 bytes as a --since argument. */
	char arg[65];
	size_t n = size < 64 ? size : 64;
	memcpy(arg, data, n);
	arg[n] = '\0';
	int64_t when;
	memset(why, 'x', sizeof(why));
	if (logtime_parse_arg(arg, (time_t)1790000000, &when, why, sizeof(why)) < 0 &&
	    memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	return 0;
}

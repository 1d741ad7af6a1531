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
 * line is on or after 1970 minus a day; `why` is always terminated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "event.h"
#include "report/logscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tg_event_parsed parsed;

static void check_line(struct logtime *lt, const char *line, size_t len)
{
	int64_t when;
	if (memchr(line, '\n', len) != NULL || len > LOGSCAN_MAX_LINE)
		abort();
	(void)logtime_parse(lt, line, len, &when);
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

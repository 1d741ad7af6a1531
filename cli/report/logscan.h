/*
 * logscan - reading log lines from files, rotated .gz files and stdin, and
 * the timestamps in front of them.
 *
 * A reader hands out one line at a time (without its newline) from a
 * buffer it owns; the line stays valid until the next call. Plain and gzip
 * input are told apart by zlib (gzip magic), so "mail.log.2.gz" and
 * "mail.log" are read the same way. A line longer than LOGSCAN_MAX_LINE is
 * skipped whole and counted, never cut.
 *
 * Timestamps (docs/report.md): syslog "Mon DD HH:MM:SS" with optional
 * ".uuuuuu" (rsyslog's default, Postfix maillog_file, Dovecot log_path),
 * RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|+HHMM)" (rsyslog high
 * precision, journalctl -o short-iso) and "YYYY-MM-DD HH:MM:SS" (Dovecot's
 * log_timestamp with a year). Times without a zone are local time. A
 * year-less date gets the year of the reference time (the file's mtime,
 * or now for stdin), or the year before when that would put it more than
 * one day after the reference.
 *
 * Errors: functions return -1 and fill `why`; nothing here exits. A gzip
 * file that ends in the middle of its compressed data (truncated) is an
 * error like a damaged one, after the lines before the cut were handed
 * out.
 */
#ifndef TLSGATE_LOGSCAN_H
#define TLSGATE_LOGSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LOGSCAN_MAX_LINE 32768
#define LOGSCAN_BUF_SIZE (1024 * 1024)

/* Converts a log timestamp to seconds since the epoch. Caches the last
 * local hour, so that a log of ordered lines costs one mktime() per hour. */
struct logtime {
	time_t ref;		/* reference for year-less dates */
	int ref_year;
	/* cache: the hour last converted */
	int c_year, c_mon, c_mday, c_hour;
	int64_t c_value;
};

void logtime_init(struct logtime *lt, time_t ref);
/* Reads the timestamp at the start of line[0..len). Returns 0 with *when
 * set, -1 when the line does not start with a known timestamp. */
int logtime_parse(struct logtime *lt, const char *line, size_t len,
		  int64_t *when);

/* A --since/--until argument: "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]",
 * "YYYY-MM-DDTHH:MM[:SS]" (local time), or "Nd" / "Nh" (that long before
 * `now`). Returns 0, or -1 with why. */
int logtime_parse_arg(const char *s, time_t now, int64_t *when,
		      char *why, size_t whylen);

struct logscan {
	void *gz;		/* gzFile */
	const char *name;	/* for messages; "-" is stdin */
	char *buf;
	size_t start, end;
	bool eof, skipping;	/* skipping: inside an over-long line */
	bool truncated;		/* gzip data ended early: an error at the end */
	time_t mtime;		/* of the file; now for stdin */
	uint64_t lines;		/* lines handed out */
	uint64_t long_lines;	/* lines skipped for length */
};

/* Opens a file ("-": stdin). Returns 0, or -1 with why. */
int logscan_open(struct logscan *ls, const char *path, char *why, size_t whylen);
/* Returns 1 with a line, 0 at the end, -1 with why on a read error. */
int logscan_next(struct logscan *ls, const char **line, size_t *len,
		 char *why, size_t whylen);
void logscan_close(struct logscan *ls);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t logtime_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif

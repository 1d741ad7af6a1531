/*
 * logscan - log lines and their timestamps. See logscan.h.
 */
#include "logscan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- timestamps ---- */

int64_t logtime_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* H. Hinnant's algorithm, valid for all Gregorian dates. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int year, int mon)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (mon == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return 29;
	return days[mon - 1];
}

void logtime_init(struct logtime *lt, time_t ref)
{
	struct tm tm;
	memset(lt, 0, sizeof(*lt));
	lt->ref = ref;
	localtime_r(&ref, &tm);
	lt->ref_year = tm.tm_year + 1900;
	lt->c_year = -1;
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Seconds since the epoch of a local hour; cached. */
static int64_t local_hour(struct logtime *lt, int year, int mon, int mday, int hour)
{
	if (year == lt->c_year && mon == lt->c_mon && mday == lt->c_mday &&
	    hour == lt->c_hour)
		return lt->c_value;
	struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1,
			 .tm_mday = mday, .tm_hour = hour, .tm_isdst = -1 };
	time_t t = mktime(&tm);
	lt->c_year = year;
	lt->c_mon = mon;
	lt->c_mday = mday;
	lt->c_hour = hour;
	lt->c_value = (int64_t)t;
	return lt->c_value;
}

static int valid_clock(int h, int m, int s)
{
	return h >= 0 && h <= 23 && m >= 0 && m <= 59 && s >= 0 && s <= 60;
}

static int month_number(const char *s)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int i = 0; i < 12; i++)
		if (memcmp(s, names + 3 * i, 3) == 0)
			return i + 1;
	return -1;
}

/* "Mon DD HH:MM:SS" */
static int parse_syslog(struct logtime *lt, const char *p, size_t len, int64_t *when)
{
	if (len < 15 || p[3] != ' ' || p[6] != ' ' || p[9] != ':' || p[12] != ':')
		return -1;
	int mon = month_number(p);
	int mday = p[4] == ' ' ? digits(p + 5, 1) : digits(p + 4, 2);
	int h = digits(p + 7, 2), m = digits(p + 10, 2), s = digits(p + 13, 2);
	if (mon < 0 || mday < 1 || !valid_clock(h, m, s))
		return -1;
	int year = lt->ref_year;
	if (mday > days_in_month(year, mon) &&
	    mday > days_in_month(year - 1, mon))
		return -1;
	if (mday > days_in_month(year, mon))
		year--;	/* Feb 29 of a leap year before the reference */
	int64_t t = local_hour(lt, year, mon, mday, h) + m * 60 + s;
	if (t > (int64_t)lt->ref + 86400 && mday <= days_in_month(year - 1, mon))
		t = local_hour(lt, year - 1, mon, mday, h) + m * 60 + s;
	*when = t;
	return 0;
}

/* "YYYY-MM-DD" followed by 'T' or ' ' and "HH:MM:SS", then an optional
 * fraction and zone. */
static int parse_iso(struct logtime *lt, const char *p, size_t len, int64_t *when)
{
	if (len < 19 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != ' ') ||
	    p[13] != ':' || p[16] != ':')
		return -1;
	int year = digits(p, 4), mon = digits(p + 5, 2), mday = digits(p + 8, 2);
	int h = digits(p + 11, 2), m = digits(p + 14, 2), s = digits(p + 17, 2);
	if (year < 1970 || mon < 1 || mon > 12 || mday < 1 ||
	    mday > days_in_month(year, mon) || !valid_clock(h, m, s))
		return -1;
	size_t i = 19;
	if (i < len && (p[i] == '.' || p[i] == ',')) {
		i++;
		while (i < len && p[i] >= '0' && p[i] <= '9')
			i++;
	}
	if (i < len && p[i] == 'Z') {
		*when = (logtime_days_from_civil(year, (unsigned)mon, (unsigned)mday) * 24 + h) * 3600 +
			m * 60 + s;
		return 0;
	}
	if (i < len && (p[i] == '+' || p[i] == '-')) {
		int sign = p[i] == '-' ? -1 : 1, oh, om;
		if (len - i >= 6 && p[i + 3] == ':') {
			oh = digits(p + i + 1, 2);
			om = digits(p + i + 4, 2);
		} else if (len - i >= 5) {
			oh = digits(p + i + 1, 2);
			om = digits(p + i + 3, 2);
		} else {
			return -1;
		}
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		int64_t utc = (logtime_days_from_civil(year, (unsigned)mon, (unsigned)mday) * 24 + h) * 3600 +
			      m * 60 + s;
		*when = utc - sign * (oh * 3600 + om * 60);
		return 0;
	}
	/* No zone: local time (Dovecot's log_timestamp). */
	*when = local_hour(lt, year, mon, mday, h) + m * 60 + s;
	return 0;
}

int logtime_parse(struct logtime *lt, const char *line, size_t len, int64_t *when)
{
	if (len >= 15 && line[0] >= 'A' && line[0] <= 'Z')
		return parse_syslog(lt, line, len, when);
	if (len >= 19 && line[0] >= '0' && line[0] <= '9')
		return parse_iso(lt, line, len, when);
	return -1;
}

int logtime_parse_arg(const char *s, time_t now, int64_t *when,
		      char *why, size_t whylen)
{
	size_t len = strlen(s);
	char *end;

	if (len >= 2 && (s[len - 1] == 'd' || s[len - 1] == 'h') &&
	    s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		unsigned long n = strtoul(s, &end, 10);
		if (errno == 0 && end == s + len - 1 && n <= 100000) {
			*when = (int64_t)now - (int64_t)n * (s[len - 1] == 'd' ? 86400 : 3600);
			return 0;
		}
	}
	int year, mon, mday, h = 0, m = 0, sec = 0;
	if (len >= 10 && s[4] == '-' && s[7] == '-') {
		year = digits(s, 4);
		mon = digits(s + 5, 2);
		mday = digits(s + 8, 2);
		bool ok = year >= 1970 && mon >= 1 && mon <= 12 && mday >= 1 &&
			  mday <= days_in_month(year, mon);
		if (ok && len == 10)
			goto done;
		if (ok && (len == 16 || len == 19) && (s[10] == ' ' || s[10] == 'T') &&
		    s[13] == ':') {
			h = digits(s + 11, 2);
			m = digits(s + 14, 2);
			if (len == 19)
				sec = s[16] == ':' ? digits(s + 17, 2) : -1;
			if (valid_clock(h, m, sec))
				goto done;
		}
	}
	snprintf(why, whylen,
		 "'%.40s' is not a time: give YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' or Nd/Nh (days/hours ago)", s);
	return -1;
done:;
	struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = mday,
			 .tm_hour = h, .tm_min = m, .tm_sec = sec, .tm_isdst = -1 };
	*when = (int64_t)mktime(&tm);
	return 0;
}

/* ---- reading lines ---- */

int logscan_open(struct logscan *ls, const char *path, char *why, size_t whylen)
{
	memset(ls, 0, sizeof(*ls));
	ls->name = path;
	int fd;
	if (strcmp(path, "-") == 0) {
		fd = dup(STDIN_FILENO);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s: is a directory", path);
		close(fd);
		return -1;
	}
	ls->mtime = S_ISREG(st.st_mode) ? st.st_mtime : time(NULL);
	ls->buf = malloc(LOGSCAN_BUF_SIZE);
	gzFile gz = ls->buf ? gzdopen(fd, "rb") : NULL;
	if (gz == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		free(ls->buf);
		ls->buf = NULL;
		close(fd);
		return -1;
	}
	gzbuffer(gz, 256 * 1024);
	ls->gz = gz;
	return 0;
}

/* Moves the unread rest to the front and reads more. Returns bytes read,
 * 0 at the end, -1 on error. */
static int refill(struct logscan *ls, char *why, size_t whylen)
{
	if (ls->eof && ls->truncated) {
		snprintf(why, whylen, "%s: compressed data ends early (truncated file)",
			 ls->name);
		return -1;
	}
	if (ls->eof)
		return 0;
	size_t rest = ls->end - ls->start;
	memmove(ls->buf, ls->buf + ls->start, rest);
	ls->start = 0;
	ls->end = rest;
	int n = gzread((gzFile)ls->gz, ls->buf + rest,
		       (unsigned)(LOGSCAN_BUF_SIZE - rest));
	if (n < 0) {
		int err;
		const char *msg = gzerror((gzFile)ls->gz, &err);
		snprintf(why, whylen, "%s: %s", ls->name,
			 err == Z_ERRNO ? strerror(errno) : msg);
		return -1;
	}
	int zerr = Z_OK;
	(void)gzerror((gzFile)ls->gz, &zerr);
	if (zerr == Z_BUF_ERROR) {
		/* gzread ends a .gz cut short (a file still being written,
		 * a copy that failed) like a complete one: the lines read
		 * are handed out, then the next refill says so. */
		ls->truncated = true;
		ls->eof = true;
	}
	if (n == 0)
		ls->eof = true;
	ls->end += (size_t)n;
	return n;
}

int logscan_next(struct logscan *ls, const char **line, size_t *len,
		 char *why, size_t whylen)
{
	for (;;) {
		char *p = ls->buf + ls->start;
		size_t avail = ls->end - ls->start;
		char *nl = avail ? memchr(p, '\n', avail) : NULL;
		if (nl != NULL) {
			size_t n = (size_t)(nl - p);
			ls->start += n + 1;
			if (ls->skipping) {
				ls->skipping = false;
				continue;
			}
			if (n > LOGSCAN_MAX_LINE) {
				ls->long_lines++;
				continue;
			}
			*line = p;
			*len = n;
			ls->lines++;
			return 1;
		}
		if (avail > LOGSCAN_MAX_LINE) {
			/* No newline within the limit: drop what we have and
			 * skip to the next newline. */
			if (!ls->skipping)
				ls->long_lines++;
			ls->skipping = true;
			ls->start = ls->end;
		}
		int r = refill(ls, why, whylen);
		if (r < 0)
			return -1;
		if (r == 0) {
			avail = ls->end - ls->start;
			if (avail == 0 || ls->skipping) {
				ls->start = ls->end;
				return 0;
			}
			/* The last line lacks its newline. */
			*line = ls->buf + ls->start;
			*len = avail;
			ls->start = ls->end;
			ls->lines++;
			return 1;
		}
	}
}

void logscan_close(struct logscan *ls)
{
	if (ls->gz != NULL)
		gzclose((gzFile)ls->gz);
	free(ls->buf);
	memset(ls, 0, sizeof(*ls));
}

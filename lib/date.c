/*
 * date - calendar days as YYYYMMDD integers. See date.h.
 */
#include "date.h"

#include <stdio.h>

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int tg_date_parse(const char *s, size_t len, int32_t *day)
{
	int y, m, d;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	if (digits(s, 4, &y) < 0 || digits(s + 5, 2, &m) < 0 ||
	    digits(s + 8, 2, &d) < 0)
		return -1;
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	*day = y * 10000 + m * 100 + d;
	return 0;
}

int32_t tg_date_of(time_t when)
{
	struct tm tm;
	if (localtime_r(&when, &tm) == NULL)
		return 19700101;
	return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (civil-from-days
 * inverse, valid for the years a policy can name). */
static long day_number(int32_t day)
{
	long y = day / 10000, m = day / 100 % 100, d = day % 100;
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

long tg_date_diff(int32_t a, int32_t b)
{
	return day_number(b) - day_number(a);
}

char *tg_date_format(int32_t day, char *buf, size_t size)
{
	snprintf(buf, size, "%04d-%02d-%02d", (int)(day / 10000),
		 (int)(day / 100 % 100), (int)(day % 100));
	return buf;
}

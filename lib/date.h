/*
 * date - calendar days for from= and until=.
 *
 * A day is kept as the integer YYYYMMDD, so days compare as integers. Policy
 * dates are calendar days in the local time zone: "today" is the local date
 * of a given time. Parsers return -1 for anything but a real YYYY-MM-DD date.
 */
#ifndef TLSGATE_DATE_H
#define TLSGATE_DATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TG_DATE_STRLEN 11	/* "YYYY-MM-DD" */

int tg_date_parse(const char *s, size_t len, int32_t *day);
/* Local calendar day of `when`. */
int32_t tg_date_of(time_t when);
/* Days from a to b (negative when b is earlier). */
long tg_date_diff(int32_t a, int32_t b);
char *tg_date_format(int32_t day, char *buf, size_t size);

#endif

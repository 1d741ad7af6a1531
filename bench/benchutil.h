/*
 * benchutil.h - the clock and the memory figure the C benchmarks print.
 * Header only (static functions): each benchmark is a program of its own.
 * status_kb() returns -1 when /proc/self/status or the key is missing.
 */
#ifndef TLSGATE_BENCHUTIL_H
#define TLSGATE_BENCHUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* seconds on the monotonic clock */
static inline double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* a "Key:  N kB" line of /proc/self/status (e.g. "VmRSS:"), in kB */
static inline long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			kb = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	return kb;
}

#endif

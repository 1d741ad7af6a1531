/*
 * log - syslog or stderr. See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static bool use_stderr = true;
static long pid;	/* getpid() is a system call: once per process */
static bool pending;	/* stderr holds unwritten lines */

void pd_log_open(bool to_stderr)
{
	static char buf[1 << 16];
	static bool buffered;
	if (use_stderr)
		fflush(stderr);
	use_stderr = to_stderr;
	pid = (long)getpid();
	if (use_stderr && !buffered) {
		setvbuf(stderr, buf, _IOFBF, sizeof(buf));
		buffered = true;
	}
	else
		openlog("tlsgate-policyd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static const char *level_name(int priority)
{
	switch (priority & LOG_PRIMASK) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: return "fatal";
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_DEBUG: return "debug";
	default: return "info";
	}
}

void pd_log(int priority, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (use_stderr) {
		fprintf(stderr, "tlsgate-policyd[%ld]: %s: ", pid, level_name(priority));
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		pending = true;
	} else {
		vsyslog(priority, fmt, ap);
	}
	va_end(ap);
}

void pd_log_line(int priority, const char *line)
{
	if (use_stderr) {
		static char prefix[64];
		static long prefix_pid;
		static int prefix_priority = -1;
		if (prefix_pid != pid || prefix_priority != priority) {
			snprintf(prefix, sizeof(prefix), "tlsgate-policyd[%ld]: %s: ", pid,
				 level_name(priority));
			prefix_pid = pid;
			prefix_priority = priority;
		}
		fputs(prefix, stderr);
		fputs(line, stderr);
		fputc('\n', stderr);
		pending = true;
	} else {
		syslog(priority, "%s", line);
	}
}

void pd_log_flush(void)
{
	if (use_stderr && pending)
		fflush(stderr);
	pending = false;
}

bool pd_log_pending(void)
{
	return pending;
}

void pd_log_errors(int priority, const struct tg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		pd_log(priority, "%s", errs->msgs[i]);
	if (errs->dropped > 0)
		pd_log(priority, "(%zu more errors not shown)", errs->dropped);
}

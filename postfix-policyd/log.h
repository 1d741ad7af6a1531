/*
 * log - where tlsgate-policyd writes: syslog (facility mail, ident
 * tlsgate-policyd), or stderr ("tlsgate-policyd[PID]: LEVEL: text") in the
 * foreground. Lines are written whole; with stderr, before the replies
 * they record (see pd_log_flush()). Callers never pass peer data as a format: it goes through
 * "%s" after tg_sanitize() or tg_event_format().
 */
#ifndef TLSGATE_POLICYD_LOG_H
#define TLSGATE_POLICYD_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "errors.h"

void pd_log_open(bool to_stderr);
void pd_log(int priority, const char *fmt, ...) TG_PRINTF(2, 3);
/* The same as pd_log(priority, "%s", line), without format parsing. */
void pd_log_line(int priority, const char *line);
/* stderr is block-buffered: the event loop writes pending lines out
 * before it sends the replies of a batch of events and before it sleeps
 * (one write for many lines under load). */
void pd_log_flush(void);
bool pd_log_pending(void);
/* Every message of errs at `priority`. */
void pd_log_errors(int priority, const struct tg_errors *errs);

#endif

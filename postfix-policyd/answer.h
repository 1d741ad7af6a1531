/*
 * answer - the reply to one policy request, from a policy snapshot.
 *
 * Maps a request to a tg_login (service smtp, subject sasl_username, TLS
 * from encryption_protocol, client from client_address), asks tg_decide()
 * and writes the reply:
 *   reject                  "action=<smtp_reply> <message>"
 *   allow, exempt, audit    "action=DUNNO"
 * The reply never permits anything (no OK), so it cannot open a relay.
 * Without sasl_username the answer is DUNNO and no event, unless
 * `check_unauthenticated` is set: then the envelope sender is the subject
 * (for a submission port or mynetworks relay, never a public MX).
 * An event line is made for every decision about a plaintext session and,
 * when log_tls is set, about a TLS session.
 *
 * Error contract: pd_answer() returns -1 with `why` for a request that is
 * not an smtpd_access_policy request; nothing is allocated or logged here.
 */
#ifndef TLSGATE_POLICYD_ANSWER_H
#define TLSGATE_POLICYD_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "names.h"
#include "policy.h"
#include "request.h"

#define PD_DEFAULT_SMTP_REPLY "530 5.7.0"
/* "action=" + reply code (a config line) + ' ' + a message + "\n\n" */
#define PD_MAX_REPLY (TG_CONFIG_MAX_LINE + TG_POLICY_MAX_TEXT + 32)

struct pd_answer_config {
	const char *smtp_reply;		/* NULL: PD_DEFAULT_SMTP_REPLY */
	const char *message;		/* global message (config) */
	bool check_unauthenticated;
	bool log_tls;
};

struct pd_answer {
	char reply[PD_MAX_REPLY];	/* "action=...\n\n" */
	size_t reply_len;
	bool decided;			/* tg_decide() was asked */
	enum tg_verdict verdict;	/* when decided */
	bool has_event;
	char event[TG_EVENT_MAX_LINE];	/* when has_event */
	const char *user;		/* the subject; points into the request */
};

/* TLS state from encryption_protocol: "" plaintext; "TLSv1".."TLSv1.3"
 * that version; "SSLv2", "SSLv3" count as TLSv1 (the oldest version a
 * policy names, so they fail any min_tls above it); any other non-empty
 * value is TLS of unknown version. */
enum tg_tls pd_tls_of(const char *protocol, size_t len);

/* today: the local day of `now`, which brownout windows are matched
 * against (0: none apply). */
int pd_answer(const struct pd_request *req, const struct tg_policy *policy,
	      const struct pd_answer_config *cfg, int32_t today, int64_t now,
	      struct pd_answer *out, char *why, size_t whylen);

#endif

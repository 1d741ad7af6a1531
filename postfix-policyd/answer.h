/*
 * answer - the reply to one policy request, from a policy snapshot.
 *
 * Maps a request to a tg_login (service smtp, subject sasl_username, TLS
 * from encryption_protocol, client from client_address), asks tg_decide()
 * and writes the reply:
 *   reject, no TLS          "action=<smtp_reply> <message>"
 *   reject, TLS < min_tls   "action=550 5.7.10 <min_tls text>" (450 4.7.10
 *                           when smtp_reply is of class 4)
 *   reject, brownout        "action=<smtp_reply> <brownout text>"
 *   allow, exempt, audit    "action=DUNNO"
 * (docs/postfix.md has every reply, and why these codes.)
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
/* RFC 5248 registry X.7.10 "Encryption Needed": a stronger privacy layer
 * is needed; 550 is RFC 5321's refusal of RCPT for policy reasons. */
#define PD_MIN_TLS_REPLY "550 5.7.10"
#define PD_MIN_TLS_TEMP_REPLY "450 4.7.10"
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

struct tg_decision;
/* The reply code for a refusal: smtp_reply (NULL: the default) for a
 * client without TLS and in a brownout window, PD_MIN_TLS_REPLY (or its
 * class-4 twin, when smtp_reply is of class 4) for TLS below min_tls. */
const char *pd_reject_code(const struct tg_decision *d, const char *smtp_reply);

/* today: the local day of `now`, which brownout windows are matched
 * against (0: none apply). */
int pd_answer(const struct pd_request *req, const struct tg_policy *policy,
	      const struct pd_answer_config *cfg, int32_t today, int64_t now,
	      struct pd_answer *out, char *why, size_t whylen);
/* The same with the account's mode from the user database (-1: none, the
 * files decide): it overrides the file rules, as in the Dovecot module,
 * and the event says rule=userdb. */
int pd_answer_mode(const struct pd_request *req, const struct tg_policy *policy,
		   const struct pd_answer_config *cfg, int32_t today, int64_t now,
		   int mode_override, struct pd_answer *out, char *why, size_t whylen);
/* The account a request is about (see above), NULL when it gets DUNNO
 * without a decision, or is not a policy request. */
const char *pd_answer_subject(const struct pd_request *req,
			      const struct pd_answer_config *cfg);
/* The reply when the user database cannot tell: "451 4.7.0 ..." for
 * failure = tempfail, DUNNO for allow. No event. */
void pd_answer_userdb_failure(enum tg_failure failure, struct pd_answer *out);

#endif

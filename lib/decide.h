/*
 * decide - the verdict for one login, from a policy snapshot.
 *
 * Resolution (docs/policy.md): the mode comes from the most specific mode
 * rule whose protocols include the service - account, then domain, then
 * '*'; no rule means off. require with a from= day after today acts as
 * audit, except inside one of its brownout windows, where it acts as
 * require (so does an audit rule's window). TLS below the rule's min_tls
 * counts as plaintext. A plaintext
 * login is exempt when an exemption of the account, its domain or '*'
 * covers the service, the client address and today. tg_decide() cannot
 * fail and does not allocate; it takes a few hash look-ups.
 */
#ifndef TLSGATE_DECIDE_H
#define TLSGATE_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "names.h"
#include "netaddr.h"
#include "policy.h"
#include "window.h"

/* The ref of a mode that came from the user database (tlsgate_mode=). */
#define TG_REF_USERDB "userdb"

struct tg_login {
	const char *user;		/* login name, NUL-terminated */
	enum tg_service service;
	const struct tg_addr *client;	/* NULL when unknown */
	enum tg_tls tls;
	int32_t today;			/* YYYYMMDD, local */
	int mode_override;		/* -1, or enum tg_mode from the userdb */
	/* "What if the domain were enforced today?": decide as if the
	 * account's domain had `require` for every protocol, with no from=.
	 * The account's own mode rules and all exemptions still apply. */
	bool assume_domain_require;
	int64_t now;			/* seconds since the epoch, for
					 * brownout windows; 0: none apply */
};

struct tg_decision {
	enum tg_verdict verdict;
	enum tg_mode mode;		/* in force today (from= applied) */
	enum tg_mode rule_mode;		/* as the rule says */
	struct tg_rule_ref rule;	/* the deciding mode rule; file NULL:
					 * none (off by default) */
	struct tg_rule_ref exemption;	/* file NULL: none */
	const char *rule_note, *exemption_note;
	const char *message;		/* the rule's message=, or NULL */
	int32_t enforce_from;		/* from= of a require rule, else 0 */
	enum tg_tls min_tls;		/* of the rule, TG_TLS_NONE if none */
	bool tls_below_min;		/* TLS used, but older than min_tls */
	/* A brownout window of the rule is in force: the mode is require
	 * for now. brownout_message: the rule's brownout_message=, or NULL. */
	bool brownout;
	struct tg_window window;
	const char *brownout_message;
};

void tg_decide(const struct tg_policy *policy, const struct tg_login *login,
	       struct tg_decision *decision);

/* The text a refused client is told: in a brownout window the rule's
 * brownout_message= or TG_BROWNOUT_MESSAGE (with the from= date, if the
 * rule has one), else the rule's message= or config_message. Returns buf
 * or a string of the policy or of config_message. */
#define TG_BROWNOUT_MESSAGE \
	"This was a test: plaintext logins were refused for a short time. Set " \
	"your mail program to use SSL/TLS (IMAP port 993, POP3 port 995, SMTP " \
	"port 465) or STARTTLS (ports 143, 110, 587)"
const char *tg_refusal_text(const struct tg_decision *d,
			    const char *config_message, char *buf, size_t size);

/* "FILE:LINE", "userdb" or "default" for a rule ref; returns buf. */
char *tg_rule_ref_format(const struct tg_rule_ref *ref, char *buf, size_t size);

#endif

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
	enum tg_tls tls;		/* the login's, as given */
	const char *min_tls_message;	/* the rule's min_tls_message=, or NULL */
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
 * rule has one); for TLS older than min_tls the rule's min_tls_message=
 * or TG_MIN_TLS_MESSAGE (naming the version used and the minimum: the
 * client did use TLS, so "use STARTTLS" would mislead); else the rule's
 * message= or config_message. Returns buf or a string of the policy or of
 * config_message; TG_CONFIG_MAX_MESSAGE + 1 bytes of buf hold the built-in
 * texts. */
#define TG_BROWNOUT_MESSAGE \
	"This was a test: plaintext logins were refused for a short time. Set " \
	"your mail program to use SSL/TLS (IMAP port 993, POP3 port 995, SMTP " \
	"port 465) or STARTTLS (ports 143, 110, 587)"
#define TG_MIN_TLS_MESSAGE \
	"Your mail program connected with %s, but this server requires %s or " \
	"newer. Update the mail program, or allow the newer TLS version in its " \
	"security settings"
const char *tg_refusal_text(const struct tg_decision *d,
			    const char *config_message, char *buf, size_t size);

/* Where that text comes from, for `tlsgate explain`. */
enum tg_refusal_source {
	TG_TEXT_BROWNOUT_RULE,		/* brownout_message= */
	TG_TEXT_BROWNOUT_DEFAULT,	/* TG_BROWNOUT_MESSAGE */
	TG_TEXT_MIN_TLS_RULE,		/* min_tls_message= */
	TG_TEXT_MIN_TLS_DEFAULT,	/* TG_MIN_TLS_MESSAGE */
	TG_TEXT_RULE,			/* message= */
	TG_TEXT_CONFIG,			/* config_message */
};
enum tg_refusal_source tg_refusal_source(const struct tg_decision *d);

/* "FILE:LINE", "userdb" or "default" for a rule ref; returns buf. */
char *tg_rule_ref_format(const struct tg_rule_ref *ref, char *buf, size_t size);

#endif

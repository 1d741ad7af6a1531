/*
 * tally - per-account aggregation of tlsgate event lines, for `tlsgate
 * report` and `tlsgate notify`.
 *
 * Memory grows with the number of accounts, the plaintext devices (client
 * address, program named in IMAP ID, EHLO name) of each (at most
 * TALLY_MAX_DEVICES kept, the rest counted in devices_dropped) and
 * the distinct strings (addresses, rule references), never with the
 * number of lines: every string is interned once, accounts are found by a
 * hash table keyed by the account name, lower-cased (ASCII) as the policy
 * compares subjects.
 *
 * An event is "plaintext" when tls=none, or when its verdict is exempt,
 * audit or reject (TLS below a rule's min_tls counts as plaintext).
 * Duplicates: an event line carrying session= whose text (from the tag to
 * the end) equals one of the last TALLY_RECENT such events of the same
 * account is counted once (Postfix may send a policy request twice).
 *
 * Credentials exposed: a plaintext event with verdict=reject, mode=require
 * and mech PLAIN or LOGIN. Dovecot decides only after the password was
 * verified, and Postfix only knows sasl_username after a successful AUTH,
 * so such a login sent a valid password in cleartext.
 *
 * Brownouts: an event with verdict=reject and brownout=yes is a refusal in
 * a brownout window (docs/policy.md). It counts like any other rejection
 * (would-break, exposed), and the account also gets a struct
 * tally_brownout, allocated only for such accounts: the refusals, their
 * services and client addresses (at most TALLY_MAX_DEVICES, the rest
 * counted) and what the account did after its last refusal, judged by
 * the times of the events, not by their order in the input: "still
 * plaintext" when a plaintext event that was no brownout refusal came
 * later, else "moved to TLS" when a TLS login came later, else "not seen
 * since". The first TLS login after the last refusal is exact when each
 * account's events are read in time order; when a refusal is read after
 * a TLS login later than it (files given out of order), the latest TLS
 * login is given instead.
 *
 * Errors: tally_add_* return -1 only when memory runs out; malformed
 * events are counted and skipped.
 */
#ifndef TLSGATE_TALLY_H
#define TLSGATE_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "event.h"
#include "policy.h"

#define TALLY_MAX_DEVICES 16
#define TALLY_RECENT 4
#define TALLY_NO_TIME INT64_MIN

/* One device an account used in plaintext: a client address together
 * with the program it named (IMAP ID name and version) and its EHLO name,
 * as the events' device fields give them (client-supplied: shown, never
 * decided on). At most TALLY_DEVICE_TEXT bytes of each are kept. */
#define TALLY_DEVICE_TEXT 64
struct tally_device {
	struct tally_device *next;
	const char *client;		/* interned; "unknown" when not known */
	const char *software;		/* interned "NAME VERSION", or NULL */
	const char *helo;		/* interned EHLO name, or NULL */
	uint8_t services;		/* plaintext services, 1 << tg_service */
	uint8_t nonexempt_services;	/* ... seen with a verdict other than exempt */
	uint8_t break_services;		/* would break if enforced (after finish) */
	uint32_t count;			/* plaintext events */
	uint32_t exempt_hits;
	int64_t first, last;		/* plaintext times, TALLY_NO_TIME if unknown */
	const char *exemption;		/* last exemption seen, or NULL */
};

/* What an account refused in a brownout window did afterwards. */
enum tally_after_brownout {
	TALLY_AFTER_NOT_SEEN,		/* no event after the last refusal */
	TALLY_AFTER_TLS,		/* TLS logins only */
	TALLY_AFTER_PLAINTEXT,		/* plaintext again */
};

/* An account's refusals in brownout windows. */
struct tally_brownout {
	uint32_t refusals;
	uint8_t services;		/* 1 << tg_service */
	uint8_t client_count;
	uint32_t clients_dropped;	/* refusals from addresses past the limit */
	const char *clients[TALLY_MAX_DEVICES];	/* interned, order of first use */
	int64_t first, last;		/* refusal times, TALLY_NO_TIME if unknown */
	int64_t first_tls_after;	/* first TLS login after `last` */
	enum tally_after_brownout after;	/* after tally_finish */
};

struct tally_account {
	const char *name;		/* lower case (ASCII) */
	struct tally_domain *domain;
	uint32_t events, tls_events, plain_events;
	uint32_t exempt_hits, audits, rejects, exposed;
	uint8_t services_all, services_plain, services_exposed;
	uint8_t device_count;
	uint32_t devices_dropped;	/* devices past TALLY_MAX_DEVICES */
	int64_t first_seen, last_seen, first_plain, last_plain;
	int64_t last_exposed;
	const char *enforce_from;	/* last enforce_from= seen, or NULL */
	const char *exemption;		/* last exemption= seen, or NULL */
	int8_t mode;			/* mode= of the last event */
	/* The account's own mode from the user database: the mode of the
	 * last event with rule=userdb, or what tally_set_userdb_modes()
	 * looked up; -1: none (the files decide). */
	int8_t userdb_mode;
	int64_t userdb_when;		/* time of that event */
	struct tally_device *devices;
	uint64_t recent[TALLY_RECENT];
	uint8_t recent_next;
	bool would_break;		/* after tally_finish */
	int32_t policy_enforce_from;	/* from the policy, 0 if none */
	/* After tally_finish: plaintext logins of the account are refused
	 * already (on the day given): by the policy, or without one, as
	 * its events show (verdict=reject). */
	bool enforced;
	struct tally_brownout *brownout;	/* NULL: never refused in one */
	int64_t last_tls;		/* latest TLS login */
	int64_t last_plain_unrefused;	/* latest plaintext event not refused in a brownout */
};

struct tally_domain {
	const char *name;		/* lower case; "" for logins without '@' */
	uint32_t accounts, plain_accounts, tls_only_accounts;
	uint32_t would_break_accounts, exposed_accounts;
	uint64_t events, exempt_hits, audits, rejects;
	/* accounts refused in a brownout window, and of those the ones
	 * seen afterwards with TLS only, or in plaintext again */
	uint32_t brownout_accounts, brownout_tls_accounts, brownout_plain_accounts;
};

/* An exemption reference seen in events, with its use in the window. */
struct tally_exemption_use {
	const char *ref;		/* "FILE:LINE" as written in the events */
	uint64_t hits;
	int64_t first, last;
};

struct tally_map;

struct tally {
	struct tg_arena arena;
	struct tally_map *accounts;	/* name -> tally_account */
	struct tally_map *strings;	/* interned strings */
	struct tally_map *domains;	/* name -> tally_domain */
	struct tally_map *exemptions;	/* ref -> tally_exemption_use */

	/* filters, set before adding */
	int64_t since, until;		/* TALLY_NO_TIME: open */
	const char *only_domain;	/* lower case, or NULL */

	/* counters */
	uint64_t lines, events, bad_events, duplicates, outside_window;
	uint64_t untimed, filtered, long_lines;
	uint64_t foreign;		/* tag not written by tlsgate (origin.h) */
	uint64_t implausible;		/* user or client of the wrong kind */
	int64_t first_time, last_time;	/* of counted events */
	size_t files;
};

int tally_init(struct tally *t);
void tally_free(struct tally *t);

/* Reads one log line: finds the event, its timestamp (logtime_parse on the
 * prefix), applies the filters and counts it. Lines without an event are
 * skipped; a tag that tlsgate did not write (origin.h) is counted in
 * `foreign`, an event with an implausible user or client in
 * `implausible`. `lt` is the caller's struct logtime (void to keep logscan.h
 * out of this header). */
int tally_add_line(struct tally *t, void *lt, const char *line, size_t len);
/* Counts one parsed event. `text`/`text_len` is the event from the tag on,
 * used to recognise duplicates. The user value is lower-cased in place. */
int tally_add_event(struct tally *t, struct tg_event *ev, int64_t when,
		    const char *text, size_t text_len);

/* Reads the files ("-" is stdin; no files: stdin). Prints read errors to
 * stderr and returns -1 after one (lines read so far stay counted). */
int tally_scan(struct tally *t, char **paths, int npaths, const char *progname);

/* Asks the user database for each account, once: lookup() returns 0
 * with *mode (-1: no mode there) or -1 when it cannot tell (then the
 * events' userdb mode stays). Returns the number of failed look-ups. */
typedef int tally_userdb_fn(void *ctx, const char *user, int *mode);
size_t tally_set_userdb_modes(struct tally *t, tally_userdb_fn *lookup, void *ctx);

/* Decides "would break": with a policy, each plaintext device and service
 * is decided as if the account's domain were in require mode today
 * (tls none; the account's own rule, or its mode from the user
 * database, still decides for it), and breaks unless an exemption
 * applies; without one, a device breaks when it was seen in plaintext with
 * a verdict other than exempt. Then fills in the domain figures. */
int tally_finish(struct tally *t, const struct tg_policy *policy, int32_t today);

/* Sorted arrays (caller frees the array, not the elements).
 * tally_brownout_accounts: the accounts refused in a brownout window. */
struct tally_account **tally_accounts(struct tally *t, bool plaintext_only,
				      size_t *count);
struct tally_account **tally_brownout_accounts(struct tally *t, size_t *count);
struct tally_domain **tally_domains(struct tally *t, size_t *count);
struct tally_exemption_use *tally_exemption_find(struct tally *t, const char *ref);
struct tally_exemption_use **tally_exemptions(struct tally *t, size_t *count);

/* "ADDRESS (PROGRAM, EHLO NAME)", "ADDRESS (PROGRAM)", ... or the address
 * alone, as raw text (the caller's writer escapes it). Returns buf. */
char *tally_device_label(const struct tally_device *d, char *buf, size_t size);

/* Lower-case domain of an account name, "" when it has no '@'. */
const char *tally_domain_of(const char *name, size_t len, size_t *dlen);

#endif

/*
 * policy - an immutable policy snapshot: mode rules and exemptions loaded
 * from one file or a directory of *.conf files (format: docs/policy.md).
 *
 * A snapshot never changes after tg_policy_load() returns it; a reload
 * builds a new one (see reload.h). Loading either succeeds completely or
 * returns NULL with every error found in `errs` as "file:line: message":
 * there is no half-loaded policy. The same snapshot may be read by any
 * number of threads.
 */
#ifndef TLSGATE_POLICY_H
#define TLSGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "errors.h"
#include "names.h"
#include "netaddr.h"

/* Limits of the policy format (docs/policy.md). */
#define TG_POLICY_MAX_LINE 4096			/* bytes, without the newline */
#define TG_POLICY_MAX_BYTES (512u * 1024 * 1024)	/* all files together */
#define TG_POLICY_MAX_SUBJECT 320
#define TG_POLICY_MAX_NETS 256			/* networks of one exemption */
#define TG_POLICY_MAX_TEXT 512			/* message= and note= */

struct tg_policy;
struct tg_window;

/* Where a rule stands. file is NULL for "no rule". */
struct tg_rule_ref {
	const char *file;
	uint32_t line;
};

/* A policy from a file or a directory (see filetrust.h for the checks made
 * on each file before it is read). */
struct tg_policy *tg_policy_load(const char *path, struct tg_errors *errs);
/* Whether a directory entry is read as part of a policy: "*.conf", not
 * starting with '.'. */
bool tg_policy_is_conf_name(const char *name);
/* A policy from text in memory, named `name` in errors (tests, fuzzing). */
struct tg_policy *tg_policy_load_buffer(const char *name, const char *data,
					size_t len, struct tg_errors *errs);
void tg_policy_free(struct tg_policy *policy);

struct tg_policy_stats {
	size_t files;
	size_t mode_rules;
	size_t account_subjects;	/* local@domain or bare login names */
	size_t domain_subjects;		/* @domain */
	bool has_global;		/* a rule for '*' */
	size_t exemptions;
	size_t exemptions_expired;	/* until < today */
	size_t exemptions_expiring;	/* today <= until < today + 30 days */
};
void tg_policy_stats(const struct tg_policy *policy, int32_t today,
		     struct tg_policy_stats *stats);

/* Read access to the rules, in the order they were loaded. */
struct tg_mode_rule_info {
	const char *subject;		/* "*", "@domain", "user@domain", "user" */
	enum tg_mode mode;
	uint8_t protocols;		/* mask of 1 << enum tg_service */
	int32_t from;			/* YYYYMMDD, 0 if none */
	enum tg_tls min_tls;		/* TG_TLS_NONE if none */
	const char *message, *note;	/* NULL if none */
	const char *brownout_message;	/* NULL if none */
	const char *min_tls_message;	/* NULL if none */
	const struct tg_window *windows;	/* brownout windows, by start */
	size_t window_count;
	struct tg_rule_ref ref;
};
struct tg_exemption_info {
	const char *subject;
	const struct tg_net *nets;
	size_t net_count;
	uint8_t protocols;
	int32_t until;			/* YYYYMMDD, 0 if none */
	const char *note;
	struct tg_rule_ref ref;
};
size_t tg_policy_mode_rule_count(const struct tg_policy *policy);
void tg_policy_mode_rule(const struct tg_policy *policy, size_t i,
			 struct tg_mode_rule_info *info);
size_t tg_policy_exemption_count(const struct tg_policy *policy);
void tg_policy_exemption(const struct tg_policy *policy, size_t i,
			 struct tg_exemption_info *info);

/* What a snapshot was loaded from, to notice changes (reload.h). */
struct tg_source_stamp {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};
size_t tg_policy_source_count(const struct tg_policy *policy);
const struct tg_source_stamp *tg_policy_source(const struct tg_policy *policy,
					       size_t i);

#endif

/*
 * policy_int - the inside of a policy snapshot, shared by policy.c (which
 * builds it) and decide.c (which reads it). Not for use outside lib/.
 *
 * Subjects are kept lower-case in an open-addressing hash table; each has
 * singly linked lists (array indexes, -1 = end) of its mode rules and
 * exemptions in file order.
 */
#ifndef TLSGATE_POLICY_INT_H
#define TLSGATE_POLICY_INT_H

#include "arena.h"
#include "policy.h"
#include "window.h"

struct tg_subject {
	const char *key;	/* lower-case */
	uint32_t len;
	uint32_t hash;
	int32_t first_mode, last_mode;
	int32_t first_exempt, last_exempt;
};

/* A hash table slot keeps the hash beside the index, so that a probe
 * touches a subject only when the hashes agree. */
struct tg_slot {
	uint32_t hash;
	uint32_t subject;	/* index + 1; 0 = empty */
};

struct tg_mode_rule {
	int32_t next;
	uint32_t subject;
	uint8_t mode;		/* enum tg_mode */
	uint8_t protocols;
	uint8_t min_tls;	/* enum tg_tls */
	int32_t from;
	uint32_t window_first;	/* brownout windows: policy->windows[...] */
	uint32_t window_count;
	const char *message;
	const char *brownout_message;
	const char *min_tls_message;
	const char *note;
	struct tg_rule_ref ref;
};

struct tg_exemption {
	int32_t next;
	uint32_t subject;
	uint8_t protocols;
	int32_t until;
	uint32_t net_first, net_count;
	const char *note;
	struct tg_rule_ref ref;
};

struct tg_policy {
	struct tg_arena arena;
	struct tg_subject *subjects;
	size_t nsubjects, subjects_cap;
	struct tg_slot *slots;
	size_t slot_mask;
	struct tg_mode_rule *modes;
	size_t nmodes, modes_cap;
	struct tg_exemption *exempts;
	size_t nexempts, exempts_cap;
	struct tg_net *nets;
	size_t nnets, nets_cap;
	struct tg_window *windows;
	size_t nwindows, windows_cap;
	int32_t global;		/* subject index of '*', or -1 */
	size_t account_subjects, domain_subjects;
	struct tg_source_stamp *sources;
	size_t nsources;
	size_t files;
};

/* Case-insensitive hash of a subject, FNV-1a over the bytes from the last
 * to the first: the hash of "user@domain" continues the hash of
 * "@domain", so one pass yields both (tg_subject_hash_more). */
#define TG_HASH_START 2166136261u
uint32_t tg_subject_hash(const char *s, size_t len);
uint32_t tg_subject_hash_more(uint32_t h, const char *s, size_t len);
/* Look-up of a subject by hash; -1 if absent. */
int32_t tg_subject_find(const struct tg_policy *policy, const char *s,
			size_t len, uint32_t hash);

/* Starts loading the memory a look-up of `hash` will read first. */
static inline void tg_subject_prefetch(const struct tg_policy *policy,
				       uint32_t hash)
{
	__builtin_prefetch(&policy->slots[hash & policy->slot_mask]);
}

#endif

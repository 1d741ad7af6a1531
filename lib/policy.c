/*
 * policy - loading a policy snapshot from files, and read access to it.
 * See policy.h for the contract, docs/policy.md for the format.
 *
 * Loading is one pass over each file: a line is tokenized, checked and
 * appended; a line with a mistake adds an error and parsing goes on, so
 * that one run reports every mistake. Any error makes the whole load fail.
 */
#include "policy_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "date.h"
#include "filetrust.h"
#include "text.h"

#define INITIAL_SLOTS 64

uint32_t tg_subject_hash_more(uint32_t h, const char *s, size_t len)
{
	for (size_t i = len; i > 0; i--) {
		h ^= (uint8_t)tg_ascii_lower(s[i - 1]);
		h *= 16777619u;
	}
	return h;
}

uint32_t tg_subject_hash(const char *s, size_t len)
{
	return tg_subject_hash_more(TG_HASH_START, s, len);
}

int32_t tg_subject_find(const struct tg_policy *policy, const char *s,
			size_t len, uint32_t hash)
{
	if (policy->slots == NULL)
		return -1;
	for (size_t i = hash & policy->slot_mask;; i = (i + 1) & policy->slot_mask) {
		const struct tg_slot *slot = &policy->slots[i];
		if (slot->subject == 0)
			return -1;
		if (slot->hash != hash)
			continue;
		const struct tg_subject *subj = &policy->subjects[slot->subject - 1];
		/* Keys are lower-case; most logins are too. */
		if (subj->len == len && (memcmp(subj->key, s, len) == 0 ||
					 tg_ascii_caseeq(subj->key, len, s, len)))
			return (int32_t)(slot->subject - 1);
	}
}

/* Makes room for n more elements in a growing array. */
static int reserve(void **array, size_t *cap, size_t used, size_t more,
		   size_t elem)
{
	if (used + more <= *cap)
		return 0;
	size_t want = *cap ? *cap : 16;
	while (want < used + more)
		want *= 2;
	void *p = realloc(*array, want * elem);
	if (p == NULL)
		return -1;
	tg_advise_huge(p, want * elem);
	*array = p;
	*cap = want;
	return 0;
}

static int rehash(struct tg_policy *policy, size_t nslots)
{
	struct tg_slot *slots = calloc(nslots, sizeof(*slots));
	if (slots == NULL)
		return -1;
	tg_advise_huge(slots, nslots * sizeof(*slots));
	size_t mask = nslots - 1;
	for (size_t k = 0; k < policy->nsubjects; k++) {
		uint32_t hash = policy->subjects[k].hash;
		size_t i = hash & mask;
		while (slots[i].subject != 0)
			i = (i + 1) & mask;
		slots[i] = (struct tg_slot){ hash, (uint32_t)(k + 1) };
	}
	free(policy->slots);
	policy->slots = slots;
	policy->slot_mask = mask;
	return 0;
}

/* Grows the table so that `more` subjects fit below half load. */
static int reserve_subjects(struct tg_policy *policy, size_t more)
{
	if (reserve((void **)&policy->subjects, &policy->subjects_cap,
		    policy->nsubjects, more, sizeof(struct tg_subject)) < 0)
		return -1;
	size_t need = (policy->nsubjects + more) * 2;
	size_t nslots = policy->slots ? policy->slot_mask + 1 : INITIAL_SLOTS;
	if (policy->slots != NULL && nslots >= need)
		return 0;
	while (nslots < need)
		nslots *= 2;
	return rehash(policy, nslots);
}

/* Returns the index of a subject (key already lower-case), adding it. */
static int32_t subject_intern(struct tg_policy *policy, const char *key,
			      size_t len)
{
	uint32_t hash = tg_subject_hash(key, len);
	int32_t found = tg_subject_find(policy, key, len, hash);
	if (found >= 0)
		return found;
	if (reserve_subjects(policy, 1) < 0)
		return -1;
	char *copy = tg_arena_strndup(&policy->arena, key, len);
	if (copy == NULL)
		return -1;
	size_t k = policy->nsubjects++;
	policy->subjects[k] = (struct tg_subject){
		.key = copy, .len = (uint32_t)len, .hash = hash,
		.first_mode = -1, .last_mode = -1,
		.first_exempt = -1, .last_exempt = -1,
	};
	size_t i = hash & policy->slot_mask;
	while (policy->slots[i].subject != 0)
		i = (i + 1) & policy->slot_mask;
	policy->slots[i] = (struct tg_slot){ hash, (uint32_t)(k + 1) };
	if (len == 1 && key[0] == '*')
		policy->global = (int32_t)k;
	else if (key[0] == '@')
		policy->domain_subjects++;
	else
		policy->account_subjects++;
	return (int32_t)k;
}

/* ---- parsing one line ------------------------------------------------ */

enum verb { VERB_OFF, VERB_AUDIT, VERB_REQUIRE, VERB_EXEMPT };

struct line_ctx {
	struct tg_policy *policy;
	const char *file;	/* arena copy, used in refs */
	unsigned line;
	struct tg_errors *errs;
	char scratch[TG_POLICY_MAX_LINE + 1];
	size_t scratch_used;
};

#define LINE_ERROR(ctx, ...) \
	tg_errors_add((ctx)->errs, (ctx)->file, (ctx)->line, __VA_ARGS__)

static int parse_verb(const struct tg_token *tok)
{
	static const char *const verbs[] = { "off", "audit", "require", "exempt" };
	if (tok->key != NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strlen(verbs[i]) == tok->len &&
		    memcmp(verbs[i], tok->text, tok->len) == 0)
			return i;
	return -1;
}

static bool subject_char_ok(char c)
{
	return (unsigned char)c > 0x20 && c != 0x7f && c != '"' && c != '\'' &&
	       c != ',' && c != '\\';
}

/* Checks a subject and writes it lower-cased to out. */
static int parse_subject(struct line_ctx *ctx, const struct tg_token *tok,
			 char *out)
{
	char shown[80];
	tg_sanitize(tok->text, tok->len, 60, shown, sizeof(shown));

	if (tok->key != NULL) {
		LINE_ERROR(ctx, "expected a subject (*, @domain, user@domain or user), got '%s'", shown);
		return -1;
	}
	if (tok->len > TG_POLICY_MAX_SUBJECT) {
		LINE_ERROR(ctx, "subject longer than %d bytes", TG_POLICY_MAX_SUBJECT);
		return -1;
	}
	if (tok->len == 1 && tok->text[0] == '*') {
		out[0] = '*';
		return 1;
	}
	const char *at = memchr(tok->text, '@', tok->len);
	if (at != NULL && memchr(at + 1, '@', tok->len - (size_t)(at - tok->text) - 1)) {
		LINE_ERROR(ctx, "subject '%s' has more than one '@'", shown);
		return -1;
	}
	if (at != NULL && at == tok->text + tok->len - 1) {
		LINE_ERROR(ctx, "subject '%s' has no domain after '@'", shown);
		return -1;
	}
	for (size_t i = 0; i < tok->len; i++) {
		if (!subject_char_ok(tok->text[i]) || tok->text[i] == '*') {
			LINE_ERROR(ctx, "subject '%s' has a character that cannot be in a login name", shown);
			return -1;
		}
		out[i] = tg_ascii_lower(tok->text[i]);
	}
	if (!tg_text_valid(tok->text, tok->len)) {
		LINE_ERROR(ctx, "subject '%s' is not valid UTF-8", shown);
		return -1;
	}
	return (int)tok->len;
}

struct rule_args {
	uint8_t protocols;
	int32_t from, until;
	uint8_t min_tls;
	const char *message, *note, *brownout_message, *min_tls_message;
	size_t message_len, note_len, brownout_message_len, min_tls_message_len;
	struct tg_window windows[TG_WINDOW_MAX];
	size_t nwindows;
	const char *nets_text;
	size_t nets_len;
	unsigned seen;		/* bit per key, to find duplicates */
};

enum {
	KEY_PROTOCOLS, KEY_FROM, KEY_UNTIL, KEY_MIN_TLS, KEY_MESSAGE, KEY_NOTE,
	KEY_BROWNOUT, KEY_BROWNOUT_MESSAGE, KEY_MIN_TLS_MESSAGE, NKEYS
};
static const char *const key_names[] = {
	"protocols", "from", "until", "min_tls", "message", "note",
	"brownout", "brownout_message", "min_tls_message",
};

static int text_value(struct line_ctx *ctx, const struct tg_token *tok,
		      const char **value, size_t *len)
{
	if (tok->value_len > TG_POLICY_MAX_TEXT) {
		LINE_ERROR(ctx, "%.*s is longer than %d bytes", (int)tok->key_len,
			   tok->key, TG_POLICY_MAX_TEXT);
		return -1;
	}
	if (!tg_text_valid(tok->value, tok->value_len)) {
		LINE_ERROR(ctx, "%.*s is not valid UTF-8 text (or has control characters)",
			   (int)tok->key_len, tok->key);
		return -1;
	}
	*value = tok->value;
	*len = tok->value_len;
	return 0;
}

static int parse_date_value(struct line_ctx *ctx, const struct tg_token *tok,
			    int32_t *day)
{
	if (tg_date_parse(tok->value, tok->value_len, day) < 0) {
		char shown[40];
		tg_sanitize(tok->value, tok->value_len, 20, shown, sizeof(shown));
		LINE_ERROR(ctx, "%.*s='%s' is not a valid date (YYYY-MM-DD)",
			   (int)tok->key_len, tok->key, shown);
		return -1;
	}
	return 0;
}

/* One key=value argument of a rule. */
static int parse_arg(struct line_ctx *ctx, enum verb verb,
		     const struct tg_token *tok, struct rule_args *args)
{
	char why[200];
	int key = -1;
	for (int i = 0; i < NKEYS; i++)
		if (strlen(key_names[i]) == tok->key_len &&
		    memcmp(tok->key, key_names[i], tok->key_len) == 0)
			key = i;
	if (key < 0) {
		char shown[60];
		tg_sanitize(tok->key, tok->key_len, 40, shown, sizeof(shown));
		LINE_ERROR(ctx, "unknown key '%s' (known: %s)", shown,
			   verb == VERB_EXEMPT ? "protocols, until, note" :
			   "protocols, from, min_tls, message, min_tls_message, "
			   "note, brownout, brownout_message");
		return -1;
	}
	if (args->seen & (1u << key)) {
		LINE_ERROR(ctx, "%s= given twice", key_names[key]);
		return -1;
	}
	args->seen |= 1u << key;

	int allowed;
	switch (key) {
	case KEY_FROM: allowed = verb == VERB_REQUIRE; break;
	case KEY_MIN_TLS: allowed = verb == VERB_REQUIRE || verb == VERB_AUDIT; break;
	case KEY_MESSAGE:
	case KEY_MIN_TLS_MESSAGE: allowed = verb == VERB_REQUIRE; break;
	case KEY_UNTIL: allowed = verb == VERB_EXEMPT; break;
	case KEY_BROWNOUT:
	case KEY_BROWNOUT_MESSAGE:
		allowed = verb == VERB_REQUIRE || verb == VERB_AUDIT;
		break;
	default: allowed = 1;
	}
	if (!allowed) {
		static const char *const verb_names[] = { "off", "audit", "require", "exempt" };
		LINE_ERROR(ctx, "%s= does not go with %s%s", key_names[key],
			   verb_names[verb],
			   key == KEY_FROM ? " (from= sets when a require rule starts to enforce)" :
			   key == KEY_UNTIL ? " (until= is the last day of an exemption)" :
			   key == KEY_BROWNOUT || key == KEY_BROWNOUT_MESSAGE ?
			   " (brownout windows go with audit, or require with from=)" : "");
		return -1;
	}

	switch (key) {
	case KEY_PROTOCOLS:
		if (tg_service_list_parse(tok->value, tok->value_len,
					  &args->protocols, why, sizeof(why)) < 0) {
			LINE_ERROR(ctx, "protocols=: %s", why);
			return -1;
		}
		return 0;
	case KEY_FROM:
		return parse_date_value(ctx, tok, &args->from);
	case KEY_UNTIL:
		return parse_date_value(ctx, tok, &args->until);
	case KEY_MIN_TLS: {
		int v = tg_tls_version_parse(tok->value, tok->value_len);
		if (v < 0) {
			char shown[40];
			tg_sanitize(tok->value, tok->value_len, 20, shown, sizeof(shown));
			LINE_ERROR(ctx, "min_tls='%s' is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", shown);
			return -1;
		}
		args->min_tls = (uint8_t)v;
		return 0;
	}
	case KEY_MESSAGE:
	case KEY_BROWNOUT_MESSAGE:
	case KEY_MIN_TLS_MESSAGE:
		if (tok->value_len == 0) {
			LINE_ERROR(ctx, "%s= is empty", key_names[key]);
			return -1;
		}
		return key == KEY_MESSAGE ?
			text_value(ctx, tok, &args->message, &args->message_len) :
		       key == KEY_MIN_TLS_MESSAGE ?
			text_value(ctx, tok, &args->min_tls_message,
				   &args->min_tls_message_len) :
			text_value(ctx, tok, &args->brownout_message,
				   &args->brownout_message_len);
	case KEY_BROWNOUT:
		if (tg_windows_parse(tok->value, tok->value_len, args->windows,
				     &args->nwindows, why, sizeof(why)) < 0) {
			LINE_ERROR(ctx, "brownout=: %s", why);
			return -1;
		}
		return 0;
	default:
		return text_value(ctx, tok, &args->note, &args->note_len);
	}
}

static int add_nets(struct line_ctx *ctx, const char *s, size_t len,
		    uint32_t *first, uint32_t *count)
{
	struct tg_policy *policy = ctx->policy;
	size_t start = 0, n = 0;
	char why[200];

	*first = (uint32_t)policy->nnets;
	while (start <= len) {
		size_t end = start;
		while (end < len && s[end] != ',')
			end++;
		if (end == start) {
			LINE_ERROR(ctx, "empty item in the network list");
			return -1;
		}
		if (++n > TG_POLICY_MAX_NETS) {
			LINE_ERROR(ctx, "more than %d networks in one exemption", TG_POLICY_MAX_NETS);
			return -1;
		}
		if (reserve((void **)&policy->nets, &policy->nets_cap,
			    policy->nnets, 1, sizeof(struct tg_net)) < 0) {
			LINE_ERROR(ctx, "out of memory");
			return -1;
		}
		if (tg_net_parse(s + start, end - start,
				 &policy->nets[policy->nnets], why, sizeof(why)) < 0) {
			LINE_ERROR(ctx, "%s", why);
			return -1;
		}
		policy->nnets++;
		start = end + 1;
	}
	*count = (uint32_t)n;
	return 0;
}

/* The brownout windows of a rule: only before the rule enforces, and with
 * their own text or none. */
static int check_windows(struct line_ctx *ctx, enum verb verb,
			 const struct rule_args *args)
{
	if (args->nwindows == 0) {
		if (args->brownout_message != NULL) {
			LINE_ERROR(ctx, "brownout_message= without brownout=");
			return -1;
		}
		return 0;
	}
	if (verb == VERB_REQUIRE && args->from == 0) {
		LINE_ERROR(ctx, "brownout= needs from= on a require rule (the windows "
			   "come before the day it enforces)");
		return -1;
	}
	if (verb == VERB_REQUIRE) {
		char day[TG_DATE_STRLEN];
		int64_t from_at;
		tg_date_format(args->from, day, sizeof(day));
		if (tg_time_parse(day, strlen(day), &from_at) == 0 &&
		    args->windows[args->nwindows - 1].end > from_at) {
			char at[32];
			tg_time_format(args->windows[args->nwindows - 1].start, at, sizeof(at));
			LINE_ERROR(ctx, "the brownout window starting %s ends after from=%s "
				   "(windows come before the day a rule enforces)", at, day);
			return -1;
		}
	}
	return 0;
}

static int add_windows(struct line_ctx *ctx, const struct rule_args *args,
		       uint32_t *first)
{
	struct tg_policy *policy = ctx->policy;
	*first = (uint32_t)policy->nwindows;
	if (args->nwindows == 0)
		return 0;
	if (reserve((void **)&policy->windows, &policy->windows_cap,
		    policy->nwindows, args->nwindows, sizeof(struct tg_window)) < 0) {
		LINE_ERROR(ctx, "out of memory");
		return -1;
	}
	memcpy(policy->windows + policy->nwindows, args->windows,
	       args->nwindows * sizeof(struct tg_window));
	policy->nwindows += args->nwindows;
	return 0;
}

static const char *arena_text(struct line_ctx *ctx, const char *s, size_t len)
{
	return s == NULL ? NULL : tg_arena_strndup(&ctx->policy->arena, s, len);
}

static void add_mode_rule(struct line_ctx *ctx, enum verb verb,
			  int32_t subject, const struct rule_args *args)
{
	struct tg_policy *policy = ctx->policy;
	struct tg_subject *subj = &policy->subjects[subject];
	uint8_t protocols = args->protocols ? args->protocols : TG_SERVICES_ALL;

	for (int32_t i = subj->first_mode; i >= 0; i = policy->modes[i].next) {
		const struct tg_mode_rule *other = &policy->modes[i];
		if (other->protocols & protocols) {
			char list[64];
			tg_service_list_format(other->protocols & protocols,
					       list, sizeof(list));
			LINE_ERROR(ctx, "a second mode rule for '%s' (protocols %s); the first is at %s:%u",
				   subj->key, list, other->ref.file, other->ref.line);
			return;
		}
	}
	uint32_t window_first;
	if (args->min_tls_message != NULL && args->min_tls == 0) {
		LINE_ERROR(ctx, "min_tls_message= without min_tls= (it is the text "
			   "for a TLS version below min_tls)");
		return;
	}
	if (check_windows(ctx, verb, args) < 0 || add_windows(ctx, args, &window_first) < 0)
		return;
	if (reserve((void **)&policy->modes, &policy->modes_cap, policy->nmodes,
		    1, sizeof(struct tg_mode_rule)) < 0) {
		LINE_ERROR(ctx, "out of memory");
		return;
	}
	int32_t k = (int32_t)policy->nmodes++;
	policy->modes[k] = (struct tg_mode_rule){
		.next = -1,
		.subject = (uint32_t)subject,
		.mode = verb == VERB_OFF ? TG_MODE_OFF :
			verb == VERB_AUDIT ? TG_MODE_AUDIT : TG_MODE_REQUIRE,
		.protocols = protocols,
		.min_tls = args->min_tls,
		.from = args->from,
		.window_first = window_first,
		.window_count = (uint32_t)args->nwindows,
		.message = arena_text(ctx, args->message, args->message_len),
		.brownout_message = arena_text(ctx, args->brownout_message,
					       args->brownout_message_len),
		.min_tls_message = arena_text(ctx, args->min_tls_message,
					      args->min_tls_message_len),
		.note = arena_text(ctx, args->note, args->note_len),
		.ref = { ctx->file, ctx->line },
	};
	if (subj->last_mode >= 0)
		policy->modes[subj->last_mode].next = k;
	else
		subj->first_mode = k;
	subj->last_mode = k;
}

static void add_exemption(struct line_ctx *ctx, int32_t subject,
			  const struct rule_args *args)
{
	struct tg_policy *policy = ctx->policy;
	uint32_t first, count;

	if (add_nets(ctx, args->nets_text, args->nets_len, &first, &count) < 0)
		return;
	if (reserve((void **)&policy->exempts, &policy->exempts_cap,
		    policy->nexempts, 1, sizeof(struct tg_exemption)) < 0) {
		LINE_ERROR(ctx, "out of memory");
		return;
	}
	struct tg_subject *subj = &policy->subjects[subject];
	int32_t k = (int32_t)policy->nexempts++;
	policy->exempts[k] = (struct tg_exemption){
		.next = -1,
		.subject = (uint32_t)subject,
		.protocols = args->protocols ? args->protocols : TG_SERVICES_ALL,
		.until = args->until,
		.net_first = first,
		.net_count = count,
		.note = arena_text(ctx, args->note, args->note_len),
		.ref = { ctx->file, ctx->line },
	};
	if (subj->last_exempt >= 0)
		policy->exempts[subj->last_exempt].next = k;
	else
		subj->first_exempt = k;
	subj->last_exempt = k;
}

static void parse_line(struct line_ctx *ctx, const char *line, size_t len)
{
	struct tg_token tok;
	size_t pos = 0;
	char why[200], subject[TG_POLICY_MAX_SUBJECT];
	struct rule_args args;
	int r;

	ctx->scratch_used = 0;
	r = tg_next_token(line, len, &pos, &tok, ctx->scratch,
			  &ctx->scratch_used, why, sizeof(why));
	if (r == 0)
		return;		/* blank or comment */
	if (r < 0) {
		LINE_ERROR(ctx, "%s", why);
		return;
	}
	int verb = parse_verb(&tok);
	if (verb < 0) {
		char shown[60];
		tg_sanitize(tok.text, tok.len, 40, shown, sizeof(shown));
		LINE_ERROR(ctx, "unknown verb '%s' (known: off, audit, require, exempt)", shown);
		return;
	}
	r = tg_next_token(line, len, &pos, &tok, ctx->scratch,
			  &ctx->scratch_used, why, sizeof(why));
	if (r <= 0) {
		if (r < 0)
			LINE_ERROR(ctx, "%s", why);
		else
			LINE_ERROR(ctx, "%s needs a subject (*, @domain, user@domain or user)",
				   verb == VERB_EXEMPT ? "exempt" : "a mode rule");
		return;
	}
	int subject_len = parse_subject(ctx, &tok, subject);
	if (subject_len < 0)
		return;

	memset(&args, 0, sizeof(args));
	while ((r = tg_next_token(line, len, &pos, &tok, ctx->scratch,
				  &ctx->scratch_used, why, sizeof(why))) > 0) {
		if (tok.key != NULL) {
			if (parse_arg(ctx, verb, &tok, &args) < 0)
				return;
			continue;
		}
		char shown[60];
		tg_sanitize(tok.text, tok.len, 40, shown, sizeof(shown));
		if (verb != VERB_EXEMPT) {
			LINE_ERROR(ctx, "unexpected '%s' (mode rules take only key=value arguments)", shown);
			return;
		}
		if (args.nets_text != NULL) {
			LINE_ERROR(ctx, "unexpected '%s' (list networks separated by commas, without spaces)", shown);
			return;
		}
		args.nets_text = tok.text;
		args.nets_len = tok.len;
	}
	if (r < 0) {
		LINE_ERROR(ctx, "%s", why);
		return;
	}
	if (verb == VERB_EXEMPT && args.nets_text == NULL) {
		LINE_ERROR(ctx, "exempt needs the networks it applies to (e.g. 192.0.2.10 or 10.20.0.0/16)");
		return;
	}

	int32_t subj = subject_intern(ctx->policy, subject, (size_t)subject_len);
	if (subj < 0) {
		LINE_ERROR(ctx, "out of memory");
		return;
	}
	if (verb == VERB_EXEMPT)
		add_exemption(ctx, subj, &args);
	else
		add_mode_rule(ctx, (enum verb)verb, subj, &args);
}

static struct line_ctx *ctx_new(struct tg_policy *policy, const char *name,
				struct tg_errors *errs)
{
	struct line_ctx *ctx = malloc(sizeof(*ctx));
	if (ctx == NULL) {
		tg_errors_add(errs, name, 0, "out of memory");
		return NULL;
	}
	ctx->policy = policy;
	ctx->errs = errs;
	ctx->line = 0;
	ctx->file = tg_arena_strndup(&policy->arena, name, strlen(name));
	if (ctx->file == NULL) {
		tg_errors_add(errs, name, 0, "out of memory");
		free(ctx);
		return NULL;
	}
	return ctx;
}

/* Most lines are rules: size the tables once for about `lines` more
 * instead of doubling them while loading. Untouched reserved memory is
 * not resident, so a generous guess costs address space only. */
static int reserve_lines(struct tg_policy *policy, size_t lines)
{
	return reserve_subjects(policy, lines) < 0 ||
	       reserve((void **)&policy->modes, &policy->modes_cap,
		       policy->nmodes, lines, sizeof(struct tg_mode_rule)) < 0 ? -1 : 0;
}

static bool too_many_errors(const struct line_ctx *ctx)
{
	return tg_errors_total(ctx->errs) >= TG_ERRORS_MAX;
}

/* One line of a file, without its newline. */
static void feed_line(struct line_ctx *ctx, const char *start, size_t len)
{
	ctx->line++;
	/* A UTF-8 byte order mark, as some editors write, is not text. */
	if (ctx->line == 1 && len >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0) {
		start += 3;
		len -= 3;
	}
	if (len > 0 && start[len - 1] == '\r')
		len--;
	if (len > TG_POLICY_MAX_LINE) {
		LINE_ERROR(ctx, "line longer than %d bytes", TG_POLICY_MAX_LINE);
		return;
	}
	if (memchr(start, '\0', len) != NULL) {
		LINE_ERROR(ctx, "NUL byte in line (not a text file?)");
		return;
	}
	parse_line(ctx, start, len);
}

/* Feeds the complete lines of data[0..len); at the end of the input
 * (last) the rest is a line too. Returns the bytes consumed. */
static size_t feed_lines(struct line_ctx *ctx, const char *data, size_t len,
			 bool last)
{
	size_t pos = 0;
	while (pos < len && !too_many_errors(ctx)) {
		const char *start = data + pos;
		const char *nl = memchr(start, '\n', len - pos);
		if (nl == NULL && !last)
			break;
		size_t line_len = nl ? (size_t)(nl - start) : len - pos;
		feed_line(ctx, start, line_len);
		pos += line_len + (nl != NULL);
	}
	return too_many_errors(ctx) ? len : pos;
}

/* Parses a file's text held in memory. */
static void parse_text(struct tg_policy *policy, const char *name,
		       const char *data, size_t len, struct tg_errors *errs)
{
	struct line_ctx *ctx = ctx_new(policy, name, errs);
	if (ctx == NULL)
		return;
	if (reserve_lines(policy, len / 16 + 1) < 0)
		LINE_ERROR(ctx, "out of memory");
	else
		feed_lines(ctx, data, len, true);
	if (too_many_errors(ctx))
		tg_errors_add(errs, name, 0, "too many errors; stopped reading");
	free(ctx);
}

#define READ_CHUNK (1024 * 1024)

/* Reads and parses an open file in chunks, so that a large policy never
 * sits in memory twice. A line longer than the limit is reported once and
 * skipped to its end. Returns the bytes read, or -1 on a read error. */
static long long parse_fd(struct line_ctx *ctx, int fd, size_t budget)
{
	size_t cap = READ_CHUNK + TG_POLICY_MAX_LINE + 2;
	char *buf = malloc(cap);
	size_t have = 0, total = 0;
	bool skipping = false;

	if (buf == NULL) {
		tg_errors_add(ctx->errs, ctx->file, 0, "out of memory");
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tg_errors_add(ctx->errs, ctx->file, 0, "read: %s", strerror(errno));
			free(buf);
			return -1;
		}
		total += (size_t)n;
		if (total > budget) {
			tg_errors_add(ctx->errs, ctx->file, 0,
				      "policy files are larger than %zu bytes together",
				      (size_t)TG_POLICY_MAX_BYTES);
			free(buf);
			return -1;
		}
		size_t start = 0;
		have += (size_t)n;
		if (skipping) {
			char *nl = memchr(buf, '\n', have);
			if (nl == NULL) {
				have = 0;
				if (n == 0)
					break;
				continue;
			}
			start = (size_t)(nl - buf) + 1;
			skipping = false;
		}
		start += feed_lines(ctx, buf + start, have - start, n == 0);
		if (n == 0 || too_many_errors(ctx))
			break;
		memmove(buf, buf + start, have - start);
		have -= start;
		/* the limit, plus a CR */
		if (have > TG_POLICY_MAX_LINE + 1) {
			ctx->line++;
			LINE_ERROR(ctx, "line longer than %d bytes", TG_POLICY_MAX_LINE);
			skipping = true;
			have = 0;
		}
	}
	free(buf);
	return (long long)total;
}

/* ---- snapshots --------------------------------------------------------- */

static struct tg_policy *policy_new(void)
{
	struct tg_policy *policy = calloc(1, sizeof(*policy));
	if (policy == NULL)
		return NULL;
	tg_arena_init(&policy->arena);
	policy->global = -1;
	if (reserve_subjects(policy, 1) < 0) {
		free(policy);
		return NULL;
	}
	return policy;
}

void tg_policy_free(struct tg_policy *policy)
{
	if (policy == NULL)
		return;
	for (size_t i = 0; i < policy->nsources; i++)
		free(policy->sources[i].path);
	free(policy->sources);
	free(policy->subjects);
	free(policy->slots);
	free(policy->modes);
	free(policy->exempts);
	free(policy->nets);
	free(policy->windows);
	tg_arena_free(&policy->arena);
	free(policy);
}

static int add_source(struct tg_policy *policy, const char *path,
		      const struct stat *st)
{
	struct tg_source_stamp *grown = realloc(policy->sources,
		(policy->nsources + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	policy->sources = grown;
	char *copy = strdup(path);
	if (copy == NULL)
		return -1;
	policy->sources[policy->nsources++] = (struct tg_source_stamp){
		.path = copy, .dev = st->st_dev, .ino = st->st_ino,
		.size = st->st_size, .mtime = st->st_mtim, .ctime = st->st_ctim,
	};
	return 0;
}

struct tg_policy *tg_policy_load_buffer(const char *name, const char *data,
					size_t len, struct tg_errors *errs)
{
	struct tg_policy *policy = policy_new();
	if (policy == NULL) {
		tg_errors_add(errs, name, 0, "out of memory");
		return NULL;
	}
	size_t before = tg_errors_total(errs);
	parse_text(policy, name, data, len, errs);
	policy->files = 1;
	if (tg_errors_total(errs) != before) {
		tg_policy_free(policy);
		return NULL;
	}
	return policy;
}

static int load_file(struct tg_policy *policy, const char *path,
		     int dir_checked, size_t *budget, struct tg_errors *errs)
{
	char why[512];
	struct stat st;
	int fd;

	if (tg_open_trusted(path, dir_checked, &fd, &st, why, sizeof(why)) < 0) {
		tg_errors_add(errs, path, 0, "%s", why);
		return -1;
	}
	struct line_ctx *ctx = ctx_new(policy, path, errs);
	if (ctx == NULL) {
		close(fd);
		return -1;
	}
	/* Rules are rarely shorter than 24 bytes. */
	long long got = -1;
	if (reserve_lines(policy, (size_t)st.st_size / 24 + 1) < 0)
		tg_errors_add(errs, path, 0, "out of memory");
	else
		got = parse_fd(ctx, fd, *budget);
	if (too_many_errors(ctx))
		tg_errors_add(errs, path, 0, "too many errors; stopped reading");
	free(ctx);
	close(fd);
	if (got < 0)
		return -1;
	*budget -= (size_t)got;
	policy->files++;
	if (add_source(policy, path, &st) < 0) {
		tg_errors_add(errs, path, 0, "out of memory");
		return -1;
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool tg_policy_is_conf_name(const char *name)
{
	size_t len = strlen(name);
	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

static void load_dir(struct tg_policy *policy, const char *path,
		     const struct stat *dir_st, struct tg_errors *errs)
{
	DIR *dir = opendir(path);
	char **names = NULL;
	size_t count = 0, cap = 0, budget = TG_POLICY_MAX_BYTES;

	if (dir == NULL) {
		tg_errors_add(errs, path, 0, "%s", strerror(errno));
		return;
	}
	if (add_source(policy, path, dir_st) < 0) {
		tg_errors_add(errs, path, 0, "out of memory");
		closedir(dir);
		return;
	}
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (!tg_policy_is_conf_name(de->d_name))
			continue;
		if (reserve((void **)&names, &cap, count, 1, sizeof(*names)) < 0 ||
		    (names[count] = strdup(de->d_name)) == NULL) {
			tg_errors_add(errs, path, 0, "out of memory");
			break;
		}
		count++;
	}
	closedir(dir);
	if (count > 0)	/* names is NULL for a directory without *.conf */
		qsort(names, count, sizeof(*names), name_cmp);

	size_t dirlen = strlen(path);
	int slash = dirlen > 0 && path[dirlen - 1] == '/';
	for (size_t i = 0; i < count; i++) {
		char *file;
		if (tg_errors_total(errs) < TG_ERRORS_MAX &&
		    asprintf(&file, "%s%s%s", path, slash ? "" : "/", names[i]) >= 0) {
			load_file(policy, file, 1, &budget, errs);
			free(file);
		}
		free(names[i]);
	}
	free(names);
}

struct tg_policy *tg_policy_load(const char *path, struct tg_errors *errs)
{
	struct stat st;
	char why[512];
	size_t before = tg_errors_total(errs);

	if (stat(path, &st) < 0) {
		tg_errors_add(errs, path, 0, "%s", strerror(errno));
		return NULL;
	}
	struct tg_policy *policy = policy_new();
	if (policy == NULL) {
		tg_errors_add(errs, path, 0, "out of memory");
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		if (tg_trust_dir(path, &st, why, sizeof(why)) < 0)
			tg_errors_add(errs, path, 0, "%s", why);
		else
			load_dir(policy, path, &st, errs);
	} else {
		size_t budget = TG_POLICY_MAX_BYTES;
		load_file(policy, path, 0, &budget, errs);
	}
	if (tg_errors_total(errs) != before) {
		tg_policy_free(policy);
		return NULL;
	}
	return policy;
}

/* ---- read access ------------------------------------------------------- */

void tg_policy_stats(const struct tg_policy *policy, int32_t today,
		     struct tg_policy_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	stats->files = policy->files;
	stats->mode_rules = policy->nmodes;
	stats->account_subjects = policy->account_subjects;
	stats->domain_subjects = policy->domain_subjects;
	stats->has_global = policy->global >= 0;
	stats->exemptions = policy->nexempts;
	for (size_t i = 0; i < policy->nexempts; i++) {
		int32_t until = policy->exempts[i].until;
		if (until == 0)
			continue;
		if (until < today)
			stats->exemptions_expired++;
		else if (tg_date_diff(today, until) < 30)
			stats->exemptions_expiring++;
	}
}

size_t tg_policy_mode_rule_count(const struct tg_policy *policy)
{
	return policy->nmodes;
}

void tg_policy_mode_rule(const struct tg_policy *policy, size_t i,
			 struct tg_mode_rule_info *info)
{
	const struct tg_mode_rule *r = &policy->modes[i];
	*info = (struct tg_mode_rule_info){
		.subject = policy->subjects[r->subject].key,
		.mode = (enum tg_mode)r->mode,
		.protocols = r->protocols,
		.from = r->from,
		.min_tls = (enum tg_tls)r->min_tls,
		.message = r->message,
		.note = r->note,
		.brownout_message = r->brownout_message,
		.min_tls_message = r->min_tls_message,
		.windows = r->window_count ? policy->windows + r->window_first : NULL,
		.window_count = r->window_count,
		.ref = r->ref,
	};
}

size_t tg_policy_exemption_count(const struct tg_policy *policy)
{
	return policy->nexempts;
}

void tg_policy_exemption(const struct tg_policy *policy, size_t i,
			 struct tg_exemption_info *info)
{
	const struct tg_exemption *e = &policy->exempts[i];
	*info = (struct tg_exemption_info){
		.subject = policy->subjects[e->subject].key,
		.nets = policy->nets + e->net_first,
		.net_count = e->net_count,
		.protocols = e->protocols,
		.until = e->until,
		.note = e->note,
		.ref = e->ref,
	};
}

size_t tg_policy_source_count(const struct tg_policy *policy)
{
	return policy->nsources;
}

const struct tg_source_stamp *tg_policy_source(const struct tg_policy *policy,
					       size_t i)
{
	return &policy->sources[i];
}

/*
 * tally - per-account aggregation of event lines. See tally.h.
 */
#include "tally.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "logscan.h"
#include "origin.h"
#include "text.h"

/* ---- a string-keyed open-addressing hash table ---- */

struct map_slot {
	uint64_t hash;
	const char *key;	/* NULL: empty */
	size_t len;
	void *value;
};

struct tally_map {
	struct map_slot *slots;
	size_t cap, count;	/* cap is a power of two */
	bool fold;		/* keys compare ASCII case-insensitively */
};

/* 8 bytes at a time; folding only where the table asks for it. */
static uint64_t hash_bytes(const char *s, size_t len, bool fold)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	size_t i = 0;
	if (!fold) {
		for (; i + 8 <= len; i += 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			h = (h ^ w) * 0xff51afd7ed558ccdull;
			h ^= h >> 32;
		}
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (fold && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h = (h ^ c) * 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 29);
}

static struct tally_map *map_new(bool fold)
{
	struct tally_map *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->cap = 1024;
	m->fold = fold;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (m->slots == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

static void map_free(struct tally_map *m)
{
	if (m != NULL)
		free(m->slots);
	free(m);
}

static bool key_eq(const struct tally_map *m, const struct map_slot *s,
		   const char *key, size_t len)
{
	if (s->len != len)
		return false;
	return m->fold ? tg_ascii_caseeq(s->key, len, key, len)
		       : memcmp(s->key, key, len) == 0;
}

static struct map_slot *map_probe(struct tally_map *m, uint64_t h,
				  const char *key, size_t len)
{
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct map_slot *s = &m->slots[i];
		if (s->key == NULL || (s->hash == h && key_eq(m, s, key, len)))
			return s;
	}
}

static int map_grow(struct tally_map *m)
{
	size_t ncap = m->cap * 2;
	struct map_slot *ns = calloc(ncap, sizeof(*ns));
	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		struct map_slot *s = &m->slots[i];
		if (s->key == NULL)
			continue;
		size_t j = (size_t)s->hash & (ncap - 1);
		while (ns[j].key != NULL)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

/* The slot for key: found (key set) or empty, ready to be filled. NULL when
 * the table cannot grow. */
static struct map_slot *map_slot_for(struct tally_map *m, const char *key,
				     size_t len, uint64_t *hash)
{
	if ((m->count + 1) * 2 > m->cap && map_grow(m) < 0)
		return NULL;
	*hash = hash_bytes(key, len, m->fold);
	return map_probe(m, *hash, key, len);
}

static void *map_get(struct tally_map *m, const char *key, size_t len)
{
	uint64_t h = hash_bytes(key, len, m->fold);
	struct map_slot *s = map_probe(m, h, key, len);
	return s->key ? s->value : NULL;
}

/* ---- interning ---- */

static const char *intern(struct tally *t, const char *s, size_t len)
{
	uint64_t h;
	struct map_slot *slot = map_slot_for(t->strings, s, len, &h);
	if (slot == NULL)
		return NULL;
	if (slot->key != NULL)
		return slot->key;
	char *copy = tg_arena_strndup(&t->arena, s, len);
	if (copy == NULL)
		return NULL;
	slot->hash = h;
	slot->key = copy;
	slot->len = len;
	slot->value = copy;
	t->strings->count++;
	return copy;
}

/* ---- setup ---- */

int tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	tg_arena_init(&t->arena);
	t->accounts = map_new(false);	/* keys are lower-cased first */
	t->strings = map_new(false);
	t->domains = map_new(true);
	t->exemptions = map_new(false);
	t->since = t->until = TALLY_NO_TIME;
	t->first_time = t->last_time = TALLY_NO_TIME;
	if (!t->accounts || !t->strings || !t->domains || !t->exemptions) {
		tally_free(t);
		return -1;
	}
	return 0;
}

void tally_free(struct tally *t)
{
	map_free(t->accounts);
	map_free(t->strings);
	map_free(t->domains);
	map_free(t->exemptions);
	tg_arena_free(&t->arena);
	memset(t, 0, sizeof(*t));
}

const char *tally_domain_of(const char *name, size_t len, size_t *dlen)
{
	const char *at = memrchr(name, '@', len);
	if (at == NULL) {
		*dlen = 0;
		return "";
	}
	*dlen = len - (size_t)(at + 1 - name);
	return at + 1;
}

static struct tally_domain *domain_get(struct tally *t, const char *name, size_t len)
{
	uint64_t h;
	struct map_slot *slot = map_slot_for(t->domains, name, len, &h);
	if (slot == NULL)
		return NULL;
	if (slot->key != NULL)
		return slot->value;
	struct tally_domain *d = tg_arena_alloc(&t->arena, sizeof(*d));
	char *lower = tg_arena_strndup(&t->arena, name, len);
	if (d == NULL || lower == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		lower[i] = tg_ascii_lower(lower[i]);
	memset(d, 0, sizeof(*d));
	d->name = lower;
	slot->hash = h;
	slot->key = lower;
	slot->len = len;
	slot->value = d;
	t->domains->count++;
	return d;
}

static struct tally_account *account_get(struct tally *t, const char *name, size_t len)
{
	uint64_t h;
	struct map_slot *slot = map_slot_for(t->accounts, name, len, &h);
	if (slot == NULL)
		return NULL;
	if (slot->key != NULL)
		return slot->value;
	struct tally_account *a = tg_arena_alloc(&t->arena, sizeof(*a));
	char *copy = tg_arena_strndup(&t->arena, name, len);
	if (a == NULL || copy == NULL)
		return NULL;
	memset(a, 0, sizeof(*a));
	size_t dlen;
	const char *dom = tally_domain_of(copy, len, &dlen);
	a->domain = domain_get(t, dom, dlen);
	if (a->domain == NULL)
		return NULL;
	a->name = copy;
	a->mode = -1;
	a->userdb_mode = -1;
	a->userdb_when = TALLY_NO_TIME;
	a->first_seen = a->last_seen = TALLY_NO_TIME;
	a->first_plain = a->last_plain = a->last_exposed = TALLY_NO_TIME;
	a->last_tls = a->last_plain_unrefused = TALLY_NO_TIME;
	slot->hash = h;
	slot->key = copy;
	slot->len = len;
	slot->value = a;
	t->accounts->count++;
	return a;
}

static struct tally_exemption_use *exemption_use(struct tally *t, const char *ref, size_t len)
{
	uint64_t h;
	struct map_slot *slot = map_slot_for(t->exemptions, ref, len, &h);
	if (slot == NULL)
		return NULL;
	if (slot->key != NULL)
		return slot->value;
	struct tally_exemption_use *u = tg_arena_alloc(&t->arena, sizeof(*u));
	const char *key = intern(t, ref, len);
	if (u == NULL || key == NULL)
		return NULL;
	u->ref = key;
	u->hits = 0;
	u->first = u->last = TALLY_NO_TIME;
	slot->hash = h;
	slot->key = key;
	slot->len = len;
	slot->value = u;
	t->exemptions->count++;
	return u;
}

struct tally_exemption_use *tally_exemption_find(struct tally *t, const char *ref)
{
	return map_get(t->exemptions, ref, strlen(ref));
}

/* ---- counting ---- */

static void span(int64_t *first, int64_t *last, int64_t when)
{
	if (when == TALLY_NO_TIME)
		return;
	if (*first == TALLY_NO_TIME || when < *first)
		*first = when;
	if (*last == TALLY_NO_TIME || when > *last)
		*last = when;
}

static bool is_duplicate(struct tally_account *a, uint64_t h)
{
	for (int i = 0; i < TALLY_RECENT; i++)
		if (a->recent[i] == h)
			return true;
	a->recent[a->recent_next] = h;
	a->recent_next = (uint8_t)((a->recent_next + 1) % TALLY_RECENT);
	return false;
}

static bool cleartext_mech(const struct tg_event *ev)
{
	const char *m = ev->value[TG_EV_MECH];
	size_t n = ev->len[TG_EV_MECH];
	return m != NULL && (tg_ascii_caseeq(m, n, "PLAIN", 5) ||
			     tg_ascii_caseeq(m, n, "LOGIN", 5));
}

/* What a device calls itself, cut to TALLY_DEVICE_TEXT bytes on a UTF-8
 * boundary (so that a cut never leaves half a character). */
struct device_names {
	char software[TALLY_DEVICE_TEXT + 1];
	char helo[TALLY_DEVICE_TEXT + 1];
	size_t software_len, helo_len;
};

static size_t cut_text(char *dst, size_t room, const char *src, size_t len)
{
	len = strnlen(src, len);	/* a NUL (\x00 in a log line) ends it */
	size_t n = len < room ? len : room;
	if (n < len)
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

static void device_names_of(const struct tg_event *ev, struct device_names *dn)
{
	dn->software_len = dn->helo_len = 0;
	dn->software[0] = dn->helo[0] = '\0';
	/* "NAME VERSION"; a version without a name is "? VERSION" */
	const char *name = ev->value[TG_EV_IMAP_ID_NAME];
	const char *version = ev->value[TG_EV_IMAP_ID_VERSION];
	if (name != NULL || version != NULL) {
		char both[2 * TALLY_DEVICE_TEXT + 2];
		size_t n = cut_text(both, TALLY_DEVICE_TEXT, name ? name : "?",
				    name ? ev->len[TG_EV_IMAP_ID_NAME] : 1);
		if (version != NULL) {
			both[n++] = ' ';
			n += cut_text(both + n, TALLY_DEVICE_TEXT, version,
				      ev->len[TG_EV_IMAP_ID_VERSION]);
		}
		dn->software_len = cut_text(dn->software, TALLY_DEVICE_TEXT, both, n);
	}
	if (ev->value[TG_EV_HELO] != NULL)
		dn->helo_len = cut_text(dn->helo, TALLY_DEVICE_TEXT, ev->value[TG_EV_HELO],
					ev->len[TG_EV_HELO]);
}

static bool same_text(const char *kept, const char *s, size_t len)
{
	if (len == 0)
		return kept == NULL;
	return kept != NULL && strlen(kept) == len && memcmp(kept, s, len) == 0;
}

/* The account's device for this client and these names; a new one is
 * made (and its texts interned) only while there is room, so that a
 * flood of made-up names costs no memory past the limit. */
static struct tally_device *device_get(struct tally *t, struct tally_account *a,
				       const char *client, const struct device_names *dn)
{
	struct tally_device *d;
	for (d = a->devices; d != NULL; d = d->next)
		if (d->client == client &&
		    same_text(d->software, dn->software, dn->software_len) &&
		    same_text(d->helo, dn->helo, dn->helo_len))
			return d;
	if (a->device_count >= TALLY_MAX_DEVICES) {
		a->devices_dropped++;
		return NULL;
	}
	d = tg_arena_alloc(&t->arena, sizeof(*d));
	if (d == NULL)
		return NULL;
	memset(d, 0, sizeof(*d));
	d->client = client;
	if (dn->software_len > 0 &&
	    (d->software = intern(t, dn->software, dn->software_len)) == NULL)
		return NULL;
	if (dn->helo_len > 0 && (d->helo = intern(t, dn->helo, dn->helo_len)) == NULL)
		return NULL;
	d->first = d->last = TALLY_NO_TIME;
	/* keep the order of first use */
	struct tally_device **tail = &a->devices;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = d;
	a->device_count++;
	return d;
}

/* ---- brownout refusals ---- */

static bool brownout_refusal(const struct tg_event *ev, int verdict)
{
	return verdict == TG_VERDICT_REJECT && ev->value[TG_EV_BROWNOUT] != NULL &&
	       ev->len[TG_EV_BROWNOUT] == 3 && memcmp(ev->value[TG_EV_BROWNOUT], "yes", 3) == 0;
}

static int brownout_add(struct tally *t, struct tally_account *a, int service,
			const char *client, int64_t when)
{
	struct tally_brownout *b = a->brownout;
	if (b == NULL) {
		b = tg_arena_alloc(&t->arena, sizeof(*b));
		if (b == NULL)
			return -1;
		memset(b, 0, sizeof(*b));
		b->first = b->last = b->first_tls_after = TALLY_NO_TIME;
		a->brownout = b;
	}
	b->refusals++;
	b->services |= (uint8_t)(1u << service);
	uint8_t i = 0;
	while (i < b->client_count && b->clients[i] != client)
		i++;
	if (i == b->client_count) {
		if (i < TALLY_MAX_DEVICES)
			b->clients[b->client_count++] = client;
		else
			b->clients_dropped++;
	}
	span(&b->first, &b->last, when);
	/* a TLS login before this refusal is no move to TLS after it */
	if (b->first_tls_after != TALLY_NO_TIME && when != TALLY_NO_TIME &&
	    b->first_tls_after <= when)
		b->first_tls_after = TALLY_NO_TIME;
	return 0;
}

static void brownout_note_tls(struct tally_account *a, int64_t when)
{
	if (when == TALLY_NO_TIME)
		return;
	if (a->last_tls == TALLY_NO_TIME || when > a->last_tls)
		a->last_tls = when;
	struct tally_brownout *b = a->brownout;
	if (b != NULL && b->last != TALLY_NO_TIME && when > b->last &&
	    (b->first_tls_after == TALLY_NO_TIME || when < b->first_tls_after))
		b->first_tls_after = when;
}

/* After all events: what the account did after its last refusal. */
static void brownout_settle(struct tally_account *a)
{
	struct tally_brownout *b = a->brownout;
	if (b == NULL)
		return;
	b->after = TALLY_AFTER_NOT_SEEN;
	if (b->last == TALLY_NO_TIME)
		return;
	if (a->last_plain_unrefused != TALLY_NO_TIME && a->last_plain_unrefused > b->last) {
		b->after = TALLY_AFTER_PLAINTEXT;
	} else if (a->last_tls != TALLY_NO_TIME && a->last_tls > b->last) {
		b->after = TALLY_AFTER_TLS;
		/* read out of order: the exact first one is not known */
		if (b->first_tls_after == TALLY_NO_TIME)
			b->first_tls_after = a->last_tls;
	}
}

char *tally_device_label(const struct tally_device *d, char *buf, size_t size)
{
	if (d->software != NULL && d->helo != NULL)
		snprintf(buf, size, "%s (%s, EHLO %s)", d->client, d->software, d->helo);
	else if (d->software != NULL)
		snprintf(buf, size, "%s (%s)", d->client, d->software);
	else if (d->helo != NULL)
		snprintf(buf, size, "%s (EHLO %s)", d->client, d->helo);
	else
		snprintf(buf, size, "%s", d->client);
	return buf;
}

int tally_add_event(struct tally *t, struct tg_event *ev, int64_t when,
		    const char *text, size_t text_len)
{
	int service = tg_service_parse(ev->value[TG_EV_SERVICE], ev->len[TG_EV_SERVICE]);
	int tls = tg_tls_parse(ev->value[TG_EV_TLS], ev->len[TG_EV_TLS]);
	int verdict = tg_verdict_parse(ev->value[TG_EV_VERDICT], ev->len[TG_EV_VERDICT]);
	int mode = tg_mode_parse(ev->value[TG_EV_MODE], ev->len[TG_EV_MODE]);
	size_t ulen = ev->len[TG_EV_USER];
	if (service < 0 || tls < 0 || verdict < 0 || mode < 0 || ulen == 0) {
		t->bad_events++;
		return 0;
	}
	if (t->only_domain != NULL) {
		size_t dlen;
		const char *dom = tally_domain_of(ev->value[TG_EV_USER], ulen, &dlen);
		if (!tg_ascii_caseeq(dom, dlen, t->only_domain, strlen(t->only_domain))) {
			t->filtered++;
			return 0;
		}
	}
	/* Accounts compare case-insensitively, as policy subjects do: the
	 * name is lower-cased (in the parser's storage) before the look-up. */
	char *user = (char *)ev->value[TG_EV_USER];
	for (size_t i = 0; i < ulen; i++)
		if (user[i] >= 'A' && user[i] <= 'Z')
			user[i] = (char)(user[i] + 32);
	struct tally_account *a = account_get(t, user, ulen);
	if (a == NULL)
		return -1;
	if (ev->value[TG_EV_SESSION] != NULL &&
	    is_duplicate(a, hash_bytes(text, text_len, false) | 1)) {
		t->duplicates++;
		return 0;
	}
	t->events++;
	span(&t->first_time, &t->last_time, when);
	span(&a->first_seen, &a->last_seen, when);
	a->events++;
	a->services_all |= (uint8_t)(1u << service);
	a->mode = (int8_t)mode;
	if (ev->value[TG_EV_RULE] != NULL && ev->len[TG_EV_RULE] == 6 &&
	    memcmp(ev->value[TG_EV_RULE], "userdb", 6) == 0 &&
	    (a->userdb_when == TALLY_NO_TIME || when >= a->userdb_when)) {
		a->userdb_mode = (int8_t)mode;
		a->userdb_when = when;
	}
	if (ev->value[TG_EV_ENFORCE_FROM] != NULL &&
	    (a->enforce_from == NULL || strcmp(a->enforce_from, ev->value[TG_EV_ENFORCE_FROM]) != 0)) {
		a->enforce_from = intern(t, ev->value[TG_EV_ENFORCE_FROM],
					 ev->len[TG_EV_ENFORCE_FROM]);
		if (a->enforce_from == NULL)
			return -1;
	}
	const char *exemption = NULL;
	if (ev->value[TG_EV_EXEMPTION] != NULL) {
		struct tally_exemption_use *u =
			exemption_use(t, ev->value[TG_EV_EXEMPTION], ev->len[TG_EV_EXEMPTION]);
		if (u == NULL)
			return -1;
		u->hits++;
		span(&u->first, &u->last, when);
		exemption = a->exemption = u->ref;
	}

	bool plaintext = tls == TG_TLS_NONE || verdict != TG_VERDICT_ALLOW;
	if (!plaintext) {
		a->tls_events++;
		brownout_note_tls(a, when);
		return 0;
	}
	a->plain_events++;
	a->services_plain |= (uint8_t)(1u << service);
	span(&a->first_plain, &a->last_plain, when);
	if (verdict == TG_VERDICT_EXEMPT)
		a->exempt_hits++;
	else if (verdict == TG_VERDICT_AUDIT)
		a->audits++;
	else if (verdict == TG_VERDICT_REJECT)
		a->rejects++;
	if (verdict == TG_VERDICT_REJECT && mode == TG_MODE_REQUIRE && tls == TG_TLS_NONE &&
	    cleartext_mech(ev)) {
		a->exposed++;
		a->services_exposed |= (uint8_t)(1u << service);
		if (when != TALLY_NO_TIME && (a->last_exposed == TALLY_NO_TIME || when > a->last_exposed))
			a->last_exposed = when;
	}

	const char *client = intern(t, ev->value[TG_EV_CLIENT], ev->len[TG_EV_CLIENT]);
	if (client == NULL)
		return -1;
	if (brownout_refusal(ev, verdict)) {
		if (brownout_add(t, a, service, client, when) < 0)
			return -1;
	} else if (when != TALLY_NO_TIME &&
		   (a->last_plain_unrefused == TALLY_NO_TIME || when > a->last_plain_unrefused)) {
		a->last_plain_unrefused = when;
	}
	struct device_names dn;
	device_names_of(ev, &dn);
	struct tally_device *d = device_get(t, a, client, &dn);
	if (d == NULL)
		return a->devices_dropped ? 0 : -1;
	d->services |= (uint8_t)(1u << service);
	if (verdict != TG_VERDICT_EXEMPT)
		d->nonexempt_services |= (uint8_t)(1u << service);
	else
		d->exempt_hits++;
	if (exemption != NULL)
		d->exemption = exemption;
	d->count++;
	span(&d->first, &d->last, when);
	return 0;
}

int tally_add_line(struct tally *t, void *ltp, const char *line, size_t len)
{
	static struct tg_event_parsed parsed;	/* 12 KiB: not on the stack */
	struct logtime *lt = ltp;
	size_t off = 0;

	t->lines++;
	switch (origin_classify(line, len, &off)) {
	case ORIGIN_NONE:
		return 0;
	case ORIGIN_FOREIGN:
		/* the tag in someone else's text: a Message-ID, a login name */
		t->foreign++;
		return 0;
	case ORIGIN_OURS:
		break;
	}
	const char *tag = line + off;
	if (tg_event_parse(tag, len - off, &parsed) < 0) {
		t->bad_events++;
		return 0;
	}
	if (!origin_event_plausible(&parsed.ev)) {
		t->implausible++;
		return 0;
	}
	int64_t when = TALLY_NO_TIME;
	if (off == 0 || logtime_parse(lt, line, off, &when) < 0) {
		when = TALLY_NO_TIME;
		if (t->since != TALLY_NO_TIME || t->until != TALLY_NO_TIME) {
			t->untimed++;
			return 0;
		}
		t->untimed++;
	}
	if (when != TALLY_NO_TIME &&
	    ((t->since != TALLY_NO_TIME && when < t->since) ||
	     (t->until != TALLY_NO_TIME && when >= t->until))) {
		t->outside_window++;
		return 0;
	}
	size_t text_len = len - off;
	while (text_len > 0 && (tag[text_len - 1] == '\r' || tag[text_len - 1] == '\n'))
		text_len--;
	return tally_add_event(t, &parsed.ev, when, tag, text_len);
}

int tally_scan(struct tally *t, char **paths, int npaths, const char *progname)
{
	static char *stdin_only[] = { "-" };
	if (npaths == 0) {
		paths = stdin_only;
		npaths = 1;
	}
	for (int i = 0; i < npaths; i++) {
		struct logscan ls;
		struct logtime lt;
		char why[512];
		const char *line;
		size_t len;
		int r;

		if (logscan_open(&ls, paths[i], why, sizeof(why)) < 0) {
			fprintf(stderr, "%s: %s\n", progname, why);
			return -1;
		}
		logtime_init(&lt, ls.mtime);
		while ((r = logscan_next(&ls, &line, &len, why, sizeof(why))) > 0) {
			if (tally_add_line(t, &lt, line, len) < 0) {
				fprintf(stderr, "%s: out of memory\n", progname);
				logscan_close(&ls);
				return -1;
			}
		}
		t->long_lines += ls.long_lines;
		t->files++;
		logscan_close(&ls);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", progname, why);
			return -1;
		}
	}
	return 0;
}

/* ---- results ---- */

static void decide_devices(struct tally_account *a, const struct tg_policy *policy,
			   int32_t today)
{
	for (struct tally_device *d = a->devices; d != NULL; d = d->next) {
		d->break_services = 0;
		if (policy == NULL) {
			d->break_services = d->nonexempt_services;
		} else {
			struct tg_addr addr;
			bool known = tg_addr_parse(d->client, strlen(d->client), &addr) == 0;
			for (int s = 0; s < TG_SERVICE_COUNT; s++) {
				if (!(d->services & (1u << s)))
					continue;
				struct tg_login login = {
					.user = a->name, .service = (enum tg_service)s,
					.client = known ? &addr : NULL, .tls = TG_TLS_NONE,
					.today = today, .mode_override = a->userdb_mode,
					.assume_domain_require = true,
				};
				struct tg_decision dec;
				tg_decide(policy, &login, &dec);
				if (dec.verdict == TG_VERDICT_REJECT)
					d->break_services |= (uint8_t)(1u << s);
				login.assume_domain_require = false;
				tg_decide(policy, &login, &dec);
				if (dec.enforce_from != 0 && a->policy_enforce_from == 0)
					a->policy_enforce_from = dec.enforce_from;
				if (dec.verdict == TG_VERDICT_REJECT)
					a->enforced = true;
			}
		}
		if (d->break_services)
			a->would_break = true;
	}
	/* Devices past the limit are not known one by one; their events
	 * still count through the account's verdicts. */
	if (a->devices_dropped > 0 && policy == NULL && (a->audits || a->rejects))
		a->would_break = true;
}

size_t tally_set_userdb_modes(struct tally *t, tally_userdb_fn *lookup, void *ctx)
{
	size_t failed = 0;
	for (size_t i = 0; i < t->accounts->cap; i++) {
		struct map_slot *s = &t->accounts->slots[i];
		if (s->key == NULL)
			continue;
		struct tally_account *a = s->value;
		int mode;
		if (lookup(ctx, a->name, &mode) < 0)
			failed++;
		else
			a->userdb_mode = (int8_t)mode;
	}
	return failed;
}

int tally_finish(struct tally *t, const struct tg_policy *policy, int32_t today)
{
	for (size_t i = 0; i < t->domains->cap; i++) {
		struct map_slot *s = &t->domains->slots[i];
		if (s->key != NULL) {
			struct tally_domain *d = s->value;
			const char *name = d->name;
			memset(d, 0, sizeof(*d));
			d->name = name;
		}
	}
	for (size_t i = 0; i < t->accounts->cap; i++) {
		struct map_slot *s = &t->accounts->slots[i];
		if (s->key == NULL)
			continue;
		struct tally_account *a = s->value;
		struct tally_domain *d = a->domain;
		a->would_break = false;
		/* a refusal in a brownout window is a test, not enforcement */
		a->enforced = policy == NULL &&
			      a->rejects > (a->brownout ? a->brownout->refusals : 0);
		decide_devices(a, policy, today);
		brownout_settle(a);
		d->accounts++;
		d->events += a->events;
		d->exempt_hits += a->exempt_hits;
		d->audits += a->audits;
		d->rejects += a->rejects;
		if (a->plain_events > 0)
			d->plain_accounts++;
		else
			d->tls_only_accounts++;
		if (a->would_break)
			d->would_break_accounts++;
		if (a->exposed > 0)
			d->exposed_accounts++;
		if (a->brownout != NULL) {
			d->brownout_accounts++;
			d->brownout_tls_accounts += a->brownout->after == TALLY_AFTER_TLS;
			d->brownout_plain_accounts += a->brownout->after == TALLY_AFTER_PLAINTEXT;
		}
	}
	return 0;
}

static int cmp_account(const void *x, const void *y)
{
	const struct tally_account *a = *(const struct tally_account *const *)x;
	const struct tally_account *b = *(const struct tally_account *const *)y;
	int c = strcmp(a->domain->name, b->domain->name);
	return c != 0 ? c : strcmp(a->name, b->name);
}

struct tally_account **tally_accounts(struct tally *t, bool plaintext_only,
				      size_t *count)
{
	struct tally_account **v = malloc((t->accounts->count + 1) * sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < t->accounts->cap; i++) {
		struct map_slot *s = &t->accounts->slots[i];
		if (s->key == NULL)
			continue;
		struct tally_account *a = s->value;
		if (!plaintext_only || a->plain_events > 0)
			v[n++] = a;
	}
	qsort(v, n, sizeof(*v), cmp_account);
	*count = n;
	return v;
}

struct tally_account **tally_brownout_accounts(struct tally *t, size_t *count)
{
	struct tally_account **v = malloc((t->accounts->count + 1) * sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < t->accounts->cap; i++) {
		struct map_slot *s = &t->accounts->slots[i];
		if (s->key != NULL && ((struct tally_account *)s->value)->brownout != NULL)
			v[n++] = s->value;
	}
	qsort(v, n, sizeof(*v), cmp_account);
	*count = n;
	return v;
}

static int cmp_domain(const void *x, const void *y)
{
	const struct tally_domain *a = *(const struct tally_domain *const *)x;
	const struct tally_domain *b = *(const struct tally_domain *const *)y;
	return strcmp(a->name, b->name);
}

struct tally_domain **tally_domains(struct tally *t, size_t *count)
{
	struct tally_domain **v = malloc((t->domains->count + 1) * sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < t->domains->cap; i++)
		if (t->domains->slots[i].key != NULL)
			v[n++] = t->domains->slots[i].value;
	qsort(v, n, sizeof(*v), cmp_domain);
	*count = n;
	return v;
}

static int cmp_exemption(const void *x, const void *y)
{
	const struct tally_exemption_use *a = *(const struct tally_exemption_use *const *)x;
	const struct tally_exemption_use *b = *(const struct tally_exemption_use *const *)y;
	return strcmp(a->ref, b->ref);
}

struct tally_exemption_use **tally_exemptions(struct tally *t, size_t *count)
{
	struct tally_exemption_use **v = malloc((t->exemptions->count + 1) * sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < t->exemptions->cap; i++)
		if (t->exemptions->slots[i].key != NULL)
			v[n++] = t->exemptions->slots[i].value;
	qsort(v, n, sizeof(*v), cmp_exemption);
	*count = n;
	return v;
}

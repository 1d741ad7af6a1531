/*
 * report - `tlsgate report`: who still uses plaintext, per domain and per
 * account, read from the event lines in logs (docs/report.md).
 *
 * Output goes to stdout (text, --json, --csv) or to one HTML file
 * (--html FILE, written to FILE.tmp and renamed). Every value taken from a
 * log is written through outfmt, so no log line can inject terminal
 * sequences, JSON, CSV formulas or HTML.
 *
 * Exit status: 0 done, 2 bad arguments, configuration or unreadable input.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cli.h"
#include "date.h"
#include "decide.h"
#include "logscan.h"
#include "outfmt.h"
#include "report.h"
#include "tally.h"
#include "text.h"
#include "accountdb.h"

/* ---- collecting (shared with notify) ---- */

static int userdb_lookup(void *ctx, const char *user, int *mode)
{
	char why[600];
	struct cli_userdb *u = ctx;
	if (cli_userdb_mode(u, user, mode, why, sizeof(why)) == 0)
		return 0;
	return -1;
}

/* Each account seen gets its mode from the user database, one look-up
 * each; when that fails, the mode its events carried stays. */
static void apply_userdb(struct tally *t, const char *socket, unsigned timeout,
			 const char *progname)
{
	char why[600];
	struct cli_userdb *u = cli_userdb_new(socket, timeout, progname);
	if (u == NULL) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return;
	}
	int mode;
	/* one look-up first, to say why when the database cannot be asked */
	if (cli_userdb_mode(u, "tlsgate-check@invalid", &mode, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s: userdb: %s; using the modes the events carry\n",
			progname, why);
		cli_userdb_free(u);
		return;
	}
	size_t failed = tally_set_userdb_modes(t, userdb_lookup, u);
	if (failed > 0)
		fprintf(stderr, "%s: userdb: %zu account(s) could not be looked up; for them "
			"the mode the events carry is used\n", progname, failed);
	cli_userdb_free(u);
}

int report_load_policy(const struct cli_context *ctx, struct report_data *data,
		       char **userdb_socket, unsigned *userdb_timeout, const char *progname)
{
	if (cli_has_config(ctx)) {
		struct tg_config cfg;
		if (cli_load_config(ctx, &cfg) < 0) {
			tg_config_free(&cfg);
			return -1;
		}
		struct tg_errors errs;
		tg_errors_init(&errs);
		data->policy = tg_policy_load(cfg.policy, &errs);
		if (data->policy == NULL) {
			cli_print_errors(&errs);
			tg_errors_clear(&errs);
			tg_config_free(&cfg);
			return -1;
		}
		data->policy_path = strdup(cfg.policy);
		if (cfg.userdb_socket != NULL && userdb_socket != NULL) {
			*userdb_socket = strdup(cfg.userdb_socket);
			*userdb_timeout = cfg.userdb_timeout;
		}
		if (cfg.notify_domains != NULL)
			data->notify_domains = strdup(cfg.notify_domains);
		tg_config_free(&cfg);
	}
	return 0;
}

int report_collect(const struct cli_context *ctx, const struct report_input *in,
		   struct report_data *data, const char *progname)
{
	char why[256];
	time_t now = time(NULL);
	char *userdb_socket = NULL;
	unsigned userdb_timeout = 0;

	memset(data, 0, sizeof(*data));
	if (tally_init(&data->tally) < 0) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return 2;
	}
	struct tally *t = &data->tally;
	if (in->since && logtime_parse_arg(in->since, now, &t->since, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s: --since: %s\n", progname, why);
		return 2;
	}
	if (in->until && logtime_parse_arg(in->until, now, &t->until, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s: --until: %s\n", progname, why);
		return 2;
	}
	data->today = tg_date_of(now);
	if (in->at && tg_date_parse(in->at, strlen(in->at), &data->today) < 0) {
		fprintf(stderr, "%s: --at needs a date YYYY-MM-DD\n", progname);
		return 2;
	}
	if (in->domain != NULL) {
		char *d = strdup(in->domain[0] == '@' ? in->domain + 1 : in->domain);
		if (d == NULL)
			return 2;
		for (char *p = d; *p; p++)
			*p = tg_ascii_lower(*p);
		t->only_domain = d;
	}

	if (report_load_policy(ctx, data, &userdb_socket, &userdb_timeout, progname) < 0)
		return 2;
	if (tally_scan(t, in->files, in->nfiles, progname) < 0) {
		free(userdb_socket);
		return 2;
	}
	if (userdb_socket != NULL)
		apply_userdb(t, userdb_socket, userdb_timeout, progname);
	free(userdb_socket);
	tally_finish(t, data->policy, data->today);
	return 0;
}

void report_data_free(struct report_data *data)
{
	free((char *)data->tally.only_domain);
	tally_free(&data->tally);
	if (data->policy != NULL)
		tg_policy_free(data->policy);
	free(data->policy_path);
	free(data->notify_domains);
	memset(data, 0, sizeof(*data));
}

/* ---- what the outputs share ---- */

struct exemption_row {
	char ref[600];
	const char *subject, *note;
	char until[TG_DATE_STRLEN];
	bool expired, unused;
	uint64_t hits;
	int64_t last;
};

/* The exemption use recorded for a policy exemption: the same FILE:LINE,
 * or the same file name and line when the daemons loaded the policy by
 * another path. */
static struct tally_exemption_use *find_use(struct tally *t, const char *ref,
					    struct tally_exemption_use **all, size_t n)
{
	struct tally_exemption_use *u = tally_exemption_find(t, ref);
	if (u != NULL)
		return u;
	const char *base = strrchr(ref, '/');
	base = base ? base + 1 : ref;
	for (size_t i = 0; i < n; i++) {
		const char *b = strrchr(all[i]->ref, '/');
		b = b ? b + 1 : all[i]->ref;
		if (strcmp(b, base) == 0)
			return all[i];
	}
	return NULL;
}

static bool subject_in_domain(const char *subject, const char *domain)
{
	if (domain == NULL || strcmp(subject, "*") == 0)
		return true;
	const char *at = strrchr(subject, '@');
	return at != NULL && tg_ascii_caseeq(at + 1, strlen(at + 1), domain, strlen(domain));
}

/* Exemptions to list: with a policy, those expired or never used in the
 * window; without, those seen in the events. */
static struct exemption_row *exemption_rows(struct report_data *data, size_t *count)
{
	size_t nuse;
	struct tally_exemption_use **uses = tally_exemptions(&data->tally, &nuse);
	struct exemption_row *rows;
	size_t n = 0;

	*count = 0;
	if (uses == NULL)
		return NULL;
	if (data->policy == NULL) {
		rows = calloc(nuse + 1, sizeof(*rows));
		for (size_t i = 0; rows && i < nuse; i++) {
			snprintf(rows[n].ref, sizeof(rows[n].ref), "%s", uses[i]->ref);
			rows[n].subject = "";
			rows[n].hits = uses[i]->hits;
			rows[n].last = uses[i]->last;
			n++;
		}
	} else {
		size_t total = tg_policy_exemption_count(data->policy);
		rows = calloc(total + 1, sizeof(*rows));
		for (size_t i = 0; rows && i < total; i++) {
			struct tg_exemption_info info;
			tg_policy_exemption(data->policy, i, &info);
			if (!subject_in_domain(info.subject, data->tally.only_domain))
				continue;
			struct exemption_row *r = &rows[n];
			/* the slot may hold a row not kept (used, not expired) */
			memset(r, 0, sizeof(*r));
			tg_rule_ref_format(&info.ref, r->ref, sizeof(r->ref));
			struct tally_exemption_use *u = find_use(&data->tally, r->ref, uses, nuse);
			r->subject = info.subject;
			r->note = info.note;
			r->expired = info.until != 0 && info.until < data->today;
			r->unused = u == NULL || u->hits == 0;
			r->hits = u ? u->hits : 0;
			r->last = u ? u->last : TALLY_NO_TIME;
			if (info.until != 0)
				tg_date_format(info.until, r->until, sizeof(r->until));
			if (r->expired || r->unused)
				n++;
		}
	}
	free(uses);
	*count = n;
	return rows;
}

/* The sorted rows every output form prints: domains, accounts (with
 * plaintext first), exemptions. All or nothing: -1 when out of memory. */
static int rows_get(struct report_data *data, struct tally_domain ***doms, size_t *nd,
		    struct tally_account ***accs, size_t *na,
		    struct exemption_row **ex, size_t *ne)
{
	*doms = tally_domains(&data->tally, nd);
	*accs = tally_accounts(&data->tally, true, na);
	*ex = exemption_rows(data, ne);
	if (*doms != NULL && *accs != NULL && *ex != NULL)
		return 0;
	free(*doms);
	free(*accs);
	free(*ex);
	return -1;
}

static void rows_free(struct tally_domain **doms, struct tally_account **accs,
		      struct exemption_row *ex)
{
	free(doms);
	free(accs);
	free(ex);
}

static double readiness(const struct tally_domain *d)
{
	return d->accounts ? 100.0 * d->tls_only_accounts / d->accounts : 100.0;
}

static const char *enforce_text(const struct tally_account *a, char *buf, size_t size)
{
	if (a->policy_enforce_from != 0)
		return tg_date_format(a->policy_enforce_from, buf, size);
	if (a->enforce_from != NULL)
		return outfmt_text(a->enforce_from, 10, buf, size);
	return "";
}

static const char *domain_label(const char *name)
{
	return name[0] ? name : "(no domain)";
}

/* ---- brownout windows: what the outputs share ---- */

static const char *after_brownout_key(enum tally_after_brownout after)
{
	switch (after) {
	case TALLY_AFTER_TLS: return "tls";
	case TALLY_AFTER_PLAINTEXT: return "plaintext";
	case TALLY_AFTER_NOT_SEEN: break;
	}
	return "not_seen";
}

/* The two lists after the brownout table, the same in every output
 * form: accounts that moved to TLS after their last refusal and those
 * still in plaintext, with the time that shows it. */
static const struct {
	enum tally_after_brownout after;
	const char *text_title, *text_column;
	const char *json_list, *json_time;
	const char *html_title, *html_column;
} brownout_lists[] = {
	{ TALLY_AFTER_TLS, "MOVED TO TLS AFTER A BROWNOUT", "FIRST-TLS-LOGIN",
	  "moved_to_tls", "first_tls_login", "Moved to TLS after a brownout", "First TLS login" },
	{ TALLY_AFTER_PLAINTEXT, "STILL PLAINTEXT AFTER A BROWNOUT", "LAST-PLAINTEXT",
	  "still_plaintext", "last_plaintext", "Still plaintext after a brownout", "Last plaintext" },
};
#define BROWNOUT_LISTS (sizeof(brownout_lists) / sizeof(brownout_lists[0]))

static const char *after_brownout_text(enum tally_after_brownout after)
{
	switch (after) {
	case TALLY_AFTER_TLS: return "moved to TLS";
	case TALLY_AFTER_PLAINTEXT: return "still plaintext";
	case TALLY_AFTER_NOT_SEEN: break;
	}
	return "not seen since";
}

/* "a,b,+N more" of the addresses refused in brownout windows. */
static char *brownout_clients(const struct tally_brownout *b, const char *sep,
			      char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (uint8_t i = 0; i < b->client_count; i++) {
		int w = snprintf(buf + used, size - used, "%s%s", used ? sep : "", b->clients[i]);
		if (w < 0 || (size_t)w >= size - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)w;
	}
	if (b->clients_dropped)
		snprintf(buf + used, size - used, "%s+%u more", used ? sep : "", b->clients_dropped);
	return buf;
}

/* The time a brownout list shows in its last column: the first TLS login
 * after the last refusal, or the last plaintext event after it. */
static int64_t brownout_after_time(const struct tally_account *a)
{
	if (a->brownout->after == TALLY_AFTER_TLS)
		return a->brownout->first_tls_after;
	if (a->brownout->after == TALLY_AFTER_PLAINTEXT)
		return a->last_plain_unrefused;
	return TALLY_NO_TIME;
}

/* ---- text ---- */

#define MAX_COLS 12

struct table {
	size_t ncols, rows, cap;
	char **cells;
	size_t width[MAX_COLS];
	bool right[MAX_COLS];
};

static int table_add(struct table *tb, const char *const *cells);

static void table_init(struct table *tb, size_t ncols, const char *const *head,
		       const char *align)
{
	memset(tb, 0, sizeof(*tb));
	tb->ncols = ncols;
	for (size_t c = 0; c < ncols; c++)
		tb->right[c] = align[c] == 'r';
	table_add(tb, head);
}

/* ---- devices ---- */

/* Whether d is the first device of its account with d's address (the
 * address lists name each address once). */
static bool first_of_client(const struct tally_account *a, const struct tally_device *d)
{
	for (const struct tally_device *e = a->devices; e != d; e = e->next)
		if (e->client == d->client)
			return false;
	return true;
}

/* The device part of a label: "PROGRAM" from IMAP ID, "" if none. */
static const char *device_program(const struct tally_device *d)
{
	return d->software != NULL ? d->software : "";
}

static const char *device_helo(const struct tally_device *d)
{
	return d->helo != NULL ? d->helo : "";
}

/* cells are copied as safe terminal text */
static int table_add(struct table *tb, const char *const *cells)
{
	if (tb->rows == tb->cap) {
		size_t ncap = tb->cap ? tb->cap * 2 : 64;
		char **nc = realloc(tb->cells, ncap * tb->ncols * sizeof(*nc));
		if (nc == NULL)
			return -1;
		tb->cells = nc;
		tb->cap = ncap;
	}
	for (size_t c = 0; c < tb->ncols; c++) {
		char buf[256];
		outfmt_text(cells[c] ? cells[c] : "", 120, buf, sizeof(buf));
		char *copy = strdup(buf);
		if (copy == NULL)
			return -1;
		tb->cells[tb->rows * tb->ncols + c] = copy;
		size_t w = strlen(copy);
		if (w > tb->width[c])
			tb->width[c] = w;
	}
	tb->rows++;
	return 0;
}

static void table_print(struct table *tb, FILE *out)
{
	for (size_t r = 0; r < tb->rows; r++) {
		for (size_t c = 0; c < tb->ncols; c++) {
			const char *s = tb->cells[r * tb->ncols + c];
			bool last = c + 1 == tb->ncols;
			if (tb->right[c])
				fprintf(out, "%*s", (int)tb->width[c], s);
			else if (last)
				fputs(s, out);
			else
				fprintf(out, "%-*s", (int)tb->width[c], s);
			if (!last)
				fputs("  ", out);
		}
		putc('\n', out);
	}
}

static void table_free(struct table *tb)
{
	for (size_t i = 0; i < tb->rows * tb->ncols; i++)
		free(tb->cells[i]);
	free(tb->cells);
}

static void print_header(struct report_data *data, FILE *out)
{
	struct tally *t = &data->tally;
	char a[32], b[32];
	fprintf(out, "tlsgate report: events from %s to %s",
		outfmt_time_text(t->first_time, a, sizeof(a)),
		outfmt_time_text(t->last_time, b, sizeof(b)));
	if (t->since != TALLY_NO_TIME || t->until != TALLY_NO_TIME)
		fprintf(out, " (window %s .. %s)",
			t->since != TALLY_NO_TIME ? outfmt_time_text(t->since, a, sizeof(a)) : "start",
			t->until != TALLY_NO_TIME ? outfmt_time_text(t->until, b, sizeof(b)) : "end");
	fprintf(out, "\n%llu events counted from %zu input(s), %llu lines read",
		(unsigned long long)t->events, t->files, (unsigned long long)t->lines);
	if (t->duplicates)
		fprintf(out, "; %llu duplicate(s) skipped", (unsigned long long)t->duplicates);
	if (t->bad_events)
		fprintf(out, "; %llu malformed event line(s) skipped", (unsigned long long)t->bad_events);
	if (t->implausible)
		fprintf(out, "; %llu event(s) with an implausible user or client skipped",
			(unsigned long long)t->implausible);
	if (t->foreign)
		fprintf(out, "; %llu line(s) with the tag not written by tlsgate ignored",
			(unsigned long long)t->foreign);
	if (t->long_lines)
		fprintf(out, "; %llu over-long line(s) skipped", (unsigned long long)t->long_lines);
	if (t->untimed)
		fprintf(out, "; %llu event(s) without a timestamp%s", (unsigned long long)t->untimed,
			t->since != TALLY_NO_TIME || t->until != TALLY_NO_TIME ? " skipped" : "");
	if (t->outside_window)
		fprintf(out, "; %llu outside the window", (unsigned long long)t->outside_window);
	fprintf(out, "\n");
	if (data->policy != NULL) {
		char path[200];
		fprintf(out, "policy: %s (would-break decided as if enforced on ",
			outfmt_text(data->policy_path, 150, path, sizeof(path)));
		fprintf(out, "%s)\n", tg_date_format(data->today, a, sizeof(a)));
	} else {
		fprintf(out, "no policy given: would-break follows the verdicts in the events\n");
	}
}

static void readiness_bar(double pct, char *buf, size_t size)
{
	int filled = (int)(pct / 5.0 + 0.5);
	size_t n = 0;
	buf[n++] = '[';
	for (int i = 0; i < 20 && n + 2 < size; i++)
		buf[n++] = i < filled ? '#' : '.';
	buf[n++] = ']';
	buf[n] = '\0';
}

/* Per domain: accounts refused in brownout windows and what they did
 * afterwards; then the lists. Nothing when no account was refused. */
static int print_brownout_text(struct report_data *data, struct tally_domain **doms,
			       size_t nd, FILE *out)
{
	size_t nb;
	struct tally_account **bos = tally_brownout_accounts(&data->tally, &nb);
	if (bos == NULL)
		return -1;
	if (nb == 0) {
		free(bos);
		return 0;
	}
	struct table tb;
	static const char *const dhead[] = { "DOMAIN", "REFUSED", "MOVED-TO-TLS",
		"STILL-PLAINTEXT", "NOT-SEEN-SINCE" };
	fprintf(out, "\nREFUSED IN BROWNOUT WINDOWS - these break on the final date (%zu)\n", nb);
	table_init(&tb, 5, dhead, "lrrrr");
	for (size_t i = 0; i < nd; i++) {
		struct tally_domain *d = doms[i];
		char c[4][16];
		if (d->brownout_accounts == 0)
			continue;
		snprintf(c[0], 16, "%u", d->brownout_accounts);
		snprintf(c[1], 16, "%u", d->brownout_tls_accounts);
		snprintf(c[2], 16, "%u", d->brownout_plain_accounts);
		snprintf(c[3], 16, "%u", d->brownout_accounts - d->brownout_tls_accounts -
			 d->brownout_plain_accounts);
		const char *row[] = { domain_label(d->name), c[0], c[1], c[2], c[3] };
		table_add(&tb, row);
	}
	table_print(&tb, out);
	table_free(&tb);

	static const char *const ahead[] = { "ACCOUNT", "SERVICES", "CLIENTS", "REFUSALS",
		"LAST-REFUSAL", "AFTERWARDS" };
	fputs("\n", out);
	table_init(&tb, 6, ahead, "lllrll");
	for (size_t i = 0; i < nb; i++) {
		struct tally_account *a = bos[i];
		char svc[64], clients[200], n[16], last[32];
		snprintf(n, sizeof(n), "%u", a->brownout->refusals);
		const char *row[] = { a->name,
			outfmt_services(a->brownout->services, svc, sizeof(svc)),
			brownout_clients(a->brownout, ",", clients, sizeof(clients)), n,
			outfmt_time_text(a->brownout->last, last, sizeof(last)),
			after_brownout_text(a->brownout->after) };
		table_add(&tb, row);
	}
	table_print(&tb, out);
	table_free(&tb);

	for (size_t l = 0; l < BROWNOUT_LISTS; l++) {
		size_t count = 0;
		for (size_t i = 0; i < nb; i++)
			count += bos[i]->brownout->after == brownout_lists[l].after;
		fprintf(out, "\n%s (%zu)\n", brownout_lists[l].text_title, count);
		if (count == 0)
			continue;
		const char *const head[] = { "ACCOUNT", "LAST-REFUSAL", brownout_lists[l].text_column };
		table_init(&tb, 3, head, "lll");
		for (size_t i = 0; i < nb; i++) {
			struct tally_account *a = bos[i];
			char t1[32], t2[32];
			if (a->brownout->after != brownout_lists[l].after)
				continue;
			const char *row[] = { a->name,
				outfmt_time_text(a->brownout->last, t1, sizeof(t1)),
				outfmt_time_text(brownout_after_time(a), t2, sizeof(t2)) };
			table_add(&tb, row);
		}
		table_print(&tb, out);
		table_free(&tb);
	}
	free(bos);
	return 0;
}

/* One line per plaintext device of each account: the address, the
 * program it named (IMAP ID) and its EHLO name, with count and first and
 * last use; devices past the per-account limit counted. */
static int print_devices_text(struct tally_account **accs, size_t na, FILE *out)
{
	static const char *const head[] = { "ACCOUNT", "CLIENT", "PROGRAM (IMAP ID)", "EHLO",
		"SERVICES", "COUNT", "FIRST", "LAST" };
	struct table tb;
	size_t devices = 0;
	table_init(&tb, 8, head, "lllllrll");
	for (size_t i = 0; i < na; i++) {
		struct tally_account *a = accs[i];
		for (struct tally_device *d = a->devices; d; d = d->next) {
			char svc[64], cnt[16], first[32], last[32];
			snprintf(cnt, sizeof(cnt), "%u", d->count);
			const char *row[] = { a->name, d->client, device_program(d), device_helo(d),
				outfmt_services(d->services, svc, sizeof(svc)), cnt,
				outfmt_time_text(d->first, first, sizeof(first)),
				outfmt_time_text(d->last, last, sizeof(last)) };
			if (table_add(&tb, row) < 0) {
				table_free(&tb);
				return -1;
			}
			devices++;
		}
		if (a->devices_dropped) {
			char more[48];
			snprintf(more, sizeof(more), "+%u more", a->devices_dropped);
			const char *row[] = { a->name, more, "", "", "", "", "", "" };
			if (table_add(&tb, row) < 0) {
				table_free(&tb);
				return -1;
			}
		}
	}
	fprintf(out, "\nPLAINTEXT DEVICES (%zu; at most %d per account, names as the devices give them)\n",
		devices, TALLY_MAX_DEVICES);
	table_print(&tb, out);
	table_free(&tb);
	return 0;
}

static int print_text(struct report_data *data, FILE *out)
{
	size_t nd, na, ne;
	struct tally_domain **doms;
	struct tally_account **accs;
	struct exemption_row *ex;
	if (rows_get(data, &doms, &nd, &accs, &na, &ex, &ne) < 0)
		return -1;
	print_header(data, out);

	struct table tb;
	static const char *const dhead[] = { "DOMAIN", "ACCOUNTS", "PLAINTEXT", "WOULD-BREAK",
		"EXEMPT-HITS", "REJECTED", "EXPOSED", "READY", "" };
	table_init(&tb, 9, dhead, "lrrrrrrrl");
	for (size_t i = 0; i < nd; i++) {
		struct tally_domain *d = doms[i];
		char c[7][32], bar[32];
		snprintf(c[0], 32, "%u", d->accounts);
		snprintf(c[1], 32, "%u", d->plain_accounts);
		snprintf(c[2], 32, "%u", d->would_break_accounts);
		snprintf(c[3], 32, "%llu", (unsigned long long)d->exempt_hits);
		snprintf(c[4], 32, "%llu", (unsigned long long)d->rejects);
		snprintf(c[5], 32, "%u", d->exposed_accounts);
		snprintf(c[6], 32, "%.1f%%", readiness(d));
		readiness_bar(readiness(d), bar, sizeof(bar));
		const char *row[] = { domain_label(d->name), c[0], c[1], c[2], c[3], c[4],
				      c[5], c[6], bar };
		table_add(&tb, row);
	}
	fprintf(out, "\n");
	table_print(&tb, out);
	table_free(&tb);

	fprintf(out, "\nACCOUNTS SEEN IN PLAINTEXT (%zu)\n", na);
	if (na > 0) {
		static const char *const ahead[] = { "ACCOUNT", "SERVICES", "CLIENTS", "FIRST",
			"LAST", "PLAIN", "EXEMPT", "AUDIT", "REJECT", "BREAKS", "ENFORCE", "EXEMPTION" };
		table_init(&tb, 12, ahead, "lllllrrrrlll");
		for (size_t i = 0; i < na; i++) {
			struct tally_account *a = accs[i];
			char svc[64], clients[200], first[32], last[32], n[4][16], enf[16];
			size_t used = 0;
			clients[0] = '\0';
			for (struct tally_device *d = a->devices; d; d = d->next) {
				if (!first_of_client(a, d))
					continue;
				int w = snprintf(clients + used, sizeof(clients) - used, "%s%s",
						 used ? "," : "", d->client);
				if (w < 0 || (size_t)w >= sizeof(clients) - used)
					break;
				used += (size_t)w;
			}
			if (a->devices_dropped)
				snprintf(clients + used, sizeof(clients) - used, ",+%u more",
					 a->devices_dropped);
			snprintf(n[0], 16, "%u", a->plain_events);
			snprintf(n[1], 16, "%u", a->exempt_hits);
			snprintf(n[2], 16, "%u", a->audits);
			snprintf(n[3], 16, "%u", a->rejects);
			const char *row[] = { a->name, outfmt_services(a->services_plain, svc, sizeof(svc)),
				clients, outfmt_time_text(a->first_plain, first, sizeof(first)),
				outfmt_time_text(a->last_plain, last, sizeof(last)),
				n[0], n[1], n[2], n[3], a->would_break ? "yes" : "no",
				enforce_text(a, enf, sizeof(enf)),
				a->exemption ? a->exemption : "" };
			table_add(&tb, row);
		}
		table_print(&tb, out);
		table_free(&tb);
		if (print_devices_text(accs, na, out) < 0) {
			rows_free(doms, accs, ex);
			return -1;
		}
	}

	if (print_brownout_text(data, doms, nd, out) < 0) {
		rows_free(doms, accs, ex);
		return -1;
	}

	size_t exposed = 0;
	for (size_t i = 0; i < na; i++)
		exposed += accs[i]->exposed > 0;
	if (exposed > 0) {
		fprintf(out, "\nCREDENTIALS EXPOSED - consider a reset (%zu)\n", exposed);
		fprintf(out, "A valid password was sent in cleartext and the login was rejected:\n");
		for (size_t i = 0; i < na; i++) {
			struct tally_account *a = accs[i];
			char name[200], svc[64], last[32];
			if (a->exposed == 0)
				continue;
			fprintf(out, "  %s  %s  %u time(s), last %s\n",
				outfmt_text(a->name, 120, name, sizeof(name)),
				outfmt_services(a->services_exposed, svc, sizeof(svc)), a->exposed,
				outfmt_time_text(a->last_exposed, last, sizeof(last)));
		}
	}

	if (data->policy != NULL) {
		fprintf(out, "\nEXEMPTIONS EXPIRED OR NOT USED IN THE WINDOW (%zu)\n", ne);
		for (size_t i = 0; i < ne; i++) {
			char ref[200], subj[200], note[200];
			fprintf(out, "  %s  %s  %s%s%s%s%s%s\n",
				outfmt_text(ex[i].ref, 150, ref, sizeof(ref)),
				outfmt_text(ex[i].subject, 150, subj, sizeof(subj)),
				ex[i].expired ? "expired " : "", ex[i].expired ? ex[i].until : "",
				ex[i].expired && ex[i].unused ? ", " : "",
				ex[i].unused ? "not used in the window" : "",
				ex[i].note ? " - " : "",
				ex[i].note ? outfmt_text(ex[i].note, 100, note, sizeof(note)) : "");
		}
	} else if (ne > 0) {
		fprintf(out, "\nEXEMPTIONS USED (%zu)\n", ne);
		for (size_t i = 0; i < ne; i++) {
			char ref[200], last[32];
			fprintf(out, "  %s  %llu hit(s), last %s\n",
				outfmt_text(ex[i].ref, 150, ref, sizeof(ref)),
				(unsigned long long)ex[i].hits,
				outfmt_time_text(ex[i].last, last, sizeof(last)));
		}
	}
	rows_free(doms, accs, ex);
	return 0;
}

/* ---- would-break ---- */

static int print_would_break(struct report_data *data, FILE *out, int format)
{
	size_t na;
	struct tally_account **accs = tally_accounts(&data->tally, true, &na);
	if (accs == NULL)
		return -1;
	struct table tb;
	static const char *const head[] = { "ACCOUNT", "CLIENT", "SERVICES", "COUNT", "LAST",
		"PROGRAM (IMAP ID)", "EHLO" };
	if (format == 'j')
		fputs("[", out);
	else if (format == 'c')
		fputs("account,client,services,count,last,program,helo\n", out);
	else {
		table_init(&tb, 7, head, "lllrlll");
	}
	bool first = true;
	size_t accounts = 0;
	for (size_t i = 0; i < na; i++) {
		struct tally_account *a = accs[i];
		if (!a->would_break)
			continue;
		accounts++;
		for (struct tally_device *d = a->devices; d; d = d->next) {
			if (!d->break_services)
				continue;
			char svc[64], cnt[16], last[40];
			outfmt_services(d->break_services, svc, sizeof(svc));
			snprintf(cnt, sizeof(cnt), "%u", d->count);
			if (format == 'j') {
				fputs(first ? "\n" : ",\n", out);
				fputs("{\"account\":", out);
				outfmt_json_string(out, a->name);
				fputs(",\"client\":", out);
				outfmt_json_string(out, d->client);
				fprintf(out, ",\"services\":\"%s\",\"count\":%u,\"last\":", svc, d->count);
				outfmt_json_string(out, outfmt_time_iso(d->last, last, sizeof(last)));
				fputs(",\"program\":", out);
				outfmt_json_string(out, device_program(d));
				fputs(",\"helo\":", out);
				outfmt_json_string(out, device_helo(d));
				fputs("}", out);
			} else if (format == 'c') {
				outfmt_csv_field(out, a->name);
				putc(',', out);
				outfmt_csv_field(out, d->client);
				fprintf(out, ",\"%s\",%u,", svc, d->count);
				outfmt_csv_field(out, outfmt_time_iso(d->last, last, sizeof(last)));
				putc(',', out);
				outfmt_csv_field(out, device_program(d));
				putc(',', out);
				outfmt_csv_field(out, device_helo(d));
				putc('\n', out);
			} else {
				const char *row[] = { a->name, d->client, svc, cnt,
					outfmt_time_text(d->last, last, sizeof(last)),
					device_program(d), device_helo(d) };
				table_add(&tb, row);
			}
			first = false;
		}
	}
	if (format == 'j') {
		fputs(first ? "]\n" : "\n]\n", out);
	} else if (format != 'c') {
		char dom[200];
		fprintf(out, "Enforcing %s would cut off %zu account(s):\n",
			outfmt_text(data->tally.only_domain, 150, dom, sizeof(dom)), accounts);
		if (accounts)
			table_print(&tb, out);
		table_free(&tb);
	}
	free(accs);
	return 0;
}

/* ---- JSON ---- */

static void json_kv_str(FILE *out, const char *key, const char *value, bool comma)
{
	fprintf(out, "%s\"%s\":", comma ? "," : "", key);
	outfmt_json_string(out, value);
}

static void json_services(FILE *out, uint8_t mask)
{
	bool first = true;
	putc('[', out);
	for (int s = 0; s < TG_SERVICE_COUNT; s++)
		if (mask & (1u << s)) {
			fprintf(out, "%s\"%s\"", first ? "" : ",", tg_service_name((enum tg_service)s));
			first = false;
		}
	putc(']', out);
}

/* "brownouts": {"refused":[...], "moved_to_tls":[...], "still_plaintext":[...]} */
static int print_brownout_json(struct report_data *data, FILE *out)
{
	size_t nb;
	char t1[40];
	struct tally_account **bos = tally_brownout_accounts(&data->tally, &nb);
	if (bos == NULL) {
		fputs("{}", out);
		return -1;
	}
	fputs("{\"refused\":[", out);
	for (size_t i = 0; i < nb; i++) {
		const struct tally_account *a = bos[i];
		const struct tally_brownout *b = a->brownout;
		fputs(i ? ",\n{" : "\n{", out);
		json_kv_str(out, "account", a->name, false);
		json_kv_str(out, "domain", a->domain->name, true);
		fputs(",\"services\":", out);
		json_services(out, b->services);
		fputs(",\"clients\":[", out);
		for (uint8_t c = 0; c < b->client_count; c++) {
			if (c)
				putc(',', out);
			outfmt_json_string(out, b->clients[c]);
		}
		fprintf(out, "],\"clients_not_listed\":%u,\"refusals\":%u", b->clients_dropped,
			b->refusals);
		json_kv_str(out, "first_refusal", outfmt_time_iso(b->first, t1, sizeof(t1)), true);
		json_kv_str(out, "last_refusal", outfmt_time_iso(b->last, t1, sizeof(t1)), true);
		json_kv_str(out, "afterwards", after_brownout_key(b->after), true);
		fputs("}", out);
	}
	for (size_t l = 0; l < BROWNOUT_LISTS; l++) {
		bool first = true;
		fprintf(out, "],\n\"%s\":[", brownout_lists[l].json_list);
		for (size_t i = 0; i < nb; i++) {
			const struct tally_account *a = bos[i];
			if (a->brownout->after != brownout_lists[l].after)
				continue;
			fputs(first ? "\n{" : ",\n{", out);
			first = false;
			json_kv_str(out, "account", a->name, false);
			json_kv_str(out, "domain", a->domain->name, true);
			json_kv_str(out, "last_refusal",
				    outfmt_time_iso(a->brownout->last, t1, sizeof(t1)), true);
			json_kv_str(out, brownout_lists[l].json_time,
				    outfmt_time_iso(brownout_after_time(a), t1, sizeof(t1)), true);
			fputs("}", out);
		}
	}
	fputs("]}", out);
	free(bos);
	return 0;
}

static int print_json(struct report_data *data, FILE *out)
{
	struct tally *t = &data->tally;
	size_t nd, na, ne;
	char tb1[40];
	struct tally_domain **doms;
	struct tally_account **accs;
	struct exemption_row *ex;
	if (rows_get(data, &doms, &nd, &accs, &na, &ex, &ne) < 0)
		return -1;
	fputs("{", out);
	json_kv_str(out, "since", outfmt_time_iso(t->since, tb1, sizeof(tb1)), false);
	json_kv_str(out, "until", outfmt_time_iso(t->until, tb1, sizeof(tb1)), true);
	json_kv_str(out, "first_event", outfmt_time_iso(t->first_time, tb1, sizeof(tb1)), true);
	json_kv_str(out, "last_event", outfmt_time_iso(t->last_time, tb1, sizeof(tb1)), true);
	json_kv_str(out, "policy", data->policy_path ? data->policy_path : "", true);
	json_kv_str(out, "decided_for", tg_date_format(data->today, tb1, sizeof(tb1)), true);
	fprintf(out, ",\"input\":{\"files\":%zu,\"lines\":%llu,\"events\":%llu,"
		"\"duplicates\":%llu,\"malformed\":%llu,\"long_lines\":%llu,"
		"\"untimed\":%llu,\"outside_window\":%llu,\"implausible\":%llu,"
		"\"ignored\":%llu}",
		t->files, (unsigned long long)t->lines, (unsigned long long)t->events,
		(unsigned long long)t->duplicates, (unsigned long long)t->bad_events,
		(unsigned long long)t->long_lines, (unsigned long long)t->untimed,
		(unsigned long long)t->outside_window, (unsigned long long)t->implausible,
		(unsigned long long)t->foreign);
	fputs(",\n\"domains\":[", out);
	for (size_t i = 0; i < nd; i++) {
		struct tally_domain *d = doms[i];
		fputs(i ? ",\n{" : "\n{", out);
		json_kv_str(out, "domain", d->name, false);
		fprintf(out, ",\"accounts\":%u,\"plaintext_accounts\":%u,\"tls_only_accounts\":%u,"
			"\"would_break_accounts\":%u,\"credentials_exposed_accounts\":%u,"
			"\"events\":%llu,\"exempt_hits\":%llu,\"audits\":%llu,\"rejections\":%llu,"
			"\"readiness\":%.1f,\"brownout_refused_accounts\":%u,"
			"\"brownout_moved_to_tls_accounts\":%u,"
			"\"brownout_still_plaintext_accounts\":%u}",
			d->accounts, d->plain_accounts, d->tls_only_accounts,
			d->would_break_accounts, d->exposed_accounts,
			(unsigned long long)d->events, (unsigned long long)d->exempt_hits,
			(unsigned long long)d->audits, (unsigned long long)d->rejects, readiness(d),
			d->brownout_accounts, d->brownout_tls_accounts, d->brownout_plain_accounts);
	}
	fputs("],\n\"accounts\":[", out);
	for (size_t i = 0; i < na; i++) {
		struct tally_account *a = accs[i];
		char enf[16];
		fputs(i ? ",\n{" : "\n{", out);
		json_kv_str(out, "account", a->name, false);
		json_kv_str(out, "domain", a->domain->name, true);
		fputs(",\"plaintext_services\":", out);
		json_services(out, a->services_plain);
		fprintf(out, ",\"events\":%u,\"tls_events\":%u,\"plaintext_events\":%u,"
			"\"exempt_hits\":%u,\"audits\":%u,\"rejections\":%u,"
			"\"credentials_exposed\":%u,\"would_break\":%s",
			a->events, a->tls_events, a->plain_events, a->exempt_hits, a->audits,
			a->rejects, a->exposed, a->would_break ? "true" : "false");
		json_kv_str(out, "first_plaintext", outfmt_time_iso(a->first_plain, tb1, sizeof(tb1)), true);
		json_kv_str(out, "last_plaintext", outfmt_time_iso(a->last_plain, tb1, sizeof(tb1)), true);
		json_kv_str(out, "enforce_from", enforce_text(a, enf, sizeof(enf)), true);
		json_kv_str(out, "exemption", a->exemption ? a->exemption : "", true);
		fprintf(out, ",\"clients_not_listed\":%u,\"clients\":[", a->devices_dropped);
		for (struct tally_device *d = a->devices; d; d = d->next) {
			fputs(d == a->devices ? "{" : ",{", out);
			json_kv_str(out, "address", d->client, false);
			fputs(",\"services\":", out);
			json_services(out, d->services);
			fputs(",\"would_break_services\":", out);
			json_services(out, d->break_services);
			fprintf(out, ",\"count\":%u,\"exempt_hits\":%u", d->count, d->exempt_hits);
			json_kv_str(out, "first", outfmt_time_iso(d->first, tb1, sizeof(tb1)), true);
			json_kv_str(out, "last", outfmt_time_iso(d->last, tb1, sizeof(tb1)), true);
			json_kv_str(out, "exemption", d->exemption ? d->exemption : "", true);
			json_kv_str(out, "program", device_program(d), true);
			json_kv_str(out, "helo", device_helo(d), true);
			fputs("}", out);
		}
		fputs("]}", out);
	}
	fputs("],\n\"exemptions\":[", out);
	for (size_t i = 0; i < ne; i++) {
		fputs(i ? ",\n{" : "\n{", out);
		json_kv_str(out, "ref", ex[i].ref, false);
		json_kv_str(out, "subject", ex[i].subject, true);
		json_kv_str(out, "until", ex[i].until, true);
		fprintf(out, ",\"hits\":%llu,\"expired\":%s,\"unused\":%s",
			(unsigned long long)ex[i].hits, ex[i].expired ? "true" : "false",
			ex[i].unused ? "true" : "false");
		json_kv_str(out, "last_used", outfmt_time_iso(ex[i].last, tb1, sizeof(tb1)), true);
		fputs("}", out);
	}
	fputs("],\n\"brownouts\":", out);
	int r = print_brownout_json(data, out);
	fputs("}\n", out);
	rows_free(doms, accs, ex);
	return r;
}

/* ---- CSV: one row per account seen in plaintext ---- */

/* The brownout columns of an account's row: empty but the count (0) for
 * an account never refused in a window. */
static void print_brownout_csv(const struct tally_account *a, FILE *out)
{
	char t1[40];
	const struct tally_brownout *b = a->brownout;
	if (b == NULL) {
		fputs(",0,\"\",\"\",\"\"", out);
		return;
	}
	fprintf(out, ",%u,", b->refusals);
	outfmt_csv_field(out, outfmt_time_iso(b->last, t1, sizeof(t1)));
	fprintf(out, ",\"%s\",", after_brownout_key(b->after));
	outfmt_csv_field(out, outfmt_time_iso(brownout_after_time(a), t1, sizeof(t1)));
}

/* "LABEL: N, FIRST - LAST; ..." of an account's devices, one field. */
static int csv_devices(FILE *out, const struct tally_account *a)
{
	char *text = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);
	if (m == NULL)
		return -1;
	for (const struct tally_device *d = a->devices; d; d = d->next) {
		char label[3 * TALLY_DEVICE_TEXT + TG_EVENT_MAX_VALUE], t1[40], t2[40];
		fprintf(m, "%s%s: %u, %s - %s", d == a->devices ? "" : "; ",
			tally_device_label(d, label, sizeof(label)), d->count,
			outfmt_time_iso(d->first, t1, sizeof(t1)),
			outfmt_time_iso(d->last, t2, sizeof(t2)));
	}
	if (a->devices_dropped)
		fprintf(m, "%s+%u more", a->devices ? "; " : "", a->devices_dropped);
	if (fclose(m) != 0) {
		free(text);
		return -1;
	}
	outfmt_csv_field(out, text);
	free(text);
	return 0;
}

static int print_csv(struct report_data *data, FILE *out)
{
	size_t na;
	struct tally_account **accs = tally_accounts(&data->tally, true, &na);
	if (accs == NULL)
		return -1;
	fputs("account,domain,plaintext_services,clients,first_plaintext,last_plaintext,"
	      "plaintext_events,tls_events,exempt_hits,audits,rejections,would_break,"
	      "credentials_exposed,enforce_from,exemption,brownout_refusals,"
	      "last_brownout_refusal,after_brownout,after_brownout_time,devices\n", out);
	for (size_t i = 0; i < na; i++) {
		struct tally_account *a = accs[i];
		char svc[64], t1[40], enf[16];
		outfmt_csv_field(out, a->name);
		putc(',', out);
		outfmt_csv_field(out, a->domain->name);
		fprintf(out, ",\"%s\",", outfmt_services(a->services_plain, svc, sizeof(svc)));
		char clients[TALLY_MAX_DEVICES * (TG_EVENT_MAX_VALUE + 4) + 1];
		size_t used = 0;
		clients[0] = '\0';
		for (struct tally_device *d = a->devices; d; d = d->next) {
			if (!first_of_client(a, d))
				continue;
			int w = snprintf(clients + used, sizeof(clients) - used, "%s%s",
					 used ? " " : "", d->client);
			if (w < 0 || (size_t)w >= sizeof(clients) - used)
				break;
			used += (size_t)w;
		}
		outfmt_csv_field(out, clients);
		putc(',', out);
		outfmt_csv_field(out, outfmt_time_iso(a->first_plain, t1, sizeof(t1)));
		putc(',', out);
		outfmt_csv_field(out, outfmt_time_iso(a->last_plain, t1, sizeof(t1)));
		fprintf(out, ",%u,%u,%u,%u,%u,%s,%u,", a->plain_events, a->tls_events,
			a->exempt_hits, a->audits, a->rejects, a->would_break ? "yes" : "no",
			a->exposed);
		outfmt_csv_field(out, enforce_text(a, enf, sizeof(enf)));
		putc(',', out);
		outfmt_csv_field(out, a->exemption ? a->exemption : "");
		print_brownout_csv(a, out);
		putc(',', out);
		if (csv_devices(out, a) < 0) {
			free(accs);
			return -1;
		}
		putc('\n', out);
	}
	free(accs);
	return 0;
}

/* ---- HTML ---- */

static const char html_style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
	"table{border-collapse:collapse;margin:1em 0}"
	"th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
	"td.n{text-align:right}th{background:#f0f0f0}"
	".bar{width:12em;height:1em;background:#e33;display:inline-block;vertical-align:middle}"
	".bar>span{display:block;height:100%;background:#2a2}"
	".warn{color:#b00;font-weight:bold}";

static void html_td(FILE *out, const char *s)
{
	fputs("<td>", out);
	outfmt_html(out, s);
	fputs("</td>", out);
}

static void html_num(FILE *out, unsigned long long n)
{
	fprintf(out, "<td class=\"n\">%llu</td>", n);
}

static int print_brownout_html(struct report_data *data, struct tally_domain **doms,
			       size_t nd, FILE *out)
{
	size_t nb;
	char t1[40], svc[64], clients[TALLY_MAX_DEVICES * (TG_EVENT_MAX_VALUE + 8) + 32];
	struct tally_account **bos = tally_brownout_accounts(&data->tally, &nb);
	if (bos == NULL)
		return -1;
	if (nb == 0) {
		free(bos);
		return 0;
	}
	fprintf(out, "<h2 class=\"warn\">Refused in brownout windows &mdash; these break on the "
		"final date (%zu)</h2>\n<table><tr><th>Domain</th><th>Refused</th>"
		"<th>Moved to TLS</th><th>Still plaintext</th><th>Not seen since</th></tr>\n", nb);
	for (size_t i = 0; i < nd; i++) {
		struct tally_domain *d = doms[i];
		if (d->brownout_accounts == 0)
			continue;
		fputs("<tr>", out);
		html_td(out, domain_label(d->name));
		html_num(out, d->brownout_accounts);
		html_num(out, d->brownout_tls_accounts);
		html_num(out, d->brownout_plain_accounts);
		html_num(out, d->brownout_accounts - d->brownout_tls_accounts -
			      d->brownout_plain_accounts);
		fputs("</tr>\n", out);
	}
	fputs("</table>\n<table><tr><th>Account</th><th>Services</th><th>Clients</th>"
	      "<th>Refusals</th><th>Last refusal</th><th>Afterwards</th></tr>\n", out);
	for (size_t i = 0; i < nb; i++) {
		struct tally_account *a = bos[i];
		fputs("<tr>", out);
		html_td(out, a->name);
		html_td(out, outfmt_services(a->brownout->services, svc, sizeof(svc)));
		html_td(out, brownout_clients(a->brownout, ", ", clients, sizeof(clients)));
		html_num(out, a->brownout->refusals);
		html_td(out, outfmt_time_text(a->brownout->last, t1, sizeof(t1)));
		html_td(out, after_brownout_text(a->brownout->after));
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
	for (size_t l = 0; l < BROWNOUT_LISTS; l++) {
		fprintf(out, "<h3>%s</h3>\n<table><tr><th>Account</th><th>Last refusal</th>"
			"<th>%s</th></tr>\n", brownout_lists[l].html_title, brownout_lists[l].html_column);
		for (size_t i = 0; i < nb; i++) {
			struct tally_account *a = bos[i];
			if (a->brownout->after != brownout_lists[l].after)
				continue;
			fputs("<tr>", out);
			html_td(out, a->name);
			html_td(out, outfmt_time_text(a->brownout->last, t1, sizeof(t1)));
			html_td(out, outfmt_time_text(brownout_after_time(a), t1, sizeof(t1)));
			fputs("</tr>\n", out);
		}
		fputs("</table>\n", out);
	}
	free(bos);
	return 0;
}

static int print_html(struct report_data *data, FILE *out)
{
	struct tally *t = &data->tally;
	size_t nd, na, ne;
	char t1[40], t2[40];
	struct tally_domain **doms;
	struct tally_account **accs;
	struct exemption_row *ex;
	if (rows_get(data, &doms, &nd, &accs, &na, &ex, &ne) < 0)
		return -1;
	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>tlsgate report</title><style>%s</style></head><body>\n", html_style);
	fprintf(out, "<h1>tlsgate report</h1>\n<p>Events from %s to %s: %llu counted from %zu input(s)",
		outfmt_time_text(t->first_time, t1, sizeof(t1)),
		outfmt_time_text(t->last_time, t2, sizeof(t2)),
		(unsigned long long)t->events, t->files);
	if (t->duplicates)
		fprintf(out, ", %llu duplicate(s) skipped", (unsigned long long)t->duplicates);
	if (t->bad_events)
		fprintf(out, ", %llu malformed line(s) skipped", (unsigned long long)t->bad_events);
	if (t->implausible)
		fprintf(out, ", %llu implausible event(s) skipped", (unsigned long long)t->implausible);
	if (t->foreign)
		fprintf(out, ", %llu line(s) with the tag not written by tlsgate ignored",
			(unsigned long long)t->foreign);
	fputs(".<br>", out);
	if (data->policy_path) {
		fputs("Policy: ", out);
		outfmt_html(out, data->policy_path);
		fprintf(out, "; would-break decided as if enforced on %s.</p>\n",
			tg_date_format(data->today, t1, sizeof(t1)));
	} else {
		fputs("No policy given: would-break follows the verdicts in the events.</p>\n", out);
	}

	fputs("<h2>Domains</h2>\n<table><tr><th>Domain</th><th>Accounts</th><th>Plaintext</th>"
	      "<th>Would break</th><th>Exempt hits</th><th>Rejected</th><th>Credentials exposed</th>"
	      "<th>Readiness</th></tr>\n", out);
	for (size_t i = 0; i < nd; i++) {
		struct tally_domain *d = doms[i];
		double r = readiness(d);
		fputs("<tr>", out);
		html_td(out, domain_label(d->name));
		html_num(out, d->accounts);
		html_num(out, d->plain_accounts);
		html_num(out, d->would_break_accounts);
		html_num(out, d->exempt_hits);
		html_num(out, d->rejects);
		html_num(out, d->exposed_accounts);
		fprintf(out, "<td><span class=\"bar\" title=\"%.1f%%\"><span style=\"width:%.1f%%\">"
			"</span></span> %.1f%%</td></tr>\n", r, r, r);
	}
	fputs("</table>\n", out);

	fprintf(out, "<h2>Accounts seen in plaintext (%zu)</h2>\n", na);
	fputs("<table><tr><th>Account</th><th>Services</th><th>Devices (address, program, EHLO name: logins, first &ndash; last)</th><th>First</th>"
	      "<th>Last</th><th>Plaintext</th><th>Exempt</th><th>Audit</th><th>Rejected</th>"
	      "<th>Would break</th><th>Enforced from</th><th>Exemption</th></tr>\n", out);
	for (size_t i = 0; i < na; i++) {
		struct tally_account *a = accs[i];
		char svc[64], enf[16];
		fputs("<tr>", out);
		html_td(out, a->name);
		html_td(out, outfmt_services(a->services_plain, svc, sizeof(svc)));
		fputs("<td>", out);
		for (struct tally_device *d = a->devices; d; d = d->next) {
			char label[3 * TALLY_DEVICE_TEXT + TG_EVENT_MAX_VALUE], d1[32], d2[32];
			if (d != a->devices)
				fputs("<br>", out);
			outfmt_html(out, tally_device_label(d, label, sizeof(label)));
			fprintf(out, " &ndash; %u&times;, ", d->count);
			outfmt_html(out, outfmt_time_text(d->first, d1, sizeof(d1)));
			fputs(" &ndash; ", out);
			outfmt_html(out, outfmt_time_text(d->last, d2, sizeof(d2)));
		}
		if (a->devices_dropped)
			fprintf(out, "<br>+%u more", a->devices_dropped);
		fputs("</td>", out);
		html_td(out, outfmt_time_text(a->first_plain, t1, sizeof(t1)));
		html_td(out, outfmt_time_text(a->last_plain, t1, sizeof(t1)));
		html_num(out, a->plain_events);
		html_num(out, a->exempt_hits);
		html_num(out, a->audits);
		html_num(out, a->rejects);
		fprintf(out, "<td%s>%s</td>", a->would_break ? " class=\"warn\"" : "",
			a->would_break ? "yes" : "no");
		html_td(out, enforce_text(a, enf, sizeof(enf)));
		html_td(out, a->exemption ? a->exemption : "");
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);

	if (print_brownout_html(data, doms, nd, out) < 0) {
		rows_free(doms, accs, ex);
		return -1;
	}

	size_t exposed = 0;
	for (size_t i = 0; i < na; i++)
		exposed += accs[i]->exposed > 0;
	if (exposed) {
		fprintf(out, "<h2 class=\"warn\">Credentials exposed &mdash; consider a reset (%zu)</h2>\n"
			"<p>A valid password was sent in cleartext and the login was rejected.</p>\n"
			"<table><tr><th>Account</th><th>Services</th><th>Times</th><th>Last</th></tr>\n",
			exposed);
		for (size_t i = 0; i < na; i++) {
			struct tally_account *a = accs[i];
			char svc[64];
			if (!a->exposed)
				continue;
			fputs("<tr>", out);
			html_td(out, a->name);
			html_td(out, outfmt_services(a->services_exposed, svc, sizeof(svc)));
			html_num(out, a->exposed);
			html_td(out, outfmt_time_text(a->last_exposed, t1, sizeof(t1)));
			fputs("</tr>\n", out);
		}
		fputs("</table>\n", out);
	}

	fprintf(out, "<h2>Exemptions %s (%zu)</h2>\n<table><tr><th>Rule</th><th>Subject</th>"
		"<th>Until</th><th>Hits</th><th>Status</th></tr>\n",
		data->policy ? "expired or not used in the window" : "used", ne);
	for (size_t i = 0; i < ne; i++) {
		fputs("<tr>", out);
		html_td(out, ex[i].ref);
		html_td(out, ex[i].subject);
		html_td(out, ex[i].until);
		html_num(out, ex[i].hits);
		html_td(out, ex[i].expired && ex[i].unused ? "expired, not used" :
			     ex[i].expired ? "expired" : ex[i].unused ? "not used" : "");
		fputs("</tr>\n", out);
	}
	fputs("</table>\n</body></html>\n", out);
	rows_free(doms, accs, ex);
	return 0;
}

/* ---- the command ---- */

static void report_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF | --policy PATH] report [options] [FILE...]\n"
		"\n"
		"Reads tlsgate event lines from log files (plain or .gz; no FILE or '-': stdin)\n"
		"and reports who still logs in without TLS, per domain and per account.\n"
		"\n"
		"  --since TIME, --until TIME  window: YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' (local)\n"
		"                              or Nd / Nh (N days / hours ago); until is exclusive\n"
		"  --domain D                  only accounts of domain D\n"
		"  --would-break D             only the accounts and clients that enforcing D\n"
		"                              would cut off\n"
		"  --at YYYY-MM-DD             decide would-break as of this day (default today)\n"
		"  --json | --csv              machine-readable output instead of the text tables\n"
		"  --html FILE                 write a self-contained HTML page to FILE\n"
		"\n"
		"With -c/--policy (or " TG_DEFAULT_CONFIG ", unless --no-config) the policy\n"
		"decides who would break and which exemptions are expired or unused; without\n"
		"one, the verdicts in the events do; see docs/report.md.\n");
}

int cmd_report(int argc, char **argv, const struct cli_context *ctx)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "domain", required_argument, NULL, 'd' },
		{ "would-break", required_argument, NULL, 'w' },
		{ "at", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, 'c' },
		{ "html", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct report_input in = { 0 };
	const char *would_break = NULL, *html = NULL;
	int format = 't', opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h': report_usage(stdout); return 0;
		case 's': in.since = optarg; break;
		case 'u': in.until = optarg; break;
		case 'd': in.domain = optarg; break;
		case 'w': would_break = optarg; break;
		case 'a': in.at = optarg; break;
		case 'j': case 'c':
			if (format != 't' && format != opt) {
				fprintf(stderr, "tlsgate report: give one of --json, --csv\n");
				return 2;
			}
			format = opt;
			break;
		case 'H': html = optarg; break;
		default: report_usage(stderr); return 2;
		}
	}
	if (would_break != NULL) {
		if (in.domain != NULL && strcmp(in.domain, would_break) != 0) {
			fprintf(stderr, "tlsgate report: --domain and --would-break name different domains\n");
			return 2;
		}
		if (html != NULL) {
			fprintf(stderr, "tlsgate report: --html makes the full report, not --would-break\n");
			return 2;
		}
		in.domain = would_break;
	}
	if (html != NULL && format != 't') {
		fprintf(stderr, "tlsgate report: give --html or --json/--csv, not both\n");
		return 2;
	}
	in.files = argv + optind;
	in.nfiles = argc - optind;

	struct report_data data;
	int r = report_collect(ctx, &in, &data, "tlsgate report");
	if (r != 0) {
		report_data_free(&data);
		return r;
	}

	FILE *out = stdout;
	struct atomicfile af;
	if (html != NULL) {
		/* an unpredictable temporary name: nothing planted is followed */
		int fd = -1;
		if (atomicfile_open(&af, html, 0644) < 0 || (fd = dup(af.fd)) < 0 ||
		    (out = fdopen(fd, "w")) == NULL) {
			perror(html);
			if (fd >= 0)
				close(fd);
			atomicfile_abort(&af);
			report_data_free(&data);
			return 2;
		}
	}
	if (would_break != NULL)
		r = print_would_break(&data, out, format);
	else if (html != NULL)
		r = print_html(&data, out);
	else if (format == 'j')
		r = print_json(&data, out);
	else if (format == 'c')
		r = print_csv(&data, out);
	else
		r = print_text(&data, out);
	if (r < 0)
		fprintf(stderr, "tlsgate report: out of memory\n");
	if (html != NULL) {
		if (fclose(out) != 0 || r < 0) {
			if (r == 0)
				perror(html);
			atomicfile_abort(&af);
			r = -1;
		} else if (atomicfile_commit(&af) < 0) {
			perror(html);
			r = -1;
		}
	} else if (fflush(stdout) != 0) {
		r = -1;
	}
	report_data_free(&data);
	return r < 0 ? 2 : 0;
}

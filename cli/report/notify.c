/*
 * notify - `tlsgate notify`: one notice per account seen in plaintext in
 * the window and not covered by an exemption (the accounts the report
 * marks "would break"), as an RFC 5322 message (docs/report.md).
 *
 * Templates: a header block (only "Subject:"), a blank line, the body;
 * {{name}} placeholders and {{#name}}...{{/name}} / {{^name}}...{{/name}}
 * sections shown when the value is non-empty / empty. An unknown
 * placeholder or an unclosed section is an error when the template is
 * loaded, before anything is sent.
 *
 * Notices go only to accounts of the domains the policy names or
 * tlsgate.conf's notify_domains lists (recipients.h); the values a notice
 * shows are those tally kept after its checks (origin.h), never other
 * text of a log line.
 *
 * Invariants: an account is recorded in the state file only after its
 * notice was written or accepted by sendmail; the state file is replaced
 * atomically (mkostemp in its directory + fsync + rename, atomicfile.h),
 * as is each .eml file. Addresses that
 * are not plain local@domain (mime_safe_address) are skipped with a
 * warning: a log line can never choose a header or a file name.
 *
 * Exit status: 0 all done, 1 some notice could not be delivered or
 * written, 2 bad arguments, templates, state file or input.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "advice.h"
#include "atomicfile.h"
#include "cli.h"
#include "date.h"
#include "follow.h"
#include "logscan.h"
#include "mime.h"
#include "origin.h"
#include "outfmt.h"
#include "recipients.h"
#include "report.h"
#include "sendq.h"
#include "tally.h"
#include "text.h"

#ifndef TG_TEMPLATE_DIR
#define TG_TEMPLATE_DIR "/usr/local/share/tlsgate/templates"
#endif
#define DEFAULT_SENDMAIL "/usr/sbin/sendmail -t"
#define MAX_TEMPLATE (64 * 1024)
#define MAX_LANG_RULES 64
#define MAX_SENDMAIL_ARGS 32
#define MAX_STATE_LINE 1024
#define FOLLOW_DEFAULT_PER_HOUR 100
#define FOLLOW_DEFAULT_SEND_TIMEOUT 60
#define FOLLOW_DEFAULT_EVERY (7 * 86400)
#define FOLLOW_STOP_GRACE 5	/* seconds a running sendmail gets at a stop */
#define FOLLOW_BATCH 4096	/* lines read before sendmails are looked after */

/* ---- templates ---- */

struct template {
	char *subject;
	char *body;
	char lang[16];
};

enum placeholder {
	PH_ACCOUNT, PH_DOMAIN, PH_SERVICES, PH_CLIENTS, PH_FIRST_SEEN, PH_LAST_SEEN,
	PH_COUNT, PH_SEEN, PH_ENFORCE_FROM, PH_FROM, PH_ENFORCED,
	PH_IMAP, PH_POP3, PH_SMTP, PH_SUBMISSION, PH_SIEVE,
	PH_DEVICES, PH_NAMED,
	PH_COUNT_ALL
};
static const char *const placeholder_names[PH_COUNT_ALL] = {
	"account", "domain", "services", "clients", "first_seen", "last_seen",
	"count", "seen", "enforce_from", "from", "enforced",
	"imap", "pop3", "smtp", "submission", "sieve",
	"devices", "named",
};

static int placeholder_find(const char *s, size_t len)
{
	for (int i = 0; i < PH_COUNT_ALL; i++)
		if (strlen(placeholder_names[i]) == len &&
		    memcmp(placeholder_names[i], s, len) == 0)
			return i;
	return -1;
}

/* Renders text with the values; -1 with why on a template error (also
 * used to check a template once at load with sample values). */
static int render(const char *text, const char *const *values, struct mime_buf *out,
		  char *why, size_t whylen)
{
	const char *p = text;
	int open_section = -1;
	bool skipping = false;

	while (*p) {
		const char *b = strstr(p, "{{");
		if (b == NULL) {
			if (!skipping)
				mime_buf_adds(out, p);
			break;
		}
		if (!skipping)
			mime_buf_add(out, p, (size_t)(b - p));
		const char *e = strstr(b + 2, "}}");
		if (e == NULL) {
			snprintf(why, whylen, "'{{' without '}}'");
			return -1;
		}
		const char *name = b + 2;
		char kind = *name == '#' || *name == '^' || *name == '/' ? *name++ : 0;
		int ph = placeholder_find(name, (size_t)(e - name));
		if (ph < 0) {
			snprintf(why, whylen, "unknown placeholder '{{%.*s}}'",
				 (int)(e - b - 2 > 40 ? 40 : e - b - 2), b + 2);
			return -1;
		}
		bool empty = values[ph] == NULL || values[ph][0] == '\0';
		if (kind == '#' || kind == '^') {
			if (open_section >= 0) {
				snprintf(why, whylen, "sections do not nest ('{{%c%s}}')", kind,
					 placeholder_names[ph]);
				return -1;
			}
			open_section = ph;
			skipping = kind == '#' ? empty : !empty;
		} else if (kind == '/') {
			if (open_section != ph) {
				snprintf(why, whylen, "'{{/%s}}' closes no open section",
					 placeholder_names[ph]);
				return -1;
			}
			open_section = -1;
			skipping = false;
		} else if (!skipping && !empty) {
			mime_buf_adds(out, values[ph]);
		}
		p = e + 2;
		/* A section tag alone on its line takes its newline with it. */
		if (kind != 0 && *p == '\n' && (b == text || b[-1] == '\n'))
			p++;
	}
	if (open_section >= 0) {
		snprintf(why, whylen, "section '{{#%s}}' is not closed",
			 placeholder_names[open_section]);
		return -1;
	}
	return out->failed ? -1 : 0;
}

static void template_free(struct template *tp);

/* Reads and checks a template; on failure tp holds nothing. */
static int template_load(struct template *tp, const char *path, const char *lang)
{
	char why[256];
	memset(tp, 0, sizeof(*tp));
	snprintf(tp->lang, sizeof(tp->lang), "%s", lang ? lang : "");
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "tlsgate notify: template %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *data = malloc(MAX_TEMPLATE + 1);
	size_t n = data ? fread(data, 1, MAX_TEMPLATE + 1, f) : 0;
	int err = ferror(f);
	fclose(f);
	if (data == NULL || err || n > MAX_TEMPLATE) {
		fprintf(stderr, "tlsgate notify: template %s: %s\n", path,
			n > MAX_TEMPLATE ? "larger than 64 KiB" : "cannot read");
		free(data);
		return -1;
	}
	data[n] = '\0';
	if (strlen(data) != n) {
		fprintf(stderr, "tlsgate notify: template %s: holds a NUL byte\n", path);
		free(data);
		return -1;
	}
	for (size_t i = 0; i < n;) {
		size_t k = outfmt_utf8_len((unsigned char *)data + i, n - i);
		if (k == 0) {
			fprintf(stderr, "tlsgate notify: template %s: not UTF-8 (byte %zu)\n", path, i);
			free(data);
			return -1;
		}
		i += k;
	}
	/* header block */
	char *p = data;
	unsigned line = 0;
	while (*p != '\0' && *p != '\n') {
		char *eol = strchr(p, '\n');
		line++;
		if (eol == NULL) {
			fprintf(stderr, "tlsgate notify: template %s: no blank line after the headers\n", path);
			free(data);
			return -1;
		}
		*eol = '\0';
		if (strncasecmp(p, "Subject:", 8) == 0 && tp->subject == NULL) {
			const char *v = p + 8;
			while (*v == ' ' || *v == '\t')
				v++;
			tp->subject = strdup(v);
		} else {
			fprintf(stderr, "tlsgate notify: %s:%u: only one 'Subject:' header is allowed before the blank line\n",
				path, line);
			free(data);
			template_free(tp);
			return -1;
		}
		p = eol + 1;
	}
	if (tp->subject == NULL) {
		fprintf(stderr, "tlsgate notify: template %s: no 'Subject:' line\n", path);
		free(data);
		return -1;
	}
	if (*p == '\n')
		p++;
	tp->body = strdup(p);
	free(data);
	if (tp->body == NULL) {
		template_free(tp);
		return -1;
	}
	/* check both parts once, with every value set and with none */
	const char *full[PH_COUNT_ALL], *none[PH_COUNT_ALL] = { 0 };
	for (int i = 0; i < PH_COUNT_ALL; i++)
		full[i] = "x";
	const char *const *sets[2] = { full, none };
	for (int s = 0; s < 2; s++) {
		struct mime_buf b;
		mime_buf_init(&b);
		int r1 = render(tp->subject, sets[s], &b, why, sizeof(why));
		const char *part = "Subject";
		if (r1 == 0) {
			part = "body";
			r1 = render(tp->body, sets[s], &b, why, sizeof(why));
		}
		mime_buf_free(&b);
		if (r1 < 0) {
			fprintf(stderr, "tlsgate notify: template %s (%s): %s\n", path, part, why);
			template_free(tp);
			return -1;
		}
	}
	return 0;
}

static void template_free(struct template *tp)
{
	free(tp->subject);
	free(tp->body);
	memset(tp, 0, sizeof(*tp));
}

/* ---- state file: "ACCOUNT<TAB>UNIX-TIME" lines ---- */

struct state_entry {
	char *account;
	int64_t when;
};

struct state {
	struct state_entry *v;
	size_t n, cap;
	size_t nsorted;		/* v[0..nsorted) is sorted; the rest was added
				 * in this run, each account at most once */
};

static int state_cmp(const void *x, const void *y)
{
	const struct state_entry *a = x, *b = y;
	return strcasecmp(a->account, b->account);
}

static int state_put(struct state *st, const char *account, int64_t when)
{
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 64;
		struct state_entry *nv = realloc(st->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		st->v = nv;
		st->cap = ncap;
	}
	st->v[st->n].account = strdup(account);
	if (st->v[st->n].account == NULL)
		return -1;
	st->v[st->n].when = when;
	st->n++;
	return 0;
}

static struct state_entry *state_find(struct state *st, const char *account)
{
	struct state_entry key = { (char *)account, 0 };
	if (st->nsorted == 0)
		return NULL;
	return bsearch(&key, st->v, st->nsorted, sizeof(*st->v), state_cmp);
}

/* Sorts everything and merges entries of the same account (latest time). */
static void state_sort(struct state *st)
{
	if (st->n == 0)
		return;
	qsort(st->v, st->n, sizeof(*st->v), state_cmp);
	size_t w = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (w > 0 && state_cmp(&st->v[w - 1], &st->v[i]) == 0) {
			if (st->v[i].when > st->v[w - 1].when)
				st->v[w - 1].when = st->v[i].when;
			free(st->v[i].account);
			continue;
		}
		st->v[w++] = st->v[i];
	}
	st->n = st->nsorted = w;
}

static void state_free(struct state *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->v[i].account);
	free(st->v);
	memset(st, 0, sizeof(*st));
}

/* A missing file is an empty state; a damaged one is an error, so that
 * nobody is notified again by mistake. */
static int state_load(struct state *st, const char *path)
{
	memset(st, 0, sizeof(*st));
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "tlsgate notify: state file %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[MAX_STATE_LINE + 2];
	unsigned lineno = 0;
	int r = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		size_t len = strlen(line);
		if (len == 0 || line[len - 1] != '\n') {
			fprintf(stderr, "tlsgate notify: %s:%u: line too long or not ended\n", path, lineno);
			r = -1;
			break;
		}
		line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		char *tab = strchr(line, '\t'), *end;
		long long when = 0;
		if (tab != NULL) {
			*tab = '\0';
			errno = 0;
			when = strtoll(tab + 1, &end, 10);
		}
		if (tab == NULL || tab == line || errno != 0 || *end != '\0' || end == tab + 1) {
			fprintf(stderr, "tlsgate notify: %s:%u: expected ACCOUNT<TAB>UNIX-TIME\n", path, lineno);
			r = -1;
			break;
		}
		if (state_put(st, line, when) < 0) {
			r = -1;
			break;
		}
	}
	if (ferror(f))
		r = -1;
	fclose(f);
	state_sort(st);
	return r;
}

/* Through an unpredictable temporary file in the same directory
 * (atomicfile.h): a symlink planted there is never followed. */
static int write_atomically(const char *path, const char *data, size_t len)
{
	return atomicfile_write(path, data, len, 0640);
}

static int state_save(struct state *st, const char *path)
{
	struct mime_buf b;
	mime_buf_init(&b);
	mime_buf_adds(&b, "# tlsgate notify state: account<TAB>time of the last notice (seconds since 1970)\n");
	state_sort(st);
	for (size_t i = 0; i < st->n; i++) {
		char line[MAX_STATE_LINE];
		snprintf(line, sizeof(line), "%s\t%lld\n", st->v[i].account,
			 (long long)st->v[i].when);
		mime_buf_adds(&b, line);
	}
	int r = b.failed ? -1 : write_atomically(path, b.data, b.len);
	if (r < 0)
		fprintf(stderr, "tlsgate notify: cannot write state file %s: %s\n", path,
			strerror(errno));
	mime_buf_free(&b);
	return r;
}

/* ---- options ---- */

struct lang_rule {
	const char *domain;	/* without '@' */
	const char *lang;
};

struct notify_opts {
	struct report_input in;
	const char *from, *out_dir, *sendmail, *state_path, *template_path;
	const char *template_dir, *lang;
	struct lang_rule rules[MAX_LANG_RULES];
	size_t nrules;
	bool send, dry_run;
	long max;		/* -1: no cap */
	int64_t every;		/* seconds, 0: none */
	/* --follow (the section "--follow" below) */
	bool follow, from_start, every_given;
	unsigned max_per_hour, send_timeout;
};

static void notify_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF | --policy PATH] notify (--dry-run | --out DIR | --send)\n"
		"           [--from ADDRESS] [options] [FILE...]\n"
		"\n"
		"Writes one notice to each account seen logging in without TLS in the window\n"
		"and not covered by an exemption (read from log files, .gz or stdin).\n"
		"\n"
		"  --dry-run              list who would be notified; change nothing\n"
		"  --out DIR              write one ACCOUNT.eml per notice into DIR\n"
		"  --send                 hand each notice to sendmail\n"
		"  --sendmail CMD         the command for --send (default '" DEFAULT_SENDMAIL "');\n"
		"                         split at spaces, run without a shell\n"
		"  --from ADDRESS         From: of the notices (required but for --dry-run)\n"
		"  --since/--until TIME   the window (as in report); --domain D: only domain D\n"
		"  --at YYYY-MM-DD        decide as of this day (default today)\n"
		"  --max N                notify at most N accounts in this run\n"
		"  --every PERIOD         skip accounts notified in the last PERIOD (Nd, Nh, Nw);\n"
		"                         needs --state\n"
		"  --state FILE           who was told when (created if missing)\n"
		"  --lang LANG            template language (default en; de is shipped)\n"
		"  --lang-for DOMAIN=LANG template language for one domain (repeatable)\n"
		"  --templates DIR        where notice.LANG.txt are (default " TG_TEMPLATE_DIR ")\n"
		"  --template FILE        one template for every notice\n"
		"\n"
		"       tlsgate notify --follow --send --state FILE --from ADDRESS [options] LOG|-\n"
		"\n"
		"  --follow               read LOG as it is written (across rotation; '-': stdin,\n"
		"                         e.g. journalctl -f) and notify an account at its first\n"
		"                         refusal, or its first audit hit before a from= date\n"
		"  --from-start           read LOG from its beginning (default: its end)\n"
		"  --max-per-hour N       notices queued per hour, all accounts (default %d)\n"
		"  --send-timeout SECS    time a sendmail may take (default %d)\n"
		"  --every PERIOD         with --follow: default 7d\n",
		FOLLOW_DEFAULT_PER_HOUR, FOLLOW_DEFAULT_SEND_TIMEOUT);
}

static int parse_period(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || end == s || n == 0 || n > 100000 || end[1] != '\0')
		return -1;
	switch (*end) {
	case 'h': *out = (int64_t)n * 3600; return 0;
	case 'd': *out = (int64_t)n * 86400; return 0;
	case 'w': *out = (int64_t)n * 7 * 86400; return 0;
	default: return -1;
	}
}

static bool valid_lang(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

static bool valid_from(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 300)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	return strchr(s, '@') != NULL;
}

/* What --follow needs and what it does not take. */
static int follow_args_check(struct notify_opts *o)
{
	if (!o->send) {
		fprintf(stderr, "tlsgate notify: --follow sends notices: give --send\n");
		return -1;
	}
	if (o->state_path == NULL) {
		fprintf(stderr, "tlsgate notify: --follow needs --state FILE (who was told when)\n");
		return -1;
	}
	if (o->in.nfiles != 1) {
		fprintf(stderr, "tlsgate notify: --follow reads one log file, or '-' for stdin\n");
		return -1;
	}
	if (o->in.since != NULL || o->in.until != NULL || o->max >= 0) {
		fprintf(stderr, "tlsgate notify: --follow takes no --since, --until or --max "
			"(see --max-per-hour)\n");
		return -1;
	}
	if (!o->every_given)
		o->every = FOLLOW_DEFAULT_EVERY;
	if (o->max_per_hour == 0)
		o->max_per_hour = FOLLOW_DEFAULT_PER_HOUR;
	if (o->send_timeout == 0)
		o->send_timeout = FOLLOW_DEFAULT_SEND_TIMEOUT;
	return 0;
}

static int parse_args(int argc, char **argv, struct notify_opts *o)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "domain", required_argument, NULL, 'd' },
		{ "at", required_argument, NULL, 'a' },
		{ "from", required_argument, NULL, 'f' },
		{ "out", required_argument, NULL, 'o' },
		{ "send", no_argument, NULL, 'S' },
		{ "sendmail", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "max", required_argument, NULL, 'x' },
		{ "every", required_argument, NULL, 'e' },
		{ "state", required_argument, NULL, 't' },
		{ "lang", required_argument, NULL, 'l' },
		{ "lang-for", required_argument, NULL, 'L' },
		{ "templates", required_argument, NULL, 'T' },
		{ "template", required_argument, NULL, 'F' },
		{ "follow", no_argument, NULL, 'W' },
		{ "from-start", no_argument, NULL, 'B' },
		{ "max-per-hour", required_argument, NULL, 'H' },
		{ "send-timeout", required_argument, NULL, 'O' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	char *end;

	memset(o, 0, sizeof(*o));
	o->max = -1;
	o->sendmail = DEFAULT_SENDMAIL;
	o->lang = "en";
	o->template_dir = TG_TEMPLATE_DIR;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h': return 1;
		case 's': o->in.since = optarg; break;
		case 'u': o->in.until = optarg; break;
		case 'd': o->in.domain = optarg; break;
		case 'a': o->in.at = optarg; break;
		case 'f': o->from = optarg; break;
		case 'o': o->out_dir = optarg; break;
		case 'S': o->send = true; break;
		case 'm': o->sendmail = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'x':
			errno = 0;
			o->max = strtol(optarg, &end, 10);
			if (errno || *end != '\0' || end == optarg || o->max < 0) {
				fprintf(stderr, "tlsgate notify: --max needs a number >= 0\n");
				return -1;
			}
			break;
		case 'e':
			o->every_given = true;
			if (parse_period(optarg, &o->every) < 0) {
				fprintf(stderr, "tlsgate notify: --every takes Nh, Nd or Nw (e.g. 7d)\n");
				return -1;
			}
			break;
		case 't': o->state_path = optarg; break;
		case 'l':
			if (!valid_lang(optarg)) {
				fprintf(stderr, "tlsgate notify: --lang takes a language tag such as en or de\n");
				return -1;
			}
			o->lang = optarg;
			break;
		case 'L': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg || !valid_lang(eq + 1) ||
			    o->nrules >= MAX_LANG_RULES) {
				fprintf(stderr, "tlsgate notify: --lang-for takes DOMAIN=LANG (at most %d)\n",
					MAX_LANG_RULES);
				return -1;
			}
			*eq = '\0';
			o->rules[o->nrules].domain = optarg[0] == '@' ? optarg + 1 : optarg;
			o->rules[o->nrules].lang = eq + 1;
			o->nrules++;
			break;
		}
		case 'T': o->template_dir = optarg; break;
		case 'F': o->template_path = optarg; break;
		case 'W': o->follow = true; break;
		case 'B': o->from_start = true; break;
		case 'H':
		case 'O': {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			unsigned long top = opt == 'H' ? SENDQ_MAX_PER_HOUR_LIMIT : 3600;
			if (errno || *end != '\0' || end == optarg || optarg[0] == '-' || v == 0 ||
			    v > top) {
				fprintf(stderr, "tlsgate notify: --%s needs a number from 1 to %lu\n",
					opt == 'H' ? "max-per-hour" : "send-timeout", top);
				return -1;
			}
			if (opt == 'H')
				o->max_per_hour = (unsigned)v;
			else
				o->send_timeout = (unsigned)v;
			break;
		}
		default: return -1;
		}
	}
	int modes = o->send + o->dry_run + (o->out_dir != NULL);
	if (modes != 1) {
		fprintf(stderr, "tlsgate notify: give exactly one of --dry-run, --out DIR, --send\n");
		return -1;
	}
	if (!o->dry_run && o->from == NULL) {
		fprintf(stderr, "tlsgate notify: --from ADDRESS is required\n");
		return -1;
	}
	if (o->from != NULL && !valid_from(o->from)) {
		fprintf(stderr, "tlsgate notify: --from must be printable ASCII with an address, e.g. 'Mail Admin <postmaster@example.com>'\n");
		return -1;
	}
	if (o->every != 0 && o->state_path == NULL) {
		fprintf(stderr, "tlsgate notify: --every needs --state FILE\n");
		return -1;
	}
	o->in.files = argv + optind;
	o->in.nfiles = argc - optind;
	return o->follow ? follow_args_check(o) : 0;
}

/* ---- one notice ---- */

struct notice_values {
	const char *v[PH_COUNT_ALL];
	char services[80], clients[1024], first[32], last[32], count[16], enforce[16];
	struct mime_buf seen;
	struct mime_buf devices;
};

static void upper_services(uint8_t mask, char *buf, size_t size)
{
	outfmt_services(mask, buf, size);
	for (char *p = buf; *p; p++)
		*p = *p == ',' ? ' ' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	/* "IMAP POP3" -> "IMAP, POP3" */
	char tmp[80];
	size_t n = 0;
	for (char *p = buf; *p && n + 3 < sizeof(tmp); p++) {
		if (*p == ' ')
			tmp[n++] = ',';
		tmp[n++] = *p;
	}
	tmp[n] = '\0';
	snprintf(buf, size, "%s", tmp);
}

static bool first_device_of_client(const struct tally_account *a,
				   const struct tally_device *d)
{
	for (const struct tally_device *e = a->devices; e != d; e = e->next)
		if (e->client == d->client)
			return false;
	return true;
}

/* A device's own name for a mail body: valid UTF-8 kept; control
 * characters (C0, DEL, C1), bidirectional formatting characters and
 * broken bytes dropped or replaced by '?'; cut at max bytes with "...".
 * The text is the device's claim, so it is shown in quotes, and never
 * put in a header. Returns buf. */
static char *device_text(const char *s, size_t max, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0, len = strlen(s);
	for (size_t i = 0; i < len && n + 4 < size;) {
		size_t cl = outfmt_utf8_len(p + i, len - i), bn;
		if (cl == 0) {
			buf[n++] = '?';
			i++;
			continue;
		}
		bool control = p[i] < 0x20 || p[i] == 0x7f ||
			       (p[i] == 0xc2 && p[i + 1] < 0xa0);
		if (!control && !origin_is_bidi(s + i, len - i, &bn)) {
			if (n + cl > max) {
				memcpy(buf + n, "...", 3);
				n += 3;
				break;
			}
			memcpy(buf + n, s + i, cl);
			n += cl;
		}
		i += cl;
	}
	buf[n] = '\0';
	return buf;
}

/* One line of {{devices}}: "  - PROTOCOLS  ADDRESS  \"PROGRAM\" | EHLO NAME
 * | -  LAST-TIME". */
static void device_line(const struct tally_device *d, enum advice_lang lang,
			struct mime_buf *out)
{
	char svc[80], addr[64], name[2 * TALLY_DEVICE_TEXT + 8], who[3 * TALLY_DEVICE_TEXT + 32];
	char last[32], line[512];
	upper_services(d->services, svc, sizeof(svc));
	outfmt_text(d->client, 50, addr, sizeof(addr));
	if (d->software != NULL && d->helo != NULL) {
		char helo[2 * TALLY_DEVICE_TEXT + 8];
		snprintf(who, sizeof(who), "\"%s\", EHLO %s",
			 device_text(d->software, 48, name, sizeof(name)),
			 device_text(d->helo, 48, helo, sizeof(helo)));
	} else if (d->software != NULL) {
		snprintf(who, sizeof(who), "\"%s\"", device_text(d->software, 48, name, sizeof(name)));
	} else if (d->helo != NULL) {
		snprintf(who, sizeof(who), "EHLO %s", device_text(d->helo, 48, name, sizeof(name)));
	} else {
		snprintf(who, sizeof(who), "-");
	}
	snprintf(line, sizeof(line), "  - %-12s %-15s %-30s %s\n", svc, addr, who,
		 outfmt_time_text(d->last, last, sizeof(last)));
	mime_buf_adds(out, line);
	/* The setting that moves the named program to TLS, right under its
	 * line. Only a program the advice table knows by its IMAP ID name
	 * gets one (an EHLO name is a host, not a program); the text is the
	 * table's own, no byte of the name reaches the notice through it. */
	if (d->software != NULL) {
		const struct advice *ad = advice_for(d->software, strlen(d->software));
		if (ad != advice_generic()) {
			mime_buf_adds(out, "      -> ");
			mime_buf_adds(out, advice_text(ad, lang));
			mime_buf_adds(out, "\n");
		}
	}
}

static void notice_values_fill(struct notice_values *nv, const struct tally_account *a,
			       const char *from, enum advice_lang lang)
{
	memset(nv->v, 0, sizeof(nv->v));
	mime_buf_init(&nv->seen);
	mime_buf_init(&nv->devices);
	bool named = false;
	nv->v[PH_ACCOUNT] = a->name;
	nv->v[PH_DOMAIN] = a->domain->name;
	upper_services(a->services_plain, nv->services, sizeof(nv->services));
	nv->v[PH_SERVICES] = nv->services;
	size_t used = 0;
	nv->clients[0] = '\0';
	for (const struct tally_device *d = a->devices; d; d = d->next) {
		char addr[64], svc[80], last[32], line[256];
		outfmt_text(d->client, 50, addr, sizeof(addr));
		/* {{clients}} names each address once, however many devices */
		int w = first_device_of_client(a, d) ?
			snprintf(nv->clients + used, sizeof(nv->clients) - used, "%s%s",
				 used ? ", " : "", addr) : 0;
		if (w > 0 && (size_t)w < sizeof(nv->clients) - used)
			used += (size_t)w;
		upper_services(d->services, svc, sizeof(svc));
		snprintf(line, sizeof(line), "  - %-12s %-39s %s\n", svc, addr,
			 outfmt_time_text(d->last, last, sizeof(last)));
		mime_buf_adds(&nv->seen, line);
		device_line(d, lang, &nv->devices);
		named |= d->software != NULL || d->helo != NULL;
	}
	nv->v[PH_DEVICES] = nv->devices.data ? nv->devices.data : "";
	nv->v[PH_NAMED] = named ? "yes" : "";
	nv->v[PH_CLIENTS] = nv->clients;
	nv->v[PH_SEEN] = nv->seen.data ? nv->seen.data : "";
	nv->v[PH_FIRST_SEEN] = outfmt_time_text(a->first_plain, nv->first, sizeof(nv->first));
	nv->v[PH_LAST_SEEN] = outfmt_time_text(a->last_plain, nv->last, sizeof(nv->last));
	snprintf(nv->count, sizeof(nv->count), "%u", a->plain_events);
	nv->v[PH_COUNT] = nv->count;
	nv->enforce[0] = '\0';
	if (a->policy_enforce_from != 0)
		tg_date_format(a->policy_enforce_from, nv->enforce, sizeof(nv->enforce));
	else if (a->enforce_from != NULL && tg_date_parse(a->enforce_from, strlen(a->enforce_from), &(int32_t){ 0 }) == 0)
		snprintf(nv->enforce, sizeof(nv->enforce), "%s", a->enforce_from);
	/* A date is news only while it is ahead; once the account is
	 * refused already, {{enforced}} says so instead. */
	if (a->enforced)
		nv->enforce[0] = '\0';
	nv->v[PH_ENFORCE_FROM] = nv->enforce;
	nv->v[PH_ENFORCED] = a->enforced ? "yes" : "";
	nv->v[PH_FROM] = from;
	for (int s = 0; s < TG_SERVICE_COUNT; s++)
		nv->v[PH_IMAP + s] = a->services_plain & (1u << s) ? "yes" : "";
}

/* The domain of "Name <user@dom>" or "user@dom" for the Message-ID. */
static void from_domain(const char *from, char *buf, size_t size)
{
	const char *at = strrchr(from, '@');
	size_t n = 0;
	for (const char *p = at + 1; *p && *p != '>' && *p != ' ' && n + 1 < size; p++)
		buf[n++] = *p;
	buf[n] = '\0';
	if (n == 0)
		snprintf(buf, size, "localhost");
}

static int build_message(const struct template *tp, const struct tally_account *a,
			 const char *from, time_t now, struct mime_buf *msg)
{
	struct notice_values nv;
	struct mime_buf subject, body;
	char why[256], date[64], msgid[200], dom[256];
	int r = -1;

	notice_values_fill(&nv, a, from,
			   strncmp(tp->lang, "de", 2) == 0 ? ADVICE_DE : ADVICE_EN);
	mime_buf_init(&subject);
	mime_buf_init(&body);
	mime_buf_init(msg);
	if (render(tp->subject, nv.v, &subject, why, sizeof(why)) < 0 ||
	    render(tp->body, nv.v, &body, why, sizeof(why)) < 0)
		goto out;
	/* a subject is one line */
	for (size_t i = 0; i < subject.len; i++)
		if (subject.data[i] == '\n' || subject.data[i] == '\r')
			subject.data[i] = ' ';
	from_domain(from, dom, sizeof(dom));
	mime_date(now, date, sizeof(date));
	if (mime_message_id(dom, now, msgid, sizeof(msgid)) < 0)
		goto out;
	mime_header(msg, "From", from);
	mime_header(msg, "To", a->name);
	mime_header(msg, "Subject", subject.data ? subject.data : "");
	mime_header(msg, "Date", date);
	mime_header(msg, "Message-ID", msgid);
	mime_header(msg, "MIME-Version", "1.0");
	mime_header(msg, "Content-Type", "text/plain; charset=UTF-8");
	mime_header(msg, "Content-Transfer-Encoding", "quoted-printable");
	mime_header(msg, "Auto-Submitted", "auto-generated");
	if (tp->lang[0])
		mime_header(msg, "Content-Language", tp->lang);
	mime_buf_add(msg, "\n", 1);
	mime_qp_encode(msg, body.data ? body.data : "", body.len);
	if (body.data == NULL || body.len == 0 || body.data[body.len - 1] != '\n')
		mime_buf_add(msg, "\n", 1);
	r = msg->failed ? -1 : 0;
out:
	mime_buf_free(&subject);
	mime_buf_free(&body);
	mime_buf_free(&nv.seen);
	mime_buf_free(&nv.devices);
	return r;
}

/* ---- delivery ---- */

static int write_eml(const char *dir, const char *account, const struct mime_buf *msg)
{
	char path[4096];
	struct mime_buf crlf;
	snprintf(path, sizeof(path), "%s/%s.eml", dir, account);
	if (mime_buf_crlf(msg, &crlf) < 0)
		return -1;
	int r = write_atomically(path, crlf.data, crlf.len);
	if (r < 0)
		fprintf(stderr, "tlsgate notify: %s: %s\n", path, strerror(errno));
	mime_buf_free(&crlf);
	return r;
}

static int run_sendmail(const char *cmd, const struct mime_buf *msg)
{
	char *copy = strdup(cmd), *argv[MAX_SENDMAIL_ARGS + 1];
	int argc = 0;
	if (copy == NULL)
		return -1;
	for (char *tok = strtok(copy, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (argc == MAX_SENDMAIL_ARGS) {
			fprintf(stderr, "tlsgate notify: --sendmail has too many words\n");
			free(copy);
			return -1;
		}
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (argc == 0) {
		fprintf(stderr, "tlsgate notify: --sendmail is empty\n");
		free(copy);
		return -1;
	}
	int pfd[2];
	if (pipe(pfd) < 0) {
		free(copy);
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(copy);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[0], STDIN_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "tlsgate notify: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[0]);
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	size_t off = 0;
	while (off < msg->len) {
		ssize_t w = write(pfd[1], msg->data + off, msg->len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	close(pfd[1]);
	signal(SIGPIPE, old);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	free(copy);
	if (off < msg->len || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "tlsgate notify: '%s' failed (%s %d)\n", cmd,
			WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	return 0;
}

static const char *lang_for(const struct notify_opts *o, const char *domain)
{
	for (size_t i = 0; i < o->nrules; i++)
		if (strcasecmp(o->rules[i].domain, domain) == 0)
			return o->rules[i].lang;
	return o->lang;
}

/* Templates by language, loaded once each. */
struct template_set {
	struct template t[MAX_LANG_RULES + 2];
	size_t n;
};

static struct template *template_get(struct template_set *ts, const struct notify_opts *o,
				     const char *lang)
{
	for (size_t i = 0; i < ts->n; i++)
		if (o->template_path != NULL || strcmp(ts->t[i].lang, lang) == 0)
			return &ts->t[i];
	if (ts->n >= sizeof(ts->t) / sizeof(ts->t[0]))
		return NULL;
	char path[4096];
	if (o->template_path != NULL)
		snprintf(path, sizeof(path), "%s", o->template_path);
	else
		snprintf(path, sizeof(path), "%s/notice.%s.txt", o->template_dir, lang);
	if (template_load(&ts->t[ts->n], path, o->template_path ? NULL : lang) < 0)
		return NULL;
	return &ts->t[ts->n++];
}

/* ---- --follow: a notice at an account's first refusal ----
 *
 * Reads the log as it is written (follow.h) and, for each event that
 * tlsgate wrote (origin.h) with verdict=reject, or verdict=audit and an
 * enforce_from date, queues a notice for the account (sendq.h) unless the
 * state file says it was told within --every, its domain is not one
 * notices may go to (recipients.h) or a notice for it is on its way. The
 * notice is built from a tally of that one event, decided against the
 * policy as `notify` decides (would_break), so memory does not grow with
 * the log. The state file is rewritten (atomicfile.h) after each notice
 * sendmail accepted: a crash between sendmail's acceptance and that write
 * errs towards a second notice at the next refusal, never towards none.
 */

struct follow_run {
	struct notify_opts *o;
	const struct cli_context *ctx;
	struct report_data data;	/* policy and notify_domains only */
	struct recipients rcpt;
	struct template_set *ts;
	struct state *st;
	struct sendq q;
	uint64_t triggers, recent, outside, unsafe, not_breaking, build_failed;
	uint64_t state_errors;
	int64_t drop_said;		/* when a dropped notice was last logged */
	uint64_t drops_unsaid;		/* dropped since, not logged one by one */
	bool stopping;
};

static volatile sig_atomic_t follow_stop, follow_hup;

static void follow_on_signal(int sig)
{
	if (sig == SIGHUP)
		follow_hup = 1;
	else
		follow_stop = 1;
}

static int64_t follow_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* Runs in sendq's child process. */
static int follow_deliver(void *vctx, const char *data, size_t len)
{
	struct follow_run *fr = vctx;
	struct mime_buf msg = { .data = (char *)data, .len = len, .cap = len };
	return run_sendmail(fr->o->sendmail, &msg);
}

static void follow_done(void *vctx, const char *account, bool ok, bool timed_out)
{
	struct follow_run *fr = vctx;
	if (!ok) {
		fprintf(stderr, "tlsgate notify: the notice to %s %s; it is tried again at the "
			"account's next refusal\n", account,
			fr->stopping ? "was stopped unfinished at the exit" :
			timed_out ? "took longer than --send-timeout and was stopped" : "failed");
		return;
	}
	int64_t now = (int64_t)time(NULL);
	struct state_entry *prev = state_find(fr->st, account);
	if (prev != NULL)
		prev->when = now;
	else if (state_put(fr->st, account, now) < 0)
		fr->state_errors++;
	if (state_save(fr->st, fr->o->state_path) < 0)
		fr->state_errors++;
	fprintf(stderr, "tlsgate notify: notice sent to %s\n", account);
}

/* Loads tlsgate.conf's policy and notify_domains (at start and SIGHUP). */
static int follow_load_policy(struct follow_run *fr)
{
	struct report_data data;
	struct recipients rcpt;
	memset(&data, 0, sizeof(data));
	if (report_load_policy(fr->ctx, &data, NULL, NULL, "tlsgate notify") < 0) {
		report_data_free(&data);
		return -1;
	}
	if (recipients_init(&rcpt, data.policy, data.notify_domains) < 0) {
		fprintf(stderr, "tlsgate notify: out of memory\n");
		recipients_free(&rcpt);
		report_data_free(&data);
		return -1;
	}
	report_data_free(&fr->data);
	recipients_free(&fr->rcpt);
	fr->data = data;
	fr->rcpt = rcpt;
	return 0;
}

/* Whether the event calls for a notice: a refusal, or an audit hit of a
 * rule with a from= date. */
static bool follow_triggers(const struct tg_event *ev)
{
	int verdict = tg_verdict_parse(ev->value[TG_EV_VERDICT], ev->len[TG_EV_VERDICT]);
	return verdict == TG_VERDICT_REJECT ||
	       (verdict == TG_VERDICT_AUDIT && ev->len[TG_EV_ENFORCE_FROM] > 0);
}

/* Whether a dropped notice gets its own line: the first one, then one a
 * minute with the count of those not shown, so that a flood of refusals
 * does not flood the log too. */
static bool follow_drop_says(struct follow_run *fr)
{
	int64_t now = follow_clock();
	if (fr->drop_said != 0 && now - fr->drop_said < 60) {
		fr->drops_unsaid++;
		return false;
	}
	if (fr->drops_unsaid > 0)
		fprintf(stderr, "tlsgate notify: %llu more notice(s) not sent in the last "
			"minute (queue full or --max-per-hour)\n",
			(unsigned long long)fr->drops_unsaid);
	fr->drop_said = now;
	fr->drops_unsaid = 0;
	return true;
}

static void follow_dropped(struct follow_run *fr, enum sendq_add_result why,
			   const char *account)
{
	if (!follow_drop_says(fr))
		return;
	if (why == SENDQ_FULL)
		fprintf(stderr, "tlsgate notify: no notice to %s now: %d notices wait for "
			"sendmail already (tried again at its next refusal)\n", account,
			SENDQ_MAX_WAITING);
	else
		fprintf(stderr, "tlsgate notify: no notice to %s now: --max-per-hour %u "
			"reached (tried again at its next refusal)\n", account,
			fr->o->max_per_hour);
}

/* Builds the notice from a tally of this one event and queues it. */
static void follow_queue(struct follow_run *fr, struct tg_event *ev, const char *line,
			 size_t off, size_t len, const char *account)
{
	struct tally t;
	struct logtime lt;
	time_t now = time(NULL);
	int64_t when = (int64_t)now;

	enum sendq_add_result room = sendq_check(&fr->q, follow_clock());
	if (room != SENDQ_QUEUED) {
		follow_dropped(fr, room, account);
		return;
	}
	if (tally_init(&t) < 0) {
		fr->build_failed++;
		return;
	}
	logtime_init(&lt, now);
	if (off == 0 || logtime_parse(&lt, line, off, &when) < 0)
		when = (int64_t)now;
	size_t n = 0;
	struct tally_account **accs = NULL;
	if (tally_add_event(&t, ev, when, line + off, len - off) == 0 &&
	    tally_finish(&t, fr->data.policy, tg_date_of(now)) == 0)
		accs = tally_accounts(&t, true, &n);
	if (accs == NULL || n != 1) {
		fr->build_failed++;
		goto out;
	}
	struct tally_account *a = accs[0];
	if (!a->would_break) {
		fr->not_breaking++;
		goto out;
	}
	struct template *tp = template_get(fr->ts, fr->o, lang_for(fr->o, a->domain->name));
	struct mime_buf msg;
	mime_buf_init(&msg);
	if (tp == NULL || build_message(tp, a, fr->o->from, now, &msg) < 0) {
		fprintf(stderr, "tlsgate notify: cannot build the notice for %s\n", account);
		fr->build_failed++;
		mime_buf_free(&msg);
		goto out;
	}
	enum sendq_add_result added = sendq_add(&fr->q, account, msg.data, msg.len,
						follow_clock());
	if (added == SENDQ_QUEUED) {
		fr->triggers++;
	} else if (added == SENDQ_NOMEM) {
		fprintf(stderr, "tlsgate notify: out of memory\n");
		fr->build_failed++;
	} else {
		follow_dropped(fr, added, account);
	}
	mime_buf_free(&msg);
out:
	free(accs);
	tally_free(&t);
}

static void follow_line(struct follow_run *fr, const char *line, size_t len)
{
	static struct tg_event_parsed parsed;	/* 12 KiB: not on the stack */
	size_t off = 0;

	if (origin_classify(line, len, &off) != ORIGIN_OURS)
		return;
	if (tg_event_parse(line + off, len - off, &parsed) < 0 ||
	    !origin_event_plausible(&parsed.ev) || !follow_triggers(&parsed.ev))
		return;
	char account[ORIGIN_MAX_USER + 1];
	size_t ulen = parsed.ev.len[TG_EV_USER];
	if (ulen >= sizeof(account))
		return;
	for (size_t i = 0; i < ulen; i++)
		account[i] = tg_ascii_lower(parsed.ev.value[TG_EV_USER][i]);
	account[ulen] = '\0';
	if (!mime_safe_address(account)) {
		fr->unsafe++;
		return;
	}
	const char *domain = strrchr(account, '@') + 1;
	const char *only = fr->o->in.domain;
	if (only != NULL && strcasecmp(only[0] == '@' ? only + 1 : only, domain) != 0)
		return;
	if (!recipients_allowed(&fr->rcpt, domain)) {
		fr->outside++;
		return;
	}
	struct state_entry *prev = state_find(fr->st, account);
	if (prev != NULL && prev->when > (int64_t)time(NULL) - fr->o->every) {
		fr->recent++;
		return;
	}
	if (sendq_pending(&fr->q, account))
		return;
	follow_queue(fr, &parsed.ev, line, off, len, account);
}

static void follow_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = follow_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Reads what is there (at most a batch, so that sends are looked after
 * too); returns the lines read, or -1 on a read error. */
static long follow_read_batch(struct follow_run *fr, struct follow *f)
{
	char why[512];
	const char *line;
	size_t len;
	long n = 0;
	int r = 0;
	while (n < FOLLOW_BATCH && !follow_stop &&
	       (r = follow_next(f, &line, &len, why, sizeof(why))) == 1) {
		follow_line(fr, line, len);
		n++;
	}
	if (n < FOLLOW_BATCH && !follow_stop && r < 0) {
		fprintf(stderr, "tlsgate notify: %s\n", why);
		return -1;
	}
	return n;
}

static void follow_wait(const struct follow *f)
{
	struct pollfd p = { .fd = follow_poll_fd(f), .events = POLLIN };
	poll(&p, 1, 200);
}

static int notify_follow(struct notify_opts *o, const struct cli_context *ctx,
			 struct template_set *ts, struct state *st)
{
	struct follow_run fr;
	struct follow f;
	char why[512];
	int status = 0;

	memset(&fr, 0, sizeof(fr));
	fr.o = o;
	fr.ctx = ctx;
	fr.ts = ts;
	fr.st = st;
	if (follow_load_policy(&fr) < 0)
		return 2;
	snprintf(why, sizeof(why), "out of memory");
	if (sendq_init(&fr.q, o->send_timeout, o->max_per_hour, follow_deliver, &fr) < 0 ||
	    follow_open(&f, o->in.files[0], o->from_start, why, sizeof(why)) < 0) {
		fprintf(stderr, "tlsgate notify: %s\n", why);
		sendq_free(&fr.q);
		recipients_free(&fr.rcpt);
		report_data_free(&fr.data);
		return 2;
	}
	follow_stop = follow_hup = 0;
	follow_install_signals();
	fprintf(stderr, "tlsgate notify: following %s\n", f.stream ? "stdin" : f.path);
	while (!follow_stop) {
		if (follow_hup) {
			follow_hup = 0;
			if (follow_load_policy(&fr) < 0)
				fprintf(stderr, "tlsgate notify: SIGHUP: the policy did not load; "
					"the one loaded before stays\n");
		}
		long n = follow_read_batch(&fr, &f);
		if (n < 0) {
			status = 1;
			break;
		}
		sendq_run(&fr.q, follow_clock(), follow_done, &fr);
		if (f.ended && sendq_busy(&fr.q) == 0)
			break;
		if (n < FOLLOW_BATCH)
			follow_wait(&f);
	}
	fr.stopping = true;
	size_t dropped = sendq_stop(&fr.q, follow_clock() + FOLLOW_STOP_GRACE, follow_clock,
				    follow_done, &fr);
	fprintf(stderr, "tlsgate notify: stopped: %llu notice(s) sent, %llu failed, %llu timed "
		"out or stopped at the exit, %llu over --max-per-hour, %llu over the queue, %zu dropped at the stop; "
		"%llu skipped as notified recently, %llu outside the notice domains, %llu "
		"without a usable address; %llu long line(s) skipped\n",
		(unsigned long long)fr.q.delivered, (unsigned long long)fr.q.failed,
		(unsigned long long)fr.q.timed_out, (unsigned long long)fr.q.over_rate,
		(unsigned long long)fr.q.overflow, dropped, (unsigned long long)fr.recent,
		(unsigned long long)fr.outside, (unsigned long long)fr.unsafe,
		(unsigned long long)f.long_lines);
	if (fr.state_errors > 0)
		status = 2;
	follow_close(&f);
	sendq_free(&fr.q);
	recipients_free(&fr.rcpt);
	report_data_free(&fr.data);
	return status;
}

int cmd_notify(int argc, char **argv, const struct cli_context *ctx)
{
	struct notify_opts o;
	int r = parse_args(argc, argv, &o);
	if (r != 0) {
		notify_usage(r > 0 ? stdout : stderr);
		return r > 0 ? 0 : 2;
	}
	if (o.out_dir != NULL) {
		struct stat st;
		if (stat(o.out_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "tlsgate notify: --out %s: not a directory\n", o.out_dir);
			return 2;
		}
	}
	struct template_set ts = { .n = 0 };
	/* Load every template needed before reading logs or sending. */
	if (!o.dry_run) {
		if (template_get(&ts, &o, o.lang) == NULL)
			goto fail_templates;
		for (size_t i = 0; i < o.nrules; i++)
			if (template_get(&ts, &o, o.rules[i].lang) == NULL)
				goto fail_templates;
	}
	struct state st = { 0 };
	if (o.state_path != NULL && state_load(&st, o.state_path) < 0) {
		state_free(&st);	/* the lines read before the damage */
		goto fail_templates;
	}

	if (o.follow) {
		r = notify_follow(&o, ctx, &ts, &st);
		state_free(&st);
		for (size_t i = 0; i < ts.n; i++)
			template_free(&ts.t[i]);
		return r;
	}

	struct report_data data;
	r = report_collect(ctx, &o.in, &data, "tlsgate notify");
	if (r != 0) {
		report_data_free(&data);
		state_free(&st);
		for (size_t i = 0; i < ts.n; i++)
			template_free(&ts.t[i]);
		return r;
	}
	struct recipients rcpt;
	if (recipients_init(&rcpt, data.policy, data.notify_domains) < 0) {
		fprintf(stderr, "tlsgate notify: out of memory\n");
		recipients_free(&rcpt);
		report_data_free(&data);
		state_free(&st);
		for (size_t i = 0; i < ts.n; i++)
			template_free(&ts.t[i]);
		return 2;
	}
	size_t na;
	struct tally_account **accs = tally_accounts(&data.tally, true, &na);
	time_t now = time(NULL);
	size_t done = 0, recent = 0, unsafe = 0, capped = 0, failed = 0, outside = 0;
	bool state_changed = false;
	int status = 0;
	for (size_t i = 0; accs != NULL && i < na; i++) {
		struct tally_account *a = accs[i];
		if (!a->would_break)
			continue;
		if (!mime_safe_address(a->name)) {
			char name[200];
			fprintf(stderr, "tlsgate notify: skipped '%s': not a plain mail address\n",
				outfmt_text(a->name, 120, name, sizeof(name)));
			unsafe++;
			continue;
		}
		if (!recipients_allowed(&rcpt, a->domain->name)) {
			outside++;
			continue;
		}
		struct state_entry *prev = o.state_path ? state_find(&st, a->name) : NULL;
		if (prev != NULL && o.every != 0 && prev->when > (int64_t)now - o.every) {
			recent++;
			continue;
		}
		if (o.max >= 0 && (long)done >= o.max) {
			capped++;
			continue;
		}
		if (o.dry_run) {
			char svc[80], last[32];
			printf("would notify %s (%s from", a->name,
			       outfmt_services(a->services_plain, svc, sizeof(svc)));
			for (struct tally_device *d = a->devices; d; d = d->next) {
				char addr[64];
				/* each address once, as in {{clients}} */
				if (first_device_of_client(a, d))
					printf(" %s", outfmt_text(d->client, 50, addr, sizeof(addr)));
			}
			printf(", last %s)\n", outfmt_time_text(a->last_plain, last, sizeof(last)));
			done++;
			continue;
		}
		struct template *tp = template_get(&ts, &o, lang_for(&o, a->domain->name));
		struct mime_buf msg;
		if (tp == NULL || build_message(tp, a, o.from, now, &msg) < 0) {
			if (tp != NULL)
				fprintf(stderr, "tlsgate notify: cannot build the notice for %s\n", a->name);
			mime_buf_free(&msg);
			status = 2;
			break;
		}
		int ok = o.send ? run_sendmail(o.sendmail, &msg) : write_eml(o.out_dir, a->name, &msg);
		mime_buf_free(&msg);
		if (ok < 0) {
			failed++;
			status = 1;
			if (o.send)
				break;	/* sendmail is broken: do not try every account */
			continue;
		}
		done++;
		if (o.state_path != NULL) {
			if (prev != NULL) {
				prev->when = (int64_t)now;
			} else if (state_put(&st, a->name, (int64_t)now) < 0) {
				status = 2;
				break;
			}
			state_changed = true;
		}
	}
	if (accs == NULL) {
		fprintf(stderr, "tlsgate notify: out of memory\n");
		status = 2;
	}
	if (state_changed && state_save(&st, o.state_path) < 0)
		status = 2;
	fprintf(o.dry_run ? stdout : stderr,
		"tlsgate notify: %zu notice(s) %s; %zu skipped as notified recently, "
		"%zu over --max, %zu without a usable address, %zu failed\n",
		done, o.dry_run ? "would be sent" : o.send ? "sent" : "written",
		recent, capped, unsafe, failed);
	if (outside > 0)
		fprintf(stderr, "tlsgate notify: %zu account(s) skipped: their domain is neither "
			"named in the policy nor listed in notify_domains (tlsgate.conf)\n", outside);
	recipients_free(&rcpt);
	free(accs);
	report_data_free(&data);
	state_free(&st);
	for (size_t i = 0; i < ts.n; i++)
		template_free(&ts.t[i]);
	return status;

fail_templates:
	for (size_t i = 0; i < ts.n; i++)
		template_free(&ts.t[i]);
	return 2;
}

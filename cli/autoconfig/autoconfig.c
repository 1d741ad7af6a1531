/*
 * autoconfig - `tlsgate autoconfig`: writes, per domain, the files from
 * which mail clients configure themselves (formats.h), publishing only
 * TLS endpoints: the servers in tlsgate.conf's autoconfig_* keys.
 *
 * Domains: those given with --domain, else every domain the policy names
 * (in @domain and user@domain rules). With --probe the endpoints are
 * checked first by `tlsgate probe`; when they are not ready, nothing is
 * written. Files land in OUT/DOMAIN/ through directory descriptors (a
 * DOMAIN that is a symbolic link is refused) as a new file in that
 * directory, fsync()ed and renamed over the old one, so a reader never
 * sees half a file and nobody who can write OUT can redirect the write.
 *
 * Exit status: 0 written, 1 endpoints not ready (nothing written), 2
 * usage, configuration or write error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "formats.h"
#include "policy.h"
#include "text.h"

#define AC_MAX_DOMAINS 10000
#define AC_DEFAULT_TTL 3600

struct ac_cli {
	const char *out_dir;
	const char *domains[64];
	size_t ndomains;
	bool probe;
	const char *ca_file;
	const char *timeout;
	unsigned ttl;
};

struct domain_list {
	char **names;
	size_t count, cap;
};

static void ac_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF] autoconfig [options] --out DIR\n"
		"\n"
		"Writes DIR/DOMAIN/config-v1.1.xml (Mozilla autoconfig),\n"
		"autodiscover.xml (Microsoft Autodiscover), mail.mobileconfig\n"
		"(Apple profile, unsigned) and srv.zone (RFC 6186/8314 SRV records)\n"
		"for each domain, with the TLS endpoints of tlsgate.conf's\n"
		"autoconfig_imap, autoconfig_pop3 and autoconfig_submission.\n"
		"\n"
		"  --out DIR        where to write (must exist)\n"
		"  --domain DOMAIN  this domain (repeatable; default: every domain\n"
		"                   the policy names)\n"
		"  --probe          check the endpoints with `tlsgate probe` first;\n"
		"                   write nothing when they are not ready\n"
		"  --ca FILE        with --probe: trust the CA certificates in FILE\n"
		"  --timeout SECS   with --probe: limit for each network step\n"
		"  --ttl SECS       TTL of the SRV records (default %d)\n"
		"\n"
		"Exit: 0 written, 1 endpoints not ready, 2 usage or setup error.\n"
		"See docs/rollout.md.\n", AC_DEFAULT_TTL);
}

static int parse_options(int argc, char **argv, struct ac_cli *o)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "out", required_argument, NULL, 'o' },
		{ "domain", required_argument, NULL, 'd' },
		{ "probe", no_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ttl", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	char *end;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			ac_usage(stdout);
			return 1;
		case 'o':
			o->out_dir = optarg;
			break;
		case 'd':
			if (o->ndomains >= sizeof(o->domains) / sizeof(o->domains[0])) {
				fprintf(stderr, "tlsgate autoconfig: more than 64 --domain\n");
				return -1;
			}
			o->domains[o->ndomains++] = optarg;
			break;
		case 'p':
			o->probe = true;
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 't':
			o->timeout = optarg;
			break;
		case 'T': {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || optarg[0] == '-' ||
			    v < 60 || v > 604800) {
				fprintf(stderr, "tlsgate autoconfig: --ttl takes "
					"60 to 604800 seconds\n");
				return -1;
			}
			o->ttl = (unsigned)v;
			break;
		}
		default:
			ac_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tlsgate autoconfig: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	if (o->out_dir == NULL) {
		fprintf(stderr, "tlsgate autoconfig: --out DIR is required\n");
		return -1;
	}
	if ((o->ca_file != NULL || o->timeout != NULL) && !o->probe) {
		fprintf(stderr, "tlsgate autoconfig: --ca and --timeout go with --probe\n");
		return -1;
	}
	return 0;
}

/* ---- domains ---- */

static int domain_add(struct domain_list *l, const char *s, size_t len)
{
	if (!tg_dns_name_valid(s, len))
		return 0;	/* not a name a client could look up */
	for (size_t i = 0; i < l->count; i++)
		if (tg_ascii_caseeq(l->names[i], strlen(l->names[i]), s, len))
			return 0;
	if (l->count >= AC_MAX_DOMAINS)
		return -1;
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **p = realloc(l->names, cap * sizeof(*p));
		if (p == NULL)
			return -1;
		l->names = p;
		l->cap = cap;
	}
	char *copy = strndup(s, len);
	if (copy == NULL)
		return -1;
	for (char *c = copy; *c; c++)
		*c = tg_ascii_lower(*c);
	l->names[l->count++] = copy;
	return 0;
}

static void domain_list_free(struct domain_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The domains of the policy's @domain and user@domain rules. */
static int policy_domains(const char *policy_path, struct domain_list *l)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *policy = tg_policy_load(policy_path, &errs);
	if (policy == NULL) {
		cli_print_errors(&errs);
		tg_errors_clear(&errs);
		return -1;
	}
	tg_errors_clear(&errs);
	int r = 0;
	size_t n = tg_policy_mode_rule_count(policy);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct tg_mode_rule_info info;
		tg_policy_mode_rule(policy, i, &info);
		const char *at = strrchr(info.subject, '@');
		if (at != NULL)
			r = domain_add(l, at + 1, strlen(at + 1));
	}
	tg_policy_free(policy);
	if (r < 0)
		fprintf(stderr, "tlsgate autoconfig: more than %d domains or out of memory\n",
			AC_MAX_DOMAINS);
	if (l->count > 1)
		qsort(l->names, l->count, sizeof(*l->names), cmp_names);
	return r;
}

/* ---- probe ---- */

/* Runs `tlsgate probe` on the endpoints: 0 ready (warnings allowed),
 * 1 not ready, 2 it could not run. */
static int probe_endpoints(const struct ac_settings *s, const struct ac_cli *o,
			   const struct cli_context *ctx)
{
	char imap[TG_DNS_NAME_MAX + 32], pop3[TG_DNS_NAME_MAX + 32];
	char sub[TG_DNS_NAME_MAX + 32];
	char *argv[12];
	int argc = 0;

	argv[argc++] = (char *)"probe";
	if (o->ca_file != NULL) {
		argv[argc++] = (char *)"--ca";
		argv[argc++] = (char *)o->ca_file;
	}
	if (o->timeout != NULL) {
		argv[argc++] = (char *)"--timeout";
		argv[argc++] = (char *)o->timeout;
	}
	if (s->imap->host != NULL) {
		snprintf(imap, sizeof(imap), "imaps://%s:%u", s->imap->host, s->imap->port);
		argv[argc++] = imap;
	}
	if (s->pop3->host != NULL) {
		snprintf(pop3, sizeof(pop3), "pop3s://%s:%u", s->pop3->host, s->pop3->port);
		argv[argc++] = pop3;
	}
	if (s->submission->host != NULL) {
		snprintf(sub, sizeof(sub), "%s://%s:%u",
			 ac_submission_starttls(s) ? "submission" : "smtps",
			 s->submission->host, s->submission->port);
		argv[argc++] = sub;
	}
	argv[argc] = NULL;
	fflush(stdout);
	int r = cmd_probe(argc, argv, ctx);
	fflush(stdout);
	return r <= 1 ? 0 : r == 2 ? 1 : 2;
}

/* ---- writing ---- */

typedef int writer_fn(FILE *out, const struct ac_settings *s);

/* Writes one file in the directory dfd: a new file with a random name
 * (O_EXCL, O_NOFOLLOW), then fsync() and rename() over `name`. */
static int write_file(int dfd, const char *dir_shown, const char *name,
		      writer_fn *writer, const struct ac_settings *s)
{
	char tmp[64];
	int fd = -1;
	for (int tries = 0; tries < 16 && fd < 0; tries++) {
		unsigned char r[6];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			break;
		snprintf(tmp, sizeof(tmp), ".%s.%02x%02x%02x%02x%02x%02x", name,
			 r[0], r[1], r[2], r[3], r[4], r[5]);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0644);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		fprintf(stderr, "tlsgate autoconfig: cannot create a file in %s: %s\n",
			dir_shown, strerror(errno));
		return -1;
	}
	(void)fchmod(fd, 0644);		/* readable by the web server, whatever the umask */
	FILE *out = fdopen(fd, "w");
	if (out == NULL) {
		close(fd);
		(void)unlinkat(dfd, tmp, 0);
		return -1;
	}
	int r = writer(out, s);
	if (fflush(out) != 0 || fsync(fileno(out)) != 0)
		r = -1;
	if (fclose(out) != 0)
		r = -1;
	if (r == 0 && renameat(dfd, tmp, dfd, name) != 0)
		r = -1;
	if (r != 0) {
		fprintf(stderr, "tlsgate autoconfig: writing %s/%s failed: %s\n",
			dir_shown, name, strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
	}
	return r;
}

static int write_domain(int out_fd, const char *out_dir, const struct ac_settings *s)
{
	static const struct {
		const char *name;
		writer_fn *writer;
	} files[] = {
		{ "config-v1.1.xml", ac_write_mozilla },
		{ "autodiscover.xml", ac_write_autodiscover },
		{ "mail.mobileconfig", ac_write_mobileconfig },
		{ "srv.zone", ac_write_zone },
	};
	char shown[4096];
	snprintf(shown, sizeof(shown), "%s/%s", out_dir, s->domain);
	if (mkdirat(out_fd, s->domain, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "tlsgate autoconfig: cannot create %s: %s\n", shown,
			strerror(errno));
		return -1;
	}
	int dfd = openat(out_fd, s->domain, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "tlsgate autoconfig: %s is not a directory (or a "
			"symbolic link): %s\n", shown, strerror(errno));
		return -1;
	}
	int r = 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && r == 0; i++)
		r = write_file(dfd, shown, files[i].name, files[i].writer, s);
	if (r == 0)
		(void)fsync(dfd);	/* the renames, too */
	close(dfd);
	if (r == 0)
		printf("%s: config-v1.1.xml autodiscover.xml mail.mobileconfig srv.zone\n",
		       shown);
	return r;
}

static int collect_domains(const struct ac_cli *o, const struct tg_config *cfg,
			   struct domain_list *l)
{
	for (size_t i = 0; i < o->ndomains; i++) {
		size_t len = strlen(o->domains[i]);
		if (!tg_dns_name_valid(o->domains[i], len)) {
			fprintf(stderr, "tlsgate autoconfig: --domain '%s' is not a "
				"domain name\n", o->domains[i]);
			return -1;
		}
		if (domain_add(l, o->domains[i], len) < 0)
			return -1;
	}
	if (o->ndomains == 0 && policy_domains(cfg->policy, l) < 0)
		return -1;
	if (l->count == 0) {
		fprintf(stderr, "tlsgate autoconfig: no domain: the policy names "
			"none (give --domain)\n");
		return -1;
	}
	return 0;
}

int cmd_autoconfig(int argc, char **argv, const struct cli_context *ctx)
{
	struct ac_cli o = { .ttl = AC_DEFAULT_TTL };
	int r = parse_options(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 2;

	struct tg_config cfg;
	if (cli_load_config(ctx, &cfg) < 0) {
		tg_config_free(&cfg);
		return 2;
	}
	if (cfg.autoconfig_imap.host == NULL && cfg.autoconfig_pop3.host == NULL) {
		fprintf(stderr, "tlsgate autoconfig: set autoconfig_imap or "
			"autoconfig_pop3 (and autoconfig_submission) in the "
			"configuration file\n");
		tg_config_free(&cfg);
		return 2;
	}
	struct domain_list domains = { 0 };
	int status = 2;
	int out_fd = -1;
	if (collect_domains(&o, &cfg, &domains) < 0)
		goto done;
	struct ac_settings s = {
		.imap = &cfg.autoconfig_imap,
		.pop3 = &cfg.autoconfig_pop3,
		.submission = &cfg.autoconfig_submission,
		.ttl = o.ttl,
	};
	if (o.probe) {
		int p = probe_endpoints(&s, &o, ctx);
		if (p != 0) {
			fprintf(stderr, "tlsgate autoconfig: the endpoints are %s: "
				"nothing written for %zu domain(s)\n",
				p == 1 ? "not ready" : "not probed", domains.count);
			status = p == 1 ? 1 : 2;
			goto done;
		}
	}
	out_fd = open(o.out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (out_fd < 0) {
		fprintf(stderr, "tlsgate autoconfig: --out %s: %s\n", o.out_dir,
			strerror(errno));
		goto done;
	}
	status = 0;
	for (size_t i = 0; i < domains.count; i++) {
		s.domain = domains.names[i];
		s.name = cfg.autoconfig_name != NULL ? cfg.autoconfig_name : s.domain;
		if (write_domain(out_fd, o.out_dir, &s) < 0)
			status = 2;
	}
done:
	if (out_fd >= 0)
		close(out_fd);
	domain_list_free(&domains);
	tg_config_free(&cfg);
	return status;
}

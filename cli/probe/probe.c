/*
 * probe - `tlsgate probe`: before TLS is enforced for a domain, check that
 * every endpoint its users reach offers working TLS (STARTTLS or implicit
 * TLS, a certificate valid for the name they type, a sane version range)
 * and whether cleartext login is still advertised.
 *
 * This file parses the command line, expands endpoint arguments into
 * endpoints, and runs probe_endpoint / probe_verdict / probe_output.
 * Exit status: 0 ready, 1 warnings, 2 not ready, 3 usage or setup error.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "endpoint.h"
#include "output.h"
#include "verdict.h"

#define PROBE_DEFAULT_TIMEOUT 10.0
#define PROBE_DEFAULT_WARN_DAYS 30
#define PROBE_MAX_ENDPOINTS 256

static void probe_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate probe [options] ENDPOINT...\n"
		"\n"
		"ENDPOINT is [SERVICE://]HOST[:PORT]; HOST is a name, an IPv4\n"
		"address or [IPv6]. Without PORT and SERVICE every standard port\n"
		"is probed (imap 143, imaps 993, pop3 110, pop3s 995, smtp 25,\n"
		"submission 587, smtps 465, sieve 4190) and closed ones are\n"
		"skipped. With only a PORT the service follows from the port.\n"
		"\n"
		"  --name NAME       name the certificate must be valid for\n"
		"                    (default: HOST; an IP address checks IP SANs)\n"
		"  --ca FILE         trust the CA certificates in FILE instead of\n"
		"                    the system trust store\n"
		"  --protocol SVC    service for endpoints without SERVICE://\n"
		"                    (imap imaps pop3 pop3s smtp submission smtps sieve)\n"
		"  --timeout SECS    limit for each network step (default %.0f)\n"
		"  --source ADDR     connect from this local address\n"
		"  --warn-days N     warn when the certificate expires within N\n"
		"                    days (default %d)\n"
		"  --no-sweep        do not try TLSv1 ... TLSv1.3 one by one\n"
		"  --json            one JSON document instead of text\n"
		"\n"
		"Exit: 0 ready, 1 warnings, 2 not ready, 3 usage or setup error.\n"
		"See docs/probe.md.\n", PROBE_DEFAULT_TIMEOUT, PROBE_DEFAULT_WARN_DAYS);
}

struct probe_cli {
	const char *name;
	const char *ca_file;
	const struct probe_service *service;
	double timeout;
	const char *source;
	int warn_days;
	bool sweep;
	bool json;
	bool per_account;	/* tlsgate's configuration is in use */
};

struct endpoint_plan {
	size_t target;		/* index into the targets */
	const struct probe_service *service;
	uint16_t port;
	bool optional;
};

/* The name goes into SNI and the certificate check: printable, no spaces. */
static bool valid_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > PROBE_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
			return false;
	return true;
}

static int parse_options(int argc, char **argv, struct probe_cli *o)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "name", required_argument, NULL, 'n' },
		{ "ca", required_argument, NULL, 'C' },
		{ "protocol", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "source", required_argument, NULL, 's' },
		{ "warn-days", required_argument, NULL, 'w' },
		{ "no-sweep", no_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	char *end;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			probe_usage(stdout);
			return 1;
		case 'n':
			o->name = optarg;
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 'p':
			o->service = probe_service_by_name(optarg, strlen(optarg));
			if (o->service == NULL) {
				fprintf(stderr, "tlsgate probe: unknown --protocol '%s' "
					"(imap imaps pop3 pop3s smtp submission smtps "
					"sieve)\n", optarg);
				return -1;
			}
			break;
		case 't':
			o->timeout = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !isfinite(o->timeout) ||
			    o->timeout < 0.05 || o->timeout > 3600) {
				fprintf(stderr, "tlsgate probe: --timeout needs seconds "
					"between 0.05 and 3600\n");
				return -1;
			}
			break;
		case 's':
			o->source = optarg;
			break;
		case 'w': {
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || v < 0 || v > 3650) {
				fprintf(stderr, "tlsgate probe: --warn-days needs a "
					"number of days 0-3650\n");
				return -1;
			}
			o->warn_days = (int)v;
			break;
		}
		case 'S':
			o->sweep = false;
			break;
		case 'j':
			o->json = true;
			break;
		default:
			probe_usage(stderr);
			return -1;
		}
	}
	if (o->name != NULL && !valid_name(o->name)) {
		fprintf(stderr, "tlsgate probe: --name needs a host name or IP "
			"address (1-%d printable characters, no spaces)\n",
			PROBE_HOST_MAX);
		return -1;
	}
	if (optind >= argc) {
		fprintf(stderr, "tlsgate probe: give at least one endpoint\n");
		probe_usage(stderr);
		return -1;
	}
	return 0;
}

/* Expands the targets into endpoints; -1 on a usage error. */
static int plan_endpoints(const struct probe_target *targets, size_t ntargets,
			  const struct probe_service *forced,
			  struct endpoint_plan *plan, size_t *nplan)
{
	size_t n = 0, ndefault;
	const struct probe_service *defaults = probe_default_services(&ndefault);

	for (size_t i = 0; i < ntargets; i++) {
		const struct probe_target *t = &targets[i];
		const struct probe_service *svc = t->service ? t->service : forced;
		if (svc == NULL && t->has_port) {
			svc = probe_service_by_port(t->port);
			if (svc == NULL) {
				fprintf(stderr, "tlsgate probe: %s:%u: no standard "
					"service on this port; give --protocol or "
					"SERVICE://\n", t->host, (unsigned)t->port);
				return -1;
			}
		}
		size_t count = svc ? 1 : ndefault;
		if (n + count > PROBE_MAX_ENDPOINTS) {
			fprintf(stderr, "tlsgate probe: more than %d endpoints\n",
				PROBE_MAX_ENDPOINTS);
			return -1;
		}
		for (size_t k = 0; k < count; k++) {
			plan[n].target = i;
			plan[n].service = svc ? svc : &defaults[k];
			plan[n].port = svc ? (t->has_port ? t->port : svc->port) :
				defaults[k].port;
			plan[n].optional = svc == NULL;
			n++;
		}
	}
	*nplan = n;
	return 0;
}

static void free_contexts(struct probe_options *po)
{
	SSL_CTX_free(po->verify_ctx);
	for (size_t v = 0; v < PROBE_NVERSIONS; v++)
		SSL_CTX_free(po->version_ctx[v]);
}

static int setup_contexts(const struct probe_cli *o, struct probe_options *po)
{
	char why[400];

	po->verify_ctx = probe_tls_verify_ctx(o->ca_file, why, sizeof(why));
	if (po->verify_ctx == NULL) {
		fprintf(stderr, "tlsgate probe: %s\n", why);
		return -1;
	}
	for (size_t v = 0; o->sweep && v < PROBE_NVERSIONS; v++) {
		po->version_ctx[v] = probe_tls_version_ctx(probe_version_codes[v],
							   why, sizeof(why));
		if (po->version_ctx[v] == NULL) {
			fprintf(stderr, "tlsgate probe: %s: %s\n",
				probe_version_names[v], why);
			return -1;
		}
	}
	return 0;
}

/* Probes every planned endpoint; returns the number of results. */
static size_t run_all(const struct probe_cli *o, const struct probe_options *po,
		      const struct probe_target *targets, size_t ntargets,
		      const struct endpoint_plan *plan, size_t nplan,
		      struct probe_result *results)
{
	size_t nresults = 0;

	for (size_t t = 0; t < ntargets; t++) {
		const char *host = targets[t].host;
		const char *name = o->name ? o->name : host;
		struct probe_addrs addrs;
		char why[300];
		bool resolved = probe_resolve(host, 0, &addrs, why, sizeof(why)) == 0;

		if (!resolved) {	/* one line for the host, not one per port */
			struct probe_result *r = &results[nresults++];
			probe_result_init(r, NULL, host, 0, name, false);
			r->failure = PF_RESOLVE;
			snprintf(r->error, sizeof(r->error), "%s", why);
			probe_judge(r, o->warn_days, o->per_account);
			if (!o->json)
				probe_print_text(stdout, r);
			continue;
		}
		for (size_t i = 0; i < nplan; i++) {
			if (plan[i].target != t)
				continue;
			struct probe_result *r = &results[nresults++];
			probe_result_init(r, plan[i].service, host, plan[i].port,
					  name, plan[i].optional);
			probe_endpoint_run(r, &addrs, po);
			probe_judge(r, o->warn_days, o->per_account);
			if (!o->json) {
				probe_print_text(stdout, r);
				fflush(stdout);
			}
		}
	}
	return nresults;
}

/*
 * With tlsgate's configuration (-c, --policy, or the default file unless
 * --no-config), tlsgate decides TLS per account on the probed server:
 * cleartext login on offer is then expected. The configuration must load,
 * as everywhere else.
 */
static int uses_tlsgate_config(const struct cli_context *ctx, struct probe_cli *o)
{
	struct tg_config cfg;

	if (!cli_has_config(ctx))
		return 0;
	int r = cli_load_config(ctx, &cfg);
	tg_config_free(&cfg);
	if (r < 0)
		return -1;
	o->per_account = true;
	return 0;
}

int cmd_probe(int argc, char **argv, const struct cli_context *ctx)
{
	struct probe_cli o = { .timeout = PROBE_DEFAULT_TIMEOUT,
			       .warn_days = PROBE_DEFAULT_WARN_DAYS, .sweep = true };
	struct probe_options po = { 0 };
	struct probe_addr source;
	char why[300];
	int status = PROBE_EXIT_ERROR;

	int r = parse_options(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : PROBE_EXIT_ERROR;
	if (uses_tlsgate_config(ctx, &o) < 0)
		return PROBE_EXIT_ERROR;

	size_t ntargets = (size_t)(argc - optind);
	struct probe_target *targets = calloc(ntargets, sizeof(*targets));
	struct endpoint_plan *plan = calloc(PROBE_MAX_ENDPOINTS, sizeof(*plan));
	struct probe_result *results = NULL;
	size_t nplan = 0;
	if (targets == NULL || plan == NULL) {
		fprintf(stderr, "tlsgate probe: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < ntargets; i++)
		if (probe_target_parse(argv[optind + (int)i], &targets[i], why,
				       sizeof(why)) < 0) {
			fprintf(stderr, "tlsgate probe: '%s': %s\n",
				argv[optind + (int)i], why);
			goto out;
		}
	if (plan_endpoints(targets, ntargets, o.service, plan, &nplan) < 0)
		goto out;
	if (o.source != NULL) {
		if (probe_source_parse(o.source, &source, why, sizeof(why)) < 0) {
			fprintf(stderr, "tlsgate probe: --source: %s\n", why);
			goto out;
		}
		po.source = &source;
	}
	po.timeout_ms = (int)(o.timeout * 1000 + 0.5);
	po.warn_days = o.warn_days;
	if (setup_contexts(&o, &po) < 0)
		goto out;
	results = calloc(nplan + ntargets, sizeof(*results));
	if (results == NULL) {
		fprintf(stderr, "tlsgate probe: out of memory\n");
		goto out;
	}
	/* a server closing early must not kill us with SIGPIPE mid-write */
	signal(SIGPIPE, SIG_IGN);
	size_t n = run_all(&o, &po, targets, ntargets, plan, nplan, results);
	if (o.json)
		probe_print_json(stdout, results, n);
	else
		probe_print_summary(stdout, results, n);
	status = probe_verdict_exit(probe_overall(results, n));
out:
	free_contexts(&po);
	free(results);
	free(plan);
	free(targets);
	return status;
}

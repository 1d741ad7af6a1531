/*
 * probe/output - text and JSON reports. See output.h.
 */
#include <string.h>

#include "output.h"
#include "verdict.h"

static const char *style_name(const struct probe_result *r)
{
	if (r->service == NULL)
		return "";
	if (r->service->style == PROBE_IMPLICIT)
		return "implicit TLS";
	return r->service->proto == PROBE_POP3 ? "STLS" : "STARTTLS";
}

static const char *answer_name(enum probe_version_answer a)
{
	switch (a) {
	case PV_ACCEPTED: return "yes";
	case PV_REFUSED: return "no";
	case PV_UNKNOWN: return "unknown";
	case PV_NOT_TRIED: break;
	}
	return "not tested";
}

/* Index of the lowest / highest accepted version, -1 if none. */
static int version_bound(const struct probe_result *r, bool highest)
{
	int found = -1;
	for (int v = 0; v < PROBE_NVERSIONS; v++)
		if (r->versions[v] == PV_ACCEPTED) {
			found = v;
			if (!highest)
				break;
		}
	return found;
}

static bool cert_verified(const struct probe_result *r)
{
	return r->tls_ok && r->cert.present && r->cert.nerrors == 0;
}

static const char *level_mark(enum probe_level level)
{
	switch (level) {
	case PROBE_PROBLEM: return "NOT READY";
	case PROBE_WARNING: return "warning";
	case PROBE_NOTE: break;
	}
	return "note";
}

static void print_endpoint_head(FILE *out, const struct probe_result *r)
{
	if (r->service == NULL) {
		fprintf(out, "%s (all services): %s\n", r->host,
			probe_verdict_name(r->verdict));
		return;
	}
	fprintf(out, "%s %s%s%s:%u (%s %s): %s\n", r->service->name,
		strchr(r->host, ':') ? "[" : "", r->host,
		strchr(r->host, ':') ? "]" : "", (unsigned)r->port,
		probe_proto_name(r->service->proto), style_name(r),
		probe_verdict_name(r->verdict));
}

static void print_facts(FILE *out, const struct probe_result *r)
{
	if (!r->reachable)
		return;
	fprintf(out, "  address      %s\n", r->address);
	if (r->greeting[0])
		fprintf(out, "  greeting     %s\n", r->greeting);
	if (r->service->style == PROBE_STARTTLS) {
		fprintf(out, "  plaintext    offered; %s %s\n", style_name(r),
			r->caps.starttls ? "offered" : "not offered");
		if (r->plaintext_auth >= 0)
			fprintf(out, "  plain login  %s before %s%s%s\n",
				r->plaintext_auth ? "advertised" : "not advertised",
				style_name(r), r->caps.mechs[0] ? "; SASL: " : "",
				r->caps.mechs);
	}
	if (r->tls_ok)
		fprintf(out, "  TLS          works: %s, %s\n", r->protocol, r->cipher);
	if (r->versions[0] != PV_NOT_TRIED) {
		int lo = version_bound(r, false), hi = version_bound(r, true);
		fprintf(out, "  versions    ");
		for (int v = 0; v < PROBE_NVERSIONS; v++)
			fprintf(out, " %s %s%s", probe_version_names[v],
				answer_name(r->versions[v]),
				v + 1 < PROBE_NVERSIONS ? "," : "");
		if (lo >= 0)
			fprintf(out, " (lowest %s, highest %s)",
				probe_version_names[lo], probe_version_names[hi]);
		fputc('\n', out);
	}
	if (r->tls_ok && r->cert.present) {
		fprintf(out, "  certificate  CN \"%s\" issued by \"%s\"; %s\n",
			r->cert.subject_cn, r->cert.issuer_cn,
			r->cert.names[0] ? r->cert.names : "no subjectAltName");
		if (r->cert.expired)
			fprintf(out, "  expiry       expired on %s\n", r->cert.not_after);
		else
			fprintf(out, "  expiry       %s (%ld days left)\n",
				r->cert.not_after, r->cert.days_left);
		fprintf(out, "  verified     for %s: %s\n", r->name,
			cert_verified(r) ? "yes" : "no");
	}
}

void probe_print_text(FILE *out, const struct probe_result *r)
{
	print_endpoint_head(out, r);
	if (r->verdict != PROBE_CLOSED)
		print_facts(out, r);
	for (size_t i = 0; i < r->nreasons; i++)
		fprintf(out, "  %-9s    %s\n", level_mark(r->reasons[i].level),
			r->reasons[i].text);
	fputc('\n', out);
}

void probe_print_summary(FILE *out, const struct probe_result *results, size_t n)
{
	size_t count[PROBE_NOT_READY + 1] = { 0 };

	for (size_t i = 0; i < n; i++)
		count[results[i].verdict]++;
	if (n > 0 && count[PROBE_CLOSED] == n) {
		fprintf(out, "overall: not ready (nothing answers on any probed "
			"port)\n");
		return;
	}
	fprintf(out, "overall: %s (%zu ready, %zu with warnings, %zu not ready, "
		"%zu closed)\n", probe_verdict_name(probe_overall(results, n)),
		count[PROBE_READY], count[PROBE_WARNINGS], count[PROBE_NOT_READY],
		count[PROBE_CLOSED]);
}

void probe_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_field(FILE *out, const char *key, const char *value)
{
	fprintf(out, ", \"%s\": ", key);
	if (value == NULL)
		fputs("null", out);
	else
		probe_json_string(out, value);
}

static void json_bool(FILE *out, const char *key, int value)
{
	fprintf(out, ", \"%s\": %s", key, value < 0 ? "null" : value ? "true" : "false");
}

static const char *failure_name(enum probe_failure f)
{
	switch (f) {
	case PF_NONE: return NULL;
	case PF_RESOLVE: return "resolve";
	case PF_CONNECT: return "connect";
	case PF_DIALOG: return "dialogue";
	case PF_NO_STARTTLS: return "no-starttls";
	case PF_TLS: return "tls";
	}
	return NULL;
}

static void json_cert(FILE *out, const struct probe_result *r)
{
	char reason[400];

	if (!r->tls_ok || !r->cert.present) {
		fputs(", \"certificate\": null", out);
		return;
	}
	fputs(", \"certificate\": {\"subject_cn\": ", out);
	probe_json_string(out, r->cert.subject_cn);
	json_field(out, "issuer_cn", r->cert.issuer_cn);
	json_field(out, "names", r->cert.names);
	json_field(out, "not_after", r->cert.not_after);
	fprintf(out, ", \"days_left\": %ld", r->cert.days_left);
	json_bool(out, "expired", r->cert.expired);
	json_bool(out, "verified", cert_verified(r));
	fputs(", \"errors\": [", out);
	for (size_t i = 0; i < r->cert.nerrors; i++) {
		probe_verify_reason(r->cert.errors[i], &r->cert, r->name,
				    reason, sizeof(reason));
		fputs(i ? ", " : "", out);
		probe_json_string(out, reason);
	}
	fputs("]}", out);
}

static void json_endpoint(FILE *out, const struct probe_result *r)
{
	bool starttls_style = r->service && r->service->style == PROBE_STARTTLS;

	fputs("{\"service\": ", out);
	if (r->service == NULL)
		fputs("null", out);
	else
		probe_json_string(out, r->service->name);
	json_field(out, "protocol", r->service ? probe_proto_name(r->service->proto) : NULL);
	json_field(out, "tls_style", r->service == NULL ? NULL :
		   starttls_style ? "starttls" : "implicit");
	json_field(out, "host", r->host);
	fprintf(out, ", \"port\": %u", (unsigned)r->port);
	json_field(out, "name", r->name);
	json_field(out, "verdict", probe_verdict_name(r->verdict));
	json_bool(out, "reachable", r->reachable);
	json_field(out, "address", r->reachable ? r->address : NULL);
	json_field(out, "failure", failure_name(r->failure));
	json_field(out, "error", r->failure != PF_NONE ? r->error : NULL);
	json_field(out, "greeting", r->greeting[0] ? r->greeting : NULL);
	json_bool(out, "plaintext_offered", r->reachable && starttls_style);
	json_bool(out, "starttls_offered", starttls_style && r->reachable ?
		  r->caps.starttls : -1);
	json_bool(out, "plaintext_auth_advertised",
		  starttls_style ? r->plaintext_auth : -1);
	json_field(out, "auth_mechanisms", starttls_style ? r->caps.mechs : NULL);
	json_bool(out, "tls_ok", r->tls_ok);
	json_field(out, "tls_protocol", r->tls_ok ? r->protocol : NULL);
	json_field(out, "tls_cipher", r->tls_ok ? r->cipher : NULL);
	fputs(", \"versions\": {", out);
	for (int v = 0; v < PROBE_NVERSIONS; v++) {
		fprintf(out, "%s\"%s\": ", v ? ", " : "", probe_version_names[v]);
		probe_json_string(out, r->versions[v] == PV_ACCEPTED ? "accepted" :
				  r->versions[v] == PV_REFUSED ? "refused" :
				  r->versions[v] == PV_UNKNOWN ? "unknown" :
				  "not tested");
	}
	fputc('}', out);
	int lo = version_bound(r, false), hi = version_bound(r, true);
	json_field(out, "lowest_version", lo >= 0 ? probe_version_names[lo] : NULL);
	json_field(out, "highest_version", hi >= 0 ? probe_version_names[hi] : NULL);
	json_cert(out, r);
	fputs(", \"reasons\": [", out);
	for (size_t i = 0; i < r->nreasons; i++) {
		fprintf(out, "%s{\"level\": \"%s\", \"text\": ", i ? ", " : "",
			r->reasons[i].level == PROBE_PROBLEM ? "problem" :
			r->reasons[i].level == PROBE_WARNING ? "warning" : "note");
		probe_json_string(out, r->reasons[i].text);
		fputc('}', out);
	}
	fputs("]}", out);
}

void probe_print_json(FILE *out, const struct probe_result *results, size_t n)
{
	enum probe_verdict overall = probe_overall(results, n);

	fputs("{\"endpoints\": [", out);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n  " : "\n  ", out);
		json_endpoint(out, &results[i]);
	}
	fprintf(out, "\n], \"verdict\": \"%s\", \"exit_code\": %d}\n",
		probe_verdict_name(overall), probe_verdict_exit(overall));
}

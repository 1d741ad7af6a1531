/*
 * probe/endpoint - probing one endpoint (host, port, service): connect,
 * speak the protocol up to STARTTLS (or do implicit TLS), verify the
 * certificate, then sweep TLSv1 ... TLSv1.3 one fresh connection each.
 *
 * The result holds facts only; probe_verdict judges them. Every network
 * step is bounded by the timeout in the options and every connection by
 * PROBE_SESSION_TIMEOUTS timeouts (see net.h): an endpoint makes at
 * most 5 connections (main + 4 sweep), each costing at most one connect
 * timeout per address tried plus its session allowance. A server that
 * stays silent costs one timeout: without a greeting there is no sweep.
 */
#ifndef TLSGATE_PROBE_ENDPOINT_H
#define TLSGATE_PROBE_ENDPOINT_H

#include <stdbool.h>

#include "dialog.h"
#include "net.h"
#include "target.h"
#include "tls.h"

#define PROBE_NVERSIONS 4	/* TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 */

enum probe_failure {
	PF_NONE,
	PF_RESOLVE,		/* name did not resolve */
	PF_CONNECT,		/* no address accepted the connection */
	PF_DIALOG,		/* greeting / capabilities / STARTTLS reply bad */
	PF_NO_STARTTLS,		/* plaintext port without STARTTLS */
	PF_TLS,			/* the TLS handshake failed */
};

enum probe_version_answer {
	PV_NOT_TRIED,
	PV_ACCEPTED,
	PV_REFUSED,
	PV_UNKNOWN,		/* the attempt failed before the handshake */
};

enum probe_level { PROBE_NOTE, PROBE_WARNING, PROBE_PROBLEM };

#define PROBE_REASONS_MAX 12

struct probe_reason {
	enum probe_level level;
	char text[400];
};

enum probe_verdict {
	PROBE_CLOSED,		/* a default port that is not open: ignored */
	PROBE_READY,
	PROBE_WARNINGS,
	PROBE_NOT_READY,
};

struct probe_options {
	int timeout_ms;
	SSL_CTX *verify_ctx;
	SSL_CTX *version_ctx[PROBE_NVERSIONS];	/* NULL: no sweep */
	const struct probe_addr *source;	/* NULL: any */
	int warn_days;				/* expiry warning threshold */
};

struct probe_result {
	/* what was probed */
	const struct probe_service *service;
	char host[PROBE_HOST_MAX + 1];
	uint16_t port;
	char name[PROBE_HOST_MAX + 1];	/* the name the certificate must match */
	bool optional;		/* from the default port list */

	/* what happened */
	enum probe_failure failure;
	char error[300];	/* why, when failure != PF_NONE */
	bool connect_refused;	/* every address refused (port closed) */
	char address[64];	/* the address that answered */
	bool reachable;
	char greeting[160];
	struct probe_caps caps;
	int plaintext_auth;	/* see probe_caps_plaintext_auth; -1 n/a */
	bool tls_ok;
	char protocol[16];	/* negotiated, e.g. "TLSv1.3" */
	char cipher[64];
	struct probe_cert cert;
	enum probe_version_answer versions[PROBE_NVERSIONS];
	char version_why[PROBE_NVERSIONS][160];

	/* the judgement (probe_verdict) */
	enum probe_verdict verdict;
	size_t nreasons;
	struct probe_reason reasons[PROBE_REASONS_MAX];
};

extern const char *const probe_version_names[PROBE_NVERSIONS];
extern const int probe_version_codes[PROBE_NVERSIONS];

/* Prepares r for one endpoint; addrs' ports are replaced by `port`. */
void probe_result_init(struct probe_result *r, const struct probe_service *svc,
		       const char *host, uint16_t port, const char *name,
		       bool optional);
/* Probes the endpoint r describes at addrs, filling r's facts. */
void probe_endpoint_run(struct probe_result *r, const struct probe_addrs *addrs,
			const struct probe_options *o);

#endif

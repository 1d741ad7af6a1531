/*
 * probe/tls - the probe's OpenSSL side: client contexts, the handshake
 * over a probe_conn (non-blocking, bounded by the conn's timeout), and the
 * facts about the session and the server's certificate.
 *
 * Two kinds of context:
 *  - the verifying context acts like a current mail client: OpenSSL's
 *    defaults (system openssl.cnf, security level 1 or whatever the system
 *    sets), the system trust store or the --ca file. Verification errors
 *    do not abort the handshake: every error is collected (up to
 *    PROBE_VERIFY_MAX) so the report can name them all.
 *  - a version context allows exactly one protocol version at security
 *    level 0 with every cipher ("ALL:@SECLEVEL=0") and legacy servers
 *    allowed, so that refusing e.g. TLSv1 is the server's answer, not
 *    OpenSSL 3's client-side default. It does not verify anything.
 *
 * Errors return -1 / NULL and fill `why`.
 */
#ifndef TLSGATE_PROBE_TLS_H
#define TLSGATE_PROBE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "net.h"

#define PROBE_VERIFY_MAX 8

struct probe_cert {
	bool present;
	char subject_cn[128];
	char issuer_cn[128];
	char names[512];	/* subjectAltName entries "DNS:x, IP:y" */
	char not_after[16];	/* YYYY-MM-DD (UTC) */
	long days_left;		/* whole days until notAfter */
	bool expired;
	int errors[PROBE_VERIFY_MAX];	/* X509_V_ERR_* seen, in order */
	size_t nerrors;
};

/* Verifying context; ca_file NULL: the system trust store. */
SSL_CTX *probe_tls_verify_ctx(const char *ca_file, char *why, size_t why_size);
/* Context allowing only `version` (TLS1_VERSION ... TLS1_3_VERSION). */
SSL_CTX *probe_tls_version_ctx(int version, char *why, size_t why_size);

/* Handshake on c (the conn owns the SSL afterwards). name: SNI (if not an
 * IP) and the name the certificate must match (DNS or IP SANs) when cert
 * is not NULL; cert receives the certificate facts. */
int probe_tls_handshake(struct probe_conn *c, SSL_CTX *ctx, const char *name,
			struct probe_cert *cert, char *why, size_t why_size);
/* A sentence for one verification error of cert, checked against name. */
void probe_verify_reason(int err, const struct probe_cert *cert,
			 const char *name, char *buf, size_t size);

#endif

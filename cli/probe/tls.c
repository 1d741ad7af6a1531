/*
 * probe/tls - OpenSSL contexts, handshake and certificate facts for the
 * probe. See tls.h.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "text.h"
#include "tls.h"

/* The first error of the OpenSSL queue as text, or the system error. */
static void openssl_error(char *buf, size_t size, const char *what)
{
	unsigned long e = ERR_get_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	/* what a plaintext greeting read as a TLS record looks like */
	bool not_tls = ERR_GET_LIB(e) == ERR_LIB_SSL &&
		(ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
		 ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG ||
		 ERR_GET_REASON(e) == SSL_R_RECORD_LENGTH_MISMATCH);

	if (reason != NULL)
		snprintf(buf, size, "%s: %s%s", what, reason, not_tls ?
			 " (the server does not answer with TLS: a plaintext "
			 "port?)" : "");
	else if (e != 0)
		snprintf(buf, size, "%s: OpenSSL error %lx", what, e);
	else
		snprintf(buf, size, "%s", what);
	ERR_clear_error();
}

/* Keeps verifying after an error, remembering each distinct one. */
static int collect_verify_error(int ok, X509_STORE_CTX *store)
{
	if (ok)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(store,
					      SSL_get_ex_data_X509_STORE_CTX_idx());
	struct probe_cert *cert = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	int err = X509_STORE_CTX_get_error(store);
	if (cert == NULL)
		return 1;
	for (size_t i = 0; i < cert->nerrors; i++)
		if (cert->errors[i] == err)
			return 1;
	if (cert->nerrors < PROBE_VERIFY_MAX)
		cert->errors[cert->nerrors++] = err;
	return 1;
}

SSL_CTX *probe_tls_verify_ctx(const char *ca_file, char *why, size_t why_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		openssl_error(why, why_size, "cannot create a TLS context");
		return NULL;
	}
	int ok = ca_file != NULL ?
		SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
		SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		char what[300];
		snprintf(what, sizeof(what), "cannot load the CA certificates%s%s",
			 ca_file ? " from " : "", ca_file ? ca_file : "");
		openssl_error(why, why_size, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, collect_verify_error);
	return ctx;
}

SSL_CTX *probe_tls_version_ctx(int version, char *why, size_t why_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		openssl_error(why, why_size, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0") != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, version) != 1) {
		openssl_error(why, why_size, "cannot set up the version context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static bool is_ip(const char *name)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static void name_entry_text(const X509_NAME *xn, char *buf, size_t size)
{
	buf[0] = '\0';
	int i = X509_NAME_get_index_by_NID(xn, NID_commonName, -1);
	if (i < 0)
		return;
	const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(xn, i));
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, data);
	if (n < 0)
		return;
	probe_clean_text((const char *)utf8, (size_t)n, buf, size);
	OPENSSL_free(utf8);
}

static void collect_names(X509 *x, struct probe_cert *cert)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		char item[300], text[260];
		if (gn->type == GEN_DNS) {
			const ASN1_STRING *s = gn->d.dNSName;
			probe_clean_text((const char *)ASN1_STRING_get0_data(s),
					 (size_t)ASN1_STRING_length(s), text, sizeof(text));
			snprintf(item, sizeof(item), "DNS:%s", text);
		} else if (gn->type == GEN_IPADD) {
			const ASN1_OCTET_STRING *s = gn->d.iPAddress;
			int len = ASN1_STRING_length(s);
			if (len != 4 && len != 16)
				continue;
			inet_ntop(len == 4 ? AF_INET : AF_INET6,
				  ASN1_STRING_get0_data(s), text, sizeof(text));
			snprintf(item, sizeof(item), "IP:%s", text);
		} else {
			continue;
		}
		if (!probe_list_add(cert->names, sizeof(cert->names), ", ", item))
			break;
	}
	GENERAL_NAMES_free(sans);
}

static void collect_cert(SSL *ssl, struct probe_cert *cert)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	if (x == NULL)
		return;
	cert->present = true;
	name_entry_text(X509_get_subject_name(x), cert->subject_cn,
			sizeof(cert->subject_cn));
	name_entry_text(X509_get_issuer_name(x), cert->issuer_cn,
			sizeof(cert->issuer_cn));
	collect_names(x, cert);

	const ASN1_TIME *na = X509_get0_notAfter(x);
	struct tm tm;
	int days = 0, secs = 0;
	if (na != NULL && ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(cert->not_after, sizeof(cert->not_after), "%Y-%m-%d", &tm);
	if (na != NULL && ASN1_TIME_diff(&days, &secs, NULL, na) == 1) {
		cert->days_left = days;
		cert->expired = days < 0 || secs < 0;
	}
	long result = SSL_get_verify_result(ssl);
	if (result != X509_V_OK && cert->nerrors == 0)
		cert->errors[cert->nerrors++] = (int)result;
}

int probe_tls_handshake(struct probe_conn *c, SSL_CTX *ctx, const char *name,
			struct probe_cert *cert, char *why, size_t why_size)
{
	char timeout_why[160];
	int64_t deadline = probe_step_deadline(c, "TLS handshake timed out: no "
					       "progress", timeout_why,
					       sizeof(timeout_why));
	SSL *ssl = SSL_new(ctx);

	ERR_clear_error();
	if (ssl == NULL) {
		openssl_error(why, why_size, "cannot create a TLS session");
		return -1;
	}
	c->ssl = ssl;
	if (SSL_set_fd(ssl, c->fd) != 1) {
		openssl_error(why, why_size, "cannot attach TLS to the socket");
		return -1;
	}
	if (name != NULL && !is_ip(name))
		SSL_set_tlsext_host_name(ssl, name);
	if (cert != NULL) {
		memset(cert, 0, sizeof(*cert));
		SSL_set_app_data(ssl, cert);
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
		int ok = is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
				     : SSL_set1_host(ssl, name);
		if (ok != 1) {
			openssl_error(why, why_size, "cannot set the name to check");
			return -1;
		}
	}
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(ssl, r);
		short want;
		if (e == SSL_ERROR_WANT_READ)
			want = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			want = POLLOUT;
		else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			snprintf(why, why_size, "TLS handshake failed: the server "
				 "closed the connection");
			return -1;
		} else {
			openssl_error(why, why_size, "TLS handshake failed");
			return -1;
		}
		int w = probe_wait_fd(c->fd, want, deadline);
		if (w <= 0) {
			snprintf(why, why_size, "%s", w == 0 ? timeout_why :
				 "TLS handshake failed: poll error");
			return -1;
		}
	}
	if (cert != NULL) {
		SSL_set_app_data(ssl, NULL);
		collect_cert(ssl, cert);
	}
	return 0;
}

void probe_verify_reason(int err, const struct probe_cert *cert,
			 const char *name, char *buf, size_t size)
{
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(buf, size, "the certificate is self-signed "
			 "(no trusted CA vouches for it)");
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		snprintf(buf, size, "the certificate (issued by \"%s\") chains to "
			 "a self-signed root that is not trusted", cert->issuer_cn);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		snprintf(buf, size, "the certificate's issuer \"%s\" is not a "
			 "trusted CA (or the server does not send the "
			 "intermediate certificate)", cert->issuer_cn);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(buf, size, "the certificate expired on %s", cert->not_after);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, size, "the certificate is not valid yet");
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(buf, size, "the certificate is not valid for %s (it names "
			 "%s)", name, cert->names[0] ? cert->names : cert->subject_cn);
		break;
	default:
		snprintf(buf, size, "certificate verification failed: %s",
			 X509_verify_cert_error_string(err));
		break;
	}
}

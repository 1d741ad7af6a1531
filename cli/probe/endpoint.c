/*
 * probe/endpoint - one endpoint, start to finish. See endpoint.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "endpoint.h"
#include "text.h"

const char *const probe_version_names[PROBE_NVERSIONS] = {
	"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3",
};
const int probe_version_codes[PROBE_NVERSIONS] = {
	TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION,
};

void probe_result_init(struct probe_result *r, const struct probe_service *svc,
		       const char *host, uint16_t port, const char *name,
		       bool optional)
{
	memset(r, 0, sizeof(*r));
	r->service = svc;
	snprintf(r->host, sizeof(r->host), "%s", host);
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->port = port;
	r->optional = optional;
	r->plaintext_auth = -1;
}

static void set_port(struct probe_addr *a, uint16_t port)
{
	if (a->sa.ss_family == AF_INET)
		((struct sockaddr_in *)&a->sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(port);
}

/* Connects to the first address that accepts; remembers which. */
static int connect_any(struct probe_result *r, const struct probe_addrs *addrs,
		       const struct probe_options *o, struct probe_conn *c,
		       char *why, size_t why_size)
{
	size_t refused = 0;

	for (size_t i = 0; i < addrs->count; i++) {
		struct probe_addr a = addrs->addr[i];
		enum probe_connect_error err;
		char text[200];
		set_port(&a, r->port);
		probe_addr_format(&a, r->address, sizeof(r->address));
		if (probe_connect(c, &a, o->source, o->timeout_ms, &err,
				  text, sizeof(text)) == 0)
			return 0;
		refused += err == PROBE_CONNECT_REFUSED;
		snprintf(why, why_size, "%s: %s", r->address, text);
	}
	r->connect_refused = refused == addrs->count;
	return -1;
}

/* The EHLO argument: our own address as an address literal. */
static void local_literal(const struct probe_conn *c, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	snprintf(buf, size, "localhost");
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip)))
		snprintf(buf, size, "[%s]", ip);
	else if (ss.ss_family == AF_INET6 &&
		 inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
			   sizeof(ip)))
		snprintf(buf, size, "[IPv6:%s]", ip);
}

/* Runs d over c until it asks for TLS, finishes or fails. */
static enum probe_step run_dialog(struct probe_conn *c, struct probe_dialog *d,
				  char *why, size_t why_size)
{
	char line[PROBE_LINE_MAX + 1];
	enum probe_step step = PD_READ;

	for (;;) {
		size_t len;
		if (step == PD_SEND &&
		    probe_write(c, d->out, strlen(d->out), why, why_size) < 0)
			return PD_FAIL;
		if (probe_read_line(c, line, sizeof(line), &len, why, why_size) < 0) {
			if (d->greeting[0] == '\0' && strstr(why, "no reply") != NULL)
				snprintf(why, why_size,
					 "no greeting within %d ms (the server "
					 "accepts connections but says nothing)",
					 c->timeout_ms);
			return PD_FAIL;
		}
		step = probe_dialog_feed(d, line, len);
		switch (step) {
		case PD_READ:
		case PD_SEND:
			continue;
		case PD_FAIL:
			snprintf(why, why_size, "%s", d->why);
			return PD_FAIL;
		case PD_TLS:
			if (c->len > 0) {
				snprintf(why, why_size, "the server sent data after "
					 "its STARTTLS reply, before the handshake");
				return PD_FAIL;
			}
			return PD_TLS;
		case PD_DONE:
			return PD_DONE;
		}
	}
}

static void version_unknown_why(struct probe_result *r, size_t v, const char *why)
{
	probe_clean_text(why, strlen(why), r->version_why[v], sizeof(r->version_why[v]));
}

static void fail(struct probe_result *r, enum probe_failure f, const char *why)
{
	r->failure = f;
	probe_clean_text(why, strlen(why), r->error, sizeof(r->error));
}

static bool implicit(const struct probe_result *r)
{
	return r->service->style == PROBE_IMPLICIT;
}

/* The main connection: what a client sees. Returns true when a TLS
 * handshake was attempted (so a version sweep makes sense). */
static bool probe_main(struct probe_result *r, const struct probe_addrs *addrs,
		       const struct probe_options *o)
{
	struct probe_conn c;
	struct probe_dialog d;
	char why[300], helo[80];

	if (connect_any(r, addrs, o, &c, why, sizeof(why)) < 0) {
		fail(r, PF_CONNECT, why);
		return false;
	}
	r->reachable = true;
	local_literal(&c, helo, sizeof(helo));
	probe_dialog_init(&d, r->service->proto, implicit(r), helo);

	bool tried_tls = false;
	if (!implicit(r)) {
		enum probe_step step = run_dialog(&c, &d, why, sizeof(why));
		snprintf(r->greeting, sizeof(r->greeting), "%s", d.greeting);
		r->caps = d.caps;
		r->plaintext_auth = probe_caps_plaintext_auth(&d);
		if (step == PD_FAIL) {
			fail(r, PF_DIALOG, why);
			goto out;
		}
		if (step == PD_DONE) {
			fail(r, PF_NO_STARTTLS, r->service->proto == PROBE_POP3 ?
			     "STLS is not offered" : "STARTTLS is not offered");
			goto out;
		}
	}
	tried_tls = true;
	if (probe_tls_handshake(&c, o->verify_ctx, r->name, &r->cert,
				why, sizeof(why)) < 0) {
		fail(r, PF_TLS, why);
		goto out;
	}
	r->tls_ok = true;
	snprintf(r->protocol, sizeof(r->protocol), "%s", SSL_get_version(c.ssl));
	snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(c.ssl));
	if (implicit(r)) {
		enum probe_step step = run_dialog(&c, &d, why, sizeof(why));
		snprintf(r->greeting, sizeof(r->greeting), "%s", d.greeting);
		if (step != PD_DONE) {
			char msg[340];
			snprintf(msg, sizeof(msg), "after the TLS handshake: %s", why);
			fail(r, PF_DIALOG, msg);
		}
	}
out:
	probe_close(&c);
	return tried_tls;
}

/* One sweep connection allowing only version v. */
static void probe_version(struct probe_result *r, const struct probe_addrs *addrs,
			  const struct probe_options *o, size_t v)
{
	struct probe_conn c;
	struct probe_dialog d;
	char why[300], helo[80];

	if (connect_any(r, addrs, o, &c, why, sizeof(why)) < 0) {
		r->versions[v] = PV_UNKNOWN;
		version_unknown_why(r, v, why);
		return;
	}
	if (!implicit(r)) {
		local_literal(&c, helo, sizeof(helo));
		probe_dialog_init(&d, r->service->proto, false, helo);
		if (run_dialog(&c, &d, why, sizeof(why)) != PD_TLS) {
			r->versions[v] = PV_UNKNOWN;
			version_unknown_why(r, v, why);
			probe_close(&c);
			return;
		}
	}
	if (probe_tls_handshake(&c, o->version_ctx[v], r->name, NULL,
				why, sizeof(why)) == 0) {
		r->versions[v] = PV_ACCEPTED;
	} else {
		/* a stalled handshake says nothing about the version */
		r->versions[v] = strstr(why, "timed out") ? PV_UNKNOWN : PV_REFUSED;
		version_unknown_why(r, v, why);
	}
	probe_close(&c);
}

void probe_endpoint_run(struct probe_result *r, const struct probe_addrs *addrs,
			const struct probe_options *o)
{
	if (!probe_main(r, addrs, o))
		return;
	for (size_t v = 0; v < PROBE_NVERSIONS; v++)
		if (o->version_ctx[v] != NULL)
			probe_version(r, addrs, o, v);
}

/*
 * autoconfig/formats - client configuration files. See formats.h.
 *
 * References: Mozilla's autoconfig "config-v1.1.xml" (as Thunderbird
 * reads it), Microsoft's Autodiscover POX response schema 2006a, Apple's
 * Configuration Profile Reference (com.apple.mail.managed), RFC 6186 and
 * RFC 8314 (SRV records; target "." = service not offered).
 */
#include "formats.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#include "report/outfmt.h"
#include "text.h"

int ac_submission_starttls(const struct ac_settings *s)
{
	return s->submission->host != NULL && s->submission->port == 587;
}

static int finish(FILE *out)
{
	return ferror(out) ? -1 : 0;
}

/* ---- Mozilla autoconfig ---- */

static void moz_server(FILE *out, const char *element, const char *type,
		       const struct tg_endpoint *ep, const char *socket_type)
{
	fprintf(out,
		"    <%s type=\"%s\">\n"
		"      <hostname>%s</hostname>\n"
		"      <port>%u</port>\n"
		"      <socketType>%s</socketType>\n"
		"      <authentication>password-cleartext</authentication>\n"
		"      <username>%%EMAILADDRESS%%</username>\n"
		"    </%s>\n",
		element, type, ep->host, ep->port, socket_type, element);
}

int ac_write_mozilla(FILE *out, const struct ac_settings *s)
{
	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<!-- tlsgate autoconfig: TLS settings only -->\n"
		"<clientConfig version=\"1.1\">\n"
		"  <emailProvider id=\"%s\">\n"
		"    <domain>%s</domain>\n"
		"    <displayName>", s->domain, s->domain);
	outfmt_html(out, s->name);
	fputs("</displayName>\n    <displayShortName>", out);
	outfmt_html(out, s->name);
	fputs("</displayShortName>\n", out);
	if (s->imap->host != NULL)
		moz_server(out, "incomingServer", "imap", s->imap, "SSL");
	if (s->pop3->host != NULL)
		moz_server(out, "incomingServer", "pop3", s->pop3, "SSL");
	if (s->submission->host != NULL)
		moz_server(out, "outgoingServer", "smtp", s->submission,
			   ac_submission_starttls(s) ? "STARTTLS" : "SSL");
	fputs("  </emailProvider>\n</clientConfig>\n", out);
	return finish(out);
}

/* ---- Microsoft Autodiscover (POX) ---- */

static void ms_protocol(FILE *out, const char *type,
			const struct tg_endpoint *ep, const char *encryption)
{
	/* <Encryption> takes precedence over <SSL> in Outlook; both are
	 * given for older clients. */
	fprintf(out,
		"      <Protocol>\n"
		"        <Type>%s</Type>\n"
		"        <Server>%s</Server>\n"
		"        <Port>%u</Port>\n"
		"        <DomainRequired>off</DomainRequired>\n"
		"        <SPA>off</SPA>\n"
		"        <SSL>on</SSL>\n"
		"        <Encryption>%s</Encryption>\n"
		"        <AuthRequired>on</AuthRequired>\n"
		"      </Protocol>\n",
		type, ep->host, ep->port, encryption);
}

int ac_write_autodiscover(FILE *out, const struct ac_settings *s)
{
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	      "<!-- tlsgate autoconfig: TLS settings only -->\n"
	      "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n"
	      "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n"
	      "    <User>\n"
	      "      <DisplayName>", out);
	outfmt_html(out, s->name);
	fputs("</DisplayName>\n"
	      "    </User>\n"
	      "    <Account>\n"
	      "      <AccountType>email</AccountType>\n"
	      "      <Action>settings</Action>\n", out);
	if (s->imap->host != NULL)
		ms_protocol(out, "IMAP", s->imap, "SSL");
	if (s->pop3->host != NULL)
		ms_protocol(out, "POP3", s->pop3, "SSL");
	if (s->submission->host != NULL)
		ms_protocol(out, "SMTP", s->submission,
			    ac_submission_starttls(s) ? "TLS" : "SSL");
	fputs("    </Account>\n  </Response>\n</Autodiscover>\n", out);
	return finish(out);
}

/* ---- Apple configuration profile ---- */

char *ac_uuid(const char *name, char *buf)
{
	/* RFC 4122 version 5 in the DNS name space. */
	static const unsigned char dns_ns[16] = {
		0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
		0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
	};
	unsigned char md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, dns_ns, sizeof(dns_ns)) != 1 ||
	    EVP_DigestUpdate(ctx, name, strlen(name)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		memset(md, 0, sizeof(md));	/* still a well-formed UUID */
	EVP_MD_CTX_free(ctx);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[md[i] >> 4];
		buf[o++] = hex[md[i] & 15];
	}
	buf[o] = '\0';
	return buf;
}

static void plist_string(FILE *out, const char *indent, const char *key,
			 const char *value)
{
	fprintf(out, "%s<key>%s</key>\n%s<string>", indent, key, indent);
	outfmt_html(out, value);
	fputs("</string>\n", out);
}

static void plist_int(FILE *out, const char *indent, const char *key, unsigned v)
{
	fprintf(out, "%s<key>%s</key>\n%s<integer>%u</integer>\n", indent, key,
		indent, v);
}

static void plist_true(FILE *out, const char *indent, const char *key)
{
	fprintf(out, "%s<key>%s</key>\n%s<true/>\n", indent, key, indent);
}

/* "com.example" for "example.com": profile identifiers are reverse DNS. */
static void reverse_domain(const char *domain, char *buf, size_t size)
{
	size_t len = strlen(domain), o = 0;
	buf[0] = '\0';
	while (len > 0) {
		size_t start = len;
		while (start > 0 && domain[start - 1] != '.')
			start--;
		size_t label = len - start;
		if (o + label + 2 > size)
			return;
		if (o > 0)
			buf[o++] = '.';
		memcpy(buf + o, domain + start, label);
		o += label;
		buf[o] = '\0';
		len = start > 0 ? start - 1 : 0;
	}
}

int ac_write_mobileconfig(FILE *out, const struct ac_settings *s)
{
	/* Apple Mail takes one incoming server: IMAP when there is one. */
	const struct tg_endpoint *in = s->imap->host != NULL ? s->imap : s->pop3;
	char rev[TG_DNS_NAME_MAX + 1], id[TG_DNS_NAME_MAX + 32];
	char seed[TG_DNS_NAME_MAX + 32], uuid[40];
	const char *in2 = "\t\t\t";

	reverse_domain(s->domain, rev, sizeof(rev));
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
	      "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	      "<plist version=\"1.0\">\n<dict>\n"
	      "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n", out);
	plist_string(out, in2, "EmailAccountDescription", s->name);
	plist_string(out, in2, "EmailAccountType",
		     in == s->imap ? "EmailTypeIMAP" : "EmailTypePOP");
	if (in->host != NULL) {
		plist_string(out, in2, "IncomingMailServerAuthentication", "EmailAuthPassword");
		plist_string(out, in2, "IncomingMailServerHostName", in->host);
		plist_int(out, in2, "IncomingMailServerPortNumber", in->port);
		plist_true(out, in2, "IncomingMailServerUseSSL");
	}
	if (s->submission->host != NULL) {
		/* UseSSL on port 587 is STARTTLS in Apple Mail. */
		plist_string(out, in2, "OutgoingMailServerAuthentication", "EmailAuthPassword");
		plist_string(out, in2, "OutgoingMailServerHostName", s->submission->host);
		plist_int(out, in2, "OutgoingMailServerPortNumber", s->submission->port);
		plist_true(out, in2, "OutgoingMailServerUseSSL");
		plist_true(out, in2, "OutgoingPasswordSameAsIncomingPassword");
	}
	snprintf(id, sizeof(id), "%s.mail.account", rev);
	snprintf(seed, sizeof(seed), "tlsgate-autoconfig-account.%s", s->domain);
	plist_string(out, in2, "PayloadDescription", "Mail account (TLS only)");
	plist_string(out, in2, "PayloadDisplayName", s->name);
	plist_string(out, in2, "PayloadIdentifier", id);
	plist_string(out, in2, "PayloadType", "com.apple.mail.managed");
	plist_string(out, in2, "PayloadUUID", ac_uuid(seed, uuid));
	plist_int(out, in2, "PayloadVersion", 1);
	fputs("\t\t</dict>\n\t</array>\n", out);

	snprintf(id, sizeof(id), "%s.mail", rev);
	snprintf(seed, sizeof(seed), "tlsgate-autoconfig-profile.%s", s->domain);
	plist_string(out, "\t", "PayloadDescription",
		     "Mail settings: IMAP, POP3 and SMTP over TLS only");
	plist_string(out, "\t", "PayloadDisplayName", s->name);
	plist_string(out, "\t", "PayloadIdentifier", id);
	plist_string(out, "\t", "PayloadType", "Configuration");
	plist_string(out, "\t", "PayloadUUID", ac_uuid(seed, uuid));
	plist_int(out, "\t", "PayloadVersion", 1);
	fputs("</dict>\n</plist>\n", out);
	return finish(out);
}

/* ---- DNS zone snippet ---- */

static void srv(FILE *out, const char *service, const char *domain,
		unsigned ttl, const struct tg_endpoint *ep)
{
	char owner[TG_DNS_NAME_MAX + 32];
	snprintf(owner, sizeof(owner), "_%s._tcp.%s.", service, domain);
	if (ep != NULL && ep->host != NULL)
		fprintf(out, "%-40s %u IN SRV 0 1 %u %s.\n", owner, ttl, ep->port, ep->host);
	else
		fprintf(out, "%-40s %u IN SRV 0 0 0 .\n", owner, ttl);
}

int ac_write_zone(FILE *out, const struct ac_settings *s)
{
	fprintf(out,
		"; tlsgate autoconfig: mail client SRV records for %s\n"
		"; (RFC 6186, RFC 8314). Target \".\": not offered. Absolute names:\n"
		"; add to the zone of %s as they are, or with $INCLUDE.\n",
		s->domain, s->domain);
	srv(out, "imaps", s->domain, s->ttl, s->imap);
	srv(out, "pop3s", s->domain, s->ttl, s->pop3);
	srv(out, "submissions", s->domain, s->ttl,
	    ac_submission_starttls(s) ? NULL : s->submission);
	srv(out, "submission", s->domain, s->ttl,
	    ac_submission_starttls(s) ? s->submission : NULL);
	srv(out, "imap", s->domain, s->ttl, NULL);
	srv(out, "pop3", s->domain, s->ttl, NULL);
	return finish(out);
}

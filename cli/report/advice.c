/*
 * advice - program name to the setting that moves it to TLS. See advice.h.
 */
#include "advice.h"

#include <stdbool.h>
#include <string.h>

#include "text.h"

#define MAX_TOKENS 6

struct entry {
	struct advice advice;
	const char *tokens[MAX_TOKENS];	/* lower case; NULL ends */
};

/* More specific names first: "neomutt" before "mutt". The settings of the
 * measured programs are the cells of docs/rollout.md's table. */
static const struct entry entries[] = {
	{ { "neomutt", "`set ssl_force_tls=yes` in muttrc",
	    "NeoMutt: add the line \"set ssl_force_tls=yes\" to your muttrc.",
	    "NeoMutt: f\xc3\xbcgen Sie die Zeile \"set ssl_force_tls=yes\" in Ihre muttrc ein." },
	  { "neomutt" } },
	{ { "mutt", "`set ssl_force_tls=yes` in muttrc",
	    "Mutt: add the line \"set ssl_force_tls=yes\" to your muttrc.",
	    "Mutt: f\xc3\xbcgen Sie die Zeile \"set ssl_force_tls=yes\" in Ihre muttrc ein." },
	  { "mutt" } },
	{ { "curl", "`--ssl-reqd` on the command line",
	    "curl: add --ssl-reqd to the command line (or use imaps://, pop3s://, smtps://).",
	    "curl: erg\xc3\xa4nzen Sie --ssl-reqd auf der Kommandozeile (oder verwenden Sie "
	    "imaps://, pop3s://, smtps://)." },
	  { "curl", "libcurl" } },
	{ { "fetchmail", "`sslproto TLS1.2+` in .fetchmailrc",
	    "fetchmail: add \"sslproto TLS1.2+\" to the poll entry in your .fetchmailrc.",
	    "fetchmail: erg\xc3\xa4nzen Sie \"sslproto TLS1.2+\" im poll-Eintrag Ihrer .fetchmailrc." },
	  { "fetchmail" } },
	{ { "getmail",
	    "`type = SimpleIMAPSSLRetriever` or `SimplePOP3SSLRetriever` (and port 993 or 995) in getmailrc",
	    "getmail: set \"type = SimpleIMAPSSLRetriever\" (or SimplePOP3SSLRetriever) and "
	    "port 993 (995) in your getmailrc.",
	    "getmail: setzen Sie \"type = SimpleIMAPSSLRetriever\" (oder SimplePOP3SSLRetriever) "
	    "und Port 993 (995) in Ihrer getmailrc." },
	  { "getmail" } },
	{ { "mbsync", "`SSLType STARTTLS` in .mbsyncrc (isync 1.5: `TLSType STARTTLS`)",
	    "mbsync: set \"SSLType STARTTLS\" (isync 1.5 and later: \"TLSType STARTTLS\") in "
	    "your .mbsyncrc.",
	    "mbsync: setzen Sie \"SSLType STARTTLS\" (ab isync 1.5: \"TLSType STARTTLS\") in "
	    "Ihrer .mbsyncrc." },
	  { "mbsync", "isync" } },
	{ { "msmtp", "`tls on` in .msmtprc",
	    "msmtp: set \"tls on\" in your .msmtprc.",
	    "msmtp: setzen Sie \"tls on\" in Ihrer .msmtprc." },
	  { "msmtp" } },
	{ { "s-nail", "`smtp-use-starttls` (SMTP); an `imaps://` or `pop3s://` URL (mailboxes)",
	    "s-nail: add \"set smtp-use-starttls\" to your .mailrc, and open mailboxes as "
	    "imaps:// or pop3s:// URLs.",
	    "s-nail: f\xc3\xbcgen Sie \"set smtp-use-starttls\" in Ihre .mailrc ein und "
	    "\xc3\xb6" "ffnen Sie Postf\xc3\xa4" "cher als imaps://- oder pop3s://-URL." },
	  { "s-nail", "mailx" } },
	{ { "python3", "`starttls()` before `login()`",
	    "Python: call starttls() on the IMAP4/SMTP/POP3 connection before login() "
	    "(or use IMAP4_SSL, SMTP_SSL, POP3_SSL).",
	    "Python: rufen Sie starttls() auf der IMAP4/SMTP/POP3-Verbindung vor login() auf "
	    "(oder verwenden Sie IMAP4_SSL, SMTP_SSL, POP3_SSL)." },
	  { "python3", "python", "imaplib", "smtplib", "poplib" } },
	{ { "swaks", "`--tls` on the command line",
	    "swaks: add --tls to the command line.",
	    "swaks: erg\xc3\xa4nzen Sie --tls auf der Kommandozeile." },
	  { "swaks" } },
	{ { "Thunderbird", "Connection security: SSL/TLS in the server settings",
	    "Thunderbird: Account Settings > Server Settings > Connection security: SSL/TLS "
	    "(port 993); the same for the outgoing server (SMTP, port 465).",
	    "Thunderbird: Konten-Einstellungen > Server-Einstellungen > Verbindungssicherheit: "
	    "SSL/TLS (Port 993); ebenso f\xc3\xbcr den Postausgang-Server (SMTP, Port 465)." },
	  { "thunderbird", "icedove", "betterbird" } },
	{ { "K-9 Mail", "Security: SSL/TLS in the server settings",
	    "K-9 Mail: Settings > Account > Fetching mail > Incoming server > Security: SSL/TLS; "
	    "the same for the outgoing server.",
	    "K-9 Mail: Einstellungen > Konto > Nachrichten abrufen > Posteingangsserver > "
	    "Sicherheit: SSL/TLS; ebenso f\xc3\xbcr den Postausgangsserver." },
	  { "k-9", "k9mail", "k9" } },
	{ { "Outlook", "Encrypted connection: SSL/TLS in the account settings",
	    "Outlook: Account settings > Server settings > encrypted connection SSL/TLS "
	    "(IMAP 993, SMTP 465).",
	    "Outlook: Kontoeinstellungen > Servereinstellungen > verschl\xc3\xbcsselte Verbindung "
	    "SSL/TLS (IMAP 993, SMTP 465)." },
	  { "outlook", "microsoft office", "microsoft windows mail" } },
	{ { "Apple Mail", "Use TLS/SSL in the account's server settings",
	    "Apple Mail: Settings > Accounts > Server Settings: turn on \"Use TLS/SSL\" for "
	    "incoming and outgoing mail.",
	    "Apple Mail: Einstellungen > Accounts > Servereinstellungen: \"TLS/SSL verwenden\" "
	    "f\xc3\xbcr eingehende und ausgehende E-Mails einschalten." },
	  { "apple mail", "mac os x mail", "macos mail", "iphone mail", "ipad mail" } },
	{ { "Evolution", "Encryption method: TLS on a dedicated port",
	    "Evolution: Edit > Accounts > Receiving and Sending Email > Encryption method: "
	    "TLS on a dedicated port.",
	    "Evolution: Bearbeiten > E-Mail-Konten > Empfangen und Versenden > "
	    "Verschl\xc3\xbcsselungsmethode: TLS auf einem dedizierten Port." },
	  { "evolution" } },
};

static const struct advice generic = {
	"", "SSL/TLS (IMAP 993, POP3 995, SMTP 465) or STARTTLS (143, 110, 587)",
	"In your mail program's account settings, set the connection security to SSL/TLS "
	"(IMAP port 993, POP3 port 995, SMTP port 465) or STARTTLS (ports 143, 110, 587).",
	"Stellen Sie in den Kontoeinstellungen Ihres E-Mail-Programms die Verbindungssicherheit "
	"auf SSL/TLS (IMAP Port 993, POP3 Port 995, SMTP Port 465) oder STARTTLS (Ports 143, "
	"110, 587).",
};

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Does the token stand as a word in the lower-cased text? */
static bool has_word(const char *text, size_t len, const char *token)
{
	size_t tlen = strlen(token);
	for (size_t i = 0; i + tlen <= len; i++) {
		if (memcmp(text + i, token, tlen) != 0)
			continue;
		bool starts = i == 0 || !is_word_char(text[i - 1]);
		bool ends = i + tlen == len || !is_word_char(text[i + tlen]);
		if (starts && ends)
			return true;
	}
	return false;
}

const struct advice *advice_for(const char *name, size_t len)
{
	char low[ADVICE_MAX_INPUT];

	if (name == NULL)
		return &generic;
	if (len > sizeof(low))
		len = sizeof(low);
	/* A bounded copy in ASCII lower case; every other byte (NUL,
	 * control, non-ASCII) becomes a blank, which no token contains. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		low[i] = c > 0x20 && c < 0x7f ? tg_ascii_lower((char)c) : ' ';
	}
	for (size_t e = 0; e < sizeof(entries) / sizeof(entries[0]); e++)
		for (size_t t = 0; t < MAX_TOKENS && entries[e].tokens[t] != NULL; t++)
			if (has_word(low, len, entries[e].tokens[t]))
				return &entries[e].advice;
	return &generic;
}

const char *advice_text(const struct advice *a, enum advice_lang lang)
{
	return lang == ADVICE_DE ? a->de : a->en;
}

const struct advice *advice_by_program(const char *program)
{
	for (size_t e = 0; e < sizeof(entries) / sizeof(entries[0]); e++) {
		const char *p = entries[e].advice.program;
		if (tg_ascii_caseeq(p, strlen(p), program, strlen(program)))
			return &entries[e].advice;
	}
	return NULL;
}

const struct advice *advice_generic(void)
{
	return &generic;
}

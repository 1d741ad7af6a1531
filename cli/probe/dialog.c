/*
 * probe/dialog - IMAP, POP3, SMTP and ManageSieve up to STARTTLS, as a
 * state machine over lines. See dialog.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dialog.h"
#include "text.h"

enum {
	S_GREETING,
	S_IMAP_CAPA,
	S_IMAP_STARTTLS,
	S_POP3_CAPA_STATUS,
	S_POP3_CAPA_LINES,
	S_POP3_STLS,
	S_SMTP_GREETING_MORE,
	S_SMTP_EHLO,
	S_SMTP_STARTTLS,
	S_SIEVE_STARTTLS,
	S_END,
};

#define IMAP_CAPA_TAG "P1"
#define IMAP_STARTTLS_TAG "P2"

static enum probe_step fail(struct probe_dialog *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum probe_step fail(struct probe_dialog *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
	d->state = S_END;
	return PD_FAIL;
}

/* The peer's line, cleaned and shortened for quoting in a reason. */
static const char *quote(const char *line, size_t len, char *buf, size_t size)
{
	return probe_clean_text(line, len, buf, size);
}

static enum probe_step send_command(struct probe_dialog *d, int next_state,
			    const char *command)
{
	snprintf(d->out, sizeof(d->out), "%s\r\n", command);
	d->state = next_state;
	d->lines = 0;
	return PD_SEND;
}

/* Does line start with word (any case), followed by a space or the end?
 * Returns the length consumed (word plus one space) or 0. */
static size_t starts_word(const char *line, size_t len, const char *word)
{
	size_t w = strlen(word);
	if (len < w || strncasecmp(line, word, w) != 0)
		return 0;
	if (len == w)
		return w;
	return line[w] == ' ' ? w + 1 : 0;
}

static bool token_is(const char *tok, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(tok, word, len) == 0;
}

static void add_mech(struct probe_dialog *d, const char *mech, size_t len)
{
	char name[64];

	if (len == 0)
		return;
	if (token_is(mech, len, "PLAIN"))
		d->caps.mech_plain = true;
	if (token_is(mech, len, "LOGIN"))
		d->caps.mech_login = true;
	probe_clean_text(mech, len, name, sizeof(name));
	if (!probe_words_contain(d->caps.mechs, name))
		probe_list_add(d->caps.mechs, sizeof(d->caps.mechs), " ", name);
}

/* Calls fn for each space-separated token of s[0..len). */
static void each_token(struct probe_dialog *d, const char *s, size_t len,
		       void (*fn)(struct probe_dialog *, const char *, size_t))
{
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		size_t start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (i > start)
			fn(d, s + start, i - start);
	}
}

static bool all_lines_used(struct probe_dialog *d)
{
	return ++d->lines > PROBE_DIALOG_MAX_LINES;
}

static void set_greeting(struct probe_dialog *d, const char *line, size_t len)
{
	probe_clean_text(line, len, d->greeting, sizeof(d->greeting));
}

/* ---- IMAP */

static void imap_capability(struct probe_dialog *d, const char *tok, size_t len)
{
	d->caps.known = true;
	if (token_is(tok, len, "STARTTLS"))
		d->caps.starttls = true;
	else if (token_is(tok, len, "LOGINDISABLED"))
		d->caps.login_disabled = true;
	else if (len > 5 && strncasecmp(tok, "AUTH=", 5) == 0)
		add_mech(d, tok + 5, len - 5);
}

static enum probe_step imap_after_caps(struct probe_dialog *d)
{
	if (!d->caps.starttls) {
		d->state = S_END;
		return PD_DONE;
	}
	return send_command(d, S_IMAP_STARTTLS, IMAP_STARTTLS_TAG " STARTTLS");
}

static enum probe_step imap_greeting(struct probe_dialog *d, const char *line,
				     size_t len)
{
	char q[120];
	size_t n;

	set_greeting(d, line, len);
	if ((n = starts_word(line, len, "* OK")) == 0) {
		if (starts_word(line, len, "* BYE") || starts_word(line, len, "* PREAUTH"))
			return fail(d, "the IMAP server refused the session: %s",
				    quote(line, len, q, sizeof(q)));
		return fail(d, "not an IMAP greeting: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	}
	const char *rest = line + n;
	size_t rlen = len - n;
	if (rlen > 12 && strncasecmp(rest, "[CAPABILITY ", 12) == 0) {
		const char *close = memchr(rest, ']', rlen);
		if (close == NULL)
			return fail(d, "IMAP greeting has an unterminated "
				    "[CAPABILITY ...]: \"%s\"",
				    quote(line, len, q, sizeof(q)));
		each_token(d, rest + 12, (size_t)(close - rest - 12), imap_capability);
	}
	if (d->implicit_tls) {
		d->state = S_END;
		return PD_DONE;
	}
	if (d->caps.known)
		return imap_after_caps(d);
	return send_command(d, S_IMAP_CAPA, IMAP_CAPA_TAG " CAPABILITY");
}

/* A tagged status line "TAG OK|NO|BAD ..."; 1 OK, 0 NO/BAD, -1 not tagged. */
static int imap_tagged(const char *line, size_t len, const char *tag)
{
	size_t t = strlen(tag);
	if (len <= t || strncasecmp(line, tag, t) != 0 || line[t] != ' ')
		return -1;
	if (starts_word(line + t + 1, len - t - 1, "OK"))
		return 1;
	if (starts_word(line + t + 1, len - t - 1, "NO") ||
	    starts_word(line + t + 1, len - t - 1, "BAD"))
		return 0;
	return -1;
}

static enum probe_step imap_capa(struct probe_dialog *d, const char *line,
				 size_t len)
{
	char q[120];
	size_t n;

	if (all_lines_used(d))
		return fail(d, "IMAP CAPABILITY reply longer than %d lines",
			    PROBE_DIALOG_MAX_LINES);
	if ((n = starts_word(line, len, "* CAPABILITY")) > 0) {
		d->caps.known = true;
		each_token(d, line + n, len - n, imap_capability);
		return PD_READ;
	}
	if (len >= 2 && line[0] == '*' && line[1] == ' ')
		return PD_READ;		/* other untagged data: allowed */
	switch (imap_tagged(line, len, IMAP_CAPA_TAG)) {
	case 1:
		if (!d->caps.known)
			return fail(d, "IMAP CAPABILITY returned no capability list");
		return imap_after_caps(d);
	case 0:
		return fail(d, "IMAP CAPABILITY failed: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	default:
		return fail(d, "unexpected IMAP reply: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	}
}

static enum probe_step imap_starttls(struct probe_dialog *d, const char *line,
				     size_t len)
{
	char q[120];

	if (all_lines_used(d))
		return fail(d, "IMAP STARTTLS reply longer than %d lines",
			    PROBE_DIALOG_MAX_LINES);
	if (len >= 2 && line[0] == '*' && line[1] == ' ')
		return PD_READ;
	switch (imap_tagged(line, len, IMAP_STARTTLS_TAG)) {
	case 1:
		d->state = S_END;
		return PD_TLS;
	case 0:
		return fail(d, "STARTTLS refused: \"%s\"", quote(line, len, q, sizeof(q)));
	default:
		return fail(d, "unexpected IMAP reply to STARTTLS: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	}
}

/* ---- POP3 */

static enum probe_step pop3_greeting(struct probe_dialog *d, const char *line,
				     size_t len)
{
	char q[120];

	set_greeting(d, line, len);
	if (!starts_word(line, len, "+OK")) {
		if (starts_word(line, len, "-ERR"))
			return fail(d, "the POP3 server refused the session: %s",
				    quote(line, len, q, sizeof(q)));
		return fail(d, "not a POP3 greeting: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	}
	if (d->implicit_tls) {
		d->state = S_END;
		return PD_DONE;
	}
	return send_command(d, S_POP3_CAPA_STATUS, "CAPA");
}

static enum probe_step pop3_capa_status(struct probe_dialog *d, const char *line,
					size_t len)
{
	char q[120];

	if (starts_word(line, len, "+OK")) {
		d->state = S_POP3_CAPA_LINES;
		return PD_READ;
	}
	if (starts_word(line, len, "-ERR"))	/* no CAPA: ask for STLS blindly */
		return send_command(d, S_POP3_STLS, "STLS");
	return fail(d, "unexpected POP3 reply to CAPA: \"%s\"",
		    quote(line, len, q, sizeof(q)));
}

static enum probe_step pop3_capa_line(struct probe_dialog *d, const char *line,
				      size_t len)
{
	size_t n;

	if (all_lines_used(d))
		return fail(d, "POP3 CAPA list longer than %d lines",
			    PROBE_DIALOG_MAX_LINES);
	if (len == 1 && line[0] == '.') {
		d->caps.known = true;
		if (!d->caps.starttls) {
			d->state = S_END;
			return PD_DONE;
		}
		return send_command(d, S_POP3_STLS, "STLS");
	}
	if (len > 0 && line[0] == '.') {	/* dot-stuffed */
		line++;
		len--;
	}
	if (starts_word(line, len, "STLS"))
		d->caps.starttls = true;
	else if (starts_word(line, len, "USER"))
		d->caps.user_command = true;
	else if ((n = starts_word(line, len, "SASL")) > 0)
		each_token(d, line + n, len - n, add_mech);
	return PD_READ;
}

static enum probe_step pop3_stls(struct probe_dialog *d, const char *line,
				 size_t len)
{
	char q[120];

	if (starts_word(line, len, "+OK")) {
		d->caps.starttls = true;
		d->state = S_END;
		return PD_TLS;
	}
	if (starts_word(line, len, "-ERR")) {
		if (!d->caps.known) {	/* asked blindly: simply not offered */
			d->state = S_END;
			return PD_DONE;
		}
		return fail(d, "STLS refused: \"%s\"", quote(line, len, q, sizeof(q)));
	}
	return fail(d, "unexpected POP3 reply to STLS: \"%s\"",
		    quote(line, len, q, sizeof(q)));
}

/* ---- SMTP */

/* Splits an SMTP reply line: 0 and *more set, or -1 when not one. */
static int smtp_line(const char *line, size_t len, int *code, bool *more)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more = len > 3 && line[3] == '-';
	return 0;
}

static void smtp_keyword_line(struct probe_dialog *d, const char *kw, size_t len)
{
	size_t n;

	if (starts_word(kw, len, "STARTTLS"))
		d->caps.starttls = true;
	else if ((n = starts_word(kw, len, "AUTH")) > 0) {
		d->caps.auth_advertised = true;
		each_token(d, kw + n, len - n, add_mech);
	} else if (len > 5 && strncasecmp(kw, "AUTH=", 5) == 0) {
		d->caps.auth_advertised = true;	/* old form "AUTH=LOGIN PLAIN" */
		each_token(d, kw + 5, len - 5, add_mech);
	}
}

/* Common checks of one line of a multi-line reply: -1 failed (d->why set),
 * 0 ok with code and more set. */
static int smtp_reply_line(struct probe_dialog *d, const char *line, size_t len,
			   const char *what, int *code, bool *more)
{
	char q[120];

	if (smtp_line(line, len, code, more) < 0) {
		fail(d, d->state == S_GREETING && d->lines == 0 ?
		     "not an SMTP greeting: \"%s\"" : "not an SMTP reply: \"%s\"",
		     quote(line, len, q, sizeof(q)));
		return -1;
	}
	if (d->lines > 0 && *code != d->smtp_code) {
		fail(d, "SMTP %s reply changes its code mid-reply: \"%s\"", what,
		     quote(line, len, q, sizeof(q)));
		return -1;
	}
	if (all_lines_used(d)) {
		fail(d, "SMTP %s reply longer than %d lines", what,
		     PROBE_DIALOG_MAX_LINES);
		return -1;
	}
	d->smtp_code = *code;
	return 0;
}

static enum probe_step smtp_greeting(struct probe_dialog *d, const char *line,
				     size_t len)
{
	char q[120];
	int code;
	bool more;

	if (d->lines == 0)
		set_greeting(d, line, len);
	if (smtp_reply_line(d, line, len, "greeting", &code, &more) < 0)
		return PD_FAIL;
	if (more)
		return PD_READ;
	if (code != 220)
		return fail(d, "the SMTP server refused the session: %s",
			    quote(line, len, q, sizeof(q)));
	if (d->implicit_tls) {
		d->state = S_END;
		return PD_DONE;
	}
	char cmd[sizeof(d->helo_name) + 8];
	snprintf(cmd, sizeof(cmd), "EHLO %s", d->helo_name);
	return send_command(d, S_SMTP_EHLO, cmd);
}

static enum probe_step smtp_ehlo(struct probe_dialog *d, const char *line,
				 size_t len)
{
	char q[120];
	int code;
	bool more;
	bool first = d->lines == 0;

	if (smtp_reply_line(d, line, len, "EHLO", &code, &more) < 0)
		return PD_FAIL;
	if (!first && code == 250 && len > 4)	/* line 1 names the server */
		smtp_keyword_line(d, line + 4, len - 4);
	if (more)
		return PD_READ;
	if (code != 250)
		return fail(d, "EHLO refused: \"%s\"", quote(line, len, q, sizeof(q)));
	d->caps.known = true;
	if (!d->caps.starttls) {
		d->state = S_END;
		return PD_DONE;
	}
	return send_command(d, S_SMTP_STARTTLS, "STARTTLS");
}

static enum probe_step smtp_starttls(struct probe_dialog *d, const char *line,
				     size_t len)
{
	char q[120];
	int code;
	bool more;

	if (smtp_reply_line(d, line, len, "STARTTLS", &code, &more) < 0)
		return PD_FAIL;
	if (more)
		return PD_READ;
	if (code != 220)
		return fail(d, "STARTTLS refused: \"%s\"", quote(line, len, q, sizeof(q)));
	d->state = S_END;
	return PD_TLS;
}

/* ---- ManageSieve */

/* Reads a quoted string at s[*i]; sets its raw (still escaped) bytes. */
static int sieve_quoted(const char *s, size_t len, size_t *i,
			const char **start, size_t *slen)
{
	if (*i >= len || s[*i] != '"')
		return -1;
	size_t j = *i + 1;
	while (j < len && s[j] != '"') {
		if (s[j] == '\\')
			j++;
		j++;
	}
	if (j >= len)
		return -1;
	*start = s + *i + 1;
	*slen = j - *i - 1;
	*i = j + 1;
	return 0;
}

static enum probe_step sieve_capability(struct probe_dialog *d, const char *line,
					size_t len)
{
	char q[120];
	const char *name, *value = NULL;
	size_t nlen, vlen = 0, i = 0;

	if (memchr(line, '{', len) != NULL)
		return fail(d, "ManageSieve literal strings in the capability list "
			    "are not supported: \"%s\"", quote(line, len, q, sizeof(q)));
	if (sieve_quoted(line, len, &i, &name, &nlen) < 0)
		return fail(d, "bad ManageSieve capability line: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	if (i < len && line[i] == ' ') {
		i++;
		if (sieve_quoted(line, len, &i, &value, &vlen) < 0)
			return fail(d, "bad ManageSieve capability line: \"%s\"",
				    quote(line, len, q, sizeof(q)));
	}
	if (i != len)
		return fail(d, "bad ManageSieve capability line: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	if (token_is(name, nlen, "STARTTLS"))
		d->caps.starttls = true;
	else if (token_is(name, nlen, "SASL") && value != NULL)
		each_token(d, value, vlen, add_mech);
	return PD_READ;
}

static enum probe_step sieve_greeting(struct probe_dialog *d, const char *line,
				      size_t len)
{
	char q[120];

	if (d->lines == 0)
		set_greeting(d, line, len);
	if (all_lines_used(d))
		return fail(d, "ManageSieve greeting longer than %d lines",
			    PROBE_DIALOG_MAX_LINES);
	if (len > 0 && line[0] == '"')
		return sieve_capability(d, line, len);
	if (starts_word(line, len, "OK")) {
		if (d->lines == 1)
			return fail(d, "ManageSieve greeting without capabilities");
		d->caps.known = true;
		if (d->implicit_tls || !d->caps.starttls) {
			d->state = S_END;
			return PD_DONE;
		}
		return send_command(d, S_SIEVE_STARTTLS, "STARTTLS");
	}
	if (starts_word(line, len, "NO") || starts_word(line, len, "BYE"))
		return fail(d, "the ManageSieve server refused the session: %s",
			    quote(line, len, q, sizeof(q)));
	return fail(d, d->lines == 1 ? "not a ManageSieve greeting: \"%s\"" :
		    "bad ManageSieve capability line: \"%s\"",
		    quote(line, len, q, sizeof(q)));
}

static enum probe_step sieve_starttls(struct probe_dialog *d, const char *line,
				      size_t len)
{
	char q[120];

	if (starts_word(line, len, "OK")) {
		d->state = S_END;
		return PD_TLS;
	}
	if (starts_word(line, len, "NO") || starts_word(line, len, "BYE"))
		return fail(d, "STARTTLS refused: \"%s\"", quote(line, len, q, sizeof(q)));
	return fail(d, "unexpected ManageSieve reply to STARTTLS: \"%s\"",
		    quote(line, len, q, sizeof(q)));
}

/* ---- driver */

void probe_dialog_init(struct probe_dialog *d, enum probe_proto proto,
		       bool implicit_tls, const char *helo_name)
{
	memset(d, 0, sizeof(*d));
	d->proto = proto;
	d->implicit_tls = implicit_tls;
	d->state = S_GREETING;
	snprintf(d->helo_name, sizeof(d->helo_name), "%s",
		 helo_name != NULL ? helo_name : "localhost");
}

enum probe_step probe_dialog_feed(struct probe_dialog *d, const char *line,
				  size_t len)
{
	if (memchr(line, '\0', len) != NULL) {
		char q[120];
		return fail(d, "NUL byte in a server reply: \"%s\"",
			    quote(line, len, q, sizeof(q)));
	}
	switch (d->state) {
	case S_GREETING:
		switch (d->proto) {
		case PROBE_IMAP: return imap_greeting(d, line, len);
		case PROBE_POP3: return pop3_greeting(d, line, len);
		case PROBE_SMTP: return smtp_greeting(d, line, len);
		case PROBE_SIEVE: return sieve_greeting(d, line, len);
		}
		break;
	case S_IMAP_CAPA: return imap_capa(d, line, len);
	case S_IMAP_STARTTLS: return imap_starttls(d, line, len);
	case S_POP3_CAPA_STATUS: return pop3_capa_status(d, line, len);
	case S_POP3_CAPA_LINES: return pop3_capa_line(d, line, len);
	case S_POP3_STLS: return pop3_stls(d, line, len);
	case S_SMTP_EHLO: return smtp_ehlo(d, line, len);
	case S_SMTP_STARTTLS: return smtp_starttls(d, line, len);
	case S_SIEVE_STARTTLS: return sieve_starttls(d, line, len);
	default:
		break;
	}
	return fail(d, "server sent more than expected");
}

int probe_caps_plaintext_auth(const struct probe_dialog *d)
{
	const struct probe_caps *c = &d->caps;

	if (!c->known)
		return -1;
	switch (d->proto) {
	case PROBE_IMAP:
		return !c->login_disabled || c->mech_plain || c->mech_login;
	case PROBE_POP3:
		return c->user_command || c->mech_plain || c->mech_login;
	case PROBE_SMTP:	/* a bare "AUTH" (no mechanism) offers nothing */
		return c->auth_advertised && c->mechs[0] != '\0';
	case PROBE_SIEVE:
		return c->mech_plain || c->mech_login;
	}
	return -1;
}

/*
 * probe/dialog - the plaintext part of each mail protocol as the probe
 * speaks it: read the greeting, learn the capabilities (IMAP CAPABILITY,
 * POP3 CAPA, SMTP EHLO, ManageSieve greeting), then ask for STARTTLS
 * (STLS for POP3) when it is offered. On implicit-TLS ports it only reads
 * the greeting (the caller has done the handshake).
 *
 * It is a pure state machine: the caller reads lines and feeds them in;
 * each feed says what to do next (read another line, send d->out and read
 * the reply, start the TLS handshake now, stop, or fail with d->why).
 * Peer input never makes it crash: every reply is length-bounded by the
 * reader and line-count-bounded here (PROBE_DIALOG_MAX_LINES per reply);
 * anything unexpected is PD_FAIL with a readable reason.
 */
#ifndef TLSGATE_PROBE_DIALOG_H
#define TLSGATE_PROBE_DIALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "target.h"

#define PROBE_DIALOG_MAX_LINES 100	/* lines in one multi-line reply */

enum probe_step {
	PD_READ,	/* read the next line and feed it */
	PD_SEND,	/* send d->out, then read and feed the reply */
	PD_TLS,		/* STARTTLS accepted: start the handshake now */
	PD_DONE,	/* finished; STARTTLS not offered if caps.starttls false */
	PD_FAIL,	/* d->why says what went wrong */
};

struct probe_caps {
	bool known;		/* the server listed its capabilities */
	bool starttls;		/* STARTTLS / STLS offered */
	bool login_disabled;	/* IMAP LOGINDISABLED */
	bool user_command;	/* POP3 USER */
	bool auth_advertised;	/* SMTP AUTH keyword present */
	bool mech_plain;	/* a cleartext-password SASL mechanism ... */
	bool mech_login;	/* ... PLAIN or LOGIN is offered */
	char mechs[128];	/* SASL mechanisms as listed ("..." if cut) */
};

struct probe_dialog {
	enum probe_proto proto;
	bool implicit_tls;
	int state;
	unsigned lines;		/* lines of the current reply so far */
	int smtp_code;		/* code of the multi-line SMTP reply */
	struct probe_caps caps;
	char greeting[160];	/* first greeting line, cleaned */
	char helo_name[80];
	char out[128];		/* the command to send at PD_SEND */
	char why[256];
};

/* Prepares d; the first step is always PD_READ (the greeting). helo_name:
 * the EHLO argument for SMTP (e.g. "[192.0.2.1]"). */
void probe_dialog_init(struct probe_dialog *d, enum probe_proto proto,
		       bool implicit_tls, const char *helo_name);
enum probe_step probe_dialog_feed(struct probe_dialog *d, const char *line,
				  size_t len);
/* 1: the server offers a cleartext password login before TLS (IMAP: no
 * LOGINDISABLED or AUTH=PLAIN/LOGIN; POP3: USER or SASL PLAIN/LOGIN;
 * SMTP: AUTH with a mechanism; ManageSieve: SASL PLAIN/LOGIN); 0: it does not;
 * -1: unknown (no capability list). */
int probe_caps_plaintext_auth(const struct probe_dialog *d);

#endif

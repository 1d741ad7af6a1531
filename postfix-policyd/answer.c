/*
 * answer - request to decision to reply. See answer.h.
 */
#include "answer.h"

#include <stdio.h>
#include <string.h>

#include "decide.h"
#include "errors.h"
#include "netaddr.h"

#define REQUEST_KIND "smtpd_access_policy"

enum tg_tls pd_tls_of(const char *protocol, size_t len)
{
	if (len == 0)
		return TG_TLS_NONE;
	int v = tg_tls_version_parse(protocol, len);
	if (v >= 0)
		return (enum tg_tls)v;
	/* SSL is older than any TLS: never let it pass a min_tls. */
	if (len >= 4 && memcmp(protocol, "SSLv", 4) == 0)
		return TG_TLS_V1_0;
	return TG_TLS_UNKNOWN;
}

/* "action=ACTION[ TEXT]\n\n"; both are bounded (answer.h), so it fits. */
static void set_reply(struct pd_answer *out, const char *action, const char *text)
{
	size_t alen = strlen(action), tlen = strlen(text), n = 0;
	if (7 + alen + 1 + tlen + 2 > sizeof(out->reply)) {
		out->reply_len = 0;
		return;
	}
	memcpy(out->reply, "action=", 7);
	n = 7;
	memcpy(out->reply + n, action, alen);
	n += alen;
	if (tlen > 0) {
		out->reply[n++] = ' ';
		memcpy(out->reply + n, text, tlen);
		n += tlen;
	}
	out->reply[n++] = '\n';
	out->reply[n++] = '\n';
	out->reply_len = n;
}

const char *pd_reject_code(const struct tg_decision *d, const char *smtp_reply)
{
	const char *code = smtp_reply != NULL ? smtp_reply : PD_DEFAULT_SMTP_REPLY;
	/* The client did STARTTLS: 530 ("issue STARTTLS first") would send
	 * it round in circles. A brownout keeps the code it always had. */
	if (d->tls_below_min && !d->brownout)
		return code[0] == '4' ? PD_MIN_TLS_TEMP_REPLY : PD_MIN_TLS_REPLY;
	return code;
}

int pd_answer(const struct pd_request *req, const struct tg_policy *policy,
	      const struct pd_answer_config *cfg, int32_t today, int64_t now,
	      struct pd_answer *out, char *why, size_t whylen)
{
	return pd_answer_mode(req, policy, cfg, today, now, -1, out, why, whylen);
}

const char *pd_answer_subject(const struct pd_request *req,
			      const struct pd_answer_config *cfg)
{
	if (!req->present[PD_ATTR_REQUEST] ||
	    strcmp(req->value[PD_ATTR_REQUEST], REQUEST_KIND) != 0)
		return NULL;
	if (req->len[PD_ATTR_SASL_USERNAME] > 0)
		return req->value[PD_ATTR_SASL_USERNAME];
	if (cfg->check_unauthenticated && req->len[PD_ATTR_SENDER] > 0)
		return req->value[PD_ATTR_SENDER];
	return NULL;
}

void pd_answer_userdb_failure(enum tg_failure failure, struct pd_answer *out)
{
	out->decided = false;
	out->has_event = false;
	out->user = NULL;
	if (failure == TG_FAILURE_ALLOW)
		set_reply(out, "DUNNO", "");
	else
		set_reply(out, "451 4.7.0", "account database not available, try again later");
}

/* A port attribute's number, 0 when absent or not a port. */
static unsigned port_of(const struct pd_request *req, enum pd_attr attr)
{
	unsigned port = 0;
	if (req->len[attr] == 0 || req->len[attr] > 5)
		return 0;
	for (size_t i = 0; i < req->len[attr]; i++) {
		char c = req->value[attr][i];
		if (c < '0' || c > '9')
			return 0;
		port = port * 10 + (unsigned)(c - '0');
	}
	return port <= 65535 ? port : 0;
}

/* A name attribute for the event: absent, empty and Postfix's "unknown"
 * are no name. */
static const char *name_of(const struct pd_request *req, enum pd_attr attr)
{
	if (req->len[attr] == 0 || strcmp(req->value[attr], "unknown") == 0)
		return NULL;
	return req->value[attr];
}

/* What the client and its DNS say it is (never decided on). */
static void add_device(struct tg_event *ev, struct tg_event_texts *texts,
		       const struct pd_request *req)
{
	ev->value[TG_EV_HELO] = name_of(req, PD_ATTR_HELO_NAME);
	ev->value[TG_EV_CLIENT_NAME] = name_of(req, PD_ATTR_CLIENT_NAME);
	ev->value[TG_EV_REVERSE_CLIENT_NAME] = name_of(req, PD_ATTR_REVERSE_CLIENT_NAME);
	tg_event_set_ports(ev, texts, port_of(req, PD_ATTR_CLIENT_PORT),
			   port_of(req, PD_ATTR_SERVER_PORT));
}

int pd_answer_mode(const struct pd_request *req, const struct tg_policy *policy,
		   const struct pd_answer_config *cfg, int32_t today, int64_t now,
		   int mode_override, struct pd_answer *out, char *why, size_t whylen)
{
	char shown[80];

	out->decided = false;
	out->has_event = false;
	out->user = NULL;
	out->reply_len = 0;
	if (!req->present[PD_ATTR_REQUEST]) {
		snprintf(why, whylen, "request without request=" REQUEST_KIND);
		return -1;
	}
	if (strcmp(req->value[PD_ATTR_REQUEST], REQUEST_KIND) != 0) {
		snprintf(why, whylen, "unsupported request=\"%s\"",
			 tg_sanitize(req->value[PD_ATTR_REQUEST],
				     req->len[PD_ATTR_REQUEST], 40, shown, sizeof(shown)));
		return -1;
	}

	const char *user = req->value[PD_ATTR_SASL_USERNAME];
	const char *mech = NULL;
	if (req->len[PD_ATTR_SASL_USERNAME] > 0) {
		if (req->len[PD_ATTR_SASL_METHOD] > 0)
			mech = req->value[PD_ATTR_SASL_METHOD];
	} else if (cfg->check_unauthenticated && req->len[PD_ATTR_SENDER] > 0) {
		user = req->value[PD_ATTR_SENDER];
	} else {
		set_reply(out, "DUNNO", "");
		return 0;
	}

	struct tg_addr client;
	const struct tg_addr *clientp = NULL;
	if (tg_addr_parse(req->value[PD_ATTR_CLIENT_ADDRESS],
			  req->len[PD_ATTR_CLIENT_ADDRESS], &client) == 0)
		clientp = &client;	/* "unknown" and garbage: no address */

	struct tg_login login = {
		.user = user,
		.service = TG_SERVICE_SMTP,
		.client = clientp,
		.tls = pd_tls_of(req->value[PD_ATTR_ENCRYPTION_PROTOCOL],
				 req->len[PD_ATTR_ENCRYPTION_PROTOCOL]),
		.today = today,
		.now = now,
		.mode_override = mode_override,
	};
	struct tg_decision d;
	tg_decide(policy, &login, &d);
	out->decided = true;
	out->verdict = d.verdict;
	out->user = user;

	if (d.verdict == TG_VERDICT_REJECT) {
		char buf[TG_CONFIG_MAX_MESSAGE + 1];
		set_reply(out, pd_reject_code(&d, cfg->smtp_reply),
			  tg_refusal_text(&d, cfg->message, buf, sizeof(buf)));
	} else {
		set_reply(out, "DUNNO", "");
	}

	if (login.tls == TG_TLS_NONE || cfg->log_tls) {
		struct tg_event ev;
		struct tg_event_texts texts;
		const char *session = req->len[PD_ATTR_INSTANCE] > 0 ?
				      req->value[PD_ATTR_INSTANCE] : NULL;
		tg_event_from_decision(&ev, &texts, &d, user, TG_SERVICE_SMTP,
				       clientp, login.tls, mech, session);
		add_device(&ev, &texts, req);
		out->has_event = tg_event_format(&ev, out->event, sizeof(out->event)) >= 0;
	}
	return 0;
}

/*
 * fuzz-dovecot - libFuzzer target for what the Dovecot module reads from
 * a login (dovecot-plugin/tgdc.h): the account name, service, client
 * address, tlsgate_mode field, mechanism and session id, all of which a
 * client or the user database controls.
 *
 * The module is opened once on a small trusted policy; each input is split
 * at NUL bytes into the request's strings (a missing one is NULL), and the
 * first byte picks the "secured" state. Invariants checked (abort on
 * violation): the action is one of the three; a refusal has a reason, the
 * reason is printable ASCII; every line the module logs is printable
 * ASCII; TLS (secured=tls) is never refused by this policy (no min_tls).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tgdc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(void *ctx, enum tgdc_level level, const char *line)
{
	(void)ctx;
	if ((unsigned)level > TGDC_LOG_ERROR)
		abort();
	for (const char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			abort();
}

static char tmpdir[] = "/tmp/fuzz-dovecot-XXXXXX";
static char conf[128], policy[128];

static void remove_tmp(void)
{
	unlink(conf);
	unlink(policy);
	rmdir(tmpdir);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, 0644) < 0)
		abort();
}

static struct tgdc *open_module(void)
{
	char text[512];
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) < 0)
		abort();
	snprintf(conf, sizeof(conf), "%s/tlsgate.conf", tmpdir);
	snprintf(policy, sizeof(policy), "%s/policy.conf", tmpdir);
	write_file(policy,
		   "audit *\n"
		   "require @example.com message=\"TLS please\"\n"
		   "off bob@example.com\n"
		   "exempt @example.com 192.0.2.0/24,2001:db8::/32 protocols=imap,pop3\n");
	snprintf(text, sizeof(text), "policy = %s\n", policy);
	write_file(conf, text);
	atexit(remove_tmp);
	struct tgdc *tg = tgdc_open(conf, check_line, NULL);
	if (tg == NULL)
		abort();
	tgdc_finish_reload(tg);
	return tg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tgdc *tg;
	if (tg == NULL)
		tg = open_module();
	if (size == 0)
		return 0;

	/* NUL-separated fields, copied so that each ends where it ends */
	char *copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	const char *field[6] = { NULL };
	size_t n = 0;
	for (char *p = copy; n < 6 && p < copy + size; n++) {
		field[n] = p;
		p += strlen(p) + 1;
	}
	struct tgdc_request req = {
		.user = field[0] ? field[0] : "",
		.service = field[1] ? field[1] : "imap",
		.remote_ip = field[2],
		.secured = (enum tgdc_secured)(data[0] % 3),
		.mode_field = field[3],
		.mech = field[4],
		.session = field[5],
		.now = 1790000000,
	};
	struct tgdc_result res;
	memset(&res, 'x', sizeof(res));
	tgdc_decide(tg, &req, &res);
	if ((unsigned)res.action > TGDC_TEMPFAIL)
		abort();
	if (res.action == TGDC_REFUSE) {
		if (memchr(res.reason, '\0', sizeof(res.reason)) == NULL || res.reason[0] == '\0')
			abort();
		check_line(NULL, TGDC_LOG_INFO, res.reason);
		if (req.secured == TGDC_SECURED_TLS)
			abort();
	}
	free(copy);
	return 0;
}

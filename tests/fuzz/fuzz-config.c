/*
 * fuzz-config - libFuzzer target for the tlsgate.conf parser
 * (tg_config_parse).
 *
 * Invariants checked (abort on violation): success means no error and a
 * config with a policy path and a message; failure means at least one
 * error and the caller's config left untouched; error messages are one
 * printable line; every string kept is valid text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
	if (s != NULL && !tg_text_valid(s, strlen(s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_config cfg;
	struct tg_errors errs;

	tg_config_init(&cfg);
	tg_errors_init(&errs);
	int r = tg_config_parse(&cfg, "/etc/tlsgate/tlsgate.conf",
				(const char *)data, size, &errs);
	for (size_t i = 0; i < errs.count; i++)
		for (const char *p = errs.msgs[i]; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
	if (r == 0) {
		if (tg_errors_total(&errs) != 0 || cfg.policy == NULL ||
		    cfg.message == NULL || cfg.path == NULL)
			abort();
		if (cfg.listen_count > TG_CONFIG_MAX_LISTEN ||
		    cfg.idle_timeout < 1 || cfg.idle_timeout > 86400 ||
		    cfg.max_connections < 1 || cfg.socket_mode > 0777)
			abort();
		check_text(cfg.policy);
		check_text(cfg.message);
		check_text(cfg.user);
		check_text(cfg.smtp_reply);
		for (size_t i = 0; i < cfg.listen_count; i++)
			check_text(cfg.listen[i]);
	} else {
		struct tg_config fresh;
		tg_config_init(&fresh);
		if (r != -1 || tg_errors_total(&errs) == 0 ||
		    memcmp(&cfg, &fresh, sizeof(cfg)) != 0)
			abort();
	}
	tg_config_free(&cfg);
	tg_errors_clear(&errs);
	return 0;
}

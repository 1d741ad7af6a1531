/*
 * settings-tlsgate - the Dovecot 2.4 setting of the `tlsgate` passdb:
 * `tlsgate_config` (path of tlsgate.conf, default TGDC_DEFAULT_CONFIG),
 * valid inside `passdb NAME { driver = tlsgate }` blocks.
 *
 * The same definition is linked into the auth module (which reads it with
 * settings_get()) and into the settings module that 2.4's config process
 * loads from $moduledir/settings/ (libtlsgate_settings.so, which exports
 * tlsgate_settings_set_infos and tlsgate_settings_version); without the
 * latter, doveconf rejects the setting. Dovecot 2.3 passes `args` instead
 * and builds neither.
 */
#ifndef TLSGATE_SETTINGS_TLSGATE_H
#define TLSGATE_SETTINGS_TLSGATE_H

#include "settings-parser.h"

struct tlsgate_passdb_settings {
	pool_t pool;
	const char *tlsgate_config;
};

extern const struct setting_parser_info tlsgate_passdb_setting_parser_info;

#endif

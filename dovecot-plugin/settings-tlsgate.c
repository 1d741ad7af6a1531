/*
 * settings-tlsgate - see settings-tlsgate.h. Only built for Dovecot 2.4.
 */
#include "lib.h"
#include "settings-parser.h"
#include "tgdc.h"
#include "settings-tlsgate.h"

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct tlsgate_passdb_settings)

/* `passdb_tlsgate` is the filter Dovecot's auth process applies to a
 * passdb whose driver is tlsgate (auth_driver_filter()). */
static const struct setting_define tlsgate_passdb_setting_defines[] = {
	{ .type = SET_FILTER_NAME, .key = "passdb_tlsgate", },
	DEF(STR_NOVARS, tlsgate_config),
	SETTING_DEFINE_LIST_END
};

static const struct tlsgate_passdb_settings tlsgate_passdb_default_settings = {
	.tlsgate_config = TGDC_DEFAULT_CONFIG,
};

const struct setting_parser_info tlsgate_passdb_setting_parser_info = {
	.name = "passdb_tlsgate",
	.defines = tlsgate_passdb_setting_defines,
	.defaults = &tlsgate_passdb_default_settings,
	.struct_size = sizeof(struct tlsgate_passdb_settings),
	.pool_offset1 = 1 + offsetof(struct tlsgate_passdb_settings, pool),
};

/* What the config process looks up in settings/libtlsgate_settings.so
 * (module name "tlsgate_settings"). */
extern const struct setting_parser_info *tlsgate_settings_set_infos[];
const struct setting_parser_info *tlsgate_settings_set_infos[] = {
	&tlsgate_passdb_setting_parser_info,
	NULL
};

extern const char *tlsgate_settings_version;
const char *tlsgate_settings_version = DOVECOT_ABI_VERSION;

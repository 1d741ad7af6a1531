# dovecot-plugin/ - the Dovecot auth passdb module `tlsgate`, for the
# Dovecot that DOVECOT_CONFIG describes (its dovecot-config: compiler
# flags, headers, moduledir), with the lib/ objects linked in. tgdc.c holds
# everything that needs no Dovecot; it is also archived for the unit tests
# (tests/unit/test-dovecot-*.c). Version differences live in dcompat.h.
#
#   make                                    Debian's Dovecot (dovecot-dev):
#                                           build/dovecot-plugin/
#   make DOVECOT_CONFIG=P/lib/dovecot/dovecot-config
#                                           another one: build/dovecot-VERSION/
#                                           (e.g. build/dovecot-2.4.4/)
#   make install [DOVECOT_CONFIG=...]       into that Dovecot's moduledir:
#                                           auth/libauthdb_tlsgate.so and, for
#                                           2.4, settings/libtlsgate_settings.so
#
# A module loads only into the exact Dovecot it was built for (Dovecot
# checks DOVECOT_ABI_VERSION): rebuild after every Dovecot upgrade.
DOVECOT_DEFAULT_CONFIG := /usr/lib/dovecot/dovecot-config
DOVECOT_CONFIG ?= $(DOVECOT_DEFAULT_CONFIG)
DOVECOT_PLUGIN_ARCHIVE := $(BUILD)/dovecot-plugin.a
DOVECOT_TGDC_OBJS := $(BUILD)/dovecot-plugin/tgdc.o

$(BUILD)/tests/unit/test-dovecot-%.o: CPPFLAGS += -Idovecot-plugin

$(DOVECOT_PLUGIN_ARCHIVE): $(DOVECOT_TGDC_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

TEST_ARCHIVES += $(DOVECOT_PLUGIN_ARCHIVE)
ALL_TARGETS += $(DOVECOT_PLUGIN_ARCHIVE)

ifneq ($(wildcard $(DOVECOT_CONFIG)),)
dovecot_config_var = $(shell . $(abspath $(DOVECOT_CONFIG)) && printf '%s' "$$$(1)")
# (without 2.4's -DTEST_DIR="$(abs_top_builddir)/.test", meant for its own
# test programs, which the shell would try to run as a command)
DOVECOT_CFLAGS := $(filter-out -DTEST_DIR=%,$(call dovecot_config_var,DOVECOT_CFLAGS))
DOVECOT_INCLUDE := $(call dovecot_config_var,LIBDOVECOT_INCLUDE)
DOVECOT_INCLUDEDIR := $(call dovecot_config_var,dovecot_pkgincludedir)
DOVECOT_MODULEDIR := $(call dovecot_config_var,dovecot_moduledir)
DOVECOT_VERSION := $(shell sed -n 's/^\#define DOVECOT_VERSION "\(.*\)"/\1/p' \
	$(DOVECOT_INCLUDEDIR)/config.h 2>/dev/null)
# 2.4 and later take settings instead of `args` (dcompat.h decides the same
# from config.h's DOVECOT_VERSION_MAJOR/MINOR).
DOVECOT_IS_24 := $(shell echo '$(DOVECOT_VERSION)' | \
	awk -F. '$$1 > 2 || ($$1 == 2 && $$2 >= 4) { print "yes" }')

# The default Dovecot builds where it always did; any other in a folder
# named after its version, so that modules for several can coexist.
ifeq ($(abspath $(DOVECOT_CONFIG)),$(DOVECOT_DEFAULT_CONFIG))
DOVECOT_PLUGIN_DIR := $(BUILD)/dovecot-plugin
else
DOVECOT_PLUGIN_DIR := $(BUILD)/dovecot-$(or $(DOVECOT_VERSION),unknown)
endif
DOVECOT_PLUGIN := $(DOVECOT_PLUGIN_DIR)/libauthdb_tlsgate.so
# For the tools that start a throwaway Dovecot (make demo, bench-dovecot):
# the harness runs the Dovecot installed at this prefix (tests/e2e/dovecot24.py).
DOVECOT_HARNESS_ENV := $(if $(filter $(BUILD)/dovecot-plugin,$(DOVECOT_PLUGIN_DIR)),,\
	TLSGATE_DOVECOT=$(abspath $(dir $(abspath $(DOVECOT_CONFIG)))../..))
DOVECOT_SETTINGS_PLUGIN :=

DOVECOT_GLUE_CFLAGS := $(DOVECOT_CFLAGS) $(DOVECOT_INCLUDE) -Idovecot-plugin \
	-DHAVE_CONFIG_H -fPIC $(SANFLAGS)
ifeq ($(WERROR),1)
DOVECOT_GLUE_CFLAGS += -Werror
endif

# Dovecot 2.4.2 to 2.4.4 install login-common's sasl-server.h over
# lib-sasl's (same name, same include guard), and auth-request.h then
# fails with "field 'req' has incomplete type". When the installed one is
# not lib-sasl's, dcompat.h includes lib-sasl's first, from
# DOVECOT_LIB_SASL_DIR (default: DOVECOT_INCLUDEDIR/lib-sasl, where
# tests/dovecot24-setup puts it; for another install, point it at
# src/lib-sasl of the same Dovecot's source).
DOVECOT_LIB_SASL_DIR ?= $(DOVECOT_INCLUDEDIR)/lib-sasl
DOVECOT_SASL_TRAP := $(shell grep -qs 'struct sasl_server_req_ctx req;' \
	$(DOVECOT_INCLUDEDIR)/auth-request.h && \
	! grep -qs 'struct sasl_server_req_ctx {' $(DOVECOT_INCLUDEDIR)/sasl-server.h && echo yes)
ifeq ($(DOVECOT_SASL_TRAP),yes)
ifeq ($(wildcard $(DOVECOT_LIB_SASL_DIR)/sasl-server.h),)
$(error dovecot-plugin: $(DOVECOT_INCLUDEDIR)/sasl-server.h is login-common's, not lib-sasl's (Dovecot 2.4.2-2.4.4 install both under one name); copy src/lib-sasl/sasl-server.h of the same Dovecot source to $(DOVECOT_LIB_SASL_DIR)/ or set DOVECOT_LIB_SASL_DIR=SRC/src/lib-sasl)
endif
DOVECOT_GLUE_CFLAGS += '-DDCOMPAT_LIB_SASL_SERVER_H="$(abspath $(DOVECOT_LIB_SASL_DIR))/sasl-server.h"'
endif

DOVECOT_GLUE_OBJS := $(DOVECOT_PLUGIN_DIR)/passdb-tlsgate.o
DOVECOT_GLUE_HEADERS := dovecot-plugin/dcompat.h dovecot-plugin/tgdc.h \
	dovecot-plugin/settings-tlsgate.h

ifeq ($(DOVECOT_IS_24),yes)
# 2.4: the setting `tlsgate_config` is defined in settings-tlsgate.c, both
# in the auth module and in the settings module the config process loads.
DOVECOT_GLUE_OBJS += $(DOVECOT_PLUGIN_DIR)/settings-tlsgate.o
DOVECOT_SETTINGS_PLUGIN := $(DOVECOT_PLUGIN_DIR)/libtlsgate_settings.so

$(DOVECOT_SETTINGS_PLUGIN): $(DOVECOT_PLUGIN_DIR)/settings-tlsgate.o dovecot-plugin/settings-exports.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=dovecot-plugin/settings-exports.map \
		-Wl,-z,relro -Wl,-z,now -o $@ $(DOVECOT_PLUGIN_DIR)/settings-tlsgate.o
endif

# The Dovecot glue: Dovecot's flags and headers, not the project's (its
# headers are gnu99 and have their own config.h).
$(DOVECOT_GLUE_OBJS): $(DOVECOT_PLUGIN_DIR)/%.o: dovecot-plugin/%.c $(DOVECOT_GLUE_HEADERS) $(DOVECOT_CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(DOVECOT_GLUE_CFLAGS) -c -o $@ $<

# Only the three symbols Dovecot looks up are exported (exports.map); the
# lib/ objects are linked in, so the module needs nothing but Dovecot.
$(DOVECOT_PLUGIN): $(DOVECOT_GLUE_OBJS) $(DOVECOT_TGDC_OBJS) $(LIB_OBJS) dovecot-plugin/exports.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=dovecot-plugin/exports.map \
		-Wl,-z,relro -Wl,-z,now -o $@ \
		$(DOVECOT_GLUE_OBJS) $(DOVECOT_TGDC_OBJS) $(LIB_OBJS)

.PHONY: install-dovecot-plugin dovecot-plugin
dovecot-plugin: $(DOVECOT_PLUGIN) $(DOVECOT_SETTINGS_PLUGIN)

install-dovecot-plugin: $(DOVECOT_PLUGIN) $(DOVECOT_SETTINGS_PLUGIN)
	install -d $(DESTDIR)$(DOVECOT_MODULEDIR)/auth
	install -m 0644 $(DOVECOT_PLUGIN) $(DESTDIR)$(DOVECOT_MODULEDIR)/auth/libauthdb_tlsgate.so
ifneq ($(DOVECOT_SETTINGS_PLUGIN),)
	install -d $(DESTDIR)$(DOVECOT_MODULEDIR)/settings
	install -m 0644 $(DOVECOT_SETTINGS_PLUGIN) \
		$(DESTDIR)$(DOVECOT_MODULEDIR)/settings/libtlsgate_settings.so
endif

ALL_TARGETS += $(DOVECOT_PLUGIN) $(DOVECOT_SETTINGS_PLUGIN)
INSTALL_TARGETS += install-dovecot-plugin
else
# Not for the goals that install dovecot-dev first (make deps) and then
# build in a new make, which says it if it is still missing.
ifneq ($(filter-out deps demo demo-up demo-down test test-options bench deb deb-deps \
	package-test clean,$(or $(MAKECMDGOALS),all)),)
$(info dovecot-plugin: $(DOVECOT_CONFIG) not found (install dovecot-dev); the Dovecot module is not built)
endif
endif

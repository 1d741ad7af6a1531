# dovecot-plugin/ - the Dovecot 2.3 auth passdb module `tlsgate`:
# build/dovecot-plugin/libauthdb_tlsgate.so, built with Dovecot's own
# compiler flags (dovecot-dev's dovecot-config) and the lib/ objects linked
# in. tgdc.c holds everything that needs no Dovecot; it is also archived
# for the unit tests (tests/unit/test-dovecot-*.c).
DOVECOT_CONFIG ?= /usr/lib/dovecot/dovecot-config
DOVECOT_PLUGIN := $(BUILD)/dovecot-plugin/libauthdb_tlsgate.so
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
dovecot_config_var = $(shell . $(DOVECOT_CONFIG) && printf '%s' "$$$(1)")
DOVECOT_CFLAGS := $(call dovecot_config_var,DOVECOT_CFLAGS)
DOVECOT_INCLUDE := $(call dovecot_config_var,LIBDOVECOT_INCLUDE)
DOVECOT_MODULEDIR := $(call dovecot_config_var,dovecot_moduledir)
DOVECOT_GLUE_CFLAGS := $(DOVECOT_CFLAGS) $(DOVECOT_INCLUDE) -Idovecot-plugin \
	-DHAVE_CONFIG_H -fPIC $(SANFLAGS)
ifeq ($(WERROR),1)
DOVECOT_GLUE_CFLAGS += -Werror
endif

# The Dovecot glue: Dovecot's flags and headers, not the project's (its
# headers are gnu99 and have their own config.h).
$(BUILD)/dovecot-plugin/passdb-tlsgate.o: dovecot-plugin/passdb-tlsgate.c dovecot-plugin/tgdc.h
	@mkdir -p $(dir $@)
	$(CC) $(DOVECOT_GLUE_CFLAGS) -c -o $@ $<

# Only the three symbols Dovecot looks up are exported (exports.map); the
# lib/ objects are linked in, so the module needs nothing but Dovecot.
$(DOVECOT_PLUGIN): $(BUILD)/dovecot-plugin/passdb-tlsgate.o $(DOVECOT_TGDC_OBJS) $(LIB_OBJS) dovecot-plugin/exports.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=dovecot-plugin/exports.map \
		-Wl,-z,relro -Wl,-z,now -o $@ \
		$(BUILD)/dovecot-plugin/passdb-tlsgate.o $(DOVECOT_TGDC_OBJS) $(LIB_OBJS)

.PHONY: install-dovecot-plugin
install-dovecot-plugin: $(DOVECOT_PLUGIN)
	install -d $(DESTDIR)$(DOVECOT_MODULEDIR)/auth
	install -m 0644 $(DOVECOT_PLUGIN) $(DESTDIR)$(DOVECOT_MODULEDIR)/auth/libauthdb_tlsgate.so

ALL_TARGETS += $(DOVECOT_PLUGIN)
INSTALL_TARGETS += install-dovecot-plugin
else
# Not for the goals that install dovecot-dev first (make deps) and then
# build in a new make, which says it if it is still missing.
ifneq ($(filter-out deps demo demo-up demo-down test test-options bench deb deb-deps \
	package-test clean,$(or $(MAKECMDGOALS),all)),)
$(info dovecot-plugin: $(DOVECOT_CONFIG) not found (install dovecot-dev); the Dovecot module is not built)
endif
endif

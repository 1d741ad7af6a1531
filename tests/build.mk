# tests/ - unit tests (cmocka, one program per tests/unit/test-*.c, and
# per test-*.c in the folder of a cli tool, listed by that tool's build.mk
# in UNIT_SRCS_CLI) and the end-to-end suite (pytest, tests/e2e) against
# real Dovecot and Postfix. Every unit test runs in tests/unit.
UNIT_SRCS := $(wildcard tests/unit/test-*.c) $(UNIT_SRCS_CLI)
UNIT_TESTS += $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

$(UNIT_TESTS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_ARCHIVES) $(LIBTLSGATE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lssl -lcrypto -lz

unit: $(UNIT_TESTS)
	@failed=0; for t in $(UNIT_TESTS); do \
		echo "== $$t"; \
		(cd tests/unit && ../../$$t) || failed=$$((failed+1)); \
	done; \
	echo "unit test programs failed: $$failed"; test $$failed = 0

E2E_ARGS ?=
e2e: all dovecot24-module
	cd tests/e2e && $(PYTHON) -m pytest -ra -p no:cacheprovider $(E2E_ARGS)
ifeq ($(SANITIZE),)
	$(MAKE) --no-print-directory e2e-dovecot24
endif

# ---- Dovecot 2.4 ---------------------------------------------------------
# tests/dovecot24-setup (run by `make test`) builds the vendored Dovecot
# 2.4.4 (../shared/vendor) once per machine into DOVECOT24_PREFIX; the
# module is then built for it (build/dovecot-2.4.4/) and the Dovecot suite
# runs a second time against it (tests/e2e/dovecot24.py: TLSGATE_DOVECOT
# selects the Dovecot). Without that Dovecot, one line says so and the 2.4
# run is skipped. Not under SANITIZE: the module cannot load into a
# Dovecot built without ASan (the 2.3 Dovecot tests skip there too).
DOVECOT24_PREFIX ?= /var/cache/tlsgate/dovecot-2.4.4
DOVECOT24_CONFIG := $(DOVECOT24_PREFIX)/lib/dovecot/dovecot-config
DOVECOT24_TESTS ?= test_dovecot_passdb.py test_dovecot_failure.py test_hostile_dovecot.py \
	test_dovecot_mechanisms.py test_devices.py \
	test_report_e2e.py test_install_demo.py::test_demo_scenario_passes_and_leaves_no_process
DOVECOT24_MISSING := e2e-dovecot24: skipped: no Dovecot 2.4 at $(DOVECOT24_PREFIX) \
	(tests/dovecot24-setup builds it from ../shared/vendor/dovecot-2.4.4.tar.xz)
export TLSGATE_DOVECOT24 := $(DOVECOT24_PREFIX)

.PHONY: dovecot24-setup dovecot24-module e2e-dovecot24
dovecot24-setup:
	tests/dovecot24-setup

dovecot24-module:
ifeq ($(SANITIZE),)
	@if [ -f $(DOVECOT24_CONFIG) ]; then \
		$(MAKE) --no-print-directory dovecot-plugin DOVECOT_CONFIG=$(DOVECOT24_CONFIG); fi
endif

e2e-dovecot24: dovecot24-module
	@if [ ! -f $(DOVECOT24_CONFIG) ]; then echo "$(DOVECOT24_MISSING)"; else \
		cd tests/e2e && TLSGATE_DOVECOT=$(DOVECOT24_PREFIX) $(PYTHON) -m pytest -ra \
			-p no:cacheprovider $(E2E_ARGS) $(DOVECOT24_TESTS); fi

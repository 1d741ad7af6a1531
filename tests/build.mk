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
e2e: all
	cd tests/e2e && $(PYTHON) -m pytest -ra -p no:cacheprovider $(E2E_ARGS)

# tests/fuzz/ - libFuzzer targets (clang), one per parser, and the other
# hardening runs: sanitizers, valgrind, static analysis.
#
#   make fuzz            each target for FUZZ_SECONDS (default 300)
#   make fuzz-smoke      each target for FUZZ_SMOKE_SECONDS (default 12), CI
#   make fuzz-<name>     build one target: $(BUILD)/fuzz/fuzz-<name>
#   make test-sanitize   unit + end-to-end suites built with ASan + UBSan
#                        in $(BUILD)/sanitize (the normal build is untouched)
#   make valgrind        unit tests under valgrind --error-exitcode=1
#   make analyze         cppcheck + clang-tidy (tests/analyze.sh), and the
#                        layering of lib/ (tests/layers.py)
#
# Fuzz binaries and the objects they link are built by clang with
# -fsanitize=fuzzer-no-link,address,undefined into $(BUILD)/fuzz, apart
# from the normal objects. New inputs found go to $(BUILD)/fuzz/work/NAME
# (the seeds in tests/fuzz/corpus/NAME are only read), crashes to
# $(BUILD)/fuzz/artifacts, each run's log to $(BUILD)/fuzz/logs/NAME.log.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 12
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
	-fsanitize=fuzzer-no-link -Wall -Wextra -Wno-unused-parameter
FUZZ_DIR := $(BUILD)/fuzz

# name: the parser a target drives; FUZZ_MAXLEN_name: largest input tried.
FUZZ_NAMES := policy netaddr config event text
FUZZ_MAXLEN_policy := 8192
FUZZ_MAXLEN_netaddr := 128
FUZZ_MAXLEN_config := 8192
FUZZ_MAXLEN_event := 16384
FUZZ_MAXLEN_text := 4096
FUZZ_NAMES += authmaster
FUZZ_MAXLEN_authmaster := 20000
FUZZ_NAMES += imapid
FUZZ_MAXLEN_imapid := 12000
FUZZ_NAMES += ucache
FUZZ_MAXLEN_ucache := 4096

# Targets of parsers outside lib/ are added once their code exists.
ifneq ($(wildcard postfix-policyd/request.h),)
FUZZ_NAMES += policyd
FUZZ_MAXLEN_policyd := 40000
FUZZ_OBJS_policyd := $(FUZZ_DIR)/obj/postfix-policyd/request.o
endif
ifneq ($(wildcard cli/report/logscan.h),)
FUZZ_NAMES += report
FUZZ_MAXLEN_report := 16384
FUZZ_OBJS_report := $(FUZZ_DIR)/obj/cli/report/logscan.o $(FUZZ_DIR)/obj/cli/report/origin.o
FUZZ_LIBS_report := -lz
endif

ifneq ($(wildcard cli/probe/dialog.h),)
FUZZ_NAMES += probe
FUZZ_MAXLEN_probe := 8192
FUZZ_OBJS_probe := $(FUZZ_DIR)/obj/cli/probe/dialog.o $(FUZZ_DIR)/obj/cli/probe/text.o
endif

ifneq ($(wildcard dovecot-plugin/tgdc.h),)
FUZZ_NAMES += dovecot
FUZZ_MAXLEN_dovecot := 4096
FUZZ_OBJS_dovecot := $(FUZZ_DIR)/obj/dovecot-plugin/tgdc.o
FUZZ_LIBS_dovecot := -lpthread
endif

FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz-%)
FUZZ_TARGETS += $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -Ilib -Icli -Ipostfix-policyd -Idovecot-plugin $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/libtlsgate-fuzz.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

.SECONDEXPANSION:
$(FUZZ_DIR)/fuzz-%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz-%.o $$(FUZZ_OBJS_$$*) $(FUZZ_DIR)/libtlsgate-fuzz.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS_$*)

.PHONY: fuzz fuzz-build fuzz-smoke $(FUZZ_NAMES:%=fuzz-run-%) \
	test-sanitize valgrind analyze
$(FUZZ_NAMES:%=fuzz-%): fuzz-%: $(FUZZ_DIR)/fuzz-%
fuzz-build: $(FUZZ_BINS)

# One run of one target: $(call fuzz_run,NAME,SECONDS). Exits non-zero on a
# finding; prints the number of executions.
define fuzz_run
@mkdir -p $(FUZZ_DIR)/work/$(1) $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/logs
@echo "fuzz-$(1): $(2) s"
@$(FUZZ_DIR)/fuzz-$(1) -max_total_time=$(2) -max_len=$(FUZZ_MAXLEN_$(1)) \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	$(if $(wildcard tests/fuzz/$(1).dict),-dict=tests/fuzz/$(1).dict) \
	-artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)- \
	$(FUZZ_DIR)/work/$(1) tests/fuzz/corpus/$(1) \
	> $(FUZZ_DIR)/logs/$(1).log 2>&1 \
	|| { tail -n 60 $(FUZZ_DIR)/logs/$(1).log; echo "fuzz-$(1): FINDING, see $(FUZZ_DIR)/artifacts/"; exit 1; }
@echo "fuzz-$(1): $$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/logs/$(1).log) executions, corpus $$(ls $(FUZZ_DIR)/work/$(1) | wc -l) new + $$(ls tests/fuzz/corpus/$(1) | wc -l) seeds, no finding"
endef

$(FUZZ_NAMES:%=fuzz-run-%): fuzz-run-%: $(FUZZ_DIR)/fuzz-%
	$(call fuzz_run,$*,$(FUZZ_RUN_SECONDS))

fuzz: deps
	$(MAKE) --no-print-directory $(FUZZ_NAMES:%=fuzz-run-%) FUZZ_RUN_SECONDS=$(FUZZ_SECONDS)

fuzz-smoke: $(FUZZ_BINS)
	$(MAKE) --no-print-directory $(FUZZ_NAMES:%=fuzz-run-%) FUZZ_RUN_SECONDS=$(FUZZ_SMOKE_SECONDS)

# ---- sanitizers ---------------------------------------------------------
# The unit and end-to-end suites built with ASan + UBSan in a build tree of
# their own, so that the normal objects are neither reused nor replaced.
# The e2e tests find the binaries through TLSGATE_BUILD. The Dovecot module
# cannot be loaded by a Dovecot that is not built with ASan: the tests of
# the module load the normal build's (build/dovecot-plugin), the ones that
# install or demo a build skip (TLSGATE_SANITIZE is set).
# The e2e tests (tests/e2e/hostile_daemon.py) run the binaries of the
# build tree in use, and know when they are sanitized.
export TLSGATE_BUILD := $(abspath $(BUILD))
ifneq ($(SANITIZE),)
export TLSGATE_SANITIZE := $(SANITIZE)
endif
# Self-sufficient from a fresh clone: the packages, then the normal build
# (its Dovecot module is the one the e2e tests load, see above), then the
# sanitized build and its suites.
SANITIZE_BUILD ?= $(BUILD)/sanitize
SANITIZE_WITH ?= address,undefined
test-sanitize: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory unit SANITIZE=$(SANITIZE_WITH) BUILD=$(SANITIZE_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) --no-print-directory e2e SANITIZE=$(SANITIZE_WITH) BUILD=$(SANITIZE_BUILD)

# ---- valgrind -----------------------------------------------------------
# Every unit test program under memcheck; any error or definite leak fails.
VALGRIND ?= valgrind
VALGRIND_FLAGS ?= --quiet --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite --track-fds=no
valgrind: deps
	$(MAKE) --no-print-directory valgrind-run

.PHONY: valgrind-run
valgrind-run: $(UNIT_TESTS)
	@failed=0; for t in $(UNIT_TESTS); do \
		echo "== valgrind $$t"; \
		(cd tests/unit && $(VALGRIND) $(VALGRIND_FLAGS) ../../$$t > /dev/null) \
			|| { echo "valgrind: $$t FAILED"; failed=$$((failed+1)); }; \
	done; \
	echo "unit test programs failing under valgrind: $$failed"; test $$failed = 0

# ---- static analysis ----------------------------------------------------
analyze: all
	tests/analyze.sh
	BUILD=$(BUILD) $(PYTHON) tests/layers.py

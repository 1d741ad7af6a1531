# tlsgate - top-level Makefile
#
#   make              build everything under build/
#   make test         install missing Debian packages, build, run all suites
#                     (unit, analyze, fuzz-smoke, e2e, package-test,
#                     walkthrough; see
#                     tests/fuzz/build.mk for test-sanitize, valgrind and fuzz)
#   make bench        run the benchmarks (figures go to docs/benchmarks.md)
#   make install      PREFIX=/usr/local DESTDIR=...
#   make deb          Debian packages tlsgate and dovecot-tlsgate in build/deb
#
# Options: WERROR=1 (warnings are errors; CI sets it). Sanitizer builds:
# `make test-sanitize` (tests/fuzz/build.mk), the one way to run the
# suites with ASan + UBSan; `make test` refuses SANITIZE=.
# Each part adds its own rules in its build.mk; this file only holds what
# they share.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
DESTDIR ?=
# A sanitized build lives apart, so that its objects never mix with the
# normal ones.
ifneq ($(SANITIZE),)
BUILD   ?= build/sanitize
endif
BUILD   ?= build

WARNFLAGS = -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARNFLAGS += -Werror
endif
OPTFLAGS ?= -O2 -g
SANFLAGS =
ifneq ($(SANITIZE),)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPTFLAGS = -O1 -g
endif
CPPFLAGS += -D_GNU_SOURCE -Ilib
CFLAGS   += -std=c11 $(OPTFLAGS) $(WARNFLAGS) $(SANFLAGS) -fPIC
LDFLAGS  += $(SANFLAGS) -pthread

# Filled in by the build.mk files.
ALL_TARGETS :=
TEST_ARCHIVES :=
UNIT_TESTS :=
INSTALL_TARGETS :=
BENCH_TARGETS :=
FUZZ_TARGETS :=

.PHONY: all test unit e2e bench fuzz deps install clean
all:

include lib/build.mk
-include cli/build.mk
-include postfix-policyd/build.mk
-include dovecot-plugin/build.mk
include tests/build.mk
-include tests/fuzz/build.mk
-include demo/build.mk
-include docs/build.mk
-include bench/build.mk
-include debian/build.mk

all: $(ALL_TARGETS)

deps:
	tests/install-deps

# The suite: unit tests, static analysis, a short run of every fuzz target,
# then the end-to-end tests against real Dovecot (Debian's 2.3, and the
# vendored 2.4.4 that tests/dovecot24-setup builds once) and Postfix, then
# the Debian packages built, installed, used and purged, and
# docs/install.md's complete setup followed on this machine's own
# configuration (both in a throwaway overlay of /, debian/build.mk).
test: test-options deps
	tests/dovecot24-setup
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) analyze
	$(MAKE) fuzz-smoke
	$(MAKE) e2e
	$(MAKE) deb
	$(MAKE) package-test DEB_BUILT=1
	$(MAKE) walkthrough DEB_BUILT=1

.PHONY: test-options
test-options:
ifneq ($(SANITIZE),)
	@echo "make test: SANITIZE= is not an option of make test; run make test-sanitize" >&2
	@exit 2
endif

install: $(INSTALL_TARGETS)

# Each part adds a phony target per benchmark; figures: docs/benchmarks.md.
bench: deps
	$(MAKE) all
	$(MAKE) $(BENCH_TARGETS)

clean:
	rm -rf $(BUILD)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)

# bench/dovecot.mk - the Dovecot passdb: IMAP logins per second through a
# real Dovecot with and without the tlsgate passdb (1,000,000-account
# policy), alternating, login latency during policy reloads, and the time
# the module itself adds to a login (bench/dovecot-decide-bench.c), all in
# bench/dovecot-bench.py. Options:
# DOVECOT_BENCH_ARGS="--clients K --seconds S --rounds R --accounts N";
# DOVECOT_CONFIG=PREFIX/lib/dovecot/dovecot-config: against that Dovecot
# (e.g. the 2.4.4 of tests/dovecot24-setup) instead of Debian's.
DOVECOT_BENCH_ARGS ?=
DOVECOT_DECIDE_BENCH := $(BUILD)/bench/dovecot-decide-bench

$(BUILD)/bench/dovecot-decide-bench.o: CPPFLAGS += -Idovecot-plugin

$(DOVECOT_DECIDE_BENCH): $(BUILD)/bench/dovecot-decide-bench.o $(DOVECOT_PLUGIN_ARCHIVE) $(LIBTLSGATE)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread

.PHONY: bench-dovecot
bench-dovecot: $(DOVECOT_PLUGIN) $(DOVECOT_DECIDE_BENCH)
	$(DOVECOT_HARNESS_ENV) $(PYTHON) bench/dovecot-bench.py --decide-bench $(DOVECOT_DECIDE_BENCH) $(DOVECOT_BENCH_ARGS)

BENCH_TARGETS += bench-dovecot

# Where many customers share one Dovecot: a STARTTLS login after refusals
# from the same address (auth penalty on), and the delay from a policy edit
# to its reload without logins (bench/dovecot-provider-bench.py).
# DOVECOT_PROVIDER_BENCH_ARGS="--module PATH --refusals N --edits R".
DOVECOT_PROVIDER_BENCH_ARGS ?=

.PHONY: bench-dovecot-provider
bench-dovecot-provider: $(DOVECOT_PLUGIN)
	$(PYTHON) bench/dovecot-provider-bench.py $(DOVECOT_PROVIDER_BENCH_ARGS)

BENCH_TARGETS += bench-dovecot-provider

# bench/policyd.mk - tlsgate-policyd against a minimal DUNNO server and
# postfwd (docs/benchmarks.md, section tlsgate-policyd).
POLICYD_LOAD := $(BUILD)/bench/policyd-load
POLICYD_DUNNO := $(BUILD)/bench/policyd-dunno

$(POLICYD_LOAD): $(BUILD)/bench/policyd-load.o
	$(CC) $(LDFLAGS) -o $@ $^
$(POLICYD_DUNNO): $(BUILD)/bench/policyd-dunno.o
	$(CC) $(LDFLAGS) -o $@ $^

# POLICYD_BENCH_ARGS: e.g. "--seconds 5 --accounts 1000000" (see the script)
POLICYD_BENCH_ARGS ?=
.PHONY: bench-policyd
bench-policyd: $(POLICYD_LOAD) $(POLICYD_DUNNO) $(BUILD)/tlsgate-policyd
	bench/policyd-bench.sh --build $(BUILD) $(POLICYD_BENCH_ARGS)

BENCH_TARGETS += bench-policyd

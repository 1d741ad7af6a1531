# bench/ucache.mk - the cache of account answers (lib/ucache) alone:
# look-up time and memory with a warm table of 1M names.
# UCACHE_BENCH_ARGS: ACCOUNTS CACHE_SIZE LOOKUPS
UCACHE_BENCH := $(BUILD)/bench/ucache-bench
UCACHE_BENCH_ARGS ?= 1010000 2000000 10000000

$(UCACHE_BENCH): $(BUILD)/bench/ucache-bench.o $(LIBTLSGATE)
	$(CC) $(LDFLAGS) -o $@ $^

.PHONY: bench-ucache
bench-ucache: $(UCACHE_BENCH)
	@printf 'ucache: '; $(UCACHE_BENCH) $(UCACHE_BENCH_ARGS)

BENCH_TARGETS += bench-ucache

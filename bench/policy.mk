# bench/policy.mk - policy load and decision speed (lib/), 10k to 1M rules.
POLICY_BENCH := $(BUILD)/bench/policy-bench
POLICY_BENCH_SIZES ?= 10000:500:100 100000:5000:1000 1000000:50000:10000

$(POLICY_BENCH): $(BUILD)/bench/policy-bench.o $(LIBTLSGATE)
	$(CC) $(LDFLAGS) -o $@ $^

.PHONY: bench-policy
bench-policy: $(POLICY_BENCH)
	@for size in $(POLICY_BENCH_SIZES); do \
		a=$${size%%:*}; rest=$${size#*:}; d=$${rest%%:*}; e=$${rest#*:}; \
		f=$(BUILD)/bench/policy-$$a.conf; \
		[ -f $$f ] || $(POLICY_BENCH) generate $$a $$d $$e $$f || exit 1; \
		printf 'policy %s: ' "$$a accounts"; \
		$(POLICY_BENCH) run $$f $$a $$d $$e 1000000 || exit 1; \
	done

BENCH_TARGETS += bench-policy

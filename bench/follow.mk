# bench/follow.mk - `tlsgate notify --follow` reading a generated log
# (bench/report-genlog.c, the log of bench-report; report.mk builds it) from standard input as
# fast as it can: throughput, peak memory, and what became of the notices
# (sendmail: dd to /dev/null). FOLLOW_BENCH_SIZE is BYTES:ACCOUNTS.
FOLLOW_BENCH_SIZE ?= 250000000:1000000

.PHONY: bench-follow
bench-follow: $(BUILD)/bench/report-genlog $(TLSGATE_BIN)
	@size=$(FOLLOW_BENCH_SIZE); bytes=$${size%%:*}; accounts=$${size#*:}; \
	f=$(BUILD)/bench/report-$$bytes-$$accounts.log; \
	[ -s $$f ] || { $(BUILD)/bench/report-genlog $$bytes $$accounts > $$f.tmp && mv $$f.tmp $$f; } || exit 1; \
	$(PYTHON) bench/follow-run.py $(TLSGATE_BIN) $$f $(BUILD)/bench

BENCH_TARGETS += bench-follow

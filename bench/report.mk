# bench/report.mk - `tlsgate report` throughput and memory on a generated
# log (bench/report-genlog.c): REPORT_BENCH_SIZES lists BYTES:ACCOUNTS.
# The logs are kept in $(BUILD)/bench/ and only generated when missing.
REPORT_GENLOG := $(BUILD)/bench/report-genlog
REPORT_BENCH_SIZES ?= 1000000000:1000000 250000000:1000000 1000000000:10000

$(REPORT_GENLOG): $(BUILD)/bench/report-genlog.o
	$(CC) $(LDFLAGS) -o $@ $^

.PHONY: bench-report
bench-report: $(REPORT_GENLOG) $(TLSGATE_BIN)
	@for size in $(REPORT_BENCH_SIZES); do \
		bytes=$${size%%:*}; accounts=$${size#*:}; \
		f=$(BUILD)/bench/report-$$bytes-$$accounts.log; \
		[ -f $$f ] || $(REPORT_GENLOG) $$bytes $$accounts > $$f || exit 1; \
		$(PYTHON) bench/report-run.py $(TLSGATE_BIN) $$f $$accounts || exit 1; \
	done

BENCH_TARGETS += bench-report

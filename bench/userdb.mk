# bench/userdb.mk - tlsgate-policyd with the account database (userdb =)
# against a real Dovecot (docs/benchmarks.md).
# USERDB_BENCH_ARGS: e.g. "--accounts 100000 --seconds 10"
USERDB_BENCH_ARGS ?=
.PHONY: bench-userdb
bench-userdb: $(BUILD)/bench/policyd-load $(BUILD)/tlsgate-policyd
	$(PYTHON) bench/userdb-bench.py --build $(BUILD) $(USERDB_BENCH_ARGS)

BENCH_TARGETS += bench-userdb

# bench/ - benchmarks; each part keeps its own bench/<part>.mk.
-include $(filter-out bench/build.mk,$(wildcard bench/*.mk))

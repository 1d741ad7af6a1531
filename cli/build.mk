# cli/ - the `tlsgate` command: main.c dispatches, common.c holds the
# option and configuration code the subcommands share, check.c and
# explain.c are the policy subcommands. Each further tool has its own
# folder with its own build.mk: report/ (report, notify), probe/ and
# autoconfig/.
# Every source but main.c also goes into cli.a, so that unit tests can
# call the subcommands' functions.
CLI_SRCS := cli/common.c cli/check.c cli/explain.c
include cli/report/build.mk
include cli/probe/build.mk
include cli/autoconfig/build.mk
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
CLI_ARCHIVE := $(BUILD)/cli.a
TLSGATE_BIN := $(BUILD)/tlsgate
CLI_LIBS := -lssl -lcrypto -lz

# Sources and tests name the headers of a tool folder from cli/
# ("report/tally.h"); inside a folder, its own headers are found beside
# the source.
$(BUILD)/cli/%.o: CPPFLAGS += -Icli
$(BUILD)/tests/unit/%.o: CPPFLAGS += -Icli

$(CLI_ARCHIVE): $(CLI_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(TLSGATE_BIN): $(BUILD)/cli/main.o $(CLI_ARCHIVE) $(LIBTLSGATE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)

ALL_TARGETS += $(TLSGATE_BIN)
TEST_ARCHIVES += $(CLI_ARCHIVE)

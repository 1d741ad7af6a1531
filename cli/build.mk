# cli/ - the `tlsgate` command. Every cli/*.c but main.c also goes into
# cli.a, so that unit tests can call the subcommands' functions.
CLI_SRCS := $(filter-out cli/main.c,$(wildcard cli/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
CLI_ARCHIVE := $(BUILD)/cli.a
TLSGATE_BIN := $(BUILD)/tlsgate
CLI_LIBS := -lssl -lcrypto -lz

$(BUILD)/cli/%.o: CPPFLAGS += -Icli
$(BUILD)/tests/unit/test-cli-%.o: CPPFLAGS += -Icli

$(CLI_ARCHIVE): $(CLI_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(TLSGATE_BIN): $(BUILD)/cli/main.o $(CLI_ARCHIVE) $(LIBTLSGATE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)

ALL_TARGETS += $(TLSGATE_BIN)
TEST_ARCHIVES += $(CLI_ARCHIVE)

# lib/ - the policy engine: libtlsgate.a, linked into every program.
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBTLSGATE := $(BUILD)/libtlsgate.a

$(LIBTLSGATE): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

ALL_TARGETS += $(LIBTLSGATE)

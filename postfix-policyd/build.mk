# postfix-policyd/ - tlsgate-policyd, the Postfix policy server. Every
# postfix-policyd/*.c but main.c also goes into policyd.a, which unit tests
# link with.
POLICYD_SRCS := $(filter-out postfix-policyd/main.c,$(wildcard postfix-policyd/*.c))
POLICYD_OBJS := $(POLICYD_SRCS:%.c=$(BUILD)/%.o)
POLICYD_ARCHIVE := $(BUILD)/policyd.a
POLICYD_BIN := $(BUILD)/tlsgate-policyd

$(BUILD)/postfix-policyd/%.o: CPPFLAGS += -Ipostfix-policyd
$(BUILD)/tests/unit/test-policyd-%.o: CPPFLAGS += -Ipostfix-policyd

$(POLICYD_ARCHIVE): $(POLICYD_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(POLICYD_BIN): $(BUILD)/postfix-policyd/main.o $(POLICYD_ARCHIVE) $(LIBTLSGATE)
	$(CC) $(LDFLAGS) -o $@ $^

ALL_TARGETS += $(POLICYD_BIN)
TEST_ARCHIVES += $(POLICYD_ARCHIVE)

install-policyd: $(POLICYD_BIN)
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 755 $(POLICYD_BIN) $(DESTDIR)$(PREFIX)/sbin/tlsgate-policyd
INSTALL_TARGETS += install-policyd
.PHONY: install-policyd

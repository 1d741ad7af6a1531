# docs/ - `make install` of what no other part installs: the tlsgate
# command, the man pages, these documents, the notice templates of
# `tlsgate notify`, the systemd units of tlsgate-policyd and of
# `tlsgate notify --follow` (tlsgate-notify) and an example
# configuration (docs/install.md has the table of what goes where).
# tlsgate-policyd itself (postfix-policyd/build.mk) and the Dovecot module
# (dovecot-plugin/build.mk, into DOVECOT_MODULEDIR from dovecot-config)
# are installed by their own parts.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]
#                [SYSTEMD_UNITDIR=$(PREFIX)/lib/systemd/system]
#
# The configuration lives where the programs look for it (/etc/tlsgate),
# not under PREFIX, and an existing one is never overwritten.

SYSCONFDIR      ?= /etc
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL         ?= install

TLSGATE_CONFDIR := $(SYSCONFDIR)/tlsgate
POLICYD_UNIT    := postfix-policyd/tlsgate-policyd.service
NOTIFY_UNIT     := cli/report/tlsgate-notify.service
MAN_PAGES_1 := man/tlsgate.1
MAN_PAGES_5 := man/tlsgate.conf.5 man/tlsgate.policy.5
MAN_PAGES_8 := man/tlsgate-policyd.8

DOC_DIR         := $(PREFIX)/share/doc/tlsgate
DOCS            := $(wildcard docs/*.md)
TEMPLATE_DIR    := $(PREFIX)/share/tlsgate/templates
NOTICE_TEMPLATES := $(wildcard docs/templates/notice.*.txt)

# `tlsgate notify` looks for its templates where install-templates puts
# them. The stamp holds the directory compiled in; it changes (and
# notify.o is rebuilt) only when PREFIX does.
TEMPLATE_DIR_STAMP := $(BUILD)/docs/template-dir
$(BUILD)/cli/report/notify.o: CPPFLAGS += -DTG_TEMPLATE_DIR='"$(TEMPLATE_DIR)"'
$(BUILD)/cli/report/notify.o: $(TEMPLATE_DIR_STAMP)
.PHONY: template-dir-check
template-dir-check:
$(TEMPLATE_DIR_STAMP): template-dir-check
	@mkdir -p $(dir $@)
	@echo '$(TEMPLATE_DIR)' | cmp -s - $@ || echo '$(TEMPLATE_DIR)' > $@

.PHONY: install-tlsgate install-man install-unit install-config install-templates \
	install-doc
INSTALL_TARGETS += install-tlsgate install-man install-unit install-config \
	install-templates install-doc

install-tlsgate: $(TLSGATE_BIN)
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin
	$(INSTALL) -m 755 $(TLSGATE_BIN) $(DESTDIR)$(PREFIX)/bin/tlsgate

install-man: $(MAN_PAGES_1) $(MAN_PAGES_5) $(MAN_PAGES_8)
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	$(INSTALL) -m 644 $(MAN_PAGES_1) $(DESTDIR)$(PREFIX)/share/man/man1
	$(INSTALL) -m 644 $(MAN_PAGES_5) $(DESTDIR)$(PREFIX)/share/man/man5
	$(INSTALL) -m 644 $(MAN_PAGES_8) $(DESTDIR)$(PREFIX)/share/man/man8

install-templates: $(NOTICE_TEMPLATES)
	$(INSTALL) -d $(DESTDIR)$(TEMPLATE_DIR)
	$(INSTALL) -m 644 $(NOTICE_TEMPLATES) $(DESTDIR)$(TEMPLATE_DIR)

install-doc: $(DOCS)
	$(INSTALL) -d $(DESTDIR)$(DOC_DIR)
	$(INSTALL) -m 644 $(DOCS) $(DESTDIR)$(DOC_DIR)

# The unit's ExecStart= and Documentation= name the installed files,
# wherever PREFIX is.
install-unit: $(POLICYD_UNIT) $(NOTIFY_UNIT)
	$(INSTALL) -d $(DESTDIR)$(SYSTEMD_UNITDIR)
	sed -e 's|^ExecStart=[^ ]*tlsgate-policyd|ExecStart=$(PREFIX)/sbin/tlsgate-policyd|' \
		-e '/^Documentation=/s|file://[^ ]*/share/doc/tlsgate/|file://$(DOC_DIR)/|g' \
		$(POLICYD_UNIT) > $(DESTDIR)$(SYSTEMD_UNITDIR)/.tlsgate-policyd.service.tmp
	chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/.tlsgate-policyd.service.tmp
	mv -f $(DESTDIR)$(SYSTEMD_UNITDIR)/.tlsgate-policyd.service.tmp \
		$(DESTDIR)$(SYSTEMD_UNITDIR)/tlsgate-policyd.service
	sed -e 's|^ExecStart=[^ ]*/bin/tlsgate |ExecStart=$(PREFIX)/bin/tlsgate |' \
		-e '/^Documentation=/s|file://[^ ]*/share/doc/tlsgate/|file://$(DOC_DIR)/|g' \
		$(NOTIFY_UNIT) > $(DESTDIR)$(SYSTEMD_UNITDIR)/.tlsgate-notify.service.tmp
	chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/.tlsgate-notify.service.tmp
	mv -f $(DESTDIR)$(SYSTEMD_UNITDIR)/.tlsgate-notify.service.tmp \
		$(DESTDIR)$(SYSTEMD_UNITDIR)/tlsgate-notify.service

# Only what is not there yet: an admin's configuration is never replaced.
install-config: docs/examples/tlsgate.conf docs/examples/policy.d/00-global.conf
	$(INSTALL) -d -m 755 $(DESTDIR)$(TLSGATE_CONFDIR)
	@if [ -e $(DESTDIR)$(TLSGATE_CONFDIR)/tlsgate.conf ]; then \
		echo "keeping the existing $(DESTDIR)$(TLSGATE_CONFDIR)/tlsgate.conf"; \
	else \
		echo "$(INSTALL) -m 644 docs/examples/tlsgate.conf $(DESTDIR)$(TLSGATE_CONFDIR)/tlsgate.conf"; \
		$(INSTALL) -m 644 docs/examples/tlsgate.conf $(DESTDIR)$(TLSGATE_CONFDIR)/tlsgate.conf; \
	fi
	@if [ -e $(DESTDIR)$(TLSGATE_CONFDIR)/policy.d ]; then \
		echo "keeping the existing $(DESTDIR)$(TLSGATE_CONFDIR)/policy.d"; \
	else \
		echo "$(INSTALL) -m 644 -D docs/examples/policy.d/00-global.conf $(DESTDIR)$(TLSGATE_CONFDIR)/policy.d/00-global.conf"; \
		$(INSTALL) -d -m 755 $(DESTDIR)$(TLSGATE_CONFDIR)/policy.d && \
		$(INSTALL) -m 644 docs/examples/policy.d/00-global.conf $(DESTDIR)$(TLSGATE_CONFDIR)/policy.d/00-global.conf; \
	fi

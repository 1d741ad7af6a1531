# demo/ - `make demo`: the whole system on loopback with a scripted
# scenario; `make demo-up` / `make demo-down`: the same sandbox kept
# running for a real mail client. Everything is written below build/demo.
DEMO_DIR ?= $(BUILD)/demo
# Another Dovecot than Debian's (make demo DOVECOT_CONFIG=PREFIX/lib/dovecot/
# dovecot-config, e.g. the 2.4.4 of tests/dovecot24-setup): the harness
# runs the one installed at PREFIX (tests/e2e/dovecot24.py).
DEMO_RUN := $(DOVECOT_HARNESS_ENV) $(PYTHON) demo/tlsgate_demo.py --dir $(DEMO_DIR) --build $(BUILD)

.PHONY: demo demo-up demo-down

# deps first, then the build, then the demo (not in parallel: the build
# needs the packages deps installs).
demo: deps
	$(MAKE) all
	$(DEMO_RUN) run

demo-up: deps
	$(MAKE) all
	$(DEMO_RUN) up

demo-down:
	$(DEMO_RUN) down

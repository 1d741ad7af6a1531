# debian/ - `make deb`: the Debian packages tlsgate and dovecot-tlsgate,
# built with dpkg-buildpackage from a copy of the source tree in
# $(DEB_DIR)/tlsgate, so that the build's own files (debian/tmp, build/)
# never mix with this tree's. The .deb files, .buildinfo and .changes end
# up in $(DEB_DIR) (default build/deb), and lintian checks them (errors and
# warnings fail; overrides in debian/*.lintian-overrides carry a reason).
# The tools come from tests/packages-deb.txt, the build dependencies from
# tests/packages.txt, both installed by tests/install-deps.
DEB_DIR ?= build/deb
DEB_SRC := $(DEB_DIR)/tlsgate

.PHONY: deb deb-deps
deb-deps:
	tests/install-deps tests/packages.txt tests/packages-deb.txt

# The outer make's variables (WERROR, SANITIZE, BUILD...) stay out of the
# package build: it sets its own in debian/rules. DOVECOT_CONFIG goes in:
# the Dovecot to build the module for, whose ABI the package depends on.
deb: deb-deps
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	tar -cf - --exclude=./build --exclude='./build-*' --exclude=./.git \
		--exclude=__pycache__ . | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		DEB_BUILD_OPTIONS=parallel=2 DOVECOT_CONFIG=$(DOVECOT_CONFIG) \
		dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
		|| { tail -n 60 ../build.log; echo "make deb: failed, see $(DEB_DIR)/build.log"; exit 1; }
	chmod -R a+rX $(DEB_DIR)
	setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
		lintian --fail-on error,warning --info $(DEB_DIR)/*.changes
	@ls -1 $(DEB_DIR)/*.deb

# The package test of `make test` (tests/package/run): installs the
# packages in a throwaway overlay of /, checks the init script and the unit,
# plays the demo with the installed files, purges and compares.
# DEB_BUILT=1: the packages in $(DEB_DIR) are fresh (make test builds them
# once for both tests below).
DEB_PREREQ := $(if $(DEB_BUILT),,deb)

.PHONY: package-test
package-test: $(DEB_PREREQ)
	tests/package/run $(DEB_DIR)

# The admin walkthrough of `make test` (tests/walkthrough/run): the steps
# of docs/install.md's complete setup, run on a throwaway overlay of this
# machine's root with its system Dovecot and Postfix, then real sessions.
.PHONY: walkthrough
walkthrough: $(DEB_PREREQ)
	tests/walkthrough/run

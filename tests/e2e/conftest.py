"""Shared pytest fixtures for the tlsgate end-to-end tests (see HARNESS.md).

Fixtures
  certs                   session: mailstack.CertSet (CA, server cert, variants)
  session_stack_factory   session: make_stack(**kw) -> mailstack.Stack (started);
                          everything it made stops at session end
  stack_factory           function: same, stops at the end of the test
  stack                   function: a started default Stack (Dovecot+Postfix,
                          no tlsgate) with user alice@example.test / "alice-pw"
  tgtest_module           session: path of a compiled tiny test passdb module
                          (testmod/passdb_tgtest.c); skips if it cannot build

The session runs in a private mount namespace where /etc/tlsgate,
/etc/dovecot/dovecot.conf and /etc/postfix/main.cf are planted, unusable
files (machine_isolation.py): a test that read the machine's configuration
instead of its own would fail.

make_stack(**kw): keyword args of mailstack.Stack (postfix=, dovecot_kw=,
postfix_kw=, cert=, ca=) plus name= for the directory name, start=False to
get it unstarted (e.g. to add users or change settings first).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine_isolation  # noqa: E402
import mailstack  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


# Test directories must be reachable by the dovecot, mail and postfix users.
# pytest's default /tmp/pytest-of-root is mode 0700 and every new pytest
# session (e.g. a colleague's, running at the same time) resets it to 0700,
# so unless --basetemp is given, each session uses its own
# /tmp/tlsgate-e2e/run-XXXX/tmp (0711 path). The 3 previous runs are kept for
# debugging; older ones are removed unless a session still holds their lock.
E2E_ROOT = Path(os.environ.get("TLSGATE_E2E_TMP", "/tmp/tlsgate-e2e"))
KEEP_RUNS = 3
_run_lock = None


def _cleanup_old_runs() -> None:
    runs = sorted((p for p in E2E_ROOT.glob("run-*") if p.is_dir()),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[KEEP_RUNS:]:
        try:
            fd = os.open(old / ".lock", os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # in use by a running session
        try:
            shutil.rmtree(old, ignore_errors=True)
        finally:
            os.close(fd)


def pytest_configure(config):
    global _run_lock
    if os.geteuid() != 0:
        raise pytest.UsageError("the e2e tests must run as root (they start Dovecot/Postfix)")
    # Nothing of the machine's own tlsgate/Dovecot/Postfix configuration may
    # leak in: the session sees planted, unusable files in their place.
    machine_isolation.isolate()
    if config.option.basetemp or hasattr(config, "workerinput"):
        return
    E2E_ROOT.mkdir(mode=0o711, exist_ok=True)
    os.chmod(E2E_ROOT, 0o711)
    _cleanup_old_runs()
    run = Path(tempfile.mkdtemp(prefix="run-", dir=E2E_ROOT))
    os.chmod(run, 0o711)
    _run_lock = os.open(run / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(_run_lock, fcntl.LOCK_EX)
    config.option.basetemp = str(run / "tmp")


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> mailstack.CertSet:
    return mailstack.make_cert_set(tmp_path_factory.mktemp("certs"))


class _Factory:
    def __init__(self, tmp_path_factory, certs):
        self._tmp = tmp_path_factory
        self._certs = certs
        self.stacks: list[mailstack.Stack] = []

    def __call__(self, *, name: str = "stack", cert=None, ca=None, start: bool = True,
                 **kw) -> mailstack.Stack:
        d = self._tmp.mktemp(name)
        st = mailstack.Stack(d, cert or self._certs.server, ca=ca or self._certs.ca.cert, **kw)
        self.stacks.append(st)
        if start:
            st.start()
        return st

    def close(self):
        errors = []
        for st in reversed(self.stacks):
            try:
                st.stop()
            except Exception as e:
                errors.append(e)
        self.stacks.clear()
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def session_stack_factory(tmp_path_factory, certs):
    f = _Factory(tmp_path_factory, certs)
    yield f
    f.close()


@pytest.fixture
def stack_factory(tmp_path_factory, certs):
    f = _Factory(tmp_path_factory, certs)
    yield f
    f.close()


@pytest.fixture
def stack(stack_factory) -> mailstack.Stack:
    st = stack_factory(start=False)
    st.add_user("alice@example.test", "alice-pw")
    return st.start()


@pytest.fixture(scope="session")
def tgtest_module(tmp_path_factory) -> Path:
    """Build testmod/passdb_tgtest.c into libauthdb_tgtest.so (driver = tgtest)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not os.path.exists("/usr/include/dovecot/passdb.h"):
        pytest.skip("needs a C compiler and dovecot-dev")
    out = tmp_path_factory.mktemp("tgtest") / "libauthdb_tgtest.so"
    cp = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-I/usr/include/dovecot",
                         "-DHAVE_CONFIG_H", "-include", "config.h", "-o", str(out),
                         str(HERE / "testmod" / "passdb_tgtest.c")],
                        capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        pytest.fail(f"building the test module failed:\n{cp.stderr}")
    return out

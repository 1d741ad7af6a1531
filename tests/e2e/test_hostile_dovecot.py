"""Faults and hostile policy files under the Dovecot module (docs/security.md).

A real Dovecot 2.3 with the `tlsgate` passdb: its auth process killed (the
master starts a new one, which loads the policy again and decides the
same), and hostile files put into the policy directory while it serves
(the module keeps the old policy and logs why). Clients connect from
127.0.0.2, so a connection without TLS is plaintext to Dovecot.

Under `make test-sanitize` this module still uses the normal build of the
Dovecot module: Debian's Dovecot is not built with ASan and cannot load an
ASan module.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

import mailstack as ms
from dovecot_tlsgate import MESSAGE, MODULE, PolicyDir, passdb_block, wait_event

D = ms.DOMAIN
PW = "Secret-123"
REFUSAL = f"[PRIVACYREQUIRED] {MESSAGE}"
RULES = f"require @{D}\noff off@{D}\n"


@pytest.fixture(scope="module")
def tg(session_stack_factory, tmp_path_factory):
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built (make)")
    etc = tmp_path_factory.mktemp("tlsgate-hostile-etc")
    pol = PolicyDir(etc, RULES)
    st = session_stack_factory(
        name="dovecot-hostile", start=False, postfix=False,
        dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                        config_extra="auth_failure_delay = 0\n"))
    for user in (f"alice@{D}", f"off@{D}"):
        st.add_user(user, PW)
    st.start()
    st.policy = pol
    return st


def login(st, user, mode="plain"):
    with st.imap(mode) as c:
        return c.try_login(user, PW)


def decides_as_before(st):
    assert login(st, f"alice@{D}") == ("NO", REFUSAL)
    assert login(st, f"alice@{D}", "tls")[0] == "OK"
    assert login(st, f"off@{D}")[0] == "OK"


def test_auth_process_killed(tg):
    decides_as_before(tg)
    old = tg.dovecot.auth_pid()
    os.kill(old, signal.SIGKILL)
    # The master starts a new auth process on the next login; that one
    # loads the policy afresh and must decide the same.
    deadline = time.monotonic() + 20
    while True:
        try:
            r = login(tg, f"alice@{D}")
            if r == ("NO", REFUSAL):
                break
        except Exception:
            r = None
        assert time.monotonic() < deadline, f"no refusal after the restart: {r}"
        time.sleep(0.2)
    assert tg.dovecot.auth_pid() != old
    decides_as_before(tg)


@pytest.mark.parametrize("kind", ["group-writable", "fifo", "other-owner", "syntax"])
def test_hostile_file_keeps_old_policy(tg, kind):
    path = tg.policy.path("zz-hostile.conf")
    mark = tg.dovecot.log_mark()
    if kind == "fifo":
        os.mkfifo(path, 0o644)
        why = r"zz-hostile\.conf: not a regular file"
    else:
        path.write_text(f"off @{D}\n" if kind != "syntax" else f"off @{D} bogus=1\n")
        if kind == "group-writable":
            os.chmod(path, 0o664)
            why = r"zz-hostile\.conf: file \S+ is writable by its group"
        elif kind == "other-owner":
            os.chmod(path, 0o644)
            os.chown(path, 12345, 12345)
            why = r"zz-hostile\.conf: file \S+ is owned by uid 12345"
        else:
            os.chmod(path, 0o644)
            why = r"zz-hostile\.conf:1: unknown key 'bogus'"
    # also the directory's times changed: the module notices on a login
    try:
        time.sleep(1.1)		# reload checks run at most once a second
        decides_as_before(tg)	# "off @domain" is not in force
        tg.dovecot.wait_log(why, since=mark)
    finally:
        path.unlink()
    time.sleep(1.1)
    decides_as_before(tg)


def test_policy_directory_removed(tg):
    saved = tg.policy.dir / "saved.d"
    shutil.copytree(tg.policy.policy, saved)
    shutil.rmtree(tg.policy.policy)
    mark = tg.dovecot.log_mark()
    try:
        time.sleep(1.1)
        decides_as_before(tg)
        tg.dovecot.wait_log(r"No such file or directory", since=mark)
    finally:
        shutil.copytree(saved, tg.policy.policy)
        os.chmod(tg.policy.policy, 0o755)
        shutil.rmtree(saved)
    time.sleep(1.1)
    decides_as_before(tg)

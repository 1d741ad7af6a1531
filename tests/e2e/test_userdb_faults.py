"""tlsgate-policyd with `userdb =` against a stand-in auth-userdb socket
(userdb_fake.py) that misbehaves on purpose: missing, refusing, slow,
garbage, FAIL, unknown users, many connections at once. The real backends
(SQLite, PostgreSQL, OpenLDAP behind a real Dovecot) are in
test_userdb_backends.py.

What must hold: no wrong verdict (a failure is answered per `failure =`,
never as the files alone or as allow under tempfail), a bounded wait,
one log line per failure period, one look-up per account per TTL.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import pytest

import mailstack
from policyd_daemon import POLICYD, Policyd
from userdb_fake import FakeUserdb

pytestmark = pytest.mark.skipif(not POLICYD.exists(), reason=f"{POLICYD} not built")

D = "x.test"
POLICY = f"require @{D}\n"
USERS = {f"off@{D}": {"tlsgate_mode": "off"},
         f"req@{D}": {"tlsgate_mode": "require"},
         f"audit@{D}": {"tlsgate_mode": "audit"},
         f"bad@{D}": {"tlsgate_mode": "yes"},
         f"plain@{D}": {"quota": "1G"}}
DUNNO = "action=DUNNO\n\n"
REJECT = "action=530 5.7.0 TLS required: use port 465 or STARTTLS\n\n"
TEMPFAIL = "action=451 4.7.0 account database not available, try again later\n\n"


def req(user: str, **kw) -> dict:
    r = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
         "client_address": "127.0.0.2", "encryption_protocol": "",
         "sasl_method": "PLAIN", "sasl_username": user}
    r.update(kw)
    return r


def userdb_lines(pd, since=0):
    return [l for l in pd.log(since).splitlines() if ": userdb: " in l]


@pytest.fixture
def env(tmp_path):
    os.chmod(tmp_path, 0o755)
    mailstack.make_traversable(tmp_path)
    sock = tmp_path / "tlsgate-userdb"
    fake = FakeUserdb(sock, USERS)
    daemons = []

    def start(extra: str = "", failure: str = "tempfail"):
        pd = Policyd(tmp_path / f"pd{len(daemons)}", POLICY,
                     conf_extra=f"userdb = dovecot:{sock}\nuserdb_timeout = 2\n"
                                f"failure = {failure}\n{extra}").start()
        daemons.append(pd)
        return pd
    yield fake, start, sock
    for pd in daemons:
        pd.stop()
    fake.stop()


def test_database_mode_overrides_the_files(env):
    fake, start, _ = env
    pd = start()
    assert pd.ask(req(f"off@{D}")) == DUNNO            # db off beats domain require
    assert pd.ask(req(f"req@{D}")) == REJECT
    assert pd.ask(req(f"audit@{D}")) == DUNNO
    assert pd.ask(req(f"req@{D}", encryption_protocol="TLSv1.3")) == DUNNO
    ev = {e["user"]: e for e in pd.events() if e["tls"] == "none"}
    assert ev[f"off@{D}"]["rule"] == "userdb" and ev[f"off@{D}"]["mode"] == "off"
    assert ev[f"req@{D}"]["rule"] == "userdb" and ev[f"req@{D}"]["verdict"] == "reject"
    assert ev[f"audit@{D}"]["verdict"] == "audit"


def test_no_field_unknown_user_and_invalid_value_leave_it_to_the_files(env):
    fake, start, _ = env
    pd = start()
    mark = pd.mark()
    for user in (f"plain@{D}", f"nobody-knows@{D}", f"bad@{D}"):
        assert pd.ask(req(user)) == REJECT, user
    for e in pd.events(mark):
        assert e["rule"].endswith("main.conf:1"), e
    pd.wait_log(rf'user bad@{D}: ignoring tlsgate_mode="yes" from the user database', since=mark)


def test_one_lookup_per_account_within_the_ttl_then_the_change_is_seen(env):
    fake, start, _ = env
    pd = start("userdb_cache_ttl = 2\n")
    for _ in range(5):
        assert pd.ask(req(f"off@{D}")) == DUNNO
        assert pd.ask(req(f"nobody@{D}")) == REJECT      # negative answers are cached too
    assert fake.lookups[f"off@{D}"] == 1
    assert fake.lookups[f"nobody@{D}"] == 1
    fake.users[f"off@{D}"] = {"tlsgate_mode": "require"}    # the control panel flips it
    assert pd.ask(req(f"off@{D}")) == DUNNO                 # still cached
    time.sleep(2.2)
    assert pd.ask(req(f"off@{D}")) == REJECT
    assert fake.lookups[f"off@{D}"] == 2


@pytest.mark.parametrize("failure,want", [("tempfail", TEMPFAIL), ("allow", DUNNO)])
def test_missing_socket_answers_per_failure_and_logs_once(env, failure, want):
    fake, start, sock = env
    fake.stop()
    pd = start(failure=failure)
    pd.wait_log(r"userdb: userdb socket \S+ does not exist")     # at startup
    mark = pd.mark()
    for i in range(20):
        assert pd.ask(req(f"u{i}@{D}")) == want
    lines = userdb_lines(pd, mark)
    assert len(lines) == 1, lines
    assert "does not exist" in lines[0] and f"failure = {failure}" in lines[0]
    assert not [e for e in pd.events(mark) if e["user"].startswith("u")]  # no verdict made up


def test_recovers_when_the_socket_comes_back(env):
    fake, start, sock = env
    fake.stop()
    pd = start()
    assert pd.ask(req(f"off@{D}")) == TEMPFAIL
    fake2 = FakeUserdb(sock, USERS)
    try:
        time.sleep(1.1)                     # a new connection at most once a second
        mark = pd.mark()
        assert pd.ask(req(f"off@{D}")) == DUNNO
        pd.wait_log(r"userdb: \S+ answers again", since=mark)
    finally:
        fake2.stop()


def test_an_idle_connection_closed_by_dovecot_costs_no_answer(env):
    """A Dovecot restart closes the idle connection: the next request
    connects again at once, nothing is answered per failure."""
    fake, start, _ = env
    pd = start()
    assert pd.ask(req(f"off@{D}")) == DUNNO
    mark = pd.mark()
    fake.drop_connections()
    pd.wait_log(r"userdb: .*closed the connection; will connect again when asked", since=mark)
    assert pd.ask(req(f"req@{D}")) == REJECT
    assert not [l for l in userdb_lines(pd, mark) if "error:" in l]


def test_refusing_socket(env):
    fake, start, _ = env
    fake.behaviour = "close"
    pd = start()
    assert pd.ask(req(f"off@{D}")) == TEMPFAIL
    assert pd.ask(req(f"req@{D}")) == TEMPFAIL
    assert re.search(r"closed the connection|Connection reset by peer|Broken pipe",
                     "\n".join(userdb_lines(pd)))


def test_socket_we_may_not_open_says_what_to_change(env):
    fake, start, sock = env
    os.chown(sock, 0, 0)                    # root's, 0600: not for nobody
    pd = start()
    m = pd.wait_log(r"userdb: userdb socket (\S+): permission denied: (.*)")
    assert "unix_listener tlsgate-userdb" in m.group(2)
    assert pd.ask(req(f"off@{D}")) == TEMPFAIL


def test_slow_socket_is_a_bounded_wait(env):
    fake, start, _ = env
    fake.behaviour = "slow"
    fake.delay = 4
    pd = start()
    t0 = time.monotonic()
    assert pd.ask(req(f"off@{D}"), timeout=10) == TEMPFAIL
    took = time.monotonic() - t0
    assert 1.0 <= took <= 3.5, took          # userdb_timeout = 2 (checked once a second)
    pd.wait_log(r"userdb: userdb socket \S+: no answer within 2s")


def test_other_connections_go_on_while_one_waits(env):
    fake, start, _ = env
    pd = start()
    assert pd.ask(req(f"off@{D}")) == DUNNO          # now cached
    fake.behaviour = "silent"
    result = {}
    t = threading.Thread(target=lambda: result.update(slow=pd.ask(req(f"req@{D}"), timeout=10)))
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert pd.ask(req(f"off@{D}")) == DUNNO           # from the cache, at once
    assert time.monotonic() - t0 < 0.5
    t.join()
    assert result["slow"] == TEMPFAIL


@pytest.mark.parametrize("behaviour", ["garbage", "fail"])
def test_garbage_and_fail_are_failures(env, behaviour):
    fake, start, _ = env
    fake.behaviour = behaviour
    pd = start()
    assert pd.ask(req(f"off@{D}")) == TEMPFAIL
    lines = userdb_lines(pd)
    text = "\n".join(lines)
    if behaviour == "garbage":
        assert "unexpected reply" in text and "\033" not in text
    else:
        assert "could not look up the account" in text and "backend down" in text
    fake.behaviour = "answer"
    time.sleep(1.1)
    assert pd.ask(req(f"off@{D}")) == DUNNO


def test_pipelined_requests_keep_their_order(env):
    """One connection, requests for several new accounts back to back: the
    answers come in request order, each with its account's verdict."""
    fake, start, _ = env
    pd = start()
    names = [f"off@{D}", f"req@{D}", f"nobody@{D}", f"audit@{D}"] * 3
    want = [DUNNO, REJECT, REJECT, DUNNO] * 3
    body = "".join("".join(f"{k}={v}\n" for k, v in req(n, instance=str(i)).items()) + "\n"
                   for i, n in enumerate(names))
    with socket.create_connection((mailstack.SERVER_ADDR, pd.port), 10) as s:
        s.sendall(body.encode())
        data = b""
        while data.count(b"\n\n") < len(names):
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    got = [a + "\n\n" for a in data.decode().split("\n\n") if a]
    assert got == want


def test_many_connections_many_new_accounts(env):
    fake, start, _ = env
    for i in range(400):
        fake.users[f"m{i}@{D}"] = {"tlsgate_mode": "off" if i % 2 else "require"}
    pd = start()
    errors = []

    def worker(k):
        for i in range(k, 400, 16):
            got = pd.ask(req(f"m{i}@{D}"))
            if got != (DUNNO if i % 2 else REJECT):
                errors.append((i, got))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(fake.lookups[f"m{i}@{D}"] for i in range(400)) == 400


def test_cache_size_bounds_the_cache(env):
    fake, start, _ = env
    pd = start("userdb_cache_size = 16\n")
    for i in range(200):
        pd.ask(req(f"n{i}@{D}"))
    pd.ask(req(f"n0@{D}"))
    assert fake.lookups[f"n0@{D}"] == 2        # evicted, asked again


def test_names_dovecot_could_not_read_are_not_sent(env):
    fake, start, _ = env
    pd = start()
    assert pd.ask(req("a" * 300 + f"@{D}")) == REJECT
    assert not [n for n in fake.lookups if n.startswith("aaa")]

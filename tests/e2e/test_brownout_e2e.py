"""Brownout windows against real servers: the Dovecot module (IMAP, POP3)
and Postfix with tlsgate-policyd (SMTP), with a window a few seconds long.

The policy with the window is put in force once (SIGHUP for
tlsgate-policyd, a reload for Dovecot); after that, nothing but the clock
moves: plaintext is let through (audit) before the window, refused with
the brownout text inside it, let through again after it, and neither
daemon reloads in between.
"""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest

import mailstack
from dovecot_tlsgate import MODULE, PolicyDir, events, passdb_block, pop3
from policyd_daemon import POLICYD, Policyd

PW = "pw-brownout"
RCPT = "rcpt@example.test"
LEAD = 12.0        # seconds from writing the policy to the window's start
LENGTH = 6         # seconds the window lasts
TOMORROW = (dt.date.today() + dt.timedelta(days=2)).isoformat()
BEFORE = "audit @example.test\n"


def window_policy(start: float) -> str:
    at = dt.datetime.fromtimestamp(int(start), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"require @example.test from={TOMORROW} brownout={at}/{LENGTH}s\n"


def policy_service(port: int) -> str:
    return (f"{{ inet:{mailstack.SERVER_ADDR}:{port}, "
            "{ default_action = 451 4.3.5 policy unavailable }, timeout=5s, try_limit=1 }")


@pytest.fixture(scope="module")
def servers(session_stack_factory, tmp_path_factory):
    if not MODULE.is_file() or not POLICYD.exists():
        pytest.fail("build the module and tlsgate-policyd first (make)")
    pol = PolicyDir(tmp_path_factory.mktemp("brownout-etc"), BEFORE)
    imap_stack = session_stack_factory(
        name="brownout-dovecot", start=False, postfix=False,
        dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE]))
    imap_stack.add_user("user@example.test", PW)
    imap_stack.start()
    pd = Policyd(tmp_path_factory.mktemp("brownout-policyd"), BEFORE).start()
    smtp_stack = session_stack_factory(
        name="brownout-postfix", start=False,
        postfix_kw=dict(policy_service=policy_service(pd.port)))
    for u in ("user", "rcpt"):
        smtp_stack.add_user(f"{u}@example.test", PW)
    smtp_stack.start()
    yield imap_stack, pol, pd, smtp_stack
    pd.stop()


def imap_plain(st):
    with st.imap("plain") as c:
        return c.try_login("user@example.test", PW)


def smtp_plain(st):
    with st.smtp("submission", "plain") as c:
        code, text = c.try_login("user@example.test", PW)
        assert code == 235, (code, text)
        return c.send_simple("user@example.test", [RCPT])


def sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def test_window_switches_on_and_off_by_the_clock(servers):
    imap_stack, pol, pd, smtp_stack = servers
    start = time.time() + LEAD
    text = window_policy(start)
    # In force everywhere, once.
    pol.write("main.conf", text)
    imap_stack.dovecot.reload()
    mark = pd.mark()
    pd.write_policy(text)
    pd.signal(signal.SIGHUP)
    pd.wait_log(r"policy reloaded from", since=mark)
    dmark, pmark = imap_stack.dovecot.log_mark(), pd.mark()
    assert time.time() < start - 2, "the servers took too long to reload"

    # before: audit
    assert imap_plain(imap_stack)[0] == "OK"
    assert [r[0] for r in smtp_plain(smtp_stack)] == [250, 250, 250]

    # inside: refused with the brownout text, TLS still fine
    sleep_until(start + 0.5)
    typ, why = imap_plain(imap_stack)
    assert typ == "NO"
    assert f"TLS will be required from {TOMORROW}. This was a test" in why
    with pop3(imap_stack, "plain") as c:
        ok, why = c.try_login("user@example.test", PW)
        assert not ok and "This was a test" in why
    with imap_stack.imap("starttls") as c:
        assert c.try_login("user@example.test", PW)[0] == "OK"
    replies = smtp_plain(smtp_stack)
    assert [r[0] for r in replies] == [250, 530], replies      # MAIL, RCPT
    assert f"TLS will be required from {TOMORROW}. This was a test" in replies[1][1]

    # after: audit again
    sleep_until(start + LENGTH + 0.5)
    assert imap_plain(imap_stack)[0] == "OK"
    assert [r[0] for r in smtp_plain(smtp_stack)] == [250, 250, 250]

    # the events: brownout=yes on the refusals only, mode as in force
    dev = [e for e in events(imap_stack.dovecot.log(dmark)) if e["tls"] == "none"]
    assert [(e["service"], e["verdict"], e["mode"], e.get("brownout")) for e in dev] == [
        ("imap", "audit", "audit", None),
        ("imap", "reject", "require", "yes"),
        ("pop3", "reject", "require", "yes"),
        ("imap", "audit", "audit", None)]
    pev = [e for e in pd.events(pmark) if e["tls"] == "none"]
    assert [(e["verdict"], e.get("brownout")) for e in pev] == [
        ("audit", None), ("reject", "yes"), ("audit", None)], pev
    # nothing reloaded: the clock alone switched
    assert "reload" not in pd.log(pmark)
    assert "reloaded" not in imap_stack.dovecot.log(dmark)


TLSGATE = POLICYD.parent / "tlsgate"


def tlsgate(policy, *args):
    import subprocess
    return subprocess.run([str(TLSGATE), "--policy", str(policy), *args],
                          capture_output=True, text=True, timeout=30)


def test_check_lists_windows_and_warns_about_past_ones(tmp_path):
    policy = tmp_path / "p.conf"
    policy.write_text("require @a.example from=2099-03-01 brownout=2020-01-01/1h,2099-02-01T09:00/4h\n"
                      "audit @b.example brownout=2099-01-10/1d\n")
    cp = tlsgate(policy, "check")
    assert cp.returncode == 0, cp.stderr
    assert f"{policy}:1: warning: the brownout window 2020-01-01 00:00 - 2020-01-01 01:00 " \
           "of @a.example is over" in cp.stderr
    assert f"  brownout: {policy}:1 @a.example 2099-02-01 09:00 - 2099-02-01 13:00\n" in cp.stdout
    assert f"  brownout: {policy}:2 @b.example 2099-01-10 00:00 - 2099-01-11 00:00\n" in cp.stdout
    cp = tlsgate(policy, "check", "--at", "2099-02-01T10:00")
    assert "2099-02-01 13:00 (in force now)" in cp.stdout


@pytest.mark.parametrize("rule, why", [
    ("require @a.example from=2099-03-01 brownout=2099-03-01T00:00/1h",
     "ends after from=2099-03-01"),
    ("require @a.example brownout=2099-02-01/1h", "brownout= needs from="),
    ("audit @a.example brownout=2099-02-01/1h,2099-02-01T00:30/1h", "overlap"),
    ("audit @a.example brownout=2099-02-01T25:00/1h", "expected START/DURATION"),
])
def test_check_rejects_bad_windows_with_file_and_line(tmp_path, rule, why):
    policy = tmp_path / "p.conf"
    policy.write_text("off *\n" + rule + "\n")
    cp = tlsgate(policy, "check")
    assert cp.returncode == 1
    assert f"{policy}:2: " in cp.stderr and why in cp.stderr, cp.stderr


def test_explain_at_shows_a_window_in_force(tmp_path):
    policy = tmp_path / "p.conf"
    policy.write_text("require @a.example from=2099-03-01 brownout=2099-02-01T09:00/4h\n")
    base = ["explain", "--user", "u@a.example", "--service", "imap", "--ip", "192.0.2.1",
            "--tls", "none"]
    cp = tlsgate(policy, *base, "--at", "2099-02-01T10:00")
    assert "verdict: reject" in cp.stdout
    assert "brownout window 2099-02-01 09:00 - 2099-02-01 13:00 in force" in cp.stdout
    assert "client sees: TLS will be required from 2099-03-01. This was a test" in cp.stdout
    cp = tlsgate(policy, *base, "--at", "2099-02-01T13:00", "--format=kv")
    assert cp.stdout.startswith("verdict=audit ") and "brownout" not in cp.stdout
    cp = tlsgate(policy, *base, "--at", "2099-02-01T12:59:59", "--format=kv")
    assert cp.stdout.strip().endswith("brownout=yes")

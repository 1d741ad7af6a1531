"""Brownout windows against real servers: the Dovecot module (IMAP, POP3)
and Postfix with tlsgate-policyd (SMTP), with a window a few seconds long.

The policy with the window is put in force once (SIGHUP for
tlsgate-policyd, a reload for Dovecot); after that, nothing but the clock
moves: plaintext is let through (audit) before the window, refused with
the brownout text inside it, let through again after it, and neither
daemon reloads in between. Then `tlsgate report` reads the two real logs
(Dovecot's log_path file; tlsgate-policyd's stderr stamped the way
`journalctl -o short-iso` shows it) and lists who was refused in the
window, who moved to TLS after it and who is still in plaintext.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time

import pytest

import mailstack
from dovecot_tlsgate import MODULE, PolicyDir, events, passdb_block, pop3
import policyd_daemon
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


class StampedPolicyd(Policyd):
    """tlsgate-policyd in the foreground, each stderr line written to its
    log with an RFC 3339 timestamp and a host in front, as `journalctl -o
    short-iso` shows it, so that the report can place its events in time."""

    def start(self, timeout: float = 10) -> "StampedPolicyd":
        self.proc = subprocess.Popen([str(POLICYD), "-c", str(self.conf), "-f"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        policyd_daemon._running.append(self)
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()
        mailstack.wait_for(lambda: self.proc.poll() is not None or self._listening(),
                           timeout, what="tlsgate-policyd listening")
        assert self.proc.poll() is None, self.log()
        return self

    def _listening(self) -> bool:
        import socket
        try:
            socket.create_connection((mailstack.SERVER_ADDR, self.port), 1).close()
            return True
        except OSError:
            return False

    def _pump(self, pipe) -> None:
        with open(self.logpath, "ab", buffering=0) as out:
            for line in pipe:
                stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
                out.write(f"{stamp} mail.test ".encode() + line)


@pytest.fixture(scope="module")
def servers(session_stack_factory, tmp_path_factory):
    if not MODULE.is_file() or not POLICYD.exists():
        pytest.fail("build the module and tlsgate-policyd first (make)")
    pol = PolicyDir(tmp_path_factory.mktemp("brownout-etc"), BEFORE)
    imap_stack = session_stack_factory(
        name="brownout-dovecot", start=False, postfix=False,
        dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE]))
    imap_stack.add_user("user@example.test", PW)
    imap_stack.add_user("mover@example.test", PW)
    imap_stack.start()
    pd = StampedPolicyd(tmp_path_factory.mktemp("brownout-policyd"), BEFORE).start()
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
    with imap_stack.imap("plain") as c:
        assert c.try_login("mover@example.test", PW)[0] == "NO"
    replies = smtp_plain(smtp_stack)
    assert [r[0] for r in replies] == [250, 530], replies      # MAIL, RCPT
    assert f"TLS will be required from {TOMORROW}. This was a test" in replies[1][1]

    # after: audit again; mover@ has moved to TLS
    sleep_until(start + LENGTH + 1.5)
    assert imap_plain(imap_stack)[0] == "OK"
    assert [r[0] for r in smtp_plain(smtp_stack)] == [250, 250, 250]
    with imap_stack.imap("starttls") as c:
        assert c.try_login("mover@example.test", PW)[0] == "OK"

    # the events: brownout=yes on the refusals only, mode as in force
    dev = [e for e in events(imap_stack.dovecot.log(dmark)) if e["tls"] == "none"]
    assert [(e["user"], e["service"], e["verdict"], e["mode"], e.get("brownout"))
            for e in dev] == [
        ("user@example.test", "imap", "audit", "audit", None),
        ("user@example.test", "imap", "reject", "require", "yes"),
        ("user@example.test", "pop3", "reject", "require", "yes"),
        ("mover@example.test", "imap", "reject", "require", "yes"),
        ("user@example.test", "imap", "audit", "audit", None)]
    pev = [e for e in pd.events(pmark) if e["tls"] == "none"]
    assert [(e["verdict"], e.get("brownout")) for e in pev] == [
        ("audit", None), ("reject", "yes"), ("audit", None)], pev
    # nothing reloaded: the clock alone switched
    assert "reload" not in pd.log(pmark)
    assert "reloaded" not in imap_stack.dovecot.log(dmark)

    assert_brownout_report(imap_stack, pol, pd, start)


def report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TLSGATE), *args], capture_output=True, text=True, timeout=30)


def iso_time(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def assert_brownout_report(imap_stack, pol, pd, start: float) -> None:
    """The real report on the real logs: user@ was refused (IMAP, POP3,
    SMTP) and is seen in plaintext after the window, mover@ was refused
    (IMAP) and logged in with TLS only after it."""
    logs = [str(imap_stack.dovecot.logfile.path), str(pd.logpath)]
    cp = report("--no-config", "report", "--json", *logs)
    assert cp.returncode == 0, cp.stderr
    rep = json.loads(cp.stdout)
    refused = {r["account"]: r for r in rep["brownouts"]["refused"]}
    assert sorted(refused) == ["mover@example.test", "user@example.test"]
    user, mover = refused["user@example.test"], refused["mover@example.test"]
    assert user["services"] == ["imap", "pop3", "smtp"] and user["refusals"] == 3
    assert user["clients"] == [mailstack.CLIENT_ADDR] and user["afterwards"] == "plaintext"
    assert mover["services"] == ["imap"] and mover["refusals"] == 1
    assert mover["afterwards"] == "tls"
    for r in (user, mover):
        assert start - 1 <= iso_time(r["last_refusal"]) <= start + LENGTH
    [moved] = rep["brownouts"]["moved_to_tls"]
    assert moved["account"] == "mover@example.test"
    assert iso_time(moved["first_tls_login"]) >= start + LENGTH
    [still] = rep["brownouts"]["still_plaintext"]
    assert still["account"] == "user@example.test"
    assert iso_time(still["last_plaintext"]) >= start + LENGTH
    [dom] = rep["domains"]
    assert (dom["brownout_refused_accounts"], dom["brownout_moved_to_tls_accounts"],
            dom["brownout_still_plaintext_accounts"]) == (2, 1, 1)
    # a refusal in a window still counts as would-break, also by the
    # policy on its final date
    accounts = {a["account"]: a for a in rep["accounts"]}
    assert accounts["mover@example.test"]["would_break"] is True
    cp = report("-c", str(pol.conf), "report", "--at", TOMORROW, "--json", *logs)
    assert cp.returncode == 0, cp.stderr
    rep = json.loads(cp.stdout)
    assert rep["domains"][0]["would_break_accounts"] == 2
    assert len(rep["brownouts"]["refused"]) == 2

    text = report("--no-config", "report", *logs).stdout
    assert "REFUSED IN BROWNOUT WINDOWS - these break on the final date (2)" in text
    assert "\nMOVED TO TLS AFTER A BROWNOUT (1)\nACCOUNT " in text
    assert "\nSTILL PLAINTEXT AFTER A BROWNOUT (1)\nACCOUNT " in text
    moved_list = text.split("MOVED TO TLS AFTER A BROWNOUT (1)")[1].split("\n\n")[0]
    assert "mover@example.test" in moved_list and "user@example.test" not in moved_list


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
    assert " brownout=yes " in cp.stdout and cp.stdout.strip().endswith("source=file")

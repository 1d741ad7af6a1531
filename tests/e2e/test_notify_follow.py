"""`tlsgate notify --follow`: a notice at an account's first refusal.

Real Dovecot with the tlsgate passdb (auth penalty on, as Dovecot ships),
Postfix with Dovecot SASL, and real mail programs from Debian that hide the
server's refusal text, each refused in plaintext with its own account:
fetchmail (IMAP), mbsync (IMAP), curl (POP3), mutt (Dovecot submission),
msmtp and s-nail (Postfix submission, SMTP AUTH through Dovecot). `notify
--follow` follows Dovecot's log file; its sendmail is a script that keeps
each message it is given (and sleeps for one account, the slow sendmail).

The client invocations are small functions (`run_*`) so that a shared
module of mail clients can take their place.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import mailstack as ms
from dovecot_tlsgate import MODULE, PolicyDir, passdb_block, wait_event

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
TLSGATE = BUILD / "tlsgate"
TEMPLATES = REPO / "docs" / "templates"

D = ms.DOMAIN          # example.test
OUTSIDE = "elsewhere.test"
PW = "Secret-123"
CLIENTS = ["fetchmail", "mbsync", "curl", "mutt", "msmtp", "snail"]

# `require *` refuses everyone in plaintext, but only example.test is a
# domain the policy names: notices go there and nowhere else.
RULES = f"""\
require  *
require  @{D}
"""

CLIENT_TIMEOUT = 30


# ---- the mail programs (one refused plaintext login each) ----

def _run(argv, home: Path, stdin: str | None = None, env: dict | None = None):
    e = dict(os.environ, HOME=str(home), LC_ALL="C.UTF-8")
    e.update(env or {})
    return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT, cwd=home, env=e)


def run_fetchmail(st, user: str, home: Path):
    """fetchmail says "Authorization failure" and blames the password."""
    rc = home / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 service {st.dovecot.ports["imap"]} protocol IMAP '
                  f'auth password user "{user}" password "{PW}" sslproto "" '
                  f'sslcertck\n')
    rc.chmod(0o600)
    return _run(["fetchmail", "-f", str(rc), "--check", "--nosyslog", "-N",
                 "--pidfile", str(home / "fetchmail.pid")], home)


def run_mbsync(st, user: str, home: Path):
    cfg = home / "mbsyncrc"
    (home / "mail").mkdir(exist_ok=True)
    cfg.write_text(f"""IMAPAccount a
Host 127.0.0.1
Port {st.dovecot.ports["imap"]}
User {user}
Pass {PW}
SSLType None
AuthMechs LOGIN

IMAPStore a-far
Account a

MaildirStore a-near
Path {home}/mail/
Inbox {home}/mail/INBOX

Channel a
Far :a-far:
Near :a-near:
Patterns INBOX
""")
    return _run(["mbsync", "-c", str(cfg), "a"], home)


def run_curl(st, user: str, home: Path):
    """curl: "(67) Login denied"."""
    return _run(["curl", "-sS", "--interface", ms.CLIENT_ADDR, "--max-time", "20",
                 f"pop3://127.0.0.1:{st.dovecot.ports['pop3']}/", "--user", f"{user}:{PW}"],
                home)


def run_mutt(st, user: str, home: Path):
    """mutt in batch mode sending through Dovecot's submission service."""
    rc = home / "muttrc"
    rc.write_text(f"""set smtp_url = "smtp://{user.replace('@', '%40')}@127.0.0.1:{st.dovecot.ports['submission']}/"
set smtp_pass = "{PW}"
set ssl_starttls = no
set ssl_force_tls = no
set from = "{user}"
set copy = no
set record = ""
""")
    return _run(["mutt", "-n", "-F", str(rc), "-s", "hello", f"alice@{D}"], home,
                stdin="hello\n", env={"TERM": "dumb"})


def run_msmtp(st, user: str, home: Path):
    cfg = home / "msmtprc"
    cfg.write_text("")
    cfg.chmod(0o600)
    return _run(["msmtp", "-C", str(cfg), "--host=127.0.0.1",
                 f"--port={st.postfix.ports['submission']}", "--tls=off", "--auth=plain",
                 f"--user={user}", f"--passwordeval=echo {PW}", f"--from={user}",
                 f"--source-ip={ms.CLIENT_ADDR}", f"alice@{D}"], home,
                stdin="Subject: hello\n\nhello\n")


def run_snail(st, user: str, home: Path):
    url = (f"smtp://{user.replace('@', '%40')}:{PW}@127.0.0.1:"
           f"{st.postfix.ports['submission']}")
    return _run(["s-nail", "-:/", "-Sv15-compat", "-Sttycharset=utf-8", f"-Smta={url}",
                 "-Ssmtp-auth=plain", f"-Sfrom={user}", "-s", "hello", f"alice@{D}"], home,
                stdin="hello\n")


RUNNERS = {"fetchmail": run_fetchmail, "mbsync": run_mbsync, "curl": run_curl,
           "mutt": run_mutt, "msmtp": run_msmtp, "snail": run_snail}


# ---- the follower and its stand-in sendmail ----

SENDMAIL = """#!/bin/sh
# Keeps each message as a file; sleeps first for the slow account.
tmp=$(mktemp "{out}/.part.XXXXXX")
cat > "$tmp"
if grep -q '^To: slow@' "$tmp"; then sleep 60; fi
mv "$tmp" "{out}/msg.$(date +%s%N).$$"
"""


class Follower:
    def __init__(self, world):
        self.world = world
        self.proc = None

    def start(self):
        w = self.world
        err = w["tmp"] / "follow.err"
        since = err.stat().st_size if err.exists() else 0
        self.stderr = open(err, "ab")
        self.proc = subprocess.Popen(
            [str(TLSGATE), "-c", str(w["conf"]), "notify", "--follow", "--send",
             "--sendmail", str(w["sendmail"]), "--from", f"IT <postmaster@{D}>",
             "--state", str(w["state"]), "--templates", str(TEMPLATES),
             "--send-timeout", "30", str(w["log"])],
            stdin=subprocess.DEVNULL, stderr=self.stderr)
        # this process's line, not one of an earlier start
        ms.wait_for(lambda: b"following" in err.read_bytes()[since:], timeout=10)
        return self

    def summary(self) -> str:
        """The counts the follower printed when it stopped last."""
        lines = (self.world["tmp"] / "follow.err").read_text().splitlines()
        return [x for x in lines if "stopped:" in x][-1]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.stderr.close()
        return rc


def notices(world) -> dict[str, list]:
    by = {}
    for f in sorted(world["out"].glob("msg.*")):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        by.setdefault(str(msg["To"]), []).append(msg)
    return by


def wait_notice(world, account: str, timeout: float = 10.0):
    return ms.wait_for(lambda: notices(world).get(account), timeout=timeout)


@pytest.fixture(scope="module")
def world(session_stack_factory, tmp_path_factory):
    if not TLSGATE.is_file() or not MODULE.is_file():
        pytest.skip("not built (run make)")
    etc = tmp_path_factory.mktemp("follow-etc")
    pol = PolicyDir(etc, RULES)
    tmp = tmp_path_factory.mktemp("follow")
    ms.make_traversable(tmp)
    out = tmp / "out"
    out.mkdir()
    sendmail = tmp / "sendmail"
    sendmail.write_text(SENDMAIL.format(out=out))
    sendmail.chmod(0o755)
    st = session_stack_factory(
        name="follow", start=False,
        dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                        auth_penalty=True))
    for c in CLIENTS:
        st.add_user(f"{c}@{D}", PW)
    for u in (f"again@{D}", f"slow@{D}", f"quick@{D}", f"late@{D}", f"mark1@{D}",
              f"mark2@{D}", f"someone@{OUTSIDE}"):
        st.add_user(u, PW)
    st.start()
    w = dict(stack=st, conf=pol.conf, log=Path(st.dovecot.logfile.path), tmp=tmp, out=out,
             sendmail=sendmail, state=tmp / "notify.state")
    w["follower"] = Follower(w).start()
    yield w
    if w["follower"].proc.poll() is None:
        w["follower"].stop()


def refuse_imap(st, user: str):
    mark = st.dovecot.log_mark()
    with st.imap() as c:
        assert c.try_login(user, PW)[0] == "NO"
    wait_event(st.dovecot, mark, user=user, verdict="reject")


@pytest.mark.parametrize("client", CLIENTS)
def test_refused_client_gets_one_notice(world, client, tmp_path):
    st = world["stack"]
    user = f"{client}@{D}"
    mark = st.dovecot.log_mark()
    cp = RUNNERS[client](st, user, tmp_path)
    assert cp.returncode != 0, (cp.stdout, cp.stderr)
    wait_event(st.dovecot, mark, user=user, verdict="reject")
    got = wait_notice(world, user)
    assert len(got) == 1
    msg = got[0]
    assert msg["From"] == f"IT <postmaster@{D}>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert user in msg.get_content()


def test_refused_twice_one_notice_also_after_restart(world):
    st = world["stack"]
    user = f"again@{D}"
    refuse_imap(st, user)
    wait_notice(world, user)
    refuse_imap(st, user)
    # restart: SIGTERM saves and exits 0; the state file keeps the account
    assert world["follower"].stop() == 0
    assert user in world["state"].read_text()
    world["follower"] = Follower(world).start()
    refuse_imap(st, user)
    # a later account's notice shows the follower read past the refusal
    refuse_imap(st, f"mark1@{D}")
    wait_notice(world, f"mark1@{D}")
    time.sleep(0.5)
    assert len(notices(world)[user]) == 1
    # the restarted follower read that refusal and skipped it
    assert world["follower"].stop() == 0
    assert "1 skipped as notified recently" in world["follower"].summary()
    world["follower"] = Follower(world).start()


def test_no_notice_outside_the_policy_domains(world):
    st = world["stack"]
    refuse_imap(st, f"someone@{OUTSIDE}")
    refuse_imap(st, f"mark2@{D}")
    wait_notice(world, f"mark2@{D}")
    time.sleep(0.5)
    assert not any(OUTSIDE in to for to in notices(world))


def test_sighup_reloads_notify_domains(world):
    """SIGHUP rereads tlsgate.conf: a domain added to notify_domains gets
    notices from then on, without a restart."""
    st = world["stack"]
    with open(world["conf"], "a") as f:
        f.write(f"notify_domains = {OUTSIDE}\n")
    world["follower"].proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)     # handled at the follower's next turn (200 ms at most)
    refuse_imap(st, f"someone@{OUTSIDE}")
    got = wait_notice(world, f"someone@{OUTSIDE}")
    assert len(got) == 1
    assert world["follower"].proc.poll() is None


def test_slow_sendmail_does_not_stop_other_notices(world):
    st = world["stack"]
    refuse_imap(st, f"slow@{D}")
    start = time.monotonic()
    refuse_imap(st, f"quick@{D}")
    wait_notice(world, f"quick@{D}", timeout=10)
    refuse_imap(st, f"late@{D}")
    wait_notice(world, f"late@{D}", timeout=10)
    assert time.monotonic() - start < 15
    assert f"slow@{D}" not in notices(world)
    # SIGTERM while the slow sendmail runs: it is stopped after the grace
    # time, not recorded (the next refusal tries again), exit 0
    start = time.monotonic()
    assert world["follower"].stop() == 0
    assert time.monotonic() - start < 8
    state = world["state"].read_text()
    assert f"slow@{D}" not in state and f"quick@{D}" in state
    assert b"notice to slow@example.test took longer" not in \
        (world["tmp"] / "follow.err").read_bytes()

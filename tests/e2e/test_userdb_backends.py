"""One account database, one verdict: the mode a mailbox has in the
provider's own database decides for every part - the Dovecot module (at
login), tlsgate-policyd (at RCPT, asking Dovecot's auth service over the
dedicated `tlsgate-userdb` listener) and `tlsgate explain/report/notify`.

For each real backend (SQLite, PostgreSQL, OpenLDAP; userdb_backends.py)
one world: the backend, Dovecot 2.3 with the sql/ldap passdb + userdb of
docs/dovecot.md and the tlsgate passdb, Postfix with Dovecot SASL asking
tlsgate-policyd, all reading one tlsgate.conf. The policy files say
`require @example.test`; the database says per mailbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import mailstack as ms
from dovecot_tlsgate import MODULE, passdb_block, pop3, wait_event
from policyd_daemon import POLICYD, Policyd
from userdb_backends import BACKENDS, tlsgate_listener

REPO = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
TLSGATE = BUILD / "tlsgate"
D = ms.DOMAIN
PW = "Secret-123"
POLICY = f"require @{D}\n"
MESSAGE = "TLS required: use port 465 or STARTTLS"
MODES = {"req": "require", "off": "off", "none": None, "flip": "off", "flush": "off",
         "rcpt": None, "bad": "audit"}
DOVECOT_CACHE_TTL = 4
POLICYD_CACHE_TTL = 2


def u(name: str) -> str:
    return f"{name}@{D}"


pytestmark = pytest.mark.skipif(
    not (MODULE.is_file() and POLICYD.is_file() and TLSGATE.is_file()),
    reason="build first (make)")


@pytest.fixture(scope="module", params=list(BACKENDS))
def world(request, session_stack_factory, tmp_path_factory):
    name = request.param
    base = tmp_path_factory.mktemp(f"userdb-{name}")
    os.chmod(base, 0o755)
    ms.make_traversable(base)
    db = BACKENDS[name](base / name).start()
    try:
        for local, mode in MODES.items():
            db.add(u(local), PW, mode)
        port = ms.free_port()
        uid, gid = ms._uid_gid("mail")
        st = session_stack_factory(name=f"userdb-{name}", start=False,
                                   dovecot_kw=dict(auth_modules=[MODULE]), postfix_kw=dict(
            policy_service=f"{{ inet:{ms.SERVER_ADDR}:{port}, timeout=10s, try_limit=1 }}"))
        sock = st.dovecot.base_dir / "tlsgate-userdb"
        pd = Policyd(base / "policyd", POLICY, port=port, conf_extra=(
            f"userdb = dovecot:{sock}\nuserdb_cache_ttl = {POLICYD_CACHE_TTL}\n"
            "userdb_timeout = 5\nfailure = tempfail\n"))
        passdb, userdb = db.passdb_userdb(st.dovecot.home_root, uid, gid)
        st.dovecot.passdb_extra = passdb + passdb_block(pd.conf)
        st.dovecot.config_extra = (
            userdb + tlsgate_listener("nobody") +
            f"auth_cache_size = 1M\nauth_cache_ttl = {DOVECOT_CACHE_TTL} secs\n"
            f"auth_cache_negative_ttl = {DOVECOT_CACHE_TTL} secs\n")
        st.start()
        pd.start()
    except BaseException:
        db.stop()
        raise
    yield st, pd, db
    pd.stop()
    db.stop()


def smtp_login(st, who: str, mode: str = "plain"):
    c = st.smtp("submission", mode)
    return c, c.try_login(u(who), PW)


def send(st, who: str, mode: str = "plain") -> list[tuple[int, str]]:
    c, (code, text) = smtp_login(st, who, mode)
    with c:
        assert code == 235, (who, mode, code, text)
        return c.send_simple(u(who), [u("rcpt")])


def imap_login(st, who: str, mode: str = "plain") -> tuple[str, str]:
    with st.imap(mode) as c:
        return c.try_login(u(who), PW)


def rcpt_verdict(pd, who: str) -> str:
    """What tlsgate-policyd answers for a plaintext SMTP AUTH of `who`."""
    return pd.ask({"request": "smtpd_access_policy", "protocol_state": "RCPT",
                   "client_address": "127.0.0.2", "encryption_protocol": "",
                   "sasl_method": "PLAIN", "sasl_username": u(who)})


def test_the_listener_is_ours_alone(world):
    st, pd, db = world
    s = os.stat(st.dovecot.base_dir / "tlsgate-userdb")
    assert s.st_mode & 0o777 == 0o600 and s.st_uid == ms._uid_gid("nobody")[0]
    pd.wait_log(r"userdb: account modes from dovecot:\S+tlsgate-userdb")


def test_require_mailbox_refused_in_plaintext_fine_over_tls(world):
    st, pd, db = world
    st_, text = imap_login(st, "req")
    assert st_ == "NO" and text.startswith("[PRIVACYREQUIRED]"), text
    with pop3(st) as c:
        ok, text = c.try_login(u("req"), PW)
        assert not ok and "[SYS/PERM]" in text, text
    c, (code, text) = smtp_login(st, "req")
    c.close()
    assert code == 535 and MESSAGE in text, (code, text)
    assert imap_login(st, "req", "starttls")[0] == "OK"
    with pop3(st, "starttls") as c:
        assert c.try_login(u("req"), PW)[0]
    assert [r[0] for r in send(st, "req", "starttls")] == [250, 250, 250]


def test_off_mailbox_sends_in_plaintext_through_postfix_and_policyd(world):
    """The bug this closes: the database says off, the domain file says
    require; Dovecot lets the login through, and Postfix, asking
    tlsgate-policyd, accepts the mail."""
    st, pd, db = world
    mark, dmark = pd.mark(), st.postfix.log_mark()
    replies = send(st, "off")
    assert [r[0] for r in replies] == [250, 250, 250], replies
    e = pd.wait_events(1, since=mark, user=u("off"))[0]
    assert (e["rule"], e["mode"], e["verdict"]) == ("userdb", "off", "allow"), e
    st.postfix.wait_delivered(u("rcpt"), since=dmark)
    assert imap_login(st, "off")[0] == "OK"


def test_mailbox_without_a_mode_follows_the_files(world):
    st, pd, db = world
    c, (code, text) = smtp_login(st, "none")
    c.close()
    assert code == 535, (code, text)
    assert rcpt_verdict(pd, "none").startswith("action=530 5.7.0")
    assert rcpt_verdict(pd, "nobody-here").startswith("action=530 5.7.0")   # unknown user


def wait_until(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.25)


def test_a_change_takes_effect_after_the_cache_ttls(world):
    st, pd, db = world
    assert imap_login(st, "flip")[0] == "OK"            # now in Dovecot's cache
    assert rcpt_verdict(pd, "flip") == "action=DUNNO\n\n"   # and in tlsgate-policyd's
    t0 = time.monotonic()
    db.set_mode(u("flip"), "require")                   # the control panel
    if time.monotonic() - t0 < DOVECOT_CACHE_TTL - 2:
        assert imap_login(st, "flip")[0] == "OK"        # still cached
    wait_until(lambda: imap_login(st, "flip")[0] == "NO", DOVECOT_CACHE_TTL + 2,
               "Dovecot sees the new mode")
    wait_until(lambda: rcpt_verdict(pd, "flip").startswith("action=530"),
               DOVECOT_CACHE_TTL + POLICYD_CACHE_TTL + 2, "tlsgate-policyd sees the new mode")
    db.set_mode(u("flip"), "off")


def test_a_change_takes_effect_at_once_after_a_cache_flush(world):
    st, pd, db = world
    assert imap_login(st, "flush")[0] == "OK"
    assert rcpt_verdict(pd, "flush") == "action=DUNNO\n\n"
    db.set_mode(u("flush"), "require")
    st.dovecot.doveadm("auth", "cache", "flush", u("flush"))
    assert imap_login(st, "flush")[0] == "NO"
    mark = pd.mark()
    pd.signal(signal.SIGHUP)
    pd.wait_log(r"SIGHUP: forgetting \d+ cached account answer", since=mark)
    assert rcpt_verdict(pd, "flush").startswith("action=530 5.7.0")
    db.set_mode(u("flush"), "off")
    st.dovecot.doveadm("auth", "cache", "flush", u("flush"))


def tlsgate(*args) -> subprocess.CompletedProcess:
    p = subprocess.run([str(TLSGATE), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def test_explain_report_and_notify_agree_with_the_servers(world, tmp_path):
    st, pd, db = world
    for who in ("off", "req", "none"):
        imap_login(st, who)                             # events in Dovecot's log
        rcpt_verdict(pd, who)                           # and in tlsgate-policyd's
    kv = {who: tlsgate("-c", pd.conf, "explain", "--user", u(who), "--service", "smtp",
                       "--ip", "127.0.0.2", "--tls", "none", "--format=kv").stdout
          for who in ("off", "req", "none")}
    assert "verdict=allow rule=userdb mode=off" in kv["off"] and "source=userdb" in kv["off"]
    assert "verdict=reject rule=userdb mode=require" in kv["req"]
    assert "verdict=reject" in kv["none"] and "source=file" in kv["none"]
    logs = [st.dovecot.logfile.path, pd.logpath]
    report = json.loads(tlsgate("-c", pd.conf, "report", "--json", *logs).stdout)
    acc = {a["account"]: a for a in report["accounts"]}
    assert acc[u("off")]["would_break"] is False
    assert acc[u("req")]["would_break"] is True
    assert acc[u("none")]["would_break"] is True
    notices = tlsgate("-c", pd.conf, "notify", "--dry-run", *logs).stdout
    assert f"would notify {u('req')}" in notices and f"would notify {u('none')}" in notices
    assert f"would notify {u('off')} " not in notices


def test_the_world_readable_default_socket_is_refused_with_a_clear_message(world, tmp_path):
    """Dovecot restricts a peer of its mode-0666 auth-userdb socket to
    accounts of the peer's own uid: tlsgate-policyd (as nobody) says so and
    names the listener to add, and answers per failure =."""
    st, pd, db = world
    if db.name != "sqlite":
        pytest.skip("the socket's rules do not depend on the backend")
    other = Policyd(tmp_path / "pd-default", POLICY, conf_extra=(
        f"userdb = dovecot:{st.dovecot.base_dir / 'auth-userdb'}\n")).start()
    try:
        m = other.wait_log(r"warning: userdb: (.*)")
        assert "world-accessible" in m.group(1) and "unix_listener tlsgate-userdb" in m.group(1)
        assert rcpt_verdict(other, "off").startswith("action=451 4.7.0")
        line = other.wait_log(r"error: userdb: (.*)").group(1)
        assert "auth-userdb" in line and "unix_listener tlsgate-userdb" in line
        st.dovecot.wait_log(r"client doesn't have lookup permissions for this user")
    finally:
        other.stop()

"""Forged events: the attacks of docs/security.md, promise 7, against a
real Postfix, a real Dovecot with the tlsgate passdb, and a real
tlsgate-policyd; then `tlsgate report` and `tlsgate notify` on their logs.

- Anyone who can send mail to port 25 puts the event tag into a Message-ID;
  Postfix's cleanup logs every Message-ID (`cleanup[PID]: QUEUEID:
  message-id=<...>`, Postfix's default).
- Anyone who can try a login puts it into a login name; with
  `auth_verbose = yes` (and `auth_username_chars` empty, so the name is
  taken as sent) Dovecot's auth process logs the name.
- Anyone who can reach the policy server makes tlsgate-policyd write real
  events about any name: an outside domain, free text as client address is
  impossible (Postfix's attribute is logged as a checked address), but a
  name with a right-to-left override is not.

None of the forged lines may count as an event, and no notice may go to a
domain the policy does not name.
"""

from __future__ import annotations

import json
import subprocess

import pytest

import mailstack as ms
from dovecot_tlsgate import MODULE, PolicyDir, passdb_block, wait_event
from policyd_daemon import POLICYD, Policyd

from test_report_e2e import TLSGATE, TEMPLATES

D = ms.DOMAIN
PW = "Secret-123"
RULES = f"audit *\nrequire @{D}\n"


def forged(user: str, client: str = "192.0.2.66") -> str:
    return (f"tlsgate: service=smtp user={user} client={client} tls=none "
            f"verdict=reject mode=require rule=r mech=PLAIN")


@pytest.fixture(scope="module")
def world(session_stack_factory, tmp_path_factory):
    for p in (TLSGATE, POLICYD, MODULE):
        if not p.is_file():
            pytest.skip(f"not built: {p} (run make)")
    pd = Policyd(tmp_path_factory.mktemp("forged-pd"), RULES).start()
    etc = tmp_path_factory.mktemp("forged-etc")
    pol = PolicyDir(etc, RULES)
    try:
        st = session_stack_factory(
            name="forged", start=False,
            dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                            config_extra="auth_verbose = yes\nauth_username_chars =\n"),
            postfix_kw=dict(policy_service=pd.port))
        st.add_user(f"alice@{D}", PW)
        st.start()
        yield dict(stack=st, pd=pd, conf=pd.conf, tmp=etc)
    finally:
        pd.stop()


def _logs(world):
    st = world["stack"]
    return [st.dovecot.logfile.path, st.postfix.logfile.path, world["pd"].logpath]


def _report(world) -> dict:
    cp = subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "report", "--json",
                         *map(str, _logs(world))], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def test_forged_events_do_not_count(world):
    st, pd = world["stack"], world["pd"]
    dmark, pmark = st.dovecot.log_mark(), st.postfix.log_mark()

    # 1. a Message-ID holding the tag, through port 25
    mid = forged("mid-victim@gmail.example")
    with st.smtp("smtp", "plain") as c:
        assert c.mail("someone@outside.test")[0] == 250
        assert c.rcpt(f"alice@{D}")[0] == 250
        msg = (f"From: <someone@outside.test>\r\nTo: <alice@{D}>\r\nSubject: hi\r\n"
               f"Message-ID: <{mid}>\r\n\r\nhello\r\n")
        assert c.data(msg.encode())[0] == 250
    st.postfix.wait_log(r"cleanup\[\d+\]: \w+: message-id=<tlsgate: service=smtp "
                        r"user=mid-victim@gmail\.example", since=pmark)

    # 2. a login name holding the tag, logged by auth_verbose
    with st.imap() as c:
        assert c.try_authenticate(forged("login-victim@gmail.example"), "x", "PLAIN")[0] == "NO"
    st.dovecot.wait_log(r"auth: Info: .*tlsgate: service=smtp user=login-victim@gmail\.example",
                        since=dmark)

    # 3. the policy server asked directly about an outside name and a name
    #    with a right-to-left override (real events, written by policyd)
    base = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
            "protocol_name": "ESMTP", "client_address": "192.0.2.66",
            "sasl_method": "PLAIN", "encryption_protocol": ""}
    assert "action=" in pd.ask({**base, "sasl_username": "outsider@gmail.example",
                                "instance": "a1"})
    assert "action=" in pd.ask({**base, "sasl_username": f"adm\u202egro.{D}@{D}",
                                "instance": "a2"})
    pd.wait_events(1, user="outsider@gmail.example")

    # 4. a real plaintext login of a require account: refused, an event
    with st.imap() as c:
        assert c.try_login(f"alice@{D}", PW)[0] == "NO"
    wait_event(st.dovecot, dmark, user=f"alice@{D}", verdict="reject")

    data = _report(world)
    accounts = {a["account"] for a in data["accounts"]}
    assert f"alice@{D}" in accounts
    assert "mid-victim@gmail.example" not in accounts
    assert "login-victim@gmail.example" not in accounts
    assert not any("\u202e" in a for a in accounts)
    assert data["input"]["ignored"] >= 2          # the Message-ID and the login name
    assert data["input"]["implausible"] >= 1      # the override
    assert data["input"]["malformed"] == 0

    # notify: alice only; not the outside domain the policy does not name
    out = world["tmp"] / "out"
    out.mkdir()
    cp = subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "notify", "--out", str(out),
                         "--from", f"postmaster@{D}", "--templates", str(TEMPLATES),
                         *map(str, _logs(world))], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"alice@{D}.eml"]
    assert "1 account(s) skipped: their domain is neither named" in cp.stderr
    text = (out / f"alice@{D}.eml").read_text()
    assert "gmail" not in text and "tlsgate:" not in text

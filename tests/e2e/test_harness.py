"""Self-tests of the e2e harness (mailstack.py) with plain Dovecot/Postfix:
no tlsgate code is involved, except the tiny test passdb module used to prove
that Dovecot(auth_modules=...) loads modules from outside the system dir."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import time

import pytest

import mailstack as ms

ALICE, ALICE_PW = "alice@example.test", "alice-pw"

TGTEST_PASSDB = """
passdb {
  driver = tgtest
  skip = unauthenticated
}
"""


def login_line(dv: ms.Dovecot, proto: str, since: int) -> str:
    return dv.wait_log(rf"^.*{proto}-login: Info: Login: user=<{re.escape(ALICE)}>.*$",
                       since=since).group(0)


# ---------------------------------------------------------------- certificates

def _verify(ca, cert, *extra):
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), *extra, str(cert)],
                          capture_output=True, text=True)


def test_certs(certs):
    ca = certs.ca.cert
    assert _verify(ca, certs.server.cert, "-verify_hostname", "mail.test").returncode == 0
    assert _verify(ca, certs.server.cert, "-verify_ip", "127.0.0.1").returncode == 0
    assert _verify(ca, certs.server.cert, "-verify_hostname", "localhost").returncode == 0
    r = _verify(ca, certs.wrong_name.cert, "-verify_hostname", "mail.test")
    assert r.returncode != 0 and "hostname mismatch" in r.stdout + r.stderr
    assert _verify(ca, certs.wrong_name.cert).returncode == 0  # only the name is wrong
    r = _verify(ca, certs.expired.cert)
    assert r.returncode != 0 and "expired" in r.stdout + r.stderr
    r = _verify(ca, certs.not_yet_valid.cert)
    assert r.returncode != 0 and "not yet valid" in r.stdout + r.stderr
    assert _verify(ca, certs.self_signed.cert).returncode != 0
    assert _verify(certs.self_signed.cert, certs.self_signed.cert).returncode == 0
    assert _verify(ca, certs.untrusted.cert).returncode != 0
    assert _verify(certs.other_ca.cert, certs.untrusted.cert).returncode == 0


# ---------------------------------------------------------------- Dovecot: IMAP

def test_imap_plaintext_from_127_0_0_2_is_not_secured(stack):
    dv = stack.dovecot
    mark = dv.log_mark()
    with stack.imap() as c:
        assert c.try_login(ALICE, ALICE_PW) == ("OK", "Logged in")
        typ, _ = c.select("INBOX")
        assert typ == "OK"
    line = login_line(dv, "imap", mark)
    assert "rip=127.0.0.2" in line and "lip=127.0.0.1" in line
    assert "secured=" not in line  # %{secured} is empty: not trusted, not TLS


def test_imap_from_127_0_0_1_counts_as_secured(stack):
    """Why clients bind to 127.0.0.2: same IP on both ends is 'secured'."""
    mark = stack.dovecot.log_mark()
    with stack.imap(source_address="127.0.0.1") as c:
        assert c.try_login(ALICE, ALICE_PW)[0] == "OK"
    assert "secured=<secured>" in login_line(stack.dovecot, "imap", mark)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_imap_tls(stack, mode):
    mark = stack.dovecot.log_mark()
    with stack.imap(mode) as c:
        assert isinstance(c.sock, ssl.SSLSocket)
        assert c.try_authenticate(ALICE, ALICE_PW)[0] == "OK"
        assert c.select("INBOX")[0] == "OK"
    assert "secured=<TLS>" in login_line(stack.dovecot, "imap", mark)


def test_imap_failures_are_reported(stack):
    with stack.imap() as c:
        assert c.try_login(ALICE, "wrong") == ("NO", "[AUTHENTICATIONFAILED] Authentication failed.")
        assert c.try_authenticate(ALICE, "wrong", "LOGIN")[0] == "NO"
        assert c.try_login(ALICE, ALICE_PW)[0] == "OK"


def test_passwd_changes_apply_without_restart(stack):
    stack.add_user("bob@example.test", "b1", extra={"tlsgate_mode": "require"})
    with stack.imap() as c:
        assert c.try_login("bob@example.test", "b1")[0] == "OK"
    stack.add_user("bob@example.test", "b2")
    with stack.imap() as c:
        assert c.try_login("bob@example.test", "b1")[0] == "NO"
    with stack.imap() as c:
        assert c.try_login("bob@example.test", "b2")[0] == "OK"


def test_client_verifies_server_certificate(stack_factory, certs):
    st = stack_factory(cert=certs.wrong_name, postfix=False)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        st.imap("tls")
    with st.imap("tls", ssl_context=st.context(verify=False)) as c:
        assert c.capabilities
    st2 = stack_factory(cert=certs.expired, postfix=False)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        st2.imap("starttls")


# ---------------------------------------------------------------- POP3, ManageSieve

@pytest.mark.parametrize("mode", ["plain", "starttls", "tls"])
def test_pop3(stack, mode):
    mark = stack.dovecot.log_mark()
    c = stack.pop3(mode)
    try:
        ok, text = c.try_login(ALICE, ALICE_PW)
        assert ok, text
        assert c.stat() == (0, 0)
    finally:
        c.quit()
    line = login_line(stack.dovecot, "pop3", mark)
    assert ("secured=<TLS>" in line) == (mode != "plain")
    c = stack.pop3(mode)
    try:
        ok, text = c.try_login(ALICE, "wrong")
        assert not ok and text.startswith("-ERR [AUTH]"), text
    finally:
        c.close()


@pytest.mark.parametrize("mode", ["plain", "starttls"])
def test_managesieve(stack, mode):
    with stack.sieve(mode) as c:
        assert c.capabilities["SASL"] == "PLAIN LOGIN"
        assert ("STARTTLS" in c.capabilities) == (mode == "plain")
        assert c.authenticate_plain(ALICE, "wrong")[0] == "NO"
        st, text = c.authenticate_plain(ALICE, ALICE_PW)
        assert st == "OK", text
        assert c.command("LISTSCRIPTS")[0] == "OK"


# ---------------------------------------------------------------- Dovecot submission

@pytest.mark.parametrize("mode", ["plain", "starttls", "tls"])
def test_dovecot_submission_auth_and_relay(stack, mode):
    pf = stack.postfix
    mark = pf.log_mark()
    with stack.submission(mode) as c:
        assert "auth" in c.esmtp_features
        code, text = c.try_login(ALICE, ALICE_PW)
        assert code == 235, text
        replies = c.send_simple(ALICE, [ALICE], subject=f"submission {mode}")
        assert [r[0] for r in replies] == [250, 250, 250], replies
    pf.wait_delivered(ALICE, since=mark)
    with stack.submission("starttls") as c:
        assert c.try_login(ALICE, "wrong")[0] == 535


# ---------------------------------------------------------------- Postfix

@pytest.mark.parametrize("port,mode", [("submission", "plain"), ("submission", "starttls"),
                                       ("smtps", "tls")])
def test_postfix_sasl_via_dovecot(stack, port, mode):
    with stack.smtp(port, mode) as c:
        assert "auth" in c.esmtp_features
        assert isinstance(c.sock, ssl.SSLSocket) == (mode != "plain")
        code, text = c.try_login(ALICE, "wrong")
        assert code == 535 and text.startswith("5.7.8 Error: authentication failed:"), text
        assert c.try_login(ALICE, ALICE_PW) == (235, "2.7.0 Authentication successful")
    stack.postfix.wait_log(rf"{port}/smtpd\[\d+\]: .*sasl_method=PLAIN, "
                           rf"sasl_username={re.escape(ALICE)}|"
                           rf"{port}/smtpd\[\d+\]: disconnect from .*auth=1", timeout=10)


def test_postfix_mx_port(stack):
    with stack.smtp("smtp") as c:
        assert "auth" not in c.esmtp_features
        assert "starttls" in c.esmtp_features
        assert c.try_login(ALICE, ALICE_PW)[0] == 503
    with stack.smtp("smtp") as c:
        r = c.send_simple("someone@other.test", ["nobody@elsewhere.test"])
        assert r[1][0] == 554 and "Relay access denied" in r[1][1]  # 127.0.0.2 not trusted


def test_delivery_mx_to_lmtp_to_imap(stack):
    pf = stack.postfix
    mark = pf.log_mark()
    with stack.smtp("smtp", "starttls") as c:
        replies = c.send_simple("someone@other.test", [ALICE], body="hello via port 25\r\n",
                                subject="mx delivery")
        assert [r[0] for r in replies] == [250, 250, 250], replies
    pf.wait_delivered(ALICE, since=mark)
    assert pf.search_log(r"lmtp\[\d+\]: .*relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d"
                         % stack.dovecot.ports["lmtp"], since=mark)
    with stack.imap("tls") as c:
        assert c.try_login(ALICE, ALICE_PW)[0] == "OK"
        typ, data = c.select("INBOX")
        assert typ == "OK" and int(data[0]) >= 1
        typ, data = c.search(None, "SUBJECT", '"mx delivery"')
        num = data[0].split()[-1]
        typ, msg = c.fetch(num, "(BODY.PEEK[])")
        assert b"hello via port 25" in msg[0][1]


def test_sendmail_and_lmtp(stack):
    pf = stack.postfix
    mark = pf.log_mark()
    pf.sendmail("Subject: via sendmail\n\nbody\n", [ALICE])
    pf.wait_delivered(ALICE, since=mark)
    refused = stack.lmtp_deliver("x@other.test", [ALICE],
                                 "Subject: via lmtp\r\n\r\nbody\r\n")
    assert refused == {}
    with stack.pop3("tls") as c:
        assert c.try_login(ALICE, ALICE_PW)[0]
        assert c.stat()[0] >= 2


def test_policy_service_is_consulted(stack_factory):
    seen = []

    def decide(req):
        seen.append(req)
        return "REJECT 5.7.1 policy says no" if req.get("recipient", "").startswith("deny") \
            else "DUNNO"

    with ms.FakePolicyServer(decide) as pol:
        st = stack_factory(start=False, postfix_kw=dict(policy_service=pol.port))
        st.add_user(ALICE, ALICE_PW)
        st.start()
        assert "check_policy_service { inet:127.0.0.1:%d" % pol.port in \
            st.postfix.postconf("-h", "smtpd_recipient_restrictions")
        with st.smtp("submission", "starttls") as c:
            assert c.try_login(ALICE, ALICE_PW)[0] == 235
            r = c.send_simple(ALICE, ["deny@example.test", ALICE])
            assert r[1][0] == 554 and "policy says no" in r[1][1]   # also when authenticated
            assert r[2][0] == 250
        with st.smtp("smtp") as c:
            assert c.send_simple("x@other.test", [ALICE])[1][0] == 250
    rcpt = [r for r in seen if r.get("protocol_state") == "RCPT"]
    tls = [r for r in rcpt if r["sasl_username"] == ALICE]
    assert tls and tls[0]["encryption_protocol"].startswith("TLS")
    plain = [r for r in rcpt if not r["sasl_username"]]
    assert plain and plain[0]["encryption_protocol"] == "" and \
        plain[0]["client_address"] == "127.0.0.2"


# ---------------------------------------------------------------- module dir trick

def test_auth_module_dir(stack_factory, tgtest_module, tmp_path):
    moddir = tmp_path / "mods"
    moddir.mkdir()
    shutil.copy(tgtest_module, moddir)
    st = stack_factory(start=False, dovecot_kw=dict(auth_module_dir=moddir,
                                                    passdb_extra=TGTEST_PASSDB))
    st.add_user(ALICE, ALICE_PW)
    st.start()
    dv = st.dovecot
    # the auth process sees our module, the system directory is unchanged
    assert "libauthdb_tgtest.so" in dv.auth_module_listing()
    assert "libauthdb_imap.so" in dv.auth_module_listing()
    assert "libauthdb_tgtest.so" not in os.listdir(ms.SYSTEM_AUTH_MODULE_DIR)
    with st.imap() as c:  # wrong password: the real passdb fails, tgtest is skipped
        assert c.try_login(ALICE, "wrong") == ("NO", "[AUTHENTICATIONFAILED] Authentication failed.")
    with st.imap() as c:  # right password: tgtest runs and refuses with its reason
        assert c.try_login(ALICE, ALICE_PW) == ("NO", "[PRIVACYREQUIRED] tgtest refused")
    dv.wait_log(r"tgtest: refusing \(secured=none\)")
    with st.imap("starttls") as c:
        assert c.try_login(ALICE, ALICE_PW)[0] == "NO"
    dv.wait_log(r"tgtest: refusing \(secured=TLS\)")
    with st.pop3() as c:
        assert c.try_login(ALICE, ALICE_PW) == (False, "-ERR [PRIVACYREQUIRED] tgtest refused")
    with st.sieve() as c:
        assert c.authenticate_plain(ALICE, ALICE_PW) == ("NO", "[PRIVACYREQUIRED] tgtest refused")
    with st.submission() as c:
        assert c.try_login(ALICE, ALICE_PW) == (535, "5.7.8 [PRIVACYREQUIRED] tgtest refused")
    with st.smtp("submission") as c:
        assert c.try_login(ALICE, ALICE_PW) == (
            535, "5.7.8 Error: authentication failed: [PRIVACYREQUIRED] tgtest refused")
    r = dv.auth_test(ALICE, ALICE_PW, service="imap")
    assert r.returncode != 0 and "reason=[PRIVACYREQUIRED] tgtest refused" in r.stdout


def test_without_module_dir_driver_is_missing(stack_factory, certs, tmp_path):
    dv = ms.Dovecot(tmp_path / "dv", certs.server, passdb_extra=TGTEST_PASSDB)
    t = time.monotonic()
    with pytest.raises(ms.HarnessError, match="tgtest"):
        dv.start()
    assert time.monotonic() - t < 10  # fails fast, with the reason
    assert dv.proc is None


# ---------------------------------------------------------------- lifecycle

def test_stop_leaves_nothing_behind(stack_factory):
    st = stack_factory()
    dprocs = st.dovecot.processes()
    pprocs = st.postfix.processes()
    assert {"dovecot", "auth", "log", "config"} <= {i[2] for i in dprocs.values()}
    assert {"master", "qmgr", "pickup"} <= {i[2] for i in pprocs.values()}
    ports = set(st.dovecot.ports.values()) | set(st.postfix.ports.values())
    t = time.monotonic()
    st.stop()
    assert time.monotonic() - t < 10
    for pid in list(dprocs) + list(pprocs):
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} left behind"
    assert not ports & ms.listening_ports()
    st.stop()  # idempotent


def test_reload_and_doveadm(stack):
    dv = stack.dovecot
    dv.config_extra += "\nlogin_greeting = harness reloaded\n"
    dv.reload()
    with stack.imap() as c:
        assert b"harness reloaded" in c.welcome
    out = dv.auth_test(ALICE, ALICE_PW, service="imap", secured="tls")
    assert out.returncode == 0, out.stdout + out.stderr

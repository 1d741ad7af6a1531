"""tlsgate-policyd in front of a real Postfix 3.7 (SASL through Dovecot).

One Postfix + Dovecot stack and one tlsgate-policyd serve the module. Each
test speaks real SMTP from 127.0.0.2 and checks Postfix's reply and the
event line tlsgate-policyd wrote for it.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time

import pytest

import mailstack
from policyd_daemon import POLICYD, Policyd

pytestmark = pytest.mark.skipif(not POLICYD.exists(), reason=f"{POLICYD} not built")

PW = "pw-123"
RCPT = "rcpt@example.test"
MESSAGE = "TLS required: use port 465 or STARTTLS"
DEFAULT_ACTION = "451 4.3.5 tlsgate policy unavailable"

POLICY = """\
require  req@example.test
require  legacy@example.test
exempt   legacy@example.test   127.0.0.2/32   protocols=smtp note="old scanner"
audit    aud@example.test
require  fut@example.test      from=2099-01-01
require  past@example.test     from=2020-01-01
require  modern@example.test   min_tls=TLSv1.3
require  shop@example.test     message="Shop accounts: TLS only"
require  modmsg@example.test   min_tls=TLSv1.3 min_tls_message="Old TLS: see https://example.test/tls"
"""
USERS = ["req", "legacy", "aud", "fut", "past", "modern", "shop", "modmsg", "rcpt"]
# The built-in text for TLS below min_tls (lib/decide.h TG_MIN_TLS_MESSAGE).
MIN_TLS_TEXT = ("Your mail program connected with TLSv1.2, but this server requires "
                "TLSv1.3 or newer. Update the mail program, or allow the newer TLS "
                "version in its security settings")


def policy_service(port: int) -> str:
    # {...} around a setting allows blanks in its value (attr_override).
    return (f"{{ inet:{mailstack.SERVER_ADDR}:{port}, "
            f"{{ default_action = {DEFAULT_ACTION} }}, timeout=5s, try_limit=1 }}")


@pytest.fixture(scope="module")
def pd(tmp_path_factory):
    d = Policyd(tmp_path_factory.mktemp("policyd"), POLICY).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def gate(session_stack_factory, pd):
    st = session_stack_factory(name="policyd-stack", start=False,
                               postfix_kw=dict(policy_service=policy_service(pd.port)))
    for u in USERS:
        st.add_user(f"{u}@example.test", PW)
    return st.start()


def user(name: str) -> str:
    return f"{name}@example.test"


def send_as(st, name: str, port: str = "submission", mode: str = "plain",
            ctx: ssl.SSLContext | None = None) -> list[tuple[int, str]]:
    """AUTH PLAIN as name@example.test, then MAIL, RCPT (and DATA if accepted)."""
    kw = {"ssl_context": ctx} if ctx else {}
    with st.smtp(port, mode, **kw) as c:
        code, text = c.try_login(user(name), PW)
        assert code == 235, (code, text)
        return c.send_simple(user(name), [RCPT])


def assert_accepted(replies):
    assert [r[0] for r in replies] == [250, 250, 250], replies


def assert_rejected(replies, text=MESSAGE, want_code=530, status="5.7.0"):
    assert replies[0][0] == 250, replies          # MAIL: the check runs at RCPT
    code, reply = replies[1]
    assert code == want_code and reply.startswith(status + " "), replies
    assert text in reply, replies
    assert len(replies) == 2, replies             # no DATA without a recipient


def one_event(pd, mark, **match) -> dict:
    found = pd.wait_events(1, since=mark, **match)
    assert len(found) == 1, found
    e = found[0]
    assert e["service"] == "smtp" and e["client"] == "127.0.0.2", e
    return e


# ---------------------------------------------------------------- verdicts

def test_plaintext_auth_for_require_account_is_rejected(gate, pd):
    mark = pd.mark()
    assert_rejected(send_as(gate, "req"))
    e = one_event(pd, mark, user=user("req"))
    assert e["tls"] == "none" and e["verdict"] == "reject" and e["mode"] == "require", e
    assert e["rule"] == f"{pd.policy_file}:1", e
    assert e["mech"] == "PLAIN", e
    assert e.get("session"), e      # Postfix's instance attribute


def test_rule_message_is_the_reply_text(gate, pd):
    assert_rejected(send_as(gate, "shop"), text="Shop accounts: TLS only")


@pytest.mark.parametrize("port,mode", [("submission", "starttls"), ("smtps", "tls")])
def test_tls_is_accepted(gate, pd, port, mode):
    mark = pd.mark()
    assert_accepted(send_as(gate, "req", port, mode))
    e = one_event(pd, mark, user=user("req"))
    assert e["tls"] == "TLSv1.3" and e["verdict"] == "allow", e


def test_exempt_address_is_accepted_and_logged(gate, pd):
    mark = pd.mark()
    assert_accepted(send_as(gate, "legacy"))
    e = one_event(pd, mark, user=user("legacy"))
    assert e["verdict"] == "exempt" and e["exemption"] == f"{pd.policy_file}:3", e


def test_audit_is_accepted_and_logged_as_would_reject(gate, pd):
    mark = pd.mark()
    assert_accepted(send_as(gate, "aud"))
    e = one_event(pd, mark, user=user("aud"))
    assert e["verdict"] == "audit" and e["mode"] == "audit" and e["tls"] == "none", e


def test_from_in_the_future_audits(gate, pd):
    mark = pd.mark()
    assert_accepted(send_as(gate, "fut"))
    e = one_event(pd, mark, user=user("fut"))
    assert e["verdict"] == "audit" and e["enforce_from"] == "2099-01-01", e


def test_from_in_the_past_rejects(gate, pd):
    mark = pd.mark()
    assert_rejected(send_as(gate, "past"))
    e = one_event(pd, mark, user=user("past"))
    assert e["verdict"] == "reject" and e["enforce_from"] == "2020-01-01", e


def test_min_tls(gate, pd):
    old = gate.context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    mark = pd.mark()
    # STARTTLS with TLS 1.2 against min_tls=TLSv1.3: not 530 ("issue
    # STARTTLS first", which it did) but 550 5.7.10, and the text says why
    replies = send_as(gate, "modern", "submission", "starttls", ctx=old)
    assert_rejected(replies, text=MIN_TLS_TEXT, want_code=550, status="5.7.10")
    assert "STARTTLS" not in replies[1][1], replies
    e = one_event(pd, mark, user=user("modern"))
    assert e["tls"] == "TLSv1.2" and e["verdict"] == "reject", e
    mark = pd.mark()
    assert_accepted(send_as(gate, "modern", "smtps", "tls"))
    assert one_event(pd, mark, user=user("modern"))["verdict"] == "allow"


def test_min_tls_message_and_plaintext_reply(gate, pd):
    old = gate.context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert_rejected(send_as(gate, "modmsg", "submission", "starttls", ctx=old),
                    text="Old TLS: see https://example.test/tls", want_code=550,
                    status="5.7.10")
    # the same account without TLS: RFC 3207's 530 5.7.0 and the global text
    assert_rejected(send_as(gate, "modmsg"))


def test_unauthenticated_port_25_is_untouched(gate, pd):
    mark = pd.mark()
    with gate.smtp("smtp") as c:                  # plaintext MX delivery
        assert_accepted(c.send_simple("someone@other.test", [RCPT]))
    # a later authenticated session: its event is the only one since mark
    assert_rejected(send_as(gate, "req"))
    pd.wait_events(1, since=mark, user=user("req"))
    assert [e["user"] for e in pd.events(mark)] == [user("req")]


# ---------------------------------------------------------------- reload, failure

def test_broken_policy_keeps_the_old_one(gate, pd):
    mark = pd.mark()
    try:
        pd.write_policy(POLICY + "require  bogus@example.test  from=2027-02-30\n")
        pd.signal(signal.SIGHUP)
        pd.wait_log(rf"{pd.policy_file}:{POLICY.count(chr(10)) + 1}: ", since=mark)
        pd.wait_log(r"did not load; still serving the policy loaded at", since=mark)
        assert_rejected(send_as(gate, "req"))     # the old policy still serves

        # a good change is noticed without a signal
        mark = pd.mark()
        pd.write_policy(POLICY.replace("require  req@", "audit    req@"))
        pd.wait_log(r"policy files changed; reloaded", since=mark)
        assert_accepted(send_as(gate, "req"))
        assert one_event(pd, mark, user=user("req"))["verdict"] == "audit"
    finally:
        mark = pd.mark()
        pd.write_policy(POLICY)
        pd.wait_log(r"policy files changed; reloaded", since=mark)
    assert_rejected(send_as(gate, "req"))


def test_stopped_server_means_postfix_default_action(gate, pd):
    pf = gate.postfix
    pf_mark = pf.log_mark()
    mark = pd.mark()
    assert pd.stop() == 0
    pd.wait_log(r"SIGTERM: finishing \d+ connection\(s\), then stopping", since=mark)
    pd.wait_log(r"info: stopped$", since=mark)
    try:
        replies = send_as(gate, "req")
        code, text = replies[1]
        assert code == 451 and text.startswith("4.3.5 ") and \
            text.endswith("tlsgate policy unavailable"), replies
        # so is a TLS session: the policy cannot be asked
        replies = send_as(gate, "req", "smtps", "tls")
        assert replies[1][0] == 451, replies
        pf.wait_log(rf"warning: problem talking to server {mailstack.SERVER_ADDR}:{pd.port}",
                    since=pf_mark)
    finally:
        pd.start()
    assert_rejected(send_as(gate, "req"))


# ---------------------------------------------------------------- the process

def test_runs_as_the_configured_user(pd):
    status = open(f"/proc/{pd.proc.pid}/status").read()
    uid = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")][0]
    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
    assert uid == [nobody] * 4, uid                 # real, effective, saved, fs
    groups = [line for line in status.splitlines() if line.startswith("Groups:")][0]
    assert groups.split()[1:] == [
        subprocess.run(["id", "-g", "nobody"], capture_output=True, text=True).stdout.strip()]


def test_refuses_root_without_user(tmp_path):
    d = Policyd(tmp_path / "noroot", POLICY, user="root")
    conf = d.conf.read_text().replace("user = root\n", "")
    d.conf.write_text(conf)
    cp = subprocess.run([str(POLICYD), "-c", str(d.conf), "-f"], capture_output=True,
                        text=True, timeout=10)
    assert cp.returncode == 1
    assert "refusing to run as root" in cp.stderr


def test_broken_policy_at_start_exits_with_file_line(tmp_path):
    d = Policyd(tmp_path / "bad", "require  x@example.test\nexempt @example.test 10.0.0.0/33\n")
    cp = subprocess.run([str(POLICYD), "-c", str(d.conf), "-f"], capture_output=True,
                        text=True, timeout=10)
    assert cp.returncode == 1
    assert f"{d.policy_file}:2: " in cp.stderr, cp.stderr


def test_spawn_mode_one_session_on_stdin_stdout(pd):
    req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=2001:db8::5\n"
           "sasl_method=LOGIN\nsasl_username={u}\nencryption_protocol={tls}\n"
           "instance=ab.cd.1\n\n")
    data = (req.format(u=user("req"), tls="") + req.format(u=user("req"), tls="TLSv1.3")
            + req.format(u=user("aud"), tls=""))
    cp = subprocess.run([str(POLICYD), "-c", str(pd.conf), "-f", "--spawn"],
                        input=data, capture_output=True, text=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == f"action=530 5.7.0 {MESSAGE}\n\naction=DUNNO\n\naction=DUNNO\n\n"
    events = [e for e in map(__import__("policyd_daemon").parse_event,
                             cp.stderr.splitlines()) if e]
    assert [(e["user"], e["client"], e["tls"], e["verdict"], e["mech"]) for e in events] == [
        (user("req"), "2001:db8::5", "none", "reject", "LOGIN"),
        (user("req"), "2001:db8::5", "TLSv1.3", "allow", "LOGIN"),
        (user("aud"), "2001:db8::5", "none", "audit", "LOGIN")]


def test_unix_socket_owner_mode_and_several_listeners(tmp_path):
    """A unix socket for a chrooted smtpd, next to the inet listener."""
    import grp
    import pwd
    import socket
    import stat
    sock = tmp_path / "unix" / "tlsgate.sock"
    sock.parent.mkdir()
    os.chmod(sock.parent, 0o755)
    d = Policyd(tmp_path / "unixd", POLICY, conf_extra=(
        f"listen = unix:{sock}\nsocket_owner = postfix\nsocket_group = postfix\n"
        "socket_mode = 0660\n")).start()
    try:
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_uid == pwd.getpwnam("postfix").pw_uid
        assert st.st_gid == grp.getgrnam("postfix").gr_gid
        body = (f"request=smtpd_access_policy\nsasl_username={user('req')}\n"
                "client_address=unknown\nencryption_protocol=\n\n").encode()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(sock))
            s.sendall(body)
            assert s.recv(4096) == f"action=530 5.7.0 {MESSAGE}\n\n".encode()
        assert d.ask({"request": "smtpd_access_policy", "sasl_username": user("aud")}) == \
            "action=DUNNO\n\n"
        d.wait_log(rf"listening on unix:{sock}")
    finally:
        assert d.stop() == 0


def test_documented_main_cf_form(session_stack_factory, pd):
    """docs/postfix.md: the check in a main.cf parameter, used by $name."""
    st = session_stack_factory(name="policyd-doc", start=False, postfix_kw=dict(
        main_extra={"tlsgate_policy":
                    f"check_policy_service {{ inet:127.0.0.1:{pd.port}, "
                    "default_action=DUNNO, timeout=10s }"},
        recipient_restrictions="$tlsgate_policy, permit_sasl_authenticated, "
                               "permit_mynetworks, reject_unauth_destination"))
    for u in ("req", "rcpt"):
        st.add_user(user(u), PW)
    st.start()
    mark = pd.mark()
    assert_rejected(send_as(st, "req"))
    assert_accepted(send_as(st, "req", "submission", "starttls"))
    assert [e["verdict"] for e in pd.wait_events(2, since=mark, user=user("req"))] == \
        ["reject", "allow"]

"""The `tlsgate` Dovecot passdb against a real Dovecot (2.3, or 2.4 with
$TLSGATE_DOVECOT, see dovecot24.py) + Postfix 3.7.

One stack per module: Dovecot with passwd-file + tlsgate passdbs (auth cache
on, so cached passdb results are exercised too), Postfix using Dovecot SASL
and delivering over LMTP. Clients connect from 127.0.0.2, so without TLS a
connection is plaintext to Dovecot.
"""

from __future__ import annotations

import imaplib
import time

import pytest

import mailstack as ms
from dovecot_tlsgate import MESSAGE, MODULE, PolicyDir, events, passdb_block, pop3, wait_event

D = ms.DOMAIN  # example.test

RULES = f"""\
require  @{D}
off      off@{D}
audit    audit@{D}
require  later@{D}          from=2099-01-01
exempt   printer@{D}        127.0.0.2/32
exempt   popper@{D}         0.0.0.0/0,::/0   protocols=pop3
require  @strict.test
off      relaxed@strict.test
"""

USERS = {
    f"alice@{D}": {},                                  # domain rule: require
    f"off@{D}": {},                                    # account rule: off
    f"audit@{D}": {},
    f"later@{D}": {},
    f"printer@{D}": {},                                # exempt address
    f"popper@{D}": {},                                 # exempt protocol pop3
    "carol@strict.test": {},                           # domain require
    "relaxed@strict.test": {},                         # account off beats domain
    "dave@free.test": {},                              # no rule: off
    "flagged@free.test": {"tlsgate_mode": "require"},  # userdb flag overrides file
    f"unflagged@{D}": {"tlsgate_mode": "off"},         # userdb off beats domain require
}
USERDB_FIELDS = {"userflag@free.test": {"tlsgate_mode": "require"}}  # userdb_tlsgate_mode
PW = "Secret-123"
IMAP_REFUSAL = f"[PRIVACYREQUIRED] {MESSAGE}"
AUTH_FAILED = "[AUTHENTICATIONFAILED] Authentication failed."


@pytest.fixture(scope="module")
def tg(session_stack_factory, tmp_path_factory):
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built (make)")
    etc = tmp_path_factory.mktemp("tlsgate-etc")
    pol = PolicyDir(etc, RULES)
    master = etc / "master.passwd"
    master.write_text("admin:{PLAIN}Admin-pw\n")
    master.chmod(0o644)
    master_passdb = f"""passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {master}
  master = yes
  result_success = continue
}}
auth_master_user_separator = *
"""
    st = session_stack_factory(
        name="dovecot-tlsgate", start=False,
        dovecot_kw=dict(
            passdb_extra=passdb_block(pol.conf),
            auth_modules=[MODULE],
            config_extra="auth_cache_size = 1M\nauth_mechanisms = plain login cram-md5\n"
                         + master_passdb))
    for user, extra in USERS.items():
        st.add_user(user, PW, extra=extra or None)
    for user, fields in USERDB_FIELDS.items():
        st.add_user(user, PW, userdb=fields)
    st.start()
    st.policy = pol
    return st


def imap_login(st, user, mode="plain", password=PW, auth=None):
    with st.imap(mode) as c:
        if auth == "CRAM-MD5":
            try:
                typ, dat = c.login_cram_md5(user, password)
                return typ, ms._text(dat)
            except imaplib.IMAP4.error as e:
                return c._last_result(e)
        if auth:
            r = c.try_authenticate(user, password, auth)
        else:
            r = c.try_login(user, password)
        if r[0] == "OK":
            typ, _ = c.select("INBOX")
            assert typ == "OK"
            c.logout()
        return r


def ev_after(st, mark, **want):
    return wait_event(st.dovecot, mark, **want)


# ---- IMAP

def test_imap_plaintext_require_refused_with_privacyrequired(tg):
    mark = tg.dovecot.log_mark()
    assert imap_login(tg, f"alice@{D}") == ("NO", IMAP_REFUSAL)
    ev = ev_after(tg, mark, user=f"alice@{D}", service="imap")
    assert (ev["tls"], ev["verdict"], ev["mode"], ev["mech"], ev["client"]) == \
        ("none", "reject", "require", "PLAIN", "127.0.0.2")
    assert ev["rule"].endswith("main.conf:1")
    assert ev["session"]
    # AUTHENTICATE PLAIN and LOGIN get the same answer
    assert imap_login(tg, f"alice@{D}", auth="PLAIN") == ("NO", IMAP_REFUSAL)
    assert imap_login(tg, f"alice@{D}", auth="LOGIN") == ("NO", IMAP_REFUSAL)


def test_trusted_address_is_not_tls(tg):
    # from the server's own address Dovecot says "secured" (bare): plaintext
    mark = tg.dovecot.log_mark()
    with tg.imap("plain", source_address="127.0.0.1") as c:
        assert c.try_login(f"alice@{D}", PW) == ("NO", IMAP_REFUSAL)
    ev = ev_after(tg, mark, user=f"alice@{D}", service="imap")
    assert (ev["tls"], ev["client"]) == ("none", "127.0.0.1")
    # the login process writes its line after the auth process's event
    tg.dovecot.wait_log(r"secured=<secured>", since=mark)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_imap_tls_logs_in_and_selects(tg, mode):
    mark = tg.dovecot.log_mark()
    assert imap_login(tg, f"alice@{D}", mode)[0] == "OK"
    ev = ev_after(tg, mark, user=f"alice@{D}", service="imap")
    assert (ev["tls"], ev["verdict"]) == ("yes", "allow")


# ---- POP3

def test_pop3_plaintext_refused_tls_allowed(tg):
    mark = tg.dovecot.log_mark()
    with pop3(tg, "plain") as c:
        assert c.try_login(f"alice@{D}", PW) == (False, f"-ERR [SYS/PERM] {MESSAGE}")
    ev = ev_after(tg, mark, user=f"alice@{D}", service="pop3")
    assert ev["verdict"] == "reject"
    for mode in ("starttls", "tls"):
        with pop3(tg, mode) as c:
            ok, text = c.try_login(f"alice@{D}", PW)
            assert ok, text
            assert c.stat()[0] >= 0
            c.quit()


# ---- ManageSieve and Dovecot submission

def test_managesieve(tg):
    if not tg.dovecot.has_sieve:
        pytest.skip(f"no ManageSieve (Pigeonhole) for Dovecot {tg.dovecot.install.version}")
    mark = tg.dovecot.log_mark()
    with tg.sieve("plain") as c:
        assert c.authenticate_plain(f"alice@{D}", PW) == ("NO", MESSAGE)
    with tg.sieve("plain") as c:
        assert c.authenticate_plain(f"alice@{D}", "wrong") == ("NO", "Authentication failed.")
    ev = ev_after(tg, mark, user=f"alice@{D}", service="sieve")
    assert (ev["tls"], ev["verdict"]) == ("none", "reject")
    with tg.sieve("starttls") as c:
        st, text = c.authenticate_plain(f"alice@{D}", PW)
        assert st == "OK", text
        assert c.command("LISTSCRIPTS")[0] == "OK"


def test_dovecot_submission(tg):
    mark = tg.dovecot.log_mark()
    with tg.submission("plain") as c:
        assert c.try_login(f"alice@{D}", PW) == (535, f"5.7.8 {MESSAGE}")
    ev = ev_after(tg, mark, user=f"alice@{D}", service="submission")
    assert ev["verdict"] == "reject"
    for mode in ("starttls", "tls"):
        with tg.submission(mode) as c:
            code, text = c.try_login(f"alice@{D}", PW)
            assert code == 235, (mode, code, text)


# ---- Postfix SMTP AUTH through Dovecot SASL

def test_postfix_smtp_auth(tg):
    mark = tg.dovecot.log_mark()
    with tg.smtp("submission", "plain") as c:
        code, text = c.try_login(f"alice@{D}", PW)
    assert code == 535, (code, text)
    assert text == f"5.7.8 Error: authentication failed: {MESSAGE}"
    ev = ev_after(tg, mark, user=f"alice@{D}", service="smtp")
    assert (ev["tls"], ev["verdict"]) == ("none", "reject")
    mark = tg.dovecot.log_mark()
    with tg.smtp("submission", "starttls") as c:
        code, text = c.try_login(f"alice@{D}", PW)
        assert code == 235, (code, text)
    # Postfix's bare "secured" for its TLS session counts as TLS
    ev = ev_after(tg, mark, user=f"alice@{D}", service="smtp")
    assert (ev["tls"], ev["verdict"]) == ("yes", "allow")


# ---- policy variants

@pytest.mark.parametrize("user,verdict,mode", [
    (f"off@{D}", "allow", "off"),                 # account rule beats domain
    (f"audit@{D}", "audit", "audit"),
    (f"later@{D}", "audit", "audit"),             # require from= a later day
    (f"printer@{D}", "exempt", "require"),        # exempt address 127.0.0.2
    ("relaxed@strict.test", "allow", "off"),
    ("dave@free.test", "allow", "off"),
    (f"unflagged@{D}", "allow", "off"),            # tlsgate_mode=off field
])
def test_plaintext_allowed(tg, user, verdict, mode):
    mark = tg.dovecot.log_mark()
    assert imap_login(tg, user)[0] == "OK"
    ev = ev_after(tg, mark, user=user, service="imap")
    assert (ev["verdict"], ev["mode"], ev["tls"]) == (verdict, mode, "none")
    if user == f"later@{D}":
        assert ev["enforce_from"] == "2099-01-01"
    if user == f"printer@{D}":
        assert ev["exemption"].endswith("main.conf:5")
    if user == f"unflagged@{D}":
        assert ev["rule"] == "userdb"


@pytest.mark.parametrize("user,rule", [
    ("carol@strict.test", "main.conf:7"),          # domain rule
    ("flagged@free.test", "userdb"),               # tlsgate_mode=require field
    ("userflag@free.test", "userdb"),              # userdb_tlsgate_mode=require
])
def test_plaintext_refused(tg, user, rule):
    mark = tg.dovecot.log_mark()
    assert imap_login(tg, user) == ("NO", IMAP_REFUSAL)
    ev = ev_after(tg, mark, user=user, service="imap")
    assert ev["verdict"] == "reject" and ev["rule"].endswith(rule)


def test_exempt_protocol(tg):
    user = f"popper@{D}"
    mark = tg.dovecot.log_mark()
    with pop3(tg, "plain") as c:
        ok, text = c.try_login(user, PW)
        assert ok, (text, events(tg.dovecot.log(mark)))
    assert ev_after(tg, mark, user=user, service="pop3")["verdict"] == "exempt"
    assert imap_login(tg, user) == ("NO", IMAP_REFUSAL)


# ---- no enumeration

def test_wrong_password_looks_like_any_wrong_password(tg):
    mark = tg.dovecot.log_mark()
    replies = {
        "require": imap_login(tg, f"alice@{D}", password="wrong"),
        "off": imap_login(tg, f"off@{D}", password="wrong"),
        "unknown": imap_login(tg, f"nobody@{D}", password="wrong"),
        "require-cram": imap_login(tg, f"alice@{D}", password="wrong", auth="CRAM-MD5"),
    }
    assert set(replies.values()) == {("NO", AUTH_FAILED)}, replies
    with pop3(tg, "plain") as c:
        r1 = c.try_login(f"alice@{D}", "wrong")
    with pop3(tg, "plain") as c:
        r2 = c.try_login(f"off@{D}", "wrong")
    assert r1 == r2 == (False, "-ERR [AUTH] Authentication failed.")
    with tg.smtp("submission", "plain") as c:
        s1 = c.try_login(f"alice@{D}", "wrong")
    with tg.smtp("submission", "plain") as c:
        s2 = c.try_login(f"off@{D}", "wrong")
    assert s1 == s2 and s1[0] == 535
    # PLAIN/LOGIN: tlsgate never ran, the password was not verified. (For
    # CRAM-MD5 it runs at the credentials lookup, before the mechanism
    # checks the password: an event is logged, the reply is the same.)
    time.sleep(0.2)
    assert [e for e in events(tg.dovecot.log(mark)) if e.get("mech") != "CRAM-MD5"] == []


def test_cram_md5_refusal_looks_like_wrong_password(tg):
    # CRAM-MD5 looks the credentials up before checking the password: a
    # refusal there must not tell the client why.
    mark = tg.dovecot.log_mark()
    assert imap_login(tg, f"alice@{D}", auth="CRAM-MD5") == ("NO", AUTH_FAILED)
    ev = ev_after(tg, mark, user=f"alice@{D}", mech="CRAM-MD5")
    assert ev["verdict"] == "reject"
    assert imap_login(tg, f"alice@{D}", "starttls", auth="CRAM-MD5")[0] == "OK"
    assert imap_login(tg, f"off@{D}", auth="CRAM-MD5")[0] == "OK"


def test_auth_cache_does_not_carry_verdicts(tg):
    # the passwd-file result is cached (auth_cache_size); ours never is
    user = "carol@strict.test"
    for _ in range(2):
        assert imap_login(tg, user, "starttls")[0] == "OK"
        assert imap_login(tg, user) == ("NO", IMAP_REFUSAL)


# ---- no client login: never refused

def test_lmtp_and_doveadm_to_require_mailbox(tg):
    user = f"alice@{D}"
    maildir = tg.dovecot.maildir(user)
    before = len(list((maildir / "new").glob("*"))) if (maildir / "new").exists() else 0
    refused = tg.lmtp_deliver(f"sender@{D}", [user],
                              f"From: sender@{D}\r\nSubject: lmtp\r\n\r\nhello\r\n")
    assert refused == {}
    ms.wait_for(lambda: len(list((maildir / "new").glob("*"))) > before, 10,
                what="LMTP delivery")
    # and through Postfix (MX port, delivering over LMTP)
    with tg.smtp("smtp", "plain") as c:
        replies = c.send_simple(f"sender@{D}", [user])
    assert replies[-1][0] == 250, replies
    ms.wait_for(lambda: len(list((maildir / "new").glob("*"))) > before + 1, 20,
                what="delivery through Postfix")
    # doveadm passdb lookup (no mechanism) passes our passdb
    cp = tg.dovecot.doveadm("auth", "lookup", user, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "passdb: " + user in cp.stdout


# ---- policy reloads while running

def test_policy_edit_applies_to_next_login(tg):
    user = "carol@strict.test"
    pol = tg.policy
    assert imap_login(tg, user) == ("NO", IMAP_REFUSAL)
    mark = tg.dovecot.log_mark()
    pol.write("zz-carol.conf", f"off {user}\n")
    try:
        ms.wait_for(lambda: imap_login(tg, user)[0] == "OK", 10, what="reloaded policy")
        assert "policy reloaded from" in tg.dovecot.log(mark)
    finally:
        pol.remove("zz-carol.conf")
    ms.wait_for(lambda: imap_login(tg, user) == ("NO", IMAP_REFUSAL), 10,
                what="policy reloaded back")


def test_broken_edit_keeps_old_policy(tg):
    pol = tg.policy
    mark = tg.dovecot.log_mark()
    bad = pol.write("zz-broken.conf", "off carol@strict.test\nrequire\nbogus-verb x\n")
    try:
        # a login makes the module look at the files (at most once a second)
        ms.wait_for(lambda: imap_login(tg, "carol@strict.test") and
                    "zz-broken.conf:2:" in tg.dovecot.log(mark), 10, what="reload error")
        log = tg.dovecot.log(mark)
        assert f"{bad}:2:" in log and f"{bad}:3:" in log
        assert "the previous policy stays in force" in log
        # the broken file's "off" line is not in force: old policy decides
        assert imap_login(tg, "carol@strict.test") == ("NO", IMAP_REFUSAL)
        assert imap_login(tg, f"off@{D}")[0] == "OK"
    finally:
        pol.remove("zz-broken.conf")


# ---- master users: decided as the account they log in to

def test_master_user_login(tg):
    mark = tg.dovecot.log_mark()
    typ, text = imap_login(tg, f"alice@{D}*admin", password="Admin-pw")
    assert (typ, text) == ("NO", f"[AUTHORIZATIONFAILED] {IMAP_REFUSAL}")
    assert ev_after(tg, mark, user=f"alice@{D}", service="imap")["verdict"] == "reject"
    assert imap_login(tg, f"alice@{D}*admin", "starttls", password="Admin-pw")[0] == "OK"
    assert imap_login(tg, f"off@{D}*admin", password="Admin-pw")[0] == "OK"

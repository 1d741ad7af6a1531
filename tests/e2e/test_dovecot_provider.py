"""The `tlsgate` passdb as a provider runs it: many customers behind one
address (auth penalty), policy edits while no logins arrive (the auth
process's timer), and passdbs that change the login name (the account
decides, not the typed name). Own Dovecot instances: each needs settings
the shared stack must not have.
"""

from __future__ import annotations

import hmac
import time

import pytest

import mailstack as ms
from dovecot_tlsgate import MESSAGE, MODULE, PolicyDir, passdb_block, pop3, wait_event

D = ms.DOMAIN
PW = "Secret-123"
IMAP_REFUSAL = f"[PRIVACYREQUIRED] {MESSAGE}"
AUTH_FAILED = "[AUTHENTICATIONFAILED] Authentication failed."


def start_dovecot(factory, tmp_path_factory, name, rules, users, **dovecot_kw):
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built (make)")
    pol = PolicyDir(tmp_path_factory.mktemp(name + "-etc"), rules)
    st = factory(name=name, start=False, postfix=False,
                 dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                                 **dovecot_kw))
    for user in users:
        st.add_user(user, PW)
    st.start()
    st.policy = pol
    return st


def imap_login(st, user, mode="plain", password=PW, source=ms.CLIENT_ADDR):
    """(typ, text), seconds from connect to the login's answer."""
    t0 = time.monotonic()
    with st.imap(mode, source_address=source) as c:
        r = c.try_login(user, password)
    return r, time.monotonic() - t0


# ---- many accounts behind one address --------------------------------------

NAT_USERS = [f"nat{i}@{D}" for i in range(7)]


def test_refusals_do_not_slow_down_their_address(stack_factory, tmp_path_factory):
    """An office NAT: six old mail programs refused for plaintext must not
    hold up a correct TLS login from the same address (Dovecot's auth
    penalty is on, as by default)."""
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-nat", f"require @{D}\n",
                       NAT_USERS + [f"guess@{D}"], auth_penalty=True)
    for user in NAT_USERS[:6]:
        assert imap_login(st, user)[0] == ("NO", IMAP_REFUSAL)
    (ok, seconds) = imap_login(st, NAT_USERS[6], "starttls")
    assert ok[0] == "OK", ok
    assert seconds < 3.0, seconds
    # the penalty is on in this instance: a wrong password still raises it
    assert imap_login(st, f"guess@{D}", "starttls", password="wrong",
                      source="127.0.0.3")[0] == ("NO", AUTH_FAILED)
    (ok, seconds) = imap_login(st, f"guess@{D}", "starttls", source="127.0.0.3")
    assert ok[0] == "OK" and seconds >= 1.5, (ok, seconds)


def test_credentials_lookup_refusals_still_count(stack_factory, tmp_path_factory):
    """CRAM-MD5: a refusal there must look like a wrong password, so it
    raises the penalty like one."""
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-nat-cram", f"require @{D}\n",
                       NAT_USERS[:2], auth_penalty=True,
                       config_extra="auth_mechanisms = plain login cram-md5\n")
    with st.imap(source_address="127.0.0.3") as c:
        r = cram_login(c, NAT_USERS[0], PW)
    assert r[0] == "NO", r
    (ok, seconds) = imap_login(st, NAT_USERS[1], "starttls", source="127.0.0.3")
    assert ok[0] == "OK" and seconds >= 1.5, (ok, seconds)


def cram_login(c, user, password):
    """AUTHENTICATE CRAM-MD5 with the right password: ("OK"|"NO", text)."""
    def answer(challenge):
        digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
        return f"{user} {digest}".encode()
    try:
        return c.authenticate("CRAM-MD5", answer)[0], ""
    except c.error as e:
        return "NO", str(e)



# ---- a policy edit while no logins arrive ----------------------------------

def test_policy_edit_in_force_without_logins(stack_factory, tmp_path_factory):
    """A rollback (require -> audit) after a quiet period: the first login
    after it is decided by the new policy, also when no login arrived since
    the edit (the auth process's own timer notices it)."""
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-timer", f"require @{D}\n",
                       [f"alice@{D}"])
    d = st.dovecot
    assert imap_login(st, f"alice@{D}")[0] == ("NO", IMAP_REFUSAL)
    time.sleep(1.5)  # quiet: nothing polls on behalf of a login now
    mark = d.log_mark()
    st.policy.write("main.conf", f"audit @{D}\n")
    time.sleep(2.0)  # no login in between
    assert imap_login(st, f"alice@{D}")[0][0] == "OK"
    wait_event(d, mark, user=f"alice@{D}", verdict="audit", tls="none")
    # the reload happened before this login (one auth process writes both
    # lines, in order), not because of it
    log = d.log(mark)
    reloaded = log.find("tlsgate passdb: policy reloaded from")
    assert 0 <= reloaded < log.find("tlsgate: service=imap"), log


# ---- login names: the account decides --------------------------------------

def names_stack(factory, tmp_path_factory):
    """One Dovecot where three things change the login name:
    auth_username_format = %Lu (for every login); a second passwd-file
    passdb keyed by the local part (username_format = %n) that names the
    account for tlsgate with `tlsgate_account=%n`; a passdb entry that
    returns `user=` (an alias)."""
    pol = PolicyDir(tmp_path_factory.mktemp("tg-names-etc"),
                    "require bare\nrequire mixed@example.test\nrequire target@example.test\n")
    st = factory(name="tg-names", start=False, postfix=False,
                 dovecot_kw=dict(passdb_extra="", auth_modules=[MODULE]))
    d = st.dovecot
    uid, gid = ms._uid_gid(d.mail_user)
    d.passdb_extra = f"""passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d.passwd}
  skip = authenticated
  override_fields = tlsgate_account=%n
  result_success = continue-ok
}}
""" + passdb_block(pol.conf)
    d.config_extra = f"""auth_username_format = %Lu
userdb {{
  driver = passwd-file
  args = username_format=%n {d.passwd}
  default_fields = uid={uid} gid={gid} home={d.home_root}/%n
}}
"""
    st.add_user("bare", PW)
    st.add_user(f"mixed@{D}", PW)
    st.add_user(f"target@{D}", PW)
    st.add_user(f"alias@{D}", PW, extra=f"user=target@{D}")
    st.start()
    return st


@pytest.fixture(scope="module")
def names(session_stack_factory, tmp_path_factory):
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built (make)")
    return names_stack(session_stack_factory, tmp_path_factory)


@pytest.mark.parametrize("typed, account", [
    ("bare@elsewhere.invalid", "bare"),        # passdb username_format = %n
    ("Mixed@Example.Test", f"mixed@{D}"),      # auth_username_format = %Lu
    (f"alias@{D}", f"target@{D}"),             # passdb returns user=
])
def test_login_name_decided_on_the_account(names, typed, account):
    d = names.dovecot
    mark = d.log_mark()
    assert imap_login(names, typed)[0] == ("NO", IMAP_REFUSAL)
    wait_event(d, mark, user=account, login=typed, verdict="reject", tls="none")
    with pop3(names) as c:
        ok, text = c.try_login(typed, PW)
    assert not ok and text == f"-ERR [SYS/PERM] {MESSAGE}", text
    # with TLS the same name logs in (and reaches the account's mailbox)
    assert imap_login(names, typed, "starttls")[0][0] == "OK"
    wait_event(d, mark, user=account, login=typed, verdict="allow", tls="yes")


def test_login_name_as_the_account_is_not_repeated(names):
    d = names.dovecot
    mark = d.log_mark()
    assert imap_login(names, "bare")[0] == ("NO", IMAP_REFUSAL)
    ev = wait_event(d, mark, user="bare", verdict="reject")
    assert "login" not in ev, ev

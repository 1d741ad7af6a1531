"""The `tlsgate` passdb when no policy can be loaded, and Dovecot's auth
penalty and failure delay for refused logins (own Dovecot instances: these
need settings the shared stack must not have)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import mailstack as ms
from dovecot_tlsgate import MESSAGE, MODULE, PolicyDir, passdb_block

D = ms.DOMAIN
PW = "Secret-123"


def allow_startup_errors(dovecot, marker):
    """The harness treats any auth error at start as a failed start; the
    errors of a missing policy are expected here."""
    def startup_failure():
        if dovecot.proc is None or dovecot.proc.poll() is not None:
            return "dovecot exited"
        for m in re.finditer(r"^.*(?:auth|master|config): (?:Fatal|Error): .*$",
                             dovecot.log(), re.M):
            if marker not in m.group(0):
                return m.group(0)
        return None
    dovecot._startup_failure = startup_failure


def start_dovecot(factory, tmp_path_factory, name, rules, *, failure="tempfail", **dovecot_kw):
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built (make)")
    pol = PolicyDir(tmp_path_factory.mktemp(name + "-etc"), rules, failure=failure)
    st = factory(name=name, start=False, postfix=False,
                 dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                                 **dovecot_kw))
    st.add_user(f"alice@{D}", PW)
    st.add_user(f"off@{D}", PW, extra="tlsgate_mode=off")
    if rules is None:
        allow_startup_errors(st.dovecot, "tlsgate passdb: ")
    st.start()
    st.policy = pol
    return st


def login(st, user, mode="plain", password=PW, source="127.0.0.2"):
    t0 = time.monotonic()
    with st.imap(mode, source_address=source) as c:
        r = c.try_login(user, password)
    return r, time.monotonic() - t0


def test_no_policy_tempfail_then_policy_appears(stack_factory, tmp_path_factory):
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-nopolicy", None)
    d = st.dovecot
    d.wait_log(r"tlsgate passdb: .*no policy loaded")
    for user, mode in ((f"alice@{D}", "plain"), (f"off@{D}", "starttls")):
        (typ, text), _ = login(st, user, mode)
        assert typ == "NO" and text.startswith("[UNAVAILABLE] Temporary authentication failure"), text
    assert "no policy in force" in d.log()
    # lookups without a login still work
    assert d.doveadm("auth", "lookup", f"alice@{D}", check=False).returncode == 0
    # the policy appears: the next login (after at most a second) follows it
    st.policy.policy.mkdir()
    st.policy.write("main.conf", f"require @{D}\n")
    ms.wait_for(lambda: login(st, f"alice@{D}", "starttls")[0][0] == "OK", 10,
                what="policy loaded")
    assert login(st, f"alice@{D}")[0][0] == "NO"
    assert "policy reloaded from" in d.log()


def test_no_policy_failure_allow(stack_factory, tmp_path_factory):
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-allow", None, failure="allow")
    d = st.dovecot
    d.wait_log(r"no policy loaded: logins are allowed \(failure = allow\)")
    assert login(st, f"alice@{D}")[0][0] == "OK"
    d.wait_log(r"auth: Warning: tlsgate passdb: no policy in force: login of alice@example.test allowed")


def test_refusal_timing_like_wrong_password_without_penalty(stack_factory, tmp_path_factory):
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-penalty", f"require @{D}\n",
                       auth_penalty=True, config_extra="auth_failure_delay = 2s\n")
    # each measurement from its own address: the penalty is per client IP
    (r_refused, t_refused) = login(st, f"alice@{D}", source="127.0.0.3")
    (r_wrong_req, t_wrong_req) = login(st, f"alice@{D}", password="x", source="127.0.0.4")
    (r_wrong_off, t_wrong_off) = login(st, f"off@{D}", password="x", source="127.0.0.5")
    assert r_refused[0] == "NO" and r_refused[1].startswith("[PRIVACYREQUIRED]")
    assert r_wrong_req == r_wrong_off == ("NO", "[AUTHENTICATIONFAILED] Authentication failed.")
    # same timing class: every failure waits in Dovecot's failure queue
    # (auth_failure_delay 2s, checked with whole-second timestamps: 1-2.5s)
    for t in (t_refused, t_wrong_req, t_wrong_off):
        assert 1.0 <= t < 3.0, (t_refused, t_wrong_req, t_wrong_off)
    # the auth penalty: the next login from an address that sent a wrong
    # password is delayed; a refusal after the right password is no guess
    # and leaves its address alone
    (ok1, t_after_refusal) = login(st, f"alice@{D}", "starttls", source="127.0.0.3")
    (ok2, t_after_wrong) = login(st, f"alice@{D}", "starttls", source="127.0.0.4")
    (ok3, t_first) = login(st, f"alice@{D}", "starttls", source="127.0.0.6")
    assert ok1[0] == ok2[0] == ok3[0] == "OK"
    assert t_first < 1.4, t_first
    assert t_after_refusal < 1.4, t_after_refusal
    assert t_after_wrong >= 1.5, t_after_wrong


# One allocator arena: the loader thread would otherwise get an arena of its
# own, whose address space reservation (64 MB, more or less free) depends
# on the machine and would hide how much a second copy of the policy needs.
ONE_ARENA = "import_environment = $import_environment MALLOC_ARENA_MAX=1\n"


def vm_size(pid: int) -> int:
    """The process's address space in bytes (what vsz_limit caps)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmSize:\s+(\d+) kB$", status, re.M).group(1)) * 1024


def test_reload_out_of_memory_keeps_policy(stack_factory, tmp_path_factory):
    """A reload that runs out of memory keeps the old policy in force.

    The limit is measured on this machine, not assumed: a first instance,
    unlimited, gives the auth process's size with a one-rule policy and
    with the big one; the second instance runs with vsz_limit = that size
    plus half of what the big policy took, which fits one copy of it but
    not the two a reload holds at once."""
    big = f"require @{D}\n" + "".join(f"off user{i}@{D}\n" for i in range(150000))
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-oom-measure", f"require @{D}\n",
                       config_extra="service auth {\n  vsz_limit = 0\n}\n" + ONE_ARENA)
    d = st.dovecot
    pid = d.auth_pid()
    assert login(st, f"alice@{D}")[0][0] == "NO"
    small = vm_size(pid)
    mark = d.log_mark()
    st.policy.write("main.conf", big)
    ms.wait_for(lambda: login(st, f"alice@{D}") and "(150001 mode rules" in d.log(mark), 30,
                what="big policy loaded")
    assert d.auth_pid() == pid
    loaded = vm_size(pid)
    one_copy = loaded - small
    assert one_copy >= 8 << 20, f"the big policy took only {one_copy} bytes"
    st.stop()

    limit_kb = (loaded + one_copy // 2) // 1024
    st = start_dovecot(stack_factory, tmp_path_factory, "tg-oom", big,
                       config_extra=f"service auth {{\n  vsz_limit = {limit_kb}k\n}}\n" + ONE_ARENA)
    d = st.dovecot
    d.wait_log(r"tlsgate passdb: policy loaded from .*150001 mode rules")
    pid = d.auth_pid()
    assert login(st, f"alice@{D}")[0][0] == "NO"
    mark = d.log_mark()
    st.policy.write("main.conf", big + f"off alice@{D}\n")
    ms.wait_for(lambda: login(st, f"alice@{D}") and
                "a policy load ran out of memory" in d.log(mark), 20, what="out of memory")
    log = d.log(mark)
    assert "main.conf: out of memory" in log
    assert "the previous policy stays in force" in log
    assert login(st, f"alice@{D}")[0] == ("NO", f"[PRIVACYREQUIRED] {MESSAGE}")
    assert d.auth_pid() == pid			# refused by the old policy, not by a new process

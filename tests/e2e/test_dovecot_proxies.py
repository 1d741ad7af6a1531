"""The `tlsgate` passdb where providers put Dovecot behind proxies: on the
Dovecot proxies, on the backends (the proxies forward the client's TLS as
`forward_tls`, believed only from `trusted_proxies`), and behind HAProxy
(PROXY protocol v2 with its SSL TLV). Real Dovecot instances: the proxy on
127.0.0.1, the backend on 127.0.0.5, HAProxy on 127.0.0.1; clients from
127.0.0.2. Each deployment: plaintext refused with the admin's text,
STARTTLS and implicit TLS allowed, IMAP and POP3.
"""

from __future__ import annotations

import pytest

import mailstack as ms
import proxies
from dovecot_tlsgate import MESSAGE, MODULE, PolicyDir, passdb_block, wait_event

D = ms.DOMAIN
PW = "Secret-123"
USER = f"alice@{D}"
RULES = f"require @{D}\n"
REFUSED = {"imap": ("NO", f"[PRIVACYREQUIRED] {MESSAGE}"),
           "pop3": (False, f"-ERR [SYS/PERM] {MESSAGE}")}
CASES = [(proto, mode) for proto in ("imap", "pop3") for mode in ("plain", "starttls", "tls")]


def login(st, proto, mode, host, port, user=USER, password=PW, source=ms.CLIENT_ADDR):
    """One login; IMAP ("OK"|"NO", text), POP3 (ok, text)."""
    ctx = st.context()
    if proto == "imap":
        c = ms.ImapClient(host, port, tls=mode == "tls", ssl_context=ctx, source_address=source)
        try:
            if mode == "starttls":
                c.starttls()
            return c.try_login(user, password)
        finally:
            c.shutdown()
    c = ms.Pop3Client(host, port, tls=mode == "tls", ssl_context=ctx, source_address=source)
    with c:
        if mode == "starttls":
            c.stls()
        return c.try_login(user, password)


def port_name(proto, mode):
    return proto + ("s" if mode == "tls" else "")


def assert_outcome(result, proto, mode):
    if mode == "plain":
        assert result == REFUSED[proto], result
    else:
        assert result[0] in ("OK", True), result


def make_pair(factory, tmp_path_factory, name, *, proxy_kw, backend_kw, proxy_users,
              backend_users):
    """A Dovecot proxy (127.0.0.1) and its backend (127.0.0.5), started."""
    front = factory(name=name + "-proxy", start=False, postfix=False, dovecot_kw=proxy_kw)
    back = factory(name=name + "-backend", start=False, postfix=False)
    backend = proxies.add_backend(back, front.dovecot, **backend_kw)
    for user, pw, extra in backend_users:
        backend.add_user(user, pw, extra=extra)
    for user, pw, extra in proxy_users:
        front.add_user(user, pw, extra=extra)
    back.start()
    front.start()
    front.backend = backend
    return front


def module_required():
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built (make)")


# ---- on the proxies ---------------------------------------------------------

@pytest.fixture(scope="module", params=["password", "nopassword"])
def on_proxy(request, session_stack_factory, tmp_path_factory):
    """tlsgate on the proxy. `password`: the proxy's passwd-file checks the
    password and returns proxy=y (result_success = continue-ok);
    `nopassword`: it returns proxy=y nopassword=y and the backend checks
    the password."""
    module_required()
    pol = PolicyDir(tmp_path_factory.mktemp("onproxy-etc"), RULES)
    fields = proxies.proxy_fields()
    if request.param == "nopassword":
        proxy_users = [(USER, "", fields + " nopassword=y")]
    else:
        proxy_users = [(USER, PW, fields)]
    st = make_pair(session_stack_factory, tmp_path_factory, "onproxy-" + request.param,
                   proxy_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE]),
                   backend_kw=dict(login_trusted_networks=ms.SERVER_ADDR),
                   proxy_users=proxy_users, backend_users=[(USER, PW, None)])
    st.variant = request.param
    return st


@pytest.mark.parametrize("proto, mode", CASES)
def test_on_the_proxy(on_proxy, proto, mode):
    st = on_proxy
    mark = st.dovecot.log_mark()
    r = login(st, proto, mode, ms.SERVER_ADDR, st.dovecot.ports[port_name(proto, mode)])
    assert_outcome(r, proto, mode)
    wait_event(st.dovecot, mark, user=USER, client=ms.CLIENT_ADDR,
               tls="none" if mode == "plain" else "yes",
               verdict="reject" if mode == "plain" else "allow")
    if mode != "plain":   # the backend served the session
        st.backend.wait_log(rf"{proto}-login: Info: Login: user=<{USER}>.*rip={ms.CLIENT_ADDR}", since=0)


def test_on_the_proxy_wrong_password(on_proxy):
    st = on_proxy
    r = login(st, "imap", "starttls", ms.SERVER_ADDR, st.dovecot.ports["imap"], password="wrong")
    assert r[0] == "NO" and "PRIVACYREQUIRED" not in r[1], r


# ---- on the backends ----------------------------------------------------------

FORGER = "127.0.0.3"   # in the backend's login_trusted_networks, not a proxy


@pytest.fixture(scope="module")
def on_backend(session_stack_factory, tmp_path_factory):
    """tlsgate on the backend; the proxy's passdb returns forward_tls=%c;
    the backend believes it only from trusted_proxies = 127.0.0.1."""
    module_required()
    pol = PolicyDir(tmp_path_factory.mktemp("onbackend-etc"), RULES)
    with open(pol.conf, "a") as f:
        f.write(f"trusted_proxies = {ms.SERVER_ADDR}/32\n")
    st = make_pair(session_stack_factory, tmp_path_factory, "onbackend",
                   proxy_kw={},
                   backend_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                                   login_trusted_networks=f"{ms.SERVER_ADDR} {FORGER}"),
                   proxy_users=[(USER, PW, proxies.proxy_fields(forward_tls=True))],
                   backend_users=[(USER, PW, None)])
    return st


@pytest.mark.parametrize("proto, mode", CASES)
def test_on_the_backend(on_backend, proto, mode):
    st = on_backend
    mark = st.backend.log_mark()
    r = login(st, proto, mode, ms.SERVER_ADDR, st.dovecot.ports[port_name(proto, mode)])
    assert_outcome(r, proto, mode)
    # decided on the backend, on the client's address and TLS
    wait_event(st.backend, mark, user=USER, client=ms.CLIENT_ADDR,
               tls="none" if mode == "plain" else "yes",
               verdict="reject" if mode == "plain" else "allow")
    assert "ignoring forward_tls" not in st.backend.log(mark)


@pytest.mark.parametrize("source", [FORGER, ms.CLIENT_ADDR])
def test_forged_forward_tls_does_not_help(on_backend, source):
    """A plaintext client that reaches the backend itself and claims TLS
    the way a proxy forwards it: from an address Dovecot trusts (FORGER)
    the claim reaches the module, which ignores and logs it; from any
    other address Dovecot drops it."""
    st = on_backend
    b = st.backend
    mark = b.log_mark()
    c = proxies.imap_to(proxies.BACKEND_ADDR, b.ports["imap"], source)
    try:
        typ, _ = c.xatom("ID", '("x-forward-tls" "TLS" "x-originating-ip" "203.0.113.9")')
        assert typ == "OK"
        assert c.try_login(USER, PW) == REFUSED["imap"]
    finally:
        c.shutdown()
    ev = wait_event(b, mark, user=USER, verdict="reject", tls="none")
    if source == FORGER:
        assert ev["client"] == "203.0.113.9"
        b.wait_log(r'tlsgate passdb: user alice@example\.test: ignoring forward_tls="TLS" '
                   rf'from {FORGER}, which is not in trusted_proxies', since=mark)
    else:
        assert ev["client"] == source


# ---- behind HAProxy -------------------------------------------------------------

@pytest.fixture(scope="module")
def behind_haproxy(session_stack_factory, tmp_path_factory, certs):
    """HAProxy on 127.0.0.1 in front of one Dovecot with tlsgate: TCP
    frontends (STARTTLS and plaintext pass through) and TLS-terminating
    ones (PROXY v2 with the SSL TLV)."""
    module_required()
    pol = PolicyDir(tmp_path_factory.mktemp("haproxy-etc"), RULES)
    hp_ports = {"imap-haproxy": ms.free_port(), "pop3-haproxy": ms.free_port()}
    st = session_stack_factory(
        name="haproxy-dovecot", start=False, postfix=False,
        dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                        config_extra=proxies.haproxy_listeners(hp_ports)))
    st.add_user(USER, PW)
    st.start()
    hp = proxies.HAProxy(tmp_path_factory.mktemp("haproxy"), certs.server, hp_ports).start()
    st.haproxy = hp
    yield st
    hp.stop()


@pytest.mark.parametrize("proto, mode", CASES)
def test_behind_haproxy(behind_haproxy, proto, mode):
    st = behind_haproxy
    d = st.dovecot
    mark = d.log_mark()
    r = login(st, proto, mode, ms.SERVER_ADDR, st.haproxy.ports[port_name(proto, mode)])
    assert_outcome(r, proto, mode)
    # Dovecot saw the client's address and, for TLS at HAProxy, the SSL TLV
    wait_event(d, mark, user=USER, client=ms.CLIENT_ADDR,
               tls="none" if mode == "plain" else "yes",
               verdict="reject" if mode == "plain" else "allow")

"""`tlsgate probe` against real Dovecot 2.3 and Postfix 3.7 on loopback
(mailstack), and against small misbehaving servers (probe_fakes).

Stacks (one per module, or per certificate variant):
  strict  Dovecot with disable_plaintext_auth = yes; Postfix with
          smtpd_tls_auth_only = yes, smtp/submission limited to TLSv1.2
          (smtpd_tls_protocols), smtps to TLSv1.2+ (mandatory protocols).
  lax     the harness defaults (cleartext login allowed before TLS) and
          Dovecot accepting TLSv1 (ssl_min_protocol, @SECLEVEL=0).
  certs   Dovecot alone with a wrong-name / expired / self-signed /
          untrusted-CA certificate.
The probe runs from 127.0.0.2 (--source): Dovecot treats connections from
its own address as secured and would hide LOGINDISABLED.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import mailstack
import probe_fakes

REPO = Path(__file__).resolve().parent.parent.parent
# TLSGATE_BIN: another build (e.g. with SANITIZE=address,undefined)
TLSGATE = Path(os.environ.get("TLSGATE_BIN",
                              Path(os.environ.get("TLSGATE_BUILD", REPO / "build")) / "tlsgate"))
HOST = mailstack.SERVER_ADDR
NAME = mailstack.SERVER_NAME
FAST = ["--timeout", "2", "--source", mailstack.CLIENT_ADDR]

DOVECOT_SERVICES = [("imap", "imap"), ("imaps", "imaps"), ("pop3", "pop3"),
                    ("pop3s", "pop3s"), ("submission", "submission"),
                    ("smtps", "submissions"), ("sieve", "sieve")]


def probe(*args, expect_json: bool = True, timeout: float = 60, conf=None):
    """Runs tlsgate probe (with `-c conf` if given); returns (exit code,
    parsed JSON or stdout, stderr)."""
    assert TLSGATE.exists(), "build tlsgate first (make)"
    # without conf, never the machine's own tlsgate.conf
    cmd = [str(TLSGATE), *(["-c", str(conf)] if conf else ["--no-config"]), "probe",
           *map(str, args)]
    if expect_json:
        cmd.append("--json")
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = cp.stdout
    if expect_json and cp.returncode != 3:
        out = json.loads(cp.stdout)
        assert out["exit_code"] == cp.returncode
    return cp.returncode, out, cp.stderr


def endpoint_url(service: str, port: int) -> str:
    return f"{service}://{HOST}:{port}"


def by_port(doc) -> dict:
    return {e["port"]: e for e in doc["endpoints"]}


def reasons(ep, level=None) -> str:
    return "\n".join(r["text"] for r in ep["reasons"] if level in (None, r["level"]))


def _stack(tmp_path_factory, certs, name, cert=None, **kw):
    st = mailstack.Stack(tmp_path_factory.mktemp(name), cert or certs.server,
                         ca=certs.ca.cert, **kw)
    st.start()
    return st


@pytest.fixture(scope="module")
def strict(tmp_path_factory, certs):
    st = _stack(tmp_path_factory, certs, "probe-strict",
                dovecot_kw=dict(config_extra="disable_plaintext_auth = yes\n"),
                postfix_kw=dict(main_extra={
                    "smtpd_tls_auth_only": "yes",
                    "smtpd_tls_protocols": ">=TLSv1.2, <=TLSv1.2",
                    "smtpd_tls_mandatory_protocols": ">=TLSv1.2"}))
    yield st
    st.stop()


@pytest.fixture(scope="module")
def lax(tmp_path_factory, certs):
    st = _stack(tmp_path_factory, certs, "probe-lax",
                dovecot_kw=dict(config_extra="ssl_min_protocol = TLSv1\n"
                                "ssl_cipher_list = ALL:@SECLEVEL=0\n"))
    yield st
    st.stop()


# ---- real servers: good configuration

def test_strict_dovecot_is_ready(strict, certs):
    p = strict.dovecot.ports
    urls = [endpoint_url(svc, p[port]) for svc, port in DOVECOT_SERVICES]
    rc, doc, _ = probe("--ca", certs.ca.cert, "--name", NAME, *FAST, *urls)
    eps = by_port(doc)
    assert len(eps) == len(DOVECOT_SERVICES)
    for svc, port in DOVECOT_SERVICES:
        ep = eps[p[port]]
        assert ep["service"] == svc
        assert ep["verdict"] == "ready", (svc, ep["reasons"])
        assert ep["reachable"] and ep["tls_ok"]
        assert ep["certificate"]["verified"] is True
        assert ep["certificate"]["subject_cn"] == NAME
        assert 360 <= ep["certificate"]["days_left"] <= 365
        assert ep["versions"]["TLSv1.2"] == "accepted"
        assert ep["versions"]["TLSv1.3"] == "accepted"
        assert ep["highest_version"] == "TLSv1.3"
        assert ep["tls_protocol"] == "TLSv1.3"
        if ep["tls_style"] == "starttls":
            assert ep["starttls_offered"] is True
            assert ep["plaintext_auth_advertised"] is False
    assert doc["verdict"] == "ready" and rc == 0
    # the same seen through a real client: LOGINDISABLED before STARTTLS
    with strict.imap() as c:
        assert "LOGINDISABLED" in c.capabilities


def test_text_report_and_exit_code(strict, certs):
    rc, out, _ = probe("--ca", certs.ca.cert, "--name", NAME, *FAST,
                       endpoint_url("imap", strict.dovecot.ports["imap"]),
                       expect_json=False)
    assert rc == 0
    assert "imap 127.0.0.1:%d (IMAP STARTTLS): ready" % strict.dovecot.ports["imap"] in out
    assert f"verified     for {NAME}: yes" in out
    assert "overall: ready (1 ready, 0 with warnings, 0 not ready, 0 closed)" in out


def test_expiry_warning_threshold(strict, certs):
    rc, doc, _ = probe("--ca", certs.ca.cert, "--name", NAME, "--no-sweep",
                       "--warn-days", "400", *FAST,
                       endpoint_url("pop3s", strict.dovecot.ports["pop3s"]))
    ep = doc["endpoints"][0]
    days = ep["certificate"]["days_left"]
    assert rc == 1 and ep["verdict"] == "warnings"
    assert f"the certificate expires in {days} days" in reasons(ep, "warning")


def test_postfix_limited_to_tls12(strict, certs):
    q = strict.postfix.ports
    rc, doc, _ = probe("--ca", certs.ca.cert, "--name", NAME, *FAST,
                       endpoint_url("smtp", q["smtp"]),
                       endpoint_url("submission", q["submission"]),
                       endpoint_url("smtps", q["smtps"]))
    eps = by_port(doc)
    for port in (q["smtp"], q["submission"]):
        ep = eps[port]
        assert ep["versions"] == {"TLSv1": "refused", "TLSv1.1": "refused",
                                  "TLSv1.2": "accepted", "TLSv1.3": "refused"}
        assert ep["lowest_version"] == ep["highest_version"] == "TLSv1.2"
        assert ep["tls_protocol"] == "TLSv1.2"
        assert ep["verdict"] == "ready"
        assert "TLSv1.3 is not offered" in reasons(ep, "note")
        assert ep["plaintext_auth_advertised"] is False
    smtps = eps[q["smtps"]]
    assert smtps["lowest_version"] == "TLSv1.2" and smtps["highest_version"] == "TLSv1.3"
    assert rc == 0


def test_ip_address_checks_ip_san(strict, certs):
    """Without --name the host (an IP here) must be in the IP SANs."""
    rc, doc, _ = probe("--ca", certs.ca.cert, "--no-sweep", *FAST,
                       endpoint_url("imaps", strict.dovecot.ports["imaps"]))
    ep = doc["endpoints"][0]
    assert ep["name"] == HOST and ep["certificate"]["verified"] is True
    assert ep["versions"]["TLSv1.2"] == "not tested"
    assert rc == 0


def test_other_name_is_not_ready(strict, certs):
    rc, doc, _ = probe("--ca", certs.ca.cert, "--name", "imap.other.test", *FAST,
                       endpoint_url("imaps", strict.dovecot.ports["imaps"]))
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["verdict"] == "not ready"
    assert ep["certificate"]["verified"] is False
    assert "not valid for imap.other.test (it names DNS:mail.test, DNS:localhost, " \
           "IP:127.0.0.1)" in reasons(ep, "problem")


def test_system_trust_store_does_not_know_the_test_ca(strict):
    rc, doc, _ = probe("--name", NAME, "--no-sweep", *FAST,
                       endpoint_url("pop3s", strict.dovecot.ports["pop3s"]))
    ep = doc["endpoints"][0]
    assert rc == 2
    assert ('the certificate (issued by "tlsgate test CA") chains to a self-signed '
            'root that is not trusted') in reasons(ep, "problem")


# ---- real servers: lax configuration

def test_lax_stack_warns(lax, certs):
    p, q = lax.dovecot.ports, lax.postfix.ports
    rc, doc, _ = probe("--ca", certs.ca.cert, "--name", NAME, *FAST,
                       endpoint_url("imap", p["imap"]), endpoint_url("pop3", p["pop3"]),
                       endpoint_url("sieve", p["sieve"]),
                       endpoint_url("imaps", p["imaps"]),
                       endpoint_url("smtp", q["smtp"]),
                       endpoint_url("submission", q["submission"]))
    eps = by_port(doc)
    imap = eps[p["imap"]]
    assert imap["plaintext_auth_advertised"] is True
    assert "no LOGINDISABLED" in reasons(imap, "warning")
    with lax.imap() as c:   # a real client agrees
        assert "LOGINDISABLED" not in c.capabilities
    assert "(USER, SASL PLAIN LOGIN)" in reasons(eps[p["pop3"]], "warning")
    assert 'SASL "PLAIN LOGIN"' in reasons(eps[p["sieve"]], "warning")
    sub = eps[q["submission"]]
    assert "AUTH is advertised before STARTTLS (AUTH PLAIN LOGIN)" in reasons(sub, "warning")
    mx = eps[q["smtp"]]     # the MX port offers no AUTH at all
    assert mx["plaintext_auth_advertised"] is False and mx["auth_mechanisms"] == ""
    imaps = eps[p["imaps"]]
    assert imaps["versions"]["TLSv1"] == "accepted"
    assert imaps["lowest_version"] == "TLSv1"
    assert "still accepts TLSv1, TLSv1.1" in reasons(imaps, "warning")
    for ep in doc["endpoints"]:
        assert ep["verdict"] in ("ready", "warnings"), ep
        assert ep["certificate"]["verified"] is True
    assert doc["verdict"] == "warnings" and rc == 1


# ---- certificate variants (Dovecot alone)

CERT_CASES = {
    "wrong_name": ("the certificate is not valid for mail.test (it names DNS:wrong.test)",
                   False),
    "expired": ("the certificate expired on 2001-01-01", True),
    "self_signed": ("the certificate is self-signed", False),
    "untrusted": ('(issued by "tlsgate untrusted CA") chains to a self-signed root '
                  'that is not trusted', False),
    # the server sends only its own certificate, not the issuing CA
    "untrusted_leaf_only": ('issuer "tlsgate untrusted CA" is not a trusted CA (or the '
                            'server does not send the intermediate certificate)', False),
}


def _variant_cert(certs, variant: str) -> mailstack.Cert:
    if variant == "untrusted_leaf_only":
        c = certs.untrusted
        return mailstack.Cert(name=c.name, cert=c.cert, key=c.key, chain=c.cert, ca=c.ca)
    return getattr(certs, variant)


@pytest.fixture(scope="module", params=sorted(CERT_CASES))
def cert_variant(request, tmp_path_factory, certs):
    st = _stack(tmp_path_factory, certs, "probe-" + request.param,
                cert=_variant_cert(certs, request.param), postfix=False)
    yield request.param, st
    st.stop()


def test_certificate_problems(cert_variant, certs):
    variant, st = cert_variant
    want, expired = CERT_CASES[variant]
    rc, doc, _ = probe("--ca", certs.ca.cert, "--name", NAME, *FAST,
                       endpoint_url("imap", st.dovecot.ports["imap"]),
                       endpoint_url("imaps", st.dovecot.ports["imaps"]))
    assert rc == 2 and doc["verdict"] == "not ready"
    for ep in doc["endpoints"]:
        assert ep["tls_ok"] is True        # TLS works, the certificate does not
        cert = ep["certificate"]
        assert cert["verified"] is False
        assert cert["expired"] is expired
        if expired:
            assert cert["days_left"] < -9000 and cert["not_after"] == "2001-01-01"
        assert any(want in e for e in cert["errors"]), cert["errors"]
        assert want in reasons(ep, "problem")
        assert ep["verdict"] == "not ready"


# ---- misbehaving or missing servers

@pytest.mark.parametrize("service", sorted(probe_fakes.PLAINTEXT_ONLY))
def test_plaintext_only_listener(service):
    with probe_fakes.FakeServer(probe_fakes.PLAINTEXT_ONLY[service]) as fake:
        rc, doc, _ = probe("--timeout", "2", endpoint_url(service, fake.port))
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["failure"] == "no-starttls"
    assert ep["starttls_offered"] is False and ep["tls_ok"] is False
    assert ep["plaintext_auth_advertised"] is True
    word = "STLS" if service == "pop3" else "STARTTLS"
    assert f"{word} is not offered" in reasons(ep, "problem")
    assert all(v == "not tested" for v in ep["versions"].values())


def test_silent_listener_times_out():
    with probe_fakes.FakeServer(probe_fakes.silent) as fake:
        t0 = time.monotonic()
        rc, doc, _ = probe("--timeout", "0.5", endpoint_url("imap", fake.port))
        took = time.monotonic() - t0
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["failure"] == "dialogue"
    assert "no greeting within 500 ms" in ep["error"]
    assert 0.4 < took < 3


def test_handshake_stall_times_out_everywhere():
    with probe_fakes.FakeServer(probe_fakes.STALL_AFTER_STARTTLS) as fake:
        t0 = time.monotonic()
        rc, doc, _ = probe("--timeout", "0.3", endpoint_url("imap", fake.port))
        took = time.monotonic() - t0
        accepted = fake.accepted
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["failure"] == "tls"
    assert "TLS handshake timed out: no progress within 300 ms" in ep["error"]
    assert set(ep["versions"].values()) == {"unknown"}   # stalls say nothing
    assert accepted == 5                                   # main + 4 versions
    assert took < 5


def test_trickling_server_is_cut_off():
    """Lines arrive well within --timeout, but the whole connection may
    last only 4 timeouts."""
    with probe_fakes.FakeServer(probe_fakes.trickle) as fake:
        t0 = time.monotonic()
        rc, doc, _ = probe("--timeout", "0.5", endpoint_url("imap", fake.port))
        took = time.monotonic() - t0
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["failure"] == "dialogue"
    assert "the connection took longer than 2000 ms in all" in ep["error"]
    assert 1.8 < took < 4


def test_implicit_tls_port_that_speaks_plaintext(strict):
    rc, doc, _ = probe(*FAST, "--no-sweep", endpoint_url("smtps", strict.postfix.ports["smtp"]))
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["failure"] == "tls"
    assert "the server does not answer with TLS: a plaintext port?" in ep["error"]


def test_data_after_starttls_reply():
    with probe_fakes.FakeServer(probe_fakes.DATA_AFTER_STARTTLS) as fake:
        rc, doc, _ = probe("--timeout", "2", "--no-sweep", endpoint_url("imap", fake.port))
    ep = doc["endpoints"][0]
    assert rc == 2 and "sent data after its STARTTLS reply" in ep["error"]


def test_garbage_and_overlong_greetings():
    with probe_fakes.FakeServer(probe_fakes.GARBAGE_GREETING) as g, \
         probe_fakes.FakeServer(probe_fakes.LONG_GREETING) as big:
        rc, doc, _ = probe("--timeout", "2", endpoint_url("smtp", g.port),
                           endpoint_url("pop3", big.port))
    garbage, long_ = doc["endpoints"]
    assert rc == 2
    assert "NUL byte in a server reply" in garbage["error"]
    assert all(0x20 <= ord(ch) < 0x7f for ch in garbage["error"])
    assert "reply line longer than 4096 bytes" in long_["error"]


def test_server_speaking_another_protocol(strict):
    rc, doc, _ = probe(*FAST, "--protocol", "imap", f"{HOST}:{strict.postfix.ports['smtp']}")
    ep = doc["endpoints"][0]
    assert rc == 2 and ep["service"] == "imap"
    assert 'not an IMAP greeting: "220 mail.test ESMTP"' in ep["error"]


def test_closed_port_and_unresolvable_name():
    closed = mailstack.free_port()
    rc, doc, _ = probe("--timeout", "1", endpoint_url("imaps", closed), "bad..name")
    ep, unknown = doc["endpoints"]
    assert rc == 2
    assert ep["reachable"] is False and ep["failure"] == "connect"
    assert "Connection refused" in ep["error"]
    assert unknown["service"] is None and unknown["failure"] == "resolve"
    assert "cannot resolve bad..name" in unknown["error"]


STANDARD_PORTS = (143, 993, 110, 995, 25, 587, 465, 4190)


def test_host_only_probes_standard_ports_and_skips_closed_ones():
    if set(STANDARD_PORTS) & mailstack.listening_ports():
        pytest.skip("a standard mail port is open on 127.0.0.1 here")
    rc, doc, _ = probe("--timeout", "1", HOST)
    assert [e["port"] for e in doc["endpoints"]] == list(STANDARD_PORTS)
    assert {e["verdict"] for e in doc["endpoints"]} == {"closed"}
    assert rc == 2 and doc["verdict"] == "not ready"
    rc, out, _ = probe("--timeout", "1", HOST, expect_json=False)
    assert "overall: not ready (nothing answers on any probed port)" in out


@pytest.mark.parametrize("args, message", [
    ([], "give at least one endpoint"),
    (["--timeout", "0", "127.0.0.1:143"], "--timeout needs seconds"),
    (["--timeout", "abc", "127.0.0.1:143"], "--timeout needs seconds"),
    (["--protocol", "gopher", "127.0.0.1"], "unknown --protocol 'gopher'"),
    (["127.0.0.1:20999"], "no standard service on this port"),
    (["gopher://127.0.0.1"], "unknown service 'gopher'"),
    (["[::1"], "missing ']'"),
    (["--source", "nowhere", "127.0.0.1:143"], "not an IP address"),
    (["--ca", "/nonexistent/ca.pem", "127.0.0.1:143"], "cannot load the CA certificates"),
    (["--warn-days", "-1", "127.0.0.1:143"], "--warn-days"),
    (["--name", "", "127.0.0.1:143"], "--name needs a host name"),
    (["--name", "a b", "127.0.0.1:143"], "--name needs a host name"),
])
def test_usage_errors_exit_3(args, message):
    rc, out, err = probe(*args, expect_json=False)
    assert rc == 3, (out, err)
    assert message in err
    assert out == ""

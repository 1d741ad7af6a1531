"""`tlsgate probe` run with tlsgate's configuration, against a Dovecot and
Postfix set up as docs/dovecot.md says (cleartext login allowed before
STARTTLS, so that exempt and audit accounts can still log in): cleartext
login on offer is then expected, noted, and the server is "ready"."""

from __future__ import annotations

import pytest

import mailstack
from test_probe import FAST, NAME, by_port, endpoint_url, probe, reasons


@pytest.fixture(scope="module")
def per_account(tmp_path_factory, certs):
    # TLSv1.2+ only, so that cleartext login is the one finding.
    st = mailstack.Stack(tmp_path_factory.mktemp("probe-conf"), certs.server,
                         ca=certs.ca.cert,
                         dovecot_kw=dict(config_extra="ssl_min_protocol = TLSv1.2\n"),
                         postfix_kw=dict(main_extra={
                             "smtpd_tls_protocols": ">=TLSv1.2",
                             "smtpd_tls_mandatory_protocols": ">=TLSv1.2"}))
    st.start()
    yield st
    st.stop()


def conf_file(tmp_path):
    policy = tmp_path / "policy.conf"
    policy.write_text("audit *\n")
    conf = tmp_path / "tlsgate.conf"
    conf.write_text(f"policy = {policy}\n")
    return conf


def urls(st):
    p, q = st.dovecot.ports, st.postfix.ports
    return [endpoint_url("imap", p["imap"]), endpoint_url("pop3", p["pop3"]),
            endpoint_url("submission", q["submission"])]


def test_cleartext_login_on_offer_is_information_with_the_config(per_account, certs, tmp_path):
    conf = conf_file(tmp_path)
    args = ["--ca", certs.ca.cert, "--name", NAME, *FAST, *urls(per_account)]
    rc, doc, _ = probe(*args, conf=conf)
    for ep in doc["endpoints"]:
        assert ep["plaintext_auth_advertised"] is True, ep
        assert ep["verdict"] == "ready", ep
        assert "expected with tlsgate" in reasons(ep, "note"), ep
        assert reasons(ep, "warning") == "", ep
    assert doc["verdict"] == "ready" and rc == 0

    # the same servers without the configuration: warnings, as before
    rc, doc, _ = probe(*args)
    assert doc["verdict"] == "warnings" and rc == 1
    sub = by_port(doc)[per_account.postfix.ports["submission"]]
    assert "clients may send passwords in cleartext" in reasons(sub, "warning")


def test_a_broken_config_is_an_error(tmp_path):
    conf = tmp_path / "tlsgate.conf"
    conf.write_text("policy = /nonexistent/policy.d\nbogus = 1\n")
    rc, out, err = probe("imap://127.0.0.1:1", conf=conf, expect_json=False)
    assert rc == 3 and "bogus" in err

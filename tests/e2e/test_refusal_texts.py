"""What a refused client is told, per reason, as `tlsgate check` and
`tlsgate explain` show it (the daemons' replies: test_policyd.py and
tests/unit/test-policyd-answer.c)."""

from __future__ import annotations

import subprocess

import pytest

from policyd_daemon import POLICYD

TLSGATE = POLICYD.parent / "tlsgate"
pytestmark = pytest.mark.skipif(not TLSGATE.exists(), reason=f"{TLSGATE} not built")

POLICY = """\
require @a.example min_tls=TLSv1.3
require own@a.example min_tls=TLSv1.3 min_tls_message="Old TLS: see https://a.example/tls"
"""


def tlsgate(policy, *args):
    return subprocess.run([str(TLSGATE), "--policy", str(policy), *args],
                          capture_output=True, text=True, timeout=30)


def explain(policy, user, tls):
    return tlsgate(policy, "explain", "--user", user, "--service", "smtp",
                   "--ip", "192.0.2.1", "--tls", tls)


def test_explain_names_the_text_for_old_tls_and_where_it_comes_from(tmp_path):
    policy = tmp_path / "p.conf"
    policy.write_text(POLICY)
    cp = explain(policy, "u@a.example", "TLSv1.2")
    assert "verdict: reject" in cp.stdout, cp.stdout
    assert ("client sees: Your mail program connected with TLSv1.2, but this server "
            "requires TLSv1.3 or newer.") in cp.stdout, cp.stdout
    assert "(the built-in min_tls text" in cp.stdout, cp.stdout
    assert "STARTTLS" not in cp.stdout

    cp = explain(policy, "own@a.example", "TLSv1.2")
    assert "client sees: Old TLS: see https://a.example/tls\n" in cp.stdout, cp.stdout
    assert "(the rule's min_tls_message=" in cp.stdout, cp.stdout

    cp = explain(policy, "own@a.example", "none")
    assert "client sees: " in cp.stdout and "Old TLS" not in cp.stdout, cp.stdout
    assert "as the rule has no message=" in cp.stdout, cp.stdout


@pytest.mark.parametrize("rule, why", [
    ("require @b.example min_tls_message=x", "min_tls_message= without min_tls="),
    ("audit @b.example min_tls=TLSv1.3 min_tls_message=x",
     "min_tls_message= does not go with audit"),
    ("require @b.example min_tls=TLSv1.3 min_tls_message=\"" + "x" * 513 + "\"",
     "min_tls_message is longer than 512 bytes"),
])
def test_check_refuses_a_bad_min_tls_message_with_file_and_line(tmp_path, rule, why):
    policy = tmp_path / "p.conf"
    policy.write_text(POLICY + rule + "\n")
    cp = tlsgate(policy, "check")
    assert cp.returncode == 1, cp.stdout
    assert f"{policy}:3: " in cp.stderr and why in cp.stderr, cp.stderr


def test_check_accepts_min_tls_message(tmp_path):
    policy = tmp_path / "p.conf"
    policy.write_text(POLICY)
    cp = tlsgate(policy, "check")
    assert cp.returncode == 0, cp.stderr

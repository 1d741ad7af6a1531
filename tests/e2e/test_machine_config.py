"""The suite never depends on the machine's own configuration.

conftest.py runs the session in a private mount namespace where
/etc/tlsgate/tlsgate.conf, /etc/dovecot/dovecot.conf and
/etc/postfix/main.cf are planted, unusable files (machine_isolation.py),
as on a machine where an admin has installed and configured everything.
These tests show that the planted files are what the default paths hold
(so any test that fell back to a default would fail), and that
`tlsgate --no-config` is the way to say "no configuration".
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import pytest

from machine_isolation import ENV_FLAG, PLANTED

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
TLSGATE = BUILD / "tlsgate"
POLICYD = BUILD / "tlsgate-policyd"

LOG = (
    "Nov 29 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=alice@example.com "
    "client=192.0.2.7 tls=none verdict=audit mode=audit rule=p:2 mech=PLAIN\n"
    "Nov 29 10:00:02 mx dovecot: auth: Info: tlsgate: service=imap user=printer@example.com "
    "client=192.0.2.10 tls=none verdict=exempt mode=audit rule=p:2 exemption=p:3\n")


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, **kw)


@pytest.fixture
def log(tmp_path) -> Path:
    p = tmp_path / "mail.log"
    p.write_text(LOG)
    return p


def test_default_paths_hold_the_planted_files():
    assert os.environ.get(ENV_FLAG) == "1"
    for path, text in PLANTED.items():
        assert Path(path).read_text() == text, path


def test_tlsgate_default_config_would_be_read(log):
    """Control: without -c/--policy/--no-config, tlsgate reads the default
    path, so a test that forgot the option would fail here."""
    cp = run(TLSGATE, "check")
    assert cp.returncode != 0 and "/etc/tlsgate/tlsgate.conf:3" in cp.stderr, cp
    cp = run(TLSGATE, "report", log)
    assert cp.returncode == 2 and "/etc/tlsgate/tlsgate.conf:3" in cp.stderr, cp


def test_no_config_reads_no_configuration(log, tmp_path):
    cp = run(TLSGATE, "--no-config", "report", "--would-break", "example.com", "--csv", log)
    assert cp.returncode == 0, cp.stderr
    rows = list(csv.DictReader(io.StringIO(cp.stdout)))
    assert {r["account"] for r in rows} == {"alice@example.com"}  # printer: exempt event
    cp = run(TLSGATE, "--no-config", "--help")
    assert cp.returncode == 0 and "--no-config" in cp.stdout
    # a command that needs a policy says how to give one
    cp = run(TLSGATE, "--no-config", "check")
    assert cp.returncode != 0 and "give --policy PATH" in cp.stderr, cp
    policy = tmp_path / "p.conf"
    policy.write_text("require @example.com\n")
    policy.chmod(0o644)
    cp = run(TLSGATE, "--no-config", "--policy", policy, "check")
    assert cp.returncode == 0, cp.stderr
    cp = run(TLSGATE, "--no-config", "-c", policy, "check")
    assert cp.returncode == 2 and "not both" in cp.stderr, cp


@pytest.mark.skipif(not POLICYD.exists(), reason=f"{POLICYD} not built")
def test_policyd_default_config_would_be_read():
    """Control: tlsgate-policyd without -c reads the planted file and stops."""
    cp = run(POLICYD, "-f", "--listen", "inet:127.0.0.1:1")
    assert cp.returncode != 0 and "/etc/tlsgate/tlsgate.conf" in cp.stderr, cp


def test_dovecot_and_postfix_defaults_would_be_read():
    """Control: Dovecot's and Postfix's tools without -c read the planted
    files; the harness always gives its own configuration."""
    cp = run("doveconf", "-n")
    assert cp.returncode != 0 and "/etc/dovecot/dovecot.conf line 2" in cp.stderr, cp
    cp = run("postconf", "-h", "queue_directory")
    assert cp.returncode != 0 and "inet_interfaces" in cp.stderr, cp


def test_installed_programs_would_fail():
    """Control: an installed tlsgate (PATH, /usr/local) is a program that
    exits 99; the tests run the build's own programs by path."""
    for cmd in (["tlsgate", "check"], ["/usr/local/sbin/tlsgate-policyd", "-f"]):
        cp = run(*cmd)
        assert cp.returncode == 99 and "an installed program was run" in cp.stderr, cp

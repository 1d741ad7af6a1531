"""The brownout recipes of docs/rollout.md run as written: the policy lines
pass `tlsgate check`, the `explain` line shows the window in force with
the message the client sees, and the `report` line lists who was refused
in the window, who moved to TLS and who is still in plaintext.

The commands are taken from the document; only the policy directory
(`--policy DIR` in front) and the log file names are this test's own.
The log holds event lines as tlsgate-policyd writes them through syslog
(`journalctl -o short-iso` form); real servers writing such lines are in
test_brownout_e2e.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
TLSGATE = BUILD / "tlsgate"
DOC = REPO / "docs" / "rollout.md"


def brownout_section() -> str:
    doc = DOC.read_text()
    m = re.search(r"^### Brownouts: .*?(?=^## )", doc, re.S | re.M)
    assert m, "docs/rollout.md has no brownout section"
    return m.group(0)


def blocks(text: str) -> list[str]:
    return re.findall(r"^```\n(.*?)^```", text, re.S | re.M)


def run(policy: Path, line: str, files: list[Path] | None = None) -> subprocess.CompletedProcess:
    """A `tlsgate ...` line of the document with --policy in front and its
    log glob replaced by `files`."""
    words = shlex.split(line)
    assert words[0] == "tlsgate", line
    if files is not None:
        words = [w for w in words if not w.startswith("/var/log/")] + [str(f) for f in files]
    return subprocess.run([str(TLSGATE), "--policy", str(policy), *words[1:]],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "TZ": "UTC"})


@pytest.fixture
def policy(tmp_path) -> Path:
    if not TLSGATE.is_file():
        pytest.fail("build tlsgate first (make)")
    rules = [b for b in blocks(brownout_section()) if "brownout=" in b]
    assert len(rules) == 2, rules
    d = tmp_path / "policy.d"
    d.mkdir()
    # the first block is the domain's file; the second, one rule of it
    (d / "50-example.com.conf").write_text(rules[0])
    return d


def commands() -> list[str]:
    return [line for b in blocks(brownout_section()) for line in b.splitlines()
            if line.startswith("tlsgate ")]


def test_policy_and_explain_lines(policy):
    check, explain, _ = commands()
    cp = run(policy, check)
    assert cp.returncode == 0, cp.stderr
    windows = re.findall(r"^  brownout: .*@example\.com (.*)$", cp.stdout, re.M)
    assert windows == ["2027-02-09 10:00 - 2027-02-09 11:00",
                       "2027-02-17 09:00 - 2027-02-17 13:00",
                       "2027-02-22 08:00 - 2027-02-22 16:00"], cp.stdout
    cp = run(policy, explain)
    assert cp.returncode == 0, cp.stderr
    assert "verdict: reject" in cp.stdout
    assert "brownout window 2027-02-09 10:00 - 2027-02-09 11:00 in force" in cp.stdout
    assert "client sees: TLS will be required from 2027-03-01. This was a test" in cp.stdout


def test_message_rule(tmp_path):
    rules = [b for b in blocks(brownout_section()) if "brownout=" in b]
    d = tmp_path / "policy.d"
    d.mkdir()
    (d / "50-example.com.conf").write_text(rules[1])
    _, explain, _ = commands()
    cp = run(d, explain)
    assert cp.returncode == 0, cp.stderr
    assert ("client sees: TLS will be required from 2027-03-01. This was a test. "
            "Settings: https://example.com/mail-tls") in cp.stdout


def event(stamp: str, user: str, tls: str, verdict: str, brownout: bool = False) -> str:
    mode = "require" if verdict == "reject" else "audit"
    return (f"2027-02-09T{stamp}+00:00 mail tlsgate-policyd[7]: tlsgate: service=smtp "
            f"user={user} client=198.51.100.7 tls={tls} verdict={verdict} mode={mode} "
            f"rule=/etc/tlsgate/policy.d/50-example.com.conf:2 enforce_from=2027-03-01"
            + (" brownout=yes" if brownout else "") + "\n")


def test_report_line_lists_the_brownout_accounts(policy, tmp_path):
    log = tmp_path / "mail.log"
    log.write_text(
        event("09:00:00", "alice@example.com", "none", "audit")
        + event("10:05:00", "alice@example.com", "none", "reject", brownout=True)
        + event("10:20:00", "alice@example.com", "TLSv1.3", "allow")
        + event("10:10:00", "bob@example.com", "none", "reject", brownout=True)
        + event("11:30:00", "bob@example.com", "none", "audit")
        + event("10:15:00", "carol@example.com", "none", "reject", brownout=True))
    *_, report = commands()
    cp = run(policy, report, [log])
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert "REFUSED IN BROWNOUT WINDOWS - these break on the final date (3)" in out
    assert re.search(r"^example\.com +3 +1 +1 +1$", out, re.M), out
    moved = out.split("MOVED TO TLS AFTER A BROWNOUT (1)\n")[1].split("\n\n")[0]
    assert re.search(r"^alice@example\.com +2027-02-09 10:05 +2027-02-09 10:20$", moved, re.M), out
    still = out.split("STILL PLAINTEXT AFTER A BROWNOUT (1)\n")[1].split("\n\n")[0]
    assert re.search(r"^bob@example\.com +2027-02-09 10:10 +2027-02-09 11:30$", still, re.M), out
    # carol: refused, not seen since; all three would break as before
    assert re.search(r"^carol@example\.com .* not seen since$", out, re.M)
    assert re.search(r"^example\.com +3 +3 +3 ", out, re.M), out

"""`tlsgate explain`, `report` and `notify` with an account database:
`userdb =` in tlsgate.conf (a stand-in auth-userdb socket here, the real
backends are in test_userdb_backends.py), `--userdb-mode`, and the
`rule=userdb` modes that events carry when no database is configured.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import mailstack
from userdb_fake import FakeUserdb

REPO = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
TLSGATE = BUILD / "tlsgate"
pytestmark = pytest.mark.skipif(not TLSGATE.exists(), reason=f"{TLSGATE} not built")

D = "x.test"
USERS = {f"off@{D}": {"tlsgate_mode": "off"}, f"req@{D}": {"tlsgate_mode": "require"},
         f"bad@{D}": {"tlsgate_mode": "yes"}}


def run(*args, check=True):
    p = subprocess.run([str(TLSGATE), *map(str, args)], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def world(tmp_path):
    sock = tmp_path / "tlsgate-userdb"
    fake = FakeUserdb(sock, USERS, owner="root")
    pol = tmp_path / "policy.conf"
    pol.write_text(f"require @{D}\n")
    conf = tmp_path / "tlsgate.conf"
    conf.write_text(f"policy = {pol}\nuserdb = dovecot:{sock}\nuserdb_timeout = 2\n")
    plain = tmp_path / "plain.conf"
    plain.write_text(f"policy = {pol}\n")
    yield fake, conf, plain, tmp_path
    fake.stop()


def explain(conf, user, *extra, check=True):
    return run("-c", conf, "explain", "--user", user, "--service", "smtp", "--ip",
               "127.0.0.2", "--tls", "none", "--format=kv", *extra, check=check)


def test_explain_shows_where_the_mode_came_from(world):
    fake, conf, plain, _ = world
    out = explain(conf, f"off@{D}").stdout
    assert out.startswith("verdict=allow rule=userdb mode=off") and "source=userdb" in out
    out = explain(conf, f"req@{D}").stdout
    assert "verdict=reject rule=userdb mode=require source=userdb" in out
    out = explain(conf, f"nobody@{D}").stdout
    assert "verdict=reject" in out and "source=file" in out and "rule=" + str(world[3] / "policy.conf") + ":1" in out
    p = explain(conf, f"bad@{D}")
    assert "source=file" in p.stdout and 'ignoring tlsgate_mode="yes"' in p.stderr
    text = run("-c", conf, "explain", "--user", f"off@{D}", "--service", "imap", "--ip",
               "127.0.0.2", "--tls", "none").stdout
    assert "from the user database" in text and "dovecot:" in text


def test_explain_what_if_without_a_database(world):
    fake, conf, plain, _ = world
    assert "verdict=allow rule=userdb mode=off source=userdb" in explain(plain, f"x@{D}", "--userdb-mode", "off").stdout
    assert "source=file" in explain(plain, f"x@{D}", "--userdb-mode", "none").stdout
    # it wins over the database too, and asks nothing
    assert "mode=require" in explain(conf, f"off@{D}", "--userdb-mode", "require").stdout
    assert fake.lookups[f"off@{D}"] == 0
    # the field's words in any case, as every part reads tlsgate_mode
    p = explain(plain, f"x@{D}", "--userdb-mode", "OFF", check=False)
    assert p.returncode == 0 and "mode=off source=userdb" in p.stdout


def test_explain_with_the_database_down_says_so(world):
    fake, conf, plain, _ = world
    fake.stop()
    p = explain(conf, f"off@{D}", check=False)
    assert p.returncode == 2
    assert "does not exist" in p.stderr and "--userdb-mode" in p.stderr


EVENTS = [
    # Dovecot module, mode from the user database: off beats the domain rule
    f"tlsgate: service=imap user=off@{D} client=192.0.2.1 tls=none verdict=allow mode=off rule=userdb",
    # an account with no database mode: the file's domain rule
    f"tlsgate: service=imap user=plain@{D} client=192.0.2.2 tls=none verdict=reject mode=require rule=/p:1",
    # the database said require once, then off (the last one counts)
    f"tlsgate: service=smtp user=flip@{D} client=192.0.2.3 tls=none verdict=reject mode=require rule=userdb",
    f"tlsgate: service=smtp user=flip@{D} client=192.0.2.3 tls=none verdict=allow mode=off rule=userdb",
]


def report_json(conf, log):
    return {a["account"]: a for a in json.loads(run("-c", conf, "report", "--json", log).stdout)["accounts"]}


def origin(event: str) -> str:
    """The program prefix of the writer, as in a real syslog file: an event
    counts only behind it (docs/events.md)."""
    if event.startswith("tlsgate: service=smtp "):
        return "tlsgate-policyd[4242]: "
    return "dovecot[4141]: auth: Info: "


def test_report_and_notify_use_the_modes_the_events_carry(world):
    fake, conf, plain, tmp = world
    log = tmp / "mail.log"
    log.write_text("".join(f"2026-01-0{i + 1}T10:00:00+00:00 mx {origin(l)}{l}\n" for i, l in enumerate(EVENTS)))
    acc = report_json(plain, log)
    assert acc[f"off@{D}"]["would_break"] is False
    assert acc[f"plain@{D}"]["would_break"] is True
    assert acc[f"flip@{D}"]["would_break"] is False
    out = run("-c", plain, "notify", "--dry-run", log).stdout
    assert f"would notify plain@{D}" in out
    assert f"off@{D}" not in out and f"flip@{D}" not in out


def test_report_and_notify_ask_the_database_once_per_account(world):
    fake, conf, plain, tmp = world
    log = tmp / "mail.log"
    lines = EVENTS + [f"tlsgate: service=imap user=req@{D} client=192.0.2.9 tls=none verdict=allow mode=off rule=/p:1"] * 5
    log.write_text("".join(f"2026-01-01T10:00:{i:02d}+00:00 mx {origin(l)}{l}\n" for i, l in enumerate(lines)))
    # the database: off@ is off, req@ is require; flip@ and plain@ unknown (files decide)
    acc = report_json(conf, log)
    assert acc[f"off@{D}"]["would_break"] is False
    assert acc[f"req@{D}"]["would_break"] is True
    assert acc[f"flip@{D}"]["would_break"] is True      # the database decides over the events
    assert acc[f"plain@{D}"]["would_break"] is True
    assert fake.lookups[f"req@{D}"] == 1
    out = run("-c", conf, "notify", "--dry-run", log).stdout
    assert f"would notify req@{D}" in out and f"off@{D}" not in out


def test_report_with_the_database_down_falls_back_to_the_events(world):
    fake, conf, plain, tmp = world
    fake.stop()
    log = tmp / "mail.log"
    log.write_text("".join(f"2026-01-0{i + 1}T10:00:00+00:00 mx {origin(l)}{l}\n" for i, l in enumerate(EVENTS)))
    p = run("-c", conf, "report", "--json", log)
    assert "using the modes the events carry" in p.stderr
    acc = {a["account"]: a for a in json.loads(p.stdout)["accounts"]}
    assert acc[f"off@{D}"]["would_break"] is False


def test_check_validates_and_shows_the_userdb_keys(world, tmp_path):
    fake, conf, plain, tmp = world
    out = run("-c", conf, "check").stdout
    assert f"userdb dovecot:{tmp / 'tlsgate-userdb'} (cache 60s, timeout 2s)" in out
    bad = tmp_path / "bad.conf"
    bad.write_text(f"policy = {tmp / 'policy.conf'}\nuserdb = /run/dovecot/auth-userdb\n"
                   "userdb_timeout = 0\n")
    p = run("-c", bad, "check", check=False)
    assert p.returncode == 1
    assert f"{bad}:2: userdb: expected dovecot:PATH" in p.stderr
    assert f"{bad}:3: userdb_timeout: expected a duration from 1s" in p.stderr

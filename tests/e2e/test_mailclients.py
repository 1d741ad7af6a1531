"""Real mail programs against the real stack (Dovecot 2.3 with the tlsgate
module for IMAP and POP3, Postfix with Dovecot SASL and tlsgate-policyd
for SMTP), run non-interactively from 127.0.0.2 (mailclients.py).

Per program and protocol it measures what a user of a plaintext
configuration sees when tlsgate refuses (is the admin's text in what the
program prints?), how many logins one run makes (the event lines), whether
fetchmail as a daemon keeps trying, and that the one setting docs/rollout.md
names moves the same account to TLS (the event says so). The table in
docs/rollout.md ("Mail programs: what users see and the setting that fixes
it") must agree with these observations.

Dovecot's auth penalty stays on (auth_penalty=True): refusals after a
verified password do not raise it, so the runs do not slow each other down.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import mailclients
import mailstack
from dovecot_tlsgate import MODULE, PolicyDir, events, passdb_block
from policyd_daemon import POLICYD, Policyd

REPO = Path(__file__).resolve().parent.parent.parent
DOC = REPO / "docs" / "rollout.md"
DOC_HEADING = "## Mail programs: what users see and the setting that fixes it"

PW = "pw-clients-1"
RCPT = "rcpt@example.test"
# The admin's texts; NEEDLE is what the tests look for in what a program prints.
NEEDLE = "needs an encrypted connection"
DOVECOT_TEXT = f"This mailbox {NEEDLE}, see https://example.test/tls"
SMTP_TEXT = f"Sending {NEEDLE}, see https://example.test/tls"
DOVECOT_POLICY = f'require @example.test protocols=imap,pop3 message="{DOVECOT_TEXT}"\n'
SMTP_POLICY = f'require @example.test message="{SMTP_TEXT}"\n'

CLIENTS = [c for c in mailclients.CLIENTS if c.available()]
pytestmark = pytest.mark.skipif(len(CLIENTS) != len(mailclients.CLIENTS),
                                reason="mail programs missing (tests/packages.txt)")


def policy_service(port: int) -> str:
    return (f"{{ inet:{mailstack.SERVER_ADDR}:{port}, "
            "{ default_action = 451 4.3.5 policy unavailable }, timeout=5s, try_limit=1 }")


def account(client, tag: str = "") -> str:
    return re.sub(r"[^a-z0-9]", "", f"{client.program}{client.protocol}{tag}".lower()) \
        + "@example.test"


@dataclass
class Observation:
    shown: str            # "yes", "briefly" (a full-screen status line) or "no"
    logins: int           # logins of one plaintext run
    refused: bool         # tlsgate refused each of them (events)
    tls_moved: bool       # with the setting: logged in over TLS, nothing refused
    retries: str          # daemon: "yes"/"no"; else "no" (runs once)
    detail: str


def strip_screen(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]", "", text)


def shown(client, result) -> str:
    """A line-oriented program must print the whole text; a full-screen one
    cuts its status line at the screen width: its start counts there."""
    text = strip_screen(result.shown)
    if client.screen:
        starts = (DOVECOT_TEXT[:18], SMTP_TEXT[:13])
        return "briefly" if any(s in text for s in starts) else "no"
    return "yes" if DOVECOT_TEXT in text or SMTP_TEXT in text else "no"


class World:
    def __init__(self, st, pd, preload, certs, tmp):
        self.st, self.pd, self.preload, self.certs, self.tmp = st, pd, preload, certs, tmp

    def env(self, client, tag: str) -> mailclients.Env:
        home = self.tmp / f"{account(client, tag).split('@')[0]}"
        home.mkdir(parents=True)
        ports = dict(self.st.dovecot.ports)
        ports.update(submission=self.st.postfix.ports["submission"],
                     smtps=self.st.postfix.ports["smtps"])
        return mailclients.Env(ports=ports, user=account(client, tag), password=PW,
                               ca=Path(self.certs.ca.cert), home=home,
                               preload=self.preload, rcpt=RCPT)

    def dovecot_events(self, user: str, since: int) -> list[dict]:
        return [e for e in events(self.st.dovecot.log(since)) if e.get("user") == user]

    def policyd_events(self, user: str, since: int) -> list[dict]:
        return [e for e in self.pd.events(since) if e.get("user") == user]

    def observe(self, client) -> Observation:
        service = client.protocol.lower()
        # plaintext: refused; count the logins
        env = self.env(client, "")
        dm, pm = self.st.dovecot.log_mark(), self.pd.mark()
        plain = client.run(env, False)
        dev = self.dovecot_events(env.user, dm)
        if client.protocol == "SMTP":
            logins = [e for e in dev if e["service"] == "smtp"]
            refusals = [e for e in self.policyd_events(env.user, pm) if e["verdict"] == "reject"]
            refused = len(refusals) >= 1 and all(e["tls"] == "none" for e in logins)
        else:
            logins = [e for e in dev if e["service"] == service]
            refused = bool(logins) and all(e["verdict"] == "reject" and e["tls"] == "none"
                                           for e in logins)
        # the setting: the same account over TLS
        env2 = self.env(client, "tls")
        dm, pm = self.st.dovecot.log_mark(), self.pd.mark()
        tls = client.run(env2, True)
        dev2 = [e for e in self.dovecot_events(env2.user, dm) if e["service"] == service]
        if client.protocol == "SMTP":
            pev2 = self.policyd_events(env2.user, pm)
            moved = (bool(pev2) and all(e["verdict"] == "allow" and e["tls"].startswith("TLSv")
                                        for e in pev2))
        else:
            moved = bool(dev2) and all(e["verdict"] == "allow" and e["tls"] != "none"
                                       for e in dev2)
        # a daemon keeps polling: do the refusals go on?
        retries = "no"
        if client.daemon is not None:
            env3 = self.env(client, "daemon")
            dm = self.st.dovecot.log_mark()
            client.daemon(env3)
            polls = [e for e in self.dovecot_events(env3.user, dm) if e["verdict"] == "reject"]
            retries = "yes" if len(polls) >= 2 else "no"
        detail = (f"{client.key}: plaintext rc={plain.rc} out={strip_screen(plain.shown)[-600:]!r} "
                  f"events={[(e['service'], e['tls'], e['verdict']) for e in dev]}; "
                  f"tls rc={tls.rc} out={strip_screen(tls.shown)[-400:]!r} "
                  f"events={[(e['service'], e['tls'], e['verdict']) for e in dev2]}")
        return Observation(shown(client, plain), len(logins), refused, moved, retries, detail)


@pytest.fixture(scope="module")
def observations(session_stack_factory, tmp_path_factory, certs):
    if not MODULE.is_file() or not POLICYD.exists():
        pytest.fail("build the module and tlsgate-policyd first (make)")
    pol = PolicyDir(tmp_path_factory.mktemp("clients-etc"), DOVECOT_POLICY)
    pd = Policyd(tmp_path_factory.mktemp("clients-policyd"), SMTP_POLICY).start()
    try:
        st = session_stack_factory(
            name="clients", start=False,
            dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                            auth_penalty=True),
            postfix_kw=dict(policy_service=policy_service(pd.port)))
        for c in CLIENTS:
            for tag in ("", "tls", "daemon"):
                st.add_user(account(c, tag), PW)
        st.add_user(RCPT, PW)
        st.start()
        preload = mailclients.build_bindsource(tmp_path_factory.mktemp("bindsource"))
        world = World(st, pd, preload, certs, tmp_path_factory.mktemp("clients-home"))
        # The programs wait on the servers and on their own timers, hardly on
        # the CPU: a few at once keep the file fast.
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = dict(zip((c.key for c in CLIENTS), pool.map(world.observe, CLIENTS)))
        yield found
    finally:
        pd.stop()


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.key)
def test_plaintext_is_refused_by_tlsgate(observations, client):
    o = observations[client.key]
    assert o.logins >= 1 and o.refused, o.detail


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.key)
def test_the_one_setting_moves_the_account_to_tls(observations, client):
    o = observations[client.key]
    assert o.tls_moved, o.detail


def test_fetchmail_as_a_daemon_keeps_sending_the_password(observations):
    """fetchmail -d polls again and again: each poll is a refused login
    with the password in plaintext - until the setting changes."""
    for key in ("fetchmail/IMAP", "fetchmail/POP3"):
        assert observations[key].retries == "yes", observations[key].detail


# ---------------------------------------------------------------- the doc

def doc_table() -> dict[str, list[str]]:
    text = DOC.read_text()
    assert DOC_HEADING in text, f"{DOC}: no section {DOC_HEADING!r}"
    section = text.split(DOC_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 6 or cells[0] in ("program", "") \
                or set(cells[0]) <= set("-: "):
            continue
        rows[f"{cells[0]}/{cells[1]}"] = cells
    return rows


def test_rollout_doc_table_agrees_with_the_observations(observations):
    rows = doc_table()
    problems = []
    missing = sorted(set(observations) - set(rows))
    extra = sorted(set(rows) - set(observations))
    if missing:
        problems.append(f"no row for {missing}")
    if extra:
        problems.append(f"rows for programs not measured: {extra}")
    for key, o in sorted(observations.items()):
        if key not in rows:
            continue
        _, _, doc_shown, doc_logins, doc_retries, doc_setting = rows[key]
        client = next(c for c in CLIENTS if c.key == key)
        if doc_shown.split()[0].strip(",;:") != o.shown:
            problems.append(f"{key}: the doc says text shown {doc_shown!r}, measured {o.shown!r}")
        if doc_logins.split()[0] != str(o.logins):
            problems.append(f"{key}: the doc says {doc_logins!r} logins per run, measured {o.logins}")
        if doc_retries.split()[0].strip(",;:") != o.retries:
            problems.append(f"{key}: the doc says retries {doc_retries!r}, measured {o.retries!r}")
        if doc_setting != client.setting:
            problems.append(f"{key}: the doc names the setting {doc_setting!r}, "
                            f"the test applies {client.setting!r}")
    assert not problems, f"{DOC} ({DOC_HEADING!r}) disagrees with the measurements:\n  " \
        + "\n  ".join(problems)

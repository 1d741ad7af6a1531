"""`tlsgate report` and `tlsgate notify` on the logs of real sessions.

One module-wide world: Dovecot with the tlsgate passdb, Postfix asking a
running tlsgate-policyd (both in audit mode for example.test), and clients
from 127.0.0.2 that log in with and without TLS. The Dovecot log is
Dovecot's own log_path file (syslog-style timestamps); tlsgate-policyd runs
in the foreground and its stderr is written the way `journalctl -o
short-iso` shows it (RFC 3339 timestamp, host, line). Then `tlsgate
report` reads those logs and its figures are checked against the sessions
made, and `tlsgate notify --send` hands notices to the real Postfix, which
delivers them to Dovecot; one is read back over IMAP.
"""

from __future__ import annotations

import csv
import email
import email.policy
import gzip
import io
import json
import os
import shutil
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

import mailstack as ms
from dovecot_tlsgate import MODULE, PolicyDir, events, passdb_block, pop3, wait_event

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# the build tree in use (make test-sanitize points it at the sanitized one)
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
TLSGATE = BUILD / "tlsgate"
POLICYD = BUILD / "tlsgate-policyd"
TEMPLATES = REPO / "docs" / "templates"

D = ms.DOMAIN          # example.test
O = "other.test"
PW = "Secret-123"

RULES = f"""\
audit    @{D}
audit    @{O}
require  req@{D}
exempt   printer@{D}   127.0.0.2/32   protocols=imap   note="hall printer"
exempt   old@{D}       192.0.2.1      until=2020-01-01
"""

USERS = [f"alice@{D}", f"bob@{D}", f"printer@{D}", f"req@{D}", f"carol@{D}", f"dave@{O}"]


def _missing_parts() -> list[str]:
    return [str(p.relative_to(REPO)) for p in (TLSGATE, POLICYD, MODULE) if not p.is_file()]


class Policyd:
    """tlsgate-policyd in the foreground; stderr lines go to `log` with an
    RFC 3339 timestamp and host in front, as `journalctl -o short-iso`."""

    def __init__(self, conf: Path, port: int, log: Path):
        self.log = log
        self.proc = subprocess.Popen([str(POLICYD), "-c", str(conf), "-f",
                                      "--listen", f"inet:127.0.0.1:{port}"],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._out = open(log, "ab", buffering=0)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        ms.wait_for(lambda: "listening on" in log.read_text(errors="replace"), timeout=10)

    def _pump(self):
        for line in self.proc.stderr:
            stamp = datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
            self._out.write(f"{stamp} mail.test ".encode() + line)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=5)
        self._out.close()


def _wait_log_event(path: Path, **want) -> dict:
    def found():
        for ev in events(path.read_text(errors="replace")):
            if all(ev.get(k) == v for k, v in want.items()):
                return ev
        return None
    return ms.wait_for(found, timeout=10)


@pytest.fixture(scope="module")
def world(session_stack_factory, tmp_path_factory):
    missing = _missing_parts()
    if missing:
        pytest.skip("not built: " + ", ".join(missing) + " (run make)")
    etc = tmp_path_factory.mktemp("report-etc")
    pol = PolicyDir(etc, RULES)
    # tlsgate-policyd refuses to keep running as root
    with open(pol.conf, "a") as f:
        f.write("user = nobody\ngroup = nogroup\n")
    logs = tmp_path_factory.mktemp("report-logs")
    ms.make_traversable(logs)
    policyd_log = logs / "policyd.log"
    port = ms.free_port()
    policyd = Policyd(pol.conf, port, policyd_log)
    try:
        st = session_stack_factory(
            name="report", start=False,
            dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE]),
            postfix_kw=dict(policy_service=port))
        for u in USERS:
            st.add_user(u, PW)
        st.start()
        _sessions(st, policyd_log)
        yield dict(stack=st, conf=pol.conf, dovecot_log=Path(st.dovecot.logfile.path),
                   policyd_log=policyd_log, tmp=logs)
    finally:
        policyd.stop()


def _sessions(st, policyd_log: Path) -> None:
    mark = 0
    with st.imap() as c:                                   # plaintext, audit
        assert c.try_login(f"alice@{D}", PW)[0] == "OK"
    with pop3(st) as c:                                    # plaintext, audit
        assert c.try_login(f"alice@{D}", PW)[0]
    with st.imap("starttls") as c:                         # TLS only
        assert c.try_login(f"bob@{D}", PW)[0] == "OK"
    with st.imap() as c:                                   # exempt
        assert c.try_login(f"printer@{D}", PW)[0] == "OK"
    with st.imap() as c:                                   # require: refused
        assert c.try_login(f"req@{D}", PW)[0] == "NO"
    with st.imap("tls") as c:                              # other domain, TLS
        assert c.try_login(f"dave@{O}", PW)[0] == "OK"
    with st.smtp("submission", "plain") as c:              # Postfix SMTP AUTH
        assert c.try_login(f"carol@{D}", PW)[0] == 235
        replies = c.send_simple(f"carol@{D}", [f"alice@{D}"])
        assert replies[1][0] == 250, replies
    for user, verdict in ((f"alice@{D}", "audit"), (f"bob@{D}", "allow"),
                          (f"printer@{D}", "exempt"), (f"req@{D}", "reject"),
                          (f"dave@{O}", "allow")):
        wait_event(st.dovecot, mark, user=user, verdict=verdict)
    _wait_log_event(policyd_log, user=f"carol@{D}", service="smtp", tls="none")


def report(world, *args, logs=None, check=True) -> subprocess.CompletedProcess:
    files = logs if logs is not None else [world["dovecot_log"], world["policyd_log"]]
    cp = subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "report", *args,
                         *map(str, files)], capture_output=True, text=True, timeout=60)
    if check:
        assert cp.returncode == 0, cp.stderr
    return cp


def by(rows, key):
    return {r[key]: r for r in rows}


def test_report_figures(world):
    data = json.loads(report(world, "--json").stdout)
    doms = by(data["domains"], "domain")
    ex = doms[D]
    assert (ex["accounts"], ex["plaintext_accounts"], ex["tls_only_accounts"]) == (5, 4, 1)
    # printer is exempt; alice, carol (audit) and req (require) would break
    assert ex["would_break_accounts"] == 3
    assert ex["credentials_exposed_accounts"] == 1
    assert ex["readiness"] == 20.0
    assert ex["rejections"] >= 1 and ex["exempt_hits"] >= 1
    oth = doms[O]
    assert (oth["accounts"], oth["plaintext_accounts"], oth["readiness"]) == (1, 0, 100.0)

    acc = by(data["accounts"], "account")
    assert set(acc) == {f"alice@{D}", f"printer@{D}", f"req@{D}", f"carol@{D}"}
    alice = acc[f"alice@{D}"]
    assert alice["plaintext_services"] == ["imap", "pop3"]
    assert [c["address"] for c in alice["clients"]] == ["127.0.0.2"]
    assert alice["would_break"] and alice["audits"] >= 2 and alice["rejections"] == 0
    assert acc[f"carol@{D}"]["plaintext_services"] == ["smtp"]
    assert acc[f"carol@{D}"]["would_break"]
    printer = acc[f"printer@{D}"]
    assert not printer["would_break"] and printer["exempt_hits"] >= 1
    assert printer["exemption"].endswith("main.conf:4")
    req = acc[f"req@{D}"]
    assert req["credentials_exposed"] >= 1 and req["would_break"]

    # the expired exemption is listed; the used one is not
    exs = by(data["exemptions"], "subject")
    assert set(exs) == {f"old@{D}"}
    assert exs[f"old@{D}"]["expired"] and exs[f"old@{D}"]["unused"]
    assert data["input"]["malformed"] == 0


def test_report_would_break_and_text(world):
    rows = list(csv.DictReader(io.StringIO(report(world, "--would-break", D, "--csv").stdout)))
    assert {r["account"] for r in rows} == {f"alice@{D}", f"carol@{D}", f"req@{D}"}
    assert all(r["client"] == "127.0.0.2" for r in rows)
    text = report(world).stdout
    assert "CREDENTIALS EXPOSED" in text and f"req@{D}" in text
    assert f"old@{D}" in text and "expired 2020-01-01" in text
    # without a policy the verdicts in the events decide: same accounts
    # (--no-config: whatever /etc/tlsgate holds on this machine is not read)
    cp = subprocess.run([str(TLSGATE), "--no-config", "report", "--would-break", D, "--csv",
                         str(world["dovecot_log"]), str(world["policyd_log"])],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert {r["account"] for r in csv.DictReader(io.StringIO(cp.stdout))} == \
        {f"alice@{D}", f"carol@{D}", f"req@{D}"}


def test_report_gzip_stdin_duplicates_html(world):
    tmp = world["tmp"]
    full = json.loads(report(world, "--json").stdout)
    # rotated, compressed Dovecot log; policyd log with one request logged twice
    gz = tmp / "dovecot.log.1.gz"
    with open(world["dovecot_log"], "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    lines = world["policyd_log"].read_text().splitlines(keepends=True)
    ev = [ln for ln in lines if "tlsgate: service=smtp" in ln and "session=" in ln]
    assert ev, "tlsgate-policyd logged no event with a session"
    dup = tmp / "policyd-dup.log"
    dup.write_text("".join(lines) + ev[-1])
    data = json.loads(report(world, "--json", logs=[gz, dup]).stdout)
    assert data["domains"] == full["domains"]
    assert data["input"]["duplicates"] == full["input"]["duplicates"] + 1
    # stdin
    cp = subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "report", "--json"],
                        input=world["dovecot_log"].read_bytes() + world["policyd_log"].read_bytes(),
                        capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["domains"] == full["domains"]
    # a window after the sessions holds nothing
    later = datetime.fromtimestamp(time.time() + 3600).strftime("%Y-%m-%d %H:%M")
    empty = json.loads(report(world, "--json", "--since", later).stdout)
    assert empty["domains"] == [] and empty["input"]["outside_window"] > 0
    # HTML: one self-contained page
    page = tmp / "report.html"
    report(world, "--html", str(page))
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and f"req@{D}" in html
    assert "src=" not in html and "href=" not in html and "@import" not in html
    assert 'style="width:20.0%"' in html


def test_notify_send_through_postfix(world):
    st = world["stack"]
    state = world["tmp"] / "notified.state"
    cmd = [str(TLSGATE), "-c", str(world["conf"]), "notify", "--send",
           "--sendmail", f"/usr/sbin/sendmail -C {st.postfix.config_dir} -t",
           "--from", f"Mail Admin <postmaster@{D}>", "--templates", str(TEMPLATES),
           "--lang-for", f"{D}=de", "--domain", D, "--state", str(state), "--every", "7d",
           str(world["dovecot_log"]), str(world["policyd_log"])]
    mark = st.postfix.log_mark()
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "3 notice(s) sent" in cp.stderr
    for user in (f"alice@{D}", f"carol@{D}", f"req@{D}"):
        st.postfix.wait_delivered(user, since=mark, timeout=30)
    assert f"alice@{D}\t" in state.read_text()

    with st.imap("starttls") as c:
        assert c.try_login(f"alice@{D}", PW)[0] == "OK"
        c.select("INBOX")
        typ, data = c.search(None, "HEADER", "Auto-Submitted", "auto-generated")
        assert typ == "OK" and data[0].split(), "notice not in alice's INBOX"
        typ, msg_data = c.fetch(data[0].split()[-1], "(RFC822)")
        raw = msg_data[0][1]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == f"alice@{D}"
    assert msg["From"] == f"Mail Admin <postmaster@{D}>"
    assert msg["Subject"] == f"Ihr E-Mail-Programm meldet sich ohne Verschlüsselung an (alice@{D})"
    assert msg["Message-ID"] and msg["Date"]
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    body = msg.get_content()
    assert "127.0.0.2" in body and "IMAP" in body and "POP3" in body
    assert "Port 993" in body and "Port 995" in body and "Port 465" not in body

    # notified in the last 7 days: nobody again
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "0 notice(s) sent; 3 skipped as notified recently" in cp.stderr

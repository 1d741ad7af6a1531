"""walk.py REPO - run by tests/walkthrough/run, chrooted in a throwaway
overlay of this machine's root: follows docs/install.md, "A complete setup
on Debian 12", then checks with real sessions that it works.

1. Before the docs: what keeps the test on loopback and this machine's
   state out of it - Dovecot listens on 127.0.0.1, Postfix on loopback,
   no DNS look-ups of clients; a syslog reader on /dev/log (the overlay's
   own /dev) collects what Dovecot and tlsgate-policyd log.
2. Every block of docs/install.md after a `<!-- walkthrough -->` line, in
   order, as written, with `sh -e` in REPO (step 1 names build/deb/).
3. Two system users (alice, bob) and one rule, `require alice`, in a new
   file of /etc/tlsgate/policy.d, as the docs' last step suggests.
4. IMAP (143 plaintext and STARTTLS, 993) and SMTP (587 plaintext and
   STARTTLS, 465, 25) from 127.0.0.2, and the events in the log.

Prints "ok N - what" / "not ok N - what"; exits 1 if anything failed.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import mailstack as ms  # noqa: E402  (the harness's IMAP/SMTP clients)

WALK_MARK = re.compile(r"^<!-- walkthrough -->\n```sh\n(.*?)^```", re.M | re.S)
SYSLOG = "/dev/log"
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2"}

results: list[bool] = []


def report(ok: bool, what: str, detail: str = "") -> bool:
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {what}", flush=True)
    if not ok and detail:
        print("    " + detail.rstrip().replace("\n", "\n    "), flush=True)
    return ok


def sh(script: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Runs script with `sh -e`; its output goes through a file, not a
    pipe, since the daemons it starts may keep their inherited stdout."""
    with tempfile.TemporaryFile() as out:
        cp = subprocess.run(["sh", "-e", "-c", script], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            timeout=600,
                            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        out.seek(0)
        cp.stdout = out.read().decode("utf-8", "replace")
    return cp


class Syslog:
    """The overlay's /dev/log: every line Dovecot and tlsgate-policyd log."""

    def __init__(self):
        self.lines: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(SYSLOG)
        os.chmod(SYSLOG, 0o666)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            data = self.sock.recv(65536)
            self.lines.append(data.decode("utf-8", "replace").rstrip("\n\0"))

    def wait(self, pattern: str, timeout: float = 10) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.1)
        return None


def before_the_docs() -> None:
    """Test set-up, not part of the recipe: loopback only, no DNS."""
    Path("/etc/dovecot/conf.d/99-walkthrough-loopback.conf").write_text(
        "# tests/walkthrough: servers on loopback only\nlisten = 127.0.0.1\n")
    cp = sh("postconf -e inet_interfaces=loopback-only inet_protocols=ipv4 "
            "smtpd_peername_lookup=no")
    if cp.returncode != 0:
        raise SystemExit("walkthrough: cannot set up Postfix for loopback:\n" + cp.stdout)


def run_the_docs() -> bool:
    doc = (REPO / "docs" / "install.md").read_text()
    blocks = WALK_MARK.findall(doc)
    if not report(len(blocks) >= 5, f"docs/install.md has walkthrough blocks ({len(blocks)})"):
        return False
    for i, block in enumerate(blocks, 1):
        first = block.strip().splitlines()[0]
        cp = sh(block)
        if not report(cp.returncode == 0, f"docs step {i}: {first}",
                      f"exit {cp.returncode}; the block:\n{block}\noutput:\n{cp.stdout[-3000:]}"):
            return False
    return True


def add_users_and_rule() -> None:
    for user, pw in PASSWORDS.items():
        cp = sh(f"useradd -m -s /bin/sh {user} && echo '{user}:{pw}' | chpasswd")
        report(cp.returncode == 0, f"system user {user}", cp.stdout)
    rule = Path("/etc/tlsgate/policy.d/50-walkthrough.conf")
    rule.write_text("require alice\n")
    rule.chmod(0o644)
    time.sleep(2.5)     # the daemons notice a change within a second


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # the docs' self-signed certificate
    return ctx


def imap_checks(log: Syslog) -> None:
    with ms.ImapClient(port=143, server_hostname=None) as c:
        typ, text = c.try_login("alice", PASSWORDS["alice"])
        report(typ == "NO" and "PRIVACYREQUIRED" in text,
               "IMAP 143 plaintext: alice (require) is refused with the TLS message",
               f"{typ} {text}")
    with ms.ImapClient(port=143, server_hostname=None) as c:
        typ, text = c.try_login("bob", PASSWORDS["bob"])
        report(typ == "OK", "IMAP 143 plaintext: bob (audit) logs in", f"{typ} {text}")
    with ms.ImapClient(port=143, ssl_context=tls_context(), server_hostname=None) as c:
        c.starttls()
        typ, text = c.try_login("alice", PASSWORDS["alice"])
        report(typ == "OK", "IMAP 143 STARTTLS: alice logs in", f"{typ} {text}")
    with ms.ImapClient(port=993, tls=True, ssl_context=tls_context(),
                       server_hostname=None) as c:
        typ, text = c.try_login("alice", PASSWORDS["alice"])
        report(typ == "OK", "IMAPS 993: alice logs in", f"{typ} {text}")
    with ms.ImapClient(port=143, server_hostname=None) as c:
        typ, text = c.try_login("alice", "wrong password")
        report(typ == "NO" and "PRIVACYREQUIRED" not in text,
               "IMAP: a wrong password gets Dovecot's own answer", f"{typ} {text}")
    line = log.wait(r"tlsgate: service=imap user=alice .*tls=none verdict=reject")
    report(line is not None, "Dovecot logged the refusal as an event",
           "\n".join(log.lines[-20:]))


def smtp_checks(log: Syslog) -> None:
    rcpt = ["bob@localhost"]
    with ms.SmtpClient(port=25) as c:
        c.ehlo("client.test")
        report(not c.has_extn("auth"), "port 25 offers no AUTH", str(c.esmtp_features))
    with ms.SmtpClient(port=587) as c:
        c.ehlo("client.test")
        report(c.has_extn("auth"), "port 587 offers AUTH before STARTTLS (plaintext on offer)",
               str(c.esmtp_features))
        code, text = c.try_login("alice", PASSWORDS["alice"])
        report(code == 535, "SMTP 587 plaintext: alice's AUTH is refused (Dovecot SASL)",
               f"{code} {text}")
    mark = len(log.lines)
    with ms.SmtpClient(port=587) as c:
        c.ehlo("client.test")
        code, text = c.try_login("bob", PASSWORDS["bob"])
        report(code == 235, "SMTP 587 plaintext: bob (audit) logs in", f"{code} {text}")
        replies = c.send_simple("bob@localhost", rcpt)
        report(replies[1][0] == 250, "SMTP 587 plaintext: bob's mail is accepted",
               str(replies))
    line = log.wait(r"tlsgate-policyd.*tlsgate: service=smtp user=bob .*tls=none verdict=audit")
    report(line is not None, "tlsgate-policyd was asked and logged the audit event",
           "\n".join(log.lines[mark:][-20:]))
    with ms.SmtpClient(port=587) as c:
        c.ehlo("client.test")
        c.starttls(context=tls_context())
        c.ehlo("client.test")
        code, text = c.try_login("alice", PASSWORDS["alice"])
        report(code == 235, "SMTP 587 STARTTLS: alice logs in", f"{code} {text}")
        replies = c.send_simple("alice@localhost", rcpt)
        report(replies[1][0] == 250, "SMTP 587 STARTTLS: alice's mail is accepted",
               str(replies))
    with ms.SmtpClient(port=465, tls=True, ssl_context=tls_context(),
                       server_hostname=None) as c:
        c.ehlo("client.test")
        code, text = c.try_login("alice", PASSWORDS["alice"])
        report(code == 235, "SMTPS 465: alice logs in", f"{code} {text}")
    line = log.wait(r"tlsgate-policyd.*tlsgate: service=smtp user=alice .*verdict=allow")
    report(line is not None, "tlsgate-policyd logged alice's TLS mail as allowed",
           "\n".join(log.lines[-20:]))


def stop_services() -> None:
    sh("service postfix stop; service dovecot stop; service tlsgate-policyd stop; true")


def main() -> int:
    log = Syslog()
    before_the_docs()
    try:
        if run_the_docs():
            add_users_and_rule()
            imap_checks(log)
            smtp_checks(log)
    finally:
        stop_services()
    failed = results.count(False)
    print(f"walkthrough: {len(results) - failed} of {len(results)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

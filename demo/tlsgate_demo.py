#!/usr/bin/python3
"""tlsgate demo - the whole system on loopback, in a few seconds.

    tlsgate_demo.py run  [--dir build/demo]   play the scenario, stop, exit 0/1
    tlsgate_demo.py up   [--dir build/demo]   start the sandbox, print how to use it
    tlsgate_demo.py down [--dir build/demo]   stop what `up` started

A throwaway Dovecot (Debian's 2.3, or the one `make demo DOVECOT_CONFIG=...`
names) and Postfix listen on 127.0.0.1 (random free
ports) with the tlsgate passdb module and tlsgate-policyd, a test CA and
certificate, and a small policy: one enforced domain, one domain in audit
until an announced date, an opted-out account and an exempt scanner.
The scenario's clients connect from 127.0.0.2, as a remote client would.

Everything is written below the --dir directory; the servers come from
tests/e2e/mailstack.py. `run` exits 1 if any step did not behave as
expected, 2 if the demo could not be set up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import imaplib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # write nothing outside the demo directory
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import mailstack as ms  # noqa: E402

DEMO_ADAPTERS = Path(__file__).resolve().parent
sys.path.insert(0, str(DEMO_ADAPTERS))

import adapters  # noqa: E402

# ---------------------------------------------------------------------------
# the scenario's accounts and policy
# ---------------------------------------------------------------------------

# the program carol's plaintext IMAP client says it is (IMAP ID, which
# imaplib sends once it knows the command)
DEMO_PROGRAM = ("OldMail", "3.2")
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
ENFORCED = "example.com"
AUDITED = "example.net"
USERS = {
    # login: (password, what it shows)
    f"alice@{ENFORCED}": ("alice-demo-pw", f"an account of the enforced domain {ENFORCED}"),
    f"bob@{ENFORCED}": ("bob-demo-pw", "opted out of TLS (mode off)"),
    f"scanner@{ENFORCED}": ("scanner-demo-pw", "an office scanner, exempt for SMTP from 127.0.0.2"),
    f"carol@{AUDITED}": ("carol-demo-pw", f"an account of {AUDITED}, audited until its date"),
    f"dave@{ENFORCED}": ("dave-demo-pw", "needs TLSv1.3 or newer (min_tls)"),
}


def announced_day() -> str:
    return (dt.date.today() + dt.timedelta(days=30)).isoformat()


def policy_files(enforce_day: str) -> dict[str, str]:
    return {
        f"10-{ENFORCED}.conf": f"""\
# {ENFORCED}: TLS required now.
require  @{ENFORCED}
off      bob@{ENFORCED}      note="customer opted out 2026-11-02"
exempt   scanner@{ENFORCED}  {ms.CLIENT_ADDR}  protocols=smtp  note="office scanner, cannot do TLS"
require  dave@{ENFORCED}     min_tls=TLSv1.3
""",
        f"20-{AUDITED}.conf": f"""\
# {AUDITED}: announced; until {enforce_day} this acts as audit (logged, allowed).
require  @{AUDITED}  from={enforce_day}
""",
    }


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------

CLIENT_TIMEOUT = 5.0  # seconds a client waits for a server's answer
USE_COLOR = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def _c(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if USE_COLOR else text


def say(text: str = "") -> None:
    """Print; a closed stdout (`make demo | head`) must not stop the clean-up."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the finally blocks


def section(title: str) -> None:
    say()
    say(_c("1", f"== {title}"))


def short(text: str, width: int = 150) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."


class Steps:
    """Numbered steps with PASS/FAIL outcomes."""

    def __init__(self):
        self.n = 0
        self.failed: list[str] = []

    def run(self, title: str, expect: str, fn) -> bool:
        """fn() returns (ok, [detail lines]); an exception is a failure."""
        self.n += 1
        say(f"{self.n:2d}. {title}")
        say(f"    expected: {expect}")
        t0 = time.monotonic()
        try:
            ok, details = fn()
        except Exception as e:  # a step must never abort the demo
            ok, details = False, [f"error: {type(e).__name__}: {short(e, 400)}"]
        for d in details:
            say(f"    {d}")
        mark = _c("32", "PASS") if ok else _c("31;1", "FAIL")
        say(f"    {mark} ({time.monotonic() - t0:.1f}s)")
        if not ok:
            self.failed.append(f"{self.n}. {title}")
        return ok


# ---------------------------------------------------------------------------
# the sandbox
# ---------------------------------------------------------------------------

class Sandbox:
    """Certificates, configuration, policy, Dovecot + Postfix + policyd."""

    def __init__(self, directory: Path, build: Path | None):
        self.dir = directory
        self.build = build
        self.etc = directory / "etc"
        self.policy_dir = self.etc / "policy.d"
        self.conf = self.etc / "tlsgate.conf"
        self.enforce_day = announced_day()
        self.stack: ms.Stack | None = None
        self.policyd: adapters.Policyd | None = None
        self.brownout_account: str | None = None   # refused in the demo's window
        self.tlsgate = adapters.artifacts(build)["the tlsgate command"]

    # -- files
    def write_files(self) -> None:
        self.policy_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.dir, self.etc, self.policy_dir):
            os.chmod(d, 0o755)
        for name, text in policy_files(self.enforce_day).items():
            write_file(self.policy_dir / name, text)
        self.policyd_port = ms.free_port()
        write_file(self.conf, adapters.tlsgate_conf(self.policy_dir, self.policyd_port))

    def make_certs(self):
        ca = ms.make_ca(self.dir / "certs", name="tlsgate demo CA")
        cert = ca.make_cert(ms.SERVER_NAME)
        ms.make_traversable(self.dir / "certs")
        return ca, cert

    # -- lifecycle
    def start(self) -> None:
        self.write_files()
        # tlsgate-policyd and Dovecot's auth process run unprivileged and
        # must reach the policy: search (not read) rights on the way there.
        ms.make_traversable(self.dir)
        self.ca, self.cert = self.make_certs()
        self.policyd = adapters.Policyd(self.build, self.conf, self.dir / "policyd.log")
        self.policyd.start()
        self.stack = ms.Stack(
            self.dir / "stack", self.cert, ca=self.ca.cert,
            dovecot_kw=dict(passdb_extra=adapters.dovecot_passdb(self.conf),
                            auth_modules=adapters.auth_modules(self.build),
                            domain=ENFORCED,
                            # IMAP ID reaches the module: events name the program
                            config_extra="imap_id_retain = yes\n"),
            postfix_kw=dict(policy_service=self.policyd_port,
                            domains=[ENFORCED, AUDITED]))
        for user, (pw, _) in USERS.items():
            self.stack.add_user(user, pw)
        self.stack.start()

    def stop(self) -> list[str]:
        """Stops everything; returns the pids of what is still alive (none)."""
        trees = {}
        if self.stack is not None:
            trees.update(self.stack.dovecot.processes())
            if self.stack.postfix is not None:
                trees.update(self.stack.postfix.processes())
        if self.policyd is not None and self.policyd.pid:
            trees[self.policyd.pid] = ("tlsgate-policyd",)
        errors = []
        if self.stack is not None:
            try:
                self.stack.stop()
            except Exception as e:
                errors.append(str(e))
        if self.policyd is not None:
            self.policyd.stop()
        left = [f"{pid} ({info[-1]})" for pid, info in trees.items() if adapters.pid_alive(pid)]
        return left + errors

    def logs(self) -> list[Path]:
        out = []
        if self.stack is not None:
            out.append(self.stack.dovecot.logfile.path)
            if self.stack.postfix is not None:
                out.append(self.stack.postfix.logfile.path)
        out.append(self.dir / "policyd.log")
        return [p for p in out if p.exists()]

    def ports(self) -> dict[str, int]:
        d = self.stack.dovecot.ports
        p = self.stack.postfix.ports
        return {
            "IMAP (STARTTLS)": d["imap"], "IMAPS (implicit TLS)": d["imaps"],
            "POP3 (STARTTLS)": d["pop3"], "POP3S (implicit TLS)": d["pop3s"],
            "SMTP submission (STARTTLS, Postfix)": p["submission"],
            "SMTPS (implicit TLS, Postfix)": p["smtps"],
            "tlsgate-policyd": self.policyd_port,
        }


def write_file(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# event lines (docs/events.md) in the servers' logs
# ---------------------------------------------------------------------------

def find_event(paths, since: dict, want: dict, timeout: float = 5.0):
    """The first event line newer than `since` whose fields match `want`
    (value, or None for "absent"), waiting up to timeout seconds."""
    def look():
        for p in paths:
            try:
                with open(p, "rb") as f:
                    f.seek(since.get(p, 0))
                    text = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                i = line.find("tlsgate: ")
                if i < 0 or "service=" not in line:
                    continue
                fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line[i:]))
                if all((fields.get(k) is None) if v is None else fields.get(k) == v
                       for k, v in want.items()):
                    return line[i:]
        return None
    try:
        return ms.wait_for(look, timeout, what="event line")
    except TimeoutError:
        return None


def show_event(ev) -> str:
    """An event line for the screen: paths relative to the source tree."""
    if ev is None:
        return "NO matching event line"
    return short(ev.replace(str(REPO) + "/", ""), 190)


def log_marks(paths) -> dict:
    return {p: (p.stat().st_size if p.exists() else 0) for p in paths}


# ---------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------

def scenario(sb: Sandbox, steps: Steps, message: str) -> None:
    st = sb.stack
    alice, bob, scanner, carol, dave = USERS
    pw = {u: v[0] for u, v in USERS.items()}
    dlog = [st.dovecot.logfile.path]
    plog = [sb.dir / "policyd.log"]
    day = sb.enforce_day

    def imap_step(user, mode, want_ok, verdict, extra_want=None, imap_id=None):
        def fn():
            marks = log_marks(dlog)
            with st.imap(mode, timeout=CLIENT_TIMEOUT) as c:
                if imap_id:       # the client names itself, as most programs do
                    c._simple_command("ID", imap_id.encode())
                typ, text = c.try_login(user, pw[user])
                if typ == "OK":
                    c.logout()
            lines = [f"server said: {typ} {short(text)}"]
            ok = (typ == "OK") == want_ok
            if not want_ok and message not in text:
                ok = False
                lines.append("(the refusal does not carry the configured message)")
            want = {"service": "imap", "user": user, "verdict": verdict, **(extra_want or {})}
            ev = find_event(dlog, marks, want)
            lines.append(f"logged:      {show_event(ev)}")
            return ok and ev is not None, lines
        return fn

    def pop3_step(user, mode, want_ok, verdict):
        def fn():
            marks = log_marks(dlog)
            c = st.pop3(mode, timeout=CLIENT_TIMEOUT)
            try:
                ok_login, text = c.try_login(user, pw[user])
                if ok_login:
                    c.quit()
            finally:
                c.close()
            lines = [f"server said: {short(text)}"]
            ok = ok_login == want_ok
            if not want_ok and message not in text:
                ok = False
                lines.append("(the refusal does not carry the configured message)")
            ev = find_event(dlog, marks, {"service": "pop3", "user": user, "verdict": verdict})
            lines.append(f"logged:      {show_event(ev)}")
            return ok and ev is not None, lines
        return fn

    def smtp_step(user, port_name, mode, want_auth, rcpt, verdicts):
        """AUTH at Postfix (Dovecot SASL, so the passdb module decides), then
        if it succeeded a message to rcpt (tlsgate-policyd decides)."""
        def fn():
            marks = log_marks(dlog + plog)
            c = st.smtp(port_name, mode, timeout=CLIENT_TIMEOUT)
            lines = []
            try:
                code, text = c.try_login(user, pw[user])
                lines.append(f"AUTH:        {code} {short(text)}")
                ok = (code == 235) == want_auth
                if not want_auth and message not in text:
                    ok = False
                    lines.append("(the refusal does not carry the configured message)")
                if code == 235:
                    replies = c.send_simple(user, [rcpt], subject="tlsgate demo")
                    lines.append("MAIL/RCPT/DATA: " + ", ".join(f"{k}" for k, _ in replies))
                    ok = ok and all(k == 250 for k, _ in replies) and len(replies) == 3
                    if len(replies) < 3 or replies[-1][0] != 250:
                        lines.append("refused: " + short(replies[-1][1]))
                c.quit()
            finally:
                c.close()
            for where, paths, want in verdicts:
                ev = find_event(paths, marks, want)
                lines.append(f"logged by {where}: {show_event(ev)}")
                ok = ok and ev is not None
            return ok, lines
        return fn

    section(f"Dovecot: the passdb module ({ENFORCED} requires TLS)")
    steps.run(f"IMAP, plaintext LOGIN, {alice}",
              "refused, with the message telling how to set up TLS",
              imap_step(alice, "plain", False, "reject"))
    steps.run(f"IMAP, STARTTLS then LOGIN, {alice}", "accepted",
              imap_step(alice, "starttls", True, "allow"))
    steps.run(f"IMAPS (implicit TLS), {alice}", "accepted",
              imap_step(alice, "tls", True, "allow"))
    steps.run(f"POP3, plaintext USER/PASS, {alice}", "refused, with the message",
              pop3_step(alice, "plain", False, "reject"))
    steps.run(f"POP3, STLS then USER/PASS, {alice}", "accepted",
              pop3_step(alice, "starttls", True, "allow"))
    steps.run(f"POP3S (implicit TLS), {alice}", "accepted",
              pop3_step(alice, "tls", True, "allow"))
    steps.run(f"IMAP, plaintext, {bob} (opted out: off {bob})",
              "accepted (no TLS required for this account)",
              imap_step(bob, "plain", True, "allow", {"mode": "off"}))
    steps.run(f"IMAP, plaintext, {carol} ({AUDITED} enforced from {day})",
              "accepted, and logged as verdict=audit with the announced date",
              imap_step(carol, "plain", True, "audit",
                        {"enforce_from": day, "imap_id_name": DEMO_PROGRAM[0]},
                        imap_id=f'("name" "{DEMO_PROGRAM[0]}" "version" "{DEMO_PROGRAM[1]}")'))

    section("Postfix: SMTP AUTH (Dovecot SASL) and tlsgate-policyd")
    steps.run(f"SMTP submission, plaintext AUTH, {alice}",
              "refused at AUTH (535), with the message",
              smtp_step(alice, "submission", "plain", False, None,
                        [("the passdb module", dlog,
                          {"service": "smtp", "user": alice, "verdict": "reject"})]))
    steps.run(f"SMTP submission, STARTTLS, AUTH and a message to {carol}",
              "accepted (235, then 250 for MAIL, RCPT and DATA)",
              smtp_step(alice, "submission", "starttls", True, carol,
                        [("tlsgate-policyd", plog,
                          {"service": "smtp", "user": alice, "verdict": "allow"})]))
    steps.run(f"SMTPS (implicit TLS), AUTH and a message, {alice}", "accepted",
              smtp_step(alice, "smtps", "tls", True, carol,
                        [("tlsgate-policyd", plog,
                          {"service": "smtp", "user": alice, "verdict": "allow"})]))
    steps.run(f"SMTP submission, plaintext AUTH and a message, {scanner} from {ms.CLIENT_ADDR}",
              "accepted: the scanner's exemption lets it through, logged as verdict=exempt",
              smtp_step(scanner, "submission", "plain", True, alice,
                        [("the passdb module", dlog,
                          {"service": "smtp", "user": scanner, "verdict": "exempt"}),
                         ("tlsgate-policyd", plog,
                          {"service": "smtp", "user": scanner, "verdict": "exempt"})]))
    steps.run(f"IMAP, plaintext, {scanner}",
              "refused: the exemption covers SMTP only",
              imap_step(scanner, "plain", False, "reject"))
    steps.run(f"SMTP submission, plaintext AUTH and a message, {carol}",
              "accepted, logged as verdict=audit by the module and by tlsgate-policyd",
              smtp_step(carol, "submission", "plain", True, alice,
                        [("the passdb module", dlog,
                          {"service": "smtp", "user": carol, "verdict": "audit"}),
                         ("tlsgate-policyd", plog,
                          {"service": "smtp", "user": carol, "verdict": "audit"})]))

    def old_tls_step():
        """Postfix tells tlsgate-policyd the TLS version (Dovecot SASL does
        not tell the passdb module), so min_tls is enforced there."""
        marks = log_marks(plog)
        ctx = st.context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c = st.smtp("submission", "starttls", timeout=CLIENT_TIMEOUT, ssl_context=ctx)
        lines = []
        try:
            code, text = c.try_login(dave, pw[dave])
            lines.append(f"AUTH:        {code} {short(text)}")
            replies = c.send_simple(dave, [alice], subject="tlsgate demo") if code == 235 else []
            for k, t in replies:
                lines.append(f"             {k} {short(t)}")
            c.quit()
        finally:
            c.close()
        # not 530 ("issue STARTTLS first": it did), but 550 5.7.10 and why
        refused = [t for k, t in replies if k == 550 and t.startswith("5.7.10 ")]
        ok = (code == 235 and len(refused) == 1 and
              "connected with TLSv1.2, but this server requires TLSv1.3" in refused[0])
        ev = find_event(plog, marks, {"service": "smtp", "user": dave, "verdict": "reject",
                                      "tls": "TLSv1.2"})
        lines.append(f"logged by tlsgate-policyd: {show_event(ev)}")
        return ok and ev is not None, lines
    steps.run(f"SMTP submission, STARTTLS with TLSv1.2 only, AUTH and a message, {dave}",
              "AUTH accepted (TLS was used), the recipient refused by tlsgate-policyd "
              "(550 5.7.10, the text names both versions): TLSv1.2 is below the "
              "account's min_tls=TLSv1.3",
              old_tls_step)

    run_follow_notice(sb, steps)

    section(f"Rolling {ENFORCED} back: one edit, no restart")
    conf = sb.policy_dir / f"10-{ENFORCED}.conf"

    def rollback():
        before = conf.read_text()
        write_file(conf, before.replace(f"require  @{ENFORCED}", f"audit    @{ENFORCED}"))
        t0 = time.monotonic()
        lines = [f"edited {conf.relative_to(REPO) if conf.is_relative_to(REPO) else conf}: "
                 f"require @{ENFORCED} -> audit @{ENFORCED}"]

        def login_passes():
            with st.imap("plain", timeout=CLIENT_TIMEOUT) as c:
                typ, _ = c.try_login(alice, pw[alice])
                if typ == "OK":
                    c.logout()
                    return True
            return False
        try:
            ms.wait_for(login_passes, 10, interval=0.1, what="the rollback to apply")
            lines.append(f"plaintext IMAP login of {alice} accepted "
                         f"{time.monotonic() - t0:.1f}s after the edit")
            ok = True
        except TimeoutError:
            lines.append("plaintext login still refused 10s after the edit")
            ok = False
        write_file(conf, before)
        return ok, lines
    steps.run(f"change 'require @{ENFORCED}' to 'audit' in its policy.d file",
              "plaintext logins of the domain work again within seconds", rollback)

    brownout_section(sb, steps)


BROWNOUT_LEAD = 3     # seconds from the policy edit to the window's start
BROWNOUT_LENGTH = 4   # seconds the window lasts


def brownout_section(sb: Sandbox, steps: Steps) -> None:
    """A brownout window of a few seconds on the announced domain: a
    plaintext login inside it is refused with the brownout message, one
    after it is let through (audit) again. The policy is edited once; the
    clock alone switches the window on and off."""
    st = sb.stack
    carol = f"carol@{AUDITED}"
    pw = USERS[carol][0]
    dlog = [st.dovecot.logfile.path]
    conf = sb.policy_dir / f"20-{AUDITED}.conf"
    before = conf.read_text()
    start = int(time.time()) + BROWNOUT_LEAD
    window = dt.datetime.fromtimestamp(start).strftime("%Y-%m-%dT%H:%M:%S")
    rule = f"require  @{AUDITED}  from={sb.enforce_day}"
    section(f"A brownout window for {AUDITED}: a test outage of {BROWNOUT_LENGTH}s "
            f"before {sb.enforce_day}")
    write_file(conf, before.replace(rule, f"{rule}  brownout={window}/{BROWNOUT_LENGTH}s"))
    say(f"    edited {rel(conf)}: {rule}  brownout={window}/{BROWNOUT_LENGTH}s")

    def plain_login(want_ok: bool, verdict: str, extra: dict):
        marks = log_marks(dlog)
        with st.imap("plain", timeout=CLIENT_TIMEOUT) as c:
            typ, text = c.try_login(carol, pw)
            if typ == "OK":
                c.logout()
        lines = [f"server said: {typ} {short(text)}"]
        ok = (typ == "OK") == want_ok
        if not want_ok and f"TLS will be required from {sb.enforce_day}. This was a test" not in text:
            ok = False
            lines.append("(the refusal does not carry the brownout message)")
        ev = find_event(dlog, marks, {"service": "imap", "user": carol, "verdict": verdict,
                                      **extra})
        lines.append(f"logged:      {show_event(ev)}")
        if ev is not None:
            lines.append("             brownout=" + ("yes: refused in a brownout window"
                                                     if " brownout=yes" in ev else "(absent)"))
        return ok and ev is not None, lines

    def inside():
        wait_until(start + 0.5)
        return plain_login(False, "reject", {"brownout": "yes"})

    def after():
        wait_until(start + BROWNOUT_LENGTH + 0.5)
        return plain_login(True, "audit", {"brownout": None})

    steps.run(f"IMAP, plaintext, {carol}, inside the window",
              "refused, with the brownout message naming the final date; "
              "logged with brownout=yes", inside)
    steps.run(f"IMAP, plaintext, {carol}, after the window",
              "accepted again (audit until the final date), no reload in between", after)
    write_file(conf, before)
    sb.brownout_account = carol


def wait_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def smoke_test(sb: Sandbox) -> str | None:
    """One TLS login of the opted-out account, to find a broken setup (say,
    an auth module Dovecot cannot load) before playing the scenario."""
    user = f"bob@{ENFORCED}"
    try:
        with sb.stack.imap("tls", timeout=CLIENT_TIMEOUT) as c:
            typ, text = c.try_login(user, USERS[user][0])
            if typ == "OK":
                c.logout()
                return None
        problem = f"IMAPS login of {user}: {typ} {short(text)}"
    except Exception as e:
        problem = f"IMAPS login of {user}: {type(e).__name__}: {short(e)}"
    errors = [line for line in sb.stack.dovecot.log().splitlines()
              if re.search(r": (Error|Fatal|Panic):", line)]
    return problem + "".join("\n  dovecot.log: " + short(e, 300) for e in errors[-8:])


def run_report(sb: Sandbox, steps: Steps) -> None:
    section("tlsgate report on the demo's logs")
    logs = sb.logs()

    def fn():
        cmd = [str(sb.tlsgate), "-c", str(sb.conf), "report", *map(str, logs)]
        say("    $ " + " ".join(rel(c) for c in cmd))
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        for line in cp.stdout.splitlines():
            say("    | " + line)
        for line in cp.stderr.splitlines():
            say("    ! " + line)
        alice = next(iter(USERS))
        ok = cp.returncode == 0 and alice in cp.stdout
        lines = [f"exit status {cp.returncode}"]
        if sb.brownout_account:
            # the brownout list: refused in the window, in plaintext after it
            listed = cp.stdout.partition("REFUSED IN BROWNOUT WINDOWS")[2]
            still = listed.partition("STILL PLAINTEXT AFTER A BROWNOUT")[2]
            if sb.brownout_account not in still:
                ok = False
                lines.append(f"{sb.brownout_account} is not in the report's brownout list")
        return ok, lines
    expect = f"exit 0, and {next(iter(USERS))} listed"
    if sb.brownout_account:
        expect += f"; {sb.brownout_account} refused in the brownout window, still plaintext after it"
    steps.run("who still uses plaintext?", expect, fn)


def run_notify(sb: Sandbox, steps: Steps) -> None:
    """The notice carol would get names the program her plaintext login
    came from (its IMAP ID)."""
    carol = list(USERS)[3]
    out = sb.dir / "notices"

    def fn():
        out.mkdir(exist_ok=True)
        cmd = [str(sb.tlsgate), "-c", str(sb.conf), "notify", "--out", str(out),
               "--from", f"Mail Admin <postmaster@{AUDITED}>", "--domain", AUDITED,
               *(["--templates", str(REPO / "docs" / "templates")] if sb.build else []),
               *map(str, sb.logs())]
        say("    $ " + " ".join(rel(c) for c in cmd))
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        notice = out / f"{carol}.eml"
        if cp.returncode != 0 or not notice.is_file():
            return False, [f"exit status {cp.returncode}", *cp.stderr.splitlines()[-3:]]
        body = email.message_from_bytes(notice.read_bytes(),
                                        policy=email.policy.default).get_content()
        lines = [ln for ln in body.splitlines() if ln.startswith("  - ") and ms.CLIENT_ADDR in ln]
        for line in lines:
            say("    | " + line)
        named = f'"{DEMO_PROGRAM[0]} {DEMO_PROGRAM[1]}"'
        return any(named in ln and "IMAP" in ln for ln in lines), [f"exit status {cp.returncode}"]
    steps.run(f"the notice for {carol} names the device",
              f'its lines say "{DEMO_PROGRAM[0]} {DEMO_PROGRAM[1]}" on {ms.CLIENT_ADDR} over IMAP', fn)


# ---------------------------------------------------------------------------
# notify --follow: a notice at the first refusal
# ---------------------------------------------------------------------------

NOTICE_FROM = f"IT <postmaster@{ENFORCED}>"
# The demo's sendmail keeps each notice as a file in notices/.
DEMO_SENDMAIL = """#!/bin/sh
tmp=$(mktemp "{out}/.part.XXXXXX") && cat > "$tmp" && mv "$tmp" "{out}/notice.$(date +%s%N).eml"
"""


class NoticeFollower:
    """`tlsgate notify --follow` on Dovecot's log, its notices kept in
    DIR/notices/ by a stand-in sendmail."""

    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.out = sb.dir / "notices"
        self.err = sb.dir / "notify-follow.log"
        self.proc = None

    def start(self) -> None:
        self.out.mkdir(exist_ok=True)
        sendmail = self.sb.dir / "sendmail"
        write_file(sendmail, DEMO_SENDMAIL.format(out=self.out))
        os.chmod(sendmail, 0o755)
        cmd = [str(self.sb.tlsgate), "-c", str(self.sb.conf), "notify", "--follow", "--send",
               "--sendmail", str(sendmail), "--from", NOTICE_FROM,
               "--state", str(self.sb.dir / "notify.state"), "--send-timeout", "10"]
        if self.sb.build is not None:
            cmd += ["--templates", str(REPO / "docs" / "templates")]
        cmd.append(str(self.sb.stack.dovecot.logfile.path))
        self.cmd = cmd
        with open(self.err, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        ms.wait_for(lambda: b"following" in self.err.read_bytes() or self.proc.poll() is not None,
                    10, interval=0.05, what="notify --follow to start")
        if self.proc.poll() is not None:
            raise ms.HarnessError("notify --follow did not start: "
                                  + self.err.read_text(errors="replace"))

    def notices(self) -> list[Path]:
        return sorted(self.out.glob("notice.*.eml"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fetchmail_plain(port: int, user: str, pw: str, home: Path) -> subprocess.CompletedProcess:
    """fetchmail, one check of the IMAP mailbox without TLS (it has no option
    for the source address: it connects from 127.0.0.1)."""
    home.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 service {port} protocol IMAP auth password '
                  f'user "{user}" password "{pw}" sslproto ""\n')
    rc.chmod(0o600)
    return subprocess.run(["fetchmail", "-f", str(rc), "--check", "--nosyslog", "-N",
                           "--pidfile", str(home / "fetchmail.pid")],
                          capture_output=True, text=True, timeout=30, cwd=home,
                          env=dict(os.environ, HOME=str(home), LC_ALL="C.UTF-8"))


def run_follow_notice(sb: Sandbox, steps: Steps) -> None:
    section("A notice at the first refusal (tlsgate notify --follow)")
    alice = next(iter(USERS))

    def fn():
        if shutil.which("fetchmail") is None:
            return False, ["fetchmail is not installed (run `make deps`)"]
        follower = NoticeFollower(sb)
        follower.start()
        try:
            say("    $ " + " ".join(rel(c) if " " not in c else repr(c) for c in follower.cmd))
            cp = fetchmail_plain(sb.stack.dovecot.ports["imap"], alice, USERS[alice][0],
                                 sb.dir / "fetchmail")
            say(f"    fetchmail (exit {cp.returncode}) tells its user:")
            for line in (cp.stdout + cp.stderr).splitlines():
                if "Running as root" not in line:
                    say("    | " + short(line))
            ms.wait_for(lambda: follower.notices(), 10, interval=0.05,
                        what="the notice")
        finally:
            follower.stop()
        notices = follower.notices()
        msg = email.message_from_bytes(notices[0].read_bytes(), policy=email.policy.default)
        say(f"    the notice {alice} got by mail ({rel(notices[0])}):")
        for h in ("From", "To", "Subject"):
            say(f"    | {h}: {msg[h]}")
        say("    |")
        for line in msg.get_content().splitlines()[:14]:
            say("    | " + line)
        ok = cp.returncode != 0 and len(notices) == 1 and str(msg["To"]) == alice
        return ok, [f"{len(notices)} notice(s), to {msg['To']}"]
    steps.run(f"fetchmail logs in as {alice} without TLS; notify --follow tells the user",
              "fetchmail refused (it blames the password); one notice by mail, at once", fn)



def rel(p) -> str:
    s = str(p)
    r = str(REPO) + "/"
    return s[len(r):] if s.startswith(r) else s


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------

# Dovecot's longest unix socket below its directory; sun_path holds 107 bytes.
LONGEST_SOCKET = "stack/dovecot/run/token-login/imap-urlauth"


def preflight(build: Path | None, root: Path) -> list[str]:
    missing = []
    sock = root / LONGEST_SOCKET
    if len(str(sock).encode()) > 107:
        missing.append(f"the path {root} is too long for Dovecot's unix sockets "
                       f"({len(str(sock).encode())} > 107 bytes for {sock.name}); "
                       "give a shorter directory: make demo DEMO_DIR=/tmp/tlsgate-demo")
    if os.geteuid() != 0:
        missing.append("the demo must run as root (it starts Dovecot and Postfix)")
    for tool in ("dovecot", "doveconf", "postfix", "openssl", "unshare"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} not found (run `make deps`)")
    for what, path in adapters.artifacts(build).items():
        if not path.exists():
            missing.append(f"{what}: {rel(path)} has not been built (run `make`)" if build
                           else f"{what}: {path} is not installed")
    return missing


def cmd_run(args) -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    build = None if args.installed else Path(args.build).resolve()
    root = Path(args.dir).resolve() / "run"
    missing = preflight(build, root)
    say(_c("1", f"tlsgate demo: Dovecot {adapters.dovecot24.selected().version} + Postfix "
               "on 127.0.0.1, clients from 127.0.0.2"))
    if missing:
        for m in missing:
            say(f"cannot run the demo: {m}")
        return 2
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    sb = Sandbox(root, build)
    steps = Steps()
    t0 = time.monotonic()
    try:
        section("Setting up (everything below " + rel(root) + ")")
        sb.start()
        say(f"policy ({rel(sb.policy_dir)}):")
        for f in sorted(sb.policy_dir.glob("*.conf")):
            say(f"  -- {f.name}")
            for line in f.read_text().splitlines():
                say(f"     {line}")
        say("accounts: " + ", ".join(f"{u} ({d})" for u, (_, d) in USERS.items()))
        check = subprocess.run([str(sb.tlsgate), "-c", str(sb.conf), "check"],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            say("tlsgate check refused the demo policy:\n" + check.stdout + check.stderr)
            return 2
        problem = smoke_test(sb)
        if problem:
            say("\nthe servers do not answer logins: " + problem)
            steps.failed.append("setup")
        else:
            scenario(sb, steps, adapters.MESSAGE)
    except (ms.HarnessError, OSError, TimeoutError) as e:
        say(f"\nthe demo could not be set up: {short(e, 2000)}")
        steps.failed.append("setup")
    finally:
        if sb.stack is not None or sb.policyd is not None:
            if "setup" not in steps.failed:
                run_report(sb, steps)
                run_notify(sb, steps)
            section("Stopping")
            left = sb.stop()
            if left:
                say("still running after stop: " + ", ".join(left))
                steps.failed.append("stop")
            else:
                say("Dovecot, Postfix and tlsgate-policyd stopped; no process left.")
    say()
    say(f"logs: {', '.join(rel(p) for p in sb.logs())}")
    took = time.monotonic() - t0
    if "setup" in steps.failed:
        say(_c("31;1", "demo FAILED: the sandbox could not be set up (see above)"))
        return 2
    if steps.failed:
        say(_c("31;1", f"demo FAILED ({len(steps.failed)} of {steps.n} steps, {took:.0f}s): ")
            + "; ".join(steps.failed))
        return 1
    say(_c("32;1", f"demo passed: {steps.n} of {steps.n} steps as expected ({took:.0f}s)"))
    return 0


def state_path(root: Path) -> Path:
    return root / "state.json"


def cmd_up(args) -> int:
    build = None if args.installed else Path(args.build).resolve()
    root = Path(args.dir).resolve() / "up"
    missing = preflight(build, root)
    if missing:
        for m in missing:
            say(f"cannot start the demo: {m}")
        return 2
    old = read_state(root)
    if old and adapters.pid_alive(old["pid"]):
        say(f"the demo sandbox is already running (pid {old['pid']}); `make demo-down` stops it")
        print_up(old)
        return 0
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the keeper: holds the sandbox until SIGTERM
        os.close(r)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        out = os.open(root / "keeper.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os._exit(keeper(root, build, w))
    os.close(w)
    with os.fdopen(r) as f:
        answer = f.read()
    if not answer.startswith("ok"):
        say("the demo sandbox did not start:\n" + answer)
        say(f"(details: {rel(root / 'keeper.log')})")
        return 2
    print_up(read_state(root))
    return 0


def keeper(root: Path, build: Path | None, w: int) -> int:
    sb = Sandbox(root, build)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    follower = None
    try:
        sb.start()
        problem = smoke_test(sb)
        if problem:
            raise ms.HarnessError("the servers do not answer logins: " + problem)
        follower = NoticeFollower(sb)
        follower.start()
    except Exception as e:
        os.write(w, f"{e}".encode())
        os.close(w)
        if follower is not None:
            follower.stop()
        sb.stop()
        return 1
    state = {
        "pid": os.getpid(), "dir": str(root), "conf": str(sb.conf),
        "policy_dir": str(sb.policy_dir), "ca": str(sb.ca.cert),
        "ports": sb.ports(), "logs": [str(p) for p in sb.logs()],
        "users": {u: v[0] for u, v in USERS.items()},
        "notes": {u: v[1] for u, v in USERS.items()},
        "enforce_day": sb.enforce_day,
        "notices": str(follower.out),
    }
    write_file(state_path(root), json.dumps(state, indent=1))
    os.write(w, b"ok")
    os.close(w)
    while not stop:
        time.sleep(0.2)
    follower.stop()
    left = sb.stop()
    state_path(root).unlink(missing_ok=True)
    print("stopped" + (": still running " + ", ".join(left) if left else ""), flush=True)
    return 1 if left else 0


def read_state(root: Path):
    try:
        return json.loads(state_path(root).read_text())
    except (OSError, ValueError):
        return None


def print_up(s: dict) -> None:
    say(_c("1", "tlsgate demo sandbox is running (stop it with `make demo-down`)"))
    say("servers on 127.0.0.1:")
    for name, port in s["ports"].items():
        say(f"  {name:38s} 127.0.0.1:{port}")
    say("accounts (password):")
    for u, pw in s["users"].items():
        say(f"  {u:22s} {pw:18s} {s['notes'][u]}")
    say(f"server certificate: mail.test / localhost / 127.0.0.1, signed by {rel(s['ca'])}")
    say(f"policy: {rel(s['policy_dir'])}/*.conf (edit it: the servers reload it in about a second)")
    say("logs:   " + " ".join(rel(p) for p in s["logs"]))
    p = s["ports"]
    alice = f"alice@{ENFORCED}"
    cred = f"{alice}:{s['users'][alice]}"
    say("")
    say("Point a mail client at 127.0.0.1 with these ports: plaintext logins of")
    say(f"{ENFORCED} accounts are refused with the message, STARTTLS and implicit TLS")
    say("work once the client trusts the demo CA (or you accept the certificate).")
    say(f"The scanner's exemption covers SMTP from {ms.CLIENT_ADDR} only. With curl:")
    say(f"  curl -v 'imap://127.0.0.1:{p['IMAP (STARTTLS)']}/' -u '{cred}'")
    say(f"  curl -v --ssl-reqd --cacert {rel(s['ca'])} "
        f"'imap://localhost:{p['IMAP (STARTTLS)']}/' -u '{cred}'")
    say(f"Then: build/tlsgate -c {rel(s['conf'])} report " + " ".join(rel(x) for x in s["logs"]))
    print_up_clients(s)


def print_up_clients(s: dict) -> None:
    """How other mail programs connect: the exempt address, the name to check."""
    p = s["ports"]
    if s.get("notices"):
        say(f"A refused plaintext login gets the account a notice (tlsgate notify --follow): "
            f"{rel(s['notices'])}/")
    say(f"The exempt address {ms.CLIENT_ADDR}, for programs that can choose their source "
        "address:")
    say(f"  curl --interface {ms.CLIENT_ADDR}    msmtp --source-ip={ms.CLIENT_ADDR}    "
        f"swaks --local-interface {ms.CLIENT_ADDR}")
    say("  (fetchmail, mbsync, mutt and s-nail have no such option: they connect from "
        "127.0.0.1, which no exemption covers)")
    say("For TLS connect to the name localhost (or mail.test with an /etc/hosts entry): "
        "the certificate's names;")
    say("fetchmail checks the name, not the 127.0.0.1 address in the certificate:")
    say(f"  poll localhost service {p['IMAPS (implicit TLS)']} protocol IMAP "
        f"user \"alice@{ENFORCED}\" ssl sslcertck sslcertfile {rel(s['ca'])}")
    say(f"  plaintext, refused (fetchmail says only \"Authorization failure\"): "
        f"poll 127.0.0.1 service {p['IMAP (STARTTLS)']} protocol IMAP sslproto \"\"")


def cmd_down(args) -> int:
    root = Path(args.dir).resolve() / "up"
    s = read_state(root)
    if not s:
        say("the demo sandbox is not running")
        return 0
    pid = s["pid"]
    if not adapters.pid_alive(pid):
        say("the demo sandbox is not running (stale state removed)")
        state_path(root).unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    try:
        ms.wait_for(lambda: not adapters.pid_alive(pid), 60, interval=0.1, what="the sandbox to stop")
    except TimeoutError:
        say(f"the sandbox (pid {pid}) did not stop within 60s")
        return 1
    log = (root / "keeper.log").read_text(errors="replace").strip().splitlines()
    if log and log[-1] == "stopped":
        say("the demo sandbox stopped; no process left")
        return 0
    say("the demo sandbox stopped, with problems: " + (log[-1] if log else "no log"))
    return 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="tlsgate demo on loopback")
    ap.add_argument("command", choices=["run", "up", "down"])
    ap.add_argument("--dir", default=str(REPO / "build" / "demo"),
                    help="where everything is written (default build/demo)")
    ap.add_argument("--build", default=str(REPO / "build"),
                    help="where the built programs are (default build)")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed programs and Dovecot module (/usr, as the "
                         "Debian packages install them) instead of --build")
    args = ap.parse_args(argv)
    return {"run": cmd_run, "up": cmd_up, "down": cmd_down}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

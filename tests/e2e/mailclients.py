"""mailclients - real Debian mail programs, run non-interactively against a
test stack, for test_mailclients.py.

Each `Client` is one program and one protocol. `run(env, tls)` writes the
program's own configuration file the way a user would (plaintext: the
setting that refuses; tls=True: the same file with the one setting that
moves it to TLS) below a private HOME, runs it with a timeout and returns
what the user would see (stdout, stderr, exit status).

The programs connect from 127.0.0.2: most have no option to pick a source
address, so testmod/bindsource.c (LD_PRELOAD) binds their loopback
sockets to it. Nothing leaves loopback: every server is on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
SOURCE_ADDR = "127.0.0.2"
HOST = "127.0.0.1"
TIMEOUT = 15.0          # one run of one program


def build_bindsource(directory: Path) -> Path:
    """Compiles testmod/bindsource.c into directory/bindsource.so."""
    out = Path(directory) / "bindsource.so"
    cc = shutil.which("cc") or shutil.which("gcc")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(out),
                    str(HERE / "testmod" / "bindsource.c"), "-ldl"],
                   check=True, capture_output=True, text=True, timeout=120)
    return out


@dataclass
class Env:
    """Where and as whom a program runs."""
    ports: dict            # imap, imaps, pop3, pop3s, submission, smtps
    user: str
    password: str
    ca: Path               # the CA that signed the servers' certificate
    home: Path             # private HOME of this run
    preload: Path          # bindsource.so
    rcpt: str = "rcpt@example.test"

    def environ(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
        env.update(HOME=str(self.home), LD_PRELOAD=str(self.preload),
                   TG_BIND_SOURCE=SOURCE_ADDR, LANG="C", LC_ALL="C",
                   TERM="dumb", MAILRC="/dev/null", NAILRC="/dev/null")
        return env

    def write(self, name: str, text: str, mode: int = 0o600) -> Path:
        p = self.home / name
        p.write_text(text)
        os.chmod(p, mode)
        return p


@dataclass
class Result:
    argv: list
    rc: Optional[int]      # None: killed after the timeout
    out: str
    err: str
    seconds: float

    @property
    def shown(self) -> str:
        return self.out + "\n" + self.err


def run(env: Env, argv: list, stdin: str = "", timeout: float = TIMEOUT) -> Result:
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.environ(), cwd=env.home,
                         text=True, errors="replace", start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    return Result(argv, rc, out, err, time.monotonic() - t0)


def run_for(env: Env, argv: list, seconds: float) -> Result:
    """Runs a program that does not end by itself (a daemon kept in the
    foreground) for `seconds`, then stops it with SIGTERM."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.environ(), cwd=env.home,
                         text=True, errors="replace", start_new_session=True)
    try:
        out, err = p.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
    return Result(argv, p.returncode, out, err, time.monotonic() - t0)


MESSAGE_FILE = "From: {user}\nTo: {rcpt}\nSubject: tlsgate client test\n\nhello\n"


# ---------------------------------------------------------------- programs

def curl(proto: str) -> Callable[[Env, bool], Result]:
    def go(env: Env, tls: bool) -> Result:
        port = env.ports[{"IMAP": "imap", "POP3": "pop3", "SMTP": "submission"}[proto]]
        scheme = proto.lower()
        argv = ["curl", "-sS", "--max-time", "10", "--cacert", str(env.ca),
                "-u", f"{env.user}:{env.password}"]
        if tls:
            argv.append("--ssl-reqd")
        if proto == "SMTP":
            msg = env.write("msg.txt", MESSAGE_FILE.format(user=env.user, rcpt=env.rcpt))
            argv += ["--mail-from", env.user, "--mail-rcpt", env.rcpt, "-T", str(msg)]
            url = f"{scheme}://localhost:{port}/"
        else:
            url = f"{scheme}://localhost:{port}/"
        return run(env, argv + [url])
    return go


def fetchmail_rc(env: Env, proto: str, tls: bool) -> Path:
    port = env.ports[proto.lower()]
    proto_value = "TLS1.2+" if tls else "''"
    tls_line = f"  sslproto {proto_value}\n  sslcertck sslcertfile {env.ca}\n"
    return env.write("fetchmailrc",
                     f"set no syslog\n"
                     f"poll localhost port {port} proto {proto} timeout 10\n"
                     f"  user \"{env.user}\" password \"{env.password}\" is root here\n"
                     f"  keep mda \"/bin/true\"\n"
                     f"{tls_line}")


def fetchmail(proto: str) -> Callable[[Env, bool], Result]:
    def go(env: Env, tls: bool) -> Result:
        rc = fetchmail_rc(env, proto, tls)
        return run(env, ["fetchmail", "-f", str(rc), "--pidfile", str(env.home / "fm.pid"),
                         "--nodetach", "-d0"])
    return go


def fetchmail_daemon(proto: str, interval: int, seconds: float) -> Callable[[Env], Result]:
    def go(env: Env) -> Result:
        rc = fetchmail_rc(env, proto, False)
        return run_for(env, ["fetchmail", "-f", str(rc), "--pidfile",
                             str(env.home / "fm.pid"), "--nodetach",
                             "-d", str(interval)], seconds)
    return go


def mbsync(env: Env, tls: bool) -> Result:
    (env.home / "Mail").mkdir(exist_ok=True)
    rc = env.write("mbsyncrc",
                   f"IMAPAccount acct\nHost localhost\nPort {env.ports['imap']}\n"
                   f"User {env.user}\nPass {env.password}\n"
                   f"SSLType {'STARTTLS' if tls else 'None'}\n"
                   f"CertificateFile {env.ca}\n\n"
                   f"IMAPStore remote\nAccount acct\n\n"
                   f"MaildirStore local\nPath {env.home}/Mail/\nInbox {env.home}/Mail/INBOX\n\n"
                   f"Channel ch\nFar :remote:\nNear :local:\nPatterns INBOX\n"
                   f"Create Near\nSync Pull\n")
    return run(env, ["mbsync", "-c", str(rc), "ch"])


def msmtp(env: Env, tls: bool) -> Result:
    rc = env.write("msmtprc",
                   f"account default\nhost localhost\nport {env.ports['submission']}\n"
                   f"auth plain\nuser {env.user}\npassword {env.password}\n"
                   f"from {env.user}\ntls {'on' if tls else 'off'}\n"
                   f"tls_trust_file {env.ca}\n")
    return run(env, ["msmtp", "-C", str(rc), env.rcpt],
               stdin=MESSAGE_FILE.format(user=env.user, rcpt=env.rcpt))


def swaks(env: Env, tls: bool) -> Result:
    argv = ["swaks", "--server", f"localhost:{env.ports['submission']}",
            "--auth", "PLAIN", "--auth-user", env.user, "--auth-password", env.password,
            "--from", env.user, "--to", env.rcpt, "--timeout", "10"]
    if tls:
        argv.append("--tls")
    return run(env, argv)


def s_nail_smtp(env: Env, tls: bool) -> Result:
    argv = ["s-nail", "-:/", "-S", "v15-compat", "-S", "sendwait",
            "-S", f"mta=smtp://{env.user.replace('@', '%40')}:{env.password}"
                  f"@localhost:{env.ports['submission']}",
            "-S", "smtp-auth=plain", "-S", f"tls-ca-file={env.ca}",
            "-S", "tls-ca-no-defaults", "-S", f"DEAD={env.home}/dead.letter",
            "-r", env.user, "-s", "test"]
    if tls:
        argv += ["-S", "smtp-use-starttls"]
    return run(env, argv + [env.rcpt], stdin="hello\n")


def s_nail_box(proto: str) -> Callable[[Env, bool], Result]:
    """Opens the mailbox in batch mode (-#) and quits; imaps:// or pop3s://
    (the TLS port) is the setting."""
    def go(env: Env, tls: bool) -> Result:
        scheme = proto.lower() + ("s" if tls else "")
        port = env.ports[scheme]
        user = env.user.replace("@", "%40")
        url = f"{scheme}://{user}:{env.password}@localhost:{port}"
        argv = ["s-nail", "-:/", "-#", "-S", "v15-compat",
                "-S", f"tls-ca-file={env.ca}", "-S", "tls-ca-no-defaults",
                "-S", f"DEAD={env.home}/dead.letter", "-S", f"MBOX={env.home}/mbox",
                "-f", url]
        return run(env, argv, stdin="quit\n")
    return go


PYTHON_IMAP = """
import imaplib, ssl, sys
c = imaplib.IMAP4("localhost", int(sys.argv[1]))
if sys.argv[2] == "tls":
    c.starttls(ssl.create_default_context(cafile=sys.argv[3]))
try:
    c.login(sys.argv[4], sys.argv[5])
except imaplib.IMAP4.error as e:
    sys.exit(f"login failed: {e}")
c.logout()
"""
PYTHON_SMTP = """
import smtplib, ssl, sys
c = smtplib.SMTP("localhost", int(sys.argv[1]))
if sys.argv[2] == "tls":
    c.starttls(context=ssl.create_default_context(cafile=sys.argv[3]))
c.login(sys.argv[4], sys.argv[5])
try:
    c.sendmail(sys.argv[4], [sys.argv[6]], "Subject: test\\r\\n\\r\\nhello\\r\\n")
except smtplib.SMTPRecipientsRefused as e:
    sys.exit(f"refused: {e}")
c.quit()
"""


def python(proto: str) -> Callable[[Env, bool], Result]:
    """imaplib/smtplib of the Python standard library, the reference: a
    script shows whatever the server said."""
    def go(env: Env, tls: bool) -> Result:
        port = env.ports["imap" if proto == "IMAP" else "submission"]
        code = PYTHON_IMAP if proto == "IMAP" else PYTHON_SMTP
        return run(env, ["/usr/bin/python3", "-c", code, str(port),
                         "tls" if tls else "plain", str(env.ca), env.user, env.password,
                         env.rcpt])
    return go


def getmail(proto: str) -> Callable[[Env, bool], Result]:
    def go(env: Env, tls: bool) -> Result:
        maildir = env.home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        kind = ("SimpleIMAPSSLRetriever" if proto == "IMAP" else "SimplePOP3SSLRetriever") \
            if tls else ("SimpleIMAPRetriever" if proto == "IMAP" else "SimplePOP3Retriever")
        port = env.ports[proto.lower() + ("s" if tls else "")]
        ca = f"ca_certs = {env.ca}\n" if tls else ""
        env.write("getmailrc",
                  f"[retriever]\ntype = {kind}\nserver = localhost\nport = {port}\n"
                  f"username = {env.user}\npassword = {env.password}\n{ca}\n"
                  f"[destination]\ntype = Maildir\npath = {maildir}/\n\n"
                  f"[options]\nread_all = false\ndelete = false\nverbose = 1\n")
        return run(env, ["getmail", f"--getmaildir={env.home}", "--rcfile=getmailrc"])
    return go


def mutt_box(program: str, proto: str) -> Callable[[Env, bool], Result]:
    """The mailbox opened in the full-screen program (on a pty, by
    script(1)), then <quit>: what it prints on its status line is what the
    user sees."""
    def go(env: Env, tls: bool) -> Result:
        (env.home / "Mail").mkdir(exist_ok=True)
        rc = env.write("muttrc",
                       f"set folder=\"{env.home}/Mail\"\n"
                       f"set imap_user=\"{env.user}\"\nset imap_pass=\"{env.password}\"\n"
                       f"set pop_user=\"{env.user}\"\nset pop_pass=\"{env.password}\"\n"
                       f"set certificate_file=\"{env.ca}\"\n"
                       f"set ssl_starttls=no\n"
                       f"set ssl_force_tls={'yes' if tls else 'no'}\n"
                       f"set header_cache=\"\"\nset message_cachedir=\"\"\n"
                       f"set mail_check=60\nset timeout=1\nset sleep_time=0\n")
        url = (f"imap://localhost:{env.ports['imap']}/INBOX" if proto == "IMAP"
               else f"pop://localhost:{env.ports['pop3']}/")
        cmd = f"{program} -n -F {rc} -f {url} -e 'push <quit>'"
        r = run(env, ["script", "-qec", cmd, "/dev/null"], stdin="q\n")
        return r
    return go


def mutt_smtp(program: str) -> Callable[[Env, bool], Result]:
    def go(env: Env, tls: bool) -> Result:
        rc = env.write("muttrc",
                       f"set smtp_url=\"smtp://{env.user.replace('@', '%40')}"
                       f"@localhost:{env.ports['submission']}/\"\n"
                       f"set smtp_pass=\"{env.password}\"\n"
                       f"set from=\"{env.user}\"\nset use_from=yes\n"
                       f"set certificate_file=\"{env.ca}\"\n"
                       f"set ssl_starttls=no\n"
                       f"set ssl_force_tls={'yes' if tls else 'no'}\n"
                       f"set record=\"\"\nset sendmail_wait=0\n")
        return run(env, [program, "-n", "-F", str(rc), "-s", "test", env.rcpt],
                   stdin="hello\n")
    return go


# ---------------------------------------------------------------- the list

@dataclass
class Client:
    program: str
    protocol: str
    run: Callable[[Env, bool], Result]
    setting: str
    daemon: Optional[Callable[[Env], Result]] = None
    screen: bool = False      # full-screen: one status line, messages replace each other
    needs: list = field(default_factory=list)     # executables

    @property
    def key(self) -> str:
        return f"{self.program}/{self.protocol}"

    def available(self) -> bool:
        return all(shutil.which(x) for x in self.needs or [self.program])


DAEMON_INTERVAL = 1      # fetchmail -d: seconds between polls
DAEMON_SECONDS = 5.0

# `setting`: the one change to the plaintext configuration that run(env,
# tls=True) makes, as docs/rollout.md and cli/report/advice.c name it.
CURL = "`--ssl-reqd` on the command line"
FETCHMAIL = "`sslproto TLS1.2+` in .fetchmailrc"
GETMAIL = "`type = SimpleIMAPSSLRetriever` or `SimplePOP3SSLRetriever` (and port 993 or 995) in getmailrc"
MBSYNC = "`SSLType STARTTLS` in .mbsyncrc (isync 1.5: `TLSType STARTTLS`)"
MSMTP = "`tls on` in .msmtprc"
MUTT = "`set ssl_force_tls=yes` in muttrc"
S_NAIL = "`smtp-use-starttls` (SMTP); an `imaps://` or `pop3s://` URL (mailboxes)"
SWAKS = "`--tls` on the command line"
PYTHON = "`starttls()` before `login()`"

CLIENTS = [
    Client("curl", "IMAP", curl("IMAP"), CURL),
    Client("curl", "POP3", curl("POP3"), CURL),
    Client("curl", "SMTP", curl("SMTP"), CURL),
    Client("fetchmail", "IMAP", fetchmail("IMAP"), FETCHMAIL,
           daemon=fetchmail_daemon("IMAP", DAEMON_INTERVAL, DAEMON_SECONDS)),
    Client("fetchmail", "POP3", fetchmail("POP3"), FETCHMAIL,
           daemon=fetchmail_daemon("POP3", DAEMON_INTERVAL, DAEMON_SECONDS)),
    Client("getmail", "IMAP", getmail("IMAP"), GETMAIL),
    Client("getmail", "POP3", getmail("POP3"), GETMAIL),
    Client("mbsync", "IMAP", mbsync, MBSYNC),
    Client("msmtp", "SMTP", msmtp, MSMTP),
    Client("mutt", "IMAP", mutt_box("mutt", "IMAP"), MUTT, screen=True),
    Client("mutt", "POP3", mutt_box("mutt", "POP3"), MUTT, screen=True),
    Client("mutt", "SMTP", mutt_smtp("mutt"), MUTT),
    Client("neomutt", "IMAP", mutt_box("neomutt", "IMAP"), MUTT, screen=True),
    Client("neomutt", "POP3", mutt_box("neomutt", "POP3"), MUTT, screen=True),
    Client("neomutt", "SMTP", mutt_smtp("neomutt"), MUTT),
    Client("python3", "IMAP", python("IMAP"), PYTHON, needs=["python3"]),
    Client("python3", "SMTP", python("SMTP"), PYTHON, needs=["python3"]),
    Client("s-nail", "IMAP", s_nail_box("IMAP"), S_NAIL),
    Client("s-nail", "POP3", s_nail_box("POP3"), S_NAIL),
    Client("s-nail", "SMTP", s_nail_smtp, S_NAIL),
    Client("swaks", "SMTP", swaks, SWAKS),
]
